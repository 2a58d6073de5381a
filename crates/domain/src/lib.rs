//! OpenPalm's service domain: the rules, independent of HTTP and SQL.
//!
//! - [`ids`]: identifiers of businesses, people, devices and keys, and the kinds and purposes
//!   they come in.
//! - [`audit`]: the hash-chained audit log of every administrative and data-access action.
//! - [`apikey`]: API keys (`op_test_...` / `op_live_...`): generation, hashing, scopes.
//! - [`protocol`]: the sealed capture a reader sends: HPKE (RFC 9180) to the service key,
//!   signed with the device's Ed25519 key, with nonce and timestamp; canonical bytes and the
//!   checks the service makes, each with its own error.
//! - [`keys`]: the service's secrets: the HPKE key pair, the master key that wraps per-person
//!   data keys, the deployment secret behind pseudonymous IDs and phone hashes.
//! - [`decision`]: match / no match / ambiguous from a ranked candidate list.
//! - [`model`]: the records the service keeps (business, device, person, consent, link,
//!   match log entry, webhook endpoint, outbox event).
//! - [`entry`]: venue entry: events, tickets, the gate's admit / deny rules and their reasons.
//! - [`money`]: integer minor units of an ISO 4217 currency; never floats.
//! - [`payment`]: pay by palm: the payment state machine, safeguards, the processor's intent.
//! - [`person`]: the person's own access (one-time codes, sessions) and signed deletion
//!   receipts.
//! - [`webhook`]: Standard Webhooks signing and verification, event types and bodies.

/// A JSON Schema pattern matched by a text that is not blank: it holds a character other
/// than the blanks [`trim_blank`] drops.
pub const NOT_BLANK: &str = "[^ \\t\\n\\r]";

/// `v` without surrounding spaces, tabs and line breaks (the blanks of [`NOT_BLANK`]).
pub fn trim_blank(v: &str) -> &str {
    v.trim_matches([' ', '\t', '\n', '\r'])
}

/// Whether a text field holds 1..=`max_chars` characters and is not blank: what the API's
/// schemas say (`minLength`, `maxLength`, [`NOT_BLANK`]).
pub fn text_fits(v: &str, max_chars: usize) -> bool {
    !trim_blank(v).is_empty() && v.chars().count() <= max_chars
}

pub mod apikey;
pub mod audit;
pub mod decision;
pub mod entry;
pub mod ids;
pub mod keys;
pub mod model;
pub mod money;
pub mod payment;
pub mod person;
pub mod protocol;
pub mod webhook;

/// Current time in milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Current time in whole seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The service's clock (Unix seconds). Payments and authorisations expire by it; tests and
/// the demo move it forward instead of waiting days.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> i64;
}

/// The system clock, plus an offset that only [`MovableClock::advance`] changes (0 in
/// production).
#[derive(Debug, Default)]
pub struct MovableClock {
    offset_secs: std::sync::atomic::AtomicI64,
}

impl MovableClock {
    /// Move the clock forward (or back, with a negative value) by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset_secs
            .fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for MovableClock {
    fn now(&self) -> i64 {
        now_unix() + self.offset_secs.load(std::sync::atomic::Ordering::SeqCst)
    }
}
