//! OpenPalm's storage: the [`Store`] trait, and [`SqlStore`], its implementation over sqlx's
//! `Any` driver.
//!
//! The schema (`migrations/`) and every statement use portable SQL (TEXT, BIGINT, DOUBLE
//! PRECISION; `$n` parameters; binary values as hex), so the same code and the same
//! migrations run on SQLite (the embedded default: one file in the data folder) and on
//! PostgreSQL (`postgres://` URL); `scripts/test-postgres.sh` runs the service suite on
//! PostgreSQL. SQLite files are put in WAL mode. Changes that businesses hear of write their
//! webhook events to the outbox (`webhook_events`, `webhook_deliveries`) in the same
//! transaction; creates write their `Idempotency-Key` record in the same transaction too.

use async_trait::async_trait;
use openpalm_domain::apikey::{scopes_from_string, scopes_to_string, Environment};
use openpalm_domain::decision::Decision;
use openpalm_domain::model::{
    ApiKeyRecord, Business, ConsentRecord, ConsentText, Device, EncryptedTemplate, Link, MatchLogEntry,
    Membership, OutboxEvent, Person, WebhookEndpoint,
};
use openpalm_domain::webhook::{event_types_from_string, event_types_to_string, EventType};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

mod entry;
pub use entry::{EntryStore, EventCounts, GateCount, LaneWrite, TicketMove};
mod audit;
pub use audit::AuditStore;
mod payment;
mod person;
pub use payment::{
    DailyLimit, OfferRule, PaymentFilter, PaymentStore, PaymentWrite, PaymentWritten, PurchaseStats, Refund,
};
pub use person::{Challenge, PersonStore, Session};
mod quarantine;
pub use quarantine::{QuarantineStore, Quarantined};
mod summary;
pub use summary::{BusinessSummary, PassageTally, PaymentTally, SummaryStore};

/// The schema migrations, embedded in the binary and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. the same member ID linked twice).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The `Idempotency-Key` was taken by another request meanwhile; nothing was written.
    #[error("the idempotency key was used meanwhile")]
    IdempotencyKeyTaken,
    /// A stored value cannot be read back (written by something else, or damaged).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where a page starts: after the row with this (time, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    /// Opaque text form: `<time>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (at, id) = s.split_once('.')?;
        let at = at.parse().ok()?;
        if id.is_empty() || id.len() > 128 {
            return None;
        }
        Some(Cursor {
            at,
            id: id.to_string(),
        })
    }
}

/// A page of results and the cursor of the next one.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` rows fetched in order: the extra row only says that
    /// there is a next page, which starts after the last row kept.
    pub(crate) fn of(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> Cursor) -> Page<T> {
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(cursor)
        } else {
            None
        };
        Page { items, next }
    }
}

/// Where a keyset page starts: the (time, id) after which rows are listed (the very start
/// without a cursor).
pub(crate) fn page_start(after: Option<&Cursor>) -> (i64, String) {
    after
        .map(|c| (c.at, c.id.clone()))
        .unwrap_or((i64::MIN, String::new()))
}

/// A stored response to an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub status: u16,
    pub response: String,
}

/// The response to an `Idempotency-Key`, written in the same transaction as what the request
/// creates: either both are kept or neither, so a retry after a crash finds either the stored
/// response or nothing created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyWrite {
    pub business_id: String,
    pub key: String,
    pub record: IdempotencyRecord,
    pub at: i64,
}

/// Everything one enrollment writes, in one transaction.
#[derive(Clone, Debug)]
pub struct EnrollmentWrite {
    pub person: Person,
    pub templates: Vec<EncryptedTemplate>,
    pub consent: ConsentRecord,
    pub membership: Membership,
    pub links: Vec<Link>,
    pub idempotency_key: String,
    pub idempotency: IdempotencyRecord,
    /// Webhook events (`person.linked` for each link).
    pub events: Vec<OutboxEvent>,
}

/// A webhook delivery that is due, with what it takes to send it.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub event_id: String,
    pub endpoint_id: String,
    pub business_id: String,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
}

/// How one delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Failed; try again at `next_attempt_ms`.
    Retry {
        status: Option<u16>,
        error: String,
        next_attempt_ms: i64,
    },
    /// Failed for the last time.
    GiveUp { status: Option<u16>, error: String },
}

/// One delivery as a business sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: EventType,
    pub endpoint_id: String,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A person as loaded at start: their wrapped data key and encrypted templates.
#[derive(Clone, Debug)]
pub struct StoredPerson {
    pub person: Person,
    pub templates: Vec<EncryptedTemplate>,
}

/// The service's storage.
#[async_trait]
pub trait Store:
    EntryStore + PaymentStore + PersonStore + AuditStore + SummaryStore + QuarantineStore + Send + Sync
{
    async fn create_business(&self, business: &Business, first_key: &ApiKeyRecord) -> Result<()>;
    async fn business(&self, id: &str) -> Result<Option<Business>>;

    /// Insert a key, and the request's idempotency record in the same transaction.
    async fn insert_api_key(&self, key: &ApiKeyRecord, idem: Option<&IdempotencyWrite>) -> Result<()>;
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>>;
    async fn api_key(&self, business_id: &str, id: &str) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, business_id: &str) -> Result<Vec<ApiKeyRecord>>;
    /// Revoke a key of this business; false if there is no such live key.
    async fn revoke_api_key(&self, business_id: &str, id: &str, at: i64) -> Result<bool>;
    /// Revoke `old_id` and insert `new` (and the idempotency record) in one transaction;
    /// false if `old_id` is not live.
    async fn rotate_api_key(
        &self,
        business_id: &str,
        old_id: &str,
        new: &ApiKeyRecord,
        at: i64,
        idem: Option<&IdempotencyWrite>,
    ) -> Result<bool>;

    /// Insert a device, and the request's idempotency record in the same transaction.
    async fn insert_device(&self, device: &Device, idem: Option<&IdempotencyWrite>) -> Result<()>;
    /// A device by ID, whatever its business (the caller checks the tenant).
    async fn device(&self, id: &str) -> Result<Option<Device>>;
    async fn revoke_device(&self, business_id: &str, id: &str, at: i64) -> Result<bool>;
    async fn list_devices(
        &self,
        business_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Device>>;
    /// Record capture nonces of one device, all or none: false (and nothing written) when
    /// the device already used any of them.
    async fn record_nonces(&self, device_id: &str, nonces_hex: &[String], at: i64) -> Result<bool>;
    /// Forget nonces seen before `before` (unix seconds); returns how many went.
    async fn prune_nonces(&self, before: i64) -> Result<u64>;

    async fn current_consent_text(&self) -> Result<Option<ConsentText>>;
    async fn consent_text(&self, version: i64) -> Result<Option<ConsentText>>;

    async fn idempotency(&self, business_id: &str, key: &str) -> Result<Option<IdempotencyRecord>>;
    /// Write an enrollment atomically. `IdempotencyKeyTaken` if the idempotency key was taken
    /// meanwhile.
    async fn enroll(&self, write: &EnrollmentWrite) -> Result<()>;
    /// Write many enrollments in one transaction, all or none (bulk imports and the gate
    /// bench's seeding: the same statements as [`Store::enroll`]).
    async fn enroll_many(&self, writes: &[EnrollmentWrite]) -> Result<()>;
    async fn next_person_seq(&self) -> Result<i64>;
    /// Every person with a key, with their encrypted templates.
    async fn people(&self) -> Result<Vec<StoredPerson>> {
        self.people_in(i64::MIN, i64::MAX).await
    }
    /// The persons with a key whose sequence number is in `from..to`, in order, with their
    /// encrypted templates: loading a large population a page at a time.
    async fn people_in(&self, from: i64, to: i64) -> Result<Vec<StoredPerson>>;
    async fn memberships(&self) -> Result<Vec<Membership>>;
    async fn membership_by_pseudonym(
        &self,
        business_id: &str,
        pseudonymous_id: &str,
    ) -> Result<Option<Membership>>;
    async fn membership(&self, business_id: &str, person_id: &str) -> Result<Option<Membership>>;
    /// Every business a person is a member of.
    async fn memberships_of(&self, person_id: &str) -> Result<Vec<Membership>>;

    /// Make an enrolled person a member of another business (with the person present):
    /// membership, consent record, links, idempotency record and webhook events in one
    /// transaction. `Conflict` if already a member or a link value is taken.
    async fn join(
        &self,
        membership: &Membership,
        consent: &ConsentRecord,
        links: &[Link],
        idem: Option<&IdempotencyWrite>,
        events: &[OutboxEvent],
    ) -> Result<()>;

    /// Crypto-shred a person: their wrapped data key and templates, memberships, links and
    /// match log lines are deleted in one transaction (the person row stays as a tombstone
    /// without a key; consent records stay as the record of what was agreed), with `events`
    /// (`person.deleted` to each business) written in the same transaction. False (and
    /// nothing written) if the person has no key (already erased or unknown).
    async fn erase_person(&self, person_id: &str, events: &[OutboxEvent]) -> Result<bool>;

    /// Insert a link with the request's idempotency record and its webhook events, in one
    /// transaction. `Conflict` if this business already linked the same value.
    async fn insert_link(
        &self,
        link: &Link,
        idem: Option<&IdempotencyWrite>,
        events: &[OutboxEvent],
    ) -> Result<()>;
    async fn links(&self, business_id: &str, person_id: &str) -> Result<Vec<Link>>;
    /// Delete one link of this business's person, with its webhook events, in one
    /// transaction; false (and nothing written) if there is no such link.
    async fn delete_link(
        &self,
        business_id: &str,
        person_id: &str,
        link_id: &str,
        events: &[OutboxEvent],
    ) -> Result<bool>;

    /// Register a webhook endpoint (with the request's idempotency record).
    async fn create_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        idem: Option<&IdempotencyWrite>,
    ) -> Result<()>;
    /// A live (not deleted) endpoint of this business.
    async fn webhook_endpoint(&self, business_id: &str, id: &str) -> Result<Option<WebhookEndpoint>>;
    /// The business's live endpoints, oldest first.
    async fn list_webhook_endpoints(&self, business_id: &str) -> Result<Vec<WebhookEndpoint>>;
    /// Delete an endpoint and cancel its pending deliveries; false if there is no such live
    /// endpoint.
    async fn delete_webhook_endpoint(&self, business_id: &str, id: &str, at: i64) -> Result<bool>;
    /// Pending deliveries due at `now_ms`, oldest first.
    async fn due_webhook_deliveries(&self, now_ms: i64, limit: u32) -> Result<Vec<DueDelivery>>;
    /// Take a due delivery for one attempt: moves its due time to `lease_until_ms` if it is
    /// still pending and due at `expected_next_ms`; false if another worker took it.
    async fn claim_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        expected_next_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool>;
    /// Record how an attempt ended.
    async fn finish_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        outcome: &DeliveryOutcome,
        at: i64,
    ) -> Result<()>;
    /// Deliveries still pending, due or not (the webhook backlog).
    async fn pending_webhook_deliveries(&self) -> Result<u64>;
    /// A trivial query: whether the database answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Deliveries to one endpoint of this business, newest first.
    async fn webhook_deliveries(
        &self,
        business_id: &str,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>>;

    async fn insert_match_log(&self, entry: &MatchLogEntry) -> Result<()>;
    async fn match_log(
        &self,
        business_id: &str,
        person_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<MatchLogEntry>>;
    async fn consents(&self, person_id: &str) -> Result<Vec<ConsentRecord>>;
}

/// [`Store`] over sqlx `Any`: SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    /// SQLite (secure deletion on; the write-ahead log truncated after an erasure).
    sqlite: bool,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>> {
    hex_decode(s).ok_or_else(|| corrupt(what, "not hex"))
}

fn hex_encode(b: &[u8]) -> String {
    hex::encode(b)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() || {
                let m = d.message().to_ascii_lowercase();
                m.contains("unique") || m.contains("duplicate key")
            }
        }
        _ => false,
    }
}

fn key_from_row(r: &AnyRow) -> Result<ApiKeyRecord> {
    let env: String = r.try_get("environment")?;
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        environment: env.parse().map_err(|e| corrupt("api_keys.environment", e))?,
        scopes: scopes_from_string(&scopes).map_err(|e| corrupt("api_keys.scopes", e))?,
        hash: r.try_get("key_hash")?,
        display_prefix: r.try_get("display_prefix")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn device_from_row(r: &AnyRow) -> Result<Device> {
    let kind: String = r.try_get("kind")?;
    let pk: String = r.try_get("public_key")?;
    Ok(Device {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        kind: kind.parse().map_err(|e| corrupt("devices.kind", e))?,
        site: r.try_get("site")?,
        public_key: unhex("devices.public_key", &pk)?
            .try_into()
            .map_err(|_| corrupt("devices.public_key", "not 32 bytes"))?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn membership_from_row(r: &AnyRow) -> Result<Membership> {
    Ok(Membership {
        person_id: r.try_get("person_id")?,
        business_id: r.try_get("business_id")?,
        pseudonymous_id: r.try_get("pseudonymous_id")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(crate) fn link_from_row(r: &AnyRow) -> Result<Link> {
    let kind: String = r.try_get("kind")?;
    Ok(Link {
        id: r.try_get("id")?,
        person_id: r.try_get("person_id")?,
        business_id: r.try_get("business_id")?,
        kind: kind.parse().map_err(|e| corrupt("links.kind", e))?,
        value: r.try_get("value")?,
        created_at: r.try_get("created_at")?,
    })
}

fn consent_text_from_row(r: &AnyRow) -> Result<ConsentText> {
    Ok(ConsentText {
        version: r.try_get("version")?,
        language: r.try_get("language")?,
        text: r.try_get("body")?,
        published_at: r.try_get("published_at")?,
    })
}

/// A deletion receipt written in the erasure's own transaction: (ID, subject, JSON).
pub type ReceiptRow<'a> = (&'a str, &'a str, &'a str);

impl SqlStore {
    /// [`Store::erase_person`], writing `receipt` in the same transaction (so a deletion
    /// never lands without its receipt, nor a receipt without its deletion).
    pub(crate) async fn erase_person_with(
        &self,
        person_id: &str,
        events: &[OutboxEvent],
        receipt: Option<ReceiptRow<'_>>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE people SET wrapped_key = NULL WHERE id = $1 AND wrapped_key IS NOT NULL")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        entry::forget_person_in(&mut tx, person_id).await?;
        payment::forget_person_in(&mut tx, person_id).await?;
        // The tombstone keeps no trace of the key either (secure deletion zeroes the old
        // value in the page).
        for table in [
            "templates",
            "memberships",
            "links",
            "match_log",
            "person_sessions",
            "quarantine",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE person_id = $1"))
                .bind(person_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((id, subject, json)) = receipt {
            sqlx::query(
                "INSERT INTO deletion_receipts (id, subject, receipt, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(subject)
            .bind(json)
            .bind(openpalm_domain::now_unix())
            .execute(&mut *tx)
            .await?;
        }
        insert_events_in(&mut tx, events).await?;
        tx.commit().await?;
        if self.sqlite {
            // The write-ahead log still holds the pages as they were before: copy it into
            // the database (where secure deletion zeroed them) and truncate it.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    /// Connect to `url` (`sqlite://PATH?mode=rwc` or `postgres://...`) and apply the
    /// migrations.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let max = if sqlite { 4 } else { 16 };
        let mut options = AnyPoolOptions::new().max_connections(max);
        if sqlite {
            // Deleted rows are overwritten with zeros, not left in free pages: an erased
            // person's wrapped key and templates cannot be read back from the file.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA secure_delete = ON").execute(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if url.starts_with("sqlite:") {
            // Write-ahead log: one sync per commit instead of the rollback journal's several,
            // and readers (identifications) no longer wait for a writer. Kept in the file.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore { pool, sqlite })
    }

    /// Create a fresh, empty PostgreSQL database `name` through `admin_url` (a database the
    /// user may connect to, e.g. `postgres://user@host/postgres`) and return its URL. For
    /// tests that run the suite on PostgreSQL.
    pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String> {
        sqlx::any::install_default_drivers();
        if !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(StoreError::Conflict(format!(
                "database name {name:?}: use a-z, 0-9 and _"
            )));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let cut = base
            .rfind('/')
            .filter(|&i| i > "postgres://".len())
            .unwrap_or(base.len());
        Ok(format!("{}/{name}", &base[..cut]))
    }

    /// The SQLite URL of a database file, created if missing.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn count(&self, sql: &str) -> Result<i64> {
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Rows in each table, for tests that check nothing was written.
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for t in [
            "businesses",
            "api_keys",
            "devices",
            "device_nonces",
            "people",
            "templates",
            "consents",
            "memberships",
            "links",
            "match_log",
            "idempotency",
            "webhook_endpoints",
            "webhook_events",
            "webhook_deliveries",
            "events",
            "event_gates",
            "tickets",
            "passages",
            "payments",
            "payment_refunds",
            "payment_settings",
            "offer_optins",
            "offers",
            "person_challenges",
            "person_sessions",
            "deletion_receipts",
            "quarantine",
        ] {
            out.push((t, self.count(&format!("SELECT COUNT(*) FROM {t}")).await?));
        }
        Ok(out)
    }
}

const KEY_COLS: &str =
    "id, business_id, environment, scopes, key_hash, display_prefix, created_at, revoked_at";
const DEVICE_COLS: &str = "id, business_id, kind, site, public_key, created_at, revoked_at";

async fn insert_key_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    k: &ApiKeyRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, business_id, environment, scopes, key_hash, display_prefix, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&k.id)
    .bind(&k.business_id)
    .bind(k.environment.as_str())
    .bind(scopes_to_string(&k.scopes))
    .bind(&k.hash)
    .bind(&k.display_prefix)
    .bind(k.created_at)
    .bind(k.revoked_at)
    .execute(e)
    .await?;
    Ok(())
}

/// Keep an idempotency record inside the caller's transaction; `IdempotencyKeyTaken` if the
/// key is taken (the caller's transaction is then dropped, so nothing is written).
async fn save_idempotency_in(c: &mut AnyConnection, w: &IdempotencyWrite) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO idempotency (business_id, idem_key, request_hash, status, response, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&w.business_id)
    .bind(&w.key)
    .bind(&w.record.request_hash)
    .bind(i64::from(w.record.status))
    .bind(&w.record.response)
    .bind(w.at)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::IdempotencyKeyTaken),
        Err(e) => Err(e.into()),
    }
}

/// Write events to the outbox inside the caller's transaction: the event row, and one
/// pending delivery for each live endpoint of its business that takes its type, due at once.
async fn insert_events_in(c: &mut AnyConnection, events: &[OutboxEvent]) -> Result<()> {
    for e in events {
        sqlx::query(
            "INSERT INTO webhook_events (id, business_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&e.id)
        .bind(&e.business_id)
        .bind(e.event_type.as_str())
        .bind(&e.payload)
        .bind(e.created_at)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_ms)
             SELECT $1, id, 'pending', 0, $2 FROM webhook_endpoints
             WHERE business_id = $3 AND deleted_at IS NULL AND (' ' || event_types || ' ') LIKE $4",
        )
        .bind(&e.id)
        .bind(e.created_at.saturating_mul(1000))
        .bind(&e.business_id)
        .bind(format!("% {} %", e.event_type.as_str()))
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

const ENDPOINT_COLS: &str = "id, business_id, url, event_types, secret_sealed, created_at, deleted_at";

fn endpoint_from_row(r: &AnyRow) -> Result<WebhookEndpoint> {
    let types: String = r.try_get("event_types")?;
    let sealed: String = r.try_get("secret_sealed")?;
    Ok(WebhookEndpoint {
        id: r.try_get("id")?,
        business_id: r.try_get("business_id")?,
        url: r.try_get("url")?,
        event_types: event_types_from_string(&types)
            .map_err(|e| corrupt("webhook_endpoints.event_types", e))?,
        secret_sealed: unhex("webhook_endpoints.secret_sealed", &sealed)?,
        created_at: r.try_get("created_at")?,
        deleted_at: r.try_get("deleted_at")?,
    })
}

fn opt_status(v: Option<i64>) -> Result<Option<u16>> {
    v.map(|s| u16::try_from(s).map_err(|e| corrupt("webhook_deliveries.last_status", e)))
        .transpose()
}

#[async_trait]
impl Store for SqlStore {
    async fn create_business(&self, b: &Business, first_key: &ApiKeyRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The business's test data is filed under its ID, its live data under a row of its
        // own (`openpalm_domain::apikey::Environment::partition`).
        for id in [b.id.clone(), Environment::Live.partition(&b.id)] {
            sqlx::query("INSERT INTO businesses (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(&b.name)
                .bind(b.created_at)
                .execute(&mut *tx)
                .await?;
        }
        insert_key_in(&mut *tx, first_key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn business(&self, id: &str) -> Result<Option<Business>> {
        let row = sqlx::query("SELECT id, name, created_at FROM businesses WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Business {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, idem: Option<&IdempotencyWrite>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        insert_key_in(&mut *tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn api_key(&self, business_id: &str, id: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE business_id = $1 AND id = $2"
        ))
        .bind(business_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_api_keys(&self, business_id: &str) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE business_id = $1 ORDER BY created_at, id"
        ))
        .bind(business_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, business_id: &str, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE business_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(business_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn rotate_api_key(
        &self,
        business_id: &str,
        old_id: &str,
        new: &ApiKeyRecord,
        at: i64,
        idem: Option<&IdempotencyWrite>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        let r = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE business_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(business_id)
        .bind(old_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_key_in(&mut *tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_device(&self, d: &Device, idem: Option<&IdempotencyWrite>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        sqlx::query(
            "INSERT INTO devices (id, business_id, kind, site, public_key, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.id)
        .bind(&d.business_id)
        .bind(d.kind.as_str())
        .bind(&d.site)
        .bind(hex_encode(&d.public_key))
        .bind(d.created_at)
        .bind(d.revoked_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn device(&self, id: &str) -> Result<Option<Device>> {
        let row = sqlx::query(&format!("SELECT {DEVICE_COLS} FROM devices WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }

    async fn revoke_device(&self, business_id: &str, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET revoked_at = $1 WHERE business_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(business_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn list_devices(
        &self,
        business_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Device>> {
        let (at, id) = page_start(after);
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE business_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
             ORDER BY created_at, id LIMIT $4"
        ))
        .bind(business_id)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items: Vec<Device> = rows.iter().map(device_from_row).collect::<Result<_>>()?;
        Ok(Page::of(items, limit, |d| Cursor {
            at: d.created_at,
            id: d.id.clone(),
        }))
    }

    async fn record_nonces(&self, device_id: &str, nonces_hex: &[String], at: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        for nonce in nonces_hex {
            let r = sqlx::query("INSERT INTO device_nonces (device_id, nonce, seen_at) VALUES ($1, $2, $3)")
                .bind(device_id)
                .bind(nonce)
                .bind(at)
                .execute(&mut *tx)
                .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn prune_nonces(&self, before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM device_nonces WHERE seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn current_consent_text(&self) -> Result<Option<ConsentText>> {
        let row = sqlx::query(
            "SELECT version, language, body, published_at FROM consent_texts ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(consent_text_from_row).transpose()
    }

    async fn consent_text(&self, version: i64) -> Result<Option<ConsentText>> {
        let row =
            sqlx::query("SELECT version, language, body, published_at FROM consent_texts WHERE version = $1")
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(consent_text_from_row).transpose()
    }

    async fn idempotency(&self, business_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency WHERE business_id = $1 AND idem_key = $2",
        )
        .bind(business_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let status: i64 = r.try_get("status")?;
            Ok(IdempotencyRecord {
                request_hash: r.try_get("request_hash")?,
                status: u16::try_from(status).map_err(|e| corrupt("idempotency.status", e))?,
                response: r.try_get("response")?,
            })
        })
        .transpose()
    }

    async fn enroll(&self, w: &EnrollmentWrite) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        enroll_in(&mut tx, w).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn enroll_many(&self, writes: &[EnrollmentWrite]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for w in writes {
            enroll_in(&mut tx, w).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_person_seq(&self) -> Result<i64> {
        Ok(self.count("SELECT COALESCE(MAX(seq), 0) + 1 FROM people").await?)
    }

    async fn people_in(&self, from: i64, to: i64) -> Result<Vec<StoredPerson>> {
        let rows = sqlx::query(
            "SELECT id, seq, wrapped_key, created_at, environment FROM people
             WHERE wrapped_key IS NOT NULL AND cancel_requested_at IS NULL AND seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut people = Vec::with_capacity(rows.len());
        let mut index = std::collections::HashMap::new();
        for r in &rows {
            let wrapped: String = r.try_get("wrapped_key")?;
            let person = Person {
                id: r.try_get("id")?,
                seq: r.try_get("seq")?,
                wrapped_key: unhex("people.wrapped_key", &wrapped)?,
                created_at: r.try_get("created_at")?,
                environment: r
                    .try_get::<String, _>("environment")?
                    .parse()
                    .map_err(|e| corrupt("people.environment", e))?,
            };
            index.insert(person.id.clone(), people.len());
            people.push(StoredPerson {
                person,
                templates: Vec::new(),
            });
        }
        let rows = sqlx::query(
            "SELECT t.person_id, t.hand, t.idx, t.sealed FROM templates t JOIN people p ON p.id = t.person_id
             WHERE p.wrapped_key IS NOT NULL AND p.cancel_requested_at IS NULL AND p.seq >= $1 AND p.seq < $2
             ORDER BY p.seq, t.hand, t.idx",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let person_id: String = r.try_get("person_id")?;
            let hand: String = r.try_get("hand")?;
            let sealed: String = r.try_get("sealed")?;
            let Some(&i) = index.get(&person_id) else {
                continue;
            };
            people[i].templates.push(EncryptedTemplate {
                person_id,
                hand: hand.parse().map_err(|e| corrupt("templates.hand", e))?,
                index: r.try_get("idx")?,
                sealed: unhex("templates.sealed", &sealed)?,
            });
        }
        Ok(people)
    }

    async fn memberships(&self) -> Result<Vec<Membership>> {
        let rows = sqlx::query("SELECT business_id, pseudonymous_id, person_id, created_at FROM memberships")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(membership_from_row).collect()
    }

    async fn membership_by_pseudonym(
        &self,
        business_id: &str,
        pseudonymous_id: &str,
    ) -> Result<Option<Membership>> {
        let row = sqlx::query(
            "SELECT business_id, pseudonymous_id, person_id, created_at FROM memberships
             WHERE business_id = $1 AND pseudonymous_id = $2",
        )
        .bind(business_id)
        .bind(pseudonymous_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(membership_from_row).transpose()
    }

    async fn membership(&self, business_id: &str, person_id: &str) -> Result<Option<Membership>> {
        let row = sqlx::query(
            "SELECT business_id, pseudonymous_id, person_id, created_at FROM memberships
             WHERE business_id = $1 AND person_id = $2",
        )
        .bind(business_id)
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(membership_from_row).transpose()
    }

    async fn memberships_of(&self, person_id: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT business_id, pseudonymous_id, person_id, created_at FROM memberships WHERE person_id = $1
             ORDER BY business_id",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(membership_from_row).collect()
    }

    async fn insert_link(
        &self,
        link: &Link,
        idem: Option<&IdempotencyWrite>,
        events: &[OutboxEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        insert_link_in(&mut *tx, link).await?;
        insert_events_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_link(
        &self,
        business_id: &str,
        person_id: &str,
        link_id: &str,
        events: &[OutboxEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM links WHERE business_id = $1 AND person_id = $2 AND id = $3")
            .bind(business_id)
            .bind(person_id)
            .bind(link_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_events_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn join(
        &self,
        m: &Membership,
        c: &ConsentRecord,
        links: &[Link],
        idem: Option<&IdempotencyWrite>,
        events: &[OutboxEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        let r = sqlx::query(
            "INSERT INTO memberships (business_id, pseudonymous_id, person_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&m.business_id)
        .bind(&m.pseudonymous_id)
        .bind(&m.person_id)
        .bind(m.created_at)
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::Conflict("already a member of this business".into()));
            }
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "INSERT INTO consents (person_id, business_id, text_version, given_at, device_id, site)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.person_id)
        .bind(&c.business_id)
        .bind(c.text_version)
        .bind(c.given_at)
        .bind(&c.device_id)
        .bind(&c.site)
        .execute(&mut *tx)
        .await?;
        for l in links {
            if let Err(e) = insert_link_in(&mut *tx, l).await {
                tx.rollback().await?;
                return Err(e);
            }
        }
        insert_events_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn erase_person(&self, person_id: &str, events: &[OutboxEvent]) -> Result<bool> {
        self.erase_person_with(person_id, events, None).await
    }

    async fn links(&self, business_id: &str, person_id: &str) -> Result<Vec<Link>> {
        let rows = sqlx::query(
            "SELECT id, business_id, person_id, kind, value, created_at FROM links
             WHERE business_id = $1 AND person_id = $2 ORDER BY created_at, id",
        )
        .bind(business_id)
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    async fn insert_match_log(&self, e: &MatchLogEntry) -> Result<()> {
        insert_match_log_in(&self.pool, e).await
    }

    async fn match_log(
        &self,
        business_id: &str,
        person_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<MatchLogEntry>> {
        let (at, id) = page_start(after);
        let rows = sqlx::query(
            "SELECT id, person_id, business_id, device_id, site, at, decision, score, event_id, outcome FROM match_log
             WHERE business_id = $1 AND person_id = $2 AND (at > $3 OR (at = $3 AND id > $4))
             ORDER BY at, id LIMIT $5",
        )
        .bind(business_id)
        .bind(person_id)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(match_log_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::of(items, limit, |e| Cursor {
            at: e.at,
            id: e.id.clone(),
        }))
    }

    async fn create_webhook_endpoint(
        &self,
        ep: &WebhookEndpoint,
        idem: Option<&IdempotencyWrite>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(w) = idem {
            save_idempotency_in(&mut tx, w).await?;
        }
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, business_id, url, event_types, secret_sealed, created_at, deleted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&ep.id)
        .bind(&ep.business_id)
        .bind(&ep.url)
        .bind(event_types_to_string(&ep.event_types))
        .bind(hex_encode(&ep.secret_sealed))
        .bind(ep.created_at)
        .bind(ep.deleted_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhook_endpoint(&self, business_id: &str, id: &str) -> Result<Option<WebhookEndpoint>> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE business_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind(business_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    async fn list_webhook_endpoints(&self, business_id: &str) -> Result<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE business_id = $1 AND deleted_at IS NULL
             ORDER BY created_at, id"
        ))
        .bind(business_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    async fn delete_webhook_endpoint(&self, business_id: &str, id: &str, at: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = $1 WHERE business_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(business_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'cancelled', finished_at = $1 WHERE endpoint_id = $2 AND state = 'pending'",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn pending_webhook_deliveries(&self) -> Result<u64> {
        let n = self
            .count("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'")
            .await?;
        u64::try_from(n).map_err(|e| corrupt("webhook_deliveries", e))
    }

    async fn ping(&self) -> Result<()> {
        self.count("SELECT COUNT(*) FROM (SELECT 1) AS one")
            .await
            .map(|_| ())
    }

    async fn due_webhook_deliveries(&self, now_ms: i64, limit: u32) -> Result<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.event_id, d.endpoint_id, d.attempts, d.next_attempt_ms, e.business_id, e.payload,
                    p.url, p.secret_sealed
             FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id
             JOIN webhook_endpoints p ON p.id = d.endpoint_id
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $1
             ORDER BY d.next_attempt_ms, d.event_id, d.endpoint_id LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get("attempts")?;
                let sealed: String = r.try_get("secret_sealed")?;
                Ok(DueDelivery {
                    event_id: r.try_get("event_id")?,
                    endpoint_id: r.try_get("endpoint_id")?,
                    business_id: r.try_get("business_id")?,
                    url: r.try_get("url")?,
                    secret_sealed: unhex("webhook_endpoints.secret_sealed", &sealed)?,
                    payload: r.try_get("payload")?,
                    attempts: u32::try_from(attempts)
                        .map_err(|e| corrupt("webhook_deliveries.attempts", e))?,
                    next_attempt_ms: r.try_get("next_attempt_ms")?,
                })
            })
            .collect()
    }

    async fn claim_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        expected_next_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_ms = $1
             WHERE event_id = $2 AND endpoint_id = $3 AND state = 'pending' AND next_attempt_ms = $4",
        )
        .bind(lease_until_ms)
        .bind(event_id)
        .bind(endpoint_id)
        .bind(expected_next_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn finish_webhook_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        outcome: &DeliveryOutcome,
        at: i64,
    ) -> Result<()> {
        let (state, status, error, next, finished) = match outcome {
            DeliveryOutcome::Delivered { status } => ("delivered", Some(*status), None, None, Some(at)),
            DeliveryOutcome::Retry {
                status,
                error,
                next_attempt_ms,
            } => (
                "pending",
                *status,
                Some(error.as_str()),
                Some(*next_attempt_ms),
                None,
            ),
            DeliveryOutcome::GiveUp { status, error } => {
                ("failed", *status, Some(error.as_str()), None, Some(at))
            }
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, last_error = $3,
                    next_attempt_ms = COALESCE($4, next_attempt_ms), finished_at = $5
             WHERE event_id = $6 AND endpoint_id = $7 AND state = 'pending'",
        )
        .bind(state)
        .bind(status.map(i64::from))
        .bind(error.map(|e| e.chars().take(500).collect::<String>()))
        .bind(next)
        .bind(finished)
        .bind(event_id)
        .bind(endpoint_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        business_id: &str,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "SELECT d.event_id, d.endpoint_id, d.state, d.attempts, d.next_attempt_ms, d.last_status, d.last_error,
                    e.event_type, e.created_at
             FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id
             JOIN webhook_endpoints p ON p.id = d.endpoint_id
             WHERE p.business_id = $1 AND d.endpoint_id = $2
             ORDER BY e.created_at DESC, d.event_id DESC LIMIT $3",
        )
        .bind(business_id)
        .bind(endpoint_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get("attempts")?;
                let event_type: String = r.try_get("event_type")?;
                Ok(DeliveryRecord {
                    event_id: r.try_get("event_id")?,
                    event_type: event_type
                        .parse()
                        .map_err(|e| corrupt("webhook_events.event_type", e))?,
                    endpoint_id: r.try_get("endpoint_id")?,
                    state: r.try_get("state")?,
                    attempts: u32::try_from(attempts)
                        .map_err(|e| corrupt("webhook_deliveries.attempts", e))?,
                    next_attempt_ms: r.try_get("next_attempt_ms")?,
                    last_status: opt_status(r.try_get("last_status")?)?,
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn consents(&self, person_id: &str) -> Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(
            "SELECT person_id, business_id, text_version, given_at, device_id, site FROM consents WHERE person_id = $1",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentRecord {
                    person_id: r.try_get("person_id")?,
                    business_id: r.try_get("business_id")?,
                    text_version: r.try_get("text_version")?,
                    given_at: r.try_get("given_at")?,
                    device_id: r.try_get("device_id")?,
                    site: r.try_get("site")?,
                })
            })
            .collect()
    }
}

/// One enrollment's statements, inside the caller's transaction (dropped, so rolled back, on
/// any error).
async fn enroll_in(c: &mut AnyConnection, w: &EnrollmentWrite) -> Result<()> {
    let idem = sqlx::query(
        "INSERT INTO idempotency (business_id, idem_key, request_hash, status, response, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&w.consent.business_id)
    .bind(&w.idempotency_key)
    .bind(&w.idempotency.request_hash)
    .bind(i64::from(w.idempotency.status))
    .bind(&w.idempotency.response)
    .bind(w.person.created_at)
    .execute(&mut *c)
    .await;
    match idem {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::IdempotencyKeyTaken),
        Err(e) => return Err(e.into()),
    }
    sqlx::query(
        "INSERT INTO people (id, seq, wrapped_key, created_at, environment) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&w.person.id)
    .bind(w.person.seq)
    .bind(hex_encode(&w.person.wrapped_key))
    .bind(w.person.created_at)
    .bind(w.person.environment.as_str())
    .execute(&mut *c)
    .await?;
    for t in &w.templates {
        sqlx::query("INSERT INTO templates (person_id, hand, idx, sealed) VALUES ($1, $2, $3, $4)")
            .bind(&t.person_id)
            .bind(t.hand.as_str())
            .bind(t.index)
            .bind(hex_encode(&t.sealed))
            .execute(&mut *c)
            .await?;
    }
    let consent = &w.consent;
    sqlx::query(
        "INSERT INTO consents (person_id, business_id, text_version, given_at, device_id, site)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&consent.person_id)
    .bind(&consent.business_id)
    .bind(consent.text_version)
    .bind(consent.given_at)
    .bind(&consent.device_id)
    .bind(&consent.site)
    .execute(&mut *c)
    .await?;
    let m = &w.membership;
    sqlx::query(
        "INSERT INTO memberships (business_id, pseudonymous_id, person_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&m.business_id)
    .bind(&m.pseudonymous_id)
    .bind(&m.person_id)
    .bind(m.created_at)
    .execute(&mut *c)
    .await?;
    for l in &w.links {
        insert_link_in(&mut *c, l).await?;
    }
    insert_events_in(c, &w.events).await?;
    Ok(())
}

pub(crate) fn match_log_from_row(r: &AnyRow) -> Result<MatchLogEntry> {
    let decision: String = r.try_get("decision")?;
    let score: f64 = r.try_get("score")?;
    Ok(MatchLogEntry {
        id: r.try_get("id")?,
        person_id: r.try_get("person_id")?,
        business_id: r.try_get("business_id")?,
        device_id: r.try_get("device_id")?,
        site: r.try_get("site")?,
        at: r.try_get("at")?,
        decision: decision
            .parse::<Decision>()
            .map_err(|e| corrupt("match_log.decision", e))?,
        score: score as f32,
        event_id: r.try_get("event_id")?,
        outcome: r.try_get("outcome")?,
    })
}

async fn insert_match_log_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    e: &MatchLogEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO match_log (id, person_id, business_id, device_id, site, at, decision, score, event_id, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&e.id)
    .bind(&e.person_id)
    .bind(&e.business_id)
    .bind(&e.device_id)
    .bind(&e.site)
    .bind(e.at)
    .bind(e.decision.as_str())
    .bind(f64::from(e.score))
    .bind(&e.event_id)
    .bind(&e.outcome)
    .execute(ex)
    .await?;
    Ok(())
}

async fn insert_link_in<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(e: E, l: &Link) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO links (id, business_id, person_id, kind, value, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&l.id)
    .bind(&l.business_id)
    .bind(&l.person_id)
    .bind(l.kind.as_str())
    .bind(&l.value)
    .bind(l.created_at)
    .execute(e)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "this business already linked this {} to someone",
            l.kind.as_str()
        ))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
