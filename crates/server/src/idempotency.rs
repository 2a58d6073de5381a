//! `Idempotency-Key` on every POST that creates something: the first response is kept; a
//! retry with the same key and the same request gets it again (with `idempotent-replayed:
//! true`), the same key with another request is refused (422 `idempotency_key_reused`).
//!
//! Enrollment stores its response in the same transaction as the person. The other creates
//! (devices, API keys, links) store it right after the create: a crash between the two can
//! let a retry create a second device or key (links are unique per value anyway).

use crate::body::idempotency_key;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use openpalm_domain::now_unix;
use openpalm_store::IdempotencyRecord;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::future::Future;

/// The request's identity for idempotency: route, path parameters and canonical body.
pub fn request_hash(route: &str, path: &str, body_hash: &str) -> String {
    hex::encode(Sha256::digest(format!("{route}\n{path}\n{body_hash}").as_bytes()))
}

/// A stored JSON response.
pub fn json_response(status: StatusCode, body: &str, replayed: bool) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// Replay a stored response, or refuse a different request under the same key.
pub fn replay(prev: IdempotencyRecord, hash: &str) -> Result<Response, ApiError> {
    if prev.request_hash != hash {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        ));
    }
    let status = StatusCode::from_u16(prev.status).map_err(|e| ApiError::internal("stored status", e))?;
    Ok(json_response(status, &prev.response, true))
}

/// Run a create under the request's `Idempotency-Key` (required).
pub async fn create<Fut>(
    state: &AppState,
    business_id: &str,
    headers: &HeaderMap,
    hash: String,
    f: impl FnOnce() -> Fut,
) -> Result<Response, ApiError>
where
    Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let key = idempotency_key(headers)?;
    if let Some(prev) = state.store.idempotency(business_id, &key).await? {
        return replay(prev, &hash);
    }
    let (status, body) = f().await?;
    let text = body.to_string();
    let record = IdempotencyRecord {
        request_hash: hash.clone(),
        status: status.as_u16(),
        response: text.clone(),
    };
    if !state
        .store
        .save_idempotency(business_id, &key, &record, now_unix())
        .await?
    {
        // A concurrent request with the same key won the race: answer as it did.
        if let Some(prev) = state.store.idempotency(business_id, &key).await? {
            return replay(prev, &hash);
        }
    }
    Ok(json_response(status, &text, false))
}
