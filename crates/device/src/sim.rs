//! The reader simulator behind `openpalm device`: a kiosk enrolls the people of an image
//! folder, a gate or checkout identifies them, each capture sealed and signed as a reader
//! would, over the real API.
//!
//! Image folder: `labels.csv` (`path,identity[,session]`, paths relative to the folder, as
//! in the evaluation sets) or, without it, one sub-folder per person. Per person, images are
//! taken in name order: a kiosk enrolls the first `enroll_captures`; a gate or checkout
//! identifies with the ones after them.

use crate::{Client, DeviceError, DeviceKeyFile, Reader};
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub kind: DeviceKind,
    pub server: String,
    pub api_key: String,
    pub images: PathBuf,
    /// Existing device key file; when it does not exist, a device is registered and its key
    /// written there.
    pub device_key: Option<PathBuf>,
    pub site: String,
    /// `roi` or `hand`.
    pub input: String,
    pub enroll_captures: usize,
    /// A checkout charges this much per payment (minor units of `currency`).
    pub amount_minor: u64,
    pub currency: String,
    /// Stop after this many people.
    pub people: Option<usize>,
    /// A gate with an event drives the event's palm lane (`POST /v1/entries`): every
    /// capture is an arrival, answered admit or deny.
    pub event: Option<String>,
    /// Arrivals per second at the lane (default: each as soon as the previous was answered).
    pub rate: Option<f64>,
    /// Print each answer as it comes.
    pub print_each: bool,
}

/// One request and its outcome.
#[derive(Clone, Debug, Serialize)]
pub struct SimRecord {
    pub identity: String,
    pub images: Vec<String>,
    pub status: u16,
    /// `enrolled`, `match`, `no_match`, `ambiguous`; at a lane `admit` or `deny:<reason>`;
    /// or the problem code.
    pub outcome: String,
    pub pseudonymous_id: Option<String>,
    pub millis: f64,
}

/// Everything the run did.
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    pub device_id: String,
    pub kind: DeviceKind,
    pub records: Vec<SimRecord>,
    /// Outcome -> count.
    pub outcomes: BTreeMap<String, usize>,
}

/// Images per identity, in name order.
pub fn read_folder(dir: &Path) -> Result<BTreeMap<String, Vec<PathBuf>>, DeviceError> {
    let err = |p: &Path, message: String| DeviceError::File {
        path: p.display().to_string(),
        message,
    };
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let labels = dir.join("labels.csv");
    if labels.is_file() {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&labels)
            .map_err(|e| err(&labels, e.to_string()))?;
        for row in r.records() {
            let row = row.map_err(|e| err(&labels, e.to_string()))?;
            let (Some(path), Some(id)) = (row.get(0), row.get(1)) else {
                return Err(err(&labels, "each row needs path,identity".into()));
            };
            out.entry(id.to_string()).or_default().push(dir.join(path));
        }
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| err(dir, e.to_string()))?;
        for e in entries {
            let p = e.map_err(|e| err(dir, e.to_string()))?.path();
            if p.is_dir() {
                let id = p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let files = std::fs::read_dir(&p).map_err(|e| err(&p, e.to_string()))?;
                for f in files {
                    let f = f.map_err(|e| err(&p, e.to_string()))?.path();
                    if f.is_file() {
                        out.entry(id.clone()).or_default().push(f);
                    }
                }
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    if out.is_empty() {
        return Err(err(
            dir,
            "no images: expected labels.csv or one sub-folder per person".into(),
        ));
    }
    Ok(out)
}

async fn device(opts: &SimOptions, client: &Client) -> Result<DeviceKeyFile, DeviceError> {
    match &opts.device_key {
        Some(p) if p.exists() => DeviceKeyFile::read(p),
        Some(p) => {
            let d = client.register_device(opts.kind, &opts.site).await?;
            d.write(p)?;
            Ok(d)
        }
        None => client.register_device(opts.kind, &opts.site).await,
    }
}

fn read_image(p: &Path) -> Result<Vec<u8>, DeviceError> {
    std::fs::read(p).map_err(|e| DeviceError::File {
        path: p.display().to_string(),
        message: e.to_string(),
    })
}

/// One customer at a checkout: the point of sale opens a payment, the palm pays it, an
/// approval is captured (the goods handed over), a step-up the simulator cannot answer is
/// voided. Returns the palm's answer, its outcome and the palm call's time.
async fn checkout(
    opts: &SimOptions,
    client: &Client,
    reader: &Reader,
    capture: &crate::SealedCaptureWire,
    n: u64,
) -> Result<(crate::Answer, String, f64), DeviceError> {
    let order = openpalm_domain::ids::new_id(&format!("sim{n}"));
    let p = client
        .post(
            "/v1/payments",
            &serde_json::json!({"device_id": reader.device_id, "amount_minor": opts.amount_minor,
                                "currency": opts.currency, "order_reference": order}),
            Some(&order),
        )
        .await?
        .ok()?;
    let id = p["id"].as_str().unwrap_or_default().to_string();
    let t = Instant::now();
    let a = client.pay(&id, &opts.input, capture).await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let outcome = if a.status == 200 {
        let o = a.body["outcome"].as_str().unwrap_or("unknown");
        match a.body["reason"].as_str() {
            Some(r) => format!("{o}:{r}"),
            None if o == "approved" => {
                format!("approved:{}", a.body["card_last4"].as_str().unwrap_or("????"))
            }
            None => o.to_string(),
        }
    } else {
        a.code().unwrap_or("error").to_string()
    };
    if outcome.starts_with("approved") {
        client
            .post(
                &format!("/v1/payments/{id}/capture"),
                &serde_json::json!({}),
                None,
            )
            .await?
            .ok()?;
    } else if a.body["payment"]["status"] == "step_up_required"
        || a.body["payment"]["status"] == "awaiting_palm"
    {
        client
            .post(&format!("/v1/payments/{id}/void"), &serde_json::json!({}), None)
            .await?
            .ok()?;
    }
    let outcome = match outcome.split_once(':') {
        Some(("approved", _)) => "approved".to_string(),
        _ => outcome,
    };
    Ok((a, outcome, ms))
}

/// Run the simulation.
pub async fn run(opts: &SimOptions) -> Result<SimReport, DeviceError> {
    let client = Client::new(&opts.server, Some(opts.api_key.clone()));
    let service_key = client.service_key().await?;
    let dev = device(opts, &client).await?;
    let reader = Reader::new(dev.device_id.clone(), dev.key, service_key);
    let people = read_folder(&opts.images)?;
    let take = opts.people.unwrap_or(usize::MAX);
    let mut records = Vec::new();
    let started = Instant::now();
    let mut arrivals = 0u64;
    let consent = if opts.kind == DeviceKind::Kiosk {
        Some(client.consent_version().await?)
    } else {
        None
    };
    for (identity, images) in people.iter().take(take) {
        let n = opts.enroll_captures.min(images.len());
        if let Some(version) = consent {
            let chosen = &images[..n];
            let mut captures = Vec::new();
            for p in chosen {
                // The image bytes are wiped once sealed.
                let bytes = zeroize::Zeroizing::new(read_image(p)?);
                captures.push(reader.seal(Purpose::Enroll, &bytes)?);
            }
            let t = Instant::now();
            let idem = openpalm_domain::ids::new_id("sim");
            let a = client
                .enroll(&idem, version, &opts.input, &[(HandSide::Left, captures)], &[])
                .await?;
            let ok = a.status == 201;
            records.push(SimRecord {
                identity: identity.clone(),
                images: chosen.iter().map(|p| p.display().to_string()).collect(),
                status: a.status,
                outcome: if ok {
                    "enrolled".into()
                } else {
                    a.code().unwrap_or("error").to_string()
                },
                pseudonymous_id: a.body["person"]["pseudonymous_id"].as_str().map(str::to_string),
                millis: t.elapsed().as_secs_f64() * 1e3,
            });
        } else {
            for p in &images[n..] {
                if let Some(rate) = opts.rate.filter(|r| *r > 0.0) {
                    // Open loop: arrival i is due i / rate seconds after the first.
                    let due = started + std::time::Duration::from_secs_f64(arrivals as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                arrivals += 1;
                let bytes = zeroize::Zeroizing::new(read_image(p)?);
                let capture = reader.seal(Purpose::Identify, &bytes)?;
                if opts.kind == DeviceKind::Checkout {
                    let (a, outcome, ms) = checkout(opts, &client, &reader, &capture, arrivals).await?;
                    if opts.print_each {
                        println!("{identity:<24} {outcome:<36} {ms:>7.1} ms");
                    }
                    records.push(SimRecord {
                        identity: identity.clone(),
                        images: vec![p.display().to_string()],
                        status: a.status,
                        outcome,
                        pseudonymous_id: a.body["payment"]["customer"].as_str().map(str::to_string),
                        millis: ms,
                    });
                    continue;
                }
                let t = Instant::now();
                let a = match &opts.event {
                    Some(event) => client.enter(event, &opts.input, &capture).await?,
                    None => client.identify(&opts.input, &capture).await?,
                };
                let outcome = match (a.status, &opts.event) {
                    (200, Some(_)) => match a.body["reason"].as_str() {
                        Some(r) => format!("deny:{r}"),
                        None => a.body["decision"].as_str().unwrap_or("unknown").to_string(),
                    },
                    (200, None) => a.body["decision"].as_str().unwrap_or("unknown").to_string(),
                    _ => a.code().unwrap_or("error").to_string(),
                };
                if opts.print_each {
                    println!(
                        "{:<24} {:<28} {:<10} {:>7.1} ms{}",
                        identity,
                        outcome,
                        a.body["ticket"]["ticket_type"].as_str().unwrap_or("-"),
                        t.elapsed().as_secs_f64() * 1e3,
                        a.body["decision_ms"]
                            .as_f64()
                            .map(|d| format!(" (decided in {d:.1} ms)"))
                            .unwrap_or_default()
                    );
                }
                records.push(SimRecord {
                    identity: identity.clone(),
                    images: vec![p.display().to_string()],
                    status: a.status,
                    outcome,
                    pseudonymous_id: a.body["person"]["pseudonymous_id"].as_str().map(str::to_string),
                    millis: t.elapsed().as_secs_f64() * 1e3,
                });
            }
        }
    }
    let mut outcomes = BTreeMap::new();
    for r in &records {
        *outcomes.entry(r.outcome.clone()).or_insert(0) += 1;
    }
    Ok(SimReport {
        device_id: reader.device_id.clone(),
        kind: opts.kind,
        records,
        outcomes,
    })
}
