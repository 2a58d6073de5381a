//! Making the processor call a payment committed to ([`Payment::pending`]), and turning its
//! answer into the payment to commit next.
//!
//! The service commits the pending operation first, then calls [`settle`], then commits what
//! it returns. After a crash anywhere in between, a payment still pending is given to
//! [`settle`] again: the call is repeated with the same idempotency key (the processor does
//! nothing twice), or the intent is looked up, so no sequence of crashes and retries charges
//! twice.

use crate::{AuthorizeRequest, Processor, ProcessorError};
use openpalm_domain::payment::{DeclineReason, Intent, Payment, PaymentError, PaymentStatus, PendingOp};

/// Calls repeated after a timeout before the intent is looked up instead.
pub const TIMEOUT_RETRIES: usize = 2;

/// What [`settle`] found.
#[derive(Debug)]
pub struct Settled {
    /// The payment to commit (its pending operation cleared when answered).
    pub payment: Payment,
    /// The processor's refusal of the call, if it refused (the payment is unchanged by it).
    pub refused: Option<ProcessorError>,
    /// The processor could not be reached: the operation stays pending for a later try.
    pub unreachable: bool,
}

async fn call(processor: &dyn Processor, p: &Payment, op: &PendingOp) -> Result<Intent, ProcessorError> {
    let key = op.idempotency_key(&p.id);
    match (op, &p.intent_id) {
        (PendingOp::Authorize { verified: true }, Some(id)) => {
            processor.complete_verification(id, &key).await
        }
        (PendingOp::Authorize { verified }, None) => {
            let token = p
                .card_token
                .clone()
                .ok_or_else(|| ProcessorError::InvalidRequest("no card token on the payment".into()))?;
            processor
                .authorize(&AuthorizeRequest {
                    idempotency_key: key,
                    card_token: token,
                    amount: p.amount,
                    reference: p.id.clone(),
                    verified: *verified,
                })
                .await
        }
        (PendingOp::Authorize { verified: false }, Some(id)) => processor.retrieve(id).await,
        (_, None) => Err(ProcessorError::InvalidRequest("no intent to act on".into())),
        (PendingOp::Capture { minor }, Some(id)) => processor.capture(id, *minor, &key).await,
        (PendingOp::Void, Some(id)) => processor.cancel(id, &key).await,
        (PendingOp::Refund { minor, .. }, Some(id)) => processor.refund(id, *minor, &key).await,
    }
}

fn merged(p: &Payment, intent: &Intent, now: i64) -> Result<Payment, PaymentError> {
    Ok(p.merge(intent, now)?.unwrap_or_else(|| p.clone()))
}

fn cleared(mut p: Payment, now: i64) -> Payment {
    if p.pending.is_some() {
        p.pending = None;
        p.version += 1;
        p.updated_at = now;
    }
    p
}

/// Make `p`'s pending call (retrying timeouts with the same key) and merge the answer.
pub async fn settle(processor: &dyn Processor, p: &Payment, now: i64) -> Result<Settled, PaymentError> {
    let Some(op) = p.pending.clone() else {
        return Ok(Settled {
            payment: p.clone(),
            refused: None,
            unreachable: false,
        });
    };
    let mut last = Err(ProcessorError::Timeout);
    for _ in 0..=TIMEOUT_RETRIES {
        last = call(processor, p, &op).await;
        if !matches!(
            last,
            Err(ProcessorError::Timeout) | Err(ProcessorError::Unavailable)
        ) {
            break;
        }
    }
    match last {
        Ok(intent) => {
            let payment = merged(p, &intent, now)?;
            // A repeated call the processor had already answered: its effect is merged.
            let payment = if payment.pending.is_some() {
                cleared(payment, now)
            } else {
                payment
            };
            Ok(Settled {
                payment,
                refused: None,
                unreachable: false,
            })
        }
        Err(ProcessorError::Timeout) | Err(ProcessorError::Unavailable) => {
            // Did the authorisation happen? The processor knows it by its key.
            if let PendingOp::Authorize { .. } = op {
                if p.intent_id.is_none() {
                    return match processor.find_by_key(&op.idempotency_key(&p.id)).await {
                        Ok(Some(intent)) => Ok(Settled {
                            payment: cleared(merged(p, &intent, now)?, now),
                            refused: None,
                            unreachable: false,
                        }),
                        // Never acted: nothing is held, the payment is declined.
                        Ok(None) => Ok(Settled {
                            payment: p.authorization_failed(DeclineReason::ProcessorUnavailable, now)?,
                            refused: None,
                            unreachable: false,
                        }),
                        Err(_) => Ok(Settled {
                            payment: p.clone(),
                            refused: None,
                            unreachable: true,
                        }),
                    };
                }
            }
            Ok(Settled {
                payment: p.clone(),
                refused: None,
                unreachable: true,
            })
        }
        Err(e) => {
            // Refused: the intent as it is now (an authorisation may have lapsed meanwhile).
            let payment = match &p.intent_id {
                Some(id) => match processor.retrieve(id).await {
                    Ok(intent) => merged(p, &intent, now)?,
                    Err(_) => p.clone(),
                },
                None => p.clone(),
            };
            let payment = if payment.status == PaymentStatus::Authorizing {
                payment.authorization_failed(DeclineReason::ProcessingError, now)?
            } else {
                cleared(payment, now)
            };
            Ok(Settled {
                payment,
                refused: Some(e),
                unreachable: false,
            })
        }
    }
}
