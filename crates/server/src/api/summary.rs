//! `GET /v1/summary`: a business's figures at a glance, for its console's "today" view:
//! members and links now; lane decisions and payments since midnight UTC by the service's
//! clock. Any live API key of the business may read it (whatever its scopes); the answer
//! also names the key's environment and scopes, so a console can say what it may do.

use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use openpalm_domain::apikey::{Environment, Scope};
use openpalm_domain::model::LinkKind;
use openpalm_domain::money::{Money, MoneyView};
use openpalm_domain::payment::PaymentStatus;
use serde::Serialize;
use std::collections::BTreeMap;

const DAY_SECS: i64 = 86_400;

/// Statuses of a payment the processor approved (authorised, whether captured or refunded
/// since).
const APPROVED: [PaymentStatus; 3] = [
    PaymentStatus::Authorized,
    PaymentStatus::Captured,
    PaymentStatus::Refunded,
];

#[derive(Serialize, schemars::JsonSchema)]
pub struct SummaryBusiness {
    pub id: String,
    pub name: String,
}

/// The API key that asked.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SummaryKey {
    pub id: String,
    pub environment: Environment,
    pub scopes: Vec<Scope>,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct MembersSummary {
    /// People who are members of the business now.
    pub total: i64,
    /// Of them, those who joined today.
    pub joined_today: i64,
}

/// Lane decisions (admit, deny, exit) and denials per reason.
#[derive(Serialize, Default, schemars::JsonSchema)]
pub struct DecisionCounts {
    pub admitted: i64,
    pub denied: i64,
    pub exited: i64,
    /// `attendant` for an attendant's denial.
    pub denied_by_reason: BTreeMap<String, i64>,
}

impl DecisionCounts {
    fn add(&mut self, verdict: &str, reason: Option<&str>, n: i64) {
        match verdict {
            "admit" => self.admitted += n,
            "exit" => self.exited += n,
            _ => {
                self.denied += n;
                *self
                    .denied_by_reason
                    .entry(reason.unwrap_or("attendant").to_string())
                    .or_default() += n;
            }
        }
    }
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct EventDay {
    pub event_id: String,
    pub name: String,
    #[serde(flatten)]
    pub counts: DecisionCounts,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct EntriesSummary {
    /// Every event's decisions today together.
    #[serde(flatten)]
    pub counts: DecisionCounts,
    /// Events with a decision today.
    pub events: Vec<EventDay>,
}

/// Money of payments opened today in one currency.
#[derive(Serialize, schemars::JsonSchema)]
pub struct CurrencyDay {
    pub currency: String,
    /// Approved (authorised, captured or refunded since).
    pub approved: MoneyView,
    pub captured: MoneyView,
    pub refunded: MoneyView,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct PaymentsSummary {
    /// Payments opened today.
    pub opened: i64,
    /// Approved by the processor (now authorized, captured or refunded).
    pub approved: i64,
    /// Declined by the processor or a safeguard.
    pub declined: i64,
    pub declined_by_reason: BTreeMap<String, i64>,
    /// Payments opened today per status now.
    pub by_status: BTreeMap<String, i64>,
    /// Per currency, in currency order.
    pub amounts: Vec<CurrencyDay>,
}

/// What `GET /v1/summary` answers.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SummaryView {
    pub business: SummaryBusiness,
    pub key: SummaryKey,
    /// Start of "today": midnight UTC by the service's clock (Unix seconds).
    pub day_start: i64,
    /// Now by the service's clock.
    pub at: i64,
    pub members: MembersSummary,
    /// Links now, per kind (every kind, zero included).
    pub links: BTreeMap<String, i64>,
    /// Lane decisions at the business's events today.
    pub entries: EntriesSummary,
    /// Payments opened today.
    pub payments: PaymentsSummary,
}

fn money(minor: i64, currency: &str) -> Result<MoneyView, ApiError> {
    let minor = u64::try_from(minor).map_err(|e| ApiError::internal("summary amount", e))?;
    let m = Money::new(minor, currency).map_err(|e| ApiError::internal("summary currency", e))?;
    Ok(MoneyView::from(&m))
}

/// `GET /v1/summary`
pub async fn summary(State(state): State<AppState>, auth: Auth) -> Result<Json<SummaryView>, ApiError> {
    let caller = auth.0;
    let at = state.clock_now();
    let day_start = at - at.rem_euclid(DAY_SECS);
    let business = state
        .store
        .business(&caller.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("business"))?;
    let s = state
        .store
        .business_summary(&caller.business_id, day_start)
        .await?;

    let mut links: BTreeMap<String, i64> = [LinkKind::MemberId, LinkKind::PaymentToken, LinkKind::Phone]
        .iter()
        .map(|k| (k.as_str().to_string(), 0))
        .collect();
    for (kind, n) in s.links {
        *links.entry(kind).or_default() += n;
    }

    let mut all = DecisionCounts::default();
    let mut events: Vec<EventDay> = Vec::new();
    for p in &s.passages {
        all.add(&p.verdict, p.reason.as_deref(), p.n);
        match events.last_mut() {
            Some(e) if e.event_id == p.event_id => e.counts.add(&p.verdict, p.reason.as_deref(), p.n),
            _ => {
                let mut counts = DecisionCounts::default();
                counts.add(&p.verdict, p.reason.as_deref(), p.n);
                events.push(EventDay {
                    event_id: p.event_id.clone(),
                    name: p.event_name.clone(),
                    counts,
                });
            }
        }
    }

    let approved: Vec<&str> = APPROVED.iter().map(|s| s.as_str()).collect();
    let mut payments = PaymentsSummary {
        opened: 0,
        approved: 0,
        declined: 0,
        declined_by_reason: BTreeMap::new(),
        by_status: BTreeMap::new(),
        amounts: Vec::new(),
    };
    // Per currency: (approved, captured, refunded) minor units.
    let mut per_currency: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for p in &s.payments {
        payments.opened += p.n;
        *payments.by_status.entry(p.status.clone()).or_default() += p.n;
        let c = per_currency.entry(p.currency.clone()).or_default();
        if approved.contains(&p.status.as_str()) {
            payments.approved += p.n;
            c.0 += p.amount_minor;
        }
        if p.status == PaymentStatus::Declined.as_str() {
            payments.declined += p.n;
            *payments
                .declined_by_reason
                .entry(p.decline.clone().unwrap_or_else(|| "unknown".into()))
                .or_default() += p.n;
        }
        c.1 += p.captured_minor;
        c.2 += p.refunded_minor;
    }
    for (currency, (a, c, r)) in per_currency {
        payments.amounts.push(CurrencyDay {
            approved: money(a, &currency)?,
            captured: money(c, &currency)?,
            refunded: money(r, &currency)?,
            currency,
        });
    }

    Ok(Json(SummaryView {
        business: SummaryBusiness {
            id: business.id,
            name: business.name,
        },
        key: SummaryKey {
            id: caller.key_id,
            environment: caller.environment,
            scopes: caller.scopes,
        },
        day_start,
        at,
        members: MembersSummary {
            total: s.members,
            joined_today: s.members_since,
        },
        links,
        entries: EntriesSummary { counts: all, events },
        payments,
    }))
}
