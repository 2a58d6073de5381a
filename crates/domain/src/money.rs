//! Money: integer minor units of an ISO 4217 currency (codes and exponents from
//! `iso_currency`). No floating point anywhere: amounts are parsed from and written as
//! decimal text by the currency's exponent, and sums are checked.

use iso_currency::Currency;
use serde::{Deserialize, Serialize};

/// Why an amount or currency is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}: send an ISO 4217 code such as EUR, USD or JPY")]
    UnknownCurrency(String),
    #[error("{0} has no minor unit (a fund, metal or test code): it cannot be charged")]
    NotChargeable(&'static str),
    #[error("amounts in {code} are written with at most {exponent} decimals")]
    TooManyDecimals { code: &'static str, exponent: u16 },
    #[error("not an amount: {0:?}")]
    Malformed(String),
    #[error("amount too large")]
    Overflow,
    #[error("{left} and {right} are different currencies")]
    CurrencyMismatch { left: &'static str, right: &'static str },
    #[error("the result would be negative")]
    Negative,
}

/// A chargeable ISO 4217 currency: one with a minor unit (EUR: 2 decimals, JPY: 0, BHD: 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in the currency's minor unit (cents for EUR).
    pub minor: u64,
    currency: Currency,
    exponent: u16,
}

/// Parse a currency code (case-insensitive) into a chargeable currency and its exponent.
pub fn currency(code: &str) -> Result<(Currency, u16), MoneyError> {
    let c = Currency::from_code(&code.trim().to_ascii_uppercase())
        .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))?;
    let e = c.exponent().ok_or(MoneyError::NotChargeable(c.code()))?;
    Ok((c, e))
}

impl Money {
    /// `minor` units of the currency `code`.
    pub fn new(minor: u64, code: &str) -> Result<Money, MoneyError> {
        let (currency, exponent) = currency(code)?;
        Ok(Money {
            minor,
            currency,
            exponent,
        })
    }

    /// The same currency, another amount.
    pub fn with_minor(&self, minor: u64) -> Money {
        Money { minor, ..*self }
    }

    /// Parse decimal text ("12.5", "12.50", "1200" for JPY) by the currency's exponent.
    pub fn parse(text: &str, code: &str) -> Result<Money, MoneyError> {
        let (currency, exponent) = currency(code)?;
        let t = text.trim();
        let bad = || MoneyError::Malformed(text.to_string());
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if t.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        if frac.len() > usize::from(exponent) {
            return Err(MoneyError::TooManyDecimals {
                code: currency.code(),
                exponent,
            });
        }
        let scale = 10u64
            .checked_pow(u32::from(exponent))
            .ok_or(MoneyError::Overflow)?;
        let w: u64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let mut f: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        for _ in frac.len()..usize::from(exponent) {
            f *= 10;
        }
        let minor = w
            .checked_mul(scale)
            .and_then(|m| m.checked_add(f))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency,
            exponent,
        })
    }

    /// The ISO 4217 code.
    pub fn code(&self) -> &'static str {
        self.currency.code()
    }

    pub fn exponent(&self) -> u16 {
        self.exponent
    }

    fn same(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.code(),
                right: other.code(),
            });
        }
        Ok(())
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(self.with_minor(minor))
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Negative)?;
        Ok(self.with_minor(minor))
    }

    /// Decimal text by the exponent: `12.50` for 1250 EUR cents, `1200` for 1200 JPY.
    pub fn decimal(&self) -> String {
        let e = u32::from(self.exponent);
        if e == 0 {
            return self.minor.to_string();
        }
        let scale = 10u64.pow(e);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = e as usize
        )
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.decimal(), self.code())
    }
}

/// An amount as the API shows it: minor units, the currency code and the decimal text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MoneyView {
    pub minor: u64,
    pub currency: String,
    /// The same amount as decimal text by the currency's exponent (`12.50`).
    pub decimal: String,
}

impl From<&Money> for MoneyView {
    fn from(m: &Money) -> MoneyView {
        MoneyView {
            minor: m.minor,
            currency: m.code().to_string(),
            decimal: m.decimal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Money::new(1250, "eur").unwrap().decimal(), "12.50");
        assert_eq!(Money::new(1200, "JPY").unwrap().decimal(), "1200");
        assert_eq!(Money::new(1234, "BHD").unwrap().decimal(), "1.234");
        assert_eq!(Money::new(5, "USD").unwrap().to_string(), "0.05 USD");
    }

    #[test]
    fn codes_that_cannot_be_charged_are_refused() {
        assert!(matches!(
            Money::new(1, "XAU"),
            Err(MoneyError::NotChargeable("XAU"))
        ));
        assert!(matches!(
            Money::new(1, "EURO"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(Money::new(1, ""), Err(MoneyError::UnknownCurrency(_))));
    }

    #[test]
    fn parsing_is_exact_and_strict() {
        assert_eq!(Money::parse("12.5", "EUR").unwrap().minor, 1250);
        assert_eq!(Money::parse("0.01", "EUR").unwrap().minor, 1);
        assert_eq!(Money::parse("1200", "JPY").unwrap().minor, 1200);
        assert!(matches!(
            Money::parse("1.5", "JPY"),
            Err(MoneyError::TooManyDecimals { exponent: 0, .. })
        ));
        assert!(matches!(
            Money::parse("1.005", "EUR"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        for bad in ["", "-1", "1.", ".5", "1e3", "1,00", " 1 2"] {
            assert!(Money::parse(bad, "EUR").is_err(), "{bad:?}");
        }
        assert!(matches!(
            Money::parse("184467440737095516.16", "EUR"),
            Err(MoneyError::Overflow)
        ));
    }

    #[test]
    fn sums_are_checked() {
        let a = Money::new(500, "EUR").unwrap();
        let b = Money::new(700, "EUR").unwrap();
        assert_eq!(a.checked_add(&b).unwrap().minor, 1200);
        assert_eq!(a.checked_sub(&b), Err(MoneyError::Negative));
        let y = Money::new(1, "JPY").unwrap();
        assert!(matches!(
            a.checked_add(&y),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(a.with_minor(u64::MAX).checked_add(&a), Err(MoneyError::Overflow));
    }

    proptest! {
        #[test]
        fn decimal_text_round_trips(minor in any::<u64>(), code in prop::sample::select(vec!["EUR", "JPY", "BHD", "USD", "CLF"])) {
            let m = Money::new(minor, code).unwrap();
            prop_assert_eq!(Money::parse(&m.decimal(), code).unwrap(), m);
        }
    }
}
