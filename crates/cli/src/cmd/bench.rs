//! `openpalm bench identify`: 1:N search speed on a synthetic gallery.
//!
//! Synthetic templates are a statistical shortcut (random codes, genuine probes made by
//! flipping ~19% of an enrolled template's bits and translating it by one cell; see
//! `openpalm_gallery::synthetic`): the figures measure speed, not accuracy.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use openpalm_engine::{MatchConfig, Template};
use openpalm_gallery::synthetic::{genuine_probe, indexed_template, random_template};
use openpalm_gallery::{Decision, DecisionPolicy, Gallery, Hand, Key, Layout};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
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
}

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Identify(a) => identify(a),
    }
}

/// The instruction set the engine's matcher dispatches to on this CPU.
fn cpu_path() -> &'static str {
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

fn percentile(sorted: &[f64], q: f64) -> f64 {
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
    let all = Instant::now();
    for (p, truth) in probes {
        let t = Instant::now();
        let r = search(p);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if r.first().map(|c| c.person) == Some(*truth) && r.len() <= k {
            correct += 1;
        }
    }
    let total = all.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    Timing {
        p50: percentile(&ms, 0.5),
        p99: percentile(&ms, 0.99),
        qps: probes.len() as f64 / total,
        correct,
    }
}

fn identify(a: IdentifyArgs) -> Result<()> {
    anyhow::ensure!(
        a.gallery > 0 && a.queries > 0 && a.k > 0,
        "gallery, queries and k must be positive"
    );
    let layout = Layout::ENGINE_DEFAULT;
    let mut g = Gallery::new(layout, MatchConfig::default())?;
    let build = Instant::now();
    let chunk = 16_384u64;
    let mut start = 0;
    while start < a.gallery {
        let end = (start + chunk).min(a.gallery);
        let ts: Vec<Template> = (start..end)
            .into_par_iter()
            .map(|i| indexed_template(a.seed, i, &layout))
            .collect();
        for (i, t) in (start..end).zip(&ts) {
            g.add(key(i), t)?;
        }
        start = end;
    }
    let build_s = build.elapsed().as_secs_f64();
    eprintln!(
        "built {} templates in {build_s:.1} s, matcher path {}, memory {:.3}x raw ({} B/template raw)",
        g.len(),
        cpu_path(),
        g.memory_bytes() as f64 / g.raw_template_bytes() as f64,
        layout.raw_bytes()
    );

    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ 0xBE4C);
    let probes: Vec<(Template, u64)> = (0..a.queries)
        .map(|_| {
            let i = rng.gen_range(0..a.gallery);
            (genuine_probe(&mut rng, &indexed_template(a.seed, i, &layout)), i)
        })
        .collect();

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

    // Impostors: templates never enrolled must not be accepted.
    let policy = DecisionPolicy::default();
    let mut irng = ChaCha8Rng::seed_from_u64(a.seed ^ 0x1A9057);
    let impostors = 50;
    let mut rejected = 0;
    for _ in 0..impostors {
        let p = random_template(&mut irng, &layout);
        if matches!(policy.decide(&g.identify(&p, 2)?), Decision::NoMatch { .. }) {
            rejected += 1;
        }
    }
    eprintln!("impostor probes rejected: {rejected}/{impostors}");

    if a.json {
        let t = |x: &Timing| serde_json::json!({"p50_ms": x.p50, "p99_ms": x.p99, "qps": x.qps});
        let out = serde_json::json!({
            "gallery": g.len(),
            "matcher_path": cpu_path(),
            "build_s": build_s,
            "memory_over_raw": g.memory_bytes() as f64 / g.raw_template_bytes() as f64,
            "raw_bytes_per_template": layout.raw_bytes(),
            "top1_correct": {"threads_1": by_threads[0].correct, "threads_2": by_threads[1].correct, "scoped": st.correct, "of": a.queries},
            "scoped_exactness": {"checked": checks, "top1_identical": top1_same, "topk_identical": list_same},
            "impostors_rejected": {"rejected": rejected, "of": impostors},
            "threads_1": t(&by_threads[0]),
            "threads_2": t(&by_threads[1]),
            format!("scoped_{scope_n}"): {"p50_ms": st.p50, "p99_ms": st.p99},
        });
        println!("{out}");
    }
    Ok(())
}
