//! Venue events and their tickets: create and read events with the gates of their palm
//! lanes; issue tickets in bulk to the business's members (by pseudonymous ID or by the
//! member ID they linked), transfer and cancel them. Every ticket holder joins the event's
//! matcher scope, so a gate searches the event's holders, not everyone enrolled.

use crate::api::devices::PageQuery;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, store_error, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::entry::{validate_ticket_type, Event, Ticket, TicketState};
use openpalm_domain::ids::{new_id, prefix, DeviceKind};
use openpalm_domain::model::Caller;
use openpalm_domain::now_unix;
use openpalm_store::{IdempotencyWrite, LaneWrite, TicketMove};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The most tickets one bulk call may issue.
pub const MAX_TICKETS_PER_CALL: usize = 5000;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReentryPolicy {
    /// Re-entries allowed after leaving through an exit gate (0: none), at most 100.
    #[schemars(range(max = 100))]
    pub max_reentries: u32,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    /// 1..200 characters, not blank.
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::api::NOT_BLANK))]
    pub name: String,
    /// 1..200 characters, not blank.
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::api::NOT_BLANK))]
    pub site: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub doors_open_at: i64,
    /// Default: the event's end.
    pub doors_close_at: Option<i64>,
    /// Gate devices of the palm lanes that admit (live devices of kind gate; 64 gates at most
    /// with the exit gates, each once).
    #[schemars(length(min = 1, max = 64))]
    pub gates: Vec<String>,
    /// Gate devices that record a holder leaving (for re-entry).
    #[serde(default)]
    #[schemars(length(max = 63))]
    pub exit_gates: Vec<String>,
    /// Default: no re-entry.
    pub reentry: Option<ReentryPolicy>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct ReentryView {
    pub max_reentries: u32,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct EventView {
    pub id: String,
    pub name: String,
    pub site: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub doors_open_at: i64,
    pub doors_close_at: i64,
    pub gates: Vec<String>,
    pub exit_gates: Vec<String>,
    pub reentry: ReentryView,
    pub created_at: i64,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> EventView {
        EventView {
            id: e.id.clone(),
            name: e.name.clone(),
            site: e.site.clone(),
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            doors_open_at: e.doors_open_at,
            doors_close_at: e.doors_close_at,
            gates: e.entry_gates.clone(),
            exit_gates: e.exit_gates.clone(),
            reentry: ReentryView {
                max_reentries: e.max_reentries,
            },
            created_at: e.created_at,
        }
    }
}

/// A list page.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "ListPage_{T}")]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

fn json_value<T: Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal("response", e))
}

/// `POST /v1/events`
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<CreateEvent>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Events)?;
    let hash = request_hash("POST /v1/events", "", &body.canonical_hash);
    let req = body.value;
    let (st, business_id) = (&state, caller.business_id.as_str());
    idempotency::create(&state, business_id, &headers, hash, |idem| async move {
        create_event(st, business_id, req, idem).await
    })
    .await
}

async fn create_event(
    state: &AppState,
    business_id: &str,
    req: CreateEvent,
    idem: Idem,
) -> Result<IdempotencyWrite, ApiError> {
    for (field, v) in [("name", &req.name), ("site", &req.site)] {
        if !openpalm_domain::text_fits(v, 200) {
            return Err(ApiError::unprocessable(
                "invalid_event",
                format!("{field} must be 1..200 characters"),
            ));
        }
    }
    let event = Event {
        id: new_id(prefix::VENUE_EVENT),
        business_id: business_id.to_string(),
        name: crate::api::trim_blank(&req.name).to_string(),
        site: crate::api::trim_blank(&req.site).to_string(),
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        doors_open_at: req.doors_open_at,
        doors_close_at: req.doors_close_at.unwrap_or(req.ends_at),
        max_reentries: req.reentry.map_or(0, |r| r.max_reentries),
        entry_gates: req.gates,
        exit_gates: req.exit_gates,
        created_at: now_unix(),
    };
    event
        .validate()
        .map_err(|e| ApiError::unprocessable("invalid_event", e.to_string()))?;
    for g in event.entry_gates.iter().chain(&event.exit_gates) {
        match state.store.device(g).await? {
            Some(d)
                if d.business_id == business_id && d.revoked_at.is_none() && d.kind == DeviceKind::Gate => {}
            Some(d) if d.business_id == business_id && d.kind != DeviceKind::Gate => {
                return Err(ApiError::unprocessable(
                    "not_a_gate",
                    format!("device {g} is a {}, not a gate", d.kind.as_str()),
                )
                .with("device_id", g.as_str()))
            }
            _ => {
                return Err(ApiError::unprocessable(
                    "unknown_gate",
                    format!("no live gate {g} of this business"),
                )
                .with("device_id", g.as_str()))
            }
        }
    }
    let w = idem.write(StatusCode::CREATED, &json_value(&EventView::from(&event))?);
    state.store.create_event(&event, Some(&w)).await?;
    Ok(w)
}

/// An event of the caller's business, or 404.
pub async fn own_event(state: &AppState, business_id: &str, id: &str) -> Result<Event, ApiError> {
    state
        .store
        .event(business_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))
}

/// `GET /v1/events`
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage<EventView>>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    let (cursor, limit) = q.parse()?;
    let page = state
        .store
        .list_events(&caller.business_id, cursor.as_ref(), limit)
        .await?;
    Ok(Json(ListPage {
        items: page.items.iter().map(EventView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// `GET /v1/events/{id}`
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    Ok(Json(EventView::from(
        &own_event(&state, &caller.business_id, &id).await?,
    )))
}

/// Who a ticket is for: exactly one of the two.
#[derive(Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HolderRef {
    /// The business's pseudonymous ID of the person.
    pub pseudonymous_id: Option<String>,
    /// A member ID the person linked to this business (a ticketing app's ID).
    pub member_id: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketSpec {
    pub holder: HolderRef,
    /// 1..100 characters, not blank.
    #[schemars(length(min = 1, max = 100), regex(pattern = crate::api::NOT_BLANK))]
    pub ticket_type: String,
    /// Entry gates it is valid at; default: every entry gate of the event.
    #[serde(default)]
    pub gates: Vec<String>,
    /// The business's own ticket number, unique per event.
    pub external_ref: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueTickets {
    #[schemars(length(min = 1, max = 5000))]
    pub tickets: Vec<TicketSpec>,
}

#[derive(Clone, Serialize, schemars::JsonSchema)]
pub struct HolderView {
    pub pseudonymous_id: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct TicketView {
    pub id: String,
    pub event_id: String,
    /// `null` once the holder was erased.
    pub holder: Option<HolderView>,
    pub ticket_type: String,
    /// Empty: every entry gate of the event.
    pub gates: Vec<String>,
    pub external_ref: Option<String>,
    pub state: TicketState,
    pub entries: u32,
    pub transferred_from: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TicketView {
    pub fn new(t: &Ticket, holder: Option<&str>) -> TicketView {
        TicketView {
            id: t.id.clone(),
            event_id: t.event_id.clone(),
            holder: holder.map(|p| HolderView {
                pseudonymous_id: p.to_string(),
            }),
            ticket_type: t.ticket_type.clone(),
            gates: t.gates.clone(),
            external_ref: t.external_ref.clone(),
            state: t.state,
            entries: t.entries,
            transferred_from: t.transferred_from.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A ticket the bulk call could not issue, by its index in the request.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RejectedTicket {
    pub index: usize,
    pub code: &'static str,
    pub detail: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct IssuedTickets {
    pub issued: usize,
    pub tickets: Vec<TicketView>,
    pub rejected: Vec<RejectedTicket>,
}

/// A holder resolved to a member of the business: (person ID, pseudonymous ID), or why not
/// (problem code, detail).
type Resolved = Result<(String, String), (&'static str, String)>;

async fn resolve_holder(state: &AppState, business_id: &str, h: &HolderRef) -> Result<Resolved, ApiError> {
    let m = match (&h.pseudonymous_id, &h.member_id) {
        (Some(p), None) => state.store.membership_by_pseudonym(business_id, p).await?,
        (None, Some(mid)) => match state.store.person_by_member_id(business_id, mid.trim()).await? {
            Some(person) => state.store.membership(business_id, &person).await?,
            None => None,
        },
        _ => {
            return Ok(Err((
                "invalid_holder",
                "give the holder's pseudonymous_id or member_id, one of the two".into(),
            )))
        }
    };
    Ok(match m {
        Some(m) => Ok((m.person_id, m.pseudonymous_id)),
        None => Err((
            "unknown_holder",
            "no member of this business has that pseudonymous ID or member ID".into(),
        )),
    })
}

/// Admit persons to an event's matcher scope (after their tickets were committed).
pub fn admit_to_event(state: &AppState, event_id: &str, person_ids: &[&str]) -> Result<(), ApiError> {
    let dir = state
        .directory
        .read()
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?;
    let seqs: Vec<u64> = person_ids
        .iter()
        .filter_map(|p| dir.seqs.get(*p).copied())
        .collect();
    drop(dir);
    let mut m = state
        .matcher
        .write()
        .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
    for s in seqs {
        m.admit(event_id, s);
    }
    Ok(())
}

/// `POST /v1/events/{id}/tickets`: issue tickets in bulk (at most 5000 per call). Each
/// ticket is checked on its own; those that cannot be issued are listed under `rejected`
/// with the reason, the others are issued together in one transaction with the
/// `Idempotency-Key`'s record.
pub async fn issue(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    body: ApiJson<IssueTickets>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Events)?.clone();
    let hash = request_hash("POST /v1/events/{id}/tickets", &event_id, &body.canonical_hash);
    let req = body.value;
    if req.tickets.is_empty() || req.tickets.len() > MAX_TICKETS_PER_CALL {
        return Err(ApiError::unprocessable(
            "invalid_tickets",
            format!("send 1..{MAX_TICKETS_PER_CALL} tickets per call"),
        ));
    }
    let (st, caller_ref, event_ref) = (&state, &caller, event_id.as_str());
    let mut admitted: Vec<String> = Vec::new();
    let admitted_ref = &mut admitted;
    let r = idempotency::create(&state, &caller.business_id, &headers, hash, |idem| async move {
        issue_tickets(st, caller_ref, event_ref, req, idem, admitted_ref).await
    })
    .await;
    if r.is_ok() {
        let ids: Vec<&str> = admitted.iter().map(String::as_str).collect();
        admit_to_event(&state, &event_id, &ids)?;
    }
    r
}

async fn issue_tickets(
    state: &AppState,
    caller: &Caller,
    event_id: &str,
    req: IssueTickets,
    idem: Idem,
    admitted: &mut Vec<String>,
) -> Result<IdempotencyWrite, ApiError> {
    let event = own_event(state, &caller.business_id, event_id).await?;
    let now = now_unix();
    let refs: Vec<String> = req
        .tickets
        .iter()
        .filter_map(|t| t.external_ref.as_ref().map(|r| r.trim().to_string()))
        .collect();
    let mut taken: HashSet<String> = state
        .store
        .external_refs_taken(event_id, &refs)
        .await?
        .into_iter()
        .collect();
    let mut tickets = Vec::new();
    let mut views = Vec::new();
    let mut rejected = Vec::new();
    let mut cache: HashMap<(Option<String>, Option<String>), Resolved> = HashMap::new();
    for (index, spec) in req.tickets.into_iter().enumerate() {
        let mut reject =
            |code: &'static str, detail: String| rejected.push(RejectedTicket { index, code, detail });
        if let Err(m) = validate_ticket_type(&spec.ticket_type) {
            reject("invalid_ticket_type", m);
            continue;
        }
        if let Some(g) = spec.gates.iter().find(|g| !event.entry_gates.contains(g)) {
            reject("unknown_gate", format!("{g} is not an entry gate of this event"));
            continue;
        }
        let external_ref = spec.external_ref.as_ref().map(|r| r.trim().to_string());
        if let Some(r) = &external_ref {
            if r.is_empty() || r.len() > 100 {
                reject(
                    "invalid_external_ref",
                    "external_ref must be 1..100 characters".into(),
                );
                continue;
            }
            if !taken.insert(r.clone()) {
                reject(
                    "duplicate_external_ref",
                    format!("external_ref {r:?} is already used for this event"),
                );
                continue;
            }
        }
        let key = (spec.holder.pseudonymous_id.clone(), spec.holder.member_id.clone());
        let holder = match cache.get(&key) {
            Some(h) => h.clone(),
            None => {
                let h = resolve_holder(state, &caller.business_id, &spec.holder).await?;
                cache.insert(key, h.clone());
                h
            }
        };
        let (person_id, pseudonym) = match holder {
            Ok(h) => h,
            Err((code, detail)) => {
                if let Some(r) = &external_ref {
                    taken.remove(r);
                }
                reject(code, detail);
                continue;
            }
        };
        let t = Ticket {
            id: new_id(prefix::TICKET),
            business_id: caller.business_id.clone(),
            event_id: event.id.clone(),
            person_id: Some(person_id.clone()),
            ticket_type: crate::api::trim_blank(&spec.ticket_type).to_string(),
            gates: spec.gates,
            external_ref,
            state: TicketState::Issued,
            entries: 0,
            version: 0,
            transferred_from: None,
            created_at: now,
            updated_at: now,
        };
        views.push(TicketView::new(&t, Some(&pseudonym)));
        admitted.push(person_id);
        tickets.push(t);
    }
    let answer = IssuedTickets {
        issued: tickets.len(),
        tickets: views,
        rejected,
    };
    let w = idem.write(StatusCode::CREATED, &json_value(&answer)?);
    state
        .store
        .insert_tickets(&tickets, Some(&w))
        .await
        .map_err(|e| store_error(e, "duplicate_external_ref"))?;
    Ok(w)
}

/// The business's pseudonymous ID of a ticket's holder.
pub async fn holder_pseudonym(
    state: &AppState,
    business_id: &str,
    t: &Ticket,
) -> Result<Option<String>, ApiError> {
    Ok(match &t.person_id {
        Some(p) => state
            .store
            .membership(business_id, p)
            .await?
            .map(|m| m.pseudonymous_id),
        None => None,
    })
}

async fn ticket_view(state: &AppState, business_id: &str, t: &Ticket) -> Result<TicketView, ApiError> {
    let p = holder_pseudonym(state, business_id, t).await?;
    Ok(TicketView::new(t, p.as_deref()))
}

/// `GET /v1/events/{id}/tickets`
pub async fn list_tickets(
    State(state): State<AppState>,
    auth: Auth,
    Path(event_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage<TicketView>>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    let (cursor, limit) = q.parse()?;
    own_event(&state, &caller.business_id, &event_id).await?;
    let page = state
        .store
        .list_tickets(&caller.business_id, &event_id, cursor.as_ref(), limit)
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for t in &page.items {
        items.push(ticket_view(&state, &caller.business_id, t).await?);
    }
    Ok(Json(ListPage {
        items,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

async fn own_ticket(state: &AppState, business_id: &str, id: &str) -> Result<Ticket, ApiError> {
    state
        .store
        .ticket(business_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("ticket"))
}

/// `GET /v1/tickets/{id}`
pub async fn get_ticket(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<TicketView>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    let t = own_ticket(&state, &caller.business_id, &id).await?;
    Ok(Json(ticket_view(&state, &caller.business_id, &t).await?))
}

/// `POST /v1/tickets/{id}/cancel`: a cancelled ticket admits nobody; cancelling again is a
/// no-op that answers the ticket as it is.
pub async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<TicketView>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    for _ in 0..5 {
        let t = own_ticket(&state, &caller.business_id, &id).await?;
        match t.state {
            TicketState::Cancelled => return Ok(Json(ticket_view(&state, &caller.business_id, &t).await?)),
            TicketState::Transferred => {
                return Err(ApiError::conflict(
                    "ticket_transferred",
                    "this ticket was transferred; cancel the new holder's ticket instead",
                ))
            }
            _ => {}
        }
        let write = LaneWrite {
            ticket_move: Some(TicketMove {
                ticket_id: t.id.clone(),
                expected_version: t.version,
                to: TicketState::Cancelled,
                entries_delta: 0,
                at: now_unix(),
            }),
            ..LaneWrite::default()
        };
        if state.store.write_lane(&write).await? {
            let t = own_ticket(&state, &caller.business_id, &id).await?;
            return Ok(Json(ticket_view(&state, &caller.business_id, &t).await?));
        }
    }
    Err(ApiError::conflict(
        "ticket_busy",
        "the ticket kept changing; retry",
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferTicket {
    /// The new holder: another member of this business.
    pub to: HolderRef,
}

/// `POST /v1/tickets/{id}/transfer`: the ticket becomes `transferred` and a new one, naming
/// it as `transferred_from`, is issued to the new holder (same event, type and gates). Only
/// a ticket that is not in use (issued, or exited) can be transferred.
pub async fn transfer(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: ApiJson<TransferTicket>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Events)?.clone();
    let hash = request_hash("POST /v1/tickets/{id}/transfer", &id, &body.canonical_hash);
    let req = body.value;
    let (st, business_id, ticket_id) = (&state, caller.business_id.as_str(), id.as_str());
    let mut moved: Option<(String, String)> = None;
    let moved_ref = &mut moved;
    let r = idempotency::create(&state, business_id, &headers, hash, |idem| async move {
        for _ in 0..5 {
            let t = own_ticket(st, business_id, ticket_id).await?;
            if !matches!(t.state, TicketState::Issued | TicketState::Exited) {
                return Err(ApiError::conflict(
                    "ticket_not_transferable",
                    format!("a ticket that is {} cannot be transferred", t.state.as_str()),
                ));
            }
            let (person_id, pseudonym) = match resolve_holder(st, business_id, &req.to).await? {
                Ok(h) => h,
                Err((code, detail)) => return Err(ApiError::unprocessable(code, detail)),
            };
            if t.person_id.as_deref() == Some(person_id.as_str()) {
                return Err(ApiError::unprocessable(
                    "same_holder",
                    "the new holder already holds this ticket",
                ));
            }
            let now = now_unix();
            let new = Ticket {
                id: new_id(prefix::TICKET),
                person_id: Some(person_id.clone()),
                state: TicketState::Issued,
                entries: 0,
                version: 0,
                transferred_from: Some(t.id.clone()),
                // The ticket number goes with the ticket.
                external_ref: None,
                created_at: now,
                updated_at: now,
                ..t.clone()
            };
            let w = idem.write(
                StatusCode::CREATED,
                &json_value(&TicketView::new(&new, Some(&pseudonym)))?,
            );
            let write = LaneWrite {
                ticket_move: Some(TicketMove {
                    ticket_id: t.id.clone(),
                    expected_version: t.version,
                    to: TicketState::Transferred,
                    entries_delta: 0,
                    at: now,
                }),
                new_tickets: vec![new.clone()],
                idem: Some(w.clone()),
                ..LaneWrite::default()
            };
            if st.store.write_lane(&write).await? {
                *moved_ref = Some((new.event_id.clone(), person_id));
                return Ok(w);
            }
        }
        Err(ApiError::conflict(
            "ticket_busy",
            "the ticket kept changing; retry",
        ))
    })
    .await;
    if let Some((event_id, person_id)) = moved {
        admit_to_event(&state, &event_id, &[person_id.as_str()])?;
    }
    r
}
