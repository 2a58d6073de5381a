//! A person's account lifecycle, run at start and every [`LIFECYCLE_EVERY`]: cancellations
//! completed once their outstanding payments are settled, and dormancy (a notice after
//! `dormancy_days` without an identification, deletion `dormancy_notice_days` later unless
//! the palm was used meanwhile), and device nonces past the clock window pruned. Each
//! deletion is one transaction with its receipt, so a restart in the middle resumes with
//! whoever is left: nobody is deleted twice or in half.

use crate::api::people::{erase_everywhere, ErasureReason};
use crate::problem::ApiError;
use crate::state::AppState;
use openpalm_domain::model::OutboxEvent;
use openpalm_domain::webhook::EventType;
use serde_json::json;
use std::time::Duration;

/// How often the lifecycle runs.
pub const LIFECYCLE_EVERY: Duration = Duration::from_secs(60);
/// People handled per run and kind.
const BATCH: u32 = 500;

/// Take a person out of the gallery (their palm stops working at once); their stored data
/// stays until the deletion. True if they were in it.
pub fn leave_gallery(state: &AppState, person_id: &str) -> Result<bool, ApiError> {
    let mut dir = state
        .directory
        .write()
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?;
    if let Some(seq) = dir.remove_person(person_id) {
        state
            .matcher
            .write()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?
            .remove(seq);
        return Ok(true);
    }
    Ok(false)
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub cancellations_completed: usize,
    pub cancellations_waiting: usize,
    pub dormancy_notices: usize,
    pub dormancy_notices_cleared: usize,
    pub dormant_deleted: usize,
    /// Device nonces forgotten: too old for any capture carrying them to pass the clock check.
    pub nonces_pruned: u64,
}

/// One pass over cancellations and dormancy.
pub async fn run_once(state: &AppState) -> Result<Report, ApiError> {
    let mut r = Report::default();
    let nonce_horizon = openpalm_domain::now_unix() - openpalm_domain::protocol::NONCE_RETENTION_SECS;
    r.nonces_pruned = state.store.prune_nonces(nonce_horizon).await?;
    state.limits.prune();
    for person in state.store.cancelling_people(BATCH).await? {
        // Still out of the gallery after a restart (start-up does not load them either).
        leave_gallery(state, &person)?;
        if !state.store.outstanding_payments(&person).await?.is_empty() {
            r.cancellations_waiting += 1;
            continue;
        }
        let receipt_id = state.store.cancellation(&person).await?.map(|(_, id)| id);
        match erase_everywhere(state, &person, ErasureReason::Cancellation, receipt_id).await {
            Ok(_) => r.cancellations_completed += 1,
            Err(e) if e.code == "outstanding_payments" => r.cancellations_waiting += 1,
            Err(e) => return Err(e),
        }
    }
    for person in state.store.active_since_notice(BATCH).await? {
        state.store.set_dormancy_notice(&person, None).await?;
        r.dormancy_notices_cleared += 1;
    }
    let now = state.clock_now();
    let day = 86_400i64;
    let dormant_before = now - i64::from(state.config.dormancy_days) * day;
    let grace = i64::from(state.config.dormancy_notice_days) * day;
    for (person, notice) in state.store.dormant_people(dormant_before, BATCH).await? {
        match notice {
            None => {
                let events: Vec<OutboxEvent> = state
                    .store
                    .memberships_of(&person)
                    .await?
                    .iter()
                    .map(|m| {
                        OutboxEvent::new(
                            &m.business_id,
                            EventType::PersonDormant,
                            openpalm_domain::now_unix(),
                            &json!({"pseudonymous_id": m.pseudonymous_id, "delete_after": now + grace}),
                        )
                    })
                    .collect();
                state.store.notify_dormancy(&person, now, &events).await?;
                state.webhook_wakeup.notify_one();
                r.dormancy_notices += 1;
            }
            Some(at) if now >= at + grace => {
                match erase_everywhere(state, &person, ErasureReason::Dormancy, None).await {
                    Ok(_) => r.dormant_deleted += 1,
                    // Open payments hold a dormant person too; tried again on the next run.
                    Err(e) if e.code == "outstanding_payments" => {}
                    Err(e) => return Err(e),
                }
            }
            Some(_) => {}
        }
    }
    Ok(r)
}

/// Run the lifecycle at start and every [`LIFECYCLE_EVERY`].
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(LIFECYCLE_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = run_once(&state).await {
            tracing::error!("openpalm-server: account lifecycle: {}", e.detail);
        }
    }
}
