//! Venue entry: events at a business's sites, tickets held by its members, and the rules a
//! palm lane applies at the gate.
//!
//! A ticket moves through a small state machine; every move is made by the store as a
//! compare-and-set on the ticket's `version`, so two gates racing on one person admit once:
//!
//! ```text
//! issued --entry--> admitted --exit--> exited --entry (re-entry allowed)--> admitted
//!   |                  |                  |
//!   +--cancel / transfer (issued or exited only for transfer)--> cancelled | transferred
//! ```
//!
//! [`decide_entry`] and [`decide_exit`] are pure: given the event, the gate, the time and the
//! recognised person's tickets for the event, they say what the lane does and why, with a
//! reason an attendant can act on ([`DenyReason`]).

use serde::{Deserialize, Serialize};

/// An event at one of a business's sites, with the gates of its palm lanes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub business_id: String,
    pub name: String,
    pub site: String,
    /// Unix seconds.
    pub starts_at: i64,
    pub ends_at: i64,
    /// The palm lane admits from `doors_open_at` to `doors_close_at` (Unix seconds).
    pub doors_open_at: i64,
    pub doors_close_at: i64,
    /// Re-entries allowed after leaving through an exit gate (0: none).
    pub max_reentries: u32,
    /// Gate devices that admit.
    pub entry_gates: Vec<String>,
    /// Gate devices that record a holder leaving.
    pub exit_gates: Vec<String>,
    pub created_at: i64,
}

/// Why an event definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{0}")]
    Invalid(String),
}

/// The most gates an event may name (entry and exit together).
pub const MAX_GATES: usize = 64;
/// The most re-entries a policy may allow.
pub const MAX_REENTRIES: u32 = 100;

impl Event {
    /// Check the times and gate lists of a new event.
    pub fn validate(&self) -> Result<(), EventError> {
        let bad = |m: &str| Err(EventError::Invalid(m.to_string()));
        if !crate::text_fits(&self.name, 200) {
            return bad("name must be 1..200 characters");
        }
        if !crate::text_fits(&self.site, 200) {
            return bad("site must be 1..200 characters");
        }
        if self.ends_at <= self.starts_at {
            return bad("ends_at must be after starts_at");
        }
        if self.doors_close_at <= self.doors_open_at {
            return bad("doors_close_at must be after doors_open_at");
        }
        if self.doors_open_at > self.starts_at || self.doors_close_at > self.ends_at {
            return bad("doors must open no later than the start and close no later than the end");
        }
        if self.entry_gates.is_empty() {
            return bad("name at least one entry gate");
        }
        if self.entry_gates.len() + self.exit_gates.len() > MAX_GATES {
            return bad("at most 64 gates per event");
        }
        let mut all: Vec<&String> = self.entry_gates.iter().chain(&self.exit_gates).collect();
        all.sort();
        if all.windows(2).any(|w| w[0] == w[1]) {
            return bad("a gate may appear once, as an entry or an exit gate");
        }
        if self.max_reentries > MAX_REENTRIES {
            return bad("max_reentries must be 0..100");
        }
        Ok(())
    }

    /// Whether the palm lane is open at `now`.
    pub fn doors_open(&self, now: i64) -> bool {
        (self.doors_open_at..self.doors_close_at).contains(&now)
    }

    /// Which way a gate of this event faces; `None` if it is not one of its gates.
    pub fn direction_of(&self, device_id: &str) -> Option<Direction> {
        if self.entry_gates.iter().any(|g| g == device_id) {
            Some(Direction::Entry)
        } else if self.exit_gates.iter().any(|g| g == device_id) {
            Some(Direction::Exit)
        } else {
            None
        }
    }
}

/// Which way a passage goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Entry,
    Exit,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "entry" => Ok(Direction::Entry),
            "exit" => Ok(Direction::Exit),
            other => Err(format!("unknown direction {other:?}")),
        }
    }
}

/// Where a ticket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Not used yet.
    Issued,
    /// The holder is inside.
    Admitted,
    /// The holder left through an exit gate.
    Exited,
    /// Cancelled by the business (or the holder was erased).
    Cancelled,
    /// Given to another holder; the new ticket names this one as `transferred_from`.
    Transferred,
}

impl TicketState {
    pub fn as_str(&self) -> &'static str {
        match self {
            TicketState::Issued => "issued",
            TicketState::Admitted => "admitted",
            TicketState::Exited => "exited",
            TicketState::Cancelled => "cancelled",
            TicketState::Transferred => "transferred",
        }
    }

    /// No move leaves this state.
    pub fn is_final(&self) -> bool {
        matches!(self, TicketState::Cancelled | TicketState::Transferred)
    }
}

impl std::str::FromStr for TicketState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            TicketState::Issued,
            TicketState::Admitted,
            TicketState::Exited,
            TicketState::Cancelled,
            TicketState::Transferred,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| format!("unknown ticket state {s:?}"))
    }
}

/// A ticket for one event, held by one member of the business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub business_id: String,
    pub event_id: String,
    /// `None` once the holder was erased.
    pub person_id: Option<String>,
    pub ticket_type: String,
    /// Entry gates it is valid at; empty: every entry gate of the event.
    pub gates: Vec<String>,
    /// The business's own reference (its ticket number), unique per event when given.
    pub external_ref: Option<String>,
    pub state: TicketState,
    /// Times admitted (the first entry and every re-entry).
    pub entries: u32,
    /// Bumped by every move: the compare-and-set guard.
    pub version: i64,
    pub transferred_from: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Ticket {
    /// Whether this ticket admits at `gate`.
    pub fn valid_at(&self, gate: &str) -> bool {
        self.gates.is_empty() || self.gates.iter().any(|g| g == gate)
    }
}

/// Why a ticket field is refused.
pub fn validate_ticket_type(t: &str) -> Result<(), String> {
    if !crate::text_fits(t, 100) {
        return Err("ticket_type must be 1..100 characters".into());
    }
    Ok(())
}

/// Why the lane says no: each is something an attendant can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The palm matched nobody the business knows: use the ordinary ticket lane.
    NotRecognised,
    /// Two people scored too close to tell apart: try again, or check the ticket by hand.
    Ambiguous,
    /// Recognised, but holds no ticket for this event.
    NoTicketForEvent,
    /// The ticket is not valid at this gate: send the holder to the right lane.
    WrongGate,
    /// Outside the doors-open window.
    EventNotOpen,
    /// Inside already (or out of re-entries).
    AlreadyAdmitted,
    /// The holder's ticket was cancelled.
    TicketCancelled,
    /// At an exit gate: the holder is not inside.
    NotInside,
}

impl DenyReason {
    pub const ALL: [DenyReason; 8] = [
        DenyReason::NotRecognised,
        DenyReason::Ambiguous,
        DenyReason::NoTicketForEvent,
        DenyReason::WrongGate,
        DenyReason::EventNotOpen,
        DenyReason::AlreadyAdmitted,
        DenyReason::TicketCancelled,
        DenyReason::NotInside,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::NotRecognised => "not_recognised",
            DenyReason::Ambiguous => "ambiguous",
            DenyReason::NoTicketForEvent => "no_ticket_for_event",
            DenyReason::WrongGate => "wrong_gate",
            DenyReason::EventNotOpen => "event_not_open",
            DenyReason::AlreadyAdmitted => "already_admitted",
            DenyReason::TicketCancelled => "ticket_cancelled",
            DenyReason::NotInside => "not_inside",
        }
    }

    /// What the attendant is told.
    pub fn guidance(&self) -> &'static str {
        match self {
            DenyReason::NotRecognised => "Palm not recognised: try once more, or use the ticket lane",
            DenyReason::Ambiguous => "Not certain who this is: try once more, or check the ticket by hand",
            DenyReason::NoTicketForEvent => "No ticket for this event on this palm: check the ticket by hand",
            DenyReason::WrongGate => "This ticket is not valid at this gate: send the holder to their gate",
            DenyReason::EventNotOpen => "The palm lane is not open for this event now",
            DenyReason::AlreadyAdmitted => "This ticket was already used to enter",
            DenyReason::TicketCancelled => "This ticket was cancelled",
            DenyReason::NotInside => "This ticket holder is not inside",
        }
    }
}

impl std::str::FromStr for DenyReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DenyReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown deny reason {s:?}"))
    }
}

/// What the lane does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateOutcome {
    /// Open the gate on this ticket: it moves from `from` (at `version`) to `to`.
    Pass {
        ticket_id: String,
        from: TicketState,
        to: TicketState,
        version: i64,
    },
    /// Keep it closed, naming the ticket concerned when there is one.
    Deny {
        reason: DenyReason,
        ticket_id: Option<String>,
    },
}

fn deny(reason: DenyReason, ticket: Option<&Ticket>) -> GateOutcome {
    GateOutcome::Deny {
        reason,
        ticket_id: ticket.map(|t| t.id.clone()),
    }
}

/// The entry decision for a recognised person, from their tickets for the event (any state).
///
/// Preference when a person holds several: a ticket that admits here now; else the most
/// telling reason among the rest (wrong gate before already admitted before cancelled), so
/// the attendant hears what would let them in.
pub fn decide_entry(event: &Event, gate: &str, tickets: &[Ticket]) -> GateOutcome {
    let live: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| t.event_id == event.id && !t.state.is_final())
        .collect();
    if live.is_empty() {
        if let Some(c) = tickets.iter().find(|t| t.state == TicketState::Cancelled) {
            return deny(DenyReason::TicketCancelled, Some(c));
        }
        return deny(DenyReason::NoTicketForEvent, None);
    }
    let at_gate: Vec<&&Ticket> = live.iter().filter(|t| t.valid_at(gate)).collect();
    // Oldest first, so a holder of several tickets uses them in a stable order.
    let mut usable: Vec<&&&Ticket> = at_gate
        .iter()
        .filter(|t| match t.state {
            TicketState::Issued => true,
            TicketState::Exited => t.entries <= event.max_reentries,
            _ => false,
        })
        .collect();
    usable.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if let Some(t) = usable.first() {
        return GateOutcome::Pass {
            ticket_id: t.id.clone(),
            from: t.state,
            to: TicketState::Admitted,
            version: t.version,
        };
    }
    if at_gate.is_empty() {
        return deny(DenyReason::WrongGate, live.first().copied());
    }
    deny(DenyReason::AlreadyAdmitted, at_gate.first().map(|t| **t))
}

/// The exit decision for a recognised person: an admitted ticket is marked as left.
pub fn decide_exit(event: &Event, tickets: &[Ticket]) -> GateOutcome {
    match tickets
        .iter()
        .find(|t| t.event_id == event.id && t.state == TicketState::Admitted)
    {
        Some(t) => GateOutcome::Pass {
            ticket_id: t.id.clone(),
            from: t.state,
            to: TicketState::Exited,
            version: t.version,
        },
        None => deny(DenyReason::NotInside, None),
    }
}

/// What an attendant did by hand at a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassageSource {
    /// The palm lane decided.
    Palm,
    /// An attendant overrode a palm decision.
    Override,
    /// The lane's manual fallback: an attendant admitted on the ordinary ticket.
    Manual,
}

impl PassageSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            PassageSource::Palm => "palm",
            PassageSource::Override => "override",
            PassageSource::Manual => "manual",
        }
    }
}

impl std::str::FromStr for PassageSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "palm" => Ok(PassageSource::Palm),
            "override" => Ok(PassageSource::Override),
            "manual" => Ok(PassageSource::Manual),
            other => Err(format!("unknown passage source {other:?}")),
        }
    }
}

/// The answer at a gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Admit,
    Deny,
    /// At an exit gate: the holder's leaving was recorded.
    Exit,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Admit => "admit",
            Verdict::Deny => "deny",
            Verdict::Exit => "exit",
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admit" => Ok(Verdict::Admit),
            "deny" => Ok(Verdict::Deny),
            "exit" => Ok(Verdict::Exit),
            other => Err(format!("unknown verdict {other:?}")),
        }
    }
}

/// One decision at a lane, by palm or by hand: the record of who passed where and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Passage {
    pub id: String,
    pub business_id: String,
    pub event_id: String,
    /// The gate; `None` for a manual entry not made at a gate reader.
    pub device_id: Option<String>,
    pub ticket_id: Option<String>,
    pub person_id: Option<String>,
    pub direction: Direction,
    pub verdict: Verdict,
    pub reason: Option<DenyReason>,
    pub source: PassageSource,
    /// Who decided by hand (attendant's name or staff ID), and why.
    pub attendant: Option<String>,
    pub note: Option<String>,
    /// The passage an override corrects.
    pub overrides: Option<String>,
    /// The API key that made the call.
    pub api_key_id: String,
    /// Milliseconds from the request's arrival to the decision.
    pub decision_ms: f64,
    pub at: i64,
}

/// Check an attendant's name and note.
pub fn validate_attendant(attendant: &str, note: &str) -> Result<(), String> {
    if !crate::text_fits(attendant, 100) {
        return Err("attendant must be 1..100 characters".into());
    }
    if !crate::text_fits(note, 1000) {
        return Err("note must be 1..1000 characters: say why".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(max_reentries: u32) -> Event {
        Event {
            id: "evt_1".into(),
            business_id: "biz_1".into(),
            name: "Concert".into(),
            site: "arena".into(),
            starts_at: 1000,
            ends_at: 5000,
            doors_open_at: 500,
            doors_close_at: 4000,
            max_reentries,
            entry_gates: vec!["g1".into(), "g2".into()],
            exit_gates: vec!["x1".into()],
            created_at: 0,
        }
    }

    fn ticket(id: &str, state: TicketState, entries: u32, gates: &[&str]) -> Ticket {
        Ticket {
            id: id.into(),
            business_id: "biz_1".into(),
            event_id: "evt_1".into(),
            person_id: Some("per_1".into()),
            ticket_type: "standard".into(),
            gates: gates.iter().map(|g| g.to_string()).collect(),
            external_ref: None,
            state,
            entries,
            version: 7,
            transferred_from: None,
            created_at: 10,
            updated_at: 10,
        }
    }

    fn reason(o: GateOutcome) -> DenyReason {
        match o {
            GateOutcome::Deny { reason, .. } => reason,
            other => panic!("expected a deny, got {other:?}"),
        }
    }

    #[test]
    fn validation() {
        assert!(event(0).validate().is_ok());
        let mut e = event(0);
        e.doors_open_at = 2000;
        assert!(e.validate().is_err(), "doors open after the start");
        let mut e = event(0);
        e.exit_gates.push("g1".into());
        assert!(e.validate().is_err(), "a gate both ways");
        let mut e = event(0);
        e.entry_gates.clear();
        assert!(e.validate().is_err());
        let mut e = event(0);
        e.ends_at = e.starts_at;
        assert!(e.validate().is_err());
        assert!(event(0).doors_open(500) && !event(0).doors_open(4000) && !event(0).doors_open(499));
        assert_eq!(event(0).direction_of("x1"), Some(Direction::Exit));
        assert_eq!(event(0).direction_of("g2"), Some(Direction::Entry));
        assert_eq!(event(0).direction_of("other"), None);
    }

    #[test]
    fn first_entry_admits_on_the_oldest_usable_ticket() {
        let mut a = ticket("t_a", TicketState::Issued, 0, &[]);
        let b = ticket("t_b", TicketState::Issued, 0, &[]);
        a.created_at = 20;
        match decide_entry(&event(0), "g1", &[a, b]) {
            GateOutcome::Pass {
                ticket_id,
                from,
                to,
                version,
            } => {
                assert_eq!(ticket_id, "t_b");
                assert_eq!(
                    (from, to, version),
                    (TicketState::Issued, TicketState::Admitted, 7)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_reason() {
        let e = event(0);
        assert_eq!(reason(decide_entry(&e, "g1", &[])), DenyReason::NoTicketForEvent);
        let cancelled = ticket("t", TicketState::Cancelled, 0, &[]);
        assert_eq!(
            reason(decide_entry(&e, "g1", &[cancelled])),
            DenyReason::TicketCancelled
        );
        let gone = ticket("t", TicketState::Transferred, 0, &[]);
        assert_eq!(
            reason(decide_entry(&e, "g1", &[gone])),
            DenyReason::NoTicketForEvent
        );
        let vip = ticket("t", TicketState::Issued, 0, &["g2"]);
        assert_eq!(
            reason(decide_entry(&e, "g1", std::slice::from_ref(&vip))),
            DenyReason::WrongGate
        );
        assert!(matches!(decide_entry(&e, "g2", &[vip]), GateOutcome::Pass { .. }));
        let inside = ticket("t", TicketState::Admitted, 1, &[]);
        assert_eq!(
            reason(decide_entry(&e, "g1", std::slice::from_ref(&inside))),
            DenyReason::AlreadyAdmitted
        );
        assert_eq!(
            reason(decide_exit(&e, &[ticket("t", TicketState::Issued, 0, &[])])),
            DenyReason::NotInside
        );
        assert!(matches!(
            decide_exit(&e, &[inside]),
            GateOutcome::Pass {
                to: TicketState::Exited,
                ..
            }
        ));
        // Another event's ticket counts for nothing here.
        let mut other = ticket("t", TicketState::Issued, 0, &[]);
        other.event_id = "evt_2".into();
        assert_eq!(
            reason(decide_entry(&e, "g1", &[other])),
            DenyReason::NoTicketForEvent
        );
    }

    #[test]
    fn reentry_policy() {
        let out = ticket("t", TicketState::Exited, 1, &[]);
        assert_eq!(
            reason(decide_entry(&event(0), "g1", std::slice::from_ref(&out))),
            DenyReason::AlreadyAdmitted,
            "no re-entry allowed"
        );
        assert!(matches!(
            decide_entry(&event(1), "g1", &[out]),
            GateOutcome::Pass { .. }
        ));
        let twice = ticket("t", TicketState::Exited, 2, &[]);
        assert_eq!(
            reason(decide_entry(&event(1), "g1", std::slice::from_ref(&twice))),
            DenyReason::AlreadyAdmitted,
            "the one re-entry is used"
        );
        assert!(matches!(
            decide_entry(&event(2), "g1", &[twice]),
            GateOutcome::Pass { .. }
        ));
    }

    #[test]
    fn names_round_trip() {
        for r in DenyReason::ALL {
            assert_eq!(r.as_str().parse::<DenyReason>().unwrap(), r);
            assert!(!r.guidance().is_empty());
        }
        for s in ["issued", "admitted", "exited", "cancelled", "transferred"] {
            assert_eq!(s.parse::<TicketState>().unwrap().as_str(), s);
        }
        assert!(validate_attendant("Sam", "checked paper ticket").is_ok());
        assert!(validate_attendant("Sam", " ").is_err());
    }

    /// Apply an outcome as the store would (the compare-and-set always wins here).
    fn apply(t: &mut Ticket, o: &GateOutcome) -> bool {
        match o {
            GateOutcome::Pass { to, version, .. } => {
                assert_eq!(*version, t.version, "decided on the ticket as it is");
                if *to == TicketState::Admitted {
                    t.entries += 1;
                }
                t.state = *to;
                t.version += 1;
                true
            }
            GateOutcome::Deny { .. } => false,
        }
    }

    proptest::proptest! {
        /// Whatever the order of arrivals at entry and exit gates, cancellations and
        /// transfers: a ticket admits at most 1 + max_reentries times, never while inside,
        /// never after it is cancelled or transferred, and only at gates it is valid at.
        #[test]
        fn a_ticket_never_admits_more_than_its_policy(
            max in 0u32..3,
            ops in proptest::collection::vec(0u8..6, 0..40),
        ) {
            let e = event(max);
            let mut t = ticket("t", TicketState::Issued, 0, &["g2"]);
            let mut admissions = 0u32;
            for op in ops {
                let inside_before = t.state == TicketState::Admitted;
                let final_before = t.state.is_final();
                match op {
                    0 | 1 => {
                        // Entry at the valid gate (twice as often), or
                        let o = decide_entry(&e, "g2", std::slice::from_ref(&t));
                        if apply(&mut t, &o) {
                            proptest::prop_assert!(!inside_before && !final_before);
                            admissions += 1;
                        }
                    }
                    2 => {
                        // at a gate it is not valid at.
                        let o = decide_entry(&e, "g1", std::slice::from_ref(&t));
                        proptest::prop_assert!(!apply(&mut t, &o));
                    }
                    3 => {
                        let o = decide_exit(&e, std::slice::from_ref(&t));
                        let left = apply(&mut t, &o);
                        proptest::prop_assert_eq!(left, inside_before);
                    }
                    4 if !t.state.is_final() => {
                        t.state = TicketState::Cancelled;
                        t.version += 1;
                    }
                    _ => {}
                }
                proptest::prop_assert!(admissions <= 1 + max);
                proptest::prop_assert_eq!(admissions, t.entries);
            }
        }
    }
}
