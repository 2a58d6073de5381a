//! RFC 9457 problem details: every error the service answers is `application/problem+json`
//! with a stable `code` (also the last segment of `type`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Base of the `type` URIs.
pub const TYPE_BASE: &str = "https://openpalm.dev/problems/";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details, as every error is answered; some problems add members of their
/// own (e.g. `capture_index`, `required_scope`, `attempts_left`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// `https://openpalm.dev/problems/<code>`.
    #[schemars(url)]
    pub r#type: String,
    pub title: String,
    /// The HTTP status.
    #[schemars(range(min = 400, max = 599))]
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable: the last segment of `type`.
    pub code: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// On a 429 answer (response extension): the limit that refused it, for the metrics.
#[derive(Debug, Clone)]
pub struct LimitHit(pub String);

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub title: String,
    pub detail: String,
    /// Extension members (e.g. which capture was refused).
    pub extra: Map<String, Value>,
    /// Seconds for a `Retry-After` header (rate limits, overload).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// Answer with `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }
    pub fn unauthorized(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
    }
    pub fn forbidden(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, detail)
    }
    pub fn conflict(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, detail)
    }
    /// Internal failures: the detail goes to the log, not to the caller.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!("openpalm-server: internal error: {context}: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the service log",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            r#type: format!("{TYPE_BASE}{}", self.code),
            title: self.title.clone(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            extra: self.extra.clone(),
        }
    }

    pub fn body(&self) -> Value {
        serde_json::to_value(self.problem()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut r = (self.status, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(Value::String(limit)) = self.extra.get("limit") {
                r.extensions_mut().insert(LimitHit(limit.clone()));
            }
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

impl From<openpalm_store::StoreError> for ApiError {
    fn from(e: openpalm_store::StoreError) -> Self {
        match e {
            openpalm_store::StoreError::Conflict(m) => ApiError::conflict("conflict", m),
            openpalm_store::StoreError::IdempotencyKeyTaken => ApiError::conflict(
                crate::idempotency::KEY_TAKEN,
                "another request with this Idempotency-Key is being processed; retry",
            ),
            other => ApiError::internal("store", other),
        }
    }
}

/// The problem for an error status produced outside our handlers (unknown route, wrong
/// method, body over the limit in a layer).
pub fn for_status(status: StatusCode) -> ApiError {
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this resource does not accept this method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is over the size limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send application/json"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        s if s.is_server_error() => ("internal", "internal error; see the service log"),
        _ => ("bad_request", "the request cannot be processed"),
    };
    ApiError::new(status, code, detail)
}
