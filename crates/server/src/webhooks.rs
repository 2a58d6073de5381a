//! The webhook deliverer: a background task that sends due outbox deliveries (Standard
//! Webhooks headers and signature, see `openpalm_domain::webhook`) and records every attempt.
//!
//! At least once: a delivery is pending until a receiver answers 2xx. Each attempt first takes
//! a lease on the delivery (its due time moves past the request's time limit), so that two
//! deliverers (two service instances on one PostgreSQL database) do not send it at once; a
//! deliverer that dies mid-attempt leaves the lease to expire and the delivery is sent again.
//! Failures (no answer, a non-2xx status, a redirect) are retried after the configured base
//! delay, doubled after each failure (at most 6 h apart), until `webhook_max_attempts`; then
//! the delivery is marked `failed`. Every attempt of an event carries the same `webhook-id`,
//! so receivers deduplicate on it.

use crate::state::AppState;
use openpalm_domain::webhook;
use openpalm_domain::{now_unix, now_unix_ms};
use openpalm_store::{DeliveryOutcome, DueDelivery};
use std::time::Duration;

/// Deliveries taken per round.
const BATCH: u32 = 32;

/// Run until the task is aborted: deliver what is due, then sleep until woken by a new event
/// or until the next poll (retries become due on their own).
pub async fn run(state: AppState) {
    let poll = Duration::from_millis(state.config.webhook_retry_base_ms.clamp(10, 1000));
    loop {
        let wait = match deliver_due(&state).await {
            Ok(n) if n == BATCH as usize => Duration::ZERO,
            Ok(_) => poll,
            Err(e) => {
                tracing::warn!("openpalm-server: webhook deliverer: {e}");
                poll
            }
        };
        if wait.is_zero() {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = state.webhook_wakeup.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One round: take the due deliveries and attempt each (concurrently); how many were due.
pub async fn deliver_due(state: &AppState) -> Result<usize, openpalm_store::StoreError> {
    let now = now_unix_ms();
    let due = state.store.due_webhook_deliveries(now, BATCH).await?;
    let n = due.len();
    let lease = now + state.config.webhook_timeout_ms as i64 + 30_000;
    let mut tasks = tokio::task::JoinSet::new();
    for d in due {
        if !state
            .store
            .claim_webhook_delivery(&d.event_id, &d.endpoint_id, d.next_attempt_ms, lease)
            .await?
        {
            continue;
        }
        let st = state.clone();
        tasks.spawn(async move {
            let outcome = attempt(&st, &d).await;
            match &outcome {
                DeliveryOutcome::Retry { status, error, .. } => tracing::warn!(
                    event_id = %d.event_id,
                    endpoint_id = %d.endpoint_id,
                    status = ?status,
                    "openpalm-server: webhook delivery failed, retried later: {error}"
                ),
                DeliveryOutcome::GiveUp { status, error } => tracing::warn!(
                    event_id = %d.event_id,
                    endpoint_id = %d.endpoint_id,
                    status = ?status,
                    "openpalm-server: webhook delivery given up: {error}"
                ),
                DeliveryOutcome::Delivered { .. } => {}
            }
            if let Err(e) = st
                .store
                .finish_webhook_delivery(&d.event_id, &d.endpoint_id, &outcome, now_unix())
                .await
            {
                // The lease runs out and the delivery is attempted again: at least once.
                tracing::warn!(
                    "openpalm-server: webhook deliverer: recording {}: {e}",
                    d.event_id
                );
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(n)
}

/// Send one delivery and say how it ended.
async fn attempt(state: &AppState, d: &DueDelivery) -> DeliveryOutcome {
    let failed = d.attempts + 1;
    let fail = |status: Option<u16>, error: String| {
        if failed >= state.config.webhook_max_attempts {
            DeliveryOutcome::GiveUp { status, error }
        } else {
            DeliveryOutcome::Retry {
                status,
                error,
                next_attempt_ms: now_unix_ms() + state.config.webhook_backoff_ms(failed) as i64,
            }
        }
    };
    let secret = match state.keys.open_webhook_secret(&d.endpoint_id, &d.secret_sealed) {
        Ok(s) => s,
        Err(e) => {
            return DeliveryOutcome::GiveUp {
                status: None,
                error: format!("endpoint secret: {e}"),
            }
        }
    };
    // An IP literal is not resolved, so the resolver's check does not see it: checked here.
    match reqwest::Url::parse(&d.url) {
        Ok(u) => {
            if let Err(e) = state.egress.check_url(&u) {
                return fail(None, e.to_string());
            }
        }
        Err(e) => return fail(None, format!("url: {e}")),
    }
    let ts = now_unix();
    let signature = match webhook::sign(&secret, &d.event_id, ts, d.payload.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            return DeliveryOutcome::GiveUp {
                status: None,
                error: e.to_string(),
            }
        }
    };
    let sent = state
        .http
        .post(&d.url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("openpalm-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => DeliveryOutcome::Delivered {
            status: r.status().as_u16(),
        },
        Ok(r) => fail(Some(r.status().as_u16()), format!("HTTP {}", r.status())),
        Err(e) => fail(None, error_chain(&e)),
    }
}

/// The error with its causes (a refused address is a cause of reqwest's connect error).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
