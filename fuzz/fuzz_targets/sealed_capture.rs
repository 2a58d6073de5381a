//! The sealed-capture wire format (the device protocol): JSON parsing, base64 fields,
//! canonical signed bytes, signature verification, the clock check and opening.
//!
//! The first input byte picks a mode:
//! - 0: the rest is a JSON body; whatever parses goes through every check;
//! - 1: the rest edits the JSON of one valid capture (position, xor pairs);
//! - 2: the rest changes one decoded field of the valid capture.
//!
//! Everything must end in a typed error or success, and a capture that differs from the
//! one the device signed must never verify.
#![no_main]

use ed25519_dalek::Signer;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::{Kem as _, OpModeS, Serializable};
use libfuzzer_sys::fuzz_target;
use openpalm_domain::ids::Purpose;
use openpalm_domain::protocol::{
    parse_device_public_key, parse_service_public_key, CaptureError, HpkePrivateKey, Kem, SealedCapture,
    SealedCaptureWire, SigningKey, VerifyingKey, HPKE_INFO,
};
use rand_chacha::rand_core::SeedableRng;
use std::sync::OnceLock;

const NOW: i64 = 1_700_000_000;
const IMAGE: &[u8] = b"\x89PNG not really an image, but sealed all the same";

struct Fixture {
    service: HpkePrivateKey,
    device: VerifyingKey,
    valid: SealedCapture,
    wire_json: Vec<u8>,
}

/// One capture sealed and signed with fixed keys and a seeded RNG, so that every run (and
/// every reproduction of a crash) sees the same bytes.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (service, service_pub) = Kem::derive_keypair(b"openpalm fuzz service key");
        let signer = SigningKey::from_bytes(&[7u8; 32]);
        let nonce = [3u8; 16];
        let aad = SealedCapture::header_bytes("dev_fuzz", &nonce, NOW, Purpose::Enroll);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            &service_pub,
            HPKE_INFO,
            IMAGE,
            &aad,
            &mut rng,
        )
        .expect("seal");
        let mut valid = SealedCapture {
            device_id: "dev_fuzz".into(),
            nonce,
            timestamp: NOW,
            purpose: Purpose::Enroll,
            enc: enc.to_bytes().to_vec(),
            ciphertext,
            signature: [0u8; 64],
        };
        valid.signature = signer.sign(&valid.signed_bytes()).to_bytes();
        let wire_json = serde_json::to_vec(&valid.to_wire()).expect("json");
        Fixture {
            service,
            device: signer.verifying_key(),
            valid,
            wire_json,
        }
    })
}

/// Every check the service makes, in its order; asserts what must hold of the outcome.
fn check(c: &SealedCapture) {
    let f = fixture();
    // Wire round trip.
    let back = SealedCapture::try_from(&c.to_wire()).expect("a decoded capture re-encodes");
    assert_eq!(&back, c);
    let verified = c.verify_signature(&f.device);
    let _ = c.check_time(NOW);
    let opened = c.open(&f.service);
    if c == &f.valid {
        assert!(verified.is_ok());
        assert_eq!(opened.as_deref().map(|v| &v[..]), Ok(IMAGE));
    } else {
        assert_eq!(
            verified,
            Err(CaptureError::BadSignature),
            "a changed capture verified"
        );
        let header_or_body_changed = c.device_id != f.valid.device_id
            || c.nonce != f.valid.nonce
            || c.timestamp != f.valid.timestamp
            || c.purpose != f.valid.purpose
            || c.enc != f.valid.enc
            || c.ciphertext != f.valid.ciphertext;
        if header_or_body_changed {
            assert_eq!(opened.map(|_| ()), Err(CaptureError::Undecryptable));
        }
    }
}

fn from_json(bytes: &[u8]) {
    if let Ok(w) = serde_json::from_slice::<SealedCaptureWire>(bytes) {
        if let Ok(c) = SealedCapture::try_from(&w) {
            check(&c);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            from_json(rest);
            let text = String::from_utf8_lossy(rest);
            let _ = parse_device_public_key(&text);
            let _ = parse_service_public_key(&text);
        }
        1 => {
            let mut json = f.wire_json.clone();
            for pair in rest.chunks_exact(3) {
                let at = u16::from_le_bytes([pair[0], pair[1]]) as usize % json.len();
                json[at] ^= pair[2];
            }
            from_json(&json);
        }
        _ => {
            let Some((&field, value)) = rest.split_first() else {
                return;
            };
            let mut c = f.valid.clone();
            let text = String::from_utf8_lossy(value).into_owned();
            match field % 7 {
                0 => c.device_id = text,
                1 => {
                    for (n, v) in c.nonce.iter_mut().zip(value) {
                        *n ^= v;
                    }
                }
                2 => {
                    let mut t = [0u8; 8];
                    for (d, s) in t.iter_mut().zip(value) {
                        *d = *s;
                    }
                    c.timestamp = i64::from_le_bytes(t);
                }
                3 => c.purpose = Purpose::Identify,
                4 => c.enc = value.to_vec(),
                5 => {
                    for (b, v) in c.ciphertext.iter_mut().zip(value) {
                        *b ^= v;
                    }
                    if value.len() > c.ciphertext.len() {
                        c.ciphertext.extend_from_slice(&value[c.ciphertext.len()..]);
                    }
                }
                _ => {
                    for (b, v) in c.signature.iter_mut().zip(value) {
                        *b ^= v;
                    }
                }
            }
            if !c.device_id.is_empty() && c.device_id.len() <= 128 {
                check(&c);
            } else {
                let e = SealedCapture::try_from(&c.to_wire()).unwrap_err();
                assert_eq!(e.code(), "malformed_capture");
            }
        }
    }
});
