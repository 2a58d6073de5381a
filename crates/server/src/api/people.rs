//! A person as one business sees them: its pseudonymous ID, its own links, its own part of
//! the match log.

use crate::api::devices::PageQuery;
use crate::api::events::ListPage;
use crate::auth::Auth;
use crate::body::ApiJson;
use crate::idempotency::{self, request_hash, store_error};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use openpalm_domain::apikey::Scope;
use openpalm_domain::decision::Decision;
use openpalm_domain::ids::{new_id, prefix};
use openpalm_domain::model::{normalise_link_value, Link, LinkKind, MatchLogEntry, Membership, OutboxEvent};
use openpalm_domain::now_unix;
use openpalm_domain::person::SignedReceipt;
use openpalm_domain::webhook::EventType;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub kind: LinkKind,
    /// Member ID, processor token, or phone number in international form.
    #[schemars(length(min = 1))]
    pub value: String,
}

/// Build a link (phones hashed, card numbers refused); `person_id` may be filled in later.
pub fn make_link(
    state: &AppState,
    business_id: &str,
    person_id: &str,
    req: &LinkRequest,
) -> Result<Link, ApiError> {
    let value = normalise_link_value(req.kind, &req.value).map_err(|e| {
        ApiError::unprocessable("invalid_link", e.to_string()).with("link_kind", req.kind.as_str())
    })?;
    let value = match req.kind {
        LinkKind::Phone => state.keys.phone_hash(&value),
        _ => value,
    };
    Ok(Link {
        id: new_id(prefix::LINK),
        person_id: person_id.to_string(),
        business_id: business_id.to_string(),
        kind: req.kind,
        value,
        created_at: now_unix(),
    })
}

/// A link as its business sees it; a phone shows only that it is linked.
pub fn link_view(l: &Link) -> LinkView {
    let value = match l.kind {
        LinkKind::Phone => None,
        _ => Some(l.value.clone()),
    };
    LinkView {
        id: l.id.clone(),
        kind: l.kind,
        value,
        created_at: l.created_at,
    }
}

/// A link as its business sees it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LinkView {
    pub id: String,
    pub kind: LinkKind,
    /// The member ID or token; `null` for a phone (only that one is linked shows).
    pub value: Option<String>,
    pub created_at: i64,
}

/// A removed link.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LinkDeleted {
    #[serde(flatten)]
    pub link: LinkView,
    pub deleted: bool,
}

/// A person's links.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LinkList {
    pub items: Vec<LinkView>,
}

/// One identification in the match log.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LogView {
    pub id: String,
    pub decision: Decision,
    pub device_id: String,
    pub site: String,
    pub at: i64,
    pub score: f32,
    pub event_id: Option<String>,
    pub outcome: Option<String>,
}

/// The person left this business's scope.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RemovedFromBusiness {
    pub pseudonymous_id: String,
    pub removed_from: String,
    pub erased_everywhere: bool,
}

/// The person was erased everywhere.
#[derive(Serialize, schemars::JsonSchema)]
pub struct OperatorErased {
    pub pseudonymous_id: String,
    pub erased: bool,
    pub receipt: SignedReceipt,
}

/// The `person.linked` event of a new link, for the business that made it.
pub fn linked_event(pseudonymous_id: &str, link: &Link) -> OutboxEvent {
    OutboxEvent::new(
        &link.business_id,
        EventType::PersonLinked,
        link.created_at,
        &json!({ "pseudonymous_id": pseudonymous_id, "link": link_view(link) }),
    )
}

/// The business's member with this pseudonymous ID (noted as the request's subject), or 404.
pub(crate) async fn member(
    state: &AppState,
    business_id: &str,
    pseudonymous_id: &str,
) -> Result<Membership, ApiError> {
    state
        .store
        .membership_by_pseudonym(business_id, pseudonymous_id)
        .await?
        .inspect(|m| crate::audit::note_subject(&m.person_id))
        .ok_or_else(|| ApiError::not_found("person"))
}

/// `POST /v1/people/{pseudonymous_id}/links`
pub async fn create_link(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(pid): Path<String>,
    body: ApiJson<LinkRequest>,
) -> Result<Response, ApiError> {
    let caller = auth.require(Scope::People)?;
    let hash = request_hash(
        "POST /v1/people/{pseudonymous_id}/links",
        &pid,
        &body.canonical_hash,
    );
    let req = body.value;
    let (st, business_id, pid) = (&state, caller.business_id.as_str(), pid.as_str());
    let r = idempotency::create(&state, business_id, &headers, hash, |idem| async move {
        let m = member(st, business_id, pid).await?;
        let link = make_link(st, business_id, &m.person_id, &req)?;
        let w = idem.write(StatusCode::CREATED, &link_view(&link));
        let event = linked_event(pid, &link);
        st.store
            .insert_link(&link, Some(&w), std::slice::from_ref(&event))
            .await
            .map_err(|e| store_error(e, "link_exists"))?;
        Ok(w)
    })
    .await;
    state.webhook_wakeup.notify_one();
    r
}

/// `DELETE /v1/people/{pseudonymous_id}/links/{link_id}`: remove one of the caller's links;
/// `person.unlinked` is written to the outbox in the same transaction.
pub async fn delete_link(
    State(state): State<AppState>,
    auth: Auth,
    Path((pid, link_id)): Path<(String, String)>,
) -> Result<Json<LinkDeleted>, ApiError> {
    let caller = auth.require(Scope::People)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    let link = state
        .store
        .links(&caller.business_id, &m.person_id)
        .await?
        .into_iter()
        .find(|l| l.id == link_id)
        .ok_or_else(|| ApiError::not_found("link"))?;
    let event = OutboxEvent::new(
        &caller.business_id,
        EventType::PersonUnlinked,
        now_unix(),
        &json!({ "pseudonymous_id": pid, "link": link_view(&link) }),
    );
    if !state
        .store
        .delete_link(
            &caller.business_id,
            &m.person_id,
            &link_id,
            std::slice::from_ref(&event),
        )
        .await?
    {
        return Err(ApiError::not_found("link"));
    }
    state.webhook_wakeup.notify_one();
    Ok(Json(LinkDeleted {
        link: link_view(&link),
        deleted: true,
    }))
}

/// `GET /v1/people/{pseudonymous_id}/links`
pub async fn list_links(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
) -> Result<Json<LinkList>, ApiError> {
    let caller = auth.require(Scope::People)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    let links = state.store.links(&caller.business_id, &m.person_id).await?;
    Ok(Json(LinkList {
        items: links.iter().map(link_view).collect(),
    }))
}

pub fn log_view(e: &MatchLogEntry) -> LogView {
    LogView {
        id: e.id.clone(),
        decision: e.decision,
        device_id: e.device_id.clone(),
        site: e.site.clone(),
        at: e.at,
        score: e.score,
        event_id: e.event_id.clone(),
        outcome: e.outcome.clone(),
    }
}

/// `GET /v1/people/{pseudonymous_id}/match-log?cursor=&limit=`: this business's
/// identifications of the person, oldest first.
pub async fn match_log(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage<LogView>>, ApiError> {
    let caller = auth.require(Scope::People)?;
    let (cursor, limit) = q.parse()?;
    let m = member(&state, &caller.business_id, &pid).await?;
    let page = state
        .store
        .match_log(&caller.business_id, &m.person_id, cursor.as_ref(), limit)
        .await?;
    Ok(Json(ListPage {
        items: page.items.iter().map(log_view).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// `POST /v1/people/{pseudonymous_id}/erase`: the business removes the person from its own
/// scope (membership, its links, settings; it can no longer identify them) and hears
/// `person.deleted`. Erasing the person everywhere is the person's own right (`POST
/// /v1/me/delete`), or the operator's on a verified request (`POST /v1/operator/erasures`),
/// never one member business's.
pub async fn erase(
    State(state): State<AppState>,
    auth: Auth,
    Path(pid): Path<String>,
) -> Result<Json<RemovedFromBusiness>, ApiError> {
    let caller = auth.require(Scope::People)?;
    let m = member(&state, &caller.business_id, &pid).await?;
    remove_from_business(&state, &m).await?;
    Ok(Json(RemovedFromBusiness {
        pseudonymous_id: pid,
        removed_from: "this business".into(),
        erased_everywhere: false,
    }))
}

/// Take a person out of one business (refused while payments there are open).
pub async fn remove_from_business(state: &AppState, m: &Membership) -> Result<(), ApiError> {
    let open = state
        .store
        .outstanding_payments(&m.person_id)
        .await?
        .into_iter()
        .filter(|p| p.business_id == m.business_id)
        .count();
    if open > 0 {
        return Err(ApiError::conflict(
            "outstanding_payments",
            format!("{open} payment(s) at this business are still open; remove once they are settled"),
        )
        .with("outstanding", open));
    }
    let event = OutboxEvent::new(
        &m.business_id,
        EventType::PersonDeleted,
        now_unix(),
        &json!({ "pseudonymous_id": m.pseudonymous_id }),
    );
    if !state
        .store
        .leave_business(&m.person_id, &m.business_id, &[event])
        .await?
    {
        return Err(ApiError::not_found("person"));
    }
    let seq = state
        .directory
        .read()
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?
        .seqs
        .get(&m.person_id)
        .copied();
    if let Some(seq) = seq {
        state
            .matcher
            .write()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?
            .dismiss(&m.business_id, seq);
    }
    state.webhook_wakeup.notify_one();
    Ok(())
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorErasure {
    /// A business the person belongs to, and the ID it knows them by.
    pub business_id: String,
    pub pseudonymous_id: String,
    /// How the person's request was verified (kept in the service log): 1..500 characters, not blank.
    #[schemars(length(min = 1, max = 500), regex(pattern = crate::api::NOT_BLANK))]
    pub verification: String,
}

/// `POST /v1/operator/erasures` (admin token): erase a person everywhere on a verified request
/// made to the operator.
pub async fn operator_erase(
    State(state): State<AppState>,
    _admin: crate::auth::Admin,
    body: ApiJson<OperatorErasure>,
) -> Result<Json<OperatorErased>, ApiError> {
    let req = body.value;
    let v = crate::api::trim_blank(&req.verification);
    if v.is_empty() || req.verification.chars().count() > 500 {
        return Err(ApiError::unprocessable(
            "verification_required",
            "say how the person's request was verified (1..500 characters)",
        ));
    }
    let m = member(&state, &req.business_id, &req.pseudonymous_id).await?;
    let receipt = erase_everywhere(&state, &m.person_id, ErasureReason::Operator, None).await?;
    tracing::info!(
        "openpalm-server: operator erasure of {} at {} (verification: {v})",
        req.pseudonymous_id,
        req.business_id
    );
    Ok(Json(OperatorErased {
        pseudonymous_id: req.pseudonymous_id,
        erased: true,
        receipt,
    }))
}

/// Why a person is erased (written into their receipt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureReason {
    PersonRequest,
    Cancellation,
    Dormancy,
    Operator,
}

impl ErasureReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErasureReason::PersonRequest => "person_request",
            ErasureReason::Cancellation => "cancellation",
            ErasureReason::Dormancy => "dormancy",
            ErasureReason::Operator => "operator",
        }
    }
}

/// Erase a person everywhere: refused (409 `outstanding_payments`) while payments are open;
/// the gallery drops their templates first (so they cannot be identified even if the write
/// fails), then their wrapped data key, templates, memberships, links, match log lines and
/// sessions are deleted, every business told `person.deleted` under its own pseudonymous ID,
/// and the signed receipt written, all in one transaction. `receipt_id`: the ID promised
/// when a cancellation was requested.
pub async fn erase_everywhere(
    state: &AppState,
    person_id: &str,
    reason: ErasureReason,
    receipt_id: Option<String>,
) -> Result<openpalm_domain::person::SignedReceipt, ApiError> {
    use openpalm_domain::person::{sign_receipt, DeletionReceipt, Destroyed};
    use sha2::{Digest, Sha256};
    let _guard = state.enroll_lock.lock().await;
    let outstanding = state.store.outstanding_payments(person_id).await?;
    if !outstanding.is_empty() {
        return Err(ApiError::conflict(
            "outstanding_payments",
            format!(
                "{} payment(s) are still open (authorised or being authorised); erase once they are captured, voided or expired",
                outstanding.len()
            ),
        )
        .with("outstanding", outstanding.len()));
    }
    let templates: u64 = state
        .store
        .template_counts(person_id)
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let links = state.store.links_of_person(person_id).await?.len() as u64;
    let log_lines = state.store.match_log_of_person(person_id).await?.len() as u64;
    let memberships = state.store.memberships_of(person_id).await?;
    let gallery_entries = if crate::lifecycle::leave_gallery(state, person_id)? {
        templates
    } else {
        0
    };
    let now = now_unix();
    let events: Vec<OutboxEvent> = memberships
        .iter()
        .map(|ms| {
            OutboxEvent::new(
                &ms.business_id,
                EventType::PersonDeleted,
                now,
                &json!({ "pseudonymous_id": ms.pseudonymous_id }),
            )
        })
        .collect();
    let receipt = DeletionReceipt {
        receipt_id: receipt_id.unwrap_or_else(|| new_id("drc")),
        subject: hex::encode(Sha256::digest(person_id.as_bytes())),
        deleted_at: now,
        reason: reason.as_str().to_string(),
        destroyed: Destroyed {
            data_key: true,
            templates,
            gallery_entries,
            memberships: memberships.len() as u64,
            links,
            match_log_lines: log_lines,
            businesses_notified: events.len() as u64,
        },
        kept: vec![
            "consent records (the record of what was agreed, when and where), without any biometric data"
                .into(),
            "the stores' payment records and the venues' entry records, without the person".into(),
            "this receipt".into(),
        ],
    };
    let signed = sign_receipt(&state.keys.receipt_signing_key(), receipt);
    let text = serde_json::to_string(&signed).map_err(|e| ApiError::internal("receipt", e))?;
    let r = &signed.receipt;
    if !state
        .store
        .erase_with_receipt(person_id, &events, &r.receipt_id, &r.subject, &text)
        .await?
    {
        return Err(ApiError::not_found("person"));
    }
    state.webhook_wakeup.notify_one();
    Ok(signed)
}
