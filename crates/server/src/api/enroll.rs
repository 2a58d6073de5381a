//! Enrollment at a kiosk: consent, at least three sealed captures per hand, quality gate,
//! consistency within each hand, 1:N duplicate check, encrypted templates, person created.
//! Requires `Idempotency-Key`: a replay returns the stored response; the same key with a
//! different body is refused (422).

use crate::api::people::LinkView;
use crate::api::people::{link_view, linked_event, make_link, LinkRequest};
use crate::auth::Auth;
use crate::body::{idempotency_key, ApiJson};
use crate::capture;
use crate::idempotency::{json_response, replay, request_hash};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use openpalm_domain::apikey::Scope;
use openpalm_domain::ids::{new_id, prefix, HandSide, Purpose};
use openpalm_domain::keys::DataKey;
use openpalm_domain::model::{
    check_hands, ConsentRecord, ConsentText, EncryptedTemplate, Membership, Person, MIN_CAPTURES_PER_HAND,
};
use openpalm_domain::now_unix;
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_engine::{InputKind, Template, DEFAULT_THRESHOLD};
use openpalm_store::{EnrollmentWrite, IdempotencyRecord};
use serde::{Deserialize, Serialize};

/// A person, as the caller's business knows them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct PersonRef {
    pub pseudonymous_id: String,
}

/// The consent recorded.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ConsentGivenView {
    pub text_version: i64,
    pub given_at: i64,
    pub device_id: String,
    pub site: String,
}

impl From<&ConsentRecord> for ConsentGivenView {
    fn from(c: &ConsentRecord) -> Self {
        ConsentGivenView {
            text_version: c.text_version,
            given_at: c.given_at,
            device_id: c.device_id.clone(),
            site: c.site.clone(),
        }
    }
}

/// One enrolled hand.
#[derive(Serialize, schemars::JsonSchema)]
pub struct HandEnrolled {
    pub hand: HandSide,
    pub templates: usize,
    /// Quality of each capture, 0..1.
    pub quality: Vec<f32>,
}

/// A new person.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Enrollment {
    pub enrollment_id: String,
    pub person: PersonRef,
    pub consent: ConsentGivenView,
    pub hands: Vec<HandEnrolled>,
    pub links: Vec<LinkView>,
}

/// Most captures accepted per hand.
pub const MAX_CAPTURES_PER_HAND: usize = 10;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentGiven {
    /// The version of the text shown (`GET /v1/consent-texts/current`).
    pub text_version: i64,
    /// Must be `true`: the person accepted it.
    #[schemars(extend("const" = true))]
    pub accepted: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Roi,
    Hand,
}

impl Input {
    pub fn kind(&self) -> InputKind {
        match self {
            Input::Roi => InputKind::Roi,
            Input::Hand => InputKind::Hand,
        }
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandCaptures {
    pub hand: HandSide,
    /// 3..10 captures of this hand, from one kiosk.
    #[schemars(length(min = 3, max = 10))]
    pub captures: Vec<SealedCaptureWire>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub consent: ConsentGiven,
    /// What the reader's captures show: a palm crop (`roi`) or a whole hand (`hand`).
    pub input: Input,
    /// One or both hands, each once.
    #[schemars(length(min = 1, max = 2))]
    pub hands: Vec<HandCaptures>,
    #[serde(default)]
    pub links: Vec<LinkRequest>,
}

/// `POST /v1/enrollments`
pub async fn enroll(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<EnrollRequest>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Enroll)?.clone();
    let idem = idempotency_key(&headers)?;
    let hash = request_hash("POST /v1/enrollments", "", &body.canonical_hash);
    if let Some(prev) = state.store.idempotency(&caller.business_id, &idem).await? {
        return replay(&state, &caller.business_id, &idem, prev, &hash);
    }
    let req = body.value;

    // Rules that need no capture.
    let current = check_consent(&state, &req.consent).await?;
    let sides: Vec<HandSide> = req.hands.iter().map(|h| h.hand).collect();
    check_hands(&sides).map_err(|m| ApiError::unprocessable("invalid_hands", m))?;
    for h in &req.hands {
        if h.captures.len() < MIN_CAPTURES_PER_HAND || h.captures.len() > MAX_CAPTURES_PER_HAND {
            return Err(ApiError::unprocessable(
                "not_enough_captures",
                format!(
                    "the {} hand needs {MIN_CAPTURES_PER_HAND}..{MAX_CAPTURES_PER_HAND} captures, {} given",
                    h.hand.as_str(),
                    h.captures.len()
                ),
            )
            .with("hand", h.hand.as_str()));
        }
    }
    let mut links = Vec::new();
    for l in &req.links {
        links.push(make_link(&state, &caller.business_id, "", l)?);
    }

    // Captures: checked together (one kiosk), nonces recorded, then opened and extracted.
    let wires: Vec<SealedCaptureWire> = req
        .hands
        .iter()
        .flat_map(|h| h.captures.iter().cloned())
        .collect();
    let (device, captures) = capture::verify(&state, &caller, &wires, Purpose::Enroll).await?;
    let extractions = capture::extract_all(&state, captures, req.input.kind()).await?;

    // Each hand's captures must show one palm: the graph of pairs scoring at or above the
    // threshold must connect them all (a foreign capture matches none of the others).
    let mut per_hand: Vec<(HandSide, Vec<Template>, Vec<f32>)> = Vec::new();
    let mut it = extractions.into_iter();
    for h in &req.hands {
        let ex: Vec<_> = it.by_ref().take(h.captures.len()).collect();
        let templates: Vec<Template> = ex.iter().map(|e| e.template.clone()).collect();
        if let Some(outsider) = disconnected(&state, &templates) {
            return Err(ApiError::unprocessable(
                "inconsistent_captures",
                format!(
                    "capture {outsider} of the {} hand does not match the others as the same palm; capture again",
                    h.hand.as_str()
                ),
            )
            .with("hand", h.hand.as_str())
            .with("capture_index", outsider));
        }
        per_hand.push((h.hand, templates, ex.iter().map(|e| e.quality.score).collect()));
    }

    // Duplicate check, write and gallery insert as one step.
    let _guard = state.enroll_lock.lock().await;
    if let Some(prev) = state.store.idempotency(&caller.business_id, &idem).await? {
        return replay(&state, &caller.business_id, &idem, prev, &hash);
    }
    // The 1:N duplicate check scans everyone enrolled in the key's environment (a test kiosk
    // never learns whether a live person exists): on the blocking pool, so that the
    // async threads keep answering identifications meanwhile (they only share the matcher's
    // read lock with it). The enrollment lock serialises enrollments only.
    let probes: Vec<(HandSide, Template)> = per_hand
        .iter()
        .flat_map(|(side, templates, _)| templates.iter().map(move |t| (*side, t.clone())))
        .collect();
    let st = state.clone();
    let everyone = caller.environment.everyone_scope();
    let duplicate: Option<HandSide> = tokio::task::spawn_blocking(move || {
        let matcher = st
            .matcher
            .read()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
        for (side, t) in &probes {
            let found = matcher
                .identify(t, Some(everyone), 1)
                .map_err(|e| ApiError::internal("matcher", e))?;
            if found.first().is_some_and(|best| best.score >= DEFAULT_THRESHOLD) {
                return Ok::<_, ApiError>(Some(*side));
            }
        }
        Ok(None)
    })
    .await
    .map_err(|e| ApiError::internal("duplicate check", e))??;
    if let Some(side) = duplicate {
        return Err(ApiError::conflict(
            "already_enrolled",
            "this palm is already enrolled; a person enrolls once and links businesses to it",
        )
        .with("hand", side.as_str()));
    }
    let now = now_unix();
    let seq = state.store.next_person_seq().await?;
    let person_id = new_id(prefix::PERSON);
    let data_key = DataKey::generate();
    let mut sealed = Vec::new();
    for (side, templates, _) in &per_hand {
        for (i, t) in templates.iter().enumerate() {
            let index = i as i64;
            let bytes = zeroize::Zeroizing::new(t.to_bytes());
            sealed.push(EncryptedTemplate {
                person_id: person_id.clone(),
                hand: *side,
                index,
                sealed: data_key.encrypt(&EncryptedTemplate::aad(&person_id, *side, index), &bytes),
            });
        }
    }
    let pseudonymous_id = state.keys.pseudonymous_id(&caller.business_id, &person_id);
    for l in &mut links {
        l.person_id = person_id.clone();
    }
    let consent = ConsentRecord {
        person_id: person_id.clone(),
        business_id: caller.business_id.clone(),
        text_version: current.version,
        given_at: now,
        device_id: device.id.clone(),
        site: device.site.clone(),
    };
    let response = Enrollment {
        enrollment_id: new_id(prefix::ENROLLMENT),
        person: PersonRef {
            pseudonymous_id: pseudonymous_id.clone(),
        },
        consent: ConsentGivenView::from(&consent),
        hands: per_hand
            .iter()
            .map(|(side, t, q)| HandEnrolled {
                hand: *side,
                templates: t.len(),
                quality: q.clone(),
            })
            .collect(),
        links: links.iter().map(link_view).collect(),
    };
    let response_text = serde_json::to_string(&response).map_err(|e| ApiError::internal("response", e))?;
    let events = links.iter().map(|l| linked_event(&pseudonymous_id, l)).collect();
    let write = EnrollmentWrite {
        person: Person {
            id: person_id.clone(),
            seq,
            wrapped_key: state.keys.wrap_data_key(&person_id, &data_key),
            created_at: now,
            environment: caller.environment,
        },
        templates: sealed,
        consent,
        membership: Membership {
            person_id: person_id.clone(),
            business_id: caller.business_id.clone(),
            pseudonymous_id,
            created_at: now,
        },
        links,
        events,
        idempotency_key: idem,
        idempotency: IdempotencyRecord {
            request_hash: hash,
            status: StatusCode::CREATED.as_u16(),
            response: response_text.clone(),
        },
    };
    match state.store.enroll(&write).await {
        Ok(()) => {}
        Err(openpalm_store::StoreError::IdempotencyKeyTaken) => {
            // Another instance of the service committed this key first; ours wrote nothing.
            let prev = state
                .store
                .idempotency(&caller.business_id, &write.idempotency_key)
                .await?
                .ok_or_else(|| ApiError::internal("idempotency", "key taken but no record"))?;
            return replay(
                &state,
                &caller.business_id,
                &write.idempotency_key,
                prev,
                &write.idempotency.request_hash,
            );
        }
        Err(e) => return Err(e.into()),
    }
    state.webhook_wakeup.notify_one();
    let seq_u = u64::try_from(seq).map_err(|e| ApiError::internal("person seq", e))?;
    {
        let mut matcher = state
            .matcher
            .write()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
        state
            .directory
            .write()
            .map_err(|_| ApiError::internal("directory", "lock poisoned"))?
            .insert(seq_u, person_id);
        matcher
            .add(
                seq_u,
                per_hand
                    .into_iter()
                    .flat_map(|(side, t, _)| t.into_iter().map(move |t| (side, t)))
                    .collect(),
            )
            .map_err(|e| ApiError::internal("matcher", e))?;
        matcher.admit(&caller.business_id, seq_u);
        matcher.admit(caller.environment.everyone_scope(), seq_u);
    }
    Ok(json_response(StatusCode::CREATED, &response_text, false))
}

/// Consent must be given, to the current text; returns that text.
pub async fn check_consent(state: &AppState, consent: &ConsentGiven) -> Result<ConsentText, ApiError> {
    if !consent.accepted {
        return Err(ApiError::unprocessable(
            "consent_required",
            "the person must accept the consent text first",
        ));
    }
    let current = state
        .store
        .current_consent_text()
        .await?
        .ok_or_else(|| ApiError::internal("consent", "no consent text published"))?;
    if consent.text_version != current.version {
        return Err(ApiError::unprocessable(
            "consent_text_outdated",
            format!(
                "consent was given to text version {}, the current one is {}: show the current text",
                consent.text_version, current.version
            ),
        )
        .with("current_version", current.version));
    }
    Ok(current)
}

/// The first capture not connected to capture 0 through pairs that score at or above the
/// threshold, if any.
fn disconnected(state: &AppState, templates: &[Template]) -> Option<usize> {
    let n = templates.len();
    let mut reached = vec![false; n];
    let mut stack = vec![0usize];
    if n > 0 {
        reached[0] = true;
    }
    while let Some(i) = stack.pop() {
        for j in 0..n {
            if !reached[j] && state.engine.score(&templates[i], &templates[j]) >= DEFAULT_THRESHOLD {
                reached[j] = true;
                stack.push(j);
            }
        }
    }
    reached.iter().position(|r| !r)
}
