//! Pay by palm inside the service: a payment's moves committed with their webhook events,
//! the processor calls they commit to, the reconciliation of calls a crash cut short, lapsed
//! authorisations, and the processor's callbacks.
//!
//! A processor call is always: commit the payment with its [`PendingOp`] (compare-and-set),
//! call ([`settle`]: same idempotency key on every retry), commit the answer. Whatever stops
//! in between leaves a pending payment that [`reconcile`] settles again at start and every
//! [`RECONCILE_EVERY`]; the processor, asked twice with one key, acts once.

use crate::api::payments::view::PaymentView;
use crate::problem::ApiError;
use crate::state::AppState;
use openpalm_domain::model::OutboxEvent;
use openpalm_domain::payment::{Intent, Payment, PaymentStatus, PendingOp};
use openpalm_domain::webhook::EventType;
use openpalm_processor::settle::settle;
use openpalm_processor::ProcessorError;
use openpalm_store::{PaymentWrite, PaymentWritten, Refund};
use std::time::Duration;

/// How often pending calls and lapsed authorisations are looked at.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// Tries of a commit that keeps finding the payment moved (by a callback) before giving up.
const COMMIT_TRIES: usize = 5;

/// The webhook event a move from `before` to `after` announces, if any.
fn event_type(before: Option<&Payment>, after: &Payment) -> Option<EventType> {
    let was = before.map(|b| b.status);
    if was == Some(after.status) {
        // A partial refund keeps the payment captured.
        let refunded_more = before.is_some_and(|b| after.refunded_minor > b.refunded_minor);
        return refunded_more.then_some(EventType::PaymentRefunded);
    }
    match after.status {
        PaymentStatus::Authorized => Some(EventType::PaymentAuthorized),
        PaymentStatus::Captured => Some(EventType::PaymentCaptured),
        PaymentStatus::Voided => Some(EventType::PaymentVoided),
        PaymentStatus::Refunded => Some(EventType::PaymentRefunded),
        PaymentStatus::Declined | PaymentStatus::Failed => Some(EventType::PaymentFailed),
        PaymentStatus::Expired => Some(EventType::PaymentExpired),
        PaymentStatus::AwaitingPalm | PaymentStatus::StepUpRequired | PaymentStatus::Authorizing => None,
    }
}

/// The business's pseudonymous ID for the payment's person, if any.
pub async fn customer_of(state: &AppState, p: &Payment) -> Result<Option<String>, ApiError> {
    match &p.person_id {
        Some(person) => Ok(state
            .store
            .membership(&p.business_id, person)
            .await?
            .map(|m| m.pseudonymous_id)),
        None => Ok(None),
    }
}

/// Commit `w` (the move of `before`, or a new payment), adding the webhook event it
/// announces.
pub async fn commit(
    state: &AppState,
    before: Option<&Payment>,
    mut w: PaymentWrite,
) -> Result<PaymentWritten, ApiError> {
    // A pending refund answered (by the call or by a callback): its row says how it ended.
    if let (Some(b), None) = (before, &w.refund) {
        if let (Some(PendingOp::Refund { refund_id, minor }), None) = (&b.pending, &w.payment.pending) {
            let now = state.clock_now();
            let done = w.payment.refunded_minor >= b.refunded_minor.saturating_add(*minor);
            w.refund = Some(Refund {
                id: refund_id.clone(),
                payment_id: b.id.clone(),
                amount_minor: *minor,
                reason: None,
                status: if done { "succeeded" } else { "failed" }.into(),
                created_at: now,
                updated_at: now,
            });
        }
    }
    if let Some(t) = event_type(before, &w.payment) {
        let customer = customer_of(state, &w.payment).await?;
        let data = serde_json::to_value(PaymentView::new(&w.payment, customer))
            .map_err(|e| ApiError::internal("payment view", e))?;
        // Outbox events carry the real time: the deliverer schedules by it (the moved clock
        // is for payment expiry only).
        w.events.push(OutboxEvent::new(
            &w.payment.business_id,
            t,
            openpalm_domain::now_unix(),
            &data,
        ));
    }
    let written = state.store.write_payment(&w).await?;
    if written == PaymentWritten::Written && !w.events.is_empty() {
        state.webhook_wakeup.notify_one();
    }
    Ok(written)
}

/// What a settled call left.
#[derive(Debug)]
pub struct Outcome {
    pub payment: Payment,
    /// The processor refused the call (the payment shows why, e.g. an expired authorisation).
    pub refused: Option<ProcessorError>,
    /// The processor could not be reached: the call stays pending and is reconciled later.
    pub unreachable: bool,
}

/// Make the call `p` committed to and commit its answer; when a callback moved the payment
/// meanwhile, settle again from what is stored (the processor does nothing twice).
pub async fn run_pending(state: &AppState, mut p: Payment) -> Result<Outcome, ApiError> {
    for _ in 0..COMMIT_TRIES {
        if p.pending.is_none() {
            return Ok(Outcome {
                payment: p,
                refused: None,
                unreachable: false,
            });
        }
        let s = settle(state.processor.as_ref(), &p, state.clock_now())
            .await
            .map_err(|e| ApiError::internal("payment", e))?;
        if s.unreachable {
            return Ok(Outcome {
                payment: p,
                refused: None,
                unreachable: true,
            });
        }
        let w = PaymentWrite::moving(s.payment.clone(), p.version);
        match commit(state, Some(&p), w).await? {
            PaymentWritten::Written => {
                return Ok(Outcome {
                    payment: s.payment,
                    refused: s.refused,
                    unreachable: false,
                })
            }
            PaymentWritten::Stale | PaymentWritten::OverDailyLimit => {
                p = state
                    .store
                    .payment(&p.business_id, &p.id)
                    .await?
                    .ok_or_else(|| ApiError::internal("payment", "vanished"))?;
            }
        }
    }
    Err(ApiError::conflict(
        "payment_busy",
        "the payment kept changing; try again",
    ))
}

/// Expire an authorisation past its time by the service's clock.
pub async fn expire_if_lapsed(state: &AppState, p: Payment) -> Result<Payment, ApiError> {
    let now = state.clock_now();
    match p.expire(now) {
        Ok(next) => match commit(state, Some(&p), PaymentWrite::moving(next.clone(), p.version)).await? {
            PaymentWritten::Written => Ok(next),
            _ => Ok(state.store.payment(&p.business_id, &p.id).await?.unwrap_or(p)),
        },
        Err(_) => Ok(p),
    }
}

/// Settle every payment left pending (by a crash or an unreachable processor) and expire
/// lapsed authorisations. Returns how many payments it moved.
pub async fn reconcile(state: &AppState) -> Result<usize, ApiError> {
    let mut moved = 0;
    for p in state.store.pending_payments(500).await? {
        let o = run_pending(state, p).await?;
        moved += usize::from(!o.unreachable);
    }
    for p in state.store.lapsed_authorizations(state.clock_now(), 500).await? {
        expire_if_lapsed(state, p).await?;
        moved += 1;
    }
    Ok(moved)
}

/// Merge one processor callback (duplicates and late ones change nothing).
pub async fn apply_callback(state: &AppState, intent: &Intent) -> Result<(), ApiError> {
    for _ in 0..COMMIT_TRIES {
        let Some(p) = state.store.payment_by_intent(&intent.id).await? else {
            // Not committed yet: the call's own answer will be merged.
            return Ok(());
        };
        let Some(next) = p
            .merge(intent, state.clock_now())
            .map_err(|e| ApiError::internal("processor callback", e))?
        else {
            return Ok(());
        };
        if commit(state, Some(&p), PaymentWrite::moving(next, p.version)).await? == PaymentWritten::Written {
            return Ok(());
        }
    }
    Err(ApiError::conflict("payment_busy", "callback kept racing"))
}

/// The background work of payments: callbacks as they come, reconciliation at start and
/// every [`RECONCILE_EVERY`].
pub async fn run(state: AppState) {
    let mut callbacks = state.processor.subscribe();
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    loop {
        tokio::select! {
            Some(intent) = callbacks.recv() => {
                if let Err(e) = apply_callback(&state, &intent).await {
                    tracing::warn!("openpalm-server: processor callback for {}: {}", intent.id, e.detail);
                }
            }
            _ = tick.tick() => {
                if let Err(e) = reconcile(&state).await {
                    tracing::error!("openpalm-server: payment reconciliation: {}", e.detail);
                }
            }
        }
    }
}
