//! Offers, opt-in only. A store defines offer rules (so many purchases, so much spent, in a
//! window); a person who opted in to that store's offers sees which they are eligible for,
//! computed from that store's own payments with them and nothing else: no other business's
//! data is read, and without the opt-in nothing is computed at all.

use super::member;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, Idem};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::ids::new_id;
use openpalm_domain::money::{Money, MoneyView};
use openpalm_store::OfferRule;
use serde::{Deserialize, Serialize};

/// The longest window an offer may look back over.
pub const MAX_WINDOW_DAYS: u64 = 366;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OffersConsent {
    pub opted_in: bool,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct OffersConsentView {
    pub customer: String,
    pub opted_in: bool,
    pub since: Option<i64>,
}

/// `PUT /v1/people/{pseudonymous_id}/offers-consent`: the person opts in to (or out of) this
/// store's offers, at the store.
pub async fn put_consent(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
    body: ApiJson<OffersConsent>,
) -> Result<Json<OffersConsentView>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    state
        .store
        .set_offer_optin(
            &m.person_id,
            &caller.business_id,
            body.value.opted_in,
            state.clock_now(),
        )
        .await?;
    let since = state.store.offer_optin(&m.person_id, &caller.business_id).await?;
    Ok(Json(OffersConsentView {
        customer: pid,
        opted_in: since.is_some(),
        since,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOffer {
    /// 1..200 characters, not blank.
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::api::NOT_BLANK))]
    pub title: String,
    /// ISO 4217 code with a minor unit.
    pub currency: String,
    #[schemars(range(max = 10_000))]
    pub min_payments: u64,
    #[serde(default)]
    pub min_spent_minor: u64,
    #[schemars(range(min = 1, max = MAX_WINDOW_DAYS))]
    pub window_days: u64,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct OfferView {
    pub id: String,
    pub title: String,
    pub min_payments: u64,
    pub min_spent: MoneyView,
    pub window_days: u64,
    pub created_at: i64,
}

fn offer_view(o: &OfferRule) -> Result<OfferView, ApiError> {
    let m = Money::new(o.min_spent_minor, &o.currency).map_err(|e| ApiError::internal("offer", e))?;
    Ok(OfferView {
        id: o.id.clone(),
        title: o.title.clone(),
        min_payments: o.min_payments,
        min_spent: MoneyView::from(&m),
        window_days: o.window_days,
        created_at: o.created_at,
    })
}

/// `POST /v1/offers`
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<CreateOffer>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let hash = request_hash("POST /v1/offers", "", &body.canonical_hash);
    let req = body.value;
    let (st, business_id) = (&state, caller.business_id.as_str());
    idempotency::create(&state, business_id, &headers, hash, |idem: Idem| async move {
        let title = crate::api::trim_blank(&req.title);
        if !openpalm_domain::text_fits(&req.title, 200) {
            return Err(ApiError::unprocessable(
                "invalid_offer",
                "title must be 1..200 characters",
            ));
        }
        if !(1..=MAX_WINDOW_DAYS).contains(&req.window_days) || req.min_payments > 10_000 {
            return Err(ApiError::unprocessable(
                "invalid_offer",
                format!("window_days must be 1..{MAX_WINDOW_DAYS}, min_payments at most 10000"),
            ));
        }
        let currency = Money::new(req.min_spent_minor, &req.currency)
            .map_err(|e| ApiError::unprocessable("invalid_currency", e.to_string()))?
            .code()
            .to_string();
        let o = OfferRule {
            id: new_id("ofr"),
            business_id: business_id.to_string(),
            title: title.to_string(),
            currency,
            min_payments: req.min_payments,
            min_spent_minor: req.min_spent_minor,
            window_days: req.window_days,
            created_at: st.clock_now(),
        };
        let v = serde_json::to_value(offer_view(&o)?).map_err(|e| ApiError::internal("offer", e))?;
        let w = idem.write(StatusCode::CREATED, &v);
        st.store.insert_offer(&o, Some(&w)).await?;
        Ok(w)
    })
    .await
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct OfferList {
    pub items: Vec<OfferView>,
}

/// `GET /v1/offers`
pub async fn list(State(state): State<AppState>, auth: Auth) -> Result<Json<OfferList>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let items = state
        .store
        .offers(&caller.business_id)
        .await?
        .iter()
        .map(offer_view)
        .collect::<Result<_, _>>()?;
    Ok(Json(OfferList { items }))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct PersonOffer {
    pub offer: OfferView,
    pub eligible: bool,
    /// Captured payments at this store within the offer's window.
    pub payments: u64,
    pub spent: MoneyView,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct PersonOffers {
    pub customer: String,
    /// What this was computed from: this store's own payments with the person.
    pub source: &'static str,
    pub items: Vec<PersonOffer>,
}

/// `GET /v1/people/{pseudonymous_id}/offers`: the store's offers for a person who opted in.
pub async fn for_person(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
) -> Result<Json<PersonOffers>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    if state
        .store
        .offer_optin(&m.person_id, &caller.business_id)
        .await?
        .is_none()
    {
        return Err(ApiError::forbidden(
            "offers_not_opted_in",
            "this person has not opted in to this store's offers: nothing is computed for them",
        ));
    }
    let now = state.clock_now();
    let mut items = Vec::new();
    for o in state.store.offers(&caller.business_id).await? {
        let since = now - i64::try_from(o.window_days).unwrap_or(0) * 86_400;
        let s = state
            .store
            .purchase_stats(&m.person_id, &caller.business_id, &o.currency, since)
            .await?;
        let spent = Money::new(s.spent_minor, &o.currency).map_err(|e| ApiError::internal("offer", e))?;
        items.push(PersonOffer {
            eligible: s.payments >= o.min_payments && s.spent_minor >= o.min_spent_minor,
            payments: s.payments,
            spent: MoneyView::from(&spent),
            offer: offer_view(&o)?,
        });
    }
    Ok(Json(PersonOffers {
        customer: pid,
        source: "this store's own payments with the person",
        items,
    }))
}
