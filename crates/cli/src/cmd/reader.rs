//! `openpalm reader`: the reader agent behind a kiosk, gate or checkout screen (see
//! `openpalm_device::agent`): serves the screens on the reader itself, checks each capture
//! for guidance, seals and signs it with the device's key, and calls the service with the
//! business's API key.

use anyhow::{ensure, Context, Result};
use openpalm_device::agent::{router, Agent, AgentConfig, Station};
use openpalm_device::{Client, DeviceKeyFile};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Service base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    server: String,
    /// Where the screens are served: the reader's own loopback by default (the page and
    /// this process are one device).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The business's API key (default: the OPENPALM_API_KEY environment variable).
    #[arg(long)]
    api_key: Option<String>,
    /// A kiosk's device key file (`openpalm device` writes one): serves /kiosk.
    #[arg(long)]
    kiosk_key: Option<PathBuf>,
    /// A gate's device key file, with --event: serves /gate.
    #[arg(long)]
    gate_key: Option<PathBuf>,
    /// The event the gate admits to.
    #[arg(long)]
    event: Option<String>,
    /// A checkout's device key file: serves /checkout.
    #[arg(long)]
    checkout_key: Option<PathBuf>,
    /// The currency the checkout's till charges in (ISO 4217).
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// What the camera gives: hand (a whole open hand) or roi (a palm-centre crop).
    #[arg(long, default_value = "hand")]
    input: String,
    /// Listen on an address other than loopback (the screens then answer anyone who can
    /// reach it).
    #[arg(long)]
    allow_remote: bool,
}

pub fn run(a: Args) -> Result<()> {
    ensure!(
        a.listen.ip().is_loopback() || a.allow_remote,
        "{} is not a loopback address: the screens seal captures for anyone who reaches them; give --allow-remote to mean it",
        a.listen
    );
    ensure!(
        a.gate_key.is_none() || a.event.is_some(),
        "--gate-key needs the --event it admits to"
    );
    ensure!(
        a.kiosk_key.is_some() || a.gate_key.is_some() || a.checkout_key.is_some(),
        "give at least one of --kiosk-key, --gate-key, --checkout-key"
    );
    ensure!(
        ["hand", "roi"].contains(&a.input.as_str()),
        "--input is hand or roi"
    );
    let api_key = match a.api_key.clone() {
        Some(k) => k,
        None => std::env::var("OPENPALM_API_KEY").context("give --api-key or set OPENPALM_API_KEY")?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        // The business's name, as the screens show it.
        let summary = Client::new(&a.server, Some(api_key.clone()))
            .get("/v1/summary")
            .await?
            .ok()
            .context("the service refused the API key")?;
        let business = summary["business"]["name"]
            .as_str()
            .unwrap_or("OpenPalm")
            .to_string();
        let station = |path: &Option<PathBuf>| -> Result<Option<Station>> {
            path.as_ref()
                .map(|p| {
                    let key = DeviceKeyFile::read(p)?;
                    Ok(Station::new(&business, &api_key, &key))
                })
                .transpose()
        };
        let cfg = AgentConfig {
            service: a.server.clone(),
            kiosk: station(&a.kiosk_key)?,
            kiosk_partner: None,
            gate: station(&a.gate_key)?.zip(a.event.clone()),
            checkout: station(&a.checkout_key)?.map(|s| (s, a.currency.clone())),
            default_input: a.input.clone(),
        };
        let screens: Vec<&str> = [
            cfg.kiosk.as_ref().map(|_| "kiosk"),
            cfg.gate.as_ref().map(|_| "gate"),
            cfg.checkout.as_ref().map(|_| "checkout"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let agent = Agent::connect(cfg).await.context("cannot reach the service")?;
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        for s in screens {
            println!("http://{addr}/{s}");
        }
        eprintln!("openpalm reader for {business}; Ctrl-C stops");
        axum::serve(listener, router(agent))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving the screens")
    })
}
