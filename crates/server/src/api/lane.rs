//! The palm lane: a gate sends a sealed capture, the service identifies the palm among the
//! event's ticket holders and answers `admit` or `deny` with a reason an attendant can act
//! on; exits, attendant overrides, the manual fallback, and live counts.
//!
//! One decision:
//!
//! 1. The event (the caller's), the capture (device, signature, clock, nonce) and the gate
//!    (one of the event's, facing the right way) are checked; outside the doors-open window
//!    the answer is `event_not_open` without any biometric search.
//! 2. The probe is searched among the event's scope: everyone who holds or held a ticket for
//!    it. A match that scores below `lane_confirm_below` is searched again among every member
//!    of the business: if someone outside the event scores as well (within the ambiguity
//!    margin) or better, the answer is `ambiguous`: a look-alike is never admitted on a
//!    holder's ticket. No match among the holders: the business's members tell
//!    `no_ticket_for_event` (a known palm without a ticket) from `not_recognised`.
//! 3. The recognised person's tickets give the outcome ([`decide_entry`]); an admission
//!    moves the ticket by compare-and-set in the same transaction as the passage, the match
//!    log line and the webhook event. A gate that loses a race decides again on the ticket
//!    as it now is (`already_admitted`).

use crate::api::devices::PageQuery;
use crate::api::enroll::Input;
use crate::api::events::{holder_pseudonym, own_event, HolderView, ListPage};
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::capture;
use crate::idempotency::{self, request_hash, Idem};
use crate::matcher::Candidate;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::decision::{Decision, DecisionPolicy};
use openpalm_domain::entry::{
    decide_entry, decide_exit, validate_attendant, DenyReason, Direction, Event, GateOutcome, Passage,
    PassageSource, Ticket, TicketState, Verdict,
};
use openpalm_domain::ids::{new_id, prefix, Purpose};
use openpalm_domain::model::{Caller, MatchLogEntry, OutboxEvent};
use openpalm_domain::now_unix;
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_domain::webhook::EventType;
use openpalm_engine::{Template, IDENTIFICATION_THRESHOLD};
use openpalm_store::{IdempotencyWrite, LaneWrite, TicketMove};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// How many times a decision is taken again after losing a race on the ticket.
const RACE_RETRIES: usize = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    pub event_id: String,
    pub input: Input,
    pub capture: SealedCaptureWire,
}

/// The ticket a decision concerns.
#[derive(Clone, Serialize)]
pub struct TicketBrief {
    pub id: String,
    pub ticket_type: String,
    pub state: TicketState,
    pub entries: u32,
}

impl From<&Ticket> for TicketBrief {
    fn from(t: &Ticket) -> TicketBrief {
        TicketBrief {
            id: t.id.clone(),
            ticket_type: t.ticket_type.clone(),
            state: t.state,
            entries: t.entries,
        }
    }
}

/// A lane decision, as the gate's screen and the business see it.
#[derive(Clone, Serialize)]
pub struct PassageView {
    /// `ent_...`: the decision's ID (for an override).
    pub id: String,
    pub event_id: String,
    /// The gate device; `null` for a manual entry away from a reader.
    pub gate: Option<String>,
    pub direction: Direction,
    pub decision: Verdict,
    /// Why not, for a `deny` (`null` when an attendant denied by hand).
    pub reason: Option<DenyReason>,
    /// One line for the lane attendant.
    pub guidance: String,
    /// The ticket concerned, as it is after the decision.
    pub ticket: Option<TicketBrief>,
    /// The recognised person, by this business's pseudonymous ID.
    pub person: Option<HolderView>,
    pub source: PassageSource,
    pub attendant: Option<String>,
    pub note: Option<String>,
    /// The decision an override corrects.
    pub overrides: Option<String>,
    /// Milliseconds from the request's arrival to the decision (the final write excluded).
    pub decision_ms: f64,
    pub at: i64,
}

fn guidance(verdict: Verdict, reason: Option<DenyReason>, source: PassageSource) -> String {
    match (verdict, reason) {
        (Verdict::Admit, _) if source == PassageSource::Palm => "Welcome: go ahead".into(),
        (Verdict::Admit, _) => "Admitted by an attendant".into(),
        (Verdict::Exit, _) => "Goodbye: exit recorded".into(),
        (Verdict::Deny, Some(r)) => r.guidance().into(),
        (Verdict::Deny, None) => "Denied by an attendant".into(),
    }
}

fn view(p: &Passage, ticket: Option<&Ticket>, pseudonym: Option<String>) -> PassageView {
    PassageView {
        id: p.id.clone(),
        event_id: p.event_id.clone(),
        gate: p.device_id.clone(),
        direction: p.direction,
        decision: p.verdict,
        reason: p.reason,
        guidance: guidance(p.verdict, p.reason, p.source),
        ticket: ticket.map(TicketBrief::from),
        person: pseudonym.map(|pseudonymous_id| HolderView { pseudonymous_id }),
        source: p.source,
        attendant: p.attendant.clone(),
        note: p.note.clone(),
        overrides: p.overrides.clone(),
        decision_ms: p.decision_ms,
        at: p.at,
    }
}

/// Body of `entry.admitted` and `entry.denied`.
#[derive(Serialize)]
struct EntryEventData<'a> {
    entry_id: &'a str,
    event_id: &'a str,
    gate: Option<&'a str>,
    decision: Verdict,
    reason: Option<DenyReason>,
    ticket_id: Option<&'a str>,
    ticket_type: Option<&'a str>,
    pseudonymous_id: Option<&'a str>,
    source: PassageSource,
    at: i64,
}

fn entry_event(
    p: &Passage,
    ticket: Option<&Ticket>,
    pseudonym: Option<&str>,
) -> Result<Vec<OutboxEvent>, ApiError> {
    let kind = match (p.direction, p.verdict) {
        (Direction::Entry, Verdict::Admit) => EventType::EntryAdmitted,
        (Direction::Entry, Verdict::Deny) => EventType::EntryDenied,
        _ => return Ok(Vec::new()),
    };
    let data = EntryEventData {
        entry_id: &p.id,
        event_id: &p.event_id,
        gate: p.device_id.as_deref(),
        decision: p.verdict,
        reason: p.reason,
        ticket_id: ticket.map(|t| t.id.as_str()),
        ticket_type: ticket.map(|t| t.ticket_type.as_str()),
        pseudonymous_id: pseudonym,
        source: p.source,
        at: p.at,
    };
    let v = serde_json::to_value(&data).map_err(|e| ApiError::internal("webhook body", e))?;
    Ok(vec![OutboxEvent::new(&p.business_id, kind, p.at, &v)])
}

/// Search one matcher scope off the async threads (searches of different people run side
/// by side: the matcher is read-locked, the scope shared).
async fn search(
    state: &AppState,
    probe: &Template,
    scope: &str,
    k: usize,
) -> Result<Vec<Candidate>, ApiError> {
    let (state, probe, scope) = (state.clone(), probe.clone(), scope.to_string());
    tokio::task::spawn_blocking(move || {
        state
            .matcher
            .read()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?
            .identify(&probe, Some(&scope), k)
            .map_err(|e| ApiError::internal("matcher", e))
    })
    .await
    .map_err(|e| ApiError::internal("search task", e))?
}

fn person_of(state: &AppState, c: &Candidate) -> Result<String, ApiError> {
    state
        .directory
        .read()
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?
        .person_ids
        .get(&c.person)
        .cloned()
        .ok_or_else(|| ApiError::internal("directory", "matched person unknown"))
}

/// Who the palm is, for the lane.
struct Recognition {
    decision: Decision,
    /// Recognised person (a match).
    person: Option<String>,
    /// Whether the person is in the event's scope.
    in_event: bool,
    score: f32,
}

async fn recognise(
    state: &AppState,
    event: &Event,
    probe: &Template,
    direction: Direction,
) -> Result<Recognition, ApiError> {
    let policy = DecisionPolicy {
        threshold: IDENTIFICATION_THRESHOLD,
        ambiguity_margin: state.config.ambiguity_margin,
    };
    let holders = search(state, probe, &event.id, 2).await?;
    let scores: Vec<f32> = holders.iter().map(|c| c.score).collect();
    let (decision, _) = policy.decide(&scores);
    let best = holders.first().copied();
    match (decision, best) {
        (Decision::Match, Some(b)) => {
            if b.score < state.config.lane_confirm_below {
                // A borderline match: is someone outside the event at least as close?
                let wide = search(state, probe, &event.business_id, 2).await?;
                let rival = wide.iter().find(|c| c.person != b.person).is_some_and(|c| {
                    c.score >= IDENTIFICATION_THRESHOLD && c.score >= b.score - policy.ambiguity_margin
                });
                if rival {
                    return Ok(Recognition {
                        decision: Decision::Ambiguous,
                        person: None,
                        in_event: false,
                        score: b.score,
                    });
                }
            }
            Ok(Recognition {
                decision,
                person: Some(person_of(state, &b)?),
                in_event: true,
                score: b.score,
            })
        }
        (Decision::Ambiguous, _) => Ok(Recognition {
            decision,
            person: None,
            in_event: false,
            score: best.map_or(0.0, |b| b.score),
        }),
        _ if direction == Direction::Entry => {
            // Not a holder: a member of the business without a ticket, or nobody it knows.
            let wide = search(state, probe, &event.business_id, 2).await?;
            let scores: Vec<f32> = wide.iter().map(|c| c.score).collect();
            let (d, _) = policy.decide(&scores);
            let person = match (d, wide.first()) {
                (Decision::Match, Some(c)) => Some(person_of(state, c)?),
                _ => None,
            };
            Ok(Recognition {
                decision: d,
                person,
                in_event: false,
                score: wide.first().map_or(0.0, |c| c.score),
            })
        }
        _ => Ok(Recognition {
            decision,
            person: None,
            in_event: false,
            score: best.map_or(0.0, |b| b.score),
        }),
    }
}

fn outcome_text(verdict: Verdict, reason: Option<DenyReason>) -> String {
    match reason {
        Some(r) => format!("{}:{}", verdict.as_str(), r.as_str()),
        None => verdict.as_str().to_string(),
    }
}

/// What a decision writes, built once per try.
struct Decided {
    passage: Passage,
    ticket_after: Option<Ticket>,
    ticket_move: Option<TicketMove>,
}

fn passage(
    caller: &Caller,
    event: &Event,
    gate: Option<&str>,
    direction: Direction,
    verdict: Verdict,
    reason: Option<DenyReason>,
    source: PassageSource,
) -> Passage {
    Passage {
        id: new_id(prefix::PASSAGE),
        business_id: caller.business_id.clone(),
        event_id: event.id.clone(),
        device_id: gate.map(str::to_string),
        ticket_id: None,
        person_id: None,
        direction,
        verdict,
        reason,
        source,
        attendant: None,
        note: None,
        overrides: None,
        api_key_id: caller.key_id.clone(),
        decision_ms: 0.0,
        at: now_unix(),
    }
}

/// The ticket after a move (for the answer).
fn moved(t: &Ticket, m: &TicketMove) -> Ticket {
    Ticket {
        state: m.to,
        entries: (i64::from(t.entries) + m.entries_delta).max(0) as u32,
        version: t.version + 1,
        updated_at: m.at,
        ..t.clone()
    }
}

fn decide_for(
    caller: &Caller,
    event: &Event,
    gate: &str,
    direction: Direction,
    person: &str,
    tickets: &[Ticket],
) -> Decided {
    let outcome = match direction {
        Direction::Entry => decide_entry(event, gate, tickets),
        Direction::Exit => decide_exit(event, tickets),
    };
    let find = |id: &str| tickets.iter().find(|t| t.id == id);
    match outcome {
        GateOutcome::Pass {
            ticket_id,
            to,
            version,
            ..
        } => {
            let t = find(&ticket_id).cloned();
            let verdict = if direction == Direction::Entry {
                Verdict::Admit
            } else {
                Verdict::Exit
            };
            let mut p = passage(
                caller,
                event,
                Some(gate),
                direction,
                verdict,
                None,
                PassageSource::Palm,
            );
            p.ticket_id = Some(ticket_id.clone());
            p.person_id = Some(person.to_string());
            let m = TicketMove {
                ticket_id,
                expected_version: version,
                to,
                entries_delta: i64::from(direction == Direction::Entry),
                at: p.at,
            };
            Decided {
                passage: p,
                ticket_after: t.as_ref().map(|t| moved(t, &m)),
                ticket_move: Some(m),
            }
        }
        GateOutcome::Deny { reason, ticket_id } => {
            let mut p = passage(
                caller,
                event,
                Some(gate),
                direction,
                Verdict::Deny,
                Some(reason),
                PassageSource::Palm,
            );
            p.ticket_id = ticket_id.clone();
            p.person_id = Some(person.to_string());
            Decided {
                passage: p,
                ticket_after: ticket_id.and_then(|id| find(&id).cloned()),
                ticket_move: None,
            }
        }
    }
}

/// One palm decision at a gate of `event`, facing `direction`.
async fn gate_decision(
    state: &AppState,
    caller: &Caller,
    req: GateRequest,
    direction: Direction,
    started: Instant,
) -> Result<PassageView, ApiError> {
    let event = own_event(state, &caller.business_id, &req.event_id).await?;
    let (device, captures) = capture::verify(
        state,
        caller,
        std::slice::from_ref(&req.capture),
        Purpose::Identify,
    )
    .await?;
    match event.direction_of(&device.id) {
        Some(d) if d == direction => {}
        Some(d) => {
            return Err(ApiError::conflict(
                "wrong_direction",
                format!("this gate is an {} gate of the event", d.as_str()),
            ))
        }
        None => {
            return Err(ApiError::conflict(
                "gate_not_at_event",
                "this device is not a gate of the event: add it to the event's gates",
            ))
        }
    }
    let gate = device.id.as_str();
    if direction == Direction::Entry && !event.doors_open(now_unix()) {
        let mut p = passage(
            caller,
            &event,
            Some(gate),
            direction,
            Verdict::Deny,
            Some(DenyReason::EventNotOpen),
            PassageSource::Palm,
        );
        p.decision_ms = started.elapsed().as_secs_f64() * 1e3;
        let write = LaneWrite {
            events: entry_event(&p, None, None)?,
            passage: Some(p.clone()),
            ..LaneWrite::default()
        };
        state.store.write_lane(&write).await?;
        state.webhook_wakeup.notify_one();
        return Ok(view(&p, None, None));
    }
    let extraction = capture::extract_all(state, captures, req.input.kind())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("gate", "no extraction"))?;
    let rec = recognise(state, &event, &extraction.template, direction).await?;
    let pseudonym = match &rec.person {
        Some(p) => state
            .store
            .membership(&caller.business_id, p)
            .await?
            .map(|m| m.pseudonymous_id),
        None => None,
    };
    for _ in 0..RACE_RETRIES {
        let mut d = match (&rec.person, rec.in_event) {
            (Some(person), true) => {
                let tickets = state.store.tickets_of(&event.id, person).await?;
                decide_for(caller, &event, gate, direction, person, &tickets)
            }
            (Some(person), false) => {
                let mut p = passage(
                    caller,
                    &event,
                    Some(gate),
                    direction,
                    Verdict::Deny,
                    Some(DenyReason::NoTicketForEvent),
                    PassageSource::Palm,
                );
                p.person_id = Some(person.clone());
                Decided {
                    passage: p,
                    ticket_after: None,
                    ticket_move: None,
                }
            }
            (None, _) => {
                let reason = if rec.decision == Decision::Ambiguous {
                    DenyReason::Ambiguous
                } else {
                    DenyReason::NotRecognised
                };
                Decided {
                    passage: passage(
                        caller,
                        &event,
                        Some(gate),
                        direction,
                        Verdict::Deny,
                        Some(reason),
                        PassageSource::Palm,
                    ),
                    ticket_after: None,
                    ticket_move: None,
                }
            }
        };
        d.passage.decision_ms = started.elapsed().as_secs_f64() * 1e3;
        let p = &d.passage;
        let log = MatchLogEntry {
            id: new_id(prefix::IDENTIFICATION),
            person_id: rec.person.clone(),
            business_id: caller.business_id.clone(),
            device_id: device.id.clone(),
            site: device.site.clone(),
            at: p.at,
            decision: rec.decision,
            score: if rec.decision == Decision::Match {
                rec.score
            } else {
                0.0
            },
            event_id: Some(event.id.clone()),
            outcome: Some(outcome_text(p.verdict, p.reason)),
        };
        let write = LaneWrite {
            ticket_move: d.ticket_move.clone(),
            events: entry_event(p, d.ticket_after.as_ref(), pseudonym.as_deref())?,
            passage: Some(p.clone()),
            match_log: Some(log),
            ..LaneWrite::default()
        };
        if state.store.write_lane(&write).await? {
            state.webhook_wakeup.notify_one();
            return Ok(view(p, d.ticket_after.as_ref(), pseudonym));
        }
        // Another gate moved the ticket first: decide again on the ticket as it is now.
    }
    Err(ApiError::conflict(
        "ticket_busy",
        "the ticket kept changing; try again",
    ))
}

/// `POST /v1/entries`: a palm at an entry gate.
pub async fn entry(
    State(state): State<AppState>,
    auth: Auth,
    body: ApiJson<GateRequest>,
) -> Result<Json<PassageView>, ApiError> {
    let started = Instant::now();
    let caller = auth.require(Scope::Identify)?.clone();
    Ok(Json(
        gate_decision(&state, &caller, body.value, Direction::Entry, started).await?,
    ))
}

/// `POST /v1/exits`: a palm at an exit gate (re-entry policies count on it).
pub async fn exit(
    State(state): State<AppState>,
    auth: Auth,
    body: ApiJson<GateRequest>,
) -> Result<Json<PassageView>, ApiError> {
    let started = Instant::now();
    let caller = auth.require(Scope::Identify)?.clone();
    Ok(Json(
        gate_decision(&state, &caller, body.value, Direction::Exit, started).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// What the attendant decided.
    pub decision: OverrideDecision,
    /// Who (name or staff ID).
    pub attendant: String,
    /// Why.
    pub note: String,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OverrideDecision {
    Admit,
    Deny,
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
        p.attendant = Some(req.attendant.trim().to_string());
        p.note = Some(req.note.trim().to_string());
        p.overrides = Some(original.id.clone());
        p.decision_ms = started.elapsed().as_secs_f64() * 1e3;
        let after = match (&ticket, &ticket_move) {
            (Some(t), Some(m)) => Some(moved(t, m)),
            (t, None) => t.clone(),
            (None, Some(_)) => None,
        };
        let pseudonym = match &p.person_id {
            Some(person) => state
                .store
                .membership(&caller.business_id, person)
                .await?
                .map(|m| m.pseudonymous_id),
            None => None,
        };
        let v = view(&p, after.as_ref(), pseudonym.clone());
        let w = idem.write(
            StatusCode::CREATED,
            &serde_json::to_value(&v).map_err(|e| ApiError::internal("response", e))?,
        );
        let write = LaneWrite {
            ticket_move,
            events: entry_event(&p, after.as_ref(), pseudonym.as_deref())?,
            passage: Some(p),
            idem: Some(w.clone()),
            ..LaneWrite::default()
        };
        if state.store.write_lane(&write).await? {
            return Ok(w);
        }
    }
    Err(ApiError::conflict(
        "ticket_busy",
        "the ticket kept changing; retry",
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualEntryRequest {
    /// The ticket shown (its ID), or its number (`external_ref`): one of the two.
    pub ticket_id: Option<String>,
    pub external_ref: Option<String>,
    /// The lane's gate, when the attendant stands at one.
    pub gate: Option<String>,
    pub attendant: String,
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
        p.attendant = Some(req.attendant.trim().to_string());
        p.note = Some(req.note.trim().to_string());
        p.decision_ms = started.elapsed().as_secs_f64() * 1e3;
        let pseudonym = holder_pseudonym(state, &caller.business_id, &ticket).await?;
        let v = view(p, d.ticket_after.as_ref(), pseudonym.clone());
        let w = idem.write(
            StatusCode::CREATED,
            &serde_json::to_value(&v).map_err(|e| ApiError::internal("response", e))?,
        );
        let write = LaneWrite {
            ticket_move: d.ticket_move.clone(),
            events: entry_event(p, d.ticket_after.as_ref(), pseudonym.as_deref())?,
            passage: Some(p.clone()),
            idem: Some(w.clone()),
            ..LaneWrite::default()
        };
        if state.store.write_lane(&write).await? {
            return Ok(w);
        }
    }
    Err(ApiError::conflict(
        "ticket_busy",
        "the ticket kept changing; retry",
    ))
}

#[derive(Serialize)]
pub struct GateCountView {
    pub gate: String,
    pub admitted: i64,
    pub denied: i64,
    pub exited: i64,
}

#[derive(Serialize)]
pub struct EventCountsView {
    pub event_id: String,
    /// Ticket holders inside now.
    pub inside: i64,
    /// Tickets per state.
    pub tickets: BTreeMap<String, i64>,
    /// Decisions per gate (`manual` for manual entries away from a reader).
    pub gates: Vec<GateCountView>,
    pub denied_by_reason: BTreeMap<String, i64>,
    /// Decisions per `source:verdict` (`palm:admit`, `override:deny`, `manual:admit`...).
    pub by_source: BTreeMap<String, i64>,
    pub at: i64,
}

/// `GET /v1/events/{id}/counts`: live figures.
pub async fn counts(
    State(state): State<AppState>,
    auth: Auth,
    Path(event_id): Path<String>,
) -> Result<Json<EventCountsView>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    own_event(&state, &caller.business_id, &event_id).await?;
    let c = state.store.event_counts(&event_id).await?;
    Ok(Json(EventCountsView {
        event_id,
        inside: c.tickets.get("admitted").copied().unwrap_or(0),
        tickets: c.tickets,
        gates: c
            .gates
            .into_iter()
            .map(|(gate, g)| GateCountView {
                gate,
                admitted: g.admitted,
                denied: g.denied,
                exited: g.exited,
            })
            .collect(),
        denied_by_reason: c.denied_by_reason,
        by_source: c.by_source,
        at: now_unix(),
    }))
}

/// `GET /v1/events/{id}/entries`: every decision at the event's lanes, oldest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(event_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage<PassageView>>, ApiError> {
    let caller = auth.require(Scope::Events)?;
    let (cursor, limit) = q.parse()?;
    own_event(&state, &caller.business_id, &event_id).await?;
    let page = state
        .store
        .list_passages(&caller.business_id, &event_id, cursor.as_ref(), limit)
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for p in &page.items {
        let ticket = match &p.ticket_id {
            Some(t) => state.store.ticket(&caller.business_id, t).await?,
            None => None,
        };
        let pseudonym = match &p.person_id {
            Some(person) => state
                .store
                .membership(&caller.business_id, person)
                .await?
                .map(|m| m.pseudonymous_id),
            None => None,
        };
        items.push(view(p, ticket.as_ref(), pseudonym));
    }
    Ok(Json(ListPage {
        items,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
