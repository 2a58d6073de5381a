//! Businesses (admin bootstrap) and API keys.

use crate::auth::{Admin, Auth};
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::{self, Environment, Scope};
use openpalm_domain::ids::{new_id, prefix};
use openpalm_domain::model::{ApiKeyRecord, Business};
use openpalm_domain::now_unix;
use openpalm_store::IdempotencyWrite;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBusiness {
    /// 1..200 characters, not blank (surrounding spaces are dropped).
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::api::NOT_BLANK))]
    pub name: String,
    /// Environment of the first key (default test).
    pub environment: Option<Environment>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub environment: Environment,
    #[schemars(length(min = 1))]
    pub scopes: Vec<Scope>,
}

/// An API key as the business sees it (never its secret).
#[derive(Serialize, schemars::JsonSchema)]
pub struct KeyView {
    pub id: String,
    pub environment: Environment,
    pub scopes: Vec<Scope>,
    /// The first characters of the secret, to recognise it.
    pub display_prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A new API key with its secret, shown once.
#[derive(Serialize, schemars::JsonSchema)]
pub struct NewKeyView {
    #[serde(flatten)]
    pub key: KeyView,
    /// `op_test_...` or `op_live_...`: send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// A new business and its first API key (all scopes).
#[derive(Serialize, schemars::JsonSchema)]
pub struct BusinessCreated {
    pub business: Business,
    pub api_key: NewKeyView,
}

/// The business's API keys.
#[derive(Serialize, schemars::JsonSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

pub fn key_view(k: &ApiKeyRecord) -> KeyView {
    KeyView {
        id: k.id.clone(),
        environment: k.environment,
        scopes: k.scopes.clone(),
        display_prefix: k.display_prefix.clone(),
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

fn new_key(business_id: &str, environment: Environment, scopes: Vec<Scope>) -> (ApiKeyRecord, String) {
    let generated = apikey::generate(environment);
    let record = ApiKeyRecord {
        id: new_id(prefix::API_KEY),
        business_id: business_id.to_string(),
        environment,
        scopes,
        hash: generated.hash,
        display_prefix: generated.display_prefix,
        created_at: now_unix(),
        revoked_at: None,
    };
    (record, generated.secret)
}

fn with_secret(k: &ApiKeyRecord, secret: String) -> NewKeyView {
    NewKeyView {
        key: key_view(k),
        secret,
    }
}

/// `POST /v1/businesses` (admin token): a business and its first key (all scopes), shown once.
pub async fn create_business(
    State(state): State<AppState>,
    _admin: Admin,
    body: ApiJson<CreateBusiness>,
) -> Result<(StatusCode, Json<BusinessCreated>), ApiError> {
    let req = body.value;
    let name = crate::api::trim_blank(&req.name);
    if name.is_empty() || req.name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1..200 characters",
        ));
    }
    let business = Business {
        id: new_id(prefix::BUSINESS),
        name: name.to_string(),
        created_at: now_unix(),
    };
    let (key, secret) = new_key(
        &business.id,
        req.environment.unwrap_or(Environment::Test),
        Scope::ALL.to_vec(),
    );
    state.store.create_business(&business, &key).await?;
    Ok((
        StatusCode::CREATED,
        Json(BusinessCreated {
            business,
            api_key: with_secret(&key, secret),
        }),
    ))
}

/// A test key manages test keys only (a sandbox credential never mints a live one); a live
/// key manages both.
fn may_manage(caller: &openpalm_domain::model::Caller, env: Environment) -> bool {
    caller.environment == Environment::Live || env == Environment::Test
}

/// The key `id` of the caller's business, if the caller may manage it.
async fn managed_key(
    state: &AppState,
    caller: &openpalm_domain::model::Caller,
    id: &str,
) -> Result<ApiKeyRecord, ApiError> {
    state
        .store
        .api_key(&caller.account_id, id)
        .await?
        .filter(|k| may_manage(caller, k.environment))
        .ok_or_else(|| ApiError::not_found("API key"))
}

/// `GET /v1/api-keys`
pub async fn list_keys(State(state): State<AppState>, auth: Auth) -> Result<Json<KeyList>, ApiError> {
    let caller = auth.require(Scope::Keys)?;
    let keys = state.store.list_api_keys(&caller.account_id).await?;
    Ok(Json(KeyList {
        items: keys
            .iter()
            .filter(|k| may_manage(caller, k.environment))
            .map(key_view)
            .collect(),
    }))
}

/// `POST /v1/api-keys`
pub async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Keys)?;
    let hash = request_hash("POST /v1/api-keys", "", &body.canonical_hash);
    let req = body.value;
    let (st, partition, account) = (&state, caller.business_id.as_str(), caller.account_id.as_str());
    if !may_manage(caller, req.environment) {
        return Err(ApiError::forbidden(
            "environment_not_allowed",
            "a test key creates test keys only; create live keys with a live key",
        ));
    }
    idempotency::create(&state, partition, &headers, hash, |idem| async move {
        if req.scopes.is_empty() {
            return Err(ApiError::unprocessable(
                "invalid_scopes",
                "give at least one scope",
            ));
        }
        let (key, secret) = new_key(account, req.environment, req.scopes);
        let (w, body) = idem.write_secret(st, StatusCode::CREATED, &with_secret(&key, secret));
        st.store.insert_api_key(&key, Some(&w)).await?;
        Ok((w, body))
    })
    .await
}

/// `POST /v1/api-keys/{id}/rotate`: a new key with the same scopes; the old one is revoked.
pub async fn rotate_key(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Keys)?;
    let hash = request_hash("POST /v1/api-keys/{id}/rotate", &id, "");
    idempotency::create(&state, &caller.business_id, &headers, hash, |idem| {
        rotate(&state, caller, &id, idem)
    })
    .await
}

async fn rotate(
    state: &AppState,
    caller: &openpalm_domain::model::Caller,
    id: &str,
    idem: Idem,
) -> Result<(IdempotencyWrite, String), ApiError> {
    let business_id = caller.account_id.as_str();
    let old = managed_key(state, caller, id).await?;
    if old.revoked_at.is_some() {
        return Err(ApiError::conflict(
            "already_revoked",
            "this key is revoked; create a new one",
        ));
    }
    let (key, secret) = new_key(business_id, old.environment, old.scopes.clone());
    let (w, body) = idem.write_secret(state, StatusCode::CREATED, &with_secret(&key, secret));
    if !state
        .store
        .rotate_api_key(business_id, id, &key, now_unix(), Some(&w))
        .await?
    {
        return Err(ApiError::conflict(
            "already_revoked",
            "this key was revoked meanwhile",
        ));
    }
    Ok((w, body))
}

/// `POST /v1/api-keys/{id}/revoke`
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let caller = auth.require(Scope::Keys)?;
    let found = managed_key(&state, caller, &id).await?;
    if found.revoked_at.is_some()
        || !state
            .store
            .revoke_api_key(&caller.account_id, &id, now_unix())
            .await?
    {
        return Err(ApiError::conflict(
            "already_revoked",
            "this key is already revoked",
        ));
    }
    let k = managed_key(&state, caller, &id).await?;
    Ok(Json(key_view(&k)))
}
