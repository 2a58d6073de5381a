//! The person's safeguards: limits per payment and per day, and the step-up above an amount.

use super::DeclineReason;
use crate::money::Money;
use serde::{Deserialize, Serialize};

/// How the person proves it is them when a payment needs a step-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepUpMethod {
    /// A PIN the person chose (4 to 8 digits).
    Pin,
    /// The last four digits of their phone number.
    PhoneLast4,
}

impl StepUpMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepUpMethod::Pin => "pin",
            StepUpMethod::PhoneLast4 => "phone_last4",
        }
    }

    /// Check the shape of a code for this method.
    pub fn valid_code(&self, code: &str) -> bool {
        let digits = code.bytes().all(|b| b.is_ascii_digit());
        match self {
            StepUpMethod::Pin => digits && (4..=8).contains(&code.len()),
            StepUpMethod::PhoneLast4 => digits && code.len() == 4,
        }
    }
}

impl std::str::FromStr for StepUpMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pin" => Ok(StepUpMethod::Pin),
            "phone_last4" => Ok(StepUpMethod::PhoneLast4),
            other => Err(format!(
                "unknown step-up method {other:?}: expected pin or phone_last4"
            )),
        }
    }
}

/// The safeguards a person set for paying by palm at one store. Amounts are in `currency`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentSettings {
    pub person_id: String,
    pub business_id: String,
    pub currency: String,
    /// The most one payment may be.
    pub per_payment_limit_minor: Option<u64>,
    /// The most authorised and captured per UTC day at this store.
    pub daily_limit_minor: Option<u64>,
    /// Payments above this need the step-up code.
    pub step_up_above_minor: Option<u64>,
    pub step_up_method: Option<StepUpMethod>,
    /// Keyed hash of the step-up code ([`crate::keys::ServiceKeys::step_up_hash`]).
    pub step_up_hash: Option<String>,
    pub updated_at: i64,
}

/// What the safeguards say about a payment before the processor is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    Allow,
    StepUp(StepUpMethod),
    Refuse(DeclineReason),
}

/// Check `amount` against the person's settings, with `spent_today_minor` already
/// authorised or captured at this store today (in the settings' currency).
pub fn guard(settings: Option<&PaymentSettings>, amount: &Money, spent_today_minor: u64) -> Guard {
    let Some(s) = settings else {
        return Guard::Allow;
    };
    let limited = s.per_payment_limit_minor.is_some()
        || s.daily_limit_minor.is_some()
        || s.step_up_above_minor.is_some();
    if limited && s.currency != amount.code() {
        return Guard::Refuse(DeclineReason::CurrencyNotAllowed);
    }
    if s.per_payment_limit_minor.is_some_and(|l| amount.minor > l) {
        return Guard::Refuse(DeclineReason::OverPaymentLimit);
    }
    if s.daily_limit_minor
        .is_some_and(|l| spent_today_minor.saturating_add(amount.minor) > l)
    {
        return Guard::Refuse(DeclineReason::OverDailyLimit);
    }
    match (s.step_up_above_minor, s.step_up_method) {
        (Some(above), Some(m)) if amount.minor > above => Guard::StepUp(m),
        _ => Guard::Allow,
    }
}

/// Start of the UTC day holding `t` (Unix seconds).
pub fn utc_day_start(t: i64) -> i64 {
    t - t.rem_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: u64) -> Money {
        Money::new(minor, "EUR").unwrap()
    }

    #[test]
    fn safeguards_refuse_or_ask_for_the_code() {
        let s = PaymentSettings {
            person_id: "per_1".into(),
            business_id: "biz_1".into(),
            currency: "EUR".into(),
            per_payment_limit_minor: Some(10_000),
            daily_limit_minor: Some(15_000),
            step_up_above_minor: Some(5_000),
            step_up_method: Some(StepUpMethod::Pin),
            step_up_hash: Some("h".into()),
            updated_at: 0,
        };
        assert_eq!(guard(None, &eur(1_000_000), 0), Guard::Allow);
        assert_eq!(guard(Some(&s), &eur(4_000), 0), Guard::Allow);
        assert_eq!(guard(Some(&s), &eur(6_000), 0), Guard::StepUp(StepUpMethod::Pin));
        assert_eq!(
            guard(Some(&s), &eur(10_001), 0),
            Guard::Refuse(DeclineReason::OverPaymentLimit)
        );
        assert_eq!(
            guard(Some(&s), &eur(4_000), 12_000),
            Guard::Refuse(DeclineReason::OverDailyLimit)
        );
        assert_eq!(
            guard(Some(&s), &Money::new(100, "USD").unwrap(), 0),
            Guard::Refuse(DeclineReason::CurrencyNotAllowed)
        );
        assert_eq!(utc_day_start(86_400 * 3 + 5), 86_400 * 3);
    }
}
