//! OpenPalm's HTTP service (`openpalm serve`).
//!
//! Readers (kiosk, gate, checkout) send captures sealed with HPKE to the service key and
//! signed with their Ed25519 key; businesses call with API keys. See [`api`] for the routes
//! (also at `/openapi.json`), [`capture`] for the device protocol checks, [`state`] for
//! start-up (data folder, key file, SQLite with migrations, gallery loaded and decrypted).
//!
//! The 1:N search is [`matcher::GalleryMatcher`] (`openpalm-gallery`) behind the narrow
//! [`matcher::Matcher`] trait. Changes that businesses hear of (links made and removed,
//! people erased) write webhook events to an outbox in the same transaction;
//! [`webhooks`] delivers them.

pub mod admission;
pub mod api;
pub mod audit;
pub mod auth;
pub mod body;
pub mod capture;
pub mod codes;
pub mod config;
pub mod egress;
pub mod idempotency;
pub mod lifecycle;
pub mod limits;
pub mod matcher;
pub mod metrics;
pub mod pages;
pub mod payments;
pub mod problem;
pub mod seed;
pub mod state;
pub mod telemetry;
pub mod webhooks;

pub use config::{Config, ConfigError, Overrides};
pub use state::{AppState, StartError};

use std::net::SocketAddr;

/// A started service.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    deliverer: tokio::task::JoinHandle<()>,
    payments: tokio::task::JoinHandle<()>,
    lifecycle: tokio::task::JoinHandle<()>,
    audit: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stop accepting, finish in-flight requests, return.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        let served = self
            .task
            .await
            .map_err(|e| std::io::Error::other(format!("server task: {e}")))?;
        // An attempt cut short here keeps its lease and is sent again after the next start.
        self.deliverer.abort();
        let _ = self.deliverer.await;
        self.payments.abort();
        let _ = self.payments.await;
        self.lifecycle.abort();
        let _ = self.lifecycle.await;
        // Everything answered is in the audit log before the stop returns.
        audit::flush(&self.state).await;
        self.audit.abort();
        let _ = self.audit.await;
        served
    }
}

/// Open the data folder and database, bind, and serve in the background.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let addr = config.listen;
    let state = state::open(config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    // Answers go out as soon as they are written (no Nagle delay on small responses).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("openpalm-server: TCP_NODELAY: {e}");
        }
    });
    let app = api::router(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let deliverer = tokio::spawn(webhooks::run(state.clone()));
    let payments = tokio::spawn(payments::run(state.clone()));
    let lifecycle = tokio::spawn(lifecycle::run(state.clone()));
    let audit_rx = state
        .audit_rx
        .lock()
        .map_err(|_| StartError::Http("audit lock".into()))?
        .take();
    let audit = match audit_rx {
        Some(rx) => tokio::spawn(audit::run(state.clone(), rx)),
        None => tokio::spawn(async {}),
    };
    Ok(Running {
        addr,
        state,
        shutdown: tx,
        task,
        deliverer,
        payments,
        lifecycle,
        audit,
    })
}
