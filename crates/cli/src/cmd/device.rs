//! `openpalm device`: a simulated kiosk, gate or checkout driving the real API with sealed,
//! signed captures (see the `openpalm-device` crate).

use anyhow::Context;
use openpalm_device::sim::{run as simulate, SimOptions};
use openpalm_domain::ids::DeviceKind;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// kiosk (enrolls), gate (identifies; with --event, a palm lane) or checkout (a store's
    /// till: each capture pays a payment the simulator opens as the point of sale, captured
    /// when approved, against the service's sandbox processor).
    #[arg(long)]
    kind: DeviceKind,
    /// Service base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    server: String,
    /// Image folder: labels.csv (path,identity) or one sub-folder per person.
    #[arg(long)]
    images: PathBuf,
    /// The business's API key (default: the OPENPALM_API_KEY environment variable).
    #[arg(long)]
    api_key: Option<String>,
    /// Device key file; if missing, a device is registered and its key written there (0600).
    #[arg(long)]
    device_key: Option<PathBuf>,
    /// Site name used when registering.
    #[arg(long, default_value = "simulator")]
    site: String,
    /// What the images show: roi or hand.
    #[arg(long, default_value = "hand")]
    input: String,
    /// Captures per person a kiosk enrolls (a gate identifies with the ones after them).
    #[arg(long, default_value_t = 3)]
    enroll_captures: usize,
    /// Only the first N people.
    #[arg(long)]
    people: Option<usize>,
    /// Write every request and its outcome as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --kind gate: drive this event's palm lane (the device must be one of its gates:
    /// give its --device-key): every capture after the enrolled ones is an arrival, answered
    /// admit or deny, printed as it comes.
    #[arg(long)]
    event: Option<String>,
    /// With --kind checkout: what each payment charges, in minor units of --currency.
    #[arg(long, default_value_t = 1250)]
    amount_minor: u64,
    /// With --kind checkout: ISO 4217 currency of the payments.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Arrivals per second at the lane (default: each as soon as the previous is answered).
    #[arg(long)]
    rate: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.input == "roi" || args.input == "hand",
        "--input must be roi or hand"
    );
    anyhow::ensure!(
        args.event.is_none() || args.kind == DeviceKind::Gate,
        "--event drives a palm lane: use it with --kind gate"
    );
    anyhow::ensure!(
        args.rate.is_none_or(|r| r > 0.0 && r.is_finite()),
        "--rate must be a positive number of arrivals per second"
    );
    let api_key = match args.api_key {
        Some(k) => k,
        None => std::env::var("OPENPALM_API_KEY").context("give --api-key or set OPENPALM_API_KEY")?,
    };
    let opts = SimOptions {
        kind: args.kind,
        server: args.server,
        api_key,
        images: args.images,
        device_key: args.device_key,
        site: args.site,
        input: args.input,
        enroll_captures: args.enroll_captures,
        amount_minor: args.amount_minor,
        currency: args.currency,
        people: args.people,
        print_each: args.event.is_some() || args.kind == DeviceKind::Checkout,
        event: args.event,
        rate: args.rate,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = rt.block_on(simulate(&opts)).context("simulation failed")?;
    let mut ms: Vec<f64> = report.records.iter().map(|r| r.millis).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{} {}: {} requests; outcomes {}; latency median {:.1} ms, p95 {:.1} ms (client side, sealing excluded)",
        report.kind.as_str(),
        report.device_id,
        report.records.len(),
        serde_json::to_string(&report.outcomes)?,
        pct(0.5),
        pct(0.95)
    );
    if let Some(out) = args.out {
        std::fs::write(&out, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}
