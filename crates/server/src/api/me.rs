//! The person's own side: sign in with a one-time code sent to the phone they linked, see
//! everything the service holds and did with their palm, export it, leave a business, opt in
//! or out of offers, and delete their data with a signed receipt.
//!
//! Sign-in never reveals whether a number is enrolled: the answer to `POST /v1/me/sign-in` is
//! the same either way, and a challenge for an unknown number can never be completed. Codes
//! live [`CODE_TTL_SECS`], allow [`MAX_CODE_ATTEMPTS`] tries, and are spent on use; sessions
//! last [`SESSION_TTL_SECS`] and can be ended. Every read here is of the signed-in person
//! only; no business sees any of it.

use crate::api::payments::view::PaymentView;
use crate::api::people::{erase_everywhere, ErasureReason};
use crate::auth::bearer;
use crate::body::ApiJson;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use openpalm_domain::ids::new_id;
use openpalm_domain::model::{normalise_link_value, LinkKind};
use openpalm_domain::person::{
    looks_like_session, new_code, new_session_token, SignedReceipt, CODE_TTL_SECS, MAX_CODE_ATTEMPTS,
    MAX_SIGN_INS_PER_WINDOW, SESSION_TTL_SECS, SIGN_IN_WINDOW_SECS,
};
use openpalm_store::{Challenge, Session};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A signed-in person.
pub struct PersonAuth {
    pub person_id: String,
    token_hash: String,
}

impl FromRequestParts<AppState> for PersonAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (person_id, token_hash) = crate::auth::limited_auth(parts, state, session(parts, state)).await?;
        crate::audit::ActorSlot::set(parts, "person".into(), Some(person_id.clone()));
        Ok(PersonAuth {
            person_id,
            token_hash,
        })
    }
}

/// The person and session hash behind a request's session token.
async fn session(parts: &Parts, state: &AppState) -> Result<(String, String), ApiError> {
    let token = bearer(parts)?;
    let refused = || {
        ApiError::unauthorized(
            "invalid_session",
            "unknown, expired or ended session: sign in again",
        )
    };
    if !looks_like_session(token) {
        return Err(refused());
    }
    let token_hash = state.keys.access_hash("session", token);
    let s = state.store.session(&token_hash).await?.ok_or_else(refused)?;
    if s.revoked_at.is_some() || state.clock_now() >= s.expires_at {
        return Err(refused());
    }
    match state.store.person_record(&s.person_id).await? {
        Some((_, true)) => Ok((s.person_id, token_hash)),
        _ => Err(refused()),
    }
}

/// A phone number as [`normalise_link_value`] takes it.
pub const PHONE_PATTERN: &str = r"^[ \t\n\r]*\+[ +\-().]*(?:[0-9][ +\-().]*){8,15}[ \t\n\r]*$";

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The phone number in international form, as linked at a business: `+`, then 8..15
    /// digits, spaces, `-`, `(`, `)` or `.` between them.
    #[schemars(regex(pattern = PHONE_PATTERN))]
    pub phone: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct SignInChallenge {
    pub challenge_id: String,
    pub expires_at: i64,
    /// The same words whether or not the number is enrolled.
    pub message: &'static str,
}

/// `POST /v1/me/sign-in`: a code is sent to the number if it is linked to someone.
pub async fn sign_in(
    State(state): State<AppState>,
    body: ApiJson<SignInRequest>,
) -> Result<(StatusCode, Json<SignInChallenge>), ApiError> {
    let phone = normalise_link_value(LinkKind::Phone, &body.value.phone)
        .map_err(|e| ApiError::unprocessable("invalid_phone", e.to_string()))?;
    let phone_hash = state.keys.phone_hash(&phone);
    let now = state.clock_now();
    let recent = state
        .store
        .challenges_since(&phone_hash, now - SIGN_IN_WINDOW_SECS)
        .await?;
    // Past the limit the answer does not change, but the challenge can never complete and
    // nothing is sent.
    let person = if recent >= MAX_SIGN_INS_PER_WINDOW {
        None
    } else {
        state.store.person_by_phone_hash(&phone_hash).await?
    };
    let id = new_id("chl");
    let code = new_code();
    let c = Challenge {
        id: id.clone(),
        phone_hash,
        person_id: person.clone(),
        code_hash: state.keys.access_hash("code", &format!("{id}:{code}")),
        attempts: 0,
        expires_at: now + CODE_TTL_SECS,
        used_at: None,
        created_at: now,
    };
    state.store.insert_challenge(&c).await?;
    if person.is_some() {
        state
            .codes
            .send(&phone, &code, c.expires_at)
            .map_err(|e| ApiError::internal("sign-in code", e))?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(SignInChallenge {
            challenge_id: id,
            expires_at: c.expires_at,
            message: "if this number is linked to an enrolled palm, a code was sent to it",
        }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub challenge_id: String,
    pub code: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct SessionView {
    /// `ops_...`: send as `Authorization: Bearer`; shown once.
    pub token: String,
    pub expires_at: i64,
}

/// `POST /v1/me/sessions`: the code for a session.
pub async fn open_session(
    State(state): State<AppState>,
    body: ApiJson<SessionRequest>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let req = body.value;
    let now = state.clock_now();
    let wrong = |left: u32| {
        ApiError::unauthorized("invalid_code", "wrong, expired or spent code").with("attempts_left", left)
    };
    let c = state
        .store
        .challenge(&req.challenge_id)
        .await?
        .ok_or_else(|| wrong(0))?;
    if c.used_at.is_some() || now >= c.expires_at || c.attempts >= MAX_CODE_ATTEMPTS {
        return Err(wrong(0));
    }
    let given = state
        .keys
        .access_hash("code", &format!("{}:{}", c.id, req.code.trim()));
    let same = given.len() == c.code_hash.len()
        && given
            .bytes()
            .zip(c.code_hash.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    let Some(person) = c.person_id.filter(|_| same) else {
        let attempts = state.store.challenge_missed(&c.id).await?;
        return Err(wrong(MAX_CODE_ATTEMPTS.saturating_sub(attempts)));
    };
    if !state.store.use_challenge(&c.id, now).await? {
        return Err(wrong(0));
    }
    let token = new_session_token();
    let s = Session {
        person_id: person,
        expires_at: now + SESSION_TTL_SECS,
        revoked_at: None,
        created_at: now,
    };
    state
        .store
        .insert_session(&state.keys.access_hash("session", &token), &s)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionView {
            token,
            expires_at: s.expires_at,
        }),
    ))
}

/// `DELETE /v1/me/session`: sign out.
pub async fn end_session(State(state): State<AppState>, me: PersonAuth) -> Result<StatusCode, ApiError> {
    state
        .store
        .revoke_session(&me.token_hash, state.clock_now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct HandView {
    pub hand: String,
    pub templates: u64,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct EnrollmentView {
    pub enrolled_at: i64,
    pub hands: Vec<HandView>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct ConsentView {
    pub business_id: String,
    pub business_name: String,
    pub text_version: i64,
    /// The exact text agreed to.
    pub text: String,
    pub given_at: i64,
    pub site: String,
    pub device_id: String,
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "PersonLinkView")]
pub struct LinkView {
    pub kind: LinkKind,
    /// The member ID or processor token; `null` for a phone (kept only as a keyed hash).
    pub value: Option<String>,
    pub created_at: i64,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct BusinessView {
    pub business_id: String,
    pub name: String,
    /// The ID this business knows the person by.
    pub pseudonymous_id: String,
    pub joined_at: i64,
    pub links: Vec<LinkView>,
    pub offers_opted_in: bool,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct PurchaseView {
    pub business_name: String,
    #[serde(flatten)]
    pub payment: PaymentView,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct EntryView {
    pub business_id: String,
    pub event_id: String,
    pub gate: Option<String>,
    pub direction: String,
    pub verdict: String,
    pub reason: Option<String>,
    pub at: i64,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct MatchView {
    pub business_id: String,
    pub business_name: String,
    pub device_id: String,
    pub site: String,
    pub at: i64,
    pub decision: String,
    pub outcome: Option<String>,
}

/// Everything the service holds about a person and did with their palm.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MeView {
    pub enrollment: EnrollmentView,
    pub consents: Vec<ConsentView>,
    pub businesses: Vec<BusinessView>,
    pub purchases: Vec<PurchaseView>,
    pub entries: Vec<EntryView>,
    /// Every identification of the palm: by which business, device, site, when, the decision.
    pub match_log: Vec<MatchView>,
    /// A cancellation in progress.
    pub cancellation: Option<CancellationView>,
    /// When the dormancy notice was sent, if it was (an identification cancels it).
    pub dormancy_notice_at: Option<i64>,
}

/// Business names, looked up once each.
#[derive(Default)]
struct Names(BTreeMap<String, String>);

impl Names {
    async fn of(&mut self, state: &AppState, id: &str) -> Result<String, ApiError> {
        if let Some(n) = self.0.get(id) {
            return Ok(n.clone());
        }
        let n = state
            .store
            .business(id)
            .await?
            .map(|b| b.name)
            .unwrap_or_default();
        self.0.insert(id.to_string(), n.clone());
        Ok(n)
    }
}

async fn gather(state: &AppState, person: &str, only: Option<&str>) -> Result<MeView, ApiError> {
    let (enrolled_at, _) = state
        .store
        .person_record(person)
        .await?
        .ok_or_else(|| ApiError::not_found("person"))?;
    let mut names = Names::default();
    let keep = |b: &str| only.is_none_or(|o| o == b);
    let hands = state
        .store
        .template_counts(person)
        .await?
        .into_iter()
        .map(|(hand, templates)| HandView { hand, templates })
        .collect();
    let mut consents = Vec::new();
    for c in state.store.consents(person).await? {
        if !keep(&c.business_id) {
            continue;
        }
        let text = state
            .store
            .consent_text(c.text_version)
            .await?
            .map(|t| t.text)
            .unwrap_or_default();
        consents.push(ConsentView {
            business_name: names.of(state, &c.business_id).await?,
            business_id: c.business_id,
            text_version: c.text_version,
            text,
            given_at: c.given_at,
            site: c.site,
            device_id: c.device_id,
        });
    }
    let links = state.store.links_of_person(person).await?;
    let mut businesses = Vec::new();
    for m in state.store.memberships_of(person).await? {
        if !keep(&m.business_id) {
            continue;
        }
        let opted = state.store.offer_optin(person, &m.business_id).await?.is_some();
        businesses.push(BusinessView {
            name: names.of(state, &m.business_id).await?,
            links: links
                .iter()
                .filter(|l| l.business_id == m.business_id)
                .map(|l| LinkView {
                    kind: l.kind,
                    value: (l.kind != LinkKind::Phone).then(|| l.value.clone()),
                    created_at: l.created_at,
                })
                .collect(),
            business_id: m.business_id,
            pseudonymous_id: m.pseudonymous_id,
            joined_at: m.created_at,
            offers_opted_in: opted,
        });
    }
    let mut purchases = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .store
            .payments_of_person(person, cursor.as_ref(), 200)
            .await?;
        for p in page.items {
            if !keep(&p.business_id) {
                continue;
            }
            let customer = state
                .store
                .membership(&p.business_id, person)
                .await?
                .map(|m| m.pseudonymous_id);
            purchases.push(PurchaseView {
                business_name: names.of(state, &p.business_id).await?,
                payment: PaymentView::new(&p, customer),
            });
        }
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let entries = state
        .store
        .passages_of_person(person)
        .await?
        .into_iter()
        .filter(|p| keep(&p.business_id))
        .map(|p| EntryView {
            business_id: p.business_id,
            event_id: p.event_id,
            gate: p.device_id,
            direction: p.direction.as_str().to_string(),
            verdict: p.verdict.as_str().to_string(),
            reason: p.reason.map(|r| r.as_str().to_string()),
            at: p.at,
        })
        .collect();
    let mut match_log = Vec::new();
    for e in state.store.match_log_of_person(person).await? {
        if !keep(&e.business_id) {
            continue;
        }
        match_log.push(MatchView {
            business_name: names.of(state, &e.business_id).await?,
            business_id: e.business_id,
            device_id: e.device_id,
            site: e.site,
            at: e.at,
            decision: e.decision.as_str().to_string(),
            outcome: e.outcome,
        });
    }
    let cancellation = match state.store.cancellation(person).await? {
        Some((requested_at, receipt_id)) => Some(CancellationView {
            state: "cancelling",
            requested_at,
            outstanding_payments: state.store.outstanding_payments(person).await?.len(),
            receipt_id,
            receipt: None,
        }),
        None => None,
    };
    let dormancy_notice_at = state.store.dormancy_notice(person).await?;
    Ok(MeView {
        cancellation,
        dormancy_notice_at,
        enrollment: EnrollmentView { enrolled_at, hands },
        consents,
        businesses,
        purchases,
        entries,
        match_log,
    })
}

/// `GET /v1/me`
pub async fn me(State(state): State<AppState>, me: PersonAuth) -> Result<Json<MeView>, ApiError> {
    Ok(Json(gather(&state, &me.person_id, None).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ExportQuery {
    /// Only what concerns this business.
    pub business: Option<String>,
}

/// The portable export (GDPR Art. 20).
#[derive(Serialize, schemars::JsonSchema)]
pub struct Export {
    pub format: &'static str,
    pub exported_at: i64,
    /// The business the export is limited to, if any.
    pub business: Option<String>,
    #[serde(flatten)]
    pub data: MeView,
}

/// `GET /v1/me/export`
pub async fn export(
    State(state): State<AppState>,
    me: PersonAuth,
    Query(q): Query<ExportQuery>,
) -> Result<Json<Export>, ApiError> {
    Ok(Json(Export {
        format: "openpalm-export-v1",
        exported_at: state.clock_now(),
        data: gather(&state, &me.person_id, q.business.as_deref()).await?,
        business: q.business,
    }))
}

/// `DELETE /v1/me/businesses/{business_id}`: leave one business (withdrawing the consent
/// given to it): it loses the person, their links and settings there; others are unaffected.
pub async fn leave(
    State(state): State<AppState>,
    me: PersonAuth,
    Path(business_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let m = state
        .store
        .membership(&business_id, &me.person_id)
        .await?
        .ok_or_else(|| ApiError::not_found("membership"))?;
    crate::api::people::remove_from_business(&state, &m).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OffersChoice {
    pub opted_in: bool,
}

/// My choice on one business's offers.
#[derive(Serialize, schemars::JsonSchema)]
pub struct OffersChoiceView {
    pub business_id: String,
    pub offers_opted_in: bool,
}

/// `PUT /v1/me/businesses/{business_id}/offers`
pub async fn offers(
    State(state): State<AppState>,
    me: PersonAuth,
    Path(business_id): Path<String>,
    body: ApiJson<OffersChoice>,
) -> Result<Json<OffersChoiceView>, ApiError> {
    state
        .store
        .membership(&business_id, &me.person_id)
        .await?
        .ok_or_else(|| ApiError::not_found("membership"))?;
    state
        .store
        .set_offer_optin(
            &me.person_id,
            &business_id,
            body.value.opted_in,
            state.clock_now(),
        )
        .await?;
    Ok(Json(OffersChoiceView {
        business_id,
        offers_opted_in: body.value.opted_in,
    }))
}

/// `PUT /v1/me/businesses/{business_id}/payment-settings`: the person sets their own limits
/// and step-up code for paying by palm at one store.
pub async fn payment_settings(
    State(state): State<AppState>,
    me: PersonAuth,
    Path(business_id): Path<String>,
    body: ApiJson<crate::api::payments::PutSettings>,
) -> Result<Json<crate::api::payments::view::SettingsView>, ApiError> {
    let m = state
        .store
        .membership(&business_id, &me.person_id)
        .await?
        .ok_or_else(|| ApiError::not_found("membership"))?;
    let s = crate::api::payments::apply_settings(&state, &me.person_id, &business_id, body.value).await?;
    Ok(Json(crate::api::payments::view::SettingsView::new(
        &s,
        &m.pseudonymous_id,
    )))
}

/// `POST /v1/me/delete`: delete my data everywhere, now (refused while payments are open);
/// the answer is a receipt signed by the service.
pub async fn delete(State(state): State<AppState>, me: PersonAuth) -> Result<Json<SignedReceipt>, ApiError> {
    Ok(Json(
        erase_everywhere(&state, &me.person_id, ErasureReason::PersonRequest, None).await?,
    ))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct CancellationView {
    /// `cancelling` (the palm no longer works; waiting for open payments) or `deleted`.
    pub state: &'static str,
    pub requested_at: i64,
    pub outstanding_payments: usize,
    /// The receipt's ID, readable at `GET /v1/deletion-receipts/{id}` once deleted.
    pub receipt_id: String,
    pub receipt: Option<SignedReceipt>,
}

/// `POST /v1/me/cancel`: cancel my account. The palm stops working at once (it leaves the
/// gallery); once open payments are captured, voided or expired, everything is deleted as by
/// `POST /v1/me/delete`, with the receipt promised here.
pub async fn cancel(
    State(state): State<AppState>,
    me: PersonAuth,
) -> Result<Json<CancellationView>, ApiError> {
    let now = state.clock_now();
    state
        .store
        .request_cancellation(&me.person_id, &new_id("drc"), now)
        .await?;
    let (requested_at, receipt_id) = state
        .store
        .cancellation(&me.person_id)
        .await?
        .ok_or_else(|| ApiError::internal("cancellation", "not recorded"))?;
    crate::lifecycle::leave_gallery(&state, &me.person_id)?;
    let outstanding = state.store.outstanding_payments(&me.person_id).await?.len();
    if outstanding > 0 {
        return Ok(Json(CancellationView {
            state: "cancelling",
            requested_at,
            outstanding_payments: outstanding,
            receipt_id,
            receipt: None,
        }));
    }
    let receipt = erase_everywhere(
        &state,
        &me.person_id,
        ErasureReason::Cancellation,
        Some(receipt_id.clone()),
    )
    .await?;
    Ok(Json(CancellationView {
        state: "deleted",
        requested_at,
        outstanding_payments: 0,
        receipt_id,
        receipt: Some(receipt),
    }))
}

/// `GET /v1/deletion-receipts/{id}`: a receipt (it names nobody: the subject is a hash).
pub async fn receipt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SignedReceipt>, ApiError> {
    let text = state
        .store
        .receipt(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("receipt"))?;
    Ok(Json(
        serde_json::from_str(&text).map_err(|e| ApiError::internal("receipt", e))?,
    ))
}

/// `GET /v1/me/audit`: every audit record about me (who did what with my data, when).
pub async fn audit(
    State(state): State<AppState>,
    me: PersonAuth,
) -> Result<Json<Vec<openpalm_domain::audit::AuditRecord>>, ApiError> {
    crate::audit::flush(&state).await;
    Ok(Json(state.store.audit_of_subject(&me.person_id).await?))
}

/// How long each kind of data is kept, and why: published for everyone (BIPA asks for a
/// written retention schedule).
#[derive(Serialize, schemars::JsonSchema)]
pub struct RetentionPolicy {
    pub version: u32,
    pub items: Vec<RetentionItem>,
    pub notice: &'static str,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct RetentionItem {
    pub data: &'static str,
    pub kept: &'static str,
    pub destroyed: &'static str,
}

/// `GET /v1/retention-policy`
pub async fn retention_policy() -> Json<RetentionPolicy> {
    Json(RetentionPolicy {
        version: 1,
        items: vec![
            RetentionItem {
                data: "palm captures (images)",
                kept: "never stored: opened in memory to make or match a template, then wiped",
                destroyed: "at once, in every request",
            },
            RetentionItem {
                data: "palm templates",
                kept: "encrypted under the person's own data key, while the person is enrolled",
                destroyed: "on the person's deletion request (the data key is destroyed: crypto-shredding), or after two years without any identification",
            },
            RetentionItem {
                data: "memberships, links, payment settings, offer opt-ins",
                kept: "while the person belongs to the business",
                destroyed: "when the person leaves the business or is deleted",
            },
            RetentionItem {
                data: "match log (every identification of the palm)",
                kept: "while the person is enrolled; visible to them",
                destroyed: "with the person",
            },
            RetentionItem {
                data: "payments and entries",
                kept: "the businesses' records, as their law requires",
                destroyed: "detached from the person when the person is deleted",
            },
            RetentionItem {
                data: "sign-in codes and sessions",
                kept: "codes 10 minutes, sessions 15 minutes, as keyed hashes",
                destroyed: "expired on time; sessions end on sign-out or deletion",
            },
        ],
        notice: "OpenPalm uses palm data only to enroll, identify and match, for the businesses a person joined with their written consent. It is never sold, never used for advertising, and never shared across businesses: each business sees its own pseudonymous ID for a person. Offers are shown only to people who opted in, from that business's own history.",
    })
}
