//! The processor's side: the call a payment committed to, and the intent the processor
//! reports.

use super::DeclineReason;
use serde::{Deserialize, Serialize};

/// A processor call the service committed to before making it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PendingOp {
    /// Authorise the card (`verified`: the person passed the step-up).
    Authorize {
        verified: bool,
    },
    Capture {
        minor: u64,
    },
    Void,
    Refund {
        refund_id: String,
        minor: u64,
    },
}

impl PendingOp {
    /// The processor idempotency key for this call on `payment_id`: the same on every retry
    /// and after a restart, different for each distinct operation.
    pub fn idempotency_key(&self, payment_id: &str) -> String {
        match self {
            PendingOp::Authorize { verified } => format!("{payment_id}:authorize:{}", u8::from(*verified)),
            PendingOp::Capture { .. } => format!("{payment_id}:capture"),
            PendingOp::Void => format!("{payment_id}:void"),
            PendingOp::Refund { refund_id, .. } => format!("{payment_id}:refund:{refund_id}"),
        }
    }
}

/// The processor's state of a payment intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentState {
    /// The card needs extra verification before it can be authorised.
    RequiresAction,
    /// Authorised; waiting for a capture.
    RequiresCapture,
    /// Captured (`captured_minor`); refunds may follow.
    Succeeded,
    /// Voided before capture.
    Canceled,
    /// The authorisation lapsed.
    Expired,
    /// Refused, with the decline code.
    Declined(DeclineReason),
}

/// What the processor says about one payment intent: the answer to a call, or a callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Intent {
    /// The processor's ID for the intent.
    pub id: String,
    pub state: IntentState,
    /// Increases with every change the processor makes to the intent.
    pub version: u64,
    pub currency: String,
    pub amount_minor: u64,
    /// Held on the card (0 unless `requires_capture`).
    pub authorized_minor: u64,
    pub captured_minor: u64,
    pub refunded_minor: u64,
    /// The card's last four digits, as the processor gives them.
    pub card_last4: Option<String>,
    /// When the authorisation lapses (Unix seconds).
    pub expires_at: Option<i64>,
    /// The idempotency keys of the refunds the processor made.
    pub refund_keys: Vec<String>,
}
