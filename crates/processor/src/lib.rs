//! The payment processor port and the sandbox processor.
//!
//! [`Processor`] is what the service needs from a card processor, modelled on the
//! authorise-then-capture payment intents of the large processors' published APIs (a
//! payment intent with manual capture): authorise a card token for an amount (which may ask
//! for extra verification first), capture once in full or in part (the rest is released),
//! cancel (void) before capture, refund several times up to what was captured, and
//! authorisations that lapse after a few days. Every call that changes money takes an
//! idempotency key: the same key again returns the intent as it now is and changes nothing,
//! so a call that timed out after the processor acted is simply made again. Changes are also
//! pushed as callbacks (the processor's webhooks), which may arrive twice or out of order;
//! each carries the intent's `version`.
//!
//! [`sandbox::Sandbox`] implements it in-process for development, tests, benches and the
//! demo. It is a sandbox, named as such, never a processor that moves money.

pub mod sandbox;
pub mod settle;

use async_trait::async_trait;
use openpalm_domain::money::Money;
use openpalm_domain::payment::Intent;

/// Why a processor call failed. A failed call may still have acted ([`Timeout`]); the caller
/// repeats it with the same idempotency key, or looks the intent up.
///
/// [`Timeout`]: ProcessorError::Timeout
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// No answer in time: the processor may or may not have acted.
    #[error("the processor did not answer in time (it may have acted: retry with the same idempotency key)")]
    Timeout,
    /// Refused before acting (unreachable, overloaded).
    #[error("the processor is unavailable")]
    Unavailable,
    #[error("no such payment intent {0}")]
    NoSuchIntent(String),
    /// The idempotency key was used for a different request.
    #[error("idempotency key {0} was used with other parameters")]
    IdempotencyConflict(String),
    /// The intent cannot take this call in its state.
    #[error("the intent is {state}: {action} is not possible")]
    InvalidState { state: String, action: &'static str },
    #[error("at most {max} minor units can be captured")]
    AboveCapturable { max: u64 },
    #[error("at most {max} minor units can be refunded")]
    AboveRefundable { max: u64 },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Authorise a card for a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub idempotency_key: String,
    /// The processor's token for the card (never a card number).
    pub card_token: String,
    pub amount: Money,
    /// The service's payment ID, kept by the processor as metadata.
    pub reference: String,
    /// Whether the customer already passed a verification (step-up) for this payment.
    pub verified: bool,
}

/// A card processor with authorise-then-capture payment intents.
#[async_trait]
pub trait Processor: Send + Sync + std::fmt::Debug {
    /// A short name for logs and receipts (`sandbox`).
    fn name(&self) -> &'static str;

    /// Create and confirm an intent: `requires_capture` (authorised), `requires_action`
    /// (needs the customer's verification), or `declined` with the code.
    async fn authorize(&self, req: &AuthorizeRequest) -> Result<Intent, ProcessorError>;

    /// The customer passed the verification an intent in `requires_action` asked for.
    async fn complete_verification(
        &self,
        intent_id: &str,
        idempotency_key: &str,
    ) -> Result<Intent, ProcessorError>;

    /// Capture `minor` (at most what is authorised; once: the rest is released).
    async fn capture(
        &self,
        intent_id: &str,
        minor: u64,
        idempotency_key: &str,
    ) -> Result<Intent, ProcessorError>;

    /// Void an authorisation before capture.
    async fn cancel(&self, intent_id: &str, idempotency_key: &str) -> Result<Intent, ProcessorError>;

    /// Refund `minor` of what was captured (the key names this refund).
    async fn refund(
        &self,
        intent_id: &str,
        minor: u64,
        idempotency_key: &str,
    ) -> Result<Intent, ProcessorError>;

    /// The intent as it is now.
    async fn retrieve(&self, intent_id: &str) -> Result<Intent, ProcessorError>;

    /// The intent an [`authorize`](Processor::authorize) with this key created, if any: how a
    /// restart learns what a call cut short did.
    async fn find_by_key(&self, idempotency_key: &str) -> Result<Option<Intent>, ProcessorError>;

    /// Subscribe to the processor's callbacks: every change to an intent, possibly twice and
    /// out of order.
    fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<Intent>;
}
