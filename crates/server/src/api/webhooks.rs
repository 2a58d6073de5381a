//! Webhook endpoints of a business: register (the signing secret is shown once), list,
//! delete, and read recent deliveries. Delivery itself is [`crate::webhooks`].

use crate::api::ListItems;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::ids::{new_id, prefix};
use openpalm_domain::model::WebhookEndpoint;
use openpalm_domain::now_unix;
use openpalm_domain::webhook::{generate_secret, EventType};
use openpalm_store::{DeliveryRecord, IdempotencyWrite};
use serde::{Deserialize, Serialize};

/// A webhook endpoint (never its secret).
#[derive(Serialize, schemars::JsonSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub created_at: i64,
}

/// A new endpoint with its signing secret, shown once.
#[derive(Serialize, schemars::JsonSchema)]
pub struct NewEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_...`: verifies the `webhook-signature` header.
    pub secret: String,
}

/// One delivery of an event to an endpoint.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DeliveryView {
    pub event_id: String,
    pub event_type: EventType,
    /// pending, delivered, failed or cancelled.
    pub state: String,
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at_ms: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A deleted endpoint.
#[derive(Serialize, schemars::JsonSchema)]
pub struct EndpointDeleted {
    pub id: String,
    pub deleted: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// An absolute `https://` URL without credentials or fragment, at most 2000 characters;
    /// it receives POSTs with webhook-id, webhook-timestamp and webhook-signature (v1,
    /// HMAC-SHA256 of id.timestamp.body).
    #[schemars(length(min = 1, max = 2000), url)]
    pub url: String,
    /// Events to send (default: all).
    #[schemars(length(min = 1))]
    pub events: Option<Vec<EventType>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct LimitQuery {
    /// How many, 1..200 (default 50).
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<String>,
}

pub fn endpoint_view(e: &WebhookEndpoint) -> EndpointView {
    EndpointView {
        id: e.id.clone(),
        url: e.url.clone(),
        events: e.event_types.clone(),
        created_at: e.created_at,
    }
}

fn delivery_view(d: &DeliveryRecord) -> DeliveryView {
    DeliveryView {
        event_id: d.event_id.clone(),
        event_type: d.event_type,
        state: d.state.clone(),
        attempts: d.attempts,
        next_attempt_at_ms: (d.state == "pending").then_some(d.next_attempt_ms),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        created_at: d.created_at,
    }
}

/// An absolute `https://` URL (or `http://` when the configuration allows it), without
/// credentials.
fn check_url(state: &AppState, url: &str) -> Result<reqwest::Url, ApiError> {
    let bad = |m: &str| ApiError::unprocessable("invalid_webhook_url", m.to_string());
    if url.len() > 2000 {
        return Err(bad("url must be at most 2000 characters"));
    }
    let u = reqwest::Url::parse(url).map_err(|e| bad(&format!("url is not valid: {e}")))?;
    match u.scheme() {
        "https" => {}
        "http" if state.config.webhook_allow_http => {}
        "http" => {
            return Err(bad(
                "url must be https:// (this service does not send webhooks over plain http)",
            ))
        }
        _ => return Err(bad("url must be https://")),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("url must name a host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("url must not carry credentials"));
    }
    if u.fragment().is_some() {
        return Err(bad("url must not have a #fragment"));
    }
    Ok(u)
}

/// `POST /v1/webhook-endpoints`
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<CreateEndpoint>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Webhooks)?;
    let hash = request_hash("POST /v1/webhook-endpoints", "", &body.canonical_hash);
    idempotency::create(&state, &caller.business_id, &headers, hash, |idem| {
        register(&state, &caller.business_id, body.value, idem)
    })
    .await
}

async fn register(
    state: &AppState,
    business_id: &str,
    req: CreateEndpoint,
    idem: Idem,
) -> Result<(IdempotencyWrite, String), ApiError> {
    let url = check_url(state, req.url.trim())?;
    state
        .egress
        .check_registration(&url)
        .await
        .map_err(|e| ApiError::unprocessable("webhook_target_refused", e.to_string()))?;
    let url = url.to_string();
    let mut events = req.events.unwrap_or_else(|| EventType::ALL.to_vec());
    if events.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_events",
            "give at least one event type, or leave events out for all",
        ));
    }
    events.sort_by_key(|t| t.as_str());
    events.dedup();
    let id = new_id(prefix::WEBHOOK_ENDPOINT);
    let secret = generate_secret();
    let endpoint = WebhookEndpoint {
        secret_sealed: state.keys.seal_webhook_secret(&id, &secret),
        id,
        business_id: business_id.to_string(),
        url,
        event_types: events,
        created_at: now_unix(),
        deleted_at: None,
    };
    let view = NewEndpoint {
        endpoint: endpoint_view(&endpoint),
        secret: secret.to_string(),
    };
    let (w, text) = idem.write_secret(state, StatusCode::CREATED, &view);
    state.store.create_webhook_endpoint(&endpoint, Some(&w)).await?;
    Ok((w, text))
}

/// `GET /v1/webhook-endpoints`
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<ListItems<EndpointView>>, ApiError> {
    let caller = auth.require(Scope::Webhooks)?;
    let items = state.store.list_webhook_endpoints(&caller.business_id).await?;
    Ok(Json(ListItems {
        items: items.iter().map(endpoint_view).collect(),
    }))
}

/// `DELETE /v1/webhook-endpoints/{id}`: nothing more is sent to it; pending deliveries are
/// cancelled.
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<EndpointDeleted>, ApiError> {
    let caller = auth.require(Scope::Webhooks)?;
    if !state
        .store
        .delete_webhook_endpoint(&caller.business_id, &id, now_unix())
        .await?
    {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    Ok(Json(EndpointDeleted { id, deleted: true }))
}

/// `GET /v1/webhook-endpoints/{id}/deliveries?limit=`: the latest deliveries, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<ListItems<DeliveryView>>, ApiError> {
    let caller = auth.require(Scope::Webhooks)?;
    let limit = match &q.limit {
        None => 50,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return Err(ApiError::bad_request("invalid_limit", "limit must be 1..200")),
        },
    };
    if state
        .store
        .webhook_endpoint(&caller.business_id, &id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let items = state
        .store
        .webhook_deliveries(&caller.business_id, &id, limit)
        .await?;
    Ok(Json(ListItems {
        items: items.iter().map(delivery_view).collect(),
    }))
}
