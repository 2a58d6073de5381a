//! `openpalm bench identify`: 1:N search speed on a synthetic gallery (`bench lane`: see
//! [`super::lane_bench`]; `bench checkout`: [`super::checkout_bench`]).
//!
//! Synthetic templates are a statistical shortcut (random codes, genuine probes made by
//! flipping ~19% of an enrolled template's bits and translating it by one cell; see
//! `openpalm_gallery::synthetic`): the figures measure speed, not accuracy.
//!
//! `--save DIR` builds the gallery through a durable [`Store`] in `DIR` (log, then one
//! snapshot) and times reopening it; `--load DIR` reopens a gallery saved so, timed, instead
//! of building one. `--export-codes DIR` writes the gallery's stored codes and the probes'
//! primary codes for `bench/faiss_flat.py`, in this format (little-endian):
//!
//! - `gallery.codes`, `probes.codes`: a 32-byte header, `OPCODES1`, records `u64`,
//!   `code_bytes u32`, `bits_bytes u32`, `grid u16`, `planes u16`, 4 zero bytes; then per
//!   record an `id u64` (gallery: the person; probe: the person it is a genuine probe of) and
//!   `code_bytes` bytes: the code exactly as the gallery stores and searches it (the engine's
//!   `PackedCode` words, `u64` little-endian, the bit words first (`bits_bytes`), then the
//!   mask words). Gallery records are in key order.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use openpalm_engine::matcher::PackedCode;
use openpalm_engine::{MatchConfig, Template};
use openpalm_gallery::synthetic::{genuine_probe, indexed_template, random_template};
use openpalm_gallery::{Decision, DecisionPolicy, Gallery, Hand, Key, Layout, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Build a synthetic gallery and time identify (1 and 2 threads) and scoped identify.
    Identify(IdentifyArgs),
    /// A venue's palm lane over HTTP: seeded population, tickets, gates deciding at once.
    Lane(super::lane_bench::LaneArgs),
    /// A store's tills over HTTP: seeded members, sandbox cards, palm payments at once.
    Checkout(super::checkout_bench::CheckoutArgs),
}

#[derive(Parser, Debug)]
struct IdentifyArgs {
    /// Templates in the gallery (one per person).
    #[arg(long, default_value_t = 1_000_000)]
    gallery: u64,
    /// Queries per measurement.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Persons in the scoped search.
    #[arg(long, default_value_t = 20_000)]
    scope: u64,
    /// Top-k asked for.
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Build the gallery through a durable store in this (new or empty) folder, snapshot it,
    /// and time reopening it (`reopen_ms`).
    #[arg(long, conflicts_with = "load")]
    save: Option<PathBuf>,
    /// Reopen, timed, a gallery saved with `--save` (same `--gallery` and `--seed`) instead
    /// of building one.
    #[arg(long)]
    load: Option<PathBuf>,
    /// First-stage candidates kept per million templates searched (default: the gallery's
    /// `SearchParams::default()`).
    #[arg(long)]
    candidates_per_million: Option<usize>,
    /// Templates per million the second look reaches for probes the first look does not
    /// match (0: no second look; default: the gallery's `SearchParams::default()`).
    #[arg(long)]
    extended_per_million: Option<usize>,
    /// Write the gallery's stored codes and the probes' primary codes to this folder for
    /// `bench/faiss_flat.py` (format in the module docs).
    #[arg(long)]
    export_codes: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Identify(a) => identify(a),
        What::Lane(a) => super::lane_bench::run(a),
        What::Checkout(a) => super::checkout_bench::run(a),
    }
}

/// The instruction set the gallery's first stage (sketch scan) dispatches to on this CPU.
fn sketch_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            return "avx2";
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            return "popcnt";
        }
    }
    "portable"
}

fn key(i: u64) -> Key {
    Key::new(i, Hand::Right, 0)
}

pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

struct Timing {
    p50: f64,
    p99: f64,
    qps: f64,
    correct: usize,
    /// Top-1 score reaching the identification threshold (no second look needed).
    accepted: usize,
}

fn time_queries(
    g: &Gallery,
    probes: &[(Template, u64)],
    k: usize,
    mut search: impl FnMut(&Template) -> Vec<openpalm_gallery::Candidate>,
) -> Timing {
    let _ = g;
    let mut ms = Vec::with_capacity(probes.len());
    let mut correct = 0;
    let mut accepted = 0;
    let all = Instant::now();
    for (p, truth) in probes {
        let t = Instant::now();
        let r = search(p);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if r.first().map(|c| c.person) == Some(*truth) && r.len() <= k {
            correct += 1;
        }
        if r.first()
            .is_some_and(|c| c.score >= openpalm_engine::IDENTIFICATION_THRESHOLD)
        {
            accepted += 1;
        }
    }
    let total = all.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    Timing {
        p50: percentile(&ms, 0.5),
        p99: percentile(&ms, 0.99),
        qps: probes.len() as f64 / total,
        correct,
        accepted,
    }
}

fn identify(a: IdentifyArgs) -> Result<()> {
    anyhow::ensure!(
        a.gallery > 0 && a.queries > 0 && a.k > 0,
        "gallery, queries and k must be positive"
    );
    let layout = Layout::ENGINE_DEFAULT;
    let build = Instant::now();
    let mut persisted = Persisted::default();
    let g = match (&a.save, &a.load) {
        (_, Some(dir)) => {
            let log = log_path(dir);
            check_saved(dir, &a)?;
            let t = Instant::now();
            let (store, report) = Store::open(&log, layout, MatchConfig::default())
                .with_context(|| format!("reopening {}", log.display()))?;
            persisted.reopen_ms = Some(t.elapsed().as_secs_f64() * 1e3);
            persisted.report = Some(report);
            persisted.snapshot_bytes = Some(store.snapshot_bytes());
            anyhow::ensure!(
                store.gallery().len() as u64 == a.gallery,
                "{} holds {} templates, not --gallery {}",
                log.display(),
                store.gallery().len(),
                a.gallery
            );
            store.into_gallery()
        }
        (Some(dir), None) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let log = log_path(dir);
            anyhow::ensure!(
                !log.exists() && !Store::snapshot_path_of(&log).exists(),
                "{} already holds a gallery: use --load",
                dir.display()
            );
            let (mut store, _) = Store::open(&log, layout, MatchConfig::default())?;
            // One snapshot at the end, not one per 64 MiB logged while building.
            store.set_snapshot_policy(None);
            build_gallery(&a, &layout, |items| Ok(store.add_batch(items)?))?;
            let t = Instant::now();
            store.snapshot()?;
            persisted.snapshot_s = Some(t.elapsed().as_secs_f64());
            persisted.snapshot_bytes = Some(store.snapshot_bytes());
            std::fs::write(
                dir.join("bench.json"),
                serde_json::json!({"gallery": a.gallery, "seed": a.seed}).to_string(),
            )?;
            drop(store);
            let t = Instant::now();
            let (store, report) = Store::open(&log, layout, MatchConfig::default())?;
            persisted.reopen_ms = Some(t.elapsed().as_secs_f64() * 1e3);
            persisted.report = Some(report);
            store.into_gallery()
        }
        (None, None) => {
            let mut g = Gallery::new(layout, MatchConfig::default())?;
            build_gallery(&a, &layout, |items| {
                for (k, t) in items {
                    g.add(*k, t)?;
                }
                Ok(())
            })?;
            g
        }
    };
    let build_s = build.elapsed().as_secs_f64();
    let mut g = g;
    let mut params = g.search_params().clone();
    if let Some(c) = a.candidates_per_million {
        params.candidates_per_million = c;
    }
    match a.extended_per_million {
        Some(0) => params.extend_below = None,
        Some(e) => params.extended_per_million = e,
        None => {}
    }
    g.set_search_params(params);
    let g = g;
    eprintln!(
        "{} {} templates in {build_s:.1} s, matcher path {}, sketch path {}, memory {:.3}x raw ({} B/template raw)",
        if a.load.is_some() { "loaded" } else { "built" },
        g.len(),
        openpalm_engine::matcher::kernel_name(),
        sketch_path(),
        g.memory_bytes() as f64 / g.raw_template_bytes() as f64,
        layout.raw_bytes()
    );
    if let Some(ms) = persisted.reopen_ms {
        eprintln!(
            "reopen {ms:.0} ms ({:?}); snapshot {} B{}",
            persisted.report,
            persisted.snapshot_bytes.unwrap_or(0),
            persisted
                .snapshot_s
                .map_or(String::new(), |s| format!(", written in {s:.1} s"))
        );
    }

    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ 0xBE4C);
    let probes: Vec<(Template, u64)> = (0..a.queries)
        .map(|_| {
            let i = rng.gen_range(0..a.gallery);
            (genuine_probe(&mut rng, &indexed_template(a.seed, i, &layout)), i)
        })
        .collect();
    if let Some(dir) = &a.export_codes {
        export_codes(dir, &g, &probes)?;
    }

    let mut by_threads = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("thread pool")?;
        let t = pool.install(|| time_queries(&g, &probes, a.k, |p| g.identify(p, a.k).unwrap_or_default()));
        eprintln!(
            "threads {threads}: p50 {:.2} ms, p99 {:.2} ms, {:.1} q/s, top-1 correct {}/{}",
            t.p50,
            t.p99,
            t.qps,
            t.correct,
            probes.len()
        );
        by_threads.push(t);
    }

    // Scope: every stride-th person; probes are genuine probes of scope members.
    let scope_n = a.scope.min(a.gallery);
    let stride = (a.gallery / scope_n).max(1);
    let mut scope = g.scope((0..scope_n).map(|j| j * stride));
    let sprobes: Vec<(Template, u64)> = (0..a.queries)
        .map(|_| {
            let i = rng.gen_range(0..scope_n) * stride;
            (genuine_probe(&mut rng, &indexed_template(a.seed, i, &layout)), i)
        })
        .collect();
    let st = time_queries(&g, &sprobes, a.k, |p| {
        g.identify_in(&mut scope, p, a.k).unwrap_or_default()
    });
    eprintln!(
        "scoped {scope_n}: p50 {:.3} ms, p99 {:.3} ms, top-1 correct {}/{}",
        st.p50,
        st.p99,
        st.correct,
        sprobes.len()
    );

    // Exactness of the two-stage search against scoring every scope template exactly.
    let checks = sprobes.len().min(20);
    let (mut top1_same, mut list_same) = (0, 0);
    for (p, _) in &sprobes[..checks] {
        let fast = g.identify_in(&mut scope, p, a.k)?;
        let exact = g.identify_in_exact(&mut scope, p, a.k)?;
        if fast.first().map(|c| (c.person, c.score.to_bits()))
            == exact.first().map(|c| (c.person, c.score.to_bits()))
        {
            top1_same += 1;
        }
        if fast
            .iter()
            .map(|c| (c.person, c.score.to_bits()))
            .eq(exact.iter().map(|c| (c.person, c.score.to_bits())))
        {
            list_same += 1;
        }
    }
    eprintln!("scoped two-stage vs exhaustive: top-1 identical {top1_same}/{checks}, whole top-{} identical {list_same}/{checks}", a.k);

    // Impostors: templates never enrolled must not be accepted. They are the probes the
    // second look searches deeper, so they are timed too.
    let policy = DecisionPolicy::default();
    let mut irng = ChaCha8Rng::seed_from_u64(a.seed ^ 0x1A9057);
    let impostors = 50;
    let mut rejected = 0;
    let mut ims = Vec::with_capacity(impostors);
    for _ in 0..impostors {
        let p = random_template(&mut irng, &layout);
        let t = Instant::now();
        let r = g.identify(&p, 2)?;
        ims.push(t.elapsed().as_secs_f64() * 1e3);
        if matches!(policy.decide(&r), Decision::NoMatch { .. }) {
            rejected += 1;
        }
    }
    ims.sort_by(f64::total_cmp);
    let (ip50, ip99) = (percentile(&ims, 0.5), percentile(&ims, 0.99));
    eprintln!(
        "impostor probes rejected: {rejected}/{impostors}, {} threads: p50 {ip50:.2} ms, p99 {ip99:.2} ms",
        rayon::current_num_threads()
    );

    if a.json {
        let t = |x: &Timing| serde_json::json!({"p50_ms": x.p50, "p99_ms": x.p99, "qps": x.qps});
        let out = serde_json::json!({
            "gallery": g.len(),
            "matcher_path": openpalm_engine::matcher::kernel_name(),
            "sketch_path": sketch_path(),
            "candidates": g.search_params().candidates(g.len(), a.k),
            "loadavg": loadavg(),
            "reopen_ms": persisted.reopen_ms,
            "reopen": persisted.report.map(|r| serde_json::json!({
                "snapshot_templates": r.snapshot_templates,
                "log_records": r.records,
                "generation": r.generation,
            })),
            "snapshot_s": persisted.snapshot_s,
            "snapshot_bytes": persisted.snapshot_bytes,
            "build_s": build_s,
            "memory_over_raw": g.memory_bytes() as f64 / g.raw_template_bytes() as f64,
            "raw_bytes_per_template": layout.raw_bytes(),
            "top1_correct": {"threads_1": by_threads[0].correct, "threads_2": by_threads[1].correct, "scoped": st.correct, "of": a.queries},
            "scoped_exactness": {"checked": checks, "top1_identical": top1_same, "topk_identical": list_same},
            "impostors_rejected": {"rejected": rejected, "of": impostors},
            "impostors": {"threads": rayon::current_num_threads(), "p50_ms": ip50, "p99_ms": ip99},
            "genuine_top1_reaching_threshold": {"threads_2": by_threads[1].accepted, "of": a.queries, "threshold": policy.threshold},
            "extended_candidates": g.search_params().extended_candidates(g.len(), a.k),
            "threads_1": t(&by_threads[0]),
            "threads_2": t(&by_threads[1]),
            format!("scoped_{scope_n}"): {"p50_ms": st.p50, "p99_ms": st.p99},
        });
        println!("{out}");
    }
    Ok(())
}

/// What persisting the gallery measured.
#[derive(Default)]
struct Persisted {
    reopen_ms: Option<f64>,
    report: Option<openpalm_gallery::RecoveryReport>,
    snapshot_s: Option<f64>,
    snapshot_bytes: Option<u64>,
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("gallery.log")
}

/// A saved gallery must be the one these arguments would build (its probes are made from it).
fn check_saved(dir: &Path, a: &IdentifyArgs) -> Result<()> {
    let p = dir.join("bench.json");
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&p).with_context(|| format!("{} (written by --save)", p.display()))?,
    )
    .with_context(|| p.display().to_string())?;
    anyhow::ensure!(
        saved["gallery"] == a.gallery && saved["seed"] == a.seed,
        "{} was saved with {saved}, not --gallery {} --seed {}",
        dir.display(),
        a.gallery,
        a.seed
    );
    Ok(())
}

/// Make the bench's templates in batches, in parallel, and hand each batch to `add`.
fn build_gallery(
    a: &IdentifyArgs,
    layout: &Layout,
    mut add: impl FnMut(&[(Key, Template)]) -> Result<()>,
) -> Result<()> {
    let pb = indicatif::ProgressBar::new(a.gallery);
    pb.set_style(
        indicatif::ProgressStyle::with_template("building {bar:40} {pos}/{len} templates ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let chunk = 16_384u64;
    let mut start = 0;
    while start < a.gallery {
        let end = (start + chunk).min(a.gallery);
        let items: Vec<(Key, Template)> = (start..end)
            .into_par_iter()
            .map(|i| (key(i), indexed_template(a.seed, i, layout)))
            .collect();
        add(&items)?;
        pb.inc(end - start);
        start = end;
    }
    pb.finish_and_clear();
    Ok(())
}

/// The 1, 5 and 15 minute load averages (Linux), for reading the timings against.
pub(super) fn loadavg() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn codes_header(records: u64, layout: &Layout) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(b"OPCODES1");
    h[8..16].copy_from_slice(&records.to_le_bytes());
    h[16..20].copy_from_slice(&(layout.raw_bytes() as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(layout.raw_bytes() as u32 / 2).to_le_bytes());
    h[24..26].copy_from_slice(&(layout.grid as u16).to_le_bytes());
    h[26..28].copy_from_slice(&(layout.planes as u16).to_le_bytes());
    h
}

fn write_code(out: &mut impl Write, id: u64, code: &PackedCode) -> std::io::Result<()> {
    out.write_all(&id.to_le_bytes())?;
    for w in code.bits.iter().chain(&code.mask) {
        out.write_all(&w.to_le_bytes())?;
    }
    Ok(())
}

/// `gallery.codes` and `probes.codes` for `bench/faiss_flat.py` (format in the module docs).
fn export_codes(dir: &Path, g: &Gallery, probes: &[(Template, u64)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let layout = g.layout();
    let keys = g.keys();
    let mut out =
        std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(dir.join("gallery.codes"))?);
    out.write_all(&codes_header(keys.len() as u64, &layout))?;
    for k in &keys {
        let code = g.get(k).context("a listed key is enrolled")?;
        write_code(&mut out, k.person, &code)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("probes.codes"))?);
    out.write_all(&codes_header(probes.len() as u64, &layout))?;
    for (p, truth) in probes {
        let code = PackedCode::new(&p.code).context("probe code packs")?;
        write_code(&mut out, *truth, &code)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    eprintln!(
        "exported {} gallery and {} probe codes to {}",
        keys.len(),
        probes.len(),
        dir.display()
    );
    Ok(())
}
