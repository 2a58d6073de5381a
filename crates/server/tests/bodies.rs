//! Property test: no JSON body makes a request parser panic. Every endpoint's body type is
//! fed arbitrary JSON values (keys drawn mostly from the service's own field names, so that
//! the values reach nested types) the way `openpalm_server::body::ApiJson` parses a body:
//! bytes to a value, its canonical form re-serialised, then the value into the type. The same
//! as `fuzz/fuzz_targets/json_bodies.rs`, in the default test run.

use openpalm_server::api::{
    admin, devices, enroll, events, identify, join, lane, me, payments, people, webhooks,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

const KEYS: &[&str] = &[
    "accepted",
    "amount_minor",
    "attendant",
    "business",
    "business_id",
    "capture",
    "captures",
    "challenge_id",
    "code",
    "consent",
    "currency",
    "customer",
    "daily_limit_minor",
    "decision",
    "device_id",
    "doors_close_at",
    "doors_open_at",
    "ends_at",
    "environment",
    "event_id",
    "events",
    "exit_gates",
    "external_ref",
    "gate",
    "gates",
    "hand",
    "hands",
    "holder",
    "input",
    "kind",
    "limit",
    "links",
    "max_reentries",
    "member_id",
    "method",
    "min_payments",
    "min_spent_minor",
    "name",
    "note",
    "opted_in",
    "order_reference",
    "per_payment_limit_minor",
    "phone",
    "pseudonymous_id",
    "public_key",
    "reason",
    "reentry",
    "scopes",
    "site",
    "starts_at",
    "status",
    "step_up",
    "step_up_above_minor",
    "text_version",
    "ticket_id",
    "ticket_type",
    "tickets",
    "title",
    "to",
    "url",
    "value",
    "verification",
    "window_days",
    "nonce",
    "timestamp",
    "purpose",
    "enc",
    "ciphertext",
    "signature",
];

const WORDS: &[&str] = &[
    "roi",
    "hand",
    "left",
    "right",
    "kiosk",
    "gate",
    "checkout",
    "member_id",
    "phone",
    "processor_token",
    "admit",
    "deny",
    "enroll",
    "identify",
    "EUR",
    "USD",
    "JPY",
    "10.50",
    "+4915112345678",
    "2030-01-01T10:00:00Z",
    "https://example.test/hook",
    "tok_visa",
    "AAAAAAAAAAAAAAAAAAAAAA==",
    "",
    "\u{0}",
    "é",
    "manage",
    "*",
];

fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_string), 1 => "[a-z_]{0,8}"];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..100_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(|w| Value::String(w.into())),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 10, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Parse `value` into `T` as the service does; whatever happens must not be a panic.
fn parse<T: DeserializeOwned>(value: &Value) -> bool {
    let bytes = serde_json::to_vec(value).unwrap();
    let raw: Value = serde_json::from_slice(&bytes).unwrap();
    // What the idempotency hash is taken over: always there, the same for the same bytes.
    let canonical = serde_json::to_vec(&raw).unwrap();
    let again: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(serde_json::to_vec(&again).unwrap(), canonical);
    let direct = serde_json::from_slice::<T>(&bytes).is_ok();
    let via_value = serde_json::from_value::<T>(raw).is_ok();
    direct || via_value
}

fn all(value: &Value) -> usize {
    let parsers: &[fn(&Value) -> bool] = &[
        parse::<admin::CreateBusiness>,
        parse::<admin::CreateKey>,
        parse::<devices::RegisterDevice>,
        parse::<enroll::EnrollRequest>,
        parse::<events::CreateEvent>,
        parse::<events::IssueTickets>,
        parse::<events::TransferTicket>,
        parse::<identify::IdentifyRequest>,
        parse::<join::JoinRequest>,
        parse::<me::SignInRequest>,
        parse::<me::SessionRequest>,
        parse::<me::OffersChoice>,
        parse::<payments::PutSettings>,
        parse::<people::LinkRequest>,
        parse::<people::OperatorErasure>,
        parse::<webhooks::CreateEndpoint>,
        parse::<lane::attendant::OverrideRequest>,
        parse::<lane::attendant::ManualEntryRequest>,
        parse::<lane::GateRequest>,
        parse::<payments::checkout::PalmRequest>,
        parse::<payments::checkout::StepUpRequest>,
        parse::<payments::offers::OffersConsent>,
        parse::<payments::offers::CreateOffer>,
        parse::<payments::CreatePayment>,
        parse::<payments::CaptureRequest>,
        parse::<payments::RefundRequest>,
    ];
    parsers.iter().filter(|p| p(value)).count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_a_body_parser(value in json()) {
        all(&value);
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_body_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            all(&v);
        }
    }
}

#[test]
fn deeply_nested_bodies_are_refused_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(serde_json::from_slice::<Value>(deep.as_bytes()).is_err());
    let deep = format!("{{\"hands\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(serde_json::from_slice::<enroll::EnrollRequest>(deep.as_bytes()).is_err());
}
