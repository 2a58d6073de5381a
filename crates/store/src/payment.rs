//! Storage of pay by palm: payments, their refunds and the people's safeguards.
//!
//! Every change to a payment is one transaction ([`PaymentStore::write_payment`]): the
//! payment's move as a compare-and-set on its `version` (two requests racing on one payment
//! move it once: the loser writes nothing and reads the payment again), the refund row, the
//! match log line, the webhook events and, for creates, the `Idempotency-Key` record. A
//! daily limit is checked inside the same transaction, after a write to the person's
//! settings row that queues concurrent payments of the same person.

use crate::{
    corrupt, insert_events_in, insert_match_log_in, is_unique_violation, page_start, save_idempotency_in,
    Cursor, IdempotencyWrite, Page, Result, SqlStore, StoreError,
};
use async_trait::async_trait;
use openpalm_domain::model::{MatchLogEntry, OutboxEvent};
use openpalm_domain::money::Money;
use openpalm_domain::payment::{Payment, PaymentSettings, PendingOp};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A refund as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub amount_minor: u64,
    pub reason: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The daily limit, checked in the transaction that moves a payment to `authorizing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyLimit {
    pub person_id: String,
    pub business_id: String,
    /// Start of the UTC day (Unix seconds).
    pub day_start: i64,
    pub limit_minor: u64,
    /// The limit's currency: only payments in it count.
    pub currency: String,
}

/// Everything one payment change writes, in one transaction.
#[derive(Clone, Debug)]
pub struct PaymentWrite {
    /// The payment after the change.
    pub payment: Payment,
    /// The version it must still be at (`None`: a new payment, inserted).
    pub expected_version: Option<i64>,
    pub refund: Option<Refund>,
    pub daily_limit: Option<DailyLimit>,
    pub match_log: Option<MatchLogEntry>,
    pub events: Vec<OutboxEvent>,
    pub idem: Option<IdempotencyWrite>,
}

impl PaymentWrite {
    /// Move `payment` from `expected_version`, writing nothing else.
    pub fn moving(payment: Payment, expected_version: i64) -> PaymentWrite {
        PaymentWrite {
            payment,
            expected_version: Some(expected_version),
            refund: None,
            daily_limit: None,
            match_log: None,
            events: vec![],
            idem: None,
        }
    }
}

/// How a payment write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentWritten {
    Written,
    /// The payment is no longer at the expected version; nothing was written.
    Stale,
    /// Spent today plus this payment would pass the daily limit; nothing was written.
    OverDailyLimit,
}

/// Which payments a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    pub person_id: Option<String>,
}

/// A store's offer rule: a person who opted in is eligible after `min_payments` captured
/// payments totalling at least `min_spent_minor` (net of refunds) in the last `window_days`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferRule {
    pub id: String,
    pub business_id: String,
    pub title: String,
    pub currency: String,
    pub min_payments: u64,
    pub min_spent_minor: u64,
    pub window_days: u64,
    pub created_at: i64,
}

/// A person's purchases at one store since a time, in one currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurchaseStats {
    /// Captured payments (fully refunded ones not counted).
    pub payments: u64,
    /// Captured less refunded.
    pub spent_minor: u64,
    pub last_at: Option<i64>,
}

/// The storage of pay by palm; part of every [`crate::Store`].
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Insert a new payment or move one by compare-and-set, with everything else the change
    /// writes. `Conflict` if the order reference is taken at this business;
    /// `IdempotencyKeyTaken` if the key was taken meanwhile.
    async fn write_payment(&self, write: &PaymentWrite) -> Result<PaymentWritten>;
    /// A payment of this business.
    async fn payment(&self, business_id: &str, id: &str) -> Result<Option<Payment>>;
    /// The payment of the processor's intent (for callbacks).
    async fn payment_by_intent(&self, intent_id: &str) -> Result<Option<Payment>>;
    /// The business's payments, oldest first.
    async fn list_payments(
        &self,
        business_id: &str,
        filter: &PaymentFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Payment>>;
    /// A person's payments at every store, oldest first.
    async fn payments_of_person(
        &self,
        person_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Payment>>;
    /// A person's outstanding payments at every store (authorising, authorised, or waiting
    /// for a step-up; or with a processor call pending).
    async fn outstanding_payments(&self, person_id: &str) -> Result<Vec<Payment>>;
    /// Payments with a processor call committed but not answered (reconciled on start).
    async fn pending_payments(&self, limit: u32) -> Result<Vec<Payment>>;
    /// Authorised payments whose authorisation lapsed by `now`.
    async fn lapsed_authorizations(&self, now: i64, limit: u32) -> Result<Vec<Payment>>;
    /// A payment's refunds, oldest first.
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>>;
    async fn payment_settings(&self, person_id: &str, business_id: &str) -> Result<Option<PaymentSettings>>;
    /// Insert or replace a person's settings at a store.
    async fn put_payment_settings(&self, settings: &PaymentSettings) -> Result<()>;
    /// Opt a person in to (or out of) a store's offers.
    async fn set_offer_optin(
        &self,
        person_id: &str,
        business_id: &str,
        opted_in: bool,
        at: i64,
    ) -> Result<()>;
    async fn offer_optin(&self, person_id: &str, business_id: &str) -> Result<Option<i64>>;
    /// Insert an offer rule (with the request's idempotency record).
    async fn insert_offer(&self, offer: &OfferRule, idem: Option<&IdempotencyWrite>) -> Result<()>;
    /// The store's offer rules, oldest first.
    async fn offers(&self, business_id: &str) -> Result<Vec<OfferRule>>;
    /// A person's purchases at this store only, since `since`, in `currency`.
    async fn purchase_stats(
        &self,
        person_id: &str,
        business_id: &str,
        currency: &str,
        since: i64,
    ) -> Result<PurchaseStats>;
    /// Record the answer to an `Idempotency-Key` on its own (for operations whose answer
    /// is known only after a processor call). `IdempotencyKeyTaken` if it was taken.
    async fn save_idempotency(&self, idem: &IdempotencyWrite) -> Result<()>;
}

const PAYMENT_COLS: &str = "id, business_id, device_id, order_reference, amount_minor, currency, status, person_id, card_token, card_last4, decline, intent_id, intent_version, authorized_minor, captured_minor, refunded_minor, expires_at, pending, palm_attempts, step_up_attempts, version, created_at, updated_at";

fn u64_of(r: &AnyRow, col: &str) -> Result<u64> {
    let v: i64 = r.try_get(col)?;
    u64::try_from(v).map_err(|e| corrupt(&format!("payments.{col}"), e))
}

fn i64_of(what: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|e| corrupt(what, e))
}

fn payment_from_row(r: &AnyRow) -> Result<Payment> {
    let currency: String = r.try_get("currency")?;
    let amount =
        Money::new(u64_of(r, "amount_minor")?, &currency).map_err(|e| corrupt("payments.currency", e))?;
    let status: String = r.try_get("status")?;
    let decline: Option<String> = r.try_get("decline")?;
    let pending: Option<String> = r.try_get("pending")?;
    let pending: Option<PendingOp> = pending
        .map(|p| serde_json::from_str(&p).map_err(|e| corrupt("payments.pending", e)))
        .transpose()?;
    Ok(Payment {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        device_id: r.try_get("device_id")?,
        order_reference: r.try_get("order_reference")?,
        amount,
        status: status
            .parse()
            .map_err(|e: String| corrupt("payments.status", e))?,
        person_id: r.try_get("person_id")?,
        card_token: r.try_get("card_token")?,
        card_last4: r.try_get("card_last4")?,
        decline: decline
            .map(|d| d.parse().map_err(|e: String| corrupt("payments.decline", e)))
            .transpose()?,
        intent_id: r.try_get("intent_id")?,
        intent_version: u64_of(r, "intent_version")?,
        authorized_minor: u64_of(r, "authorized_minor")?,
        captured_minor: u64_of(r, "captured_minor")?,
        refunded_minor: u64_of(r, "refunded_minor")?,
        expires_at: r.try_get("expires_at")?,
        pending,
        palm_attempts: u32::try_from(u64_of(r, "palm_attempts")?)
            .map_err(|e| corrupt("payments.palm_attempts", e))?,
        step_up_attempts: u32::try_from(u64_of(r, "step_up_attempts")?)
            .map_err(|e| corrupt("payments.step_up_attempts", e))?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn refund_from_row(r: &AnyRow) -> Result<Refund> {
    let amount: i64 = r.try_get("amount_minor")?;
    Ok(Refund {
        id: r.try_get("id")?,
        payment_id: r.try_get("payment_id")?,
        amount_minor: u64::try_from(amount).map_err(|e| corrupt("payment_refunds.amount_minor", e))?,
        reason: r.try_get("reason")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn settings_from_row(r: &AnyRow) -> Result<PaymentSettings> {
    let opt = |col: &str| -> Result<Option<u64>> {
        let v: Option<i64> = r.try_get(col)?;
        v.map(|v| u64::try_from(v).map_err(|e| corrupt(&format!("payment_settings.{col}"), e)))
            .transpose()
    };
    let method: Option<String> = r.try_get("step_up_method")?;
    Ok(PaymentSettings {
        person_id: r.try_get("person_id")?,
        business_id: r.try_get("business_id")?,
        currency: r.try_get("currency")?,
        per_payment_limit_minor: opt("per_payment_limit_minor")?,
        daily_limit_minor: opt("daily_limit_minor")?,
        step_up_above_minor: opt("step_up_above_minor")?,
        step_up_method: method
            .map(|m| {
                m.parse()
                    .map_err(|e: String| corrupt("payment_settings.step_up_method", e))
            })
            .transpose()?,
        step_up_hash: r.try_get("step_up_hash")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Bind a payment's columns in `PAYMENT_COLS` order.
fn bind_payment<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    p: &'q Payment,
    pending: Option<String>,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    Ok(q.bind(&p.id)
        .bind(&p.business_id)
        .bind(&p.device_id)
        .bind(&p.order_reference)
        .bind(i64_of("amount", p.amount.minor)?)
        .bind(p.amount.code())
        .bind(p.status.as_str())
        .bind(&p.person_id)
        .bind(&p.card_token)
        .bind(&p.card_last4)
        .bind(p.decline.map(|d| d.as_str()))
        .bind(&p.intent_id)
        .bind(i64_of("intent_version", p.intent_version)?)
        .bind(i64_of("authorized", p.authorized_minor)?)
        .bind(i64_of("captured", p.captured_minor)?)
        .bind(i64_of("refunded", p.refunded_minor)?)
        .bind(p.expires_at)
        .bind(pending)
        .bind(i64::from(p.palm_attempts))
        .bind(i64::from(p.step_up_attempts))
        .bind(p.version)
        .bind(p.created_at)
        .bind(p.updated_at))
}

async fn spent_today_in(c: &mut AnyConnection, d: &DailyLimit, except: &str) -> Result<u64> {
    // Held or taken today at this store: authorising, authorised, captured (less refunds).
    let rows = sqlx::query(
        "SELECT amount_minor, captured_minor, refunded_minor, status FROM payments
         WHERE person_id = $1 AND business_id = $2 AND currency = $3 AND created_at >= $4 AND id <> $5
           AND status IN ('authorizing', 'authorized', 'captured', 'refunded')",
    )
    .bind(&d.person_id)
    .bind(&d.business_id)
    .bind(&d.currency)
    .bind(d.day_start)
    .bind(except)
    .fetch_all(&mut *c)
    .await?;
    let mut sum = 0u64;
    for r in &rows {
        let status: String = r.try_get("status")?;
        let v = if status == "captured" || status == "refunded" {
            u64_of(r, "captured_minor")?.saturating_sub(u64_of(r, "refunded_minor")?)
        } else {
            u64_of(r, "amount_minor")?
        };
        sum = sum.saturating_add(v);
    }
    Ok(sum)
}

/// Erasing a person: their settings go, their payments stay as the stores' records without
/// the person.
pub(crate) async fn forget_person_in(c: &mut AnyConnection, person_id: &str) -> Result<()> {
    for table in ["payment_settings", "offer_optins"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE person_id = $1"))
            .bind(person_id)
            .execute(&mut *c)
            .await?;
    }
    sqlx::query("UPDATE payments SET person_id = NULL WHERE person_id = $1")
        .bind(person_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn in_list(n: usize, first: usize) -> String {
    (0..n)
        .map(|i| format!("${}", first + i))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl PaymentStore for SqlStore {
    async fn write_payment(&self, w: &PaymentWrite) -> Result<PaymentWritten> {
        let p = &w.payment;
        let pending = p
            .pending
            .as_ref()
            .map(|op| serde_json::to_string(op).map_err(|e| corrupt("payments.pending", e)))
            .transpose()?;
        let mut tx = self.pool.begin().await?;
        match w.expected_version {
            Some(expected) => {
                let sets = PAYMENT_COLS
                    .split(", ")
                    .enumerate()
                    .skip(1)
                    .map(|(i, c)| format!("{c} = ${}", i + 1))
                    .collect::<Vec<_>>()
                    .join(", ");
                let n = PAYMENT_COLS.split(", ").count();
                let sql = format!(
                    "UPDATE payments SET {sets} WHERE id = $1 AND version = ${}",
                    n + 1
                );
                let q = bind_payment(sqlx::query(&sql), p, pending)?.bind(expected);
                let r = q.execute(&mut *tx).await?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(PaymentWritten::Stale);
                }
            }
            None => {
                let n = PAYMENT_COLS.split(", ").count();
                let sql = format!("INSERT INTO payments ({PAYMENT_COLS}) VALUES ({})", in_list(n, 1));
                if let Err(e) = bind_payment(sqlx::query(&sql), p, pending)?
                    .execute(&mut *tx)
                    .await
                {
                    if is_unique_violation(&e) {
                        return Err(StoreError::Conflict("order_reference".into()));
                    }
                    return Err(e.into());
                }
            }
        }
        if let Some(d) = &w.daily_limit {
            // Queue this person's payment decisions at this store behind one another.
            sqlx::query(
                "UPDATE payment_settings SET version = version + 1 WHERE person_id = $1 AND business_id = $2",
            )
            .bind(&d.person_id)
            .bind(&d.business_id)
            .execute(&mut *tx)
            .await?;
            let spent = spent_today_in(&mut tx, d, &p.id).await?;
            if spent.saturating_add(p.amount.minor) > d.limit_minor {
                tx.rollback().await?;
                return Ok(PaymentWritten::OverDailyLimit);
            }
        }
        if let Some(r) = &w.refund {
            sqlx::query(
                "INSERT INTO payment_refunds (id, payment_id, amount_minor, reason, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET status = $5, updated_at = $7",
            )
            .bind(&r.id)
            .bind(&r.payment_id)
            .bind(i64_of("refund", r.amount_minor)?)
            .bind(&r.reason)
            .bind(&r.status)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(idem) = &w.idem {
            save_idempotency_in(&mut tx, idem).await?;
        }
        if let Some(l) = &w.match_log {
            insert_match_log_in(&mut *tx, l).await?;
        }
        insert_events_in(&mut tx, &w.events).await?;
        tx.commit().await?;
        Ok(PaymentWritten::Written)
    }

    async fn payment(&self, business_id: &str, id: &str) -> Result<Option<Payment>> {
        let r = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE business_id = $1 AND id = $2"
        ))
        .bind(business_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(payment_from_row).transpose()
    }

    async fn payment_by_intent(&self, intent_id: &str) -> Result<Option<Payment>> {
        let r = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE intent_id = $1"
        ))
        .bind(intent_id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(payment_from_row).transpose()
    }

    async fn list_payments(
        &self,
        business_id: &str,
        filter: &PaymentFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Payment>> {
        let (at, id) = page_start(after);
        let mut sql = format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE business_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))"
        );
        let mut next = 4;
        if filter.person_id.is_some() {
            sql.push_str(&format!(" AND person_id = ${next}"));
            next += 1;
        }
        if !filter.statuses.is_empty() {
            sql.push_str(&format!(
                " AND status IN ({})",
                in_list(filter.statuses.len(), next)
            ));
            next += filter.statuses.len();
        }
        sql.push_str(&format!(" ORDER BY created_at, id LIMIT ${next}"));
        let mut q = sqlx::query(&sql).bind(business_id).bind(at).bind(id);
        if let Some(p) = &filter.person_id {
            q = q.bind(p);
        }
        for s in &filter.statuses {
            q = q.bind(s);
        }
        let rows = q.bind(i64::from(limit) + 1).fetch_all(&self.pool).await?;
        page_of(rows, limit)
    }

    async fn payments_of_person(
        &self,
        person_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Payment>> {
        let (at, id) = page_start(after);
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE person_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
             ORDER BY created_at, id LIMIT $4"
        ))
        .bind(person_id)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        page_of(rows, limit)
    }

    async fn outstanding_payments(&self, person_id: &str) -> Result<Vec<Payment>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE person_id = $1
               AND (status IN ('step_up_required', 'authorizing', 'authorized') OR pending IS NOT NULL)
             ORDER BY created_at, id"
        ))
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn pending_payments(&self, limit: u32) -> Result<Vec<Payment>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE pending IS NOT NULL ORDER BY updated_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn lapsed_authorizations(&self, now: i64, limit: u32) -> Result<Vec<Payment>> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE status = 'authorized' AND pending IS NULL AND expires_at <= $1
             ORDER BY expires_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>> {
        let rows = sqlx::query(
            "SELECT id, payment_id, amount_minor, reason, status, created_at, updated_at FROM payment_refunds
             WHERE payment_id = $1 ORDER BY created_at, id",
        )
        .bind(payment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn payment_settings(&self, person_id: &str, business_id: &str) -> Result<Option<PaymentSettings>> {
        let r = sqlx::query(
            "SELECT person_id, business_id, currency, per_payment_limit_minor, daily_limit_minor, step_up_above_minor,
                    step_up_method, step_up_hash, updated_at
             FROM payment_settings WHERE person_id = $1 AND business_id = $2",
        )
        .bind(person_id)
        .bind(business_id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(settings_from_row).transpose()
    }

    async fn set_offer_optin(
        &self,
        person_id: &str,
        business_id: &str,
        opted_in: bool,
        at: i64,
    ) -> Result<()> {
        let q = if opted_in {
            sqlx::query(
                "INSERT INTO offer_optins (person_id, business_id, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (person_id, business_id) DO NOTHING",
            )
            .bind(person_id)
            .bind(business_id)
            .bind(at)
        } else {
            sqlx::query("DELETE FROM offer_optins WHERE person_id = $1 AND business_id = $2")
                .bind(person_id)
                .bind(business_id)
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    async fn offer_optin(&self, person_id: &str, business_id: &str) -> Result<Option<i64>> {
        let r = sqlx::query("SELECT created_at FROM offer_optins WHERE person_id = $1 AND business_id = $2")
            .bind(person_id)
            .bind(business_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get("created_at")).transpose()?)
    }

    async fn insert_offer(&self, o: &OfferRule, idem: Option<&IdempotencyWrite>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO offers (id, business_id, title, currency, min_payments, min_spent_minor, window_days, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&o.id)
        .bind(&o.business_id)
        .bind(&o.title)
        .bind(&o.currency)
        .bind(i64_of("min_payments", o.min_payments)?)
        .bind(i64_of("min_spent", o.min_spent_minor)?)
        .bind(i64_of("window_days", o.window_days)?)
        .bind(o.created_at)
        .execute(&mut *tx)
        .await?;
        if let Some(i) = idem {
            save_idempotency_in(&mut tx, i).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn offers(&self, business_id: &str) -> Result<Vec<OfferRule>> {
        let rows = sqlx::query(
            "SELECT id, business_id, title, currency, min_payments, min_spent_minor, window_days, created_at
             FROM offers WHERE business_id = $1 ORDER BY created_at, id",
        )
        .bind(business_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OfferRule {
                    id: r.try_get("id")?,
                    business_id: r.try_get("business_id")?,
                    title: r.try_get("title")?,
                    currency: r.try_get("currency")?,
                    min_payments: u64_of(r, "min_payments")?,
                    min_spent_minor: u64_of(r, "min_spent_minor")?,
                    window_days: u64_of(r, "window_days")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn purchase_stats(
        &self,
        person_id: &str,
        business_id: &str,
        currency: &str,
        since: i64,
    ) -> Result<PurchaseStats> {
        // Only this business's rows: the query names it, nothing else is read.
        let rows = sqlx::query(
            "SELECT captured_minor, refunded_minor, created_at FROM payments
             WHERE person_id = $1 AND business_id = $2 AND currency = $3 AND created_at >= $4
               AND status IN ('captured', 'refunded')",
        )
        .bind(person_id)
        .bind(business_id)
        .bind(currency)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut s = PurchaseStats::default();
        for r in &rows {
            let net = u64_of(r, "captured_minor")?.saturating_sub(u64_of(r, "refunded_minor")?);
            if net == 0 {
                continue;
            }
            s.payments += 1;
            s.spent_minor = s.spent_minor.saturating_add(net);
            let at: i64 = r.try_get("created_at")?;
            s.last_at = Some(s.last_at.map_or(at, |l: i64| l.max(at)));
        }
        Ok(s)
    }

    async fn save_idempotency(&self, idem: &IdempotencyWrite) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        save_idempotency_in(&mut tx, idem).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_payment_settings(&self, s: &PaymentSettings) -> Result<()> {
        let opt = |v: Option<u64>| v.map(|v| i64_of("limit", v)).transpose();
        sqlx::query(
            "INSERT INTO payment_settings (person_id, business_id, currency, per_payment_limit_minor, daily_limit_minor,
                 step_up_above_minor, step_up_method, step_up_hash, version, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9)
             ON CONFLICT (person_id, business_id) DO UPDATE SET currency = $3, per_payment_limit_minor = $4,
                 daily_limit_minor = $5, step_up_above_minor = $6, step_up_method = $7, step_up_hash = $8,
                 version = payment_settings.version + 1, updated_at = $9",
        )
        .bind(&s.person_id)
        .bind(&s.business_id)
        .bind(&s.currency)
        .bind(opt(s.per_payment_limit_minor)?)
        .bind(opt(s.daily_limit_minor)?)
        .bind(opt(s.step_up_above_minor)?)
        .bind(s.step_up_method.map(|m| m.as_str()))
        .bind(&s.step_up_hash)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn page_of(rows: Vec<AnyRow>, limit: u32) -> Result<Page<Payment>> {
    let mut items = rows.iter().map(payment_from_row).collect::<Result<Vec<_>>>()?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|p| Cursor {
            at: p.created_at,
            id: p.id.clone(),
        })
    } else {
        None
    };
    Ok(Page { items, next })
}
