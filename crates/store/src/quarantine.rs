//! People whose stored data could not be read at start (a template that fails to decrypt or
//! to parse): recorded with the reason, left out of the gallery, and reported, rather than a
//! reason to refuse service to everyone else. Their rows are kept untouched for the operator.

use crate::{Result, SqlStore};
use async_trait::async_trait;
use sqlx::Row;

/// One quarantined person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub person_id: String,
    pub reason: String,
    pub detected_at: i64,
}

/// The quarantine's storage; part of every [`crate::Store`].
#[async_trait]
pub trait QuarantineStore: Send + Sync {
    /// Replace the quarantine with what this start found (one transaction).
    async fn replace_quarantine(&self, found: &[Quarantined]) -> Result<()>;
    /// Everyone quarantined, by person ID.
    async fn quarantined(&self) -> Result<Vec<Quarantined>>;
}

#[async_trait]
impl QuarantineStore for SqlStore {
    async fn replace_quarantine(&self, found: &[Quarantined]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM quarantine").execute(&mut *tx).await?;
        for q in found {
            sqlx::query("INSERT INTO quarantine (person_id, reason, detected_at) VALUES ($1, $2, $3)")
                .bind(&q.person_id)
                .bind(&q.reason)
                .bind(q.detected_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>> {
        let rows = sqlx::query("SELECT person_id, reason, detected_at FROM quarantine ORDER BY person_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Quarantined {
                    person_id: r.try_get("person_id")?,
                    reason: r.try_get("reason")?,
                    detected_at: r.try_get("detected_at")?,
                })
            })
            .collect()
    }
}
