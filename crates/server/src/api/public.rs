//! Unauthenticated endpoints: health, the service's HPKE key, the consent text, the API
//! description.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use openpalm_domain::protocol::{HPKE_INFO, HPKE_SUITE, MAX_CLOCK_SKEW_SECS};
use serde_json::{json, Value};

/// `GET /v1/health`
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let templates = state
        .matcher
        .read()
        .map(|m| m.len())
        .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
    Ok(Json(json!({ "status": "ok", "templates": templates })))
}

/// `GET /v1/service-key`: what readers seal captures to.
pub async fn service_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "suite": HPKE_SUITE,
        "kem": "DHKEM(X25519, HKDF-SHA256)",
        "kdf": "HKDF-SHA256",
        "aead": "ChaCha20Poly1305",
        "mode": "base",
        "info": String::from_utf8_lossy(HPKE_INFO),
        "public_key": state.keys.public_key_base64(),
        "max_clock_skew_secs": MAX_CLOCK_SKEW_SECS,
        "signature": "Ed25519",
        // Verifies the deletion receipts the service signs (`openpalm receipt verify`).
        "receipt_public_key": state.keys.receipt_public_key_base64(),
    }))
}

/// `GET /v1/consent-texts/current`
pub async fn consent_text(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let t = state
        .store
        .current_consent_text()
        .await?
        .ok_or_else(|| ApiError::not_found("consent text"))?;
    Ok(Json(json!(t)))
}

/// `GET /openapi.json`
pub async fn openapi() -> Json<Value> {
    Json(crate::api::openapi_document())
}
