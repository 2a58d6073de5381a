//! `openpalm demo`: the whole product on the embedded default, from a fresh clone.
//!
//! Starts the service in a fresh data folder (SQLite), then sets it up over its own HTTP API
//! exactly as businesses and readers would: a ticketing business with a venue, an event open
//! now and its palm lane; a store with a checkout; kiosks, gates and tills registered as
//! devices; a few hundred synthetic people enrolled at the venue's kiosk from sealed
//! captures, with member IDs, phones, tickets, and (for most) a membership of the store with
//! a sandbox card; a morning of entries and purchases. Then it starts a reader agent (the
//! kiosk, gate and checkout screens) and prints every page's URL with what to try.
//!
//! Synthetic palms only: they show the machinery working, never accuracy.

use anyhow::{ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use openpalm_device::agent::{Agent, AgentConfig, Station};
use openpalm_device::{Client, DeviceKeyFile, Reader};
use openpalm_domain::ids::{new_id, DeviceKind, HandSide, Purpose};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the service listens (its pages: home, portal, console).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the reader screens (kiosk, gate, checkout) listen; default: the service's port
    /// plus one (any free port when the service's is 0).
    #[arg(long)]
    reader_listen: Option<SocketAddr>,
    /// A fresh data folder (must not hold a database yet); default: a new folder under the
    /// system's temporary folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Synthetic people enrolled at the venue.
    #[arg(long, default_value_t = 300)]
    people: u64,
    /// Seed of the synthetic palms.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Set up, print the pages, and stop at once instead of serving until Ctrl-C (for
    /// checking that the demo builds its world).
    #[arg(long)]
    exit_after_setup: bool,
}

/// Named people the demo's instructions use: whole-hand photos (synthetic), enrolled from
/// their first three, the rest written out for the screens.
struct Named {
    slug: &'static str,
    name: &'static str,
    phone: &'static str,
    /// Holds a ticket for the event.
    ticket: bool,
    /// Joins the store with this sandbox card.
    card: Option<&'static str>,
}

const NAMED: [Named; 2] = [
    Named {
        slug: "ada",
        name: "Ada",
        phone: "+447700900001",
        ticket: true,
        card: Some("tok_sandbox_visa_ada"),
    },
    Named {
        slug: "ben",
        name: "Ben",
        phone: "+447700900002",
        ticket: false,
        card: Some("tok_sandbox_insufficient_funds_ben"),
    },
];

/// Synthetic identities of the hand generator: Ada, Ben, then the newcomer (left and right
/// hand) and a stranger.
const NEWCOMER: u64 = 2;
const STRANGER: u64 = 3;
const NEWCOMER_RIGHT: u64 = 4;
/// Samples rendered per named hand: 3 to enroll, the rest for the screens.
const HAND_SAMPLES: usize = 7;
/// Samples per bulk (palm-crop) person: 3 to enroll, one to join the store, two for the
/// morning's entries and purchases.
const BULK_SAMPLES: usize = 6;

pub fn run(a: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(a))
}

fn fresh_folder(data: Option<PathBuf>) -> Result<PathBuf> {
    let dir = match data {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "openpalm-demo-{}-{}",
            std::process::id(),
            openpalm_domain::now_unix()
        )),
    };
    ensure!(
        !dir.join("openpalm.db").exists(),
        "{} already holds a service: give `--data` a new folder",
        dir.display()
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

async fn run_async(a: Args) -> Result<()> {
    let started = Instant::now();
    let dir = fresh_folder(a.data.clone())?;
    let admin = hex_token();
    let config = openpalm_server::Config::load(
        None,
        [
            ("OPENPALM_ADMIN_TOKEN".to_string(), admin.clone()),
            // The demo enrolls its few hundred synthetic people through one kiosk in seconds,
            // far past what a kiosk with people in front of it may do; every other limit
            // keeps its default.
            ("OPENPALM_LIMIT_ENROLL_PER_KIOSK".to_string(), "0/0".to_string()),
            ("OPENPALM_LIMIT_DEVICE".to_string(), "0/0".to_string()),
            ("OPENPALM_LIMIT_API_KEY".to_string(), "0/0".to_string()),
        ],
        openpalm_server::Overrides {
            listen: Some(a.listen.to_string()),
            data_dir: Some(dir.clone()),
            database_url: None,
        },
    )
    .context("demo configuration")?;
    // The demo's own lines (its URLs) stay readable: the service logs warnings and errors
    // unless RUST_LOG asks for more; OPENPALM_LOG_FORMAT=json as for `openpalm serve`.
    let log_format = std::env::var("OPENPALM_LOG_FORMAT")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(config.log_format);
    openpalm_server::telemetry::init_with_default(log_format, "warn");
    let running = openpalm_server::start(config)
        .await
        .context("cannot start the service")?;
    let base = format!("http://{}", running.addr);
    eprintln!("openpalm demo: service on {base}, data in {}", dir.display());

    let world = build(&a, &base, &admin, &dir).await?;

    let reader_addr = a.reader_listen.unwrap_or_else(|| {
        let mut r = running.addr;
        r.set_port(if a.listen.port() == 0 {
            0
        } else {
            running.addr.port() + 1
        });
        r
    });
    let agent = Agent::connect(AgentConfig {
        service: base.clone(),
        kiosk: Some(world.venue_kiosk.clone()),
        kiosk_partner: Some(world.store_kiosk.clone()),
        gate: Some((world.gate.clone(), world.event_id.clone())),
        checkout: Some((world.till.clone(), "EUR".into())),
        default_input: "hand".into(),
    })
    .await
    .context("the reader agent cannot reach the service")?;
    let listener = tokio::net::TcpListener::bind(reader_addr)
        .await
        .with_context(|| format!("the reader cannot listen on {reader_addr}"))?;
    let reader_addr = listener.local_addr()?;
    let reader_task =
        tokio::spawn(async move { axum::serve(listener, openpalm_device::agent::router(agent)).await });
    let reader = format!("http://{reader_addr}");

    print_pages(&base, &reader, &world, &dir, started.elapsed());

    if a.exit_after_setup {
        reader_task.abort();
        running.stop().await.context("while stopping")?;
        return Ok(());
    }
    let codes = tokio::spawn(tail_codes(dir.join(openpalm_server::state::SIGN_IN_CODES)));
    tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    eprintln!(
        "openpalm demo: stopping (the data folder {} stays)",
        dir.display()
    );
    codes.abort();
    reader_task.abort();
    running.stop().await.context("while stopping")?;
    Ok(())
}

/// What the demo set up.
struct World {
    venue_key: String,
    store_key: String,
    venue_kiosk: Station,
    store_kiosk: Station,
    gate: Station,
    till: Station,
    event_id: String,
    event_name: String,
    images: PathBuf,
    enrolled: u64,
    /// Synthetic people the duplicate check refused as look-alikes of someone enrolled.
    refused: u64,
    store_members: u64,
    tickets: u64,
}

fn hex_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A business and its first API key, as the operator creates them.
async fn business(base: &str, admin: &str, name: &str) -> Result<(String, String)> {
    let v = Client::new(base, Some(admin.to_string()))
        .post("/v1/businesses", &json!({ "name": name }), Some(&new_id("demo")))
        .await?
        .ok()?;
    let id = v["business"]["id"]
        .as_str()
        .context("business without id")?
        .to_string();
    let key = v["api_key"]["secret"]
        .as_str()
        .context("business without key")?
        .to_string();
    Ok((id, key))
}

async fn device(client: &Client, name: &str, key: &str, kind: DeviceKind, site: &str) -> Result<Station> {
    let d: DeviceKeyFile = client.register_device(kind, site).await?;
    Ok(Station::new(name, key, &d))
}

fn bar(len: u64, what: &str) -> Result<ProgressBar> {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{bar:30}} {{pos}}/{{len}} ({{per_sec}})"
        ))
        .context("progress template")?,
    );
    Ok(b)
}

async fn build(a: &Args, base: &str, admin: &str, dir: &Path) -> Result<World> {
    let (_venue_id, venue_key) = business(base, admin, "Demo Tickets").await?;
    let (_store_id, store_key) = business(base, admin, "Demo Store").await?;
    let venue = Client::new(base, Some(venue_key.clone()));
    let store = Client::new(base, Some(store_key.clone()));
    let venue_kiosk = device(
        &venue,
        "Demo Tickets",
        &venue_key,
        DeviceKind::Kiosk,
        "Arena foyer",
    )
    .await?;
    let gate = device(
        &venue,
        "Demo Tickets",
        &venue_key,
        DeviceKind::Gate,
        "Arena north gate",
    )
    .await?;
    let store_kiosk = device(&store, "Demo Store", &store_key, DeviceKind::Kiosk, "Arena foyer").await?;
    let till = device(
        &store,
        "Demo Store",
        &store_key,
        DeviceKind::Checkout,
        "Arena shop",
    )
    .await?;
    let service_key = venue.service_key().await?;
    let seal = |s: &Station, purpose: Purpose, image: &[u8]| -> Result<Value> {
        let r = Reader::new(s.device_id.clone(), s.key.clone(), service_key.clone());
        Ok(serde_json::to_value(r.seal(purpose, image)?)?)
    };

    let now = openpalm_domain::now_unix();
    let event_name = "Demo Night: the Palm Lane Tour".to_string();
    let ev = venue
        .post(
            "/v1/events",
            &json!({"name": event_name, "site": "Arena", "starts_at": now + 3600,
                    "ends_at": now + 6 * 3600, "doors_open_at": now - 3600,
                    "gates": [gate.device_id]}),
            Some(&new_id("demo")),
        )
        .await?
        .ok()?;
    let event_id = ev["id"].as_str().context("event without id")?.to_string();
    let consent = venue.consent_version().await?;

    // Render every capture first, on every core.
    let images = dir.join("demo-images");
    std::fs::create_dir_all(&images)?;
    let roi = Generator::new(Kind::Roi, a.seed, Difficulty::realistic())?;
    let hands = Generator::new(Kind::Hand, a.seed, Difficulty::realistic())?;
    let rendering = bar(a.people + 5, "rendering synthetic palms")?;
    let bulk: Vec<Vec<Vec<u8>>> = (0..a.people)
        .into_par_iter()
        .map(|g| {
            // Identities after the named hands' (one seed draws one palm per index,
            // whatever the kind).
            let out = photos(&roi, g + 16, BULK_SAMPLES);
            rendering.inc(1);
            out
        })
        .collect();
    let named: Vec<Vec<Vec<u8>>> = (0..5u64)
        .into_par_iter()
        .map(|g| {
            let out = photos(&hands, g, HAND_SAMPLES);
            rendering.inc(1);
            out
        })
        .collect();
    rendering.finish_and_clear();

    // The named people: whole hands, enrolled at the venue's kiosk.
    for (g, n) in NAMED.iter().enumerate() {
        let caps = (0..3)
            .map(|k| seal(&venue_kiosk, Purpose::Enroll, &named[g][k]))
            .collect::<Result<Vec<_>>>()?;
        let body = json!({
            "consent": {"text_version": consent, "accepted": true}, "input": "hand",
            "hands": [{"hand": HandSide::Left, "captures": caps}],
            "links": [{"kind": "member_id", "value": format!("TIX-{}", n.slug.to_uppercase())},
                      {"kind": "phone", "value": n.phone}],
        });
        venue
            .post("/v1/enrollments", &body, Some(&new_id("demo")))
            .await?
            .ok()
            .with_context(|| format!("enrolling {}", n.name))?;
        if let Some(card) = n.card {
            let body = json!({
                "consent": {"text_version": consent, "accepted": true}, "input": "hand",
                "capture": seal(&store_kiosk, Purpose::Enroll, &named[g][3])?,
                "links": [{"kind": "payment_token", "value": card}],
            });
            store
                .post("/v1/memberships", &body, Some(&new_id("demo")))
                .await?
                .ok()
                .with_context(|| format!("{} joining the store", n.name))?;
        }
    }
    let named_files = [
        ("ada-gate.png", &named[0][4]),
        ("ada-checkout.png", &named[0][5]),
        ("ada-again.png", &named[0][6]),
        ("ben-gate.png", &named[1][4]),
        ("ben-checkout.png", &named[1][5]),
        ("newcomer-1.png", &named[NEWCOMER as usize][0]),
        ("newcomer-2.png", &named[NEWCOMER as usize][1]),
        ("newcomer-3.png", &named[NEWCOMER as usize][2]),
        ("newcomer-right-1.png", &named[NEWCOMER_RIGHT as usize][0]),
        ("newcomer-right-2.png", &named[NEWCOMER_RIGHT as usize][1]),
        ("newcomer-right-3.png", &named[NEWCOMER_RIGHT as usize][2]),
        ("newcomer-gate.png", &named[NEWCOMER as usize][4]),
        ("newcomer-checkout.png", &named[NEWCOMER as usize][5]),
        ("stranger.png", &named[STRANGER as usize][4]),
    ];
    for (f, bytes) in named_files {
        std::fs::write(images.join(f), bytes)?;
    }

    // The crowd: palm-centre crops, enrolled four at a time.
    let enrolling = bar(a.people, "enrolling synthetic people")?;
    let mut enrolled: Vec<(u64, bool)> = Vec::new();
    let mut refused = 0u64;
    let crowd: Vec<(u64, bool)> = (0..a.people).map(|i| (i, i % 3 != 2)).collect();
    for chunk in crowd.chunks(4) {
        let mut tasks = Vec::new();
        for &(i, joins) in chunk {
            let caps = (0..3)
                .map(|k| seal(&venue_kiosk, Purpose::Enroll, &bulk[i as usize][k]))
                .collect::<Result<Vec<_>>>()?;
            let join = seal(&store_kiosk, Purpose::Enroll, &bulk[i as usize][3])?;
            let (venue, store) = (venue.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({
                    "consent": {"text_version": consent, "accepted": true}, "input": "roi",
                    "hands": [{"hand": HandSide::Left, "captures": caps}],
                    "links": [{"kind": "member_id", "value": format!("TIX-{:05}", 10_000 + i)},
                              {"kind": "phone", "value": format!("+4477009{:05}", 10_000 + i)}],
                });
                let ans = venue
                    .post("/v1/enrollments", &body, Some(&new_id("demo")))
                    .await?;
                if ans.code() == Some("already_enrolled") {
                    // Two synthetic palms close enough for the duplicate check: the service
                    // refuses the second, as it would a real look-alike.
                    return Ok(None);
                }
                ans.ok()?;
                if joins {
                    let body = json!({
                        "consent": {"text_version": consent, "accepted": true}, "input": "roi",
                        "capture": join,
                        "links": [{"kind": "payment_token", "value": format!("tok_sandbox_visa_p{i}")}],
                    });
                    store
                        .post("/v1/memberships", &body, Some(&new_id("demo")))
                        .await?
                        .ok()?;
                }
                Ok::<Option<bool>, openpalm_device::DeviceError>(Some(joins))
            }));
        }
        for (t, &(i, _)) in tasks.into_iter().zip(chunk) {
            match t.await?.with_context(|| "enrolling a synthetic person")? {
                Some(joins) => enrolled.push((i, joins)),
                None => refused += 1,
            }
            enrolling.inc(1);
        }
    }
    enrolling.finish_and_clear();

    // Tickets: the named people who hold one, and nine in ten of the crowd.
    let mut holders: Vec<Value> = NAMED
        .iter()
        .filter(|n| n.ticket)
        .map(|n| json!({"holder": {"member_id": format!("TIX-{}", n.slug.to_uppercase())}, "ticket_type": "standing"}))
        .collect();
    holders.extend(enrolled.iter().map(|(i, _)| *i).filter(|i| i % 10 != 9).map(
        |i| json!({"holder": {"member_id": format!("TIX-{:05}", 10_000 + i)}, "ticket_type": "standing"}),
    ));
    let mut tickets = 0;
    for chunk in holders.chunks(5000) {
        let r = venue
            .post(
                &format!("/v1/events/{event_id}/tickets"),
                &json!({ "tickets": chunk }),
                Some(&new_id("demo")),
            )
            .await?
            .ok()?;
        tickets += r["tickets"].as_array().map(|t| t.len() as u64).unwrap_or(0);
    }

    // A morning's traffic: some of the crowd come in through the lane, some buy something.
    let traffic = bar(40, "a morning of entries and purchases")?;
    for &(i, _) in enrolled.iter().step_by((enrolled.len() / 20).max(1)).take(20) {
        let capture = seal(&gate, Purpose::Identify, &bulk[i as usize][4])?;
        venue
            .post(
                "/v1/entries",
                &json!({"event_id": event_id, "input": "roi", "capture": capture}),
                None,
            )
            .await?;
        traffic.inc(1);
    }
    let buyers: Vec<u64> = enrolled
        .iter()
        .filter(|(_, j)| *j)
        .map(|(i, _)| *i)
        .step_by(7)
        .take(20)
        .collect();
    for (n, i) in buyers.iter().enumerate() {
        let amount = 350 + (n as u64 * 137) % 2400;
        pay(
            &store,
            &till,
            amount,
            "roi",
            seal(&till, Purpose::Identify, &bulk[*i as usize][5])?,
        )
        .await?;
        traffic.inc(1);
    }
    // Ada bought a programme earlier.
    let programme = pay(
        &store,
        &till,
        1200,
        "hand",
        seal(&till, Purpose::Identify, &named[0][3])?,
    )
    .await?;
    ensure!(
        programme == "approved",
        "Ada's programme was not approved: {programme}"
    );
    traffic.finish_and_clear();

    Ok(World {
        venue_key,
        store_key,
        venue_kiosk,
        store_kiosk,
        gate,
        till,
        event_id,
        event_name,
        images,
        enrolled: enrolled.len() as u64 + NAMED.len() as u64,
        refused,
        store_members: enrolled.iter().filter(|(_, j)| *j).count() as u64
            + NAMED.iter().filter(|n| n.card.is_some()).count() as u64,
        tickets,
    })
}

/// `samples` PNG photos of synthetic identity `id`.
fn photos(gen: &Generator, id: u64, samples: usize) -> Vec<Vec<u8>> {
    let p = gen.identity_for(id, &[Band::Visible]);
    (0..samples)
        .map(|k| {
            gen.render(&p, &gen.sample(id, k, samples), Band::Visible)
                .encode_png()
                .expect("PNG encoding")
        })
        .collect()
}

/// A payment at the till, paid by palm and captured when approved.
async fn pay(
    store: &Client,
    till: &Station,
    amount_minor: u64,
    input: &str,
    capture: Value,
) -> Result<String> {
    let order = new_id("order");
    let p = store
        .post(
            "/v1/payments",
            &json!({"device_id": till.device_id, "amount_minor": amount_minor, "currency": "EUR",
                    "order_reference": order}),
            Some(&order),
        )
        .await?
        .ok()?;
    let id = p["id"].as_str().context("payment without id")?.to_string();
    let ans = store
        .post(
            &format!("/v1/payments/{id}/palm"),
            &json!({"input": input, "capture": capture}),
            None,
        )
        .await?;
    let outcome = ans.body["outcome"].as_str().unwrap_or("").to_string();
    if outcome == "approved" {
        store
            .post(
                &format!("/v1/payments/{id}/capture"),
                &json!({}),
                Some(&new_id("demo")),
            )
            .await?
            .ok()?;
    }
    Ok(outcome)
}

fn print_pages(base: &str, reader: &str, w: &World, dir: &Path, took: Duration) {
    let img = |f: &str| w.images.join(f).display().to_string();
    println!();
    println!(
        "OpenPalm demo ready in {:.1} s: {} people enrolled at Demo Tickets, {} of them also at Demo Store with a sandbox card, {} tickets for \"{}\".",
        took.as_secs_f64(),
        w.enrolled,
        w.store_members,
        w.tickets,
        w.event_name
    );
    println!(
        "Synthetic palms (they show the product working; they are not accuracy figures); {} refused by the duplicate check as look-alikes of someone enrolled.",
        w.refused
    );
    println!();
    println!("Kiosk (enroll a palm):");
    println!("{reader}/kiosk");
    println!(
        "  agree to the consent, then give the three photos {}, {}, {} (or use the camera);",
        img("newcomer-1.png"),
        img("newcomer-2.png"),
        img("newcomer-3.png")
    );
    println!(
        "  to enroll both hands, tick \"my other hand too\" and give {}, {}, {} next;",
        img("newcomer-right-1.png"),
        img("newcomer-right-2.png"),
        img("newcomer-right-3.png")
    );
    println!("  member ID TIX-NEW01, your phone, and tick Demo Store with a sandbox card.");
    println!("Gate (the palm lane of \"{}\"):", w.event_name);
    println!("{reader}/gate");
    println!(
        "  {} is admitted (Ada has a ticket); {} is denied (Ben has no ticket); {} is not recognised.",
        img("ada-gate.png"),
        img("ben-gate.png"),
        img("stranger.png")
    );
    println!("Checkout (Demo Store's till):");
    println!("{reader}/checkout");
    println!(
        "  {} pays with Ada's card; {} is declined (insufficient funds); after enrolling, {} pays too.",
        img("ada-checkout.png"),
        img("ben-checkout.png"),
        img("newcomer-checkout.png")
    );
    println!("Person portal (see, export, delete your data):");
    println!("{base}/portal");
    println!(
        "  sign in as Ada with +447700900001; the one-time code is printed here (sandbox SMS, also in {}).",
        dir.join(openpalm_server::state::SIGN_IN_CODES).display()
    );
    println!("Business console:");
    println!("{base}/console");
    println!("  Demo Tickets' API key: {}", w.venue_key);
    println!("  Demo Store's API key:  {}", w.store_key);
    println!("Service home and API:");
    println!("{base}/");
    println!("{base}/openapi.json");
    println!();
    println!("Ctrl-C stops the demo; the data folder {} stays.", dir.display());
}

/// Print each sign-in code the service sends (the demo's sandbox SMS).
async fn tail_codes(path: PathBuf) {
    let mut seen = 0;
    loop {
        let sent = openpalm_server::codes::FileSender::read(&path);
        for c in sent.iter().skip(seen) {
            // Nobody reading the output is no reason to stop serving.
            let _ = writeln!(
                std::io::stdout(),
                "sandbox SMS to {}: your OpenPalm code is {}",
                c.phone,
                c.code
            );
        }
        seen = sent.len();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
