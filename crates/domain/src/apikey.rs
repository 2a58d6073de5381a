//! API keys: `op_test_<64 hex>` or `op_live_<64 hex>` (32 random bytes). Shown once; the
//! service keeps only the SHA-256 of the whole key, and a short display prefix.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Test keys act on a sandbox; live keys on real people. Both are isolated per business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Test,
    Live,
}

impl Environment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Live => "live",
        }
    }
}

/// Suffix of a business's live partition.
pub const LIVE_SUFFIX: &str = "_live";

impl Environment {
    /// Where a key of this environment keeps its business's data: test data under the
    /// business ID itself, live data under `<business ID>_live`, a business row of its own.
    /// Every record (devices, people's memberships, events, tickets, payments, webhook
    /// endpoints, idempotency records) is filed under the caller's partition, so test keys
    /// and live keys are as far apart as two businesses: neither sees the other's data.
    pub fn partition(self, business_id: &str) -> String {
        match self {
            Environment::Test => business_id.to_string(),
            Environment::Live => format!("{business_id}{LIVE_SUFFIX}"),
        }
    }

    /// The matcher scope holding every enrolled person of this environment: what a
    /// duplicate check or a join searches, so that a test kiosk never finds a live person
    /// (nor the reverse).
    pub fn everyone_scope(self) -> &'static str {
        match self {
            Environment::Test => "env:test",
            Environment::Live => "env:live",
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Environment::Test),
            "live" => Ok(Environment::Live),
            other => Err(format!("unknown environment {other:?}: expected test or live")),
        }
    }
}

/// What a key may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Create, rotate and revoke API keys.
    Keys,
    /// Register and revoke devices.
    Devices,
    /// Enroll people at a kiosk.
    Enroll,
    /// Identify people at a gate or checkout.
    Identify,
    /// Link and read a person's accounts and match log.
    People,
    /// Register, list and delete webhook endpoints.
    Webhooks,
    /// Create events, issue, transfer and cancel tickets, override lane decisions, read
    /// entry counts.
    Events,
    /// Open payments for a checkout, send the palm, capture, void and refund them, read
    /// receipts and purchase histories, set a person's payment safeguards.
    Payments,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::Keys,
        Scope::Devices,
        Scope::Enroll,
        Scope::Identify,
        Scope::People,
        Scope::Webhooks,
        Scope::Events,
        Scope::Payments,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Keys => "keys",
            Scope::Devices => "devices",
            Scope::Enroll => "enroll",
            Scope::Identify => "identify",
            Scope::People => "people",
            Scope::Webhooks => "webhooks",
            Scope::Events => "events",
            Scope::Payments => "payments",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            format!(
                "unknown scope {s:?}: expected keys, devices, enroll, identify, people, webhooks, events or payments"
            )
        })
    }
}

/// Scopes as stored: sorted, comma separated.
pub fn scopes_to_string(scopes: &[Scope]) -> String {
    let mut v: Vec<Scope> = scopes.to_vec();
    v.sort();
    v.dedup();
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// Parse stored scopes; unknown names are an error (the column is written only by us).
pub fn scopes_from_string(s: &str) -> Result<Vec<Scope>, String> {
    s.split(',').filter(|p| !p.is_empty()).map(str::parse).collect()
}

/// A freshly generated key: the secret (to show once) and what is kept.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// The whole key, to be shown to the caller once and never stored.
    pub secret: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// The first characters, to recognise a key in listings (`op_test_1a2b3c4d`).
    pub display_prefix: String,
}

/// Generate a key for `env`.
pub fn generate(env: Environment) -> NewKey {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let secret = format!("op_{}_{}", env.as_str(), hex::encode(b));
    let display_prefix = secret[..16].to_string();
    NewKey {
        hash: hash(&secret),
        secret,
        display_prefix,
    }
}

/// The stored form of a presented key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `key` has the shape of an OpenPalm key (cheap check before a lookup).
pub fn looks_like_key(key: &str) -> bool {
    let rest = key
        .strip_prefix("op_test_")
        .or_else(|| key.strip_prefix("op_live_"));
    rest.is_some_and(|r| r.len() == 64 && r.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_and_hash_stably() {
        let k = generate(Environment::Live);
        assert!(k.secret.starts_with("op_live_"));
        assert!(looks_like_key(&k.secret));
        assert_eq!(hash(&k.secret), k.hash);
        assert_ne!(k.hash, generate(Environment::Live).hash);
        assert!(!looks_like_key("op_live_xyz"));
        assert!(!looks_like_key(&k.secret.replace("op_live_", "op_prod_")));
    }

    #[test]
    fn scopes_round_trip() {
        let s = scopes_to_string(&[Scope::People, Scope::Enroll, Scope::Enroll]);
        assert_eq!(s, "enroll,people");
        assert_eq!(
            scopes_from_string(&s).unwrap(),
            vec![Scope::Enroll, Scope::People]
        );
        assert!(scopes_from_string("enroll,root").is_err());
    }
}
