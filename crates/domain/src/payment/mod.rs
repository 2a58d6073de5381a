//! Pay by palm: the payment a point of sale opens for a checkout device, its state machine,
//! the person's safeguards and the view of the processor's payment intent it follows.
//!
//! The processor's model is authorise-then-capture (a payment intent with manual capture):
//! an authorisation holds an amount on the card until it is captured (once, in full or in
//! part: the rest is released), voided, or expires; refunds are taken from what was captured,
//! several times, never above it.
//!
//! ```text
//! awaiting_palm --palm--> authorizing --processor--> authorized --capture--> captured --refunds--> refunded
//!      |    \                  |   \                     |   \                     (in full)
//!      |     step_up_required -+    declined              |    voided | expired
//!      +-- voided | failed (palm or step-up attempts spent)
//! ```
//!
//! Every processor call is preceded by a committed [`PendingOp`] and made with an idempotency
//! key derived from the payment, so a crash between the call and its commit is repaired by
//! asking the processor again ([`Payment::merge`]), never by calling twice. What the
//! processor says (an [`Intent`], by call answer or by callback, possibly duplicated or out of
//! order) is merged by its version: an older or equal version changes nothing.

use crate::money::Money;

mod intent;
mod safeguard;
mod status;

pub use intent::{Intent, IntentState, PendingOp};
pub use safeguard::{guard, utc_day_start, Guard, PaymentSettings, StepUpMethod};
pub use status::{DeclineReason, PaymentStatus};

/// Palm tries per payment before it fails (not recognised or ambiguous).
pub const MAX_PALM_ATTEMPTS: u32 = 3;
/// Step-up code tries per payment before it fails.
pub const MAX_STEP_UP_ATTEMPTS: u32 = 3;
/// How long a payment waits for a palm before it can no longer be paid (seconds).
pub const AWAIT_PALM_SECS: i64 = 15 * 60;

/// Why a payment command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment is {}, not {expected}", .actual.as_str())]
    WrongState {
        actual: PaymentStatus,
        expected: &'static str,
    },
    #[error("another operation on this payment is in progress")]
    Busy,
    #[error("the authorisation expired")]
    Expired,
    #[error("the amount must be more than zero")]
    ZeroAmount,
    #[error("at most {max} minor units can be captured (what was authorised)")]
    AboveAuthorized { max: u64 },
    #[error("at most {max} minor units can still be refunded")]
    AboveRefundable { max: u64 },
    #[error("the processor's answer breaks the payment's rules: {0}")]
    Inconsistent(String),
}

/// A payment opened by a point of sale for one checkout device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub business_id: String,
    /// The checkout device the palm must come from.
    pub device_id: String,
    /// The point of sale's own reference (unique per business).
    pub order_reference: String,
    pub amount: Money,
    pub status: PaymentStatus,
    /// The recognised person (once a palm matched).
    pub person_id: Option<String>,
    /// The processor token charged (the person's linked card at this store).
    pub card_token: Option<String>,
    pub card_last4: Option<String>,
    pub decline: Option<DeclineReason>,
    /// The processor's intent and the version of it last merged.
    pub intent_id: Option<String>,
    pub intent_version: u64,
    pub authorized_minor: u64,
    pub captured_minor: u64,
    pub refunded_minor: u64,
    pub expires_at: Option<i64>,
    pub pending: Option<PendingOp>,
    pub palm_attempts: u32,
    pub step_up_attempts: u32,
    /// Bumped by every change; the store writes by compare-and-set on it.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Payment {
    /// A new payment waiting for a palm.
    pub fn open(
        id: String,
        business_id: String,
        device_id: String,
        order_reference: String,
        amount: Money,
        now: i64,
    ) -> Payment {
        Payment {
            id,
            business_id,
            device_id,
            order_reference,
            amount,
            status: PaymentStatus::AwaitingPalm,
            person_id: None,
            card_token: None,
            card_last4: None,
            decline: None,
            intent_id: None,
            intent_version: 0,
            authorized_minor: 0,
            captured_minor: 0,
            refunded_minor: 0,
            expires_at: None,
            pending: None,
            palm_attempts: 0,
            step_up_attempts: 0,
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    fn expect(&self, ok: &[PaymentStatus], expected: &'static str) -> Result<(), PaymentError> {
        if self.pending.is_some() {
            return Err(PaymentError::Busy);
        }
        if !ok.contains(&self.status) {
            return Err(PaymentError::WrongState {
                actual: self.status,
                expected,
            });
        }
        Ok(())
    }

    fn touch(mut self, now: i64) -> Payment {
        self.version += 1;
        self.updated_at = now;
        self
    }

    /// What is still refundable.
    pub fn refundable_minor(&self) -> u64 {
        self.captured_minor.saturating_sub(self.refunded_minor)
    }

    /// Whether the payment can take a palm at `now`.
    pub fn palm_window_open(&self, now: i64) -> bool {
        now < self.created_at + AWAIT_PALM_SECS
    }

    /// A palm that found nobody confidently: one attempt spent; the last one fails the
    /// payment.
    pub fn palm_missed(&self, now: i64) -> Result<Payment, PaymentError> {
        self.expect(&[PaymentStatus::AwaitingPalm], "awaiting_palm")?;
        let mut p = self.clone();
        p.palm_attempts += 1;
        if p.palm_attempts >= MAX_PALM_ATTEMPTS {
            p.status = PaymentStatus::Failed;
            p.decline = Some(DeclineReason::PalmAttemptsExhausted);
        }
        Ok(p.touch(now))
    }

    /// The palm matched `person` whose card at this store is `card_token`.
    pub fn recognised(
        &self,
        person: &str,
        card_token: Option<&str>,
        now: i64,
    ) -> Result<Payment, PaymentError> {
        self.expect(&[PaymentStatus::AwaitingPalm], "awaiting_palm")?;
        let mut p = self.clone();
        p.palm_attempts += 1;
        p.person_id = Some(person.to_string());
        p.card_token = card_token.map(str::to_string);
        Ok(p.touch(now))
    }

    /// Refuse without asking the processor (a safeguard, no card, too late).
    pub fn refuse(&self, reason: DeclineReason, failed: bool, now: i64) -> Result<Payment, PaymentError> {
        self.expect(
            &[PaymentStatus::AwaitingPalm, PaymentStatus::StepUpRequired],
            "awaiting_palm or step_up_required",
        )?;
        let mut p = self.clone();
        p.status = if failed {
            PaymentStatus::Failed
        } else {
            PaymentStatus::Declined
        };
        p.decline = Some(reason);
        Ok(p.touch(now))
    }

    /// Ask the person for their step-up code before authorising.
    pub fn require_step_up(&self, now: i64) -> Result<Payment, PaymentError> {
        if self.pending == Some(PendingOp::Authorize { verified: false }) {
            // The processor asked for verification.
            let mut p = self.clone();
            p.pending = None;
            p.status = PaymentStatus::StepUpRequired;
            return Ok(p.touch(now));
        }
        self.expect(&[PaymentStatus::AwaitingPalm], "awaiting_palm")?;
        let mut p = self.clone();
        p.status = PaymentStatus::StepUpRequired;
        Ok(p.touch(now))
    }

    /// A wrong step-up code: one attempt spent; the last one fails the payment.
    pub fn step_up_missed(&self, now: i64) -> Result<Payment, PaymentError> {
        self.expect(&[PaymentStatus::StepUpRequired], "step_up_required")?;
        let mut p = self.clone();
        p.step_up_attempts += 1;
        if p.step_up_attempts >= MAX_STEP_UP_ATTEMPTS {
            p.status = PaymentStatus::Failed;
            p.decline = Some(DeclineReason::StepUpFailed);
        }
        Ok(p.touch(now))
    }

    /// Commit to asking the processor for an authorisation (`verified`: after a step-up).
    pub fn start_authorize(&self, verified: bool, now: i64) -> Result<Payment, PaymentError> {
        let ok: &[PaymentStatus] = if verified {
            &[PaymentStatus::StepUpRequired]
        } else {
            &[PaymentStatus::AwaitingPalm]
        };
        self.expect(
            ok,
            if verified {
                "step_up_required"
            } else {
                "awaiting_palm"
            },
        )?;
        let mut p = self.clone();
        p.status = PaymentStatus::Authorizing;
        p.pending = Some(PendingOp::Authorize { verified });
        Ok(p.touch(now))
    }

    /// The processor never authorised the pending authorisation (unreachable:
    /// `processor_unavailable`; refused the request: `processing_error`): the payment is
    /// declined, nothing is held.
    pub fn authorization_failed(&self, reason: DeclineReason, now: i64) -> Result<Payment, PaymentError> {
        if !matches!(self.pending, Some(PendingOp::Authorize { .. })) {
            return Err(PaymentError::WrongState {
                actual: self.status,
                expected: "authorizing",
            });
        }
        let mut p = self.clone();
        p.pending = None;
        p.status = PaymentStatus::Declined;
        p.decline = Some(reason);
        Ok(p.touch(now))
    }

    /// Commit to capturing `minor` (at most what was authorised; the rest is released).
    pub fn start_capture(&self, minor: u64, now: i64) -> Result<Payment, PaymentError> {
        self.expect(&[PaymentStatus::Authorized], "authorized")?;
        if self.expires_at.is_some_and(|e| now >= e) {
            return Err(PaymentError::Expired);
        }
        if minor == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        if minor > self.authorized_minor {
            return Err(PaymentError::AboveAuthorized {
                max: self.authorized_minor,
            });
        }
        let mut p = self.clone();
        p.pending = Some(PendingOp::Capture { minor });
        Ok(p.touch(now))
    }

    /// Void: before authorisation nothing is asked of the processor (`Ok((p, false))`); an
    /// authorisation is released by the processor (`Ok((p, true))`, pending).
    pub fn start_void(&self, now: i64) -> Result<(Payment, bool), PaymentError> {
        self.expect(
            &[
                PaymentStatus::AwaitingPalm,
                PaymentStatus::StepUpRequired,
                PaymentStatus::Authorized,
            ],
            "awaiting_palm, step_up_required or authorized",
        )?;
        let mut p = self.clone();
        if p.status == PaymentStatus::Authorized {
            p.pending = Some(PendingOp::Void);
            Ok((p.touch(now), true))
        } else {
            p.status = PaymentStatus::Voided;
            Ok((p.touch(now), false))
        }
    }

    /// Commit to refunding `minor` of what was captured.
    pub fn start_refund(&self, refund_id: &str, minor: u64, now: i64) -> Result<Payment, PaymentError> {
        self.expect(&[PaymentStatus::Captured], "captured")?;
        if minor == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        if minor > self.refundable_minor() {
            return Err(PaymentError::AboveRefundable {
                max: self.refundable_minor(),
            });
        }
        let mut p = self.clone();
        p.pending = Some(PendingOp::Refund {
            refund_id: refund_id.to_string(),
            minor,
        });
        Ok(p.touch(now))
    }

    /// The authorisation lapsed (the service's clock passed `expires_at`).
    pub fn expire(&self, now: i64) -> Result<Payment, PaymentError> {
        self.expect(&[PaymentStatus::Authorized], "authorized")?;
        if self.expires_at.is_none_or(|e| now < e) {
            return Err(PaymentError::WrongState {
                actual: self.status,
                expected: "an authorisation past its expiry",
            });
        }
        let mut p = self.clone();
        p.status = PaymentStatus::Expired;
        p.authorized_minor = 0;
        Ok(p.touch(now))
    }

    /// Merge what the processor says about the intent. A version already merged changes
    /// nothing (duplicate or late callback); a newer one sets the amounts and the status, and
    /// clears the pending call it answers. `Ok(None)`: nothing to write.
    pub fn merge(&self, intent: &Intent, now: i64) -> Result<Option<Payment>, PaymentError> {
        if let Some(id) = &self.intent_id {
            if id != &intent.id {
                return Err(PaymentError::Inconsistent(format!(
                    "intent {} is not this payment's ({id})",
                    intent.id
                )));
            }
        }
        if intent.version <= self.intent_version && self.intent_id.is_some() {
            return Ok(None);
        }
        if intent.captured_minor > intent.amount_minor || intent.refunded_minor > intent.captured_minor {
            return Err(PaymentError::Inconsistent(format!(
                "captured {} of {} with {} refunded",
                intent.captured_minor, intent.amount_minor, intent.refunded_minor
            )));
        }
        if intent.currency != self.amount.code() || intent.amount_minor != self.amount.minor {
            return Err(PaymentError::Inconsistent(format!(
                "intent for {} {}, payment for {}",
                intent.amount_minor, intent.currency, self.amount
            )));
        }
        let mut p = self.clone();
        p.intent_id = Some(intent.id.clone());
        p.intent_version = intent.version;
        p.authorized_minor = intent.authorized_minor;
        p.captured_minor = intent.captured_minor;
        p.refunded_minor = intent.refunded_minor;
        if intent.card_last4.is_some() {
            p.card_last4 = intent.card_last4.clone();
        }
        if intent.expires_at.is_some() {
            p.expires_at = intent.expires_at;
        }
        // A payment the service already closed (declined, failed, voided, expired) stays
        // closed when the processor reports the intent cancelled or lapsed afterwards.
        let closing = matches!(
            intent.state,
            IntentState::Canceled | IntentState::Expired | IntentState::Declined(_)
        );
        if self.status.is_final() && closing {
            p.authorized_minor = 0;
            return Ok(Some(p.touch(now)));
        }
        p.status = match &intent.state {
            IntentState::RequiresAction => PaymentStatus::StepUpRequired,
            IntentState::RequiresCapture => PaymentStatus::Authorized,
            IntentState::Succeeded if p.captured_minor > 0 && p.refunded_minor == p.captured_minor => {
                PaymentStatus::Refunded
            }
            IntentState::Succeeded => PaymentStatus::Captured,
            IntentState::Canceled => PaymentStatus::Voided,
            IntentState::Expired => PaymentStatus::Expired,
            IntentState::Declined(r) => {
                p.decline = Some(*r);
                PaymentStatus::Declined
            }
        };
        // The pending call is answered once the intent shows its effect.
        let answered = match &p.pending {
            None => false,
            Some(PendingOp::Authorize { .. }) => p.status != PaymentStatus::Authorizing,
            Some(PendingOp::Capture { .. }) => p.status != PaymentStatus::Authorized,
            Some(PendingOp::Void) => p.status != PaymentStatus::Authorized,
            Some(PendingOp::Refund { refund_id, .. }) => {
                let key = PendingOp::Refund {
                    refund_id: refund_id.clone(),
                    minor: 0,
                }
                .idempotency_key(&p.id);
                intent.refund_keys.contains(&key) || p.status != PaymentStatus::Captured
            }
        };
        if answered {
            p.pending = None;
        }
        Ok(Some(p.touch(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: u64) -> Money {
        Money::new(minor, "EUR").unwrap()
    }

    fn open() -> Payment {
        Payment::open(
            "pay_1".into(),
            "biz_1".into(),
            "dev_1".into(),
            "order-1".into(),
            eur(5000),
            100,
        )
    }

    fn intent(state: IntentState, version: u64) -> Intent {
        Intent {
            id: "pi_1".into(),
            state,
            version,
            currency: "EUR".into(),
            amount_minor: 5000,
            authorized_minor: 5000,
            captured_minor: 0,
            refunded_minor: 0,
            card_last4: Some("4242".into()),
            expires_at: Some(100 + 7 * 86_400),
            refund_keys: vec![],
        }
    }

    fn authorized() -> Payment {
        let p = open().recognised("per_1", Some("tok"), 101).unwrap();
        let p = p.start_authorize(false, 101).unwrap();
        p.merge(&intent(IntentState::RequiresCapture, 1), 102)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn an_authorisation_is_captured_once_within_what_was_held() {
        let p = authorized();
        assert_eq!(p.status, PaymentStatus::Authorized);
        assert_eq!(p.pending, None);
        assert_eq!(p.card_last4.as_deref(), Some("4242"));
        assert_eq!(
            p.start_capture(5001, 103),
            Err(PaymentError::AboveAuthorized { max: 5000 })
        );
        assert_eq!(p.start_capture(0, 103), Err(PaymentError::ZeroAmount));
        let c = p.start_capture(3000, 103).unwrap();
        assert_eq!(c.start_capture(3000, 103), Err(PaymentError::Busy));
        let mut i = intent(IntentState::Succeeded, 2);
        i.authorized_minor = 0;
        i.captured_minor = 3000;
        let c = c.merge(&i, 104).unwrap().unwrap();
        assert_eq!(
            (c.status, c.captured_minor, c.pending.clone()),
            (PaymentStatus::Captured, 3000, None)
        );
        assert!(matches!(
            c.start_capture(1, 105),
            Err(PaymentError::WrongState { .. })
        ));
        // A duplicate or older callback changes nothing.
        assert_eq!(c.merge(&i, 106).unwrap(), None);
        assert_eq!(
            c.merge(&intent(IntentState::RequiresCapture, 1), 106).unwrap(),
            None
        );
    }

    #[test]
    fn refunds_never_pass_what_was_captured() {
        let mut i = intent(IntentState::Succeeded, 2);
        i.captured_minor = 3000;
        let c = authorized()
            .start_capture(3000, 103)
            .unwrap()
            .merge(&i, 104)
            .unwrap()
            .unwrap();
        assert_eq!(
            c.start_refund("re_1", 3001, 105),
            Err(PaymentError::AboveRefundable { max: 3000 })
        );
        let r = c.start_refund("re_1", 1000, 105).unwrap();
        let mut i3 = i.clone();
        i3.version = 3;
        i3.refunded_minor = 1000;
        i3.refund_keys = vec!["pay_1:refund:re_1".into()];
        let r = r.merge(&i3, 106).unwrap().unwrap();
        assert_eq!(
            (r.status, r.refundable_minor(), r.pending.clone()),
            (PaymentStatus::Captured, 2000, None)
        );
        let mut i4 = i3.clone();
        i4.version = 4;
        i4.refunded_minor = 3000;
        i4.refund_keys.push("pay_1:refund:re_2".into());
        let r = r
            .start_refund("re_2", 2000, 107)
            .unwrap()
            .merge(&i4, 108)
            .unwrap()
            .unwrap();
        assert_eq!(r.status, PaymentStatus::Refunded);
        assert!(r.start_refund("re_3", 1, 109).is_err());
    }

    #[test]
    fn an_inconsistent_answer_is_refused() {
        let p = authorized();
        let mut bad = intent(IntentState::Succeeded, 5);
        bad.captured_minor = 6000;
        assert!(matches!(p.merge(&bad, 1), Err(PaymentError::Inconsistent(_))));
        let mut other = intent(IntentState::Succeeded, 5);
        other.id = "pi_2".into();
        assert!(matches!(p.merge(&other, 1), Err(PaymentError::Inconsistent(_))));
    }

    #[test]
    fn expiry_follows_the_clock() {
        let p = authorized();
        let at = p.expires_at.unwrap();
        assert!(p.expire(at - 1).is_err());
        assert_eq!(p.start_capture(10, at), Err(PaymentError::Expired));
        let e = p.expire(at).unwrap();
        assert_eq!((e.status, e.authorized_minor), (PaymentStatus::Expired, 0));
    }

    #[test]
    fn attempts_are_limited() {
        let mut p = open();
        for _ in 0..MAX_PALM_ATTEMPTS {
            p = p.palm_missed(1).unwrap();
        }
        assert_eq!(
            (p.status, p.decline),
            (PaymentStatus::Failed, Some(DeclineReason::PalmAttemptsExhausted))
        );
        let mut s = open()
            .recognised("per_1", Some("tok"), 1)
            .unwrap()
            .require_step_up(1)
            .unwrap();
        for _ in 0..MAX_STEP_UP_ATTEMPTS {
            s = s.step_up_missed(1).unwrap();
        }
        assert_eq!(
            (s.status, s.decline),
            (PaymentStatus::Failed, Some(DeclineReason::StepUpFailed))
        );
    }

    #[test]
    fn idempotency_keys_differ_per_operation_and_repeat_per_retry() {
        let a = PendingOp::Authorize { verified: false }.idempotency_key("pay_1");
        assert_eq!(
            a,
            PendingOp::Authorize { verified: false }.idempotency_key("pay_1")
        );
        assert_ne!(
            a,
            PendingOp::Authorize { verified: true }.idempotency_key("pay_1")
        );
        let r1 = PendingOp::Refund {
            refund_id: "re_1".into(),
            minor: 5,
        }
        .idempotency_key("pay_1");
        let r2 = PendingOp::Refund {
            refund_id: "re_2".into(),
            minor: 5,
        }
        .idempotency_key("pay_1");
        assert_ne!(r1, r2);
    }
}
