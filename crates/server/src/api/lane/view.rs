//! What a lane answers: a decision as the gate's screen and the business see it, and the
//! body of the `entry.admitted` / `entry.denied` webhooks.

use crate::api::events::HolderView;
use crate::problem::ApiError;
use openpalm_domain::entry::{DenyReason, Direction, Passage, PassageSource, Ticket, TicketState, Verdict};
use openpalm_domain::model::OutboxEvent;
use openpalm_domain::webhook::EventType;
use serde::Serialize;
/// The ticket a decision concerns.
#[derive(Clone, Serialize, schemars::JsonSchema)]
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
#[derive(Clone, Serialize, schemars::JsonSchema)]
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

pub(crate) fn guidance(verdict: Verdict, reason: Option<DenyReason>, source: PassageSource) -> String {
    match (verdict, reason) {
        (Verdict::Admit, _) if source == PassageSource::Palm => "Welcome: go ahead".into(),
        (Verdict::Admit, _) => "Admitted by an attendant".into(),
        (Verdict::Exit, _) => "Goodbye: exit recorded".into(),
        (Verdict::Deny, Some(r)) => r.guidance().into(),
        (Verdict::Deny, None) => "Denied by an attendant".into(),
    }
}

pub(crate) fn view(p: &Passage, ticket: Option<&Ticket>, pseudonym: Option<String>) -> PassageView {
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
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct EntryEventData<'a> {
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

pub(crate) fn entry_event(
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
