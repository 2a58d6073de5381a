//! Storage of venue entry: events and their gates, tickets, lane decisions ("passages").
//!
//! Every lane decision is one transaction ([`EntryStore::write_lane`]): the ticket's move as
//! a compare-and-set on its `version` (so two gates racing on one holder admit once: the
//! loser's transaction writes nothing and the caller decides again on the ticket as it now
//! is), the passage, the match log line, the webhook events and, for creates, the
//! `Idempotency-Key` record.

use crate::{
    corrupt, insert_events_in, insert_match_log_in, is_unique_violation, page_start, save_idempotency_in,
    Cursor, IdempotencyWrite, Page, Result, SqlStore, StoreError,
};
use async_trait::async_trait;
use openpalm_domain::entry::{
    DenyReason, Direction, Event, Passage, PassageSource, Ticket, TicketState, Verdict,
};
use openpalm_domain::model::{MatchLogEntry, OutboxEvent};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// A ticket's move, applied only if the ticket is still at `expected_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketMove {
    pub ticket_id: String,
    pub expected_version: i64,
    pub to: TicketState,
    /// Added to the ticket's entry count (1 on an admission, -1 when an override takes one
    /// back, else 0).
    pub entries_delta: i64,
    pub at: i64,
}

/// Everything one lane decision (or ticket change) writes, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct LaneWrite {
    pub ticket_move: Option<TicketMove>,
    /// Tickets created in the same step (a transfer's new ticket).
    pub new_tickets: Vec<Ticket>,
    pub passage: Option<Passage>,
    pub match_log: Option<MatchLogEntry>,
    pub events: Vec<OutboxEvent>,
    pub idem: Option<IdempotencyWrite>,
}

/// One gate's decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GateCount {
    pub admitted: i64,
    pub denied: i64,
    pub exited: i64,
}

/// Live figures of one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Tickets per state.
    pub tickets: BTreeMap<String, i64>,
    /// Decisions per gate (`manual` for manual entries made away from a reader).
    pub gates: BTreeMap<String, GateCount>,
    /// Denials per reason.
    pub denied_by_reason: BTreeMap<String, i64>,
    /// Decisions per source (`palm`, `override`, `manual`) and verdict.
    pub by_source: BTreeMap<String, i64>,
}

/// The storage of venue entry; part of every [`crate::Store`].
#[async_trait]
pub trait EntryStore: Send + Sync {
    /// Insert an event with its gates (and the request's idempotency record).
    async fn create_event(&self, event: &Event, idem: Option<&IdempotencyWrite>) -> Result<()>;
    /// An event of this business.
    async fn event(&self, business_id: &str, id: &str) -> Result<Option<Event>>;
    /// The business's events, oldest first.
    async fn list_events(&self, business_id: &str, after: Option<&Cursor>, limit: u32)
        -> Result<Page<Event>>;
    /// Every (event, person) of a ticket with a holder, in any state: the event scopes the
    /// matcher loads at start.
    async fn ticket_holders(&self) -> Result<Vec<(String, String)>>;
    /// Insert tickets (and the idempotency record) in one transaction. `Conflict` if an
    /// external reference is taken for the event.
    async fn insert_tickets(&self, tickets: &[Ticket], idem: Option<&IdempotencyWrite>) -> Result<()>;
    /// Of `refs`, those already used by tickets of the event.
    async fn external_refs_taken(&self, event_id: &str, refs: &[String]) -> Result<Vec<String>>;
    /// A ticket of this business.
    async fn ticket(&self, business_id: &str, id: &str) -> Result<Option<Ticket>>;
    /// The ticket of an event with this external reference.
    async fn ticket_by_ref(&self, event_id: &str, external_ref: &str) -> Result<Option<Ticket>>;
    /// A person's tickets for an event, any state, oldest first.
    async fn tickets_of(&self, event_id: &str, person_id: &str) -> Result<Vec<Ticket>>;
    /// An event's tickets, oldest first.
    async fn list_tickets(
        &self,
        business_id: &str,
        event_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Ticket>>;
    /// Apply a lane decision or ticket change in one transaction. False (and nothing
    /// written) when the ticket is no longer at the expected version.
    /// `IdempotencyKeyTaken` if the key was taken meanwhile.
    async fn write_lane(&self, write: &LaneWrite) -> Result<bool>;
    /// A passage of this business.
    async fn passage(&self, business_id: &str, id: &str) -> Result<Option<Passage>>;
    /// An event's passages, oldest first.
    async fn list_passages(
        &self,
        business_id: &str,
        event_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Passage>>;
    /// Live figures of an event.
    async fn event_counts(&self, event_id: &str) -> Result<EventCounts>;
    /// The person a business linked a member ID to.
    async fn person_by_member_id(&self, business_id: &str, member_id: &str) -> Result<Option<String>>;
}

const EVENT_COLS: &str =
    "id, business_id, name, site, starts_at, ends_at, doors_open_at, doors_close_at, max_reentries, created_at";
const TICKET_COLS: &str = "id, business_id, event_id, person_id, ticket_type, gates, external_ref, state, entries, version, transferred_from, created_at, updated_at";
const PASSAGE_COLS: &str = "id, business_id, event_id, device_id, ticket_id, person_id, direction, verdict, reason, source, attendant, note, overrides, api_key_id, decision_ms, at";

fn parse<T: std::str::FromStr<Err = String>>(what: &str, s: &str) -> Result<T> {
    s.parse().map_err(|e: String| corrupt(what, e))
}

fn event_from_row(r: &AnyRow, gates: Vec<(String, Direction)>) -> Result<Event> {
    let max: i64 = r.try_get("max_reentries")?;
    Ok(Event {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        name: r.try_get("name")?,
        site: r.try_get("site")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        doors_open_at: r.try_get("doors_open_at")?,
        doors_close_at: r.try_get("doors_close_at")?,
        max_reentries: u32::try_from(max).map_err(|e| corrupt("events.max_reentries", e))?,
        entry_gates: gates
            .iter()
            .filter(|(_, d)| *d == Direction::Entry)
            .map(|(g, _)| g.clone())
            .collect(),
        exit_gates: gates
            .iter()
            .filter(|(_, d)| *d == Direction::Exit)
            .map(|(g, _)| g.clone())
            .collect(),
        created_at: r.try_get("created_at")?,
    })
}

fn ticket_from_row(r: &AnyRow) -> Result<Ticket> {
    let gates: String = r.try_get("gates")?;
    let state: String = r.try_get("state")?;
    let entries: i64 = r.try_get("entries")?;
    Ok(Ticket {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        event_id: r.try_get("event_id")?,
        person_id: r.try_get("person_id")?,
        ticket_type: r.try_get("ticket_type")?,
        gates: gates
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        external_ref: r.try_get("external_ref")?,
        state: parse("tickets.state", &state)?,
        entries: u32::try_from(entries).map_err(|e| corrupt("tickets.entries", e))?,
        version: r.try_get("version")?,
        transferred_from: r.try_get("transferred_from")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn passage_from_row(r: &AnyRow) -> Result<Passage> {
    let direction: String = r.try_get("direction")?;
    let verdict: String = r.try_get("verdict")?;
    let reason: Option<String> = r.try_get("reason")?;
    let source: String = r.try_get("source")?;
    Ok(Passage {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        event_id: r.try_get("event_id")?,
        device_id: r.try_get("device_id")?,
        ticket_id: r.try_get("ticket_id")?,
        person_id: r.try_get("person_id")?,
        direction: parse("passages.direction", &direction)?,
        verdict: parse::<Verdict>("passages.verdict", &verdict)?,
        reason: reason
            .map(|s| parse::<DenyReason>("passages.reason", &s))
            .transpose()?,
        source: parse::<PassageSource>("passages.source", &source)?,
        attendant: r.try_get("attendant")?,
        note: r.try_get("note")?,
        overrides: r.try_get("overrides")?,
        api_key_id: r.try_get("api_key_id")?,
        decision_ms: r.try_get("decision_ms")?,
        at: r.try_get("at")?,
    })
}

async fn insert_ticket_in(c: &mut AnyConnection, t: &Ticket) -> Result<()> {
    let r = sqlx::query(&format!(
        "INSERT INTO tickets ({TICKET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&t.id)
    .bind(&t.business_id)
    .bind(&t.event_id)
    .bind(&t.person_id)
    .bind(&t.ticket_type)
    .bind(t.gates.join(" "))
    .bind(&t.external_ref)
    .bind(t.state.as_str())
    .bind(i64::from(t.entries))
    .bind(t.version)
    .bind(&t.transferred_from)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "external_ref {:?} is taken for this event",
            t.external_ref.as_deref().unwrap_or("")
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn insert_passage_in(c: &mut AnyConnection, p: &Passage) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO passages ({PASSAGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&p.id)
    .bind(&p.business_id)
    .bind(&p.event_id)
    .bind(&p.device_id)
    .bind(&p.ticket_id)
    .bind(&p.person_id)
    .bind(p.direction.as_str())
    .bind(p.verdict.as_str())
    .bind(p.reason.map(|r| r.as_str()))
    .bind(p.source.as_str())
    .bind(&p.attendant)
    .bind(&p.note)
    .bind(&p.overrides)
    .bind(&p.api_key_id)
    .bind(p.decision_ms)
    .bind(p.at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// On erasure (inside the erasing transaction): the person's live tickets are cancelled and
/// every ticket and passage loses its holder, so the business keeps its counts but nothing
/// that leads back to the person.
pub(crate) async fn forget_person_in(c: &mut AnyConnection, person_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE tickets SET state = 'cancelled', version = version + 1
         WHERE person_id = $1 AND state IN ('issued', 'admitted', 'exited')",
    )
    .bind(person_id)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE tickets SET person_id = NULL WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut *c)
        .await?;
    sqlx::query("UPDATE passages SET person_id = NULL WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

impl SqlStore {
    async fn event_gates(&self, event_id: &str) -> Result<Vec<(String, Direction)>> {
        let rows = sqlx::query(
            "SELECT device_id, direction FROM event_gates WHERE event_id = $1 ORDER BY device_id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get("direction")?;
                Ok((r.try_get("device_id")?, parse("event_gates.direction", &d)?))
            })
            .collect()
    }
}

#[async_trait]
impl EntryStore for SqlStore {
    async fn create_event(&self, e: &Event, idem: Option<&IdempotencyWrite>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        sqlx::query(&format!(
            "INSERT INTO events ({EVENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&e.id)
        .bind(&e.business_id)
        .bind(&e.name)
        .bind(&e.site)
        .bind(e.starts_at)
        .bind(e.ends_at)
        .bind(e.doors_open_at)
        .bind(e.doors_close_at)
        .bind(i64::from(e.max_reentries))
        .bind(e.created_at)
        .execute(&mut *tx)
        .await?;
        let gates = e
            .entry_gates
            .iter()
            .map(|g| (g, Direction::Entry))
            .chain(e.exit_gates.iter().map(|g| (g, Direction::Exit)));
        for (g, d) in gates {
            sqlx::query("INSERT INTO event_gates (event_id, device_id, direction) VALUES ($1, $2, $3)")
                .bind(&e.id)
                .bind(g)
                .bind(d.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn event(&self, business_id: &str, id: &str) -> Result<Option<Event>> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE business_id = $1 AND id = $2"
        ))
        .bind(business_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(event_from_row(&r, self.event_gates(id).await?)?)),
            None => Ok(None),
        }
    }

    async fn list_events(
        &self,
        business_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Event>> {
        let (at, id) = page_start(after);
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE business_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
             ORDER BY created_at, id LIMIT $4"
        ))
        .bind(business_id)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            items.push(event_from_row(r, self.event_gates(&id).await?)?);
        }
        Ok(Page::of(items, limit, |e: &Event| Cursor {
            at: e.created_at,
            id: e.id.clone(),
        }))
    }

    async fn ticket_holders(&self) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT DISTINCT event_id, person_id FROM tickets WHERE person_id IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("event_id")?, r.try_get("person_id")?)))
            .collect()
    }

    async fn insert_tickets(&self, tickets: &[Ticket], idem: Option<&IdempotencyWrite>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        for t in tickets {
            insert_ticket_in(&mut tx, t).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn external_refs_taken(&self, event_id: &str, refs: &[String]) -> Result<Vec<String>> {
        let mut taken = Vec::new();
        // In slices, so that a bulk call stays within every database's parameter limit.
        for chunk in refs.chunks(500) {
            let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT external_ref FROM tickets WHERE event_id = $1 AND external_ref IN ({})",
                params.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(event_id);
            for r in chunk {
                q = q.bind(r);
            }
            for row in q.fetch_all(&self.pool).await? {
                taken.push(row.try_get("external_ref")?);
            }
        }
        Ok(taken)
    }

    async fn ticket(&self, business_id: &str, id: &str) -> Result<Option<Ticket>> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE business_id = $1 AND id = $2"
        ))
        .bind(business_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_by_ref(&self, event_id: &str, external_ref: &str) -> Result<Option<Ticket>> {
        let row = sqlx::query(&format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE event_id = $1 AND external_ref = $2"
        ))
        .bind(event_id)
        .bind(external_ref)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn tickets_of(&self, event_id: &str, person_id: &str) -> Result<Vec<Ticket>> {
        let rows = sqlx::query(&format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE event_id = $1 AND person_id = $2 ORDER BY created_at, id"
        ))
        .bind(event_id)
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn list_tickets(
        &self,
        business_id: &str,
        event_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Ticket>> {
        let (at, id) = page_start(after);
        let rows = sqlx::query(&format!(
            "SELECT {TICKET_COLS} FROM tickets WHERE business_id = $1 AND event_id = $2
             AND (created_at > $3 OR (created_at = $3 AND id > $4)) ORDER BY created_at, id LIMIT $5"
        ))
        .bind(business_id)
        .bind(event_id)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(ticket_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::of(items, limit, |t: &Ticket| Cursor {
            at: t.created_at,
            id: t.id.clone(),
        }))
    }

    async fn write_lane(&self, w: &LaneWrite) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // The compare-and-set first: on SQLite it takes the write lock at once, so racing
        // gates queue here instead of failing to upgrade a read.
        if let Some(m) = &w.ticket_move {
            let r = sqlx::query(
                "UPDATE tickets SET state = $1, entries = entries + $2, version = version + 1, updated_at = $3
                 WHERE id = $4 AND version = $5",
            )
            .bind(m.to.as_str())
            .bind(m.entries_delta)
            .bind(m.at)
            .bind(&m.ticket_id)
            .bind(m.expected_version)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        if let Some(idem) = &w.idem {
            save_idempotency_in(&mut tx, idem).await?;
        }
        for t in &w.new_tickets {
            insert_ticket_in(&mut tx, t).await?;
        }
        if let Some(p) = &w.passage {
            insert_passage_in(&mut tx, p).await?;
        }
        if let Some(l) = &w.match_log {
            insert_match_log_in(&mut *tx, l).await?;
        }
        insert_events_in(&mut tx, &w.events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn passage(&self, business_id: &str, id: &str) -> Result<Option<Passage>> {
        let row = sqlx::query(&format!(
            "SELECT {PASSAGE_COLS} FROM passages WHERE business_id = $1 AND id = $2"
        ))
        .bind(business_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(passage_from_row).transpose()
    }

    async fn list_passages(
        &self,
        business_id: &str,
        event_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Passage>> {
        let (at, id) = page_start(after);
        let rows = sqlx::query(&format!(
            "SELECT {PASSAGE_COLS} FROM passages WHERE business_id = $1 AND event_id = $2
             AND (at > $3 OR (at = $3 AND id > $4)) ORDER BY at, id LIMIT $5"
        ))
        .bind(business_id)
        .bind(event_id)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(passage_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::of(items, limit, |p: &Passage| Cursor {
            at: p.at,
            id: p.id.clone(),
        }))
    }

    async fn person_by_member_id(&self, business_id: &str, member_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT person_id FROM links WHERE business_id = $1 AND kind = 'member_id' AND value = $2",
        )
        .bind(business_id)
        .bind(member_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("person_id")?)).transpose()
    }

    async fn event_counts(&self, event_id: &str) -> Result<EventCounts> {
        let mut c = EventCounts::default();
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tickets WHERE event_id = $1 GROUP BY state")
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            c.tickets.insert(r.try_get("state")?, r.try_get("n")?);
        }
        let rows = sqlx::query(
            "SELECT device_id, verdict, reason, source, COUNT(*) AS n FROM passages WHERE event_id = $1
             GROUP BY device_id, verdict, reason, source",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let device: Option<String> = r.try_get("device_id")?;
            let verdict: String = r.try_get("verdict")?;
            let reason: Option<String> = r.try_get("reason")?;
            let source: String = r.try_get("source")?;
            let n: i64 = r.try_get("n")?;
            let g = c
                .gates
                .entry(device.unwrap_or_else(|| "manual".into()))
                .or_default();
            match parse::<Verdict>("passages.verdict", &verdict)? {
                Verdict::Admit => g.admitted += n,
                Verdict::Deny => {
                    g.denied += n;
                    *c.denied_by_reason
                        .entry(reason.unwrap_or_else(|| "attendant".into()))
                        .or_default() += n;
                }
                Verdict::Exit => g.exited += n,
            }
            *c.by_source.entry(format!("{source}:{verdict}")).or_default() += n;
        }
        Ok(c)
    }
}

/// Every lane decision about a person, at every business, oldest first (for the person).
pub(crate) async fn passages_of_person(s: &SqlStore, person_id: &str) -> Result<Vec<Passage>> {
    let rows = sqlx::query(&format!(
        "SELECT {PASSAGE_COLS} FROM passages WHERE person_id = $1 ORDER BY at, id"
    ))
    .bind(person_id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(passage_from_row).collect()
}
