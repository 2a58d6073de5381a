//! `openpalm serve`: the HTTP service (see the `openpalm-server` crate).

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080 (default from config, else 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Data folder: SQLite database and service keys, created on first start.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Configuration file (TOML); OPENPALM_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Database URL instead of the SQLite file in the data folder.
    #[arg(long)]
    database_url: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = openpalm_server::Config::load(
        args.config.as_deref(),
        std::env::vars(),
        openpalm_server::Overrides {
            listen: args.listen,
            data_dir: args.data,
            database_url: args.database_url,
        },
    )
    .context("invalid configuration")?;
    openpalm_server::telemetry::init(config.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let data_dir = config.data_dir.clone();
        let running = openpalm_server::start(config)
            .await
            .context("cannot start the service")?;
        let templates = running.state.matcher.read().map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "openpalm: serving on http://{} (data {}, {templates} templates loaded); Ctrl-C or SIGTERM stops",
            running.addr,
            data_dir.display()
        );
        shutdown_signal().await?;
        // In-flight requests are drained (each is bounded by the request time limit).
        eprintln!("openpalm: stopping");
        running.stop().await.context("while stopping")?;
        Ok(())
    })
}

/// Ctrl-C, or SIGTERM (what a service manager or an orchestrator sends).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot wait for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")
    }
}
