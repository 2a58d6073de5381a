//! OpenPalm reader SDK and simulator.
//!
//! A [`Reader`] holds a device's Ed25519 key and the service's HPKE public key and turns
//! image bytes into a sealed, signed capture ([`Reader::seal`]) exactly as a kiosk, gate or
//! checkout must: fresh 16-byte nonce, current timestamp, purpose, HPKE seal with the header
//! as associated data, Ed25519 signature over the canonical bytes. The reader keeps nothing.
//! [`Client`] calls the service's API; [`sim`] drives it with image folders
//! (`openpalm device`).

pub mod agent;
pub mod sim;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_domain::now_unix;
use openpalm_domain::protocol::{
    parse_service_public_key, CaptureError, HpkePublicKey, SealedCapture, SealedCaptureWire, SigningKey,
};
use serde_json::{json, Value};
use std::path::Path;
use zeroize::Zeroizing;

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the service answered {status} {code}: {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("sealing failed: {0}")]
    Seal(#[from] CaptureError),
    #[error("key: {0}")]
    Key(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// A reader: its identity and key, and the service key it seals to.
pub struct Reader {
    pub device_id: String,
    key: SigningKey,
    service_key: HpkePublicKey,
}

impl Reader {
    pub fn new(device_id: String, key: SigningKey, service_key: HpkePublicKey) -> Reader {
        Reader {
            device_id,
            key,
            service_key,
        }
    }

    /// Seal and sign `image` for `purpose`, timestamped now.
    pub fn seal(&self, purpose: Purpose, image: &[u8]) -> Result<SealedCaptureWire, DeviceError> {
        self.seal_at(purpose, image, now_unix())
    }

    /// Seal and sign `image` with an explicit timestamp (tests of the clock window).
    pub fn seal_at(
        &self,
        purpose: Purpose,
        image: &[u8],
        timestamp: i64,
    ) -> Result<SealedCaptureWire, DeviceError> {
        Ok(SealedCapture::seal(
            &self.service_key,
            &self.key,
            &self.device_id,
            purpose,
            timestamp,
            image,
        )?
        .to_wire())
    }
}

/// A device key file: the device ID and its Ed25519 secret key (hex), mode 0600.
pub struct DeviceKeyFile {
    pub device_id: String,
    pub key: SigningKey,
}

impl DeviceKeyFile {
    pub fn read(path: &Path) -> Result<DeviceKeyFile, DeviceError> {
        let err = |message: String| DeviceError::File {
            path: path.display().to_string(),
            message,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let v: Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
        let device_id = v["device_id"]
            .as_str()
            .ok_or_else(|| err("missing device_id".into()))?
            .to_string();
        let secret = Zeroizing::new(
            hex::decode(
                v["secret_key"]
                    .as_str()
                    .ok_or_else(|| err("missing secret_key".into()))?,
            )
            .map_err(|e| err(format!("secret_key: {e}")))?,
        );
        let bytes: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| err("secret_key must be 32 bytes".into()))?;
        Ok(DeviceKeyFile {
            device_id,
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// Write with mode 0600 (never overwrites).
    pub fn write(&self, path: &Path) -> Result<(), DeviceError> {
        use std::io::Write;
        let err = |message: String| DeviceError::File {
            path: path.display().to_string(),
            message,
        };
        let text = Zeroizing::new(
            json!({
                "device_id": self.device_id,
                "secret_key": hex::encode(self.key.to_bytes()),
            })
            .to_string(),
        );
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
        f.write_all(text.as_bytes()).map_err(|e| err(e.to_string()))
    }
}

/// A JSON answer from the service.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The problem `code` of an error answer.
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }

    /// Ok for 2xx, else the problem as an error.
    pub fn ok(self) -> Result<Value, DeviceError> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(DeviceError::Api {
                status: self.status,
                code: self.code().unwrap_or("").to_string(),
                detail: self.body["detail"].as_str().unwrap_or("").to_string(),
            })
        }
    }
}

/// The service's API, as a reader or an integration calls it.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

impl Client {
    pub fn new(base: &str, api_key: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, DeviceError> {
        let req = match &self.api_key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Answer, DeviceError> {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Result<Answer, DeviceError> {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, DeviceError> {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        self.send(req).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Answer, DeviceError> {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    /// A checkout's palm for a payment (`POST /v1/payments/{id}/palm`).
    pub async fn pay(
        &self,
        payment_id: &str,
        input: &str,
        capture: &SealedCaptureWire,
    ) -> Result<Answer, DeviceError> {
        self.post(
            &format!("/v1/payments/{payment_id}/palm"),
            &serde_json::json!({ "input": input, "capture": capture }),
            None,
        )
        .await
    }

    /// The service's HPKE public key.
    pub async fn service_key(&self) -> Result<HpkePublicKey, DeviceError> {
        let v = self.get("/v1/service-key").await?.ok()?;
        let k = v["public_key"]
            .as_str()
            .ok_or_else(|| DeviceError::Key("service key answer without public_key".into()))?;
        parse_service_public_key(k).map_err(DeviceError::Key)
    }

    /// Register a device with a fresh key; returns the device's key file contents.
    pub async fn register_device(&self, kind: DeviceKind, site: &str) -> Result<DeviceKeyFile, DeviceError> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let v = self
            .post(
                "/v1/devices",
                &json!({
                    "kind": kind,
                    "site": site,
                    "public_key": B64.encode(key.verifying_key().to_bytes()),
                }),
                Some(&openpalm_domain::ids::new_id("idem")),
            )
            .await?
            .ok()?;
        let device_id = v["id"]
            .as_str()
            .ok_or_else(|| DeviceError::Key("device answer without id".into()))?
            .to_string();
        Ok(DeviceKeyFile { device_id, key })
    }

    /// The current consent text version.
    pub async fn consent_version(&self) -> Result<i64, DeviceError> {
        let v = self.get("/v1/consent-texts/current").await?.ok()?;
        v["version"]
            .as_i64()
            .ok_or_else(|| DeviceError::Key("consent text without version".into()))
    }

    /// Enroll one person: consent to `version`, captures per hand.
    pub async fn enroll(
        &self,
        idempotency_key: &str,
        consent_version: i64,
        input: &str,
        hands: &[(HandSide, Vec<SealedCaptureWire>)],
        links: &[(String, String)],
    ) -> Result<Answer, DeviceError> {
        let body = json!({
            "consent": {"text_version": consent_version, "accepted": true},
            "input": input,
            "hands": hands.iter().map(|(h, c)| json!({"hand": h, "captures": c})).collect::<Vec<_>>(),
            "links": links.iter().map(|(k, v)| json!({"kind": k, "value": v})).collect::<Vec<_>>(),
        });
        self.post("/v1/enrollments", &body, Some(idempotency_key)).await
    }

    /// Identify from one capture.
    pub async fn identify(&self, input: &str, capture: &SealedCaptureWire) -> Result<Answer, DeviceError> {
        self.post(
            "/v1/identifications",
            &json!({"input": input, "capture": capture}),
            None,
        )
        .await
    }

    /// A palm at an entry gate of `event_id`: admit or deny.
    pub async fn enter(
        &self,
        event_id: &str,
        input: &str,
        capture: &SealedCaptureWire,
    ) -> Result<Answer, DeviceError> {
        self.gate("/v1/entries", event_id, input, capture).await
    }

    /// A palm at an exit gate of `event_id`.
    pub async fn exit(
        &self,
        event_id: &str,
        input: &str,
        capture: &SealedCaptureWire,
    ) -> Result<Answer, DeviceError> {
        self.gate("/v1/exits", event_id, input, capture).await
    }

    async fn gate(
        &self,
        path: &str,
        event_id: &str,
        input: &str,
        capture: &SealedCaptureWire,
    ) -> Result<Answer, DeviceError> {
        let body = json!({"event_id": event_id, "input": input, "capture": capture});
        self.post(path, &body, None).await
    }
}
