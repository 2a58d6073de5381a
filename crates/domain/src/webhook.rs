//! Webhooks to a business's URL, after the Standard Webhooks scheme.
//!
//! Each request carries `webhook-id` (the event ID: the same on every retry, so a receiver
//! can deduplicate), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature`: `v1,` + base64 of HMAC-SHA256 over `"{id}.{timestamp}.{body}"`, keyed
//! with the endpoint's secret (`whsec_` + base64 of 32 random bytes, shown once when the
//! endpoint is registered). The body is `{"type", "timestamp", "data"}`.
//!
//! Events: `person.linked`, `person.unlinked`, `person.deleted`, `entry.admitted`,
//! `entry.denied`; each names the person by the receiving business's own pseudonymous ID only.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Prefix of endpoint secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of event IDs (the `webhook-id` header).
pub const EVENT_ID_PREFIX: &str = "msg";
/// Receivers should refuse timestamps further than this from their clock (seconds).
pub const DEFAULT_TOLERANCE_S: i64 = 300;

/// What happened.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum EventType {
    #[serde(rename = "person.linked")]
    PersonLinked,
    #[serde(rename = "person.unlinked")]
    PersonUnlinked,
    #[serde(rename = "person.deleted")]
    PersonDeleted,
    /// A palm lane (or an attendant) admitted a ticket holder.
    #[serde(rename = "entry.admitted")]
    EntryAdmitted,
    /// A palm lane (or an attendant) refused entry, with the reason.
    #[serde(rename = "entry.denied")]
    EntryDenied,
    /// The person was not identified for the dormancy period: they will be deleted unless
    /// their palm is used again before `delete_after`.
    #[serde(rename = "person.dormant")]
    PersonDormant,
    /// A palm payment was authorised on the person's card.
    #[serde(rename = "payment.authorized")]
    PaymentAuthorized,
    #[serde(rename = "payment.captured")]
    PaymentCaptured,
    #[serde(rename = "payment.voided")]
    PaymentVoided,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    /// Declined (by the processor or a safeguard) or failed (attempts spent).
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    /// An authorisation lapsed before it was captured.
    #[serde(rename = "payment.expired")]
    PaymentExpired,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        EventType::PersonLinked,
        EventType::PersonUnlinked,
        EventType::PersonDeleted,
        EventType::EntryAdmitted,
        EventType::EntryDenied,
        EventType::PaymentAuthorized,
        EventType::PaymentCaptured,
        EventType::PaymentVoided,
        EventType::PaymentRefunded,
        EventType::PaymentFailed,
        EventType::PaymentExpired,
        EventType::PersonDormant,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::PersonLinked => "person.linked",
            EventType::PersonUnlinked => "person.unlinked",
            EventType::PersonDeleted => "person.deleted",
            EventType::EntryAdmitted => "entry.admitted",
            EventType::EntryDenied => "entry.denied",
            EventType::PaymentAuthorized => "payment.authorized",
            EventType::PaymentCaptured => "payment.captured",
            EventType::PaymentVoided => "payment.voided",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentExpired => "payment.expired",
            EventType::PersonDormant => "person.dormant",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown event type {s:?}: expected person.linked, person.unlinked, person.deleted, entry.admitted or entry.denied"
                )
            })
    }
}

/// Event types as stored: sorted, space separated (`person.deleted person.linked`).
pub fn event_types_to_string(types: &[EventType]) -> String {
    let mut v = types.to_vec();
    v.sort_by_key(|t| t.as_str());
    v.dedup();
    v.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn event_types_from_string(s: &str) -> Result<Vec<EventType>, String> {
    s.split(' ').filter(|p| !p.is_empty()).map(str::parse).collect()
}

/// Why a secret or a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the secret is not whsec_ followed by base64")]
    BadSecret,
    #[error("the webhook-signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches")]
    BadSignature,
    #[error("the timestamp is {0} s away from now, more than the tolerance")]
    Stale(i64),
}

/// A fresh endpoint secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> Zeroizing<String> {
    let mut b = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut b[..]);
    Zeroizing::new(format!("{SECRET_PREFIX}{}", B64.encode(&b[..])))
}

fn secret_bytes(secret: &str) -> Result<Zeroizing<Vec<u8>>, WebhookError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let bytes = Zeroizing::new(B64.decode(b64).map_err(|_| WebhookError::BadSecret)?);
    if bytes.is_empty() {
        return Err(WebhookError::BadSecret);
    }
    Ok(bytes)
}

fn mac(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `webhook-signature` header value for one attempt: `v1,<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let key = secret_bytes(secret)?;
    let tag = mac(&key, id, timestamp, body).finalize().into_bytes();
    Ok(format!("v1,{}", B64.encode(tag)))
}

/// Check a delivery as a receiver would: one of the space-separated `v1,` signatures must
/// match (compared in constant time), and the timestamp must be within `tolerance_s` of
/// `now`.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), WebhookError> {
    let key = secret_bytes(secret)?;
    let off = (now - timestamp).abs();
    if off > tolerance_s {
        return Err(WebhookError::Stale(off));
    }
    let mut any = false;
    for sig in signature_header.split(' ') {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        any = true;
        let Ok(tag) = B64.decode(b64) else {
            continue;
        };
        if mac(&key, id, timestamp, body).verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        WebhookError::BadSignature
    } else {
        WebhookError::NoSignature
    })
}

/// Unix seconds as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The JSON body of an event, exactly as sent (and signed) on every attempt.
pub fn body(event_type: EventType, at: i64, data: &serde_json::Value) -> String {
    serde_json::json!({
        "type": event_type.as_str(),
        "timestamp": rfc3339(at),
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector_reproduces() {
        // The vector published with the Standard Webhooks / Svix reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, id, 1_614_265_330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            verify(secret, id, 1_614_265_330, &sig, body, 1_614_265_330, 300),
            Ok(())
        );
    }

    #[test]
    fn verification_refuses_tampering_staleness_and_missing_signatures() {
        let secret = generate_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert_eq!(B64.decode(&secret[SECRET_PREFIX.len()..]).unwrap().len(), 32);
        let sig = sign(&secret, "msg_1", 1000, b"{}").unwrap();
        assert_eq!(verify(&secret, "msg_1", 1000, &sig, b"{}", 1100, 300), Ok(()));
        // Several signatures (secret rotation): any one matching is enough.
        let two = format!("v1,AAAA {sig}");
        assert_eq!(verify(&secret, "msg_1", 1000, &two, b"{}", 1000, 300), Ok(()));
        assert_eq!(
            verify(&secret, "msg_1", 1000, &sig, b"{ }", 1000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(&secret, "msg_2", 1000, &sig, b"{}", 1000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(&secret, "msg_1", 1000, &sig, b"{}", 1301, 300),
            Err(WebhookError::Stale(301))
        );
        assert_eq!(
            verify(&secret, "msg_1", 1000, "v2,abc", b"{}", 1000, 300),
            Err(WebhookError::NoSignature)
        );
        let other = generate_secret();
        assert_eq!(
            verify(&other, "msg_1", 1000, &sig, b"{}", 1000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(sign("whsec_***", "m", 1, b""), Err(WebhookError::BadSecret));
    }

    #[test]
    fn event_types_and_times_have_their_wire_forms() {
        let s = event_types_to_string(&[EventType::PersonLinked, EventType::PersonDeleted]);
        assert_eq!(s, "person.deleted person.linked");
        assert_eq!(
            event_types_from_string(&s).unwrap(),
            vec![EventType::PersonDeleted, EventType::PersonLinked]
        );
        assert!("person.created".parse::<EventType>().is_err());
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_614_265_330), "2021-02-25T15:02:10Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        let b = body(
            EventType::PersonDeleted,
            0,
            &serde_json::json!({"pseudonymous_id": "pp_1"}),
        );
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["type"], "person.deleted");
        assert_eq!(v["data"]["pseudonymous_id"], "pp_1");
    }
}
