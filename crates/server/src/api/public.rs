//! Unauthenticated endpoints: health, the service's HPKE key, the consent text, the API
//! description.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use openpalm_domain::model::ConsentText;
use openpalm_domain::protocol::{HPKE_INFO, HPKE_SUITE, MAX_CLOCK_SKEW_SECS};
use serde::Serialize;
use serde_json::Value;

/// The service is up.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// Templates in the gallery.
    pub templates: usize,
    /// Stored people left out of the gallery at start because their data could not be read
    /// (a template that fails to decrypt or parse); the operator finds them in the store's
    /// `quarantine` table, with the reason.
    pub quarantined: usize,
}

#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
}

/// The service can take traffic: the database answers and the gallery is loaded.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Ready {
    pub status: ReadyStatus,
    /// Templates in the gallery.
    pub templates: usize,
    /// People in the gallery.
    pub people: usize,
}

#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
}

/// The key readers seal captures to, and how.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ServiceKey {
    pub suite: &'static str,
    pub kem: &'static str,
    pub kdf: &'static str,
    pub aead: &'static str,
    pub mode: &'static str,
    /// HPKE `info`.
    pub info: String,
    /// X25519 public key, standard base64.
    pub public_key: String,
    pub max_clock_skew_secs: i64,
    /// What devices sign captures with.
    pub signature: &'static str,
    /// Verifies the deletion receipts the service signs (`openpalm receipt verify`).
    pub receipt_public_key: String,
}

/// `GET /v1/health`
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let templates = state
        .matcher
        .read()
        .map(|m| m.len())
        .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
    Ok(Json(Health {
        status: HealthStatus::Ok,
        templates,
        quarantined: state.quarantined,
    }))
}

/// `GET /v1/ready`: readiness, apart from liveness (`/v1/health`): 503 `database_unavailable`
/// when the database does not answer a trivial query, 503 `gallery_unavailable` when the
/// in-memory gallery cannot be read.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let unavailable = |code: &str, detail: &str| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
    if let Err(e) = state.store.ping().await {
        tracing::error!("openpalm-server: readiness: database: {e}");
        return Err(unavailable(
            "database_unavailable",
            "the database does not answer",
        ));
    }
    let templates = state
        .matcher
        .read()
        .map(|m| m.len())
        .map_err(|_| unavailable("gallery_unavailable", "the gallery is not loaded"))?;
    let people = state
        .directory
        .read()
        .map(|d| d.person_ids.len())
        .map_err(|_| unavailable("gallery_unavailable", "the gallery is not loaded"))?;
    Ok(Json(Ready {
        status: ReadyStatus::Ready,
        templates,
        people,
    }))
}

/// `GET /v1/service-key`: what readers seal captures to.
pub async fn service_key(State(state): State<AppState>) -> Json<ServiceKey> {
    Json(ServiceKey {
        suite: HPKE_SUITE,
        kem: "DHKEM(X25519, HKDF-SHA256)",
        kdf: "HKDF-SHA256",
        aead: "ChaCha20Poly1305",
        mode: "base",
        info: String::from_utf8_lossy(HPKE_INFO).to_string(),
        public_key: state.keys.public_key_base64(),
        max_clock_skew_secs: MAX_CLOCK_SKEW_SECS,
        signature: "Ed25519",
        receipt_public_key: state.keys.receipt_public_key_base64(),
    })
}

/// `GET /v1/consent-texts/current`
pub async fn consent_text(State(state): State<AppState>) -> Result<Json<ConsentText>, ApiError> {
    let t = state
        .store
        .current_consent_text()
        .await?
        .ok_or_else(|| ApiError::not_found("consent text"))?;
    Ok(Json(t))
}

/// `GET /openapi.json`
pub async fn openapi() -> Json<Value> {
    Json(crate::api::openapi_document())
}
