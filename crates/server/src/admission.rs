//! Admission: at most `limits.max_concurrent_requests` requests are handled at once (more
//! wait up to `limits.queue_wait_ms` for a slot, then get `503 overloaded`), and none runs
//! past `limits.request_timeout_ms` (`503 request_timeout`). Both answers carry
//! `Retry-After`.
//!
//! A request cut off by the time limit is dropped at an await point: a database transaction
//! it had open rolls back; one that had committed is answered again, from its idempotency
//! record, to the client's retry with the same `Idempotency-Key`. Work already on the
//! blocking pool (an extraction) finishes there and its result is dropped.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The middleware.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &state.config.limits;
    let wait = Duration::from_millis(limits.queue_wait_ms);
    let permit = match state.admission.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => match tokio::time::timeout(wait, state.admission.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!(
                        "{} requests are being handled; try again shortly",
                        limits.max_concurrent_requests
                    ),
                )
                .retry_after(1)
                .into_response()
            }
        },
    };
    let limit = Duration::from_millis(limits.request_timeout_ms);
    let res = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!(
                "the request took longer than {} ms and was stopped; retry (with the same Idempotency-Key for a create)",
                limits.request_timeout_ms
            ),
        )
        .retry_after(1)
        .into_response(),
    };
    drop(permit);
    res
}
