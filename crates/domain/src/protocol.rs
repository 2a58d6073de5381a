//! The sealed capture: what a reader sends for every capture, and the checks the service
//! makes on it.
//!
//! The reader builds `{device_id, nonce (16 random bytes), timestamp, purpose}`, seals the
//! image with HPKE (RFC 9180, mode base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305) to the service's published key, with the header as associated data,
//! and signs the canonical bytes ([`SealedCapture::signed_bytes`]) with its Ed25519 key.
//!
//! The service checks, in this order and each with its own error: the device is known and
//! belongs to the caller, it is not revoked, the signature verifies, the timestamp is within
//! [`MAX_CLOCK_SKEW_SECS`] of the service clock, the nonce was never seen for this device;
//! only then is the image opened.

use crate::ids::Purpose;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// HPKE `info`: binds the sealed image to this protocol and version.
pub const HPKE_INFO: &[u8] = b"openpalm capture v1";
/// Domain separation prefix of the signed bytes.
const SIGNED_PREFIX: &[u8] = b"openpalm-sealed-capture-v1\0";
/// Largest accepted distance between the capture's timestamp and the service clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 16;
/// Standard base64 (padded, canonical) of exactly 16 bytes, as a JSON Schema pattern.
pub const B64_16_BYTES: &str = "^[A-Za-z0-9+/]{21}[AQgw]==$";
/// Standard base64 of exactly 32 bytes.
pub const B64_32_BYTES: &str = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$";
/// Standard base64 of exactly 64 bytes.
pub const B64_64_BYTES: &str = "^[A-Za-z0-9+/]{85}[AQgw]==$";
/// Standard base64 of any length (padded, canonical).
pub const B64_ANY: &str =
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// Name of the HPKE suite, as published with the service key.
pub const HPKE_SUITE: &str = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305";

/// The KEM of the suite.
pub type Kem = X25519HkdfSha256;
/// The service's HPKE private key.
pub type HpkePrivateKey = <X25519HkdfSha256 as hpke::Kem>::PrivateKey;
/// The service's HPKE public key.
pub type HpkePublicKey = <X25519HkdfSha256 as hpke::Kem>::PublicKey;

/// A sealed capture as sent over the wire (JSON; binary fields in standard base64).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SealedCaptureWire {
    /// The registered device that sealed it.
    #[schemars(length(min = 1, max = 128))]
    pub device_id: String,
    /// 16 random bytes, base64.
    #[schemars(regex(pattern = B64_16_BYTES), extend("contentEncoding" = "base64"))]
    pub nonce: String,
    /// Seconds since the Unix epoch at capture; within 60 s of the service clock.
    pub timestamp: i64,
    pub purpose: Purpose,
    /// HPKE encapsulated key, base64.
    #[schemars(regex(pattern = B64_ANY), extend("contentEncoding" = "base64"))]
    pub enc: String,
    /// HPKE ciphertext of the image bytes, base64; the header is its associated data.
    #[schemars(regex(pattern = B64_ANY), extend("contentEncoding" = "base64"))]
    pub ciphertext: String,
    /// Ed25519 signature of [`SealedCapture::signed_bytes`], 64 bytes, base64.
    #[schemars(regex(pattern = B64_64_BYTES), extend("contentEncoding" = "base64"))]
    pub signature: String,
}

/// A sealed capture with its binary fields decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedCapture {
    pub device_id: String,
    pub nonce: [u8; NONCE_LEN],
    pub timestamp: i64,
    pub purpose: Purpose,
    pub enc: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub signature: [u8; 64],
}

/// Why a sealed capture was refused. Each has a stable code for API errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("the sealed capture is malformed: {0}")]
    Malformed(String),
    #[error("the device is not registered with this business")]
    UnknownDevice,
    #[error("the device has been revoked")]
    DeviceRevoked,
    #[error("the capture signature does not verify with the device's key")]
    BadSignature,
    #[error("the capture timestamp is {skew_secs} s away from the service clock (at most {max} s accepted)", max = MAX_CLOCK_SKEW_SECS)]
    StaleTimestamp { skew_secs: i64 },
    #[error("this nonce was already used by this device")]
    ReplayedNonce,
    #[error("a {kind} device cannot send a capture for {purpose}")]
    WrongPurpose {
        kind: &'static str,
        purpose: &'static str,
    },
    #[error("the capture cannot be opened with the service key")]
    Undecryptable,
}

impl CaptureError {
    pub fn code(&self) -> &'static str {
        match self {
            CaptureError::Malformed(_) => "malformed_capture",
            CaptureError::UnknownDevice => "unknown_device",
            CaptureError::DeviceRevoked => "device_revoked",
            CaptureError::BadSignature => "bad_signature",
            CaptureError::StaleTimestamp { .. } => "stale_timestamp",
            CaptureError::ReplayedNonce => "replayed_nonce",
            CaptureError::WrongPurpose { .. } => "wrong_purpose",
            CaptureError::Undecryptable => "undecryptable_capture",
        }
    }
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, CaptureError> {
    B64.decode(s)
        .map_err(|e| CaptureError::Malformed(format!("{field} is not standard base64: {e}")))
}

impl TryFrom<&SealedCaptureWire> for SealedCapture {
    type Error = CaptureError;
    fn try_from(w: &SealedCaptureWire) -> Result<Self, CaptureError> {
        let nonce: [u8; NONCE_LEN] = b64("nonce", &w.nonce)?
            .try_into()
            .map_err(|_| CaptureError::Malformed(format!("nonce must be {NONCE_LEN} bytes")))?;
        let signature: [u8; 64] = b64("signature", &w.signature)?
            .try_into()
            .map_err(|_| CaptureError::Malformed("signature must be 64 bytes".into()))?;
        if w.device_id.is_empty() || w.device_id.chars().count() > 128 {
            return Err(CaptureError::Malformed(
                "device_id must be 1..128 characters".into(),
            ));
        }
        Ok(SealedCapture {
            device_id: w.device_id.clone(),
            nonce,
            timestamp: w.timestamp,
            purpose: w.purpose,
            enc: b64("enc", &w.enc)?,
            ciphertext: b64("ciphertext", &w.ciphertext)?,
            signature,
        })
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

impl SealedCapture {
    /// The header, bound to the ciphertext as HPKE associated data.
    pub fn header_bytes(
        device_id: &str,
        nonce: &[u8; NONCE_LEN],
        timestamp: i64,
        purpose: Purpose,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + device_id.len());
        out.extend_from_slice(SIGNED_PREFIX);
        put(&mut out, device_id.as_bytes());
        put(&mut out, nonce);
        out.extend_from_slice(&timestamp.to_be_bytes());
        put(&mut out, purpose.as_str().as_bytes());
        out
    }

    /// Canonical bytes the device signs: the header, then the length-prefixed `enc` and
    /// ciphertext.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Self::header_bytes(&self.device_id, &self.nonce, self.timestamp, self.purpose);
        put(&mut out, &self.enc);
        put(&mut out, &self.ciphertext);
        out
    }

    /// Seal and sign `image` as reader `device_id` would, at time `timestamp`.
    pub fn seal(
        service_key: &HpkePublicKey,
        device_key: &SigningKey,
        device_id: &str,
        purpose: Purpose,
        timestamp: i64,
        image: &[u8],
    ) -> Result<SealedCapture, CaptureError> {
        let mut rng = rand::rngs::OsRng;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let aad = Self::header_bytes(device_id, &nonce, timestamp, purpose);
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
            &OpModeS::Base,
            service_key,
            HPKE_INFO,
            image,
            &aad,
            &mut rng,
        )
        .map_err(|e| CaptureError::Malformed(format!("HPKE seal failed: {e}")))?;
        let mut capture = SealedCapture {
            device_id: device_id.to_string(),
            nonce,
            timestamp,
            purpose,
            enc: enc.to_bytes().to_vec(),
            ciphertext,
            signature: [0u8; 64],
        };
        capture.signature = device_key.sign(&capture.signed_bytes()).to_bytes();
        Ok(capture)
    }

    /// The wire form.
    pub fn to_wire(&self) -> SealedCaptureWire {
        SealedCaptureWire {
            device_id: self.device_id.clone(),
            nonce: B64.encode(self.nonce),
            timestamp: self.timestamp,
            purpose: self.purpose,
            enc: B64.encode(&self.enc),
            ciphertext: B64.encode(&self.ciphertext),
            signature: B64.encode(self.signature),
        }
    }

    /// Check the signature with the device's registered key.
    pub fn verify_signature(&self, device_key: &VerifyingKey) -> Result<(), CaptureError> {
        let sig = Signature::from_bytes(&self.signature);
        device_key
            .verify_strict(&self.signed_bytes(), &sig)
            .map_err(|_| CaptureError::BadSignature)
    }

    /// Check the timestamp against the service clock `now`.
    pub fn check_time(&self, now: i64) -> Result<(), CaptureError> {
        let skew = self.timestamp.saturating_sub(now);
        // `unsigned_abs`: `abs` of a skew saturated at `i64::MIN` overflows (a panic with
        // overflow checks, and without them a negative skew that passed the check).
        if skew.unsigned_abs() > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
            return Err(CaptureError::StaleTimestamp { skew_secs: skew });
        }
        Ok(())
    }

    /// Open the sealed image with the service's private key. The result wipes itself when
    /// dropped.
    pub fn open(&self, service_key: &HpkePrivateKey) -> Result<Zeroizing<Vec<u8>>, CaptureError> {
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&self.enc)
            .map_err(|_| CaptureError::Undecryptable)?;
        let aad = Self::header_bytes(&self.device_id, &self.nonce, self.timestamp, self.purpose);
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            service_key,
            &enc,
            HPKE_INFO,
            &self.ciphertext,
            &aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| CaptureError::Undecryptable)
    }
}

/// Parse an Ed25519 public key from its 32 bytes in base64: a valid point that is not of
/// small order.
pub fn parse_device_public_key(b64_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = B64
        .decode(b64_key)
        .map_err(|e| format!("public_key is not standard base64: {e}"))?
        .try_into()
        .map_err(|_| "public_key must be 32 bytes (an Ed25519 public key)".to_string())?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "public_key is not a valid Ed25519 point".to_string())?;
    // A small-order key lets forged signatures verify for any message; refuse it here, and
    // signatures are checked with `verify_strict` (canonical R and s, no small-order R).
    if key.is_weak() {
        return Err("public_key is a small-order (weak) Ed25519 point".to_string());
    }
    Ok(key)
}

/// How long a device nonce must be remembered: a capture carrying it stops passing the clock
/// check once the service clock is [`MAX_CLOCK_SKEW_SECS`] past its timestamp, and that
/// timestamp was at most [`MAX_CLOCK_SKEW_SECS`] ahead of the service clock when it was
/// seen; a minute more for clock steps.
pub const NONCE_RETENTION_SECS: i64 = 2 * MAX_CLOCK_SKEW_SECS + 60;

/// Parse the service's HPKE public key (32 bytes, base64) as published.
pub fn parse_service_public_key(b64_key: &str) -> Result<HpkePublicKey, String> {
    let bytes = B64
        .decode(b64_key)
        .map_err(|e| format!("service public key is not standard base64: {e}"))?;
    HpkePublicKey::from_bytes(&bytes).map_err(|_| "service public key is not an X25519 key".to_string())
}

/// A fresh HPKE key pair.
pub fn generate_hpke_keypair() -> (HpkePrivateKey, HpkePublicKey) {
    Kem::gen_keypair(&mut rand::rngs::OsRng)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (HpkePrivateKey, HpkePublicKey, SigningKey) {
        let (sk, pk) = generate_hpke_keypair();
        (sk, pk, SigningKey::generate(&mut rand::rngs::OsRng))
    }

    #[test]
    fn seal_verify_open_round_trip_through_the_wire() {
        let (sk, pk, dev) = setup();
        let c = SealedCapture::seal(&pk, &dev, "dev_1", Purpose::Identify, 1000, b"image bytes").unwrap();
        let back = SealedCapture::try_from(&c.to_wire()).unwrap();
        assert_eq!(back, c);
        back.verify_signature(&dev.verifying_key()).unwrap();
        back.check_time(1030).unwrap();
        assert_eq!(&back.open(&sk).unwrap()[..], b"image bytes");
    }

    #[test]
    fn tampering_with_any_signed_field_breaks_the_signature() {
        let (_, pk, dev) = setup();
        let c = SealedCapture::seal(&pk, &dev, "dev_1", Purpose::Identify, 1000, b"img").unwrap();
        let vk = dev.verifying_key();
        let mut t = c.clone();
        t.timestamp += 1;
        assert_eq!(t.verify_signature(&vk), Err(CaptureError::BadSignature));
        let mut t = c.clone();
        t.purpose = Purpose::Enroll;
        assert_eq!(t.verify_signature(&vk), Err(CaptureError::BadSignature));
        let mut t = c.clone();
        t.nonce[0] ^= 1;
        assert_eq!(t.verify_signature(&vk), Err(CaptureError::BadSignature));
        let mut t = c.clone();
        t.ciphertext[0] ^= 1;
        assert_eq!(t.verify_signature(&vk), Err(CaptureError::BadSignature));
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        assert_eq!(
            c.verify_signature(&other.verifying_key()),
            Err(CaptureError::BadSignature)
        );
    }

    #[test]
    fn signatures_are_checked_strictly() {
        // The same signature with s + L (the group order) added is malleated: the lenient
        // check rejects s >= L too, but strict verification is what the service relies on.
        let (_, pk, dev) = setup();
        let c = SealedCapture::seal(&pk, &dev, "dev_1", Purpose::Identify, 1000, b"img").unwrap();
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut m = c.clone();
        let mut carry = 0u16;
        for (i, l) in L.iter().enumerate() {
            let v = u16::from(m.signature[32 + i]) + u16::from(*l) + carry;
            m.signature[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(
            m.verify_signature(&dev.verifying_key()),
            Err(CaptureError::BadSignature)
        );
        assert!(c.verify_signature(&dev.verifying_key()).is_ok());
        // The identity point is a small-order key: refused at registration.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let err = parse_device_public_key(&B64.encode(identity)).unwrap_err();
        assert!(err.contains("weak"), "{err}");
        assert!(parse_device_public_key(&B64.encode(dev.verifying_key().to_bytes())).is_ok());
    }

    #[test]
    fn the_header_is_bound_to_the_ciphertext() {
        // A re-signed capture with a changed header still cannot be opened.
        let (sk, pk, dev) = setup();
        let mut c = SealedCapture::seal(&pk, &dev, "dev_1", Purpose::Identify, 1000, b"img").unwrap();
        c.timestamp += 5;
        c.signature = dev.sign(&c.signed_bytes()).to_bytes();
        assert!(c.verify_signature(&dev.verifying_key()).is_ok());
        assert_eq!(c.open(&sk).unwrap_err(), CaptureError::Undecryptable);
        // And a capture sealed to another service key cannot be opened either.
        let (sk2, _) = generate_hpke_keypair();
        let c = SealedCapture::seal(&pk, &dev, "dev_1", Purpose::Identify, 1000, b"img").unwrap();
        assert_eq!(c.open(&sk2).unwrap_err(), CaptureError::Undecryptable);
    }

    #[test]
    fn clock_window_is_sixty_seconds_each_way() {
        let (_, pk, dev) = setup();
        let c = SealedCapture::seal(&pk, &dev, "d", Purpose::Identify, 1000, b"x").unwrap();
        assert!(c.check_time(1060).is_ok());
        assert!(c.check_time(940).is_ok());
        assert_eq!(
            c.check_time(1061),
            Err(CaptureError::StaleTimestamp { skew_secs: -61 })
        );
        assert_eq!(
            c.check_time(939),
            Err(CaptureError::StaleTimestamp { skew_secs: 61 })
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let (_, pk, dev) = setup();
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let c = SealedCapture::seal(&pk, &dev, "d", Purpose::Identify, ts, b"x").unwrap();
            for now in [1_700_000_000, 0, -5, i64::MAX, i64::MIN] {
                let far = (ts as i128 - now as i128).abs() > MAX_CLOCK_SKEW_SECS as i128;
                assert_eq!(c.check_time(now).is_err(), far, "ts {ts} now {now}");
            }
        }
    }

    #[test]
    fn malformed_wire_fields_are_typed() {
        let (_, pk, dev) = setup();
        let mut w = SealedCapture::seal(&pk, &dev, "d", Purpose::Identify, 1, b"x")
            .unwrap()
            .to_wire();
        w.nonce = B64.encode([0u8; 8]);
        assert_eq!(
            SealedCapture::try_from(&w).unwrap_err().code(),
            "malformed_capture"
        );
        w.nonce = "***".into();
        assert_eq!(
            SealedCapture::try_from(&w).unwrap_err().code(),
            "malformed_capture"
        );
    }
}
