//! `openpalm bench lane`: a dedicated palm lane at a venue, over real HTTP with sealed
//! captures, with a large enrolled population behind it.
//!
//! 1. Seeds a SQLite data folder through the store and the service's own encryption
//!    (`openpalm_server::seed`): `--enrolled` persons, every one a member of the ticketing
//!    business (the worst case for a lane: an arrival who holds no ticket is searched among
//!    all of them). `--genuine` ticket holders and `--others` members without a ticket are
//!    synthetic palm ROIs (`openpalm-synth`) enrolled from the templates the engine extracts
//!    from 3 captures each; every other person gets 3 synthetic template codes
//!    (`openpalm_gallery::synthetic`: random codes, a shortcut for speed, not accuracy).
//! 2. Starts the service (timed: start-up decrypts every template), registers `--gates` gate
//!    devices through the API, creates an open event with them as entry gates, and issues
//!    `--holders` tickets through `POST /v1/events/{id}/tickets` (5000 per call).
//! 3. Arrivals: each genuine holder once, each member without a ticket once, `--strangers`
//!    never-enrolled palms once, shuffled, from captures never enrolled, in a closed loop per
//!    gate (the gates run side by side). Each capture is sealed and signed just before it is
//!    sent (not timed); the time is from send to the parsed answer.
//! 4. `wrong_admits`: any admission of an arrival who holds no ticket, or on a ticket that is
//!    not the arrival's own. The last line is one JSON object.

use super::bench::{loadavg, percentile};
use anyhow::{ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use openpalm_device::{Client, Reader};
use openpalm_domain::ids::{DeviceKind, Purpose};
use openpalm_engine::{Engine, InputKind, Template};
use openpalm_gallery::synthetic::indexed_template;
use openpalm_gallery::Layout;
use openpalm_server::seed::person_id;
use openpalm_server::{Config, Running};
use openpalm_store::SqlStore;
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const BUSINESS: &str = "biz_bench_lane";
const PREFIX: &str = "lane";

#[derive(clap::Args, Debug)]
pub struct LaneArgs {
    /// Ticket holders of the event.
    #[arg(long, default_value_t = 20_000)]
    holders: u64,
    /// Persons enrolled (all members of the ticketing business), holders included.
    #[arg(long, default_value_t = 1_000_000)]
    enrolled: u64,
    /// Gate devices of the lane, each sending its arrivals in turn, all at once.
    #[arg(long, default_value_t = 8)]
    gates: usize,
    /// Ticket holders with a synthetic palm (the others have template codes only).
    #[arg(long, default_value_t = 240)]
    genuine: u64,
    /// Members without a ticket who come to the lane (synthetic palms).
    #[arg(long, default_value_t = 20)]
    others: u64,
    /// Never enrolled palms that come to the lane.
    #[arg(long, default_value_t = 20)]
    strangers: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only ticket holders come to the lane (the members without a ticket and the strangers
    /// stay away): shows what the lane costs without the searches among every member.
    #[arg(long)]
    holders_only: bool,
    /// Keep the seeded folder here for the next run (reused when seeded with the same
    /// `--enrolled`, `--holders`, `--genuine`, `--others` and `--seed`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Synthetic palm `g`'s capture `k` as PNG.
pub(crate) fn capture(gen: &Generator, g: u64, k: usize) -> Vec<u8> {
    let p = gen.identity_for(g, &[Band::Visible]);
    let s = gen.sample(g, k, 8);
    gen.render(&p, &s, Band::Visible)
        .encode_png()
        .expect("PNG encoding")
}

pub(crate) fn restrict(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The synthetic palm of person `seq`, if it has one: holders `1..=genuine` have palms
/// `0..genuine`; the members without a ticket, persons `holders + 1..=holders + others`,
/// have palms `genuine..genuine + others`.
fn palm_of(a: &LaneArgs, seq: u64) -> Option<u64> {
    if (1..=a.genuine).contains(&seq) {
        Some(seq - 1)
    } else if (a.holders + 1..=a.holders + a.others).contains(&seq) {
        Some(a.genuine + seq - a.holders - 1)
    } else {
        None
    }
}

/// The person of synthetic palm `g` (the inverse of [`palm_of`]).
fn seq_of(a: &LaneArgs, g: u64) -> u64 {
    if g < a.genuine {
        g + 1
    } else {
        a.holders + 1 + g - a.genuine
    }
}

/// What a bench seeds: a business, `enrolled` persons `PREFIX_1..`, of whom those with a
/// synthetic palm (`palm_of(seq)`) are enrolled from 3 extracted captures each and the rest
/// from synthetic template codes.
pub(crate) struct Seeding<'a> {
    /// File in the folder that names the seeding, for reuse.
    pub marker: &'a str,
    pub want: Value,
    pub business: &'a str,
    pub business_name: &'a str,
    pub prefix: &'a str,
    pub enrolled: u64,
    pub palms: u64,
    pub seed: u64,
}

/// Seed `dir` unless it already holds this seeding; the seconds it took (0 when reused).
pub(crate) async fn seed_folder(
    s: &Seeding<'_>,
    dir: &Path,
    engine: &Engine,
    gen: &Generator,
    palm_of: impl Fn(u64) -> Option<u64> + Sync,
) -> Result<f64> {
    let marker = dir.join(s.marker);
    if std::fs::read_to_string(&marker)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|v| v == s.want)
    {
        eprintln!("reusing the seeded folder {}", dir.display());
        return Ok(0.0);
    }
    ensure!(
        !dir.join("openpalm.db").exists(),
        "{} holds another seeding: give an empty --data folder",
        dir.display()
    );
    let keys = openpalm_server::state::load_or_create_keys(dir).context("service keys")?;
    let store = SqlStore::connect(&SqlStore::sqlite_url(&dir.join("openpalm.db"))).await?;
    openpalm_server::seed::business(&store, s.business, s.business_name, openpalm_domain::now_unix()).await?;
    let t = Instant::now();
    let genuine: Vec<Vec<Template>> = (0..s.palms)
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
    let layout = Layout::ENGINE_DEFAULT;
    let bar = ProgressBar::new(s.enrolled);
    bar.set_style(
        ProgressStyle::with_template("seeding {bar:40} {pos}/{len} persons, {per_sec}, eta {eta}")
            .context("progress template")?,
    );
    let templates_of = |seq: u64| match palm_of(seq) {
        Some(g) => genuine[g as usize].clone(),
        None => (0..3)
            .map(|i| indexed_template(s.seed, seq * 3 + i, &layout))
            .collect(),
    };
    openpalm_server::seed::persons(
        &store,
        &keys,
        s.business,
        s.prefix,
        s.enrolled,
        2000,
        templates_of,
        |n| bar.inc(n),
    )
    .await?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("seeded {} persons in {secs:.1} s", s.enrolled);
    store.close().await;
    std::fs::write(&marker, s.want.to_string())?;
    Ok(secs)
}

/// Seed `dir` for the lane unless it already holds this seeding.
async fn seed(a: &LaneArgs, dir: &Path, engine: &Engine, gen: &Generator) -> Result<f64> {
    let s = Seeding {
        marker: "bench-lane.json",
        want: json!({"enrolled": a.enrolled, "holders": a.holders, "genuine": a.genuine, "others": a.others, "seed": a.seed}),
        business: BUSINESS,
        business_name: "Bench tickets",
        prefix: PREFIX,
        enrolled: a.enrolled,
        palms: a.genuine + a.others,
        seed: a.seed,
    };
    seed_folder(&s, dir, engine, gen, |seq| palm_of(a, seq)).await
}

/// A fresh API key of the bench business, written to the store.
async fn api_key(dir: &Path) -> Result<String> {
    let store = SqlStore::connect(&SqlStore::sqlite_url(&dir.join("openpalm.db"))).await?;
    let secret = openpalm_server::seed::api_key(&store, BUSINESS).await?;
    store.close().await;
    Ok(secret)
}

/// Who comes to the lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arrival {
    /// A ticket holder (synthetic palm `g`, person `g + 1`).
    Holder(u64),
    /// A member without a ticket.
    Member(u64),
    /// Never enrolled.
    Stranger(u64),
}

struct Outcome {
    arrival: Arrival,
    ms: f64,
    server_ms: f64,
    decision: String,
    reason: String,
    pseudonym: Option<String>,
}

pub fn run(a: LaneArgs) -> Result<()> {
    ensure!(
        a.holders >= a.genuine && a.enrolled >= a.holders + a.others,
        "need --genuine <= --holders and --holders + --others <= --enrolled"
    );
    ensure!(
        a.gates >= 1 && a.genuine >= 1,
        "need at least one gate and one genuine holder"
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(a))
}

async fn run_async(a: LaneArgs) -> Result<()> {
    let load_at_start = loadavg();
    // Removed when dropped, at the end, unless `--data` keeps the seeded folder elsewhere.
    let tmp = tempfile::tempdir()?;
    let dir = a.data.clone().unwrap_or_else(|| tmp.path().join("data"));
    std::fs::create_dir_all(&dir)?;
    restrict(&dir)?;
    let engine = Engine::default();
    let gen = Generator::new(Kind::Roi, a.seed, Difficulty::easy())?;
    let seed_s = seed(&a, &dir, &engine, &gen).await?;
    let secret = api_key(&dir).await?;

    let t = Instant::now();
    let running: Running = openpalm_server::start(Config {
        listen: "127.0.0.1:0".parse()?,
        // A bench drives one device as fast as it answers.
        limits: openpalm_server::limits::LimitSettings::unlimited(),
        data_dir: dir.clone(),
        ..Config::default()
    })
    .await?;
    let start_s = t.elapsed().as_secs_f64();
    let templates = running
        .state
        .matcher
        .read()
        .map_err(|_| anyhow::anyhow!("matcher lock"))?
        .len();
    eprintln!("service started in {start_s:.1} s with {templates} templates in the gallery");
    let base = format!("http://{}", running.addr);
    let client = Client::new(&base, Some(secret));
    let service_key = client.service_key().await?;
    let mut gates = Vec::new();
    for i in 0..a.gates {
        let d = client
            .register_device(DeviceKind::Gate, &format!("lane gate {i}"))
            .await?;
        gates.push(Reader::new(d.device_id, d.key, service_key.clone()));
    }
    let now = openpalm_domain::now_unix();
    let ev = client
        .post(
            "/v1/events",
            &json!({
                "name": "Bench concert", "site": "bench arena",
                "starts_at": now + 600, "ends_at": now + 4 * 3600, "doors_open_at": now - 60,
                "gates": gates.iter().map(|g| g.device_id.clone()).collect::<Vec<_>>(),
            }),
            Some(&openpalm_domain::ids::new_id("idem")),
        )
        .await?
        .ok()?;
    let event = ev["id"].as_str().context("event id")?.to_string();

    // Tickets through the API, 5000 per call, by each holder's pseudonymous ID.
    let keys = &running.state.keys;
    let t = Instant::now();
    let mut issued = 0u64;
    let mut own_ticket: HashMap<String, String> = HashMap::new();
    for chunk in (1..=a.holders).collect::<Vec<_>>().chunks(5000) {
        let tickets: Vec<Value> = chunk
            .iter()
            .map(|&seq| {
                json!({"holder": {"pseudonymous_id": keys.pseudonymous_id(BUSINESS, &person_id(PREFIX, seq))},
                       "ticket_type": "standard", "external_ref": format!("T-{seq}")})
            })
            .collect();
        let r = client
            .post(
                &format!("/v1/events/{event}/tickets"),
                &json!({ "tickets": tickets }),
                Some(&openpalm_domain::ids::new_id("idem")),
            )
            .await?
            .ok()?;
        issued += r["issued"].as_u64().unwrap_or(0);
        for t in r["tickets"].as_array().into_iter().flatten() {
            if let (Some(p), Some(id)) = (t["holder"]["pseudonymous_id"].as_str(), t["id"].as_str()) {
                own_ticket.insert(p.to_string(), id.to_string());
            }
        }
    }
    let tickets_s = t.elapsed().as_secs_f64();
    ensure!(issued == a.holders, "issued {issued} of {} tickets", a.holders);
    eprintln!("issued {issued} tickets in {tickets_s:.1} s");

    // Arrivals, rendered up front from captures never enrolled.
    let mut arrivals: Vec<Arrival> = (0..a.genuine).map(Arrival::Holder).collect();
    if !a.holders_only {
        arrivals.extend((a.genuine..a.genuine + a.others).map(Arrival::Member));
        let first_stranger = a.genuine + a.others + 1_000_000;
        arrivals.extend((first_stranger..first_stranger + a.strangers).map(Arrival::Stranger));
    }
    arrivals.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(a.seed));
    let images: Vec<(Arrival, Vec<u8>)> = arrivals
        .par_iter()
        .map(|&arr| {
            let g = match arr {
                Arrival::Holder(g) | Arrival::Member(g) | Arrival::Stranger(g) => g,
            };
            (arr, capture(&gen, g, 3))
        })
        .collect();
    let per_gate: Vec<Vec<(Arrival, Vec<u8>)>> = (0..a.gates)
        .map(|i| images.iter().skip(i).step_by(a.gates).cloned().collect())
        .collect();
    let load_before = loadavg();
    let t = Instant::now();
    let event = Arc::new(event);
    let mut tasks = Vec::new();
    for (gate, mine) in gates.into_iter().zip(per_gate) {
        let (client, event) = (client.clone(), event.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (arrival, image) in mine {
                let c = gate.seal(Purpose::Identify, &image)?;
                let sent = Instant::now();
                let r = client.enter(&event, "roi", &c).await?;
                let ms = sent.elapsed().as_secs_f64() * 1e3;
                let v = r.ok()?;
                out.push(Outcome {
                    arrival,
                    ms,
                    server_ms: v["decision_ms"].as_f64().unwrap_or(f64::NAN),
                    decision: v["decision"].as_str().unwrap_or("").to_string(),
                    reason: v["reason"].as_str().unwrap_or("").to_string(),
                    pseudonym: v["person"]["pseudonymous_id"].as_str().map(str::to_string),
                });
            }
            anyhow::Ok(out)
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await??);
    }
    let wall = t.elapsed().as_secs_f64();
    let load_after = loadavg();

    let mut ms: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    let mut server_ms: Vec<f64> = outcomes.iter().map(|o| o.server_ms).collect();
    server_ms.sort_by(f64::total_cmp);
    let mut admitted = 0;
    let mut wrong_admits = 0;
    let mut holders_admitted = 0;
    let mut reasons: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for o in &outcomes {
        let (who, g) = match o.arrival {
            Arrival::Holder(g) => ("holder", g),
            Arrival::Member(g) => ("member_without_ticket", g),
            Arrival::Stranger(g) => ("stranger", g),
        };
        let label = if o.decision == "admit" {
            "admit".to_string()
        } else {
            o.reason.clone()
        };
        *reasons.entry(who.into()).or_default().entry(label).or_default() += 1;
        if o.decision != "admit" {
            continue;
        }
        admitted += 1;
        let own = keys.pseudonymous_id(BUSINESS, &person_id(PREFIX, seq_of(&a, g)));
        match o.arrival {
            Arrival::Holder(_)
                if o.pseudonym.as_deref() == Some(own.as_str()) && own_ticket.contains_key(&own) =>
            {
                holders_admitted += 1
            }
            _ => wrong_admits += 1,
        }
    }
    let n = outcomes.len();
    let report = json!({
        "holders": a.holders, "enrolled": a.enrolled, "gates": a.gates, "templates": templates,
        "decisions": n,
        "p50_ms": percentile(&ms, 0.5), "p95_ms": percentile(&ms, 0.95), "p99_ms": percentile(&ms, 0.99),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
        "server_decision_p50_ms": percentile(&server_ms, 0.5), "server_decision_p95_ms": percentile(&server_ms, 0.95),
        "decisions_per_s": n as f64 / wall,
        "admitted": admitted, "wrong_admits": wrong_admits,
        "holders_admitted_first_try": holders_admitted, "genuine_holders": a.genuine,
        "outcomes": reasons,
        "seed_s": seed_s, "start_s": start_s, "tickets_s": tickets_s,
        "loadavg": {"start": load_at_start, "before": load_before, "after": load_after},
    });
    eprintln!(
        "{n} decisions at {} gates: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, {:.1} decisions/s; admitted {admitted} ({holders_admitted}/{} genuine holders), wrong admits {wrong_admits}; load {} -> {}",
        a.gates,
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 0.99),
        n as f64 / wall,
        a.genuine,
        load_text(load_before),
        load_text(load_after)
    );
    eprintln!("outcomes: {}", serde_json::to_string(&report["outcomes"])?);
    running.stop().await?;
    if a.json {
        println!("{report}");
    }
    Ok(())
}

pub(crate) fn load_text(l: Option<[f64; 3]>) -> String {
    l.map_or_else(|| "unknown".into(), |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"))
}
