//! The reader agent: the local process behind a reader's screen (`openpalm reader`, and the
//! readers of `openpalm demo`).
//!
//! A kiosk, a gate or a checkout is a screen and a camera on a small computer. The screen is
//! a web page (`openpalm-ui`'s kiosk, gate and checkout) that this agent serves on the
//! reader itself; the page hands each image it captured to the agent, the agent checks it
//! with the engine for live guidance (move closer, spread your fingers, ...), and seals and
//! signs it with the device's key before anything leaves the reader. A raw capture never
//! travels to the service unsealed, and the agent keeps nothing: images live in the request
//! that carries them and are wiped when it is answered.
//!
//! The agent holds what a reader's integration holds: each station's device key and the
//! API key of the business that runs it. It should listen on loopback only (the page and the
//! agent are one device).

use crate::{Client, DeviceError, DeviceKeyFile, Reader};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openpalm_domain::ids::{HandSide, Purpose};
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_engine::{Engine, InputKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

/// Largest request the agent takes (a kiosk sends up to six images at once).
const MAX_BODY: usize = 64 << 20;

/// One station of the reader: a device of a business, and that business's API key.
#[derive(Clone)]
pub struct Station {
    /// The business's name, as the screen shows it.
    pub business: String,
    pub api_key: String,
    pub device_id: String,
    pub key: ed25519_dalek::SigningKey,
}

impl Station {
    pub fn new(business: &str, api_key: &str, device: &DeviceKeyFile) -> Station {
        Station {
            business: business.to_string(),
            api_key: api_key.to_string(),
            device_id: device.device_id.clone(),
            key: device.key.clone(),
        }
    }
}

/// What this reader is: any of a kiosk (with an optional partner business a person may also
/// join there, with its own consent, to link a card), a gate of one event, a checkout.
#[derive(Clone, Default)]
pub struct AgentConfig {
    /// The service's base URL.
    pub service: String,
    pub kiosk: Option<Station>,
    /// A second business at the same kiosk (a store): joining it is a separate, optional
    /// consent, and the card is linked there.
    pub kiosk_partner: Option<Station>,
    /// A gate and the event it admits to.
    pub gate: Option<(Station, String)>,
    /// A checkout and the currency its till charges in.
    pub checkout: Option<(Station, String)>,
    /// What the camera gives by default: `hand` or `roi`.
    pub default_input: String,
}

/// A running agent's shared state.
#[derive(Clone)]
pub struct Agent {
    cfg: Arc<AgentConfig>,
    engine: Arc<Engine>,
    service_key: Arc<openpalm_domain::protocol::HpkePublicKey>,
}

impl Agent {
    /// Fetch the service key the reader seals to.
    pub async fn connect(cfg: AgentConfig) -> Result<Agent, DeviceError> {
        let service_key = Client::new(&cfg.service, None).service_key().await?;
        Ok(Agent {
            cfg: Arc::new(cfg),
            engine: Arc::new(Engine::default()),
            service_key: Arc::new(service_key),
        })
    }

    fn reader(&self, s: &Station) -> Reader {
        Reader::new(
            s.device_id.clone(),
            s.key.clone(),
            self.service_key.as_ref().clone(),
        )
    }

    fn client(&self, s: &Station) -> Client {
        Client::new(&self.cfg.service, Some(s.api_key.clone()))
    }
}

/// An error the page shows: a stable code and a line for the person.
#[derive(Debug, Serialize)]
pub struct AgentProblem {
    pub code: String,
    pub detail: String,
    #[serde(skip)]
    status: StatusCode,
}

impl AgentProblem {
    fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> AgentProblem {
        AgentProblem {
            code: code.to_string(),
            detail: detail.into(),
            status,
        }
    }
}

impl From<DeviceError> for AgentProblem {
    fn from(e: DeviceError) -> AgentProblem {
        match e {
            DeviceError::Api { status, code, detail } => AgentProblem::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                &code,
                detail,
            ),
            DeviceError::Http(e) => AgentProblem::new(
                StatusCode::BAD_GATEWAY,
                "service_unreachable",
                format!("the service cannot be reached: {e}"),
            ),
            e => AgentProblem::new(StatusCode::INTERNAL_SERVER_ERROR, "reader_error", e.to_string()),
        }
    }
}

impl IntoResponse for AgentProblem {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

type AgentResult<T> = Result<Json<T>, AgentProblem>;

/// `GET /reader/info`: what this reader does, for the pages.
#[derive(Debug, Serialize)]
pub struct Info {
    pub kiosk: Option<KioskInfo>,
    pub gate: Option<GateInfo>,
    pub checkout: Option<CheckoutInfo>,
    pub default_input: String,
}

#[derive(Debug, Serialize)]
pub struct KioskInfo {
    pub business: String,
    pub partner: Option<String>,
    pub consent_version: i64,
    pub consent_text: String,
}

#[derive(Debug, Serialize)]
pub struct GateInfo {
    pub business: String,
    pub event_id: String,
    pub event_name: String,
}

#[derive(Debug, Serialize)]
pub struct CheckoutInfo {
    pub business: String,
    pub currency: String,
}

async fn info(State(a): State<Agent>) -> AgentResult<Info> {
    let kiosk = match &a.cfg.kiosk {
        Some(k) => {
            let text = a.client(k).get("/v1/consent-texts/current").await?.ok()?;
            Some(KioskInfo {
                business: k.business.clone(),
                partner: a.cfg.kiosk_partner.as_ref().map(|p| p.business.clone()),
                consent_version: text["version"].as_i64().unwrap_or(0),
                consent_text: text["text"].as_str().unwrap_or("").to_string(),
            })
        }
        None => None,
    };
    let gate = match &a.cfg.gate {
        Some((s, event)) => {
            let e = a.client(s).get(&format!("/v1/events/{event}")).await?.ok()?;
            Some(GateInfo {
                business: s.business.clone(),
                event_id: event.clone(),
                event_name: e["name"].as_str().unwrap_or(event).to_string(),
            })
        }
        None => None,
    };
    let checkout = a.cfg.checkout.as_ref().map(|(s, c)| CheckoutInfo {
        business: s.business.clone(),
        currency: c.clone(),
    });
    Ok(Json(Info {
        kiosk,
        gate,
        checkout,
        default_input: a.cfg.default_input.clone(),
    }))
}

/// An image as the page sends it: base64 of the file's bytes (PNG, JPEG or BMP).
#[derive(Deserialize)]
pub struct ImageIn {
    pub image: String,
    /// `hand` (a whole open hand) or `roi` (a palm-centre crop).
    #[serde(default)]
    pub input: Option<String>,
}

fn decode_image(b64: &str) -> Result<Zeroizing<Vec<u8>>, AgentProblem> {
    let raw = b64.split_once("base64,").map(|(_, r)| r).unwrap_or(b64);
    B64.decode(raw.trim()).map(Zeroizing::new).map_err(|_| {
        AgentProblem::new(
            StatusCode::BAD_REQUEST,
            "invalid_image",
            "the image is not base64",
        )
    })
}

fn input_kind(a: &Agent, input: &Option<String>) -> Result<(&'static str, InputKind), AgentProblem> {
    match input.as_deref().unwrap_or(&a.cfg.default_input) {
        "hand" => Ok(("hand", InputKind::Hand)),
        "roi" => Ok(("roi", InputKind::Roi)),
        other => Err(AgentProblem::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("input must be hand or roi, not {other:?}"),
        )),
    }
}

/// `POST /reader/check`: is this capture usable, and if not, what should the person do.
#[derive(Debug, Serialize)]
pub struct Check {
    pub usable: bool,
    /// The engine's reason when not usable (`fingers_not_spread`, `too_dark`, ...).
    pub code: Option<String>,
    /// The line the screen shows.
    pub guidance: String,
    /// The engine's quality score in [0, 1] when usable.
    pub quality: Option<f32>,
    pub check_ms: f64,
}

async fn check(State(a): State<Agent>, Json(req): Json<ImageIn>) -> AgentResult<Check> {
    let bytes = decode_image(&req.image)?;
    let (_, kind) = input_kind(&a, &req.input)?;
    let engine = a.engine.clone();
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || engine.extract(&bytes, kind).map(|e| e.quality.score))
        .await
        .map_err(|e| AgentProblem::new(StatusCode::INTERNAL_SERVER_ERROR, "reader_error", e.to_string()))?;
    let check_ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(Json(match out {
        Ok(q) => Check {
            usable: true,
            code: None,
            guidance: "Good capture: hold still".into(),
            quality: Some(q),
            check_ms,
        },
        Err(e) => Check {
            usable: false,
            code: Some(e.code().to_string()),
            guidance: guidance_line(&e),
            quality: None,
            check_ms,
        },
    }))
}

/// The engine's reason as a line for the person (its message after the colon, capitalised).
fn guidance_line(e: &openpalm_engine::ExtractError) -> String {
    match e {
        openpalm_engine::ExtractError::Decode(_) => "This file is not an image the reader can read".into(),
        openpalm_engine::ExtractError::Acquire(a) => {
            let text = a.to_string();
            let line = text.split_once(": ").map(|(_, r)| r).unwrap_or(&text);
            let mut c = line.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
    }
}

/// `POST /reader/enrollments`: a person's captures, consent and links from the kiosk page.
#[derive(Deserialize)]
pub struct EnrollIn {
    pub consent_version: i64,
    /// The person ticked the agreement to the text of `consent_version`.
    pub accepted: bool,
    #[serde(default)]
    pub input: Option<String>,
    pub hands: Vec<HandIn>,
    #[serde(default)]
    pub member_id: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// Also join the kiosk's partner business (its own consent) and link this sandbox card
    /// token there.
    #[serde(default)]
    pub partner: Option<PartnerIn>,
}

#[derive(Deserialize)]
pub struct HandIn {
    pub hand: HandSide,
    pub images: Vec<String>,
}

#[derive(Deserialize)]
pub struct PartnerIn {
    pub accepted: bool,
    pub card_token: String,
}

#[derive(Debug, Serialize)]
pub struct Enrolled {
    /// The kiosk business's pseudonymous ID for the person.
    pub pseudonymous_id: String,
    pub business: String,
    /// The partner's (another pseudonym: businesses cannot join their data).
    pub partner: Option<Joined>,
    /// Why joining the partner failed, when it did: the enrollment itself stands.
    pub partner_error: Option<AgentProblem>,
    pub enroll_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Joined {
    pub business: String,
    pub pseudonymous_id: String,
}

async fn enroll(State(a): State<Agent>, Json(req): Json<EnrollIn>) -> AgentResult<Enrolled> {
    let kiosk =
        a.cfg.kiosk.as_ref().ok_or_else(|| {
            AgentProblem::new(StatusCode::NOT_FOUND, "no_kiosk", "this reader is not a kiosk")
        })?;
    if !req.accepted {
        return Err(AgentProblem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "consent_required",
            "the person has not agreed to the consent text",
        ));
    }
    let (input, _) = input_kind(&a, &req.input)?;
    let reader = a.reader(kiosk);
    let mut hands = Vec::new();
    for h in &req.hands {
        let mut captures = Vec::new();
        for img in &h.images {
            captures.push(reader.seal(Purpose::Enroll, &decode_image(img)?)?);
        }
        hands.push((h.hand, captures));
    }
    let mut links = Vec::new();
    if let Some(m) = req.member_id.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        links.push(("member_id".to_string(), m.to_string()));
    }
    if let Some(p) = req.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        links.push(("phone".to_string(), p.to_string()));
    }
    let t = Instant::now();
    let idem = openpalm_domain::ids::new_id("kiosk");
    let v = a
        .client(kiosk)
        .enroll(&idem, req.consent_version, input, &hands, &links)
        .await?
        .ok()?;
    let pseudonymous_id = v["person"]["pseudonymous_id"].as_str().unwrap_or("").to_string();
    let (partner, partner_error) = match (&req.partner, &a.cfg.kiosk_partner) {
        (Some(p), Some(station)) if p.accepted => {
            match join_partner(&a, station, &req, input, &p.card_token).await {
                Ok(j) => (Some(j), None),
                Err(e) => (None, Some(e)),
            }
        }
        (Some(p), None) if p.accepted => (
            None,
            Some(AgentProblem::new(
                StatusCode::NOT_FOUND,
                "no_partner",
                "this kiosk has no partner business",
            )),
        ),
        _ => (None, None),
    };
    Ok(Json(Enrolled {
        pseudonymous_id,
        business: kiosk.business.clone(),
        partner,
        partner_error,
        enroll_ms: t.elapsed().as_secs_f64() * 1e3,
    }))
}

/// The person joins the kiosk's partner with one of their captures, sealed again by the
/// partner's kiosk device (a nonce is good once): the partner finds them 1:N and links the
/// card there.
async fn join_partner(
    a: &Agent,
    station: &Station,
    req: &EnrollIn,
    input: &str,
    card_token: &str,
) -> Result<Joined, AgentProblem> {
    let first = req
        .hands
        .first()
        .and_then(|h| h.images.first())
        .ok_or_else(|| AgentProblem::new(StatusCode::BAD_REQUEST, "no_captures", "no captures"))?;
    let capture = a.reader(station).seal(Purpose::Enroll, &decode_image(first)?)?;
    let mut links = vec![json!({"kind": "payment_token", "value": card_token})];
    if let Some(phone) = req.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        links.push(json!({"kind": "phone", "value": phone}));
    }
    let body = json!({
        "consent": {"text_version": req.consent_version, "accepted": true},
        "input": input,
        "capture": capture,
        "links": links,
    });
    let j = a
        .client(station)
        .post(
            "/v1/memberships",
            &body,
            Some(&openpalm_domain::ids::new_id("kiosk")),
        )
        .await?
        .ok()?;
    Ok(Joined {
        business: station.business.clone(),
        pseudonymous_id: j["person"]["pseudonymous_id"].as_str().unwrap_or("").to_string(),
    })
}

/// The service's answer, and how long the reader waited for it.
#[derive(Debug, Serialize)]
pub struct Relayed {
    /// HTTP status of the service's answer.
    pub status: u16,
    /// The service's answer as it gave it (`POST /v1/entries` or `/v1/payments/{id}/palm`).
    pub answer: Value,
    /// From sealing to the answer, at the reader.
    pub reader_ms: f64,
}

fn seal_one(
    a: &Agent,
    s: &Station,
    req: &ImageIn,
) -> Result<(&'static str, SealedCaptureWire), AgentProblem> {
    let (input, _) = input_kind(a, &req.input)?;
    let bytes = decode_image(&req.image)?;
    Ok((input, a.reader(s).seal(Purpose::Identify, &bytes)?))
}

/// `POST /reader/entries`: a palm at the gate.
async fn enter(State(a): State<Agent>, Json(req): Json<ImageIn>) -> AgentResult<Relayed> {
    let (station, event) =
        a.cfg.gate.as_ref().ok_or_else(|| {
            AgentProblem::new(StatusCode::NOT_FOUND, "no_gate", "this reader is not a gate")
        })?;
    let t = Instant::now();
    let (input, capture) = seal_one(&a, station, &req)?;
    let ans = a.client(station).enter(event, input, &capture).await?;
    Ok(Json(Relayed {
        status: ans.status,
        answer: ans.body,
        reader_ms: t.elapsed().as_secs_f64() * 1e3,
    }))
}

/// `POST /reader/payments`: the till's amount and the customer's palm.
#[derive(Deserialize)]
pub struct PayIn {
    /// Minor units of the till's currency.
    pub amount_minor: u64,
    #[serde(flatten)]
    pub palm: ImageIn,
}

async fn pay(State(a): State<Agent>, Json(req): Json<PayIn>) -> AgentResult<Relayed> {
    let (station, currency) = a.cfg.checkout.as_ref().ok_or_else(|| {
        AgentProblem::new(
            StatusCode::NOT_FOUND,
            "no_checkout",
            "this reader is not a checkout",
        )
    })?;
    let client = a.client(station);
    // The point of sale opens the payment; the checkout's palm then pays it.
    let order = openpalm_domain::ids::new_id("order");
    let payment = client
        .post(
            "/v1/payments",
            &json!({"device_id": station.device_id, "amount_minor": req.amount_minor,
                    "currency": currency, "order_reference": order}),
            Some(&order),
        )
        .await?
        .ok()?;
    let id = payment["id"].as_str().unwrap_or("").to_string();
    let t = Instant::now();
    let (input, capture) = seal_one(&a, station, &req.palm)?;
    let ans = client.pay(&id, input, &capture).await?;
    settle_if_approved(&client, &id, &ans).await?;
    Ok(Json(Relayed {
        status: ans.status,
        answer: ans.body,
        reader_ms: t.elapsed().as_secs_f64() * 1e3,
    }))
}

/// An approved payment is captured at once: the till hands the goods over.
async fn settle_if_approved(client: &Client, id: &str, ans: &crate::Answer) -> Result<(), AgentProblem> {
    if ans.status == 200 && ans.body["outcome"] == "approved" {
        client
            .post(&format!("/v1/payments/{id}/capture"), &json!({}), None)
            .await?
            .ok()?;
    }
    Ok(())
}

/// `POST /reader/payments/{id}/step-up`: the code the person typed on the checkout's pad.
#[derive(Deserialize)]
pub struct StepUpIn {
    pub code: String,
}

async fn step_up(
    State(a): State<Agent>,
    Path(id): Path<String>,
    Json(req): Json<StepUpIn>,
) -> AgentResult<Relayed> {
    let (station, _) = a.cfg.checkout.as_ref().ok_or_else(|| {
        AgentProblem::new(
            StatusCode::NOT_FOUND,
            "no_checkout",
            "this reader is not a checkout",
        )
    })?;
    if !id.starts_with("pay_") || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AgentProblem::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "not a payment ID",
        ));
    }
    let t = Instant::now();
    let ans = a
        .client(station)
        .post(
            &format!("/v1/payments/{id}/step-up"),
            &json!({"code": req.code}),
            None,
        )
        .await?;
    settle_if_approved(&a.client(station), &id, &ans).await?;
    Ok(Json(Relayed {
        status: ans.status,
        answer: ans.body,
        reader_ms: t.elapsed().as_secs_f64() * 1e3,
    }))
}

async fn asset(Path(name): Path<String>) -> Response {
    match openpalm_ui::asset(&name) {
        Some(a) => openpalm_ui::response(a),
        None => AgentProblem::new(StatusCode::NOT_FOUND, "no_such_file", "no such file").into_response(),
    }
}

/// The reader's pages and its `/reader/*` endpoints.
pub fn router(agent: Agent) -> Router {
    let mut r = Router::new()
        .route("/assets/{name}", get(asset))
        .route("/reader/info", get(info))
        .route("/reader/check", post(check))
        .route("/reader/enrollments", post(enroll))
        .route("/reader/entries", post(enter))
        .route("/reader/payments", post(pay))
        .route("/reader/payments/{id}/step-up", post(step_up));
    for page in openpalm_ui::READER_PAGES {
        if let Some(a) = openpalm_ui::asset(page.file) {
            r = r.route(page.path, get(move || async move { openpalm_ui::response(a) }));
        }
    }
    r.layer(DefaultBodyLimit::max(MAX_BODY)).with_state(agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpalm_engine::AcquireFailure;

    #[test]
    fn guidance_is_the_engines_advice_for_the_person() {
        let line = guidance_line(&AcquireFailure::FingersNotSpread.into());
        assert_eq!(line, "Open your hand and spread your fingers");
        let line = guidance_line(&AcquireFailure::TooDark.into());
        assert_eq!(line, "Move your hand closer to the light");
    }

    #[test]
    fn images_arrive_as_base64_or_data_urls() {
        assert_eq!(decode_image("aGk=").unwrap().as_slice(), b"hi");
        assert_eq!(
            decode_image("data:image/png;base64,aGk=").unwrap().as_slice(),
            b"hi"
        );
        assert_eq!(decode_image("not base64!").unwrap_err().code, "invalid_image");
    }
}
