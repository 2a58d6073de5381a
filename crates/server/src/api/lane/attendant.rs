//! The attendant at a lane: overriding a palm decision, and the manual fallback on the
//! ordinary ticket. Both are recorded with who, when and why.

use super::view::{entry_event, view};
use super::{decide_for, moved, passage, Decided, RACE_RETRIES};
use crate::api::events::own_event;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use openpalm_domain::apikey::Scope;
use openpalm_domain::entry::{
    validate_attendant, DenyReason, Direction, PassageSource, TicketState, Verdict,
};
use openpalm_domain::model::Caller;
use openpalm_domain::now_unix;
use openpalm_store::{IdempotencyWrite, LaneWrite, TicketMove};
use serde::Deserialize;
use std::time::Instant;
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// What the attendant decided.
    pub decision: OverrideDecision,
    /// Who (name or staff ID): 1..100 characters, not blank.
    #[schemars(length(min = 1, max = 100), regex(pattern = crate::api::NOT_BLANK))]
    pub attendant: String,
    /// Why: 1..1000 characters, not blank.
    #[schemars(length(min = 1, max = 1000), regex(pattern = crate::api::NOT_BLANK))]
    pub note: String,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverrideDecision {
    Admit,
    Deny,
}

/// Write an attendant's decision with the request's idempotency record, in one transaction;
/// `None` (nothing written) if the ticket moved meanwhile.
async fn record(
    state: &AppState,
    business_id: &str,
    d: Decided,
    idem: &Idem,
) -> Result<Option<IdempotencyWrite>, ApiError> {
    let pseudonym = match &d.passage.person_id {
        Some(person) => state
            .store
            .membership(business_id, person)
            .await?
            .map(|m| m.pseudonymous_id),
        None => None,
    };
    let v = view(&d.passage, d.ticket_after.as_ref(), pseudonym.clone());
    let w = idem.write(
        StatusCode::CREATED,
        &serde_json::to_value(&v).map_err(|e| ApiError::internal("response", e))?,
    );
    let write = LaneWrite {
        events: entry_event(&d.passage, d.ticket_after.as_ref(), pseudonym.as_deref())?,
        ticket_move: d.ticket_move,
        passage: Some(d.passage),
        idem: Some(w.clone()),
        ..LaneWrite::default()
    };
    Ok(state.store.write_lane(&write).await?.then_some(w))
}

fn check_attendant(attendant: &str, note: &str) -> Result<(), ApiError> {
    validate_attendant(attendant, note).map_err(|m| ApiError::unprocessable("invalid_attendant", m))
}

/// `POST /v1/entries/{id}/override`: an attendant admits a denied arrival or turns back an
/// admitted one. Admitting puts the decision's ticket (if it has one still live) inside;
/// turning back an admission takes that entry back, so the ticket's rightful holder can
/// still enter.
pub async fn override_decision(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: ApiJson<OverrideRequest>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Events)?.clone();
    let hash = request_hash("POST /v1/entries/{id}/override", &id, &body.canonical_hash);
    let req = body.value;
    check_attendant(&req.attendant, &req.note)?;
    let (st, c, pid) = (&state, &caller, id.as_str());
    let r = idempotency::create(&state, &caller.business_id, &headers, hash, |idem| async move {
        override_in(st, c, pid, req, idem).await
    })
    .await;
    state.webhook_wakeup.notify_one();
    r
}

async fn override_in(
    state: &AppState,
    caller: &Caller,
    passage_id: &str,
    req: OverrideRequest,
    idem: Idem,
) -> Result<IdempotencyWrite, ApiError> {
    let started = Instant::now();
    let original = state
        .store
        .passage(&caller.business_id, passage_id)
        .await?
        .ok_or_else(|| ApiError::not_found("entry"))?;
    if original.direction != Direction::Entry {
        return Err(ApiError::unprocessable(
            "not_an_entry",
            "only entry decisions can be overridden",
        ));
    }
    let want = match req.decision {
        OverrideDecision::Admit => Verdict::Admit,
        OverrideDecision::Deny => Verdict::Deny,
    };
    if original.verdict == want {
        return Err(ApiError::conflict(
            "nothing_to_override",
            format!("this decision already was {}", want.as_str()),
        ));
    }
    let event = own_event(state, &caller.business_id, &original.event_id).await?;
    for _ in 0..RACE_RETRIES {
        let ticket = match &original.ticket_id {
            Some(t) => state.store.ticket(&caller.business_id, t).await?,
            None => None,
        };
        let now = now_unix();
        let ticket_move = match (&ticket, want) {
            // Admit by hand: a live ticket not inside goes inside.
            (Some(t), Verdict::Admit) if matches!(t.state, TicketState::Issued | TicketState::Exited) => {
                Some(TicketMove {
                    ticket_id: t.id.clone(),
                    expected_version: t.version,
                    to: TicketState::Admitted,
                    entries_delta: 1,
                    at: now,
                })
            }
            // Turn back an admission: the entry is taken back.
            (Some(t), Verdict::Deny) if t.state == TicketState::Admitted && t.entries > 0 => {
                Some(TicketMove {
                    ticket_id: t.id.clone(),
                    expected_version: t.version,
                    to: if t.entries > 1 {
                        TicketState::Exited
                    } else {
                        TicketState::Issued
                    },
                    entries_delta: -1,
                    at: now,
                })
            }
            _ => None,
        };
        let mut p = passage(
            caller,
            &event,
            original.device_id.as_deref(),
            Direction::Entry,
            want,
            None,
            PassageSource::Override,
        );
        p.ticket_id = original.ticket_id.clone();
        p.person_id = original.person_id.clone();
        p.attendant = Some(crate::api::trim_blank(&req.attendant).to_string());
        p.note = Some(crate::api::trim_blank(&req.note).to_string());
        p.overrides = Some(original.id.clone());
        p.decision_ms = started.elapsed().as_secs_f64() * 1e3;
        let after = match (&ticket, &ticket_move) {
            (Some(t), Some(m)) => Some(moved(t, m)),
            (t, None) => t.clone(),
            (None, Some(_)) => None,
        };
        let d = Decided {
            passage: p,
            ticket_after: after,
            ticket_move,
        };
        if let Some(w) = record(state, &caller.business_id, d, &idem).await? {
            return Ok(w);
        }
    }
    Err(ApiError::conflict(
        "ticket_busy",
        "the ticket kept changing; retry",
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualEntryRequest {
    /// The ticket shown (its ID), or its number (`external_ref`): one of the two.
    pub ticket_id: Option<String>,
    pub external_ref: Option<String>,
    /// The lane's gate, when the attendant stands at one.
    pub gate: Option<String>,
    /// Who (name or staff ID): 1..100 characters, not blank.
    #[schemars(length(min = 1, max = 100), regex(pattern = crate::api::NOT_BLANK))]
    pub attendant: String,
    /// Why: 1..1000 characters, not blank.
    #[schemars(length(min = 1, max = 1000), regex(pattern = crate::api::NOT_BLANK))]
    pub note: String,
}

/// `POST /v1/events/{id}/manual-entries`: the lane's manual fallback: an attendant admits on
/// the ordinary ticket. The same rules hold as at the palm reader (a ticket admits once,
/// re-entry as the event allows), so one ticket cannot enter twice by palm and by hand.
pub async fn manual_entry(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    body: ApiJson<ManualEntryRequest>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Events)?.clone();
    let hash = request_hash(
        "POST /v1/events/{id}/manual-entries",
        &event_id,
        &body.canonical_hash,
    );
    let req = body.value;
    check_attendant(&req.attendant, &req.note)?;
    let (st, c, eid) = (&state, &caller, event_id.as_str());
    let r = idempotency::create(&state, &caller.business_id, &headers, hash, |idem| async move {
        manual_in(st, c, eid, req, idem).await
    })
    .await;
    state.webhook_wakeup.notify_one();
    r
}

async fn manual_in(
    state: &AppState,
    caller: &Caller,
    event_id: &str,
    req: ManualEntryRequest,
    idem: Idem,
) -> Result<IdempotencyWrite, ApiError> {
    let started = Instant::now();
    let event = own_event(state, &caller.business_id, event_id).await?;
    if let Some(g) = &req.gate {
        if event.direction_of(g) != Some(Direction::Entry) {
            return Err(ApiError::unprocessable(
                "unknown_gate",
                "gate is not an entry gate of this event",
            ));
        }
    }
    for _ in 0..RACE_RETRIES {
        let ticket = match (&req.ticket_id, &req.external_ref) {
            (Some(id), None) => state.store.ticket(&caller.business_id, id).await?,
            (None, Some(r)) => state.store.ticket_by_ref(&event.id, r.trim()).await?,
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_ticket",
                    "give the ticket_id or the external_ref, one of the two",
                ))
            }
        }
        .filter(|t| t.event_id == event.id && t.business_id == caller.business_id)
        .ok_or_else(|| ApiError::not_found("ticket"))?;
        let gate = req
            .gate
            .clone()
            .or_else(|| ticket.gates.first().cloned())
            .unwrap_or_else(|| event.entry_gates[0].clone());
        let person = ticket.person_id.clone().unwrap_or_default();
        let mut d = decide_for(
            caller,
            &event,
            &gate,
            Direction::Entry,
            &person,
            std::slice::from_ref(&ticket),
        );
        if !event.doors_open(now_unix()) {
            d = Decided {
                passage: passage(
                    caller,
                    &event,
                    Some(&gate),
                    Direction::Entry,
                    Verdict::Deny,
                    Some(DenyReason::EventNotOpen),
                    PassageSource::Manual,
                ),
                ticket_after: Some(ticket.clone()),
                ticket_move: None,
            };
        }
        if let Some(reason) = d.passage.reason {
            return Err(
                ApiError::conflict(reason.as_str(), reason.guidance()).with("ticket_id", ticket.id.as_str())
            );
        }
        let p = &mut d.passage;
        p.source = PassageSource::Manual;
        p.device_id = req.gate.clone();
        p.person_id = ticket.person_id.clone();
        p.attendant = Some(crate::api::trim_blank(&req.attendant).to_string());
        p.note = Some(crate::api::trim_blank(&req.note).to_string());
        p.decision_ms = started.elapsed().as_secs_f64() * 1e3;
        if let Some(w) = record(state, &caller.business_id, d, &idem).await? {
            return Ok(w);
        }
    }
    Err(ApiError::conflict(
        "ticket_busy",
        "the ticket kept changing; retry",
    ))
}
