//! Records the service keeps, as plain data.

use crate::apikey::{Environment, Scope};
use crate::decision::Decision;
use crate::ids::{DeviceKind, HandSide};
use crate::webhook::EventType;
use serde::{Deserialize, Serialize};

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Business {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// A stored API key (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub business_id: String,
    pub environment: Environment,
    pub scopes: Vec<Scope>,
    pub hash: String,
    pub display_prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A reader, registered to one business and site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub business_id: String,
    pub kind: DeviceKind,
    pub site: String,
    /// Ed25519 public key, 32 bytes.
    pub public_key: [u8; 32],
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A consent text as shown on a kiosk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentText {
    pub version: i64,
    pub language: String,
    pub text: String,
    pub published_at: i64,
}

/// A person's recorded consent: which text, when, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub person_id: String,
    pub business_id: String,
    pub text_version: i64,
    pub given_at: i64,
    pub device_id: String,
    pub site: String,
}

/// A person: only keys and encrypted templates; no name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    /// Small integer used by the in-memory matcher.
    pub seq: i64,
    /// The person's data key wrapped by the master key. Deleting it shreds the person.
    pub wrapped_key: Vec<u8>,
    pub created_at: i64,
    /// Enrolled through a test or a live key's device: searched only by keys of the same.
    pub environment: Environment,
}

/// One encrypted template of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedTemplate {
    pub person_id: String,
    pub hand: HandSide,
    pub index: i64,
    pub sealed: Vec<u8>,
}

impl EncryptedTemplate {
    /// Associated data binding a template ciphertext to its owner and slot.
    pub fn aad(person_id: &str, hand: HandSide, index: i64) -> Vec<u8> {
        format!("openpalm template v1/{person_id}/{}/{index}", hand.as_str()).into_bytes()
    }
}

/// The relation between a person and a business: the business's pseudonymous ID for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub person_id: String,
    pub business_id: String,
    pub pseudonymous_id: String,
    pub created_at: i64,
}

/// What kind of account a link points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The business's own member ID (ticketing app ID, loyalty number).
    MemberId,
    /// A payment processor's token for a card; never a card number.
    PaymentToken,
    /// A phone number, kept only as a keyed hash.
    Phone,
}

impl LinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkKind::MemberId => "member_id",
            LinkKind::PaymentToken => "payment_token",
            LinkKind::Phone => "phone",
        }
    }
}

impl std::str::FromStr for LinkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member_id" => Ok(LinkKind::MemberId),
            "payment_token" => Ok(LinkKind::PaymentToken),
            "phone" => Ok(LinkKind::Phone),
            other => Err(format!(
                "unknown link kind {other:?}: expected member_id, payment_token or phone"
            )),
        }
    }
}

/// A linked account, visible only to the business that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub person_id: String,
    pub business_id: String,
    pub kind: LinkKind,
    /// Member ID or processor token as given; for phones, the keyed hash.
    pub value: String,
    pub created_at: i64,
}

/// Why a link value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Invalid(String),
}

/// Check and normalise a link value. Card numbers are refused as payment tokens (a token must
/// not look like a primary account number); phones are normalised to `+` and digits.
pub fn normalise_link_value(kind: LinkKind, value: &str) -> Result<String, LinkError> {
    let v = crate::trim_blank(value);
    if v.is_empty() || v.len() > 200 {
        return Err(LinkError::Invalid("value must be 1..200 characters".into()));
    }
    match kind {
        LinkKind::MemberId => Ok(v.to_string()),
        LinkKind::PaymentToken => {
            let digits: String = v.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
            if (12..=19).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(LinkError::Invalid(
                    "this looks like a card number: send the payment processor's token, never the card number".into(),
                ));
            }
            Ok(v.to_string())
        }
        LinkKind::Phone => {
            let plus = v.starts_with('+');
            let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
            let junk = v.chars().any(|c| !(c.is_ascii_digit() || " +-().".contains(c)));
            if !plus || junk || !(8..=15).contains(&digits.len()) {
                return Err(LinkError::Invalid(
                    "phone must be in international form, e.g. +33612345678".into(),
                ));
            }
            Ok(format!("+{digits}"))
        }
    }
}

/// One line of a person's match log.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchLogEntry {
    pub id: String,
    /// `None` for a no-match (nobody's log, kept as the business's record).
    pub person_id: Option<String>,
    pub business_id: String,
    pub device_id: String,
    pub site: String,
    pub at: i64,
    pub decision: Decision,
    pub score: f32,
    /// For a lane decision: the venue event.
    pub event_id: Option<String>,
    /// For a lane decision: `admit`, `exit` or `deny:<reason>`.
    pub outcome: Option<String>,
}

/// A business's webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub business_id: String,
    pub url: String,
    /// The events sent to it.
    pub event_types: Vec<EventType>,
    /// The signing secret, sealed with [`crate::keys::ServiceKeys::seal_webhook_secret`].
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

/// An event for a business, written to the outbox in the same transaction as the change it
/// reports, then delivered to each of the business's endpoints that takes its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    /// `msg_...`: the `webhook-id`, the same on every attempt.
    pub id: String,
    pub business_id: String,
    pub event_type: EventType,
    /// The exact JSON body sent ([`crate::webhook::body`]).
    pub payload: String,
    pub created_at: i64,
}

impl OutboxEvent {
    /// A new event with a fresh ID.
    pub fn new(business_id: &str, event_type: EventType, at: i64, data: &serde_json::Value) -> OutboxEvent {
        OutboxEvent {
            id: crate::ids::new_id(crate::ids::prefix::EVENT),
            business_id: business_id.to_string(),
            event_type,
            payload: crate::webhook::body(event_type, at, data),
            created_at: at,
        }
    }
}

/// A hand named in an enrollment and how many templates it needs.
pub const MIN_CAPTURES_PER_HAND: usize = 3;

/// Hands enrolled: each side at most once.
pub fn check_hands(hands: &[HandSide]) -> Result<(), String> {
    if hands.is_empty() {
        return Err("enroll at least one hand".into());
    }
    if hands.len() > 2 || (hands.len() == 2 && hands[0] == hands[1]) {
        return Err("each hand (left, right) may be enrolled once".into());
    }
    Ok(())
}

/// A key with its business, as resolved from a bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The key's partition of the business's data (see [`Environment::partition`]): what
    /// every data operation is filed under.
    pub business_id: String,
    /// The business itself (its keys are managed under this ID, whatever their environment).
    pub account_id: String,
    pub key_id: String,
    pub environment: Environment,
    pub scopes: Vec<Scope>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_not_tokens_and_phones_normalise() {
        assert!(normalise_link_value(LinkKind::PaymentToken, "4111 1111 1111 1111").is_err());
        assert_eq!(
            normalise_link_value(LinkKind::PaymentToken, "tok_visa_abc").unwrap(),
            "tok_visa_abc"
        );
        assert_eq!(
            normalise_link_value(LinkKind::Phone, "+33 6 12-34-56-78").unwrap(),
            "+33612345678"
        );
        assert!(normalise_link_value(LinkKind::Phone, "0612345678").is_err());
        assert!(normalise_link_value(LinkKind::MemberId, "  ").is_err());
    }

    #[test]
    fn hands() {
        assert!(check_hands(&[HandSide::Left]).is_ok());
        assert!(check_hands(&[HandSide::Left, HandSide::Right]).is_ok());
        assert!(check_hands(&[HandSide::Left, HandSide::Left]).is_err());
        assert!(check_hands(&[]).is_err());
    }
}
