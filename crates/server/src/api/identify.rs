//! Identification at a gate or checkout: one sealed capture in, a decision out, in the
//! caller's business scope only, written to the match log.

use crate::api::enroll::Input;
use crate::api::people::link_view;
use crate::api::people::LinkView;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::capture;
use crate::matcher::Candidate;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::decision::{Decision, DecisionPolicy};
use openpalm_domain::ids::{new_id, prefix, Purpose};
use openpalm_domain::model::MatchLogEntry;
use openpalm_domain::protocol::SealedCaptureWire;
use openpalm_engine::IDENTIFICATION_THRESHOLD;
use serde::{Deserialize, Serialize};

/// The person identified, as the caller's business knows them.
#[derive(Serialize, schemars::JsonSchema)]
pub struct IdentifiedPerson {
    pub pseudonymous_id: String,
    pub links: Vec<LinkView>,
}

/// The decision on one capture.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Identification {
    pub identification_id: String,
    pub decision: Decision,
    /// The best score on a match, else 0.
    pub score: f32,
    /// `null` unless the decision is a match.
    pub person: Option<IdentifiedPerson>,
    pub device_id: String,
    pub site: String,
    pub at: i64,
    /// Quality of the capture, 0..1.
    pub quality: f32,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyRequest {
    pub input: Input,
    pub capture: SealedCaptureWire,
}

/// `POST /v1/identifications`
pub async fn identify(
    State(state): State<AppState>,
    auth: Auth,
    body: ApiJson<IdentifyRequest>,
) -> Result<Json<Identification>, ApiError> {
    let caller = auth.require(Scope::Identify)?.clone();
    let req = body.value;
    let (device, captures) = capture::verify(
        &state,
        &caller,
        std::slice::from_ref(&req.capture),
        Purpose::Identify,
    )
    .await?;
    let extraction = capture::extract_all(&state, captures, req.input.kind())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("identify", "no extraction"))?;
    let probe = extraction.template;
    let candidates: Vec<Candidate> =
        crate::matcher::search(&state, probe, Some(caller.business_id.clone()), 2).await?;
    let policy = DecisionPolicy {
        threshold: IDENTIFICATION_THRESHOLD,
        ambiguity_margin: state.config.ambiguity_margin,
    };
    let scores: Vec<f32> = candidates.iter().map(|c| c.score).collect();
    let (decision, _) = policy.decide(&scores);
    let best = candidates.first().copied();
    let person_id = match (decision, best) {
        (Decision::Match, Some(c)) => {
            let dir = state
                .directory
                .read()
                .map_err(|_| ApiError::internal("directory", "lock poisoned"))?;
            Some(
                dir.person_ids
                    .get(&c.person)
                    .cloned()
                    .ok_or_else(|| ApiError::internal("directory", "matched person unknown"))?,
            )
        }
        _ => None,
    };
    let entry = MatchLogEntry {
        id: new_id(prefix::IDENTIFICATION),
        person_id: person_id.clone(),
        business_id: caller.business_id.clone(),
        device_id: device.id.clone(),
        site: device.site.clone(),
        // The service clock (tests move it: dormancy counts from the last identification).
        at: state.clock_now(),
        decision,
        score: best.map(|c| c.score).unwrap_or(0.0),
        event_id: None,
        outcome: None,
    };
    state.store.insert_match_log(&entry).await?;
    state.metrics.decision("identification", decision.as_str());
    let person = match &person_id {
        Some(pid) => {
            let m = state
                .store
                .membership(&caller.business_id, pid)
                .await?
                .ok_or_else(|| ApiError::internal("membership", "scoped person without membership"))?;
            let links = state.store.links(&caller.business_id, pid).await?;
            Some(IdentifiedPerson {
                pseudonymous_id: m.pseudonymous_id,
                links: links.iter().map(link_view).collect(),
            })
        }
        None => None,
    };
    Ok(Json(Identification {
        identification_id: entry.id,
        decision,
        score: if decision == Decision::Match {
            entry.score
        } else {
            0.0
        },
        person,
        device_id: entry.device_id,
        site: entry.site,
        at: entry.at,
        quality: extraction.quality.score,
    }))
}
