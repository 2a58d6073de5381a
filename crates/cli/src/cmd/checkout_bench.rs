//! `openpalm bench checkout`: pay by palm at a store's tills, over real HTTP with sealed
//! captures, against the sandbox processor, with a large membership behind it.
//!
//! 1. Seeds a SQLite data folder (`openpalm_server::seed`): `--enrolled` members of the
//!    store. `--customers` of them are synthetic palm ROIs (`openpalm-synth`) enrolled from
//!    the templates the engine extracts from 3 captures each, and get a sandbox card each
//!    (`tok_sandbox_visa_c<n>`, linked through the API); every other member gets 3 synthetic
//!    template codes (random codes: a shortcut for speed, not accuracy).
//! 2. Starts the service (timed), registers `--tills` checkout devices.
//! 3. Each customer pays once and `--strangers` never-enrolled palms try to, shuffled, from
//!    captures never enrolled, the tills side by side in a closed loop. Per payment the point
//!    of sale opens it (`POST /v1/payments`, not timed) and the till sends the sealed palm
//!    (`POST /v1/payments/{id}/palm`): the checkout decision, timed from send to the parsed
//!    answer, is identification among the members plus the sandbox authorisation.
//! 4. `wrong_card`: an approval that charged any card but the payer's own (read from the
//!    sandbox's ledger: the token it authorised), or any approval of a stranger. The last
//!    line is one JSON object.

use super::bench::{loadavg, percentile};
use super::lane_bench::{capture, load_text, restrict, seed_folder, Seeding};
use anyhow::{ensure, Context, Result};
use openpalm_device::{Client, Reader};
use openpalm_domain::ids::{new_id, DeviceKind, Purpose};
use openpalm_engine::Engine;
use openpalm_server::seed::person_id;
use openpalm_server::{Config, Running};
use openpalm_store::SqlStore;
use openpalm_synth::{Difficulty, Generator, Kind};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

const BUSINESS: &str = "biz_bench_store";
const PREFIX: &str = "shop";

#[derive(clap::Args, Debug)]
pub struct CheckoutArgs {
    /// Members of the store (customers included).
    #[arg(long, default_value_t = 100_000)]
    enrolled: u64,
    /// Members with a synthetic palm and a sandbox card, who each pay once.
    #[arg(long, default_value_t = 200)]
    customers: u64,
    /// Never enrolled palms that try to pay.
    #[arg(long, default_value_t = 20)]
    strangers: u64,
    /// Checkout devices, each serving its queue, all at once.
    #[arg(long, default_value_t = 4)]
    tills: usize,
    /// Amount of each payment, minor units of EUR.
    #[arg(long, default_value_t = 1250)]
    amount_minor: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the seeded folder here for the next run (reused when seeded alike).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

fn token_of(g: u64) -> String {
    format!("tok_sandbox_visa_c{g}")
}

/// Seed `dir` unless it already holds this seeding. Customers are persons
/// `1..=customers` (palm `g` is person `g + 1`).
async fn seed(a: &CheckoutArgs, dir: &Path, engine: &Engine, gen: &Generator) -> Result<f64> {
    let s = Seeding {
        marker: "bench-checkout.json",
        want: json!({"enrolled": a.enrolled, "customers": a.customers, "seed": a.seed}),
        business: BUSINESS,
        business_name: "Bench store",
        prefix: PREFIX,
        enrolled: a.enrolled,
        palms: a.customers,
        seed: a.seed,
    };
    seed_folder(&s, dir, engine, gen, |seq| (seq <= a.customers).then(|| seq - 1)).await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payer {
    Customer(u64),
    Stranger(u64),
}

struct Outcome {
    payer: Payer,
    payment: String,
    ms: f64,
    server_ms: f64,
    outcome: String,
}

pub fn run(a: CheckoutArgs) -> Result<()> {
    ensure!(
        a.enrolled >= a.customers && a.customers >= 1 && a.tills >= 1,
        "need 1 <= --customers <= --enrolled and at least one till"
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(a))
}

async fn run_async(a: CheckoutArgs) -> Result<()> {
    let load_at_start = loadavg();
    let tmp = tempfile::tempdir()?;
    let dir = a.data.clone().unwrap_or_else(|| tmp.path().join("data"));
    std::fs::create_dir_all(&dir)?;
    restrict(&dir)?;
    let engine = Engine::default();
    let gen = Generator::new(Kind::Roi, a.seed, Difficulty::easy())?;
    let seed_s = seed(&a, &dir, &engine, &gen).await?;
    let secret = {
        let store = SqlStore::connect(&SqlStore::sqlite_url(&dir.join("openpalm.db"))).await?;
        let s = openpalm_server::seed::api_key(&store, BUSINESS).await?;
        store.close().await;
        s
    };
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
    let client = Client::new(&format!("http://{}", running.addr), Some(secret));
    let service_key = client.service_key().await?;
    let keys = &running.state.keys;
    let pseudonym = |g: u64| keys.pseudonymous_id(BUSINESS, &person_id(PREFIX, g + 1));
    // Each customer's card (idempotent by key: a reused folder keeps its links).
    for g in 0..a.customers {
        let r = client
            .post(
                &format!("/v1/people/{}/links", pseudonym(g)),
                &json!({"kind": "payment_token", "value": token_of(g)}),
                Some(&format!("bench-card-{g}")),
            )
            .await?;
        ensure!(
            r.status == 201 || r.status == 409,
            "linking card {g}: {:?}",
            r.body
        );
    }
    let mut tills = Vec::new();
    for i in 0..a.tills {
        let d = client
            .register_device(DeviceKind::Checkout, &format!("till {i}"))
            .await?;
        tills.push(Reader::new(d.device_id, d.key, service_key.clone()));
    }
    let mut payers: Vec<Payer> = (0..a.customers).map(Payer::Customer).collect();
    let first_stranger = a.customers + 1_000_000;
    payers.extend((first_stranger..first_stranger + a.strangers).map(Payer::Stranger));
    payers.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(a.seed));
    let images: Vec<(Payer, Vec<u8>)> = payers
        .par_iter()
        .map(|&p| {
            let g = match p {
                Payer::Customer(g) | Payer::Stranger(g) => g,
            };
            (p, capture(&gen, g, 3))
        })
        .collect();
    let per_till: Vec<Vec<(Payer, Vec<u8>)>> = (0..a.tills)
        .map(|i| images.iter().skip(i).step_by(a.tills).cloned().collect())
        .collect();
    let load_before = loadavg();
    let t = Instant::now();
    let run_id = new_id("run");
    let mut tasks = Vec::new();
    for (till, mine) in tills.into_iter().zip(per_till) {
        let client = client.clone();
        let (amount, run_id) = (a.amount_minor, run_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (n, (payer, image)) in mine.into_iter().enumerate() {
                let order = format!("{run_id}-{}-{n}", till.device_id);
                let p = client
                    .post(
                        "/v1/payments",
                        &json!({"device_id": till.device_id, "amount_minor": amount, "currency": "EUR", "order_reference": order}),
                        Some(&order),
                    )
                    .await?
                    .ok()?;
                let id = p["id"].as_str().context("payment id")?.to_string();
                let c = till.seal(Purpose::Identify, &image)?;
                let sent = Instant::now();
                let r = client.pay(&id, "roi", &c).await?;
                let ms = sent.elapsed().as_secs_f64() * 1e3;
                let v = r.ok()?;
                out.push(Outcome {
                    payer,
                    payment: id,
                    ms,
                    server_ms: v["decision_ms"].as_f64().unwrap_or(f64::NAN),
                    outcome: v["outcome"].as_str().unwrap_or("").to_string(),
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

    let charged: HashMap<String, String> = running
        .state
        .sandbox
        .ledger()
        .into_iter()
        .map(|r| (r.reference, r.card_token))
        .collect();
    let mut ms: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    let mut server_ms: Vec<f64> = outcomes.iter().map(|o| o.server_ms).collect();
    server_ms.sort_by(f64::total_cmp);
    let (mut approved, mut wrong_card, mut customers_approved) = (0u64, 0u64, 0u64);
    let mut by: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for o in &outcomes {
        let who = match o.payer {
            Payer::Customer(_) => "customer",
            Payer::Stranger(_) => "stranger",
        };
        *by.entry(who.into())
            .or_default()
            .entry(o.outcome.clone())
            .or_default() += 1;
        if o.outcome != "approved" {
            continue;
        }
        approved += 1;
        match (o.payer, charged.get(&o.payment)) {
            (Payer::Customer(g), Some(tok)) if *tok == token_of(g) => customers_approved += 1,
            _ => wrong_card += 1,
        }
    }
    let n = outcomes.len();
    let report = json!({
        "enrolled": a.enrolled, "customers": a.customers, "strangers": a.strangers, "tills": a.tills,
        "templates": templates, "decisions": n,
        "p50_ms": percentile(&ms, 0.5), "p95_ms": percentile(&ms, 0.95), "p99_ms": percentile(&ms, 0.99),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
        "server_decision_p50_ms": percentile(&server_ms, 0.5), "server_decision_p95_ms": percentile(&server_ms, 0.95),
        "decisions_per_s": n as f64 / wall,
        "approved": approved, "wrong_card": wrong_card, "customers_approved_first_try": customers_approved,
        "payment_threshold": running.state.config.payment_threshold,
        "outcomes": by,
        "seed_s": seed_s, "start_s": start_s,
        "loadavg": {"start": load_at_start, "before": load_before, "after": load_after},
    });
    eprintln!(
        "{n} checkout decisions at {} tills: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, {:.1}/s; approved {approved} ({customers_approved}/{} customers at the first try), wrong card {wrong_card}; load {} -> {}",
        a.tills,
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 0.99),
        n as f64 / wall,
        a.customers,
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
