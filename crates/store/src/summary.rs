//! A business's figures at a glance (the console's "today"): members and links now, lane
//! decisions and payments since a time. Grouped counts only; nobody's data.

use crate::{Result, SqlStore};
use async_trait::async_trait;
use sqlx::Row;
use std::collections::BTreeMap;

/// Lane decisions of one event since a time with one verdict and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassageTally {
    pub event_id: String,
    pub event_name: String,
    /// `admit`, `deny` or `exit`.
    pub verdict: String,
    /// The denial's reason (`None` for an attendant's denial without one, and for admits).
    pub reason: Option<String>,
    pub n: i64,
}

/// Payments opened since a time with one status, decline reason and currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentTally {
    pub status: String,
    pub decline: Option<String>,
    pub currency: String,
    pub n: i64,
    pub amount_minor: i64,
    pub captured_minor: i64,
    pub refunded_minor: i64,
}

/// A business's figures: members and links now; decisions and payments since `since`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusinessSummary {
    /// Members (people linked to the business by a membership) now.
    pub members: i64,
    /// Of them, those who joined since `since`.
    pub members_since: i64,
    /// Links now, per kind (`member_id`, `payment_token`, `phone`).
    pub links: BTreeMap<String, i64>,
    /// Lane decisions at the business's events since `since`, by event, verdict and reason.
    pub passages: Vec<PassageTally>,
    /// Payments opened since `since`, by status, decline reason and currency.
    pub payments: Vec<PaymentTally>,
}

/// The business summary's storage; part of every [`crate::Store`].
#[async_trait]
pub trait SummaryStore: Send + Sync {
    /// The business's figures, decisions and payments counted from `since` (Unix seconds).
    async fn business_summary(&self, business_id: &str, since: i64) -> Result<BusinessSummary>;
}

#[async_trait]
impl SummaryStore for SqlStore {
    async fn business_summary(&self, business_id: &str, since: i64) -> Result<BusinessSummary> {
        let mut s = BusinessSummary::default();
        let r = sqlx::query(
            "SELECT COUNT(*) AS n,
                    CAST(COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS joined
             FROM memberships WHERE business_id = $1",
        )
        .bind(business_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        s.members = r.try_get("n")?;
        s.members_since = r.try_get("joined")?;
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM links WHERE business_id = $1 GROUP BY kind ORDER BY kind",
        )
        .bind(business_id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            s.links.insert(r.try_get("kind")?, r.try_get("n")?);
        }
        let rows = sqlx::query(
            "SELECT p.event_id AS event_id, e.name AS event_name, p.verdict AS verdict,
                    p.reason AS reason, COUNT(*) AS n
             FROM passages p JOIN events e ON e.id = p.event_id
             WHERE e.business_id = $1 AND p.business_id = $1 AND p.at >= $2
             GROUP BY p.event_id, e.name, p.verdict, p.reason
             ORDER BY p.event_id, p.verdict, p.reason",
        )
        .bind(business_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            s.passages.push(PassageTally {
                event_id: r.try_get("event_id")?,
                event_name: r.try_get("event_name")?,
                verdict: r.try_get("verdict")?,
                reason: r.try_get("reason")?,
                n: r.try_get("n")?,
            });
        }
        let rows = sqlx::query(
            "SELECT status, decline, currency, COUNT(*) AS n,
                    CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS amount,
                    CAST(COALESCE(SUM(captured_minor), 0) AS BIGINT) AS captured,
                    CAST(COALESCE(SUM(refunded_minor), 0) AS BIGINT) AS refunded
             FROM payments WHERE business_id = $1 AND created_at >= $2
             GROUP BY status, decline, currency
             ORDER BY status, decline, currency",
        )
        .bind(business_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            s.payments.push(PaymentTally {
                status: r.try_get("status")?,
                decline: r.try_get("decline")?,
                currency: r.try_get("currency")?,
                n: r.try_get("n")?,
                amount_minor: r.try_get("amount")?,
                captured_minor: r.try_get("captured")?,
                refunded_minor: r.try_get("refunded")?,
            });
        }
        Ok(s)
    }
}
