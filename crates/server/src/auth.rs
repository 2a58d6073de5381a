//! Authentication: `Authorization: Bearer op_test_...` resolves to a [`Caller`] (business,
//! key, scopes); the admin token for bootstrap.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use openpalm_domain::apikey::{self, Scope};
use openpalm_domain::model::Caller;
use sha2::{Digest, Sha256};

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing_credentials", "send Authorization: Bearer <API key>")
        })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_credentials", "the Authorization header is not text"))?;
    value.strip_prefix("Bearer ").map(str::trim).ok_or_else(|| {
        ApiError::unauthorized("invalid_credentials", "expected Authorization: Bearer <API key>")
    })
}

/// The source address of a request, when the listener recorded it.
pub fn source_addr(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Run an authentication under the failed-authentication limit of the source address: an
/// address whose allowance is spent is refused (429) before its credential is even looked
/// at, and each failure (401) spends from it.
pub async fn limited_auth<T, F>(parts: &Parts, state: &AppState, check: F) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let addr = source_addr(parts);
    state.limits.before_auth(addr)?;
    match check.await {
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
            state.limits.failed_auth(addr)?;
            Err(e)
        }
        other => other,
    }
}

/// An authenticated business caller.
pub struct Auth(pub Caller);

impl Auth {
    /// Refuse unless the key carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Caller, ApiError> {
        if self.0.scopes.contains(&scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(
                "insufficient_scope",
                format!("this API key lacks the {} scope", scope.as_str()),
            )
            .with("required_scope", scope.as_str()))
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let record = limited_auth(parts, state, api_key_record(parts, state)).await?;
        state.limits.api_key(&record.id)?;
        crate::audit::ActorSlot::set(
            parts,
            format!("business:{} key:{}", record.business_id, record.id),
            None,
        );
        Ok(Auth(Caller {
            business_id: record.environment.partition(&record.business_id),
            account_id: record.business_id,
            key_id: record.id,
            environment: record.environment,
            scopes: record.scopes,
        }))
    }
}

async fn api_key_record(
    parts: &Parts,
    state: &AppState,
) -> Result<openpalm_domain::model::ApiKeyRecord, ApiError> {
    let token = bearer(parts)?;
    let unknown = || ApiError::unauthorized("invalid_api_key", "unknown, malformed or revoked API key");
    if !apikey::looks_like_key(token) {
        return Err(unknown());
    }
    let record = state
        .store
        .api_key_by_hash(&apikey::hash(token))
        .await?
        .ok_or_else(unknown)?;
    if record.revoked_at.is_some() {
        return Err(unknown());
    }
    Ok(record)
}

/// Constant-time comparison of the presented admin token with the configured one.
pub fn check_admin(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(ApiError::forbidden(
            "admin_disabled",
            "no admin token is configured (set admin_token or OPENPALM_ADMIN_TOKEN)",
        ));
    };
    let given = bearer(parts)?;
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if diff != 0 {
        return Err(ApiError::unauthorized(
            "invalid_admin_token",
            "the admin token is wrong",
        ));
    }
    Ok(())
}

/// The admin (bootstrap) caller.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        limited_auth(parts, state, async { check_admin(parts, state) }).await?;
        crate::audit::ActorSlot::set(parts, "admin".into(), None);
        Ok(Admin)
    }
}
