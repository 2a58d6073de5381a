//! The service's secrets and what they protect.
//!
//! - HPKE key pair: readers seal captures to its public half ([`crate::protocol`]).
//! - Master key: wraps each person's data key (ChaCha20-Poly1305, the person ID as associated
//!   data). Each person's templates are encrypted under their own data key, so deleting the
//!   wrapped data key erases the person's templates everywhere they were copied
//!   (crypto-shredding).
//! - Deployment secret: keys the HMACs behind pseudonymous IDs and phone-number hashes.

use crate::protocol::{generate_hpke_keypair, HpkePrivateKey, HpkePublicKey, Kem};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use hpke::{Deserializable, Kem as _, Serializable};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Why a key operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key file is malformed: {0}")]
    Malformed(String),
    #[error("decryption failed: wrong key or tampered data")]
    Decrypt,
}

/// All secrets of one deployment.
pub struct ServiceKeys {
    hpke_private: HpkePrivateKey,
    hpke_public: HpkePublicKey,
    master: Zeroizing<[u8; 32]>,
    deployment_secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKeys")
            .field("hpke_public", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

const KEY_FILE_VERSION: &str = "openpalm-service-keys-v1";

fn random32() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut k[..]);
    k
}

fn hex32(label: &str, s: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let v = Zeroizing::new(hex::decode(s.trim()).map_err(|e| KeyError::Malformed(format!("{label}: {e}")))?);
    let mut out = Zeroizing::new([0u8; 32]);
    if v.len() != 32 {
        return Err(KeyError::Malformed(format!(
            "{label}: expected 32 bytes, found {}",
            v.len()
        )));
    }
    out.copy_from_slice(&v);
    Ok(out)
}

impl ServiceKeys {
    /// Fresh random keys.
    pub fn generate() -> ServiceKeys {
        let (hpke_private, hpke_public) = generate_hpke_keypair();
        ServiceKeys {
            hpke_private,
            hpke_public,
            master: random32(),
            deployment_secret: random32(),
        }
    }

    /// The key file: a version line, then `name=hex` lines.
    pub fn to_file_contents(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_FILE_VERSION}\nhpke_x25519_private={}\nmaster={}\ndeployment_secret={}\n",
            hex::encode(self.hpke_private.to_bytes()),
            hex::encode(&self.master[..]),
            hex::encode(&self.deployment_secret[..]),
        ))
    }

    /// Parse [`ServiceKeys::to_file_contents`].
    pub fn from_file_contents(s: &str) -> Result<ServiceKeys, KeyError> {
        let mut lines = s.lines();
        if lines.next().map(str::trim) != Some(KEY_FILE_VERSION) {
            return Err(KeyError::Malformed(format!(
                "first line must be {KEY_FILE_VERSION}"
            )));
        }
        let (mut hpke_sk, mut master, mut secret) = (None, None, None);
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let (name, value) = line.split_once('=').ok_or_else(|| {
                KeyError::Malformed(format!(
                    "expected name=hex, found {:?}",
                    line.chars().take(20).collect::<String>()
                ))
            })?;
            match name.trim() {
                "hpke_x25519_private" => hpke_sk = Some(hex32(name, value)?),
                "master" => master = Some(hex32(name, value)?),
                "deployment_secret" => secret = Some(hex32(name, value)?),
                other => return Err(KeyError::Malformed(format!("unknown entry {other:?}"))),
            }
        }
        let missing = |n: &str| KeyError::Malformed(format!("missing {n}"));
        let hpke_sk = hpke_sk.ok_or_else(|| missing("hpke_x25519_private"))?;
        let hpke_private = HpkePrivateKey::from_bytes(&hpke_sk[..])
            .map_err(|_| KeyError::Malformed("hpke_x25519_private is not an X25519 key".into()))?;
        let hpke_public = Kem::sk_to_pk(&hpke_private);
        Ok(ServiceKeys {
            hpke_private,
            hpke_public,
            master: master.ok_or_else(|| missing("master"))?,
            deployment_secret: secret.ok_or_else(|| missing("deployment_secret"))?,
        })
    }

    pub fn hpke_private(&self) -> &HpkePrivateKey {
        &self.hpke_private
    }

    pub fn hpke_public(&self) -> &HpkePublicKey {
        &self.hpke_public
    }

    /// The HPKE public key as published: 32 bytes, standard base64.
    pub fn public_key_base64(&self) -> String {
        B64.encode(self.hpke_public.to_bytes())
    }

    /// Wrap a person's data key under the master key, bound to the person's ID.
    pub fn wrap_data_key(&self, person_id: &str, data_key: &DataKey) -> Vec<u8> {
        seal(&self.master, person_id.as_bytes(), &data_key.0[..])
    }

    /// Unwrap a person's data key.
    pub fn unwrap_data_key(&self, person_id: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let plain = Zeroizing::new(open(&self.master, person_id.as_bytes(), wrapped)?);
        let mut k = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(KeyError::Decrypt);
        }
        k.copy_from_slice(&plain);
        Ok(DataKey(k))
    }

    /// Encrypt a webhook endpoint's signing secret under the master key, bound to the
    /// endpoint's ID (the database alone does not reveal it).
    pub fn seal_webhook_secret(&self, endpoint_id: &str, secret: &str) -> Vec<u8> {
        seal(&self.master, &webhook_aad(endpoint_id), secret.as_bytes())
    }

    /// Decrypt [`ServiceKeys::seal_webhook_secret`].
    pub fn open_webhook_secret(
        &self,
        endpoint_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, KeyError> {
        let plain = Zeroizing::new(open(&self.master, &webhook_aad(endpoint_id), sealed)?);
        let s = std::str::from_utf8(&plain).map_err(|_| KeyError::Decrypt)?;
        Ok(Zeroizing::new(s.to_string()))
    }

    /// Encrypt a stored response that carries a secret shown once (a new API key, a webhook
    /// secret) so that the idempotency table does not keep it in clear; bound to the
    /// business and the `Idempotency-Key`.
    pub fn seal_stored_response(&self, business_id: &str, idem_key: &str, response: &str) -> Vec<u8> {
        seal(
            &self.master,
            &response_aad(business_id, idem_key),
            response.as_bytes(),
        )
    }

    /// Decrypt [`ServiceKeys::seal_stored_response`].
    pub fn open_stored_response(
        &self,
        business_id: &str,
        idem_key: &str,
        sealed: &[u8],
    ) -> Result<String, KeyError> {
        let plain = open(&self.master, &response_aad(business_id, idem_key), sealed)?;
        String::from_utf8(plain).map_err(|_| KeyError::Decrypt)
    }

    /// The pseudonymous ID under which `business_id` knows `person_id`:
    /// `pp_` + the first 20 bytes of HMAC-SHA256(deployment secret, "pseudonym" || business || person), hex.
    /// Different for every business; the service can recompute it, businesses cannot join on it.
    pub fn pseudonymous_id(&self, business_id: &str, person_id: &str) -> String {
        let mac = self.hmac(&[
            b"openpalm pseudonym v1",
            business_id.as_bytes(),
            person_id.as_bytes(),
        ]);
        format!("pp_{}", hex::encode(&mac[..20]))
    }

    /// Keyed hash of a normalised phone number, for lookup without keeping the number.
    pub fn phone_hash(&self, normalised_phone: &str) -> String {
        hex::encode(self.hmac(&[b"openpalm phone v1", normalised_phone.as_bytes()]))
    }

    /// Keyed hash of a person's sign-in code or session token (`purpose` keeps the two apart).
    pub fn access_hash(&self, purpose: &str, value: &str) -> String {
        hex::encode(self.hmac(&[b"openpalm person access v1", purpose.as_bytes(), value.as_bytes()]))
    }

    /// The Ed25519 key that signs deletion receipts, derived from the deployment secret (so
    /// it is as durable as the key file, and no new secret needs storing).
    pub fn receipt_signing_key(&self) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&self.hmac(&[b"openpalm receipt signing key v1"]))
    }

    /// The receipt-signing public key, base64.
    pub fn receipt_public_key_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(self.receipt_signing_key().verifying_key().to_bytes())
    }

    /// Keyed hash of a person's step-up code at one business (PIN or the last four digits
    /// of their phone): the code is never kept, and a stolen database alone cannot be
    /// searched for it without the deployment secret.
    pub fn step_up_hash(&self, person_id: &str, business_id: &str, code: &str) -> String {
        hex::encode(self.hmac(&[
            b"openpalm step-up v1",
            person_id.as_bytes(),
            business_id.as_bytes(),
            code.as_bytes(),
        ]))
    }

    /// Compare a code with a stored step-up hash in constant time.
    pub fn step_up_matches(&self, person_id: &str, business_id: &str, code: &str, stored: &str) -> bool {
        use subtle_eq::ct_eq;
        ct_eq(
            self.step_up_hash(person_id, business_id, code).as_bytes(),
            stored.as_bytes(),
        )
    }

    fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.deployment_secret[..])
            .expect("HMAC takes any key length");
        for p in parts {
            // Length-prefix each part so that ("ab","c") and ("a","bc") differ.
            mac.update(&(p.len() as u32).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// A person's data key (wiped on drop).
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> DataKey {
        DataKey(random32())
    }

    /// Encrypt a template; `aad` binds it to its owner and slot.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.0, aad, plaintext)
    }

    pub fn decrypt(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        open(&self.0, aad, sealed).map(Zeroizing::new)
    }
}

fn response_aad(business_id: &str, idem_key: &str) -> Vec<u8> {
    let mut v = b"openpalm stored response v1".to_vec();
    for part in [business_id, idem_key] {
        v.extend_from_slice(&(part.len() as u32).to_be_bytes());
        v.extend_from_slice(part.as_bytes());
    }
    v
}

fn webhook_aad(endpoint_id: &str) -> Vec<u8> {
    format!("openpalm webhook secret v1/{endpoint_id}").into_bytes()
}

/// ChaCha20-Poly1305 with a random 12-byte nonce prepended.
fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < 12 + 16 {
        return Err(KeyError::Decrypt);
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(&sealed[..12]),
            Payload {
                msg: &sealed[12..],
                aad,
            },
        )
        .map_err(|_| KeyError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_and_rejects_garbage() {
        let k = ServiceKeys::generate();
        let back = ServiceKeys::from_file_contents(&k.to_file_contents()).unwrap();
        assert_eq!(back.public_key_base64(), k.public_key_base64());
        assert_eq!(back.pseudonymous_id("b", "p"), k.pseudonymous_id("b", "p"));
        assert!(ServiceKeys::from_file_contents("nonsense").is_err());
        let truncated = k.to_file_contents().replace("master=", "mister=");
        assert!(ServiceKeys::from_file_contents(&truncated).is_err());
    }

    #[test]
    fn data_keys_wrap_and_templates_decrypt_only_in_place() {
        let k = ServiceKeys::generate();
        let dk = DataKey::generate();
        let wrapped = k.wrap_data_key("per_1", &dk);
        assert!(
            k.unwrap_data_key("per_2", &wrapped).is_err(),
            "bound to the person"
        );
        let dk2 = k.unwrap_data_key("per_1", &wrapped).unwrap();
        let ct = dk.encrypt(b"per_1/0", b"template");
        assert_eq!(&dk2.decrypt(b"per_1/0", &ct).unwrap()[..], b"template");
        assert!(dk2.decrypt(b"per_1/1", &ct).is_err(), "bound to the slot");
        let other = ServiceKeys::generate();
        assert!(
            other.unwrap_data_key("per_1", &wrapped).is_err(),
            "needs this master key"
        );
    }

    #[test]
    fn webhook_secrets_open_only_for_their_endpoint() {
        let k = ServiceKeys::generate();
        let sealed = k.seal_webhook_secret("whe_1", "whsec_abc");
        assert_eq!(&k.open_webhook_secret("whe_1", &sealed).unwrap()[..], "whsec_abc");
        assert!(k.open_webhook_secret("whe_2", &sealed).is_err());
        assert!(ServiceKeys::generate()
            .open_webhook_secret("whe_1", &sealed)
            .is_err());
        // Not interchangeable with a wrapped data key of a person of the same name.
        assert!(k.unwrap_data_key("whe_1", &sealed).is_err());
        let r = k.seal_stored_response("biz_a", "key-1", "{\"secret\":\"x\"}");
        assert_eq!(
            k.open_stored_response("biz_a", "key-1", &r).unwrap(),
            "{\"secret\":\"x\"}"
        );
        assert!(k.open_stored_response("biz_b", "key-1", &r).is_err());
        assert!(k.open_stored_response("biz_a", "key-2", &r).is_err());
    }

    #[test]
    fn pseudonymous_ids_differ_per_business_and_deployment() {
        let k = ServiceKeys::generate();
        let a = k.pseudonymous_id("biz_a", "per_1");
        assert!(a.starts_with("pp_") && a.len() == 43);
        assert_ne!(a, k.pseudonymous_id("biz_b", "per_1"));
        assert_ne!(a, k.pseudonymous_id("biz_a", "per_2"));
        assert_ne!(a, ServiceKeys::generate().pseudonymous_id("biz_a", "per_1"));
        assert_ne!(k.phone_hash("+33612345678"), k.phone_hash("+33612345679"));
    }
}

mod subtle_eq {
    /// Constant-time equality of two byte strings of public length.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
