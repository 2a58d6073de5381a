//! Live figures of an event and the list of its lane decisions.

use super::view::{view, PassageView};
use crate::api::devices::PageQuery;
use crate::api::events::{own_event, ListPage};
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::now_unix;
use serde::Serialize;
use std::collections::BTreeMap;
#[derive(Serialize, schemars::JsonSchema)]
pub struct GateCountView {
    pub gate: String,
    pub admitted: i64,
    pub denied: i64,
    pub exited: i64,
}

#[derive(Serialize, schemars::JsonSchema)]
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
