//! Pay by palm for stores: the point of sale opens a payment for a checkout device, the
//! device's palm is identified among the store's members and the person's linked card is
//! authorised ([`checkout`]); then capture, void, refunds, receipts, purchase histories and
//! the person's safeguards.

pub mod checkout;
pub mod offers;
pub mod view;

use crate::api::devices::PageQuery;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, Idem};
use crate::payments::{commit, customer_of, expire_if_lapsed, run_pending};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::ids::{new_id, prefix, DeviceKind};
use openpalm_domain::money::Money;
use openpalm_domain::payment::{Payment, PaymentError, PaymentSettings, PaymentStatus, StepUpMethod};
use openpalm_processor::ProcessorError;
use openpalm_store::{PaymentFilter, PaymentWrite, PaymentWritten, Refund};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use view::{PaymentPage, PaymentView, Receipt, RefundAnswer, RefundView, SettingsView};

/// The largest amount one payment may be, in minor units (10 billion cents: 100 million EUR).
pub const MAX_AMOUNT_MINOR: u64 = 10_000_000_000;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// The checkout device the palm will come from.
    pub device_id: String,
    /// Minor units of the currency (cents for EUR).
    #[schemars(range(min = 1, max = MAX_AMOUNT_MINOR))]
    pub amount_minor: u64,
    /// ISO 4217 code with a minor unit.
    pub currency: String,
    /// The point of sale's own reference, unique per business: 1..200 characters, not blank.
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::api::NOT_BLANK))]
    pub order_reference: String,
}

fn json_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal("response", e))
}

/// The problem for a command the payment's state refuses.
pub fn payment_problem(e: PaymentError) -> ApiError {
    match e {
        PaymentError::WrongState { actual, .. } => {
            ApiError::conflict("payment_wrong_state", e.to_string()).with("status", actual.as_str())
        }
        PaymentError::Busy => ApiError::conflict("payment_busy", e.to_string()),
        PaymentError::Expired => ApiError::conflict("authorization_expired", e.to_string()),
        PaymentError::ZeroAmount => ApiError::unprocessable("invalid_amount", e.to_string()),
        PaymentError::AboveAuthorized { max } => {
            ApiError::unprocessable("amount_above_authorized", e.to_string()).with("max_minor", max)
        }
        PaymentError::AboveRefundable { max } => {
            ApiError::unprocessable("amount_above_refundable", e.to_string()).with("max_minor", max)
        }
        PaymentError::Inconsistent(m) => ApiError::internal("payment", m),
    }
}

/// The problem for a call the processor refused or could not take.
pub fn processor_problem(e: &ProcessorError) -> ApiError {
    match e {
        ProcessorError::Timeout | ProcessorError::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "processor_unavailable",
            "the payment processor did not answer; the operation stays pending and is reconciled: read the payment again",
        ),
        other => ApiError::conflict("processor_refused", other.to_string()),
    }
}

/// A payment of the caller's business, or 404 (another store's payments do not exist for it).
pub async fn own_payment(state: &AppState, business_id: &str, id: &str) -> Result<Payment, ApiError> {
    state
        .store
        .payment(business_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))
}

/// [`own_payment`], shown as it is now: an authorisation past its time is expired first.
async fn live_payment(state: &AppState, business_id: &str, id: &str) -> Result<Payment, ApiError> {
    let p = own_payment(state, business_id, id).await?;
    expire_if_lapsed(state, p).await
}

async fn view_of(state: &AppState, p: &Payment) -> Result<PaymentView, ApiError> {
    Ok(PaymentView::new(p, customer_of(state, p).await?))
}

/// `POST /v1/payments`
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: ApiJson<CreatePayment>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    if caller.environment != openpalm_domain::apikey::Environment::Test {
        // Test keys pay with the sandbox processor only; this build has no live processor
        // adapter, so a live key cannot open a payment at all (never the sandbox's ledger).
        return Err(ApiError::forbidden(
            "no_live_processor",
            "live payments need a card processor; none is configured here (test keys use the sandbox processor)",
        ));
    }
    let hash = request_hash("POST /v1/payments", "", &body.canonical_hash);
    let req = body.value;
    let (st, business_id) = (&state, caller.business_id.as_str());
    idempotency::create(&state, business_id, &headers, hash, |idem| async move {
        create_payment(st, business_id, req, idem).await
    })
    .await
}

async fn create_payment(
    state: &AppState,
    business_id: &str,
    req: CreatePayment,
    idem: Idem,
) -> Result<openpalm_store::IdempotencyWrite, ApiError> {
    let amount = Money::new(req.amount_minor, &req.currency)
        .map_err(|e| ApiError::unprocessable("invalid_currency", e.to_string()))?;
    if amount.minor == 0 || amount.minor > MAX_AMOUNT_MINOR {
        return Err(ApiError::unprocessable(
            "invalid_amount",
            format!("amount_minor must be 1..{MAX_AMOUNT_MINOR}"),
        ));
    }
    let order = crate::api::trim_blank(&req.order_reference);
    if !openpalm_domain::text_fits(&req.order_reference, 200) {
        return Err(ApiError::unprocessable(
            "invalid_order_reference",
            "order_reference must be 1..200 characters",
        ));
    }
    match state.store.device(&req.device_id).await? {
        Some(d)
            if d.business_id == business_id && d.revoked_at.is_none() && d.kind == DeviceKind::Checkout => {}
        Some(d) if d.business_id == business_id && d.kind != DeviceKind::Checkout => {
            return Err(ApiError::unprocessable(
                "not_a_checkout",
                format!("device {} is a {}, not a checkout", d.id, d.kind.as_str()),
            ))
        }
        _ => {
            return Err(ApiError::unprocessable(
                "unknown_checkout",
                format!("no live checkout {} of this business", req.device_id),
            ))
        }
    }
    let p = Payment::open(
        new_id(prefix::PAYMENT),
        business_id.to_string(),
        req.device_id,
        order.to_string(),
        amount,
        state.clock_now(),
    );
    let w = idem.write(StatusCode::CREATED, &json_value(&PaymentView::new(&p, None))?);
    let write = PaymentWrite {
        expected_version: None,
        idem: Some(w.clone()),
        ..PaymentWrite::moving(p, 0)
    };
    match state.store.write_payment(&write).await {
        Err(openpalm_store::StoreError::Conflict(_)) => Err(ApiError::conflict(
            "order_reference_taken",
            "a payment with this order_reference exists: read it, or use another reference",
        )),
        other => {
            other?;
            Ok(w)
        }
    }
}

/// `GET /v1/payments/{id}` (an authorisation past its time is shown expired).
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let p = live_payment(&state, &caller.business_id, &id).await?;
    Ok(Json(view_of(&state, &p).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    /// A status, or `outstanding` (authorising, authorised, or waiting for a step-up).
    #[schemars(extend("enum" = ["outstanding", "awaiting_palm", "step_up_required", "authorizing", "authorized", "captured", "refunded", "voided", "expired", "declined", "failed"]))]
    pub status: Option<String>,
    /// Only this person's payments (their pseudonymous ID at this business).
    pub customer: Option<String>,
    /// `next_cursor` of the previous page.
    #[schemars(regex(pattern = crate::api::devices::CURSOR_PATTERN))]
    pub cursor: Option<String>,
    /// Page size, 1..200 (default 50).
    #[schemars(with = "Option<u32>", range(min = 1, max = 200))]
    pub limit: Option<String>,
}

async fn page(
    state: &AppState,
    business_id: &str,
    filter: PaymentFilter,
    q: &PageQuery,
) -> Result<PaymentPage, ApiError> {
    let (cursor, limit) = q.parse()?;
    let page = state
        .store
        .list_payments(business_id, &filter, cursor.as_ref(), limit)
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for p in &page.items {
        items.push(view_of(state, p).await?);
    }
    Ok(PaymentPage {
        items,
        next_cursor: page.next.map(|c| c.encode()),
    })
}

/// `GET /v1/payments`: the store's payments, oldest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<PaymentPage>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let statuses = match q.status.as_deref() {
        None => vec![],
        Some("outstanding") => PaymentStatus::ALL
            .iter()
            .filter(|s| s.is_outstanding())
            .map(|s| s.as_str().to_string())
            .collect(),
        Some(s) => {
            let st: PaymentStatus = s
                .parse()
                .map_err(|e: String| ApiError::bad_request("invalid_status", e))?;
            vec![st.as_str().to_string()]
        }
    };
    let person_id = match &q.customer {
        Some(c) => Some(member(&state, &caller.business_id, c).await?.person_id),
        None => None,
    };
    let pq = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(Json(
        page(
            &state,
            &caller.business_id,
            PaymentFilter { statuses, person_id },
            &pq,
        )
        .await?,
    ))
}

pub(crate) use crate::api::people::member;

/// `GET /v1/people/{pseudonymous_id}/payments`: the store's purchase history with a person.
pub async fn person_history(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<PaymentPage>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    let filter = PaymentFilter {
        statuses: vec![],
        person_id: Some(m.person_id),
    };
    Ok(Json(page(&state, &caller.business_id, filter, &q).await?))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// Default: everything authorised. Less captures part; the rest is released.
    #[schemars(range(min = 1))]
    pub amount_minor: Option<u64>,
}

/// `POST /v1/payments/{id}/capture`: the goods were handed over. Capturing the same amount
/// again answers the captured payment.
pub async fn capture(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: ApiJson<CaptureRequest>,
) -> Result<Json<PaymentView>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let p = live_payment(&state, &caller.business_id, &id).await?;
    if p.status == PaymentStatus::Expired {
        return Err(ApiError::conflict(
            "authorization_expired",
            "the authorisation lapsed before capture; nothing was charged: open a new payment",
        ));
    }
    let minor = body.value.amount_minor.unwrap_or(p.authorized_minor);
    if matches!(p.status, PaymentStatus::Captured | PaymentStatus::Refunded)
        && p.pending.is_none()
        && body.value.amount_minor.is_none_or(|m| m == p.captured_minor)
    {
        return Ok(Json(view_of(&state, &p).await?));
    }
    let next = p
        .start_capture(minor, state.clock_now())
        .map_err(payment_problem)?;
    finish(&state, &p, next).await
}

/// Commit a move that asks the processor, make the call, answer the payment.
async fn finish(state: &AppState, before: &Payment, next: Payment) -> Result<Json<PaymentView>, ApiError> {
    match commit(
        state,
        Some(before),
        PaymentWrite::moving(next.clone(), before.version),
    )
    .await?
    {
        PaymentWritten::Written => {}
        _ => {
            return Err(ApiError::conflict(
                "payment_busy",
                "the payment changed meanwhile; read it and try again",
            ))
        }
    }
    let o = run_pending(state, next).await?;
    if o.unreachable {
        return Err(processor_problem(&ProcessorError::Timeout));
    }
    if let Some(e) = &o.refused {
        let view = json_value(&view_of(state, &o.payment).await?)?;
        return Err(processor_problem(e).with("payment", view));
    }
    Ok(Json(view_of(state, &o.payment).await?))
}

/// `POST /v1/payments/{id}/void`: cancel before capture (an authorisation is released).
pub async fn void(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let p = live_payment(&state, &caller.business_id, &id).await?;
    if p.status == PaymentStatus::Voided {
        return Ok(Json(view_of(&state, &p).await?));
    }
    let (next, asks) = p.start_void(state.clock_now()).map_err(payment_problem)?;
    if asks {
        return finish(&state, &p, next).await;
    }
    match commit(&state, Some(&p), PaymentWrite::moving(next.clone(), p.version)).await? {
        PaymentWritten::Written => Ok(Json(view_of(&state, &next).await?)),
        _ => Err(ApiError::conflict(
            "payment_busy",
            "the payment changed meanwhile; read it and try again",
        )),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[schemars(range(min = 1))]
    pub amount_minor: u64,
    /// At most 500 characters.
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

/// `POST /v1/payments/{id}/refunds` (Idempotency-Key): refund part or all of what was
/// captured. The refund's ID comes from the key, so a retry after any failure is the same
/// refund, never a second one.
pub async fn refund(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: ApiJson<RefundRequest>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let hash = request_hash("POST /v1/payments/{id}/refunds", &id, &body.canonical_hash);
    let req = body.value;
    let (st, business_id) = (&state, caller.business_id.as_str());
    let key = crate::body::idempotency_key(&headers)?;
    idempotency::create(&state, business_id, &headers, hash, |idem| async move {
        make_refund(st, business_id, &id, &key, req, idem).await
    })
    .await
}

async fn make_refund(
    state: &AppState,
    business_id: &str,
    id: &str,
    key: &str,
    req: RefundRequest,
    idem: Idem,
) -> Result<openpalm_store::IdempotencyWrite, ApiError> {
    if let Some(r) = &req.reason {
        if r.chars().count() > 500 {
            return Err(ApiError::unprocessable(
                "invalid_reason",
                "reason must be at most 500 characters",
            ));
        }
    }
    let refund_id = format!(
        "{}_{}",
        prefix::REFUND,
        &hex::encode(Sha256::digest(format!("{business_id}\n{id}\n{key}").as_bytes()))[..24]
    );
    let p = own_payment(state, business_id, id).await?;
    let existing = state
        .store
        .refunds(&p.id)
        .await?
        .into_iter()
        .find(|r| r.id == refund_id);
    let (p, refund) = match existing {
        // Made before a failure lost its answer: finish it, or answer it.
        Some(r) => {
            let p = if p.pending.is_some() {
                run_pending(state, p).await?.payment
            } else {
                p
            };
            (p, r)
        }
        None => {
            let now = state.clock_now();
            let next = p
                .start_refund(&refund_id, req.amount_minor, now)
                .map_err(payment_problem)?;
            let mut w = PaymentWrite::moving(next.clone(), p.version);
            w.refund = Some(Refund {
                id: refund_id.clone(),
                payment_id: p.id.clone(),
                amount_minor: req.amount_minor,
                reason: req.reason.clone(),
                status: "pending".into(),
                created_at: now,
                updated_at: now,
            });
            match commit(state, Some(&p), w).await? {
                PaymentWritten::Written => {}
                _ => {
                    return Err(ApiError::conflict(
                        "payment_busy",
                        "the payment changed meanwhile; try again",
                    ))
                }
            }
            let o = run_pending(state, next).await?;
            if o.unreachable {
                return Err(processor_problem(&ProcessorError::Timeout));
            }
            let r = state
                .store
                .refunds(&p.id)
                .await?
                .into_iter()
                .find(|r| r.id == refund_id)
                .ok_or_else(|| ApiError::internal("refund", "vanished"))?;
            (o.payment, r)
        }
    };
    let answer = RefundAnswer {
        refund: RefundView::new(&refund, &p.amount),
        payment: view_of(state, &p).await?,
    };
    let status = if refund.status == "failed" {
        StatusCode::CONFLICT
    } else {
        StatusCode::CREATED
    };
    let w = idem.write(status, &json_value(&answer)?);
    state.store.save_idempotency(&w).await?;
    Ok(w)
}

/// `GET /v1/payments/{id}/receipt`
pub async fn receipt(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Receipt>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let p = live_payment(&state, &caller.business_id, &id).await?;
    let store = state
        .store
        .business(&caller.business_id)
        .await?
        .map(|b| b.name)
        .unwrap_or_default();
    let site = state
        .store
        .device(&p.device_id)
        .await?
        .map(|d| d.site)
        .unwrap_or_default();
    let refunds = state.store.refunds(&p.id).await?;
    let mv = |minor: u64| openpalm_domain::money::MoneyView::from(&p.amount.with_minor(minor));
    Ok(Json(Receipt {
        payment_id: p.id.clone(),
        store,
        site,
        order_reference: p.order_reference.clone(),
        status: p.status,
        amount: mv(p.amount.minor),
        captured: mv(p.captured_minor),
        refunded: mv(p.refunded_minor),
        net: mv(p.refundable_minor()),
        card_last4: p.card_last4.clone(),
        processor: state.processor.name().to_string(),
        customer: customer_of(&state, &p).await?,
        refunds: refunds.iter().map(|r| RefundView::new(r, &p.amount)).collect(),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpSetting {
    pub method: StepUpMethod,
    /// The PIN (4 to 8 digits) or the last four digits of the person's phone: kept only as
    /// a keyed hash.
    pub code: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSettings {
    /// The currency the limits are in; payments in another currency are refused while
    /// limits are set.
    pub currency: String,
    pub per_payment_limit_minor: Option<u64>,
    pub daily_limit_minor: Option<u64>,
    /// Payments above this ask for the step-up code (requires `step_up`).
    pub step_up_above_minor: Option<u64>,
    pub step_up: Option<StepUpSetting>,
}

/// `PUT /v1/people/{pseudonymous_id}/payment-settings`: the limits and step-up the person
/// chose at this store (entered at the store's kiosk).
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
    body: ApiJson<PutSettings>,
) -> Result<Json<SettingsView>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    let s = apply_settings(&state, &m.person_id, &caller.business_id, body.value).await?;
    Ok(Json(SettingsView::new(&s, &pid)))
}

/// Check and store a person's safeguards at one business (from the store's kiosk, or from
/// the person's own side).
pub(crate) async fn apply_settings(
    state: &AppState,
    person_id: &str,
    business_id: &str,
    req: PutSettings,
) -> Result<PaymentSettings, ApiError> {
    let currency = Money::new(0, &req.currency)
        .map_err(|e| ApiError::unprocessable("invalid_currency", e.to_string()))?
        .code()
        .to_string();
    for (name, v) in [
        ("per_payment_limit_minor", req.per_payment_limit_minor),
        ("daily_limit_minor", req.daily_limit_minor),
        ("step_up_above_minor", req.step_up_above_minor),
    ] {
        if v.is_some_and(|v| v > MAX_AMOUNT_MINOR) {
            return Err(ApiError::unprocessable(
                "invalid_limit",
                format!("{name} must be at most {MAX_AMOUNT_MINOR}"),
            ));
        }
    }
    if req.step_up_above_minor.is_some() && req.step_up.is_none() {
        return Err(ApiError::unprocessable(
            "step_up_code_missing",
            "step_up_above_minor needs a step_up method and code",
        ));
    }
    let (method, hash) = match &req.step_up {
        Some(s) => {
            if !s.method.valid_code(&s.code) {
                return Err(ApiError::unprocessable(
                    "invalid_step_up_code",
                    match s.method {
                        StepUpMethod::Pin => "a PIN is 4 to 8 digits",
                        StepUpMethod::PhoneLast4 => "the last four digits of the phone: 4 digits",
                    },
                ));
            }
            (
                Some(s.method),
                Some(state.keys.step_up_hash(person_id, business_id, &s.code)),
            )
        }
        None => (None, None),
    };
    let s = PaymentSettings {
        person_id: person_id.to_string(),
        business_id: business_id.to_string(),
        currency,
        per_payment_limit_minor: req.per_payment_limit_minor,
        daily_limit_minor: req.daily_limit_minor,
        step_up_above_minor: req.step_up_above_minor,
        step_up_method: method,
        step_up_hash: hash,
        updated_at: state.clock_now(),
    };
    state.store.put_payment_settings(&s).await?;
    Ok(s)
}

/// `GET /v1/people/{pseudonymous_id}/payment-settings`
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
) -> Result<Json<SettingsView>, ApiError> {
    let caller = auth.require(Scope::Payments)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    let s = state
        .store
        .payment_settings(&m.person_id, &caller.business_id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment settings"))?;
    Ok(Json(SettingsView::new(&s, &pid)))
}
