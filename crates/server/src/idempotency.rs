//! `Idempotency-Key` on every POST that creates something: the first response is kept; a
//! retry with the same key and the same request gets it again (with `idempotent-replayed:
//! true`), the same key with another request is refused (422 `idempotency_key_reused`).
//!
//! The stored response is written in the same database transaction as what the request
//! creates (enrollments, memberships, devices, API keys and their rotation, links, webhook
//! endpoints): both are kept or neither, so a crash between the two cannot leave a created
//! device or key without its stored response (which would let a retry create a second one),
//! nor a stored response for something that was never created. Two concurrent requests with
//! one key: the second one's transaction fails on the key and writes nothing, and it answers
//! with the first one's stored response.

use crate::body::idempotency_key;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use openpalm_domain::now_unix;
use openpalm_store::{IdempotencyRecord, IdempotencyWrite, StoreError};
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

/// Marks a stored response kept encrypted (it carries a secret shown once).
const SEALED: &str = "sealed:v1:";

/// Replay a stored response, or refuse a different request under the same key.
pub fn replay(
    state: &AppState,
    business_id: &str,
    key: &str,
    prev: IdempotencyRecord,
    hash: &str,
) -> Result<Response, ApiError> {
    if prev.request_hash != hash {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        ));
    }
    let status = StatusCode::from_u16(prev.status).map_err(|e| ApiError::internal("stored status", e))?;
    let body = match prev.response.strip_prefix(SEALED) {
        Some(h) => {
            let sealed = hex::decode(h).map_err(|e| ApiError::internal("stored response", e))?;
            state
                .keys
                .open_stored_response(business_id, key, &sealed)
                .map_err(|e| ApiError::internal("stored response", e))?
        }
        None => prev.response,
    };
    Ok(json_response(status, &body, true))
}

/// The request's key and identity, handed to a create so that it stores its response in
/// its own transaction.
#[derive(Clone, Debug)]
pub struct Idem {
    pub business_id: String,
    pub key: String,
    pub hash: String,
}

impl Idem {
    /// The record to write with the created thing: `status` and `body` are what the caller
    /// gets, now and on every replay.
    pub fn write(&self, status: StatusCode, body: &impl serde::Serialize) -> IdempotencyWrite {
        self.record(status, serde_json::to_string(body).unwrap_or_default())
    }

    /// Like [`Idem::write`] for a response that carries a secret shown once: the stored copy
    /// is encrypted under the master key (a database dump does not reveal the secret).
    pub fn write_secret(
        &self,
        state: &AppState,
        status: StatusCode,
        body: &impl serde::Serialize,
    ) -> (IdempotencyWrite, String) {
        let text = serde_json::to_string(body).unwrap_or_default();
        let sealed = state
            .keys
            .seal_stored_response(&self.business_id, &self.key, &text);
        (
            self.record(status, format!("{SEALED}{}", hex::encode(sealed))),
            text,
        )
    }

    fn record(&self, status: StatusCode, response: String) -> IdempotencyWrite {
        IdempotencyWrite {
            business_id: self.business_id.clone(),
            key: self.key.clone(),
            record: IdempotencyRecord {
                request_hash: self.hash.clone(),
                status: status.as_u16(),
                response,
            },
            at: now_unix(),
        }
    }
}

/// What a create answers: the record it wrote, and the body when the record holds it sealed.
pub struct Created {
    pub write: IdempotencyWrite,
    pub clear_body: Option<String>,
}

impl From<IdempotencyWrite> for Created {
    fn from(write: IdempotencyWrite) -> Created {
        Created {
            write,
            clear_body: None,
        }
    }
}

impl From<(IdempotencyWrite, String)> for Created {
    fn from((write, body): (IdempotencyWrite, String)) -> Created {
        Created {
            write,
            clear_body: Some(body),
        }
    }
}

/// Run a create under the request's `Idempotency-Key` (required). `f` gets the key and must
/// write [`Idem::write`] in the transaction that creates; it returns that record, which is
/// what the caller is answered.
pub async fn create<Fut, C>(
    state: &AppState,
    business_id: &str,
    headers: &HeaderMap,
    hash: String,
    f: impl FnOnce(Idem) -> Fut,
) -> Result<Response, ApiError>
where
    Fut: Future<Output = Result<C, ApiError>>,
    C: Into<Created>,
{
    let key = idempotency_key(headers)?;
    if let Some(prev) = state.store.idempotency(business_id, &key).await? {
        return replay(state, business_id, &key, prev, &hash);
    }
    let idem = Idem {
        business_id: business_id.to_string(),
        key: key.clone(),
        hash: hash.clone(),
    };
    match f(idem).await.map(Into::into) {
        Ok(Created { write, clear_body }) => {
            let status = StatusCode::from_u16(write.record.status)
                .map_err(|e| ApiError::internal("idempotency status", e))?;
            let body = clear_body.unwrap_or(write.record.response);
            Ok(json_response(status, &body, false))
        }
        Err(e) if e.code == KEY_TAKEN => {
            // A concurrent request with the same key committed first; ours wrote nothing.
            match state.store.idempotency(business_id, &key).await? {
                Some(prev) => replay(state, business_id, &key, prev, &hash),
                None => Err(ApiError::internal("idempotency", "key taken but no record")),
            }
        }
        Err(e) => Err(e),
    }
}

/// The problem code [`StoreError::IdempotencyKeyTaken`] becomes (409 if it ever reaches a
/// caller: only [`create`] and enrollment see it, and they replay instead).
pub const KEY_TAKEN: &str = "idempotency_key_in_use";

/// Map a store error, keeping `Conflict` under a route-specific code.
pub fn store_error(e: StoreError, conflict_code: &str) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::conflict(conflict_code, m),
        other => other.into(),
    }
}
