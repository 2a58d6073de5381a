//! Joining a business: a person already enrolled (at any business) becomes a member of the
//! calling business, present at its kiosk: consent, one sealed capture matched against
//! everyone enrolled, then a pseudonymous ID of this business and its links. The capture is
//! the person's presence; the answer reveals nothing of their other businesses.

use crate::api::enroll::{check_consent, ConsentGiven, ConsentGivenView, Input, PersonRef};
use crate::api::people::{link_view, linked_event, make_link, LinkRequest, LinkView};
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::capture;
use crate::idempotency::{self, request_hash, store_error, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use openpalm_domain::apikey::Scope;
use openpalm_domain::decision::{Decision, DecisionPolicy};
use openpalm_domain::ids::Purpose;
use openpalm_domain::model::{Caller, ConsentRecord, Membership};
use openpalm_domain::now_unix;
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_engine::IDENTIFICATION_THRESHOLD;
use openpalm_store::IdempotencyWrite;
use serde::{Deserialize, Serialize};

/// The person joined this business.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Joined {
    pub person: PersonRef,
    pub consent: ConsentGivenView,
    pub links: Vec<LinkView>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub consent: ConsentGiven,
    pub input: Input,
    pub capture: SealedCaptureWire,
    #[serde(default)]
    pub links: Vec<LinkRequest>,
}

/// `POST /v1/memberships`
pub async fn join(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<JoinRequest>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Enroll)?.clone();
    let hash = request_hash("POST /v1/memberships", "", &body.canonical_hash);
    let req = body.value;
    let r = idempotency::create(&state, &caller.business_id, &headers, hash, |idem| {
        run(&state, &caller, req, idem)
    })
    .await;
    state.webhook_wakeup.notify_one();
    r
}

async fn run(
    state: &AppState,
    caller: &Caller,
    req: JoinRequest,
    idem: Idem,
) -> Result<IdempotencyWrite, ApiError> {
    let text = check_consent(state, &req.consent).await?;
    let mut links = Vec::new();
    for l in &req.links {
        links.push(make_link(state, &caller.business_id, "", l)?);
    }
    let (device, captures) =
        capture::verify(state, caller, std::slice::from_ref(&req.capture), Purpose::Enroll).await?;
    let extraction = capture::extract_all(state, captures, req.input.kind())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("join", "no extraction"))?;
    let _guard = state.enroll_lock.lock().await;
    // Among everyone of the key's environment: a test kiosk never finds a live person.
    let everyone = caller.environment.everyone_scope().to_string();
    let candidates = crate::matcher::search(state, extraction.template.clone(), Some(everyone), 2).await?;
    let policy = DecisionPolicy {
        threshold: IDENTIFICATION_THRESHOLD,
        ambiguity_margin: state.config.ambiguity_margin,
    };
    let scores: Vec<f32> = candidates.iter().map(|c| c.score).collect();
    let seq = match (policy.decide(&scores).0, candidates.first()) {
        (Decision::Match, Some(c)) => c.person,
        (Decision::Ambiguous, _) => {
            return Err(ApiError::conflict(
                "ambiguous_palm",
                "this capture is too close to more than one enrolled palm; capture again",
            ))
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_enrolled",
                "this palm is not enrolled: enroll the person instead",
            ))
        }
    };
    let person_id = state
        .directory
        .read()
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?
        .person_ids
        .get(&seq)
        .cloned()
        .ok_or_else(|| ApiError::internal("directory", "matched person unknown"))?;
    let pseudonymous_id = state.keys.pseudonymous_id(&caller.business_id, &person_id);
    if state
        .store
        .membership(&caller.business_id, &person_id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "already_member",
            "this person is already a member of this business",
        )
        .with("pseudonymous_id", pseudonymous_id));
    }
    let now = now_unix();
    for l in &mut links {
        l.person_id = person_id.clone();
    }
    let consent = ConsentRecord {
        person_id: person_id.clone(),
        business_id: caller.business_id.clone(),
        text_version: text.version,
        given_at: now,
        device_id: device.id.clone(),
        site: device.site.clone(),
    };
    let membership = Membership {
        person_id,
        business_id: caller.business_id.clone(),
        pseudonymous_id: pseudonymous_id.clone(),
        created_at: now,
    };
    let response = Joined {
        person: PersonRef {
            pseudonymous_id: pseudonymous_id.clone(),
        },
        consent: ConsentGivenView::from(&consent),
        links: links.iter().map(link_view).collect(),
    };
    let w = idem.write(StatusCode::CREATED, &response);
    let events: Vec<_> = links.iter().map(|l| linked_event(&pseudonymous_id, l)).collect();
    state
        .store
        .join(&membership, &consent, &links, Some(&w), &events)
        .await
        .map_err(|e| store_error(e, "conflict"))?;
    state
        .matcher
        .write()
        .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?
        .admit(&caller.business_id, seq);
    Ok(w)
}
