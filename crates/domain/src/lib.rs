//! OpenPalm's service domain: the rules, independent of HTTP and SQL.
//!
//! - [`ids`]: identifiers of businesses, people, devices and keys, and the kinds and purposes
//!   they come in.
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
//! - [`webhook`]: Standard Webhooks signing and verification, event types and bodies.

pub mod apikey;
pub mod decision;
pub mod entry;
pub mod ids;
pub mod keys;
pub mod model;
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
