//! The person's own access: one-time sign-in codes sent to the phone they linked, short-lived
//! sessions, and the signed receipt a deletion leaves.
//!
//! A sign-in never reveals whether a number is enrolled: every request gets a challenge; only
//! a number linked to exactly one person gets a code sent, and a challenge without a person
//! can never be completed. Codes and session tokens are kept only as keyed hashes
//! ([`crate::keys::ServiceKeys::access_hash`]).

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// How long a sign-in code is valid (seconds).
pub const CODE_TTL_SECS: i64 = 10 * 60;
/// Wrong codes per challenge before it is spent.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// Codes sent to one number per [`SIGN_IN_WINDOW_SECS`]; beyond it the answer is the same
/// but nothing is sent (no code flood to a number, no SMS pumping).
pub const MAX_SIGN_INS_PER_WINDOW: u32 = 5;
pub const SIGN_IN_WINDOW_SECS: i64 = 3600;
/// How long a session lasts (seconds).
pub const SESSION_TTL_SECS: i64 = 15 * 60;
/// Prefix of a person's session token.
pub const SESSION_PREFIX: &str = "ops_";

/// A fresh six-digit code.
pub fn new_code() -> String {
    let n = rand::rngs::OsRng.next_u32() % 1_000_000;
    format!("{n:06}")
}

/// A fresh session token (`ops_` + 32 random bytes, hex).
pub fn new_session_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{SESSION_PREFIX}{}", hex::encode(b))
}

/// Whether `s` has the shape of a session token.
pub fn looks_like_session(s: &str) -> bool {
    s.strip_prefix(SESSION_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a deletion destroyed: counts, never contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Destroyed {
    /// The person's data key (wrapped by the master key): without it the templates are noise.
    pub data_key: bool,
    pub templates: u64,
    pub gallery_entries: u64,
    pub memberships: u64,
    pub links: u64,
    pub match_log_lines: u64,
    /// Businesses sent `person.deleted` under their own pseudonymous ID.
    pub businesses_notified: u64,
}

/// What the service attests about a deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeletionReceipt {
    pub receipt_id: String,
    /// SHA-256 of the person's internal ID, hex: names the subject without keeping a way back.
    pub subject: String,
    /// Unix seconds.
    pub deleted_at: i64,
    /// Why: `person_request`, `cancellation`, `dormancy` or `operator`.
    #[serde(default)]
    pub reason: String,
    pub destroyed: Destroyed,
    /// What was kept and why (consent records as the record of what was agreed; the stores'
    /// payment records without the person).
    pub kept: Vec<String>,
}

/// A receipt with the service's Ed25519 signature over its canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SignedReceipt {
    pub receipt: DeletionReceipt,
    /// The service's receipt-signing public key, base64 (also at `GET /v1/service-key`).
    pub public_key: String,
    /// Ed25519 signature of `serde_json::to_vec(&receipt)`, base64.
    pub signature: String,
}

/// Why a receipt does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the public key is not a base64 Ed25519 key")]
    BadKey,
    #[error("the receipt was signed by another key than the one given")]
    OtherKey,
    #[error("the signature is malformed")]
    BadSignature,
    #[error("the signature does not match the receipt: it was changed or forged")]
    Invalid,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Sign a receipt.
pub fn sign_receipt(key: &SigningKey, receipt: DeletionReceipt) -> SignedReceipt {
    let bytes = serde_json::to_vec(&receipt).expect("a receipt serialises");
    let sig = key.sign(&bytes);
    SignedReceipt {
        receipt,
        public_key: b64().encode(key.verifying_key().to_bytes()),
        signature: b64().encode(sig.to_bytes()),
    }
}

/// Check a receipt against the service's published key (base64).
pub fn verify_receipt(r: &SignedReceipt, service_key_b64: &str) -> Result<(), ReceiptError> {
    let key_bytes: [u8; 32] = b64()
        .decode(service_key_b64.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(ReceiptError::BadKey)?;
    if r.public_key.trim() != b64().encode(key_bytes) {
        return Err(ReceiptError::OtherKey);
    }
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| ReceiptError::BadKey)?;
    let sig: [u8; 64] = b64()
        .decode(&r.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(ReceiptError::BadSignature)?;
    let bytes = serde_json::to_vec(&r.receipt).map_err(|_| ReceiptError::Invalid)?;
    key.verify(&bytes, &Signature::from_bytes(&sig))
        .map_err(|_| ReceiptError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> DeletionReceipt {
        DeletionReceipt {
            receipt_id: "drc_1".into(),
            subject: "ab".into(),
            deleted_at: 5,
            reason: "person_request".into(),
            destroyed: Destroyed {
                data_key: true,
                templates: 3,
                gallery_entries: 3,
                memberships: 2,
                links: 1,
                match_log_lines: 4,
                businesses_notified: 2,
            },
            kept: vec!["consent records".into()],
        }
    }

    #[test]
    fn a_receipt_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let pk = b64().encode(key.verifying_key().to_bytes());
        let s = sign_receipt(&key, receipt());
        assert_eq!(verify_receipt(&s, &pk), Ok(()));
        let mut t = s.clone();
        t.receipt.destroyed.templates = 2;
        assert_eq!(verify_receipt(&t, &pk), Err(ReceiptError::Invalid));
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let opk = b64().encode(other.verifying_key().to_bytes());
        assert_eq!(verify_receipt(&s, &opk), Err(ReceiptError::OtherKey));
        let forged = SignedReceipt {
            public_key: opk.clone(),
            ..sign_receipt(&other, receipt())
        };
        assert_eq!(verify_receipt(&forged, &pk), Err(ReceiptError::OtherKey));
        assert_eq!(verify_receipt(&s, "nope"), Err(ReceiptError::BadKey));
    }

    #[test]
    fn codes_and_tokens_have_their_shape() {
        for _ in 0..100 {
            let c = new_code();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        }
        let t = new_session_token();
        assert!(looks_like_session(&t));
        assert!(!looks_like_session("ops_xyz"));
        assert_ne!(new_session_token(), t);
    }
}
