//! Soak: mixed traffic with abusive clients mixed in, against the service with its default
//! limits, over real HTTP on loopback, for a bounded time.
//!
//! ```sh
//! cargo bench -p openpalm-server --bench soak -- --seconds 600
//! ```
//!
//! Well-behaved clients (business "Venue", its own API key, from 127.0.0.1): a kiosk enrolling
//! a new synthetic person every 10 s, two gates identifying enrolled people once a second each,
//! and a back office reading devices and people's links twice a second. Abusive clients: a
//! second business flooding `GET /v1/devices` with its key as fast as answers come (from
//! 127.0.0.2), one of its gates flooding identifications, and a client guessing API keys
//! (from 127.0.0.3). At the end: every well-behaved request must have succeeded (any other
//! answer is counted and printed, and the bench exits non-zero), the abusive ones' 429s are
//! counted, and the process's resident memory is sampled every 10 s (first and last sample
//! after a warm-up minute, and the highest). The last line is one JSON object.

use indicatif::{ProgressBar, ProgressStyle};
use openpalm_device::{Client, Reader};
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_server::{Config, Running};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    limited: AtomicU64,
    other: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn record(&self, status: u16, code: &str) {
        if (200..300).contains(&status) || (status == 409 && code == "already_enrolled") {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else if status == 429 {
            self.limited.fetch_add(1, Ordering::Relaxed);
        } else {
            *self
                .other
                .lock()
                .unwrap()
                .entry(format!("{status} {code}"))
                .or_default() += 1;
        }
    }
    fn json(&self) -> Value {
        json!({
            "ok": self.ok.load(Ordering::Relaxed),
            "rate_limited": self.limited.load(Ordering::Relaxed),
            "other": *self.other.lock().unwrap(),
        })
    }
    fn others(&self) -> u64 {
        self.other.lock().unwrap().values().sum()
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn palm(g: &Generator, identity: u64, k: usize) -> Vec<u8> {
    let p = g.identity_for(identity, &[Band::Visible]);
    let s = g.sample(identity, k, 8);
    g.render(&p, &s, Band::Visible).encode_png().unwrap()
}

async fn business(base: &str, admin: &str, name: &str) -> (String, Client) {
    let a = Client::new(base, Some(admin.to_string()))
        .post("/v1/businesses", &json!({"name": name}), None)
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{:?}", a.body);
    let key = a.body["api_key"]["secret"].as_str().unwrap().to_string();
    (key.clone(), Client::new(base, Some(key)))
}

async fn reader(c: &Client, kind: DeviceKind, site: &str) -> Reader {
    let sk = c.service_key().await.unwrap();
    let d = c.register_device(kind, site).await.unwrap();
    Reader::new(d.device_id, d.key, sk)
}

fn from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn main() {
    let mut seconds = 600u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(600),
            "--bench" => {}
            other => {
                eprintln!(
                    "usage: cargo bench -p openpalm-server --bench soak -- [--seconds N] (unknown {other})"
                );
                std::process::exit(2);
            }
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let code = rt.block_on(run(seconds));
    std::process::exit(code);
}

async fn run(seconds: u64) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let admin = "soak-admin-token-0123456789abcdef0123456789".to_string();
    let running: Running = openpalm_server::start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        admin_token: Some(admin.clone()),
        // Default limits: the point of the soak.
        ..Config::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let g = Arc::new(Generator::new(Kind::Roi, 5, Difficulty::easy()).unwrap());

    let (_, venue) = business(&base, &admin, "Venue").await;
    let kiosk = Arc::new(reader(&venue, DeviceKind::Kiosk, "hall").await);
    let gates = [
        Arc::new(reader(&venue, DeviceKind::Gate, "north").await),
        Arc::new(reader(&venue, DeviceKind::Gate, "south").await),
    ];
    let (abuser_key, abuser) = business(&base, &admin, "Abuser").await;
    let abuser_gate = Arc::new(reader(&abuser, DeviceKind::Gate, "flood").await);

    let good = Arc::new(Tally::default());
    let bad_key = Arc::new(Tally::default());
    let bad_device = Arc::new(Tally::default());
    let bad_auth = Arc::new(Tally::default());
    let enrolled = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();

    // Kiosk: a new person every 10 s.
    {
        let (c, k, g, t, e, stop) = (
            venue.clone(),
            kiosk.clone(),
            g.clone(),
            good.clone(),
            enrolled.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let mut id = 1000u64;
            while !stop.load(Ordering::Relaxed) {
                let caps = (0..3)
                    .map(|i| k.seal(Purpose::Enroll, &palm(&g, id, i)).unwrap())
                    .collect();
                let a = c
                    .enroll(&format!("soak-{id}"), 1, "roi", &[(HandSide::Left, caps)], &[])
                    .await
                    .unwrap();
                t.record(a.status, a.code().unwrap_or(""));
                if a.status == 201 {
                    e.fetch_add(1, Ordering::Relaxed);
                }
                id += 1;
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
    }
    // Gates: once a second each, a person enrolled so far (or a stranger before anyone is).
    for (n, gate) in gates.iter().enumerate() {
        let (c, gate, g, t, e, stop) = (
            venue.clone(),
            gate.clone(),
            g.clone(),
            good.clone(),
            enrolled.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let who = 1000 + (k as u64 % e.load(Ordering::Relaxed).max(1));
                let c2 = gate
                    .seal(Purpose::Identify, &palm(&g, who, 3 + (k + n) % 5))
                    .unwrap();
                let a = c.identify("roi", &c2).await.unwrap();
                t.record(a.status, a.code().unwrap_or(""));
                k += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    // Back office: twice a second.
    {
        let (c, t, stop) = (venue.clone(), good.clone(), stop.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let a = c.get("/v1/devices").await.unwrap();
                t.record(a.status, a.code().unwrap_or(""));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    // Abusive: one key flooding reads, from 127.0.0.2.
    for _ in 0..2 {
        let (base, key, t, stop) = (base.clone(), abuser_key.clone(), bad_key.clone(), stop.clone());
        tasks.spawn(async move {
            let http = from("127.0.0.2");
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http
                    .get(format!("{base}/v1/devices"))
                    .bearer_auth(&key)
                    .send()
                    .await
                {
                    let s = r.status().as_u16();
                    t.record(s, "");
                }
            }
        });
    }
    // Abusive: a gate flooding identifications with the same (prepared) image.
    {
        let (c, gate, g, t, stop) = (
            abuser.clone(),
            abuser_gate.clone(),
            g.clone(),
            bad_device.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let img = palm(&g, 7, 0);
            while !stop.load(Ordering::Relaxed) {
                let cap = gate.seal(Purpose::Identify, &img).unwrap();
                if let Ok(a) = c.identify("roi", &cap).await {
                    t.record(a.status, a.code().unwrap_or(""));
                }
            }
        });
    }
    // Abusive: guessing API keys from 127.0.0.3.
    {
        let (base, t, stop) = (base.clone(), bad_auth.clone(), stop.clone());
        tasks.spawn(async move {
            let http = from("127.0.0.3");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let guess = format!("op_live_{n:064x}");
                if let Ok(r) = http
                    .get(format!("{base}/v1/devices"))
                    .bearer_auth(guess)
                    .send()
                    .await
                {
                    t.record(r.status().as_u16(), "");
                }
                n += 1;
            }
        });
    }

    let bar = ProgressBar::new(seconds);
    bar.set_style(ProgressStyle::with_template("soak {bar:40} {pos}/{len} s {msg}").unwrap());
    let started = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = started.elapsed().as_secs();
        bar.set_position(s.min(seconds));
        if s.is_multiple_of(10) {
            samples.push((s, rss_kib()));
            bar.set_message(format!(
                "rss {} MiB, good {} ok / {} other, abusive 429s {}",
                rss_kib() / 1024,
                good.ok.load(Ordering::Relaxed),
                good.others(),
                bad_key.limited.load(Ordering::Relaxed)
                    + bad_device.limited.load(Ordering::Relaxed)
                    + bad_auth.limited.load(Ordering::Relaxed)
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    bar.finish();
    running.stop().await.unwrap();
    let warm: Vec<&(u64, u64)> = samples
        .iter()
        .filter(|(s, _)| *s >= 60.min(seconds / 2))
        .collect();
    let first = warm.first().map(|s| s.1).unwrap_or(0);
    let last = warm.last().map(|s| s.1).unwrap_or(0);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let out = json!({
        "seconds": seconds,
        "enrolled": enrolled.load(Ordering::Relaxed),
        "well_behaved": good.json(),
        "abusive_key_flood": bad_key.json(),
        "abusive_device_flood": bad_device.json(),
        "abusive_key_guessing": bad_auth.json(),
        "rss_kib_after_warmup_first": first,
        "rss_kib_last": last,
        "rss_kib_peak": peak,
    });
    println!("{out}");
    if good.others() > 0 {
        eprintln!("soak: well-behaved clients saw errors");
        return 1;
    }
    0
}
