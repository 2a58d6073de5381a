//! The audit log inside the service: a layer on every route records who did what, when,
//! with which request ID and answer; one writer task chains the records
//! (`openpalm_domain::audit`) and appends them in batches, in the order they came, so that
//! no request waits on the log. `openpalm audit verify` checks the chain.
//!
//! The actor comes from the request's credentials (the extractors fill the slot the layer
//! put in the request); the subject is the person concerned: the signed-in person on their
//! own routes, the member a business names by pseudonymous ID (noted by the member lookup,
//! [`note_subject`]), or the person a palm was recognised as.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use openpalm_domain::audit::{chain, AuditEntry};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The request ID the outer layer chose (also sent back as `x-request-id`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Who made a request, as the credential extractors found it.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub who: Option<String>,
    /// The person concerned, when the credential names one.
    pub subject: Option<String>,
}

/// Shared between the layer and the extractors of one request.
#[derive(Clone, Debug, Default)]
pub struct ActorSlot(pub Arc<Mutex<Actor>>);

impl ActorSlot {
    /// Record the caller (from an extractor).
    pub fn set(parts: &axum::http::request::Parts, who: String, subject: Option<String>) {
        if let Some(slot) = parts.extensions.get::<ActorSlot>() {
            if let Ok(mut a) = slot.0.lock() {
                a.who = Some(who);
                if subject.is_some() {
                    a.subject = subject;
                }
            }
        }
    }
}

tokio::task_local! {
    /// The slot of the request being handled (set by [`layer`] around the handler).
    static CURRENT: ActorSlot;
}

/// Name the person the current request concerns (handlers call it once they resolved a
/// pseudonymous ID, before they change anything).
pub fn note_subject(person_id: &str) {
    let _ = CURRENT.try_with(|slot| {
        if let Ok(mut a) = slot.0.lock() {
            if a.subject.is_none() {
                a.subject = Some(person_id.to_string());
            }
        }
    });
}

/// A message to the writer.
pub enum AuditMsg {
    Entry(AuditEntry),
    /// Answered once everything sent before is written.
    Flush(oneshot::Sender<()>),
}

/// Routes whose use is not an action on anyone's data.
fn unaudited(path: &str) -> bool {
    matches!(
        path,
        "/v1/health"
            | "/openapi.json"
            | "/v1/service-key"
            | "/v1/consent-texts/current"
            | "/v1/retention-policy"
    )
}

/// The audit layer (a route layer: the matched route is known).
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if unaudited(&route) {
        return next.run(req).await;
    }
    let slot = ActorSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().as_str().to_string();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let res = CURRENT.scope(slot.clone(), next.run(req)).await;
    // A request turned away by a rate limit or by overload changed nothing and reached no
    // one's data; logging each would let a flood amplify itself into the audit log (and its
    // writer). They are counted, not recorded.
    if matches!(res.status().as_u16(), 429 | 503) {
        return res;
    }
    let actor = slot.0.lock().map(|a| a.clone()).unwrap_or_default();
    let entry = AuditEntry {
        at: openpalm_domain::now_unix(),
        actor: actor.who.unwrap_or_else(|| "anonymous".into()),
        action: format!("{method} {route}"),
        subject: actor.subject,
        request_id,
        status: res.status().as_u16(),
    };
    let _ = state.audit.send(AuditMsg::Entry(entry));
    res
}

/// Wait until everything logged so far is written.
pub async fn flush(state: &AppState) {
    let (tx, rx) = oneshot::channel();
    if state.audit.send(AuditMsg::Flush(tx)).is_ok() {
        let _ = rx.await;
    }
}

/// The writer: chains and appends, a batch at a time, in arrival order.
pub async fn run(state: AppState, mut rx: mpsc::UnboundedReceiver<AuditMsg>) {
    let mut head = match state.store.audit_head().await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("openpalm-server: audit log: cannot read its head: {e}");
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut records = Vec::new();
        let mut waiting = Vec::new();
        for m in batch {
            match m {
                AuditMsg::Entry(e) => {
                    let r = chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), e);
                    head = Some((r.seq, r.hash.clone()));
                    records.push(r);
                }
                AuditMsg::Flush(tx) => waiting.push(tx),
            }
        }
        if !records.is_empty() {
            if let Err(e) = state.store.append_audit(&records).await {
                tracing::error!(
                    "openpalm-server: audit log: {} records not written: {e}",
                    records.len()
                );
                // Start again from what is stored, so the chain stays whole.
                head = state.store.audit_head().await.unwrap_or(head);
            }
        }
        for tx in waiting {
            let _ = tx.send(());
        }
    }
}
