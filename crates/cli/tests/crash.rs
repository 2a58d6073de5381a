//! Crash test: `openpalm serve` is killed with SIGKILL at random points of a stream of
//! enrollments, links and erasures, again and again. After each kill the SQLite store
//! (opened while the service is down) and, after each restart, the API must show every
//! acknowledged change, nothing half-written (a person without templates or without
//! their membership, a link without its person), and nothing done twice: a request whose
//! answer was lost is sent again with the same `Idempotency-Key` and gets the first
//! answer, never a second person.
//!
//! Reproduce a run with the seed it prints: `OPENPALM_CRASH_SEED=N cargo test --release -p
//! openpalm --test crash`; `OPENPALM_CRASH_CYCLES` sets the number of kills (default 20).

use openpalm_device::{Answer, Client, DeviceError, Reader};
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_store::{PersonStore, SqlStore, Store};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "crash-test-admin-token-0123456789abcdef0123";
const CAPTURES: usize = 3;

/// `openpalm serve` on an ephemeral port over `data`; returns it with its base URL.
fn serve(data: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_openpalm"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_clear()
        .env("OPENPALM_ADMIN_TOKEN", ADMIN)
        // The stream enrolls through one kiosk far faster than people at a kiosk could; the
        // limits are tested on their own (crates/server/tests/limits.rs).
        .env("OPENPALM_LIMIT_ENROLL_PER_KIOSK", "0/0")
        .env("OPENPALM_LIMIT_DEVICE", "0/0")
        .env("OPENPALM_LIMIT_API_KEY", "0/0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openpalm serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the address from the start line, then keeps draining the pipe.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(addr));
                }
            } else if line.contains("error") {
                if let Some(tx) = tx.as_ref() {
                    let _ = tx.send(Err(line));
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(addr)) => (child, format!("http://{addr}")),
        other => {
            let _ = child.kill();
            panic!("openpalm serve did not start: {other:?}");
        }
    }
}

fn kill_9(mut child: Child) {
    // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

/// PNG captures of synthetic palm `identity`.
fn palm(g: &Generator, identity: u64) -> Vec<Vec<u8>> {
    let p = g.identity_for(identity, &[Band::Visible]);
    (0..CAPTURES)
        .map(|k| {
            let s = g.sample(identity, k, 8);
            g.render(&p, &s, Band::Visible).encode_png().unwrap()
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Person {
    enroll_key: String,
    captures: Vec<SealedCaptureWire>,
    pid: String,
    erased: bool,
    /// Link ID -> member ID.
    links: BTreeMap<String, String>,
}

/// A change whose answer was lost in a kill: it may or may not have been made.
#[derive(Clone, Debug)]
enum InDoubt {
    Enroll {
        key: String,
        captures: Vec<SealedCaptureWire>,
    },
    Link {
        person: usize,
        key: String,
        value: String,
    },
    Erase {
        person: usize,
    },
}

#[derive(Default)]
struct Model {
    people: Vec<Person>,
    in_doubt: Vec<InDoubt>,
    /// Acknowledged changes, counted once each.
    acknowledged: usize,
    /// Enrollments refused for good after a kill (their captures' nonces were recorded but
    /// nothing else: the retry is answered `replayed_nonce`).
    lost_before_commit: usize,
    /// Changes cut by a kill and sent again after the restart.
    retried: usize,
    /// Fresh synthetic palms refused as `already_enrolled` (look-alikes of enrolled ones).
    look_alikes: usize,
}

struct Api {
    biz: Client,
    admin: Client,
    business_id: String,
    consent: i64,
}

impl Api {
    async fn enroll(&self, key: &str, captures: &[SealedCaptureWire]) -> Result<Answer, DeviceError> {
        self.biz
            .enroll(
                key,
                self.consent,
                "roi",
                &[(HandSide::Left, captures.to_vec())],
                &[],
            )
            .await
    }
    async fn link(&self, pid: &str, key: &str, value: &str) -> Result<Answer, DeviceError> {
        self.biz
            .post(
                &format!("/v1/people/{pid}/links"),
                &json!({"kind": "member_id", "value": value}),
                Some(key),
            )
            .await
    }
    async fn erase(&self, pid: &str) -> Result<Answer, DeviceError> {
        self.admin
            .post(
                "/v1/operator/erasures",
                &json!({"business_id": self.business_id, "pseudonymous_id": pid, "verification": "crash test"}),
                None,
            )
            .await
    }
}

fn expect(a: &Answer, status: u16, what: &str) -> Value {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    a.body.clone()
}

/// After a restart: send every change in doubt again, the same request under the same key.
async fn settle(api: &Api, model: &Mutex<Model>) {
    let pending = std::mem::take(&mut model.lock().unwrap().in_doubt);
    model.lock().unwrap().retried += pending.len();
    for op in pending {
        match op {
            InDoubt::Enroll { key, captures } => {
                let a = api.enroll(&key, &captures).await.unwrap();
                let mut m = model.lock().unwrap();
                if a.status == 201 {
                    let pid = a.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
                    assert!(
                        m.people.iter().all(|p| p.pid != pid),
                        "retried enrollment answered with another's person"
                    );
                    m.people.push(Person {
                        enroll_key: key,
                        captures,
                        pid,
                        erased: false,
                        links: BTreeMap::new(),
                    });
                    m.acknowledged += 1;
                } else {
                    // Not made: only its nonces were kept (so the reader must capture again).
                    assert_eq!(a.code(), Some("replayed_nonce"), "retried enrollment: {}", a.body);
                    m.lost_before_commit += 1;
                }
            }
            InDoubt::Link { person, key, value } => {
                let pid = model.lock().unwrap().people[person].pid.clone();
                let a = api.link(&pid, &key, &value).await.unwrap();
                let body = expect(&a, 201, "retried link");
                assert_eq!(body["value"], value, "{body}");
                let mut m = model.lock().unwrap();
                m.people[person]
                    .links
                    .insert(body["id"].as_str().unwrap().to_string(), value);
                m.acknowledged += 1;
            }
            InDoubt::Erase { person } => {
                let pid = model.lock().unwrap().people[person].pid.clone();
                let a = api.erase(&pid).await.unwrap();
                assert!(a.status == 200 || a.status == 404, "retried erasure: {}", a.body);
                let mut m = model.lock().unwrap();
                m.people[person].erased = true;
                m.people[person].links.clear();
                m.acknowledged += 1;
            }
        }
    }
}

/// While the service is down: the store holds every acknowledged change and nothing
/// half-written; a change in doubt (cut by the kill) is there whole or not at all.
async fn check_store(url: &str, business_id: &str, model: &Model) -> usize {
    let store = SqlStore::connect(url).await.expect("open the store");
    let counts: BTreeMap<&str, i64> = store.table_counts().await.unwrap().into_iter().collect();
    let mut doubt_enrolls = 0i64;
    let mut doubt_erase = BTreeSet::new();
    let mut doubt_links: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for op in &model.in_doubt {
        match op {
            InDoubt::Enroll { .. } => doubt_enrolls += 1,
            InDoubt::Erase { person } => {
                doubt_erase.insert(*person);
            }
            InDoubt::Link { person, value, .. } => {
                doubt_links.entry(*person).or_default().insert(value.clone());
            }
        }
    }
    // Erased people stay as tombstones (their data key shredded): every enrollment ever
    // made is one row, so a retried enrollment that made a second person shows here.
    let total = model.people.len() as i64;
    assert!(
        (total..=total + doubt_enrolls).contains(&counts["people"]),
        "{} people rows for {total} acknowledged enrollments, in doubt: {:?}",
        counts["people"],
        model.in_doubt
    );
    let stored_people = store.people().await.unwrap();
    let people = stored_people.len() as i64;
    let live = model.people.iter().filter(|p| !p.erased).count() as i64;
    assert!(
        (live - doubt_erase.len() as i64..=live + doubt_enrolls).contains(&people),
        "{people} live people in the store, {live} acknowledged, in doubt: {:?}",
        model.in_doubt
    );
    // Nothing half-written: every live person has their membership and all their templates,
    // and an erased one keeps none.
    assert_eq!(counts["memberships"], people, "memberships");
    assert_eq!(counts["templates"], people * CAPTURES as i64, "templates");
    for sp in &stored_people {
        assert_eq!(
            sp.templates.len(),
            CAPTURES,
            "person {} with a partial template set",
            sp.person.id
        );
    }
    let mut checked = 0;
    let mut links_seen = 0;
    for (i, p) in model.people.iter().enumerate() {
        let m = store.membership_by_pseudonym(business_id, &p.pid).await.unwrap();
        if p.erased {
            assert!(m.is_none(), "acknowledged erasure of {} undone", p.pid);
            checked += 1;
            continue;
        }
        let Some(m) = m else {
            assert!(doubt_erase.contains(&i), "acknowledged enrollment {} lost", p.pid);
            continue;
        };
        let templates: u64 = store
            .template_counts(&m.person_id)
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
        assert_eq!(templates, CAPTURES as u64, "templates of {}", p.pid);
        let stored = store.links(business_id, &m.person_id).await.unwrap();
        links_seen += stored.len();
        let ids: BTreeSet<&str> = stored.iter().map(|l| l.id.as_str()).collect();
        for id in p.links.keys() {
            assert!(
                ids.contains(id.as_str()),
                "acknowledged link {id} of {} lost",
                p.pid
            );
        }
        let empty = BTreeSet::new();
        let maybe = doubt_links.get(&i).unwrap_or(&empty);
        for l in &stored {
            assert!(
                p.links.contains_key(&l.id) || maybe.contains(&l.value),
                "link {} of {} was never asked for",
                l.id,
                p.pid
            );
        }
        checked += 1 + p.links.len();
    }
    // No link of anyone else (or of no one).
    assert_eq!(counts["links"], links_seen as i64, "links");
    store.close().await;
    checked
}

/// After the restart, through the API: the same, and a replayed enrollment is the first one.
async fn check_api(api: &Api, model: &Model, rng: &mut ChaCha8Rng) {
    for p in &model.people {
        let a = api.biz.get(&format!("/v1/people/{}/links", p.pid)).await.unwrap();
        if p.erased {
            assert_eq!(a.status, 404, "erased {}: {}", p.pid, a.body);
            continue;
        }
        let body = expect(&a, 200, "links");
        let ids: BTreeSet<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids,
            p.links.keys().cloned().collect(),
            "links of {} over the API",
            p.pid
        );
    }
    if !model.people.is_empty() {
        let p = &model.people[rng.gen_range(0..model.people.len())];
        let a = api.enroll(&p.enroll_key, &p.captures).await.unwrap();
        let body = expect(&a, 201, "replayed enrollment");
        assert_eq!(
            body["person"]["pseudonymous_id"],
            p.pid.as_str(),
            "replay made another person"
        );
    }
}

/// Changes until the service goes away; the one cut short is left in doubt.
async fn stream(
    api: Arc<Api>,
    kiosk: Arc<Reader>,
    model: Arc<Mutex<Model>>,
    palms: Arc<Vec<Vec<Vec<u8>>>>,
    next_palm: Arc<Mutex<usize>>,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in 0..200 {
        let live: Vec<usize> = {
            let m = model.lock().unwrap();
            (0..m.people.len()).filter(|&i| !m.people[i].erased).collect()
        };
        let roll = rng.gen_range(0..10);
        let palms_left = *next_palm.lock().unwrap() < palms.len();
        if live.is_empty() && !palms_left {
            return;
        }
        if palms_left && (live.is_empty() || roll < 4) {
            let identity = {
                let mut i = next_palm.lock().unwrap();
                *i += 1;
                *i - 1
            };
            let images = &palms[identity];
            let captures: Vec<_> = images
                .iter()
                .map(|img| kiosk.seal(Purpose::Enroll, img).unwrap())
                .collect();
            let key = format!("enroll-{seed}-{n}");
            match api.enroll(&key, &captures).await {
                Ok(a) if a.code() == Some("already_enrolled") => {
                    // A synthetic palm close enough to one enrolled already (a false match
                    // among hundreds of synthetic identities): refused, nothing written.
                    model.lock().unwrap().look_alikes += 1;
                }
                Ok(a) => {
                    let body = expect(&a, 201, "enrollment");
                    let mut m = model.lock().unwrap();
                    m.people.push(Person {
                        enroll_key: key,
                        captures,
                        pid: body["person"]["pseudonymous_id"].as_str().unwrap().to_string(),
                        erased: false,
                        links: BTreeMap::new(),
                    });
                    m.acknowledged += 1;
                }
                Err(_) => {
                    model
                        .lock()
                        .unwrap()
                        .in_doubt
                        .push(InDoubt::Enroll { key, captures });
                    return;
                }
            }
        } else if roll < 9 {
            let person = live[rng.gen_range(0..live.len())];
            let pid = model.lock().unwrap().people[person].pid.clone();
            let (key, value) = (format!("link-{seed}-{n}"), format!("M-{seed}-{n}"));
            match api.link(&pid, &key, &value).await {
                Ok(a) => {
                    let body = expect(&a, 201, "link");
                    let mut m = model.lock().unwrap();
                    m.people[person]
                        .links
                        .insert(body["id"].as_str().unwrap().to_string(), value);
                    m.acknowledged += 1;
                }
                Err(_) => {
                    model
                        .lock()
                        .unwrap()
                        .in_doubt
                        .push(InDoubt::Link { person, key, value });
                    return;
                }
            }
        } else {
            let person = live[rng.gen_range(0..live.len())];
            let pid = model.lock().unwrap().people[person].pid.clone();
            match api.erase(&pid).await {
                Ok(a) => {
                    expect(&a, 200, "erasure");
                    let mut m = model.lock().unwrap();
                    m.people[person].erased = true;
                    m.people[person].links.clear();
                    m.acknowledged += 1;
                }
                Err(_) => {
                    model.lock().unwrap().in_doubt.push(InDoubt::Erase { person });
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_changes_loses_nothing_and_does_nothing_twice() {
    let seed: u64 = std::env::var("OPENPALM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let cycles: usize = std::env::var("OPENPALM_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("crash test seed {seed} ({cycles} kills): OPENPALM_CRASH_SEED={seed} reproduces the schedule");
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let url = SqlStore::sqlite_url(&data.join("openpalm.db"));

    let g = Generator::new(Kind::Roi, 5, Difficulty::easy()).unwrap();
    let first = rng.gen_range(0..1_000_000u64);
    let palms: Arc<Vec<Vec<Vec<u8>>>> = Arc::new(
        (0..(cycles as u64 + 1) * 12)
            .into_par_iter()
            .map(|i| palm(&g, first + i))
            .collect(),
    );

    // The business, its key and its kiosk: made once, before the first kill.
    let (child, base) = serve(&data);
    let admin = Client::new(&base, Some(ADMIN.into()));
    let a = admin
        .post("/v1/businesses", &json!({"name": "Crash Gym"}), Some("biz-1"))
        .await
        .unwrap();
    let body = expect(&a, 201, "business");
    let key = body["api_key"]["secret"].as_str().unwrap().to_string();
    let business_id = body["business"]["id"].as_str().unwrap().to_string();
    let biz = Client::new(&base, Some(key.clone()));
    let service_key = biz.service_key().await.unwrap();
    let device = biz
        .register_device(DeviceKind::Kiosk, "front desk")
        .await
        .unwrap();
    let kiosk = Arc::new(Reader::new(device.device_id, device.key, service_key));
    let consent = biz.consent_version().await.unwrap();
    kill_9(child);

    let model = Arc::new(Mutex::new(Model::default()));
    let next_palm = Arc::new(Mutex::new(0usize));
    let mut checked = 0;
    let mut ops_per_cycle = Vec::new();
    for cycle in 0..=cycles {
        let (child, base) = serve(&data);
        let api = Arc::new(Api {
            biz: Client::new(&base, Some(key.clone())),
            admin: Client::new(&base, Some(ADMIN.into())),
            business_id: business_id.clone(),
            consent,
        });
        settle(&api, &model).await;
        let view = model.lock().unwrap().clone_view();
        check_api(&api, &view, &mut rng).await;
        if cycle == cycles {
            kill_9(child);
            break;
        }
        let before = model.lock().unwrap().acknowledged;
        let task = tokio::spawn(stream(
            api.clone(),
            kiosk.clone(),
            model.clone(),
            palms.clone(),
            next_palm.clone(),
            rng.gen(),
        ));
        // Changes take milliseconds each: kill within the first few dozen of them.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..400))).await;
        kill_9(child);
        task.await.expect("the stream of changes panicked");
        ops_per_cycle.push(model.lock().unwrap().acknowledged - before);
        let view = model.lock().unwrap().clone_view();
        checked += check_store(&url, &business_id, &view).await;
    }
    let m = model.lock().unwrap();
    let live = m.people.iter().filter(|p| !p.erased).count();
    println!(
        "crash test seed {seed}: {cycles} kills in {:.1} s; {} changes acknowledged (per cycle {:?}), \
         {} cut by a kill and retried, {} of them enrollments cut before their commit; {} people enrolled, {} live, {} erased, {} look-alike palms refused; \
         {checked} acknowledged facts checked in the store",
        started.elapsed().as_secs_f64(),
        m.acknowledged,
        ops_per_cycle,
        m.retried,
        m.lost_before_commit,
        m.people.len(),
        live,
        m.people.len() - live,
        m.look_alikes,
    );
    assert!(m.acknowledged > cycles, "too few changes to mean anything");
}

impl Model {
    fn clone_view(&self) -> Model {
        Model {
            people: self.people.clone(),
            in_doubt: self.in_doubt.clone(),
            acknowledged: self.acknowledged,
            lost_before_commit: self.lost_before_commit,
            retried: self.retried,
            look_alikes: self.look_alikes,
        }
    }
}
