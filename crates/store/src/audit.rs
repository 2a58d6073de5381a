//! Storage of the audit log: append and read, never update or delete.

use crate::{corrupt, Result, SqlStore};
use async_trait::async_trait;
use openpalm_domain::audit::{AuditEntry, AuditRecord};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The audit log's storage; part of every [`crate::Store`].
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append chained records (in one transaction).
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()>;
    /// The last record's (seq, hash).
    async fn audit_head(&self) -> Result<Option<(i64, String)>>;
    /// Records after `after_seq`, in order.
    async fn audit_records(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>>;
    /// The records about one person, in order.
    async fn audit_of_subject(&self, person_id: &str) -> Result<Vec<AuditRecord>>;
}

const COLS: &str = "seq, at, actor, action, subject, request_id, status, prev_hash, hash";

fn record(r: &AnyRow) -> Result<AuditRecord> {
    let status: i64 = r.try_get("status")?;
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        entry: AuditEntry {
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            subject: r.try_get("subject")?,
            request_id: r.try_get("request_id")?,
            status: u16::try_from(status).map_err(|e| corrupt("audit_log.status", e))?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query(&format!(
                "INSERT INTO audit_log ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(r.seq)
            .bind(r.entry.at)
            .bind(&r.entry.actor)
            .bind(&r.entry.action)
            .bind(&r.entry.subject)
            .bind(&r.entry.request_id)
            .bind(i64::from(r.entry.status))
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        let r = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?))).transpose()
    }

    async fn audit_records(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn audit_of_subject(&self, person_id: &str) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM audit_log WHERE subject = $1 ORDER BY seq"
        ))
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }
}

impl SqlStore {
    /// Run one statement as given (for tools and tests that must reach past the trait, e.g.
    /// to show that tampering with the audit log is detected).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }
}
