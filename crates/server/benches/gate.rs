//! Gate identification latency with a large enrolled population, over real HTTP.
//!
//! ```sh
//! cargo bench -p openpalm-server --bench gate -- --persons 100000
//! ```
//!
//! What it does:
//!
//! 1. Seeds a SQLite data folder through the real store code and the service's own
//!    encryption (each person: a data key wrapped by the master key, templates encrypted
//!    under it, consent, membership of the bench business), in transactions of 500 persons
//!    (`Store::enroll_many`) instead of 100,000 HTTP enrollments. `--genuine` persons (20)
//!    are synthetic palm ROIs rendered by `openpalm-synth`, enrolled from the templates the
//!    engine extracts from 3 captures each; the other persons get `--templates` (3, as an
//!    enrollment needs) synthetic template codes each (`openpalm_gallery::synthetic`: random
//!    codes, a statistical shortcut for speed, not a claim about accuracy).
//! 2. Starts the service on 127.0.0.1 (start-up decrypts every template into the gallery;
//!    timed), registers a gate through the API.
//! 3. Identifies: each query seals and signs a fresh capture of a genuine person (an image
//!    not enrolled) on the client side, untimed, then times `POST /v1/identifications` from
//!    send to the parsed answer: decryption, signature and replay checks, decode, ROI,
//!    template extraction, 1:N search in the business's scope (every seeded person), the
//!    match log write and the answer. p50/p95/p99 over `--queries` (200) after 3 warm-up
//!    queries; the load average is printed with them (2-core machines shared with builds
//!    inflate every figure).
//! 4. Splits the figure: the engine's extraction alone, and the matcher's scoped search
//!    alone (in process, same probes).
//!
//! `--data DIR` keeps the seeded folder for the next run (reused when it was seeded with the
//! same `--persons`, `--templates`, `--genuine` and `--seed`).

use indicatif::{ProgressBar, ProgressStyle};
use openpalm_device::{Client, Reader};
use openpalm_domain::ids::{DeviceKind, Purpose};
use openpalm_engine::{Engine, InputKind, Template};
use openpalm_gallery::synthetic::indexed_template;
use openpalm_gallery::Layout;
use openpalm_server::{Config, Running};
use openpalm_store::SqlStore;
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    persons: u64,
    templates: usize,
    genuine: u64,
    queries: usize,
    seed: u64,
    data: Option<PathBuf>,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench -p openpalm-server --bench gate -- [--persons N] [--templates T] \
         [--genuine G] [--queries Q] [--seed S] [--data DIR] [--json]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        persons: 100_000,
        templates: 3,
        genuine: 20,
        queries: 200,
        seed: 42,
        data: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{name} needs a number");
                usage()
            })
        };
        match arg.as_str() {
            "--persons" => a.persons = num("--persons"),
            "--templates" => a.templates = num("--templates") as usize,
            "--genuine" => a.genuine = num("--genuine"),
            "--queries" => a.queries = num("--queries") as usize,
            "--seed" => a.seed = num("--seed"),
            "--data" => a.data = Some(it.next().map(PathBuf::from).unwrap_or_else(|| usage())),
            "--json" => a.json = true,
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            _ => usage(),
        }
    }
    if a.genuine == 0 || a.genuine > a.persons || a.templates == 0 || a.queries == 0 {
        eprintln!("need 1 <= --genuine <= --persons, --templates >= 1, --queries >= 1");
        usage()
    }
    a
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

struct Summary {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn summary(mut ms: Vec<f64>) -> Summary {
    ms.sort_by(f64::total_cmp);
    Summary {
        p50: percentile(&ms, 0.5),
        p95: percentile(&ms, 0.95),
        p99: percentile(&ms, 0.99),
        max: *ms.last().unwrap_or(&f64::NAN),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

impl Summary {
    fn json(&self) -> Value {
        json!({"p50_ms": self.p50, "p95_ms": self.p95, "p99_ms": self.p99, "max_ms": self.max, "mean_ms": self.mean})
    }
}

/// Genuine person `g`'s capture `k` (PNG of a synthetic palm ROI).
fn capture(gen: &Generator, g: u64, k: usize) -> Vec<u8> {
    let p = gen.identity_for(g, &[Band::Visible]);
    let s = gen.sample(g, k, 8);
    gen.render(&p, &s, Band::Visible)
        .encode_png()
        .expect("PNG encoding")
}

const BUSINESS: &str = "biz_bench_gate";

fn restrict(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod data folder");
    }
}

/// Seed `dir` unless it already holds this seeding; returns whether it seeded.
async fn seed(a: &Args, dir: &Path, engine: &Engine, gen: &Generator) -> bool {
    let marker = dir.join("bench-gate.json");
    let want = json!({"persons": a.persons, "templates": a.templates, "genuine": a.genuine, "seed": a.seed});
    if std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .is_some_and(|v| v == want)
    {
        eprintln!("reusing the seeded folder {}", dir.display());
        return false;
    }
    assert!(
        !dir.join("openpalm.db").exists(),
        "{} holds another seeding: give an empty --data folder",
        dir.display()
    );
    let keys = openpalm_server::state::load_or_create_keys(dir).expect("service keys");
    let store = SqlStore::connect(&SqlStore::sqlite_url(&dir.join("openpalm.db")))
        .await
        .expect("database");
    openpalm_server::seed::business(&store, BUSINESS, "Bench venue", openpalm_domain::now_unix())
        .await
        .expect("business");

    // Genuine persons: templates the engine extracts from captures 0..3.
    let t = Instant::now();
    let genuine: Vec<Vec<Template>> = (0..a.genuine)
        .into_par_iter()
        .map(|g| {
            (0..3)
                .map(|k| {
                    engine
                        .extract(&capture(gen, g, k), InputKind::Roi)
                        .unwrap_or_else(|e| panic!("synthetic palm {g} capture {k}: {e}"))
                        .template
                })
                .collect()
        })
        .collect();
    eprintln!(
        "extracted {} genuine persons' templates in {:.1} s",
        a.genuine,
        t.elapsed().as_secs_f64()
    );

    let layout = Layout::ENGINE_DEFAULT;
    let bar = ProgressBar::new(a.persons);
    bar.set_style(
        ProgressStyle::with_template("seeding {bar:40} {pos}/{len} persons, {per_sec}, eta {eta}")
            .expect("progress template"),
    );
    let t = Instant::now();
    let templates_of = |seq: u64| {
        let g = seq - 1;
        if g < a.genuine {
            genuine[g as usize].clone()
        } else {
            (0..a.templates as u64)
                .map(|i| indexed_template(a.seed, g * a.templates as u64 + i, &layout))
                .collect()
        }
    };
    openpalm_server::seed::persons(
        &store,
        &keys,
        BUSINESS,
        "bench",
        a.persons,
        500,
        templates_of,
        |n| bar.inc(n),
    )
    .await
    .expect("seeding");
    bar.finish_and_clear();
    eprintln!(
        "seeded {} persons ({} templates) in {:.1} s",
        a.persons,
        (a.persons - a.genuine) * a.templates as u64 + a.genuine * 3,
        t.elapsed().as_secs_f64()
    );
    store.close().await;
    std::fs::write(&marker, want.to_string()).expect("marker");
    true
}

/// A fresh API key of the bench business (written straight to the store: the seeding key
/// is never shown).
async fn api_key(dir: &Path) -> String {
    let store = SqlStore::connect(&SqlStore::sqlite_url(&dir.join("openpalm.db")))
        .await
        .expect("database");
    let secret = openpalm_server::seed::api_key(&store, BUSINESS)
        .await
        .expect("API key");
    store.close().await;
    secret
}

fn main() {
    let a = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(a));
}

async fn run(a: Args) {
    let load_at_start = loadavg();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = a.data.clone().unwrap_or_else(|| tmp.path().join("data"));
    std::fs::create_dir_all(&dir).expect("data folder");
    restrict(&dir);
    let engine = Engine::default();
    let gen = Generator::new(Kind::Roi, a.seed, Difficulty::easy()).expect("synthetic palms");
    let seeded = seed(&a, &dir, &engine, &gen).await;
    let secret = api_key(&dir).await;

    let t = Instant::now();
    let running: Running = openpalm_server::start(Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        // A bench drives one device as fast as it answers.
        limits: openpalm_server::limits::LimitSettings::unlimited(),
        data_dir: dir.clone(),
        ..Config::default()
    })
    .await
    .expect("service start");
    let start_s = t.elapsed().as_secs_f64();
    let base = format!("http://{}", running.addr);
    let templates = running.state.matcher.read().expect("matcher").len();
    eprintln!("service started in {start_s:.1} s with {templates} templates in the gallery");

    let client = Client::new(&base, Some(secret));
    let service_key = client.service_key().await.expect("service key");
    let d = client
        .register_device(DeviceKind::Gate, "bench gate")
        .await
        .expect("gate");
    let gate = Reader::new(d.device_id, d.key, service_key);

    // Probes: captures 3.. of the genuine persons (never enrolled), rendered up front.
    let keys = &running.state.keys;
    let probes: Vec<(u64, Vec<u8>)> = (0..a.queries + 3)
        .into_par_iter()
        .map(|q| {
            let g = q as u64 % a.genuine;
            let k = 3 + (q / a.genuine as usize) % 5;
            (g, capture(&gen, g, k))
        })
        .collect();

    let mut http_ms = Vec::with_capacity(a.queries);
    let mut seal_ms = Vec::with_capacity(a.queries);
    let (mut matched_right, mut matched_wrong, mut no_match, mut ambiguous, mut errors) = (0, 0, 0, 0, 0);
    let bar = ProgressBar::new(probes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("identifying {bar:40} {pos}/{len}").expect("progress template"),
    );
    for (q, (g, image)) in probes.iter().enumerate() {
        let t = Instant::now();
        let c = gate.seal(Purpose::Identify, image).expect("seal");
        let sealed = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let r = client.identify("roi", &c).await.expect("identify");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        bar.inc(1);
        if q < 3 {
            continue; // warm-up: resolves the business's scope once after start
        }
        http_ms.push(ms);
        seal_ms.push(sealed);
        if r.status != 200 {
            errors += 1;
            continue;
        }
        let want = keys.pseudonymous_id(BUSINESS, &openpalm_server::seed::person_id("bench", g + 1));
        match r.body["decision"].as_str() {
            Some("match") if r.body["person"]["pseudonymous_id"] == want.as_str() => matched_right += 1,
            Some("match") => matched_wrong += 1,
            Some("ambiguous") => ambiguous += 1,
            _ => no_match += 1,
        }
    }
    bar.finish_and_clear();
    let load_after = loadavg();

    // The same probes in process: extraction alone, then the scoped search alone.
    let mut extract_ms = Vec::new();
    let mut search_ms = Vec::new();
    for (_, image) in probes.iter().skip(3).take(50) {
        let t = Instant::now();
        let probe = engine
            .extract(image, InputKind::Roi)
            .expect("probe extraction")
            .template;
        extract_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let m = running.state.matcher.read().expect("matcher");
        let t = Instant::now();
        let found = m.identify(&probe, Some(BUSINESS), 2).expect("search");
        search_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!found.is_empty());
    }
    let (http, seal, extract, search) = (
        summary(http_ms),
        summary(seal_ms),
        summary(extract_ms),
        summary(search_ms),
    );
    eprintln!(
        "gate identification over HTTP, {} persons ({templates} templates), {} queries: \
         p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (max {:.1}, mean {:.1})",
        a.persons, a.queries, http.p50, http.p95, http.p99, http.max, http.mean
    );
    eprintln!(
        "  in process: extraction p50 {:.1} ms p95 {:.1} ms; scoped search p50 {:.1} ms p95 {:.1} ms; \
         client seal+sign p50 {:.2} ms (not in the figure)",
        extract.p50, extract.p95, search.p50, search.p95, seal.p50
    );
    eprintln!(
        "  decisions: {matched_right} right matches, {matched_wrong} wrong matches, {no_match} no match, \
         {ambiguous} ambiguous, {errors} errors; load average {load_at_start} at start, {load_after} after; \
         {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if a.json {
        println!(
            "{}",
            json!({
                "bench": "gate",
                "persons": a.persons,
                "templates": templates,
                "queries": a.queries,
                "seeded_now": seeded,
                "start_s": start_s,
                "http": http.json(),
                "extract": extract.json(),
                "scoped_search": search.json(),
                "client_seal": seal.json(),
                "decisions": {"right": matched_right, "wrong": matched_wrong, "no_match": no_match, "ambiguous": ambiguous, "errors": errors},
                "loadavg_start": load_at_start,
                "loadavg_end": load_after,
                "matcher_path": openpalm_engine::matcher::kernel_name(),
            })
        );
    }
    running.stop().await.expect("stop");
}
