//! Devices: register with an Ed25519 public key, list (cursor pages), read, revoke.

use crate::api::events::ListPage;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openpalm_domain::apikey::Scope;
use openpalm_domain::ids::{new_id, prefix, DeviceKind};
use openpalm_domain::model::Device;
use openpalm_domain::now_unix;
use openpalm_domain::protocol::parse_device_public_key;
use openpalm_store::{Cursor, IdempotencyWrite};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    pub kind: DeviceKind,
    /// Where it stands: 1..200 characters, not blank.
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::api::NOT_BLANK))]
    pub site: String,
    /// Ed25519 public key, 32 bytes, standard base64.
    #[schemars(regex(pattern = openpalm_domain::protocol::B64_32_BYTES), extend("contentEncoding" = "base64"))]
    pub public_key: String,
}

/// What a cursor looks like: `<time>.<id>`, as [`Cursor::encode`] writes them.
pub const CURSOR_PATTERN: &str = "^-?[0-9]{1,18}\\.[A-Za-z0-9_]{1,128}$";

/// Whether `c` has the form of [`CURSOR_PATTERN`].
fn cursor_form(c: &str) -> bool {
    let Some((at, id)) = c.split_once('.') else {
        return false;
    };
    let digits = at.strip_prefix('-').unwrap_or(at);
    (1..=18).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `?cursor=&limit=` of list endpoints.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    #[schemars(regex(pattern = CURSOR_PATTERN))]
    pub cursor: Option<String>,
    /// Page size, 1..200 (default 50).
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<String>,
}

impl PageQuery {
    /// The cursor and the page size (default 50, at most 200).
    pub fn parse(&self) -> Result<(Option<Cursor>, u32), ApiError> {
        let cursor = match &self.cursor {
            None => None,
            Some(c) => Some(Cursor::decode(c).filter(|_| cursor_form(c)).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this service issued")
            })?),
        };
        let limit = match &self.limit {
            None => 50,
            Some(l) => match l.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => n,
                _ => return Err(ApiError::bad_request("invalid_limit", "limit must be 1..200")),
            },
        };
        Ok((cursor, limit))
    }
}

/// A registered device.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DeviceView {
    pub id: String,
    pub kind: DeviceKind,
    pub site: String,
    /// Ed25519 public key, standard base64.
    pub public_key: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn device_view(d: &Device) -> DeviceView {
    DeviceView {
        id: d.id.clone(),
        kind: d.kind,
        site: d.site.clone(),
        public_key: B64.encode(d.public_key),
        created_at: d.created_at,
        revoked_at: d.revoked_at,
    }
}

/// `POST /v1/devices`
pub async fn register(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<RegisterDevice>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Devices)?;
    let hash = request_hash("POST /v1/devices", "", &body.canonical_hash);
    idempotency::create(&state, &caller.business_id, &headers, hash, |idem| {
        register_device(&state, &caller.business_id, body.value, idem)
    })
    .await
}

async fn register_device(
    state: &AppState,
    business_id: &str,
    req: RegisterDevice,
    idem: Idem,
) -> Result<IdempotencyWrite, ApiError> {
    let site = crate::api::trim_blank(&req.site);
    if site.is_empty() || req.site.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_site",
            "site must be 1..200 characters",
        ));
    }
    let key = parse_device_public_key(&req.public_key)
        .map_err(|m| ApiError::unprocessable("invalid_public_key", m))?;
    let device = Device {
        id: new_id(prefix::DEVICE),
        business_id: business_id.to_string(),
        kind: req.kind,
        site: site.to_string(),
        public_key: key.to_bytes(),
        created_at: now_unix(),
        revoked_at: None,
    };
    let w = idem.write(StatusCode::CREATED, &device_view(&device));
    state.store.insert_device(&device, Some(&w)).await?;
    Ok(w)
}

/// `GET /v1/devices?cursor=&limit=`
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage<DeviceView>>, ApiError> {
    let caller = auth.require(Scope::Devices)?;
    let (cursor, limit) = q.parse()?;
    let page = state
        .store
        .list_devices(&caller.business_id, cursor.as_ref(), limit)
        .await?;
    Ok(Json(ListPage {
        items: page.items.iter().map(device_view).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

async fn own_device(state: &AppState, business_id: &str, id: &str) -> Result<Device, ApiError> {
    match state.store.device(id).await? {
        Some(d) if d.business_id == business_id => Ok(d),
        _ => Err(ApiError::not_found("device")),
    }
}

/// `GET /v1/devices/{id}`
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let caller = auth.require(Scope::Devices)?;
    Ok(Json(device_view(
        &own_device(&state, &caller.business_id, &id).await?,
    )))
}

/// `POST /v1/devices/{id}/revoke`: the device's captures are refused from now on.
pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let caller = auth.require(Scope::Devices)?;
    own_device(&state, &caller.business_id, &id).await?;
    if !state
        .store
        .revoke_device(&caller.business_id, &id, now_unix())
        .await?
    {
        return Err(ApiError::conflict(
            "already_revoked",
            "this device is already revoked",
        ));
    }
    Ok(Json(device_view(
        &own_device(&state, &caller.business_id, &id).await?,
    )))
}
