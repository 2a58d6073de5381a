//! Request bodies: JSON with problem+json rejections, and `Idempotency-Key`.

use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// A JSON body, with the canonical hash of its value (for idempotency checks).
pub struct ApiJson<T> {
    pub value: T,
    /// SHA-256 of the body re-serialised with sorted keys, hex.
    pub canonical_hash: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let m = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                m == "application/json" || m.ends_with("+json")
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is over the service's size limit",
                )
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        let mut raw: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        })?;
        integral_numbers(&mut raw);
        let canonical = serde_json::to_vec(&raw).unwrap_or_default();
        let canonical_hash = hex::encode(Sha256::digest(&canonical));
        let value = serde_json::from_value(raw).map_err(|e| {
            ApiError::unprocessable(
                "invalid_body",
                format!("the JSON does not fit this endpoint: {e}"),
            )
        })?;
        Ok(ApiJson {
            value,
            canonical_hash,
        })
    }
}

/// JSON Schema counts `2.0` as an integer, and so does the API: a number without a fraction
/// is made an integer before the body is read into its type (which may want `u64`).
fn integral_numbers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                // In range of i64 or u64: exactly representable as one of them.
                if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    *v = Value::from(f as i64);
                } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *v = Value::from(f as u64);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(m) => m.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// The `Idempotency-Key` header: 1..255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let v = headers.get("idempotency-key").ok_or_else(|| {
        ApiError::bad_request(
            "idempotency_key_required",
            "this request creates something: send an Idempotency-Key header (e.g. a UUID)",
        )
    })?;
    let s = v.to_str().map_err(|_| {
        ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be visible ASCII")
    })?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1..255 visible ASCII characters",
        ));
    }
    Ok(s.to_string())
}
