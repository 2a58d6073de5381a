//! Where a payment is, and why one was declined.

use serde::{Deserialize, Serialize};

/// Where a payment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Opened by the point of sale; the checkout waits for a palm.
    AwaitingPalm,
    /// Recognised; the person must enter their step-up code at the checkout.
    StepUpRequired,
    /// The processor is being asked to authorise (a crash here is reconciled on start).
    Authorizing,
    /// The amount is held on the card until captured, voided or expired.
    Authorized,
    /// Captured (refunds may follow).
    Captured,
    /// Everything captured was refunded.
    Refunded,
    Voided,
    /// The authorisation lapsed before capture.
    Expired,
    /// The processor (or a safeguard) refused.
    Declined,
    /// Palm or step-up attempts spent, or the palm came too late.
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 10] = [
        PaymentStatus::AwaitingPalm,
        PaymentStatus::StepUpRequired,
        PaymentStatus::Authorizing,
        PaymentStatus::Authorized,
        PaymentStatus::Captured,
        PaymentStatus::Refunded,
        PaymentStatus::Voided,
        PaymentStatus::Expired,
        PaymentStatus::Declined,
        PaymentStatus::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::AwaitingPalm => "awaiting_palm",
            PaymentStatus::StepUpRequired => "step_up_required",
            PaymentStatus::Authorizing => "authorizing",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Failed => "failed",
        }
    }

    /// Whether money is held or may still move without a new payment: a person with such a
    /// payment cannot be erased yet (authorising, authorised, or waiting for a step-up).
    pub fn is_outstanding(&self) -> bool {
        matches!(
            self,
            PaymentStatus::StepUpRequired | PaymentStatus::Authorizing | PaymentStatus::Authorized
        )
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Refunded
                | PaymentStatus::Voided
                | PaymentStatus::Expired
                | PaymentStatus::Declined
                | PaymentStatus::Failed
        )
    }
}

impl std::str::FromStr for PaymentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentStatus::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown payment status {s:?}"))
    }
}

/// Why a payment was declined or failed: the processor's decline codes and the service's own
/// safeguards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The issuer declined without saying why.
    GenericDecline,
    InsufficientFunds,
    ExpiredCard,
    /// The processor failed while processing; the customer may try again.
    ProcessingError,
    /// The card needs extra verification and the person has no step-up code set.
    AuthenticationRequired,
    /// The processor could not be reached and never acted.
    ProcessorUnavailable,
    /// Above the person's limit for one payment.
    OverPaymentLimit,
    /// Above what the person allows per day at this store.
    OverDailyLimit,
    /// The person's limits are in another currency than this payment.
    CurrencyNotAllowed,
    /// The recognised person has no card linked at this store.
    NoCardLinked,
    /// Step-up attempts spent.
    StepUpFailed,
    /// Palm attempts spent without a confident match.
    PalmAttemptsExhausted,
    /// The palm came after the payment's waiting time.
    TimedOut,
}

impl DeclineReason {
    pub const ALL: [DeclineReason; 13] = [
        DeclineReason::GenericDecline,
        DeclineReason::InsufficientFunds,
        DeclineReason::ExpiredCard,
        DeclineReason::ProcessingError,
        DeclineReason::AuthenticationRequired,
        DeclineReason::ProcessorUnavailable,
        DeclineReason::OverPaymentLimit,
        DeclineReason::OverDailyLimit,
        DeclineReason::CurrencyNotAllowed,
        DeclineReason::NoCardLinked,
        DeclineReason::StepUpFailed,
        DeclineReason::PalmAttemptsExhausted,
        DeclineReason::TimedOut,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DeclineReason::GenericDecline => "generic_decline",
            DeclineReason::InsufficientFunds => "insufficient_funds",
            DeclineReason::ExpiredCard => "expired_card",
            DeclineReason::ProcessingError => "processing_error",
            DeclineReason::AuthenticationRequired => "authentication_required",
            DeclineReason::ProcessorUnavailable => "processor_unavailable",
            DeclineReason::OverPaymentLimit => "over_payment_limit",
            DeclineReason::OverDailyLimit => "over_daily_limit",
            DeclineReason::CurrencyNotAllowed => "currency_not_allowed",
            DeclineReason::NoCardLinked => "no_card_linked",
            DeclineReason::StepUpFailed => "step_up_failed",
            DeclineReason::PalmAttemptsExhausted => "palm_attempts_exhausted",
            DeclineReason::TimedOut => "timed_out",
        }
    }

    /// Whether the processor said it (as opposed to the service's own safeguards).
    pub fn from_processor(&self) -> bool {
        matches!(
            self,
            DeclineReason::GenericDecline
                | DeclineReason::InsufficientFunds
                | DeclineReason::ExpiredCard
                | DeclineReason::ProcessingError
                | DeclineReason::AuthenticationRequired
                | DeclineReason::ProcessorUnavailable
        )
    }
}

impl std::str::FromStr for DeclineReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeclineReason::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown decline reason {s:?}"))
    }
}
