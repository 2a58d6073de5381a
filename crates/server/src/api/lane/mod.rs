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

//!
//! [`view`] holds what the lane answers; [`attendant`] the overrides and the manual
//! fallback; [`counts`] the live figures and the list of decisions.

pub mod attendant;
pub mod counts;
pub mod view;

use view::{entry_event, view, PassageView};

use crate::api::enroll::Input;
use crate::api::events::own_event;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::capture;
use crate::matcher::Candidate;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::decision::{Decision, DecisionPolicy};
use openpalm_domain::entry::{
    decide_entry, decide_exit, DenyReason, Direction, Event, GateOutcome, Passage, PassageSource, Ticket,
    Verdict,
};
use openpalm_domain::ids::{new_id, prefix, Purpose};
use openpalm_domain::model::{Caller, MatchLogEntry};
use openpalm_domain::now_unix;
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_engine::{Template, IDENTIFICATION_THRESHOLD};
use openpalm_store::{LaneWrite, TicketMove};
use serde::Deserialize;
use std::time::Instant;
pub(crate) const RACE_RETRIES: usize = 5;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    pub event_id: String,
    pub input: Input,
    pub capture: SealedCaptureWire,
}

/// Search one matcher scope off the async threads (searches of different people run side
/// by side: the matcher is read-locked, the scope shared).
pub(crate) async fn search(
    state: &AppState,
    probe: &Template,
    scope: &str,
    k: usize,
) -> Result<Vec<Candidate>, ApiError> {
    search_looks(state, probe, scope, k, true).await
}

/// [`search`], or the cheaper search that only names a reason when `second_look` is false
/// (see [`crate::matcher::Matcher::identify_coarse`]).
async fn search_looks(
    state: &AppState,
    probe: &Template,
    scope: &str,
    k: usize,
    second_look: bool,
) -> Result<Vec<Candidate>, ApiError> {
    let (state, probe, scope) = (state.clone(), probe.clone(), scope.to_string());
    tokio::task::spawn_blocking(move || {
        let m = state
            .matcher
            .read()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
        if second_look {
            m.identify(&probe, Some(&scope), k)
        } else {
            m.identify_coarse(&probe, &scope, k)
        }
        .map_err(|e| ApiError::internal("matcher", e))
    })
    .await
    .map_err(|e| ApiError::internal("search task", e))?
}

pub(crate) fn person_of(state: &AppState, c: &Candidate) -> Result<String, ApiError> {
    state
        .directory
        .read()
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?
        .person_ids
        .get(&c.person)
        .cloned()
        .inspect(|p| crate::audit::note_subject(p))
        .ok_or_else(|| ApiError::internal("directory", "matched person unknown"))
}

/// Who the palm is, for the lane.
pub(crate) struct Recognition {
    decision: Decision,
    /// Recognised person (a match).
    person: Option<String>,
    /// Whether the person is in the event's scope.
    in_event: bool,
    score: f32,
}

pub(crate) async fn recognise(
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
            // The answer is a denial either way; this search only names the reason, so the
            // coarse search is enough (a palm nobody enrolled costs one scan of one sketch
            // per member, primary pose: a member it misses is told `not_recognised`).
            let wide = search_looks(state, probe, &event.business_id, 2, false).await?;
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

pub(crate) fn outcome_text(verdict: Verdict, reason: Option<DenyReason>) -> String {
    match reason {
        Some(r) => format!("{}:{}", verdict.as_str(), r.as_str()),
        None => verdict.as_str().to_string(),
    }
}

/// What a decision writes, built once per try.
pub(crate) struct Decided {
    pub(crate) passage: Passage,
    pub(crate) ticket_after: Option<Ticket>,
    pub(crate) ticket_move: Option<TicketMove>,
}

pub(crate) fn passage(
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
pub(crate) fn moved(t: &Ticket, m: &TicketMove) -> Ticket {
    Ticket {
        state: m.to,
        entries: (i64::from(t.entries) + m.entries_delta).max(0) as u32,
        version: t.version + 1,
        updated_at: m.at,
        ..t.clone()
    }
}

pub(crate) fn decide_for(
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
pub(crate) async fn gate_decision(
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
    let v = gate_decision(&state, &caller, body.value, Direction::Entry, started).await?;
    state.metrics.decision("lane", v.decision.as_str());
    Ok(Json(v))
}

/// `POST /v1/exits`: a palm at an exit gate (re-entry policies count on it).
pub async fn exit(
    State(state): State<AppState>,
    auth: Auth,
    body: ApiJson<GateRequest>,
) -> Result<Json<PassageView>, ApiError> {
    let started = Instant::now();
    let caller = auth.require(Scope::Identify)?.clone();
    let v = gate_decision(&state, &caller, body.value, Direction::Exit, started).await?;
    state.metrics.decision("lane", v.decision.as_str());
    Ok(Json(v))
}
