//! Property tests of the sealed-capture wire format (the device protocol): the JSON wire
//! form and its base64 fields, the canonical signed bytes, verification and opening. The
//! same properties as `fuzz/fuzz_targets/sealed_capture.rs`, in the default test run.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openpalm_domain::ids::Purpose;
use openpalm_domain::protocol::{
    generate_hpke_keypair, CaptureError, HpkePrivateKey, HpkePublicKey, SealedCapture, SealedCaptureWire,
    SigningKey,
};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;

struct Keys {
    service: HpkePrivateKey,
    service_pub: HpkePublicKey,
    device: SigningKey,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let (service, service_pub) = generate_hpke_keypair();
        Keys {
            service,
            service_pub,
            device: SigningKey::from_bytes(&[42u8; 32]),
        }
    })
}

fn purpose() -> impl Strategy<Value = Purpose> {
    prop_oneof![Just(Purpose::Enroll), Just(Purpose::Identify)]
}

prop_compose! {
    fn sealed()(
        device_id in "[a-zA-Z0-9_\\-é]{1,40}",
        purpose in purpose(),
        timestamp in any::<i64>(),
        image in proptest::collection::vec(any::<u8>(), 0..300),
    ) -> (SealedCapture, Vec<u8>) {
        let k = keys();
        let c = SealedCapture::seal(&k.service_pub, &k.device, &device_id, purpose, timestamp, &image).unwrap();
        (c, image)
    }
}

/// Whether a capture that differs from `signed` is refused as it must be: the signature
/// fails, and a changed header or body cannot be opened either.
fn refused(c: &SealedCapture, signed: &SealedCapture) -> Result<(), TestCaseError> {
    let k = keys();
    prop_assert_eq!(
        c.verify_signature(&k.device.verifying_key()),
        Err(CaptureError::BadSignature)
    );
    let only_signature = SealedCapture {
        signature: signed.signature,
        ..c.clone()
    } == *signed;
    if !only_signature {
        prop_assert_eq!(c.open(&k.service).map(|_| ()), Err(CaptureError::Undecryptable));
    }
    Ok(())
}

/// Any JSON value, nested a few levels, with keys drawn mostly from the wire form's own.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("device_id".to_string()),
        Just("nonce".to_string()),
        Just("timestamp".to_string()),
        Just("purpose".to_string()),
        Just("enc".to_string()),
        Just("ciphertext".to_string()),
        Just("signature".to_string()),
        "[a-z]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("enroll".to_string()),
            Just("identify".to_string()),
            "[A-Za-z0-9+/=]{0,100}",
            ".{0,20}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..9)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_through_json(sealed in sealed()) {
        let (c, image) = sealed;
        let k = keys();
        let json = serde_json::to_vec(&c.to_wire()).unwrap();
        let wire: SealedCaptureWire = serde_json::from_slice(&json).unwrap();
        let back = SealedCapture::try_from(&wire).unwrap();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.to_wire(), wire);
        back.verify_signature(&k.device.verifying_key()).unwrap();
        prop_assert_eq!(&back.open(&k.service).unwrap()[..], &image[..]);
        // The canonical bytes are length-prefixed: the header is a prefix of them.
        let header = SealedCapture::header_bytes(&c.device_id, &c.nonce, c.timestamp, c.purpose);
        prop_assert!(c.signed_bytes().starts_with(&header));
    }

    #[test]
    fn any_single_byte_change_of_a_field_is_refused(
        sealed in sealed(),
        field in 0usize..7,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let (signed, _) = sealed;
        let mut c = signed.clone();
        let flip = |b: &mut [u8]| {
            let i = at.index(b.len());
            b[i] ^= xor;
        };
        match field {
            0 => {
                // device_id: one byte changed, as long as it stays text.
                let mut b = c.device_id.clone().into_bytes();
                flip(&mut b);
                match String::from_utf8(b) {
                    Ok(s) => c.device_id = s,
                    Err(_) => return Ok(()),
                }
            }
            1 => flip(&mut c.nonce),
            2 => {
                let mut t = c.timestamp.to_le_bytes();
                flip(&mut t);
                c.timestamp = i64::from_le_bytes(t);
            }
            3 => {
                c.purpose = match c.purpose {
                    Purpose::Enroll => Purpose::Identify,
                    Purpose::Identify => Purpose::Enroll,
                }
            }
            4 => flip(&mut c.enc),
            5 => {
                if c.ciphertext.is_empty() {
                    return Ok(());
                }
                flip(&mut c.ciphertext)
            }
            _ => flip(&mut c.signature),
        }
        prop_assert_ne!(&c, &signed);
        // Through the wire and back, then refused with a typed error.
        let back = SealedCapture::try_from(&c.to_wire()).unwrap();
        prop_assert_eq!(&back, &c);
        refused(&back, &signed)?;
    }

    #[test]
    fn any_byte_change_of_the_json_is_refused_or_harmless(
        sealed in sealed(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let (signed, _) = sealed;
        let mut json = serde_json::to_vec(&signed.to_wire()).unwrap();
        for (at, xor) in &edits {
            let i = at.index(json.len());
            json[i] ^= xor;
        }
        let Ok(wire) = serde_json::from_slice::<SealedCaptureWire>(&json) else {
            return Ok(());
        };
        match SealedCapture::try_from(&wire) {
            Err(e) => prop_assert_eq!(e.code(), "malformed_capture"),
            // A change JSON does not see (a key's escape, white space) leaves the capture.
            Ok(c) if c == signed => {}
            Ok(c) => refused(&c, &signed)?,
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json()) {
        let text = serde_json::to_vec(&value).unwrap();
        let parsed = serde_json::from_slice::<SealedCaptureWire>(&text).ok();
        let from_value = serde_json::from_value::<SealedCaptureWire>(value).ok();
        prop_assert_eq!(&parsed, &from_value);
        if let Some(w) = parsed {
            if let Ok(c) = SealedCapture::try_from(&w) {
                let k = keys();
                prop_assert!(c.verify_signature(&k.device.verifying_key()).is_err());
                let _ = c.check_time(1_700_000_000);
                let _ = c.open(&k.service);
            }
        }
    }

    #[test]
    fn arbitrary_field_values_are_typed(
        device_id in ".{0,140}",
        nonce in proptest::collection::vec(any::<u8>(), 0..24),
        signature in proptest::collection::vec(any::<u8>(), 0..70),
        enc in proptest::collection::vec(any::<u8>(), 0..40),
        ciphertext in "[A-Za-z0-9+/=]{0,64}",
        timestamp in any::<i64>(),
        now in any::<i64>(),
        purpose in purpose(),
    ) {
        let w = SealedCaptureWire {
            device_id,
            nonce: B64.encode(&nonce),
            timestamp,
            purpose,
            enc: B64.encode(&enc),
            ciphertext,
            signature: B64.encode(&signature),
        };
        match SealedCapture::try_from(&w) {
            Err(e) => prop_assert_eq!(e.code(), "malformed_capture"),
            Ok(c) => {
                prop_assert_eq!(nonce.len(), 16);
                prop_assert_eq!(signature.len(), 64);
                let k = keys();
                prop_assert_eq!(
                    c.verify_signature(&k.device.verifying_key()),
                    Err(CaptureError::BadSignature)
                );
                // The clock check never overflows, whatever the two clocks say.
                let far = (timestamp as i128 - now as i128).abs() > 60;
                prop_assert_eq!(c.check_time(now).is_err(), far);
                prop_assert!(c.open(&k.service).is_err());
            }
        }
    }
}
