//! Storage of the person's own access: sign-in challenges, sessions, deletion receipts, and
//! the reads that gather everything about one person across businesses (for the person only).

use crate::{corrupt, Result, SqlStore};
use async_trait::async_trait;
use openpalm_domain::entry::Passage;
use openpalm_domain::model::{Link, MatchLogEntry, OutboxEvent};
use sqlx::Row;

/// A sign-in challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    /// Keyed hash of the phone number it was asked for.
    pub phone_hash: String,
    pub person_id: Option<String>,
    pub code_hash: String,
    pub attempts: u32,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

/// A person's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub person_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// The storage of the person's side; part of every [`crate::Store`].
#[async_trait]
pub trait PersonStore: Send + Sync {
    /// The one person a phone hash is linked to (by any business); `None` if nobody or more
    /// than one (a code is then sent to no one).
    async fn person_by_phone_hash(&self, phone_hash: &str) -> Result<Option<String>>;
    async fn insert_challenge(&self, c: &Challenge) -> Result<()>;
    async fn challenge(&self, id: &str) -> Result<Option<Challenge>>;
    /// Challenges asked for this phone hash since `since`.
    async fn challenges_since(&self, phone_hash: &str, since: i64) -> Result<u32>;
    /// Count one wrong code; the attempts after it.
    async fn challenge_missed(&self, id: &str) -> Result<u32>;
    /// Spend the challenge (once): false if it was already used.
    async fn use_challenge(&self, id: &str, at: i64) -> Result<bool>;
    async fn insert_session(&self, token_hash: &str, s: &Session) -> Result<()>;
    async fn session(&self, token_hash: &str) -> Result<Option<Session>>;
    async fn revoke_session(&self, token_hash: &str, at: i64) -> Result<bool>;
    /// When the person enrolled, and whether they still have a key.
    async fn person_record(&self, person_id: &str) -> Result<Option<(i64, bool)>>;
    /// Templates per hand.
    async fn template_counts(&self, person_id: &str) -> Result<Vec<(String, u64)>>;
    /// Every lane decision about the person, at every business, oldest first.
    async fn passages_of_person(&self, person_id: &str) -> Result<Vec<Passage>>;
    /// Every identification of the person's palm, at every business, oldest first.
    async fn match_log_of_person(&self, person_id: &str) -> Result<Vec<MatchLogEntry>>;
    /// Every link the person has, at every business.
    async fn links_of_person(&self, person_id: &str) -> Result<Vec<Link>>;
    /// The person leaves one business: membership, that business's links, offer opt-in and
    /// payment settings removed, with `events` in the same transaction. False if they were not
    /// a member.
    async fn leave_business(
        &self,
        person_id: &str,
        business_id: &str,
        events: &[OutboxEvent],
    ) -> Result<bool>;
    /// Erase the person (as [`crate::Store::erase_person`]) and write their receipt in the same
    /// transaction. False if they had no key (already erased).
    async fn erase_with_receipt(
        &self,
        person_id: &str,
        events: &[OutboxEvent],
        receipt_id: &str,
        subject: &str,
        receipt_json: &str,
    ) -> Result<bool>;
    /// Record a cancellation (once): its time and the ID its receipt will have. False if one
    /// was already requested.
    async fn request_cancellation(&self, person_id: &str, receipt_id: &str, at: i64) -> Result<bool>;
    /// A requested cancellation: (requested at, receipt ID).
    async fn cancellation(&self, person_id: &str) -> Result<Option<(i64, String)>>;
    /// People whose cancellation waits to be completed.
    async fn cancelling_people(&self, limit: u32) -> Result<Vec<String>>;
    /// People enrolled before `before` and not identified since, with when they were
    /// notified (if they were).
    async fn dormant_people(&self, before: i64, limit: u32) -> Result<Vec<(String, Option<i64>)>>;
    /// Record the dormancy notice with its webhook events, in one transaction.
    async fn notify_dormancy(&self, person_id: &str, at: i64, events: &[OutboxEvent]) -> Result<()>;
    /// When the dormancy notice was sent, if it was.
    async fn dormancy_notice(&self, person_id: &str) -> Result<Option<i64>>;
    /// Record (or clear) the dormancy notice.
    async fn set_dormancy_notice(&self, person_id: &str, at: Option<i64>) -> Result<()>;
    /// People notified of dormancy who were identified after the notice (to clear it).
    async fn active_since_notice(&self, limit: u32) -> Result<Vec<String>>;
    async fn receipt(&self, id: &str) -> Result<Option<String>>;
}

#[async_trait]
impl PersonStore for SqlStore {
    async fn person_by_phone_hash(&self, phone_hash: &str) -> Result<Option<String>> {
        let rows = sqlx::query("SELECT DISTINCT person_id FROM links WHERE kind = 'phone' AND value = $1")
            .bind(phone_hash)
            .fetch_all(&self.pool)
            .await?;
        if rows.len() != 1 {
            return Ok(None);
        }
        Ok(Some(rows[0].try_get("person_id")?))
    }

    async fn insert_challenge(&self, c: &Challenge) -> Result<()> {
        sqlx::query(
            "INSERT INTO person_challenges (id, person_id, code_hash, attempts, expires_at, used_at, created_at, phone_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(&c.person_id)
        .bind(&c.code_hash)
        .bind(i64::from(c.attempts))
        .bind(c.expires_at)
        .bind(c.used_at)
        .bind(c.created_at)
        .bind(&c.phone_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn challenge(&self, id: &str) -> Result<Option<Challenge>> {
        let r = sqlx::query(
            "SELECT id, person_id, code_hash, attempts, expires_at, used_at, created_at, phone_hash FROM person_challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            let attempts: i64 = r.try_get("attempts")?;
            Ok(Challenge {
                id: r.try_get("id")?,
                phone_hash: r.try_get::<Option<String>, _>("phone_hash")?.unwrap_or_default(),
                person_id: r.try_get("person_id")?,
                code_hash: r.try_get("code_hash")?,
                attempts: u32::try_from(attempts).map_err(|e| corrupt("person_challenges.attempts", e))?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn challenges_since(&self, phone_hash: &str, since: i64) -> Result<u32> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM person_challenges WHERE phone_hash = $1 AND created_at >= $2",
        )
        .bind(phone_hash)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = r.try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn challenge_missed(&self, id: &str) -> Result<u32> {
        sqlx::query("UPDATE person_challenges SET attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(self.challenge(id).await?.map_or(u32::MAX, |c| c.attempts))
    }

    async fn use_challenge(&self, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE person_challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_session(&self, token_hash: &str, s: &Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO person_sessions (token_hash, person_id, expires_at, revoked_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&s.person_id)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .bind(s.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let r = sqlx::query(
            "SELECT person_id, expires_at, revoked_at, created_at FROM person_sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok(Session {
                person_id: r.try_get("person_id")?,
                expires_at: r.try_get("expires_at")?,
                revoked_at: r.try_get("revoked_at")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn revoke_session(&self, token_hash: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE person_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn person_record(&self, person_id: &str) -> Result<Option<(i64, bool)>> {
        let r = sqlx::query("SELECT created_at, wrapped_key FROM people WHERE id = $1")
            .bind(person_id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            let k: Option<String> = r.try_get("wrapped_key")?;
            Ok((r.try_get("created_at")?, k.is_some()))
        })
        .transpose()
    }

    async fn template_counts(&self, person_id: &str) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT hand, COUNT(*) AS n FROM templates WHERE person_id = $1 GROUP BY hand ORDER BY hand",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((r.try_get("hand")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    async fn passages_of_person(&self, person_id: &str) -> Result<Vec<Passage>> {
        crate::entry::passages_of_person(self, person_id).await
    }

    async fn match_log_of_person(&self, person_id: &str) -> Result<Vec<MatchLogEntry>> {
        let rows = sqlx::query(
            "SELECT id, person_id, business_id, device_id, site, at, decision, score, event_id, outcome FROM match_log
             WHERE person_id = $1 ORDER BY at, id",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::match_log_from_row).collect()
    }

    async fn links_of_person(&self, person_id: &str) -> Result<Vec<Link>> {
        let rows = sqlx::query(
            "SELECT id, business_id, person_id, kind, value, created_at FROM links WHERE person_id = $1 ORDER BY created_at, id",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::link_from_row).collect()
    }

    async fn leave_business(
        &self,
        person_id: &str,
        business_id: &str,
        events: &[OutboxEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM memberships WHERE person_id = $1 AND business_id = $2")
            .bind(person_id)
            .bind(business_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for table in ["links", "offer_optins", "payment_settings"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE person_id = $1 AND business_id = $2"
            ))
            .bind(person_id)
            .bind(business_id)
            .execute(&mut *tx)
            .await?;
        }
        crate::insert_events_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn erase_with_receipt(
        &self,
        person_id: &str,
        events: &[OutboxEvent],
        receipt_id: &str,
        subject: &str,
        receipt_json: &str,
    ) -> Result<bool> {
        self.erase_person_with(person_id, events, Some((receipt_id, subject, receipt_json)))
            .await
    }

    async fn request_cancellation(&self, person_id: &str, receipt_id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE people SET cancel_requested_at = $1, cancel_receipt_id = $2
             WHERE id = $3 AND cancel_requested_at IS NULL AND wrapped_key IS NOT NULL",
        )
        .bind(at)
        .bind(receipt_id)
        .bind(person_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn cancellation(&self, person_id: &str) -> Result<Option<(i64, String)>> {
        let r = sqlx::query(
            "SELECT cancel_requested_at, cancel_receipt_id FROM people WHERE id = $1 AND cancel_requested_at IS NOT NULL",
        )
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok((
                r.try_get("cancel_requested_at")?,
                r.try_get::<Option<String>, _>("cancel_receipt_id")?
                    .unwrap_or_default(),
            ))
        })
        .transpose()
    }

    async fn cancelling_people(&self, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM people WHERE cancel_requested_at IS NOT NULL AND wrapped_key IS NOT NULL
             ORDER BY cancel_requested_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn dormant_people(&self, before: i64, limit: u32) -> Result<Vec<(String, Option<i64>)>> {
        let rows = sqlx::query(
            "SELECT p.id, p.dormancy_notice_at FROM people p
             WHERE p.wrapped_key IS NOT NULL AND p.cancel_requested_at IS NULL AND p.created_at < $1
               AND NOT EXISTS (SELECT 1 FROM match_log m WHERE m.person_id = p.id AND m.at >= $1)
             ORDER BY p.created_at, p.id LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("dormancy_notice_at")?)))
            .collect()
    }

    async fn notify_dormancy(&self, person_id: &str, at: i64, events: &[OutboxEvent]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE people SET dormancy_notice_at = $1 WHERE id = $2 AND dormancy_notice_at IS NULL")
            .bind(at)
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        crate::insert_events_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dormancy_notice(&self, person_id: &str) -> Result<Option<i64>> {
        let r = sqlx::query("SELECT dormancy_notice_at FROM people WHERE id = $1")
            .bind(person_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get::<Option<i64>, _>("dormancy_notice_at"))
            .transpose()?
            .flatten())
    }

    async fn set_dormancy_notice(&self, person_id: &str, at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE people SET dormancy_notice_at = $1 WHERE id = $2")
            .bind(at)
            .bind(person_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn active_since_notice(&self, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT p.id FROM people p WHERE p.dormancy_notice_at IS NOT NULL AND p.wrapped_key IS NOT NULL
               AND EXISTS (SELECT 1 FROM match_log m WHERE m.person_id = p.id AND m.at >= p.dormancy_notice_at)
             LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn receipt(&self, id: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT receipt FROM deletion_receipts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get("receipt")).transpose()?)
    }
}
