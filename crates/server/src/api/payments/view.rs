//! What the payment routes answer: typed views of payments, refunds, receipts, settings and
//! the checkout's answer.

use openpalm_domain::money::{Money, MoneyView};
use openpalm_domain::payment::{
    Payment, PaymentSettings, PaymentStatus, StepUpMethod, MAX_PALM_ATTEMPTS, MAX_STEP_UP_ATTEMPTS,
};
use openpalm_store::Refund;
use serde::Serialize;

/// A payment as its business sees it (never the card token).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PaymentView {
    pub id: String,
    pub order_reference: String,
    pub device_id: String,
    pub status: PaymentStatus,
    pub amount: MoneyView,
    /// Held on the card now.
    pub authorized: MoneyView,
    pub captured: MoneyView,
    pub refunded: MoneyView,
    pub card_last4: Option<String>,
    /// Why it was declined or failed.
    pub decline_reason: Option<String>,
    /// The business's pseudonymous ID for the person who paid.
    pub customer: Option<String>,
    /// When the authorisation lapses (Unix seconds).
    pub expires_at: Option<i64>,
    /// A processor call is in progress (or being reconciled).
    pub processing: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn m(p: &Payment, minor: u64) -> MoneyView {
    MoneyView::from(&p.amount.with_minor(minor))
}

impl PaymentView {
    pub fn new(p: &Payment, customer: Option<String>) -> PaymentView {
        PaymentView {
            id: p.id.clone(),
            order_reference: p.order_reference.clone(),
            device_id: p.device_id.clone(),
            status: p.status,
            amount: MoneyView::from(&p.amount),
            authorized: m(p, p.authorized_minor),
            captured: m(p, p.captured_minor),
            refunded: m(p, p.refunded_minor),
            card_last4: p.card_last4.clone(),
            decline_reason: p.decline.map(|d| d.as_str().to_string()),
            customer,
            expires_at: p.expires_at,
            processing: p.pending.is_some(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// What the checkout shows after a palm or a step-up code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutOutcome {
    /// Authorised on the person's card: hand over the goods, then capture.
    Approved,
    /// Refused by the processor or a safeguard (see `reason`).
    Declined,
    /// The person enters their step-up code at the checkout.
    StepUpRequired,
    /// No enrolled palm matched confidently: try again (attempts are limited).
    NotRecognised,
    /// Two people matched about equally: nobody is charged; try again.
    Ambiguous,
}

impl CheckoutOutcome {
    /// As in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckoutOutcome::Approved => "approved",
            CheckoutOutcome::Declined => "declined",
            CheckoutOutcome::StepUpRequired => "step_up_required",
            CheckoutOutcome::NotRecognised => "not_recognised",
            CheckoutOutcome::Ambiguous => "ambiguous",
        }
    }
}

/// The step-up the checkout asks for.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct StepUpPrompt {
    pub method: StepUpMethod,
    pub attempts_left: u32,
}

/// The checkout's answer.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct CheckoutAnswer {
    pub outcome: CheckoutOutcome,
    /// For `declined`: the processor's decline code or the safeguard's reason.
    pub reason: Option<String>,
    /// For `approved`: the amount authorised and the card's last four digits.
    pub amount: Option<MoneyView>,
    pub card_last4: Option<String>,
    pub step_up: Option<StepUpPrompt>,
    pub palm_attempts_left: u32,
    pub payment: PaymentView,
    /// Time from request to answer in the service, milliseconds.
    pub decision_ms: f64,
}

impl CheckoutAnswer {
    /// The answer a payment's state gives (after a palm or a code).
    pub fn of(
        p: &Payment,
        customer: Option<String>,
        step_up: Option<StepUpMethod>,
        decision_ms: f64,
    ) -> CheckoutAnswer {
        let outcome = match p.status {
            PaymentStatus::Authorized | PaymentStatus::Captured => CheckoutOutcome::Approved,
            PaymentStatus::StepUpRequired => CheckoutOutcome::StepUpRequired,
            _ => CheckoutOutcome::Declined,
        };
        CheckoutAnswer {
            outcome,
            reason: if outcome == CheckoutOutcome::Declined {
                p.decline.map(|d| d.as_str().to_string())
            } else {
                None
            },
            amount: (outcome == CheckoutOutcome::Approved)
                .then(|| m(p, p.authorized_minor.max(p.captured_minor))),
            card_last4: (outcome == CheckoutOutcome::Approved)
                .then(|| p.card_last4.clone())
                .flatten(),
            step_up: match (outcome, step_up) {
                (CheckoutOutcome::StepUpRequired, Some(method)) => Some(StepUpPrompt {
                    method,
                    attempts_left: MAX_STEP_UP_ATTEMPTS.saturating_sub(p.step_up_attempts),
                }),
                _ => None,
            },
            palm_attempts_left: MAX_PALM_ATTEMPTS.saturating_sub(p.palm_attempts),
            payment: PaymentView::new(p, customer),
            decision_ms,
        }
    }

    /// A palm that matched nobody confidently.
    pub fn missed(outcome: CheckoutOutcome, p: &Payment, decision_ms: f64) -> CheckoutAnswer {
        let mut a = CheckoutAnswer::of(p, None, None, decision_ms);
        if p.status == PaymentStatus::AwaitingPalm {
            a.outcome = outcome;
            a.reason = None;
        }
        a
    }
}

/// A refund.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub amount: MoneyView,
    pub reason: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub created_at: i64,
}

impl RefundView {
    pub fn new(r: &Refund, currency: &Money) -> RefundView {
        RefundView {
            id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            amount: MoneyView::from(&currency.with_minor(r.amount_minor)),
            reason: r.reason.clone(),
            status: r.status.clone(),
            created_at: r.created_at,
        }
    }
}

/// The answer to a refund request.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RefundAnswer {
    pub refund: RefundView,
    pub payment: PaymentView,
}

/// A receipt: what the store shows or sends the customer.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Receipt {
    pub payment_id: String,
    pub store: String,
    pub site: String,
    pub order_reference: String,
    pub status: PaymentStatus,
    pub amount: MoneyView,
    pub captured: MoneyView,
    pub refunded: MoneyView,
    /// Captured less refunded: what the customer paid in the end.
    pub net: MoneyView,
    pub card_last4: Option<String>,
    /// The processor the card was charged through.
    pub processor: String,
    pub customer: Option<String>,
    pub refunds: Vec<RefundView>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A person's payment safeguards at this store (the code itself is never shown).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SettingsView {
    pub customer: String,
    pub currency: String,
    pub per_payment_limit_minor: Option<u64>,
    pub daily_limit_minor: Option<u64>,
    pub step_up_above_minor: Option<u64>,
    pub step_up_method: Option<StepUpMethod>,
    pub updated_at: i64,
}

impl SettingsView {
    pub fn new(s: &PaymentSettings, customer: &str) -> SettingsView {
        SettingsView {
            customer: customer.to_string(),
            currency: s.currency.clone(),
            per_payment_limit_minor: s.per_payment_limit_minor,
            daily_limit_minor: s.daily_limit_minor,
            step_up_above_minor: s.step_up_above_minor,
            step_up_method: s.step_up_method,
            updated_at: s.updated_at,
        }
    }
}

/// A page of a list.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PaymentPage {
    pub items: Vec<PaymentView>,
    pub next_cursor: Option<String>,
}
