//! The checkout: a palm, then perhaps a step-up code, then the card.
//!
//! 1. The payment (the caller's, waiting for a palm, not older than its waiting time) and the
//!    capture (device, signature, clock, nonce; from the payment's own checkout) are checked.
//! 2. The palm is searched among the store's members only, at the payment threshold
//!    ([`crate::Config::payment_threshold`], stricter than entry's); a runner-up within the
//!    ambiguity margin makes it `ambiguous`. Either miss spends one of the payment's palm
//!    attempts and charges nobody.
//! 3. The recognised person's card at this store (their latest linked payment token) and
//!    their safeguards: a per-payment limit, a step-up above an amount, and the daily limit,
//!    checked in the transaction that commits the authorisation.
//! 4. The processor authorises (same idempotency key on every retry, reconciled after a
//!    crash); its answer is the checkout's: `approved`, `declined` with its code, or
//!    `step_up_required` when the card asks for verification.

use super::view::{CheckoutAnswer, CheckoutOutcome};
use super::{own_payment, payment_problem, processor_problem};
use crate::api::enroll::Input;
use crate::api::lane::{person_of, search};
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::capture;
use crate::payments::{commit, customer_of, run_pending};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::decision::{Decision, DecisionPolicy};
use openpalm_domain::ids::{new_id, prefix, Purpose};
use openpalm_domain::model::{Caller, LinkKind, MatchLogEntry};
use openpalm_domain::payment::{
    guard, utc_day_start, DeclineReason, Guard, Payment, PaymentSettings, PaymentStatus,
};
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_processor::ProcessorError;
use openpalm_store::{DailyLimit, PaymentWrite, PaymentWritten};
use serde::Deserialize;
use std::time::Instant;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PalmRequest {
    pub input: Input,
    pub capture: SealedCaptureWire,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpRequest {
    /// What the person entered at the checkout.
    pub code: String,
}

fn busy() -> ApiError {
    ApiError::conflict(
        "payment_busy",
        "the payment changed meanwhile; read it and try again",
    )
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// The daily limit to check when this payment moves to `authorizing`.
fn daily(settings: Option<&PaymentSettings>, p: &Payment, person: &str, now: i64) -> Option<DailyLimit> {
    let s = settings?;
    Some(DailyLimit {
        person_id: person.to_string(),
        business_id: p.business_id.clone(),
        day_start: utc_day_start(now),
        limit_minor: s.daily_limit_minor?,
        currency: s.currency.clone(),
    })
}

/// Commit the move to `authorizing` (daily limit in the same transaction), call the
/// processor, and answer.
async fn authorize(
    state: &AppState,
    before: &Payment,
    next: Payment,
    settings: Option<&PaymentSettings>,
    extra: Option<MatchLogEntry>,
    started: Instant,
) -> Result<CheckoutAnswer, ApiError> {
    let now = state.clock_now();
    let person = next.person_id.clone().unwrap_or_default();
    let mut w = PaymentWrite::moving(next.clone(), before.version);
    w.daily_limit = daily(settings, &next, &person, now);
    w.match_log = extra.clone();
    match commit(state, Some(before), w).await? {
        PaymentWritten::Written => {}
        PaymentWritten::Stale => return Err(busy()),
        PaymentWritten::OverDailyLimit => {
            // The same step, refused: recognised (or verified), then declined.
            let refused = next_refused(before, &person, DeclineReason::OverDailyLimit, now)?;
            let mut w = PaymentWrite::moving(refused.clone(), before.version);
            w.match_log = extra;
            return match commit(state, Some(before), w).await? {
                PaymentWritten::Written => answer(state, &refused, settings, started).await,
                _ => Err(busy()),
            };
        }
    }
    let o = run_pending(state, next).await?;
    if o.unreachable {
        return Err(processor_problem(&ProcessorError::Timeout));
    }
    let mut p = o.payment;
    // The card asks for verification the person cannot give here: declined, and the
    // processor's intent is cancelled so that nothing stays open.
    if p.status == PaymentStatus::StepUpRequired && settings.and_then(|s| s.step_up_method).is_none() {
        let mut refused = None;
        for _ in 0..3 {
            let r = p
                .refuse(DeclineReason::AuthenticationRequired, false, state.clock_now())
                .map_err(payment_problem)?;
            if commit(state, Some(&p), PaymentWrite::moving(r.clone(), p.version)).await?
                == PaymentWritten::Written
            {
                refused = Some(r);
                break;
            }
            // A callback moved it meanwhile: decide on the payment as it is now.
            p = super::own_payment(state, &p.business_id, &p.id).await?;
            if p.status != PaymentStatus::StepUpRequired {
                break;
            }
        }
        if let Some(r) = refused {
            if let Some(intent) = &r.intent_id {
                let _ = state
                    .processor
                    .cancel(intent, &format!("{}:cancel-unverifiable", r.id))
                    .await;
            }
            p = r;
        }
    }
    answer(state, &p, settings, started).await
}

/// `before` refused for `reason` (recognised first if it was waiting for a palm).
fn next_refused(
    before: &Payment,
    person: &str,
    reason: DeclineReason,
    now: i64,
) -> Result<Payment, ApiError> {
    let base = if before.status == PaymentStatus::AwaitingPalm {
        before
            .recognised(person, before.card_token.as_deref(), now)
            .map_err(payment_problem)?
    } else {
        before.clone()
    };
    base.refuse(reason, false, now).map_err(payment_problem)
}

async fn answer(
    state: &AppState,
    p: &Payment,
    settings: Option<&PaymentSettings>,
    started: Instant,
) -> Result<CheckoutAnswer, ApiError> {
    let customer = customer_of(state, p).await?;
    Ok(CheckoutAnswer::of(
        p,
        customer,
        settings.and_then(|s| s.step_up_method),
        ms(started),
    ))
}

/// The person's card at this store: their latest linked payment token.
async fn card_of(state: &AppState, business_id: &str, person: &str) -> Result<Option<String>, ApiError> {
    Ok(state
        .store
        .links(business_id, person)
        .await?
        .into_iter()
        .filter(|l| l.kind == LinkKind::PaymentToken)
        .max_by_key(|l| (l.created_at, l.id.clone()))
        .map(|l| l.value))
}

fn log_line(
    caller: &Caller,
    device: &openpalm_domain::model::Device,
    p: &Payment,
    person: Option<&str>,
    decision: Decision,
    score: f32,
    outcome: &str,
) -> MatchLogEntry {
    MatchLogEntry {
        id: new_id(prefix::IDENTIFICATION),
        person_id: person.map(str::to_string),
        business_id: caller.business_id.clone(),
        device_id: device.id.clone(),
        site: device.site.clone(),
        at: p.updated_at,
        decision,
        score,
        event_id: None,
        outcome: Some(format!("payment:{}:{outcome}", p.id)),
    }
}

/// `POST /v1/payments/{id}/palm`: the checkout's palm for a payment.
pub async fn palm(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: ApiJson<PalmRequest>,
) -> Result<Json<CheckoutAnswer>, ApiError> {
    let answer = palm_decision(State(state.clone()), auth, Path(id), body).await?;
    state.metrics.decision("checkout", answer.0.outcome.as_str());
    Ok(answer)
}

async fn palm_decision(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: ApiJson<PalmRequest>,
) -> Result<Json<CheckoutAnswer>, ApiError> {
    let started = Instant::now();
    let caller = auth.require(Scope::Payments)?.clone();
    let p = own_payment(&state, &caller.business_id, &id).await?;
    if p.status != PaymentStatus::AwaitingPalm || p.pending.is_some() {
        return Err(ApiError::conflict(
            "payment_not_awaiting_palm",
            format!(
                "the payment is {}; a palm is taken only while it awaits one",
                p.status.as_str()
            ),
        )
        .with("status", p.status.as_str()));
    }
    let req = body.value;
    let (device, captures) = capture::verify(
        &state,
        &caller,
        std::slice::from_ref(&req.capture),
        Purpose::Identify,
    )
    .await?;
    if device.id != p.device_id {
        return Err(ApiError::conflict(
            "wrong_checkout",
            "this capture comes from another device than the payment's checkout",
        ));
    }
    let now = state.clock_now();
    if !p.palm_window_open(now) {
        let next = p
            .refuse(DeclineReason::TimedOut, true, now)
            .map_err(payment_problem)?;
        if commit(&state, Some(&p), PaymentWrite::moving(next.clone(), p.version)).await?
            != PaymentWritten::Written
        {
            return Err(busy());
        }
        return Ok(Json(answer(&state, &next, None, started).await?));
    }
    let extraction = capture::extract_all(&state, captures, req.input.kind())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("checkout", "no extraction"))?;
    let policy = DecisionPolicy {
        threshold: state.config.payment_threshold,
        ambiguity_margin: state.config.ambiguity_margin,
    };
    let found = search(&state, &extraction.template, &caller.business_id, 2).await?;
    let scores: Vec<f32> = found.iter().map(|c| c.score).collect();
    let (decision, _) = policy.decide(&scores);
    let best = found.first().copied();
    let (person, score) = match (decision, best) {
        (Decision::Match, Some(b)) => (person_of(&state, &b)?, b.score),
        _ => {
            let next = p.palm_missed(now).map_err(payment_problem)?;
            let outcome = if decision == Decision::Ambiguous {
                CheckoutOutcome::Ambiguous
            } else {
                CheckoutOutcome::NotRecognised
            };
            let mut w = PaymentWrite::moving(next.clone(), p.version);
            let text = if outcome == CheckoutOutcome::Ambiguous {
                "ambiguous"
            } else {
                "not_recognised"
            };
            w.match_log = Some(log_line(&caller, &device, &next, None, decision, 0.0, text));
            if commit(&state, Some(&p), w).await? != PaymentWritten::Written {
                return Err(busy());
            }
            return Ok(Json(CheckoutAnswer::missed(outcome, &next, ms(started))));
        }
    };
    let card = card_of(&state, &caller.business_id, &person).await?;
    let recognised = p
        .recognised(&person, card.as_deref(), now)
        .map_err(payment_problem)?;
    let settings = state.store.payment_settings(&person, &caller.business_id).await?;
    let verdict = if card.is_none() {
        Guard::Refuse(DeclineReason::NoCardLinked)
    } else {
        guard(settings.as_ref(), &p.amount, 0)
    };
    let log =
        |q: &Payment, text: &str| log_line(&caller, &device, q, Some(&person), Decision::Match, score, text);
    let next = match verdict {
        Guard::Allow => {
            let next = recognised.start_authorize(false, now).map_err(payment_problem)?;
            let line = log(&next, "authorize");
            return Ok(Json(
                authorize(&state, &p, next, settings.as_ref(), Some(line), started).await?,
            ));
        }
        Guard::StepUp(_) => recognised.require_step_up(now).map_err(payment_problem)?,
        Guard::Refuse(reason) => recognised.refuse(reason, false, now).map_err(payment_problem)?,
    };
    let mut w = PaymentWrite::moving(next.clone(), p.version);
    w.match_log = Some(log(&next, next.status.as_str()));
    if commit(&state, Some(&p), w).await? != PaymentWritten::Written {
        return Err(busy());
    }
    Ok(Json(answer(&state, &next, settings.as_ref(), started).await?))
}

/// `POST /v1/payments/{id}/step-up`: the code the person entered at the checkout.
pub async fn step_up(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: ApiJson<StepUpRequest>,
) -> Result<Json<CheckoutAnswer>, ApiError> {
    let started = Instant::now();
    let caller = auth.require(Scope::Payments)?;
    let p = own_payment(&state, &caller.business_id, &id).await?;
    if p.status != PaymentStatus::StepUpRequired || p.pending.is_some() {
        return Err(ApiError::conflict(
            "payment_not_awaiting_step_up",
            format!(
                "the payment is {}; a code is taken only while it asks for one",
                p.status.as_str()
            ),
        )
        .with("status", p.status.as_str()));
    }
    let person = p
        .person_id
        .clone()
        .ok_or_else(|| ApiError::internal("step-up", "no person on the payment"))?;
    let settings = state.store.payment_settings(&person, &caller.business_id).await?;
    let now = state.clock_now();
    let code = body.value.code;
    let ok = code.len() <= 16
        && settings
            .as_ref()
            .and_then(|s| s.step_up_hash.as_deref())
            .is_some_and(|h| state.keys.step_up_matches(&person, &caller.business_id, &code, h));
    if !ok {
        let next = p.step_up_missed(now).map_err(payment_problem)?;
        if commit(&state, Some(&p), PaymentWrite::moving(next.clone(), p.version)).await?
            != PaymentWritten::Written
        {
            return Err(busy());
        }
        return Ok(Json(answer(&state, &next, settings.as_ref(), started).await?));
    }
    let next = p.start_authorize(true, now).map_err(payment_problem)?;
    Ok(Json(
        authorize(&state, &p, next, settings.as_ref(), None, started).await?,
    ))
}
