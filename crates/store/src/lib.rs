//! OpenPalm's storage: the [`Store`] trait, and [`SqlStore`], its implementation over sqlx's
//! `Any` driver.
//!
//! The schema (`migrations/`) and every statement use portable SQL (TEXT, BIGINT, DOUBLE
//! PRECISION; `$n` parameters; binary values as hex), so the same code and the same
//! migrations run on SQLite (the embedded default: one file in the data folder) and on
//! PostgreSQL (`postgres://` URL). Only SQLite is exercised by the tests so far.

use async_trait::async_trait;
use openpalm_domain::apikey::{scopes_from_string, scopes_to_string};
use openpalm_domain::decision::Decision;
use openpalm_domain::model::{
    ApiKeyRecord, Business, ConsentRecord, ConsentText, Device, EncryptedTemplate, Link, MatchLogEntry,
    Membership, Person,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// The schema migrations, embedded in the binary and applied on start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. the same member ID linked twice).
    #[error("conflict: {0}")]
    Conflict(String),
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

/// A stored response to an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub status: u16,
    pub response: String,
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
}

/// A person as loaded at start: their wrapped data key and encrypted templates.
#[derive(Clone, Debug)]
pub struct StoredPerson {
    pub person: Person,
    pub templates: Vec<EncryptedTemplate>,
}

/// The service's storage.
#[async_trait]
pub trait Store: Send + Sync {
    async fn create_business(&self, business: &Business, first_key: &ApiKeyRecord) -> Result<()>;
    async fn business(&self, id: &str) -> Result<Option<Business>>;

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>>;
    async fn api_key(&self, business_id: &str, id: &str) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, business_id: &str) -> Result<Vec<ApiKeyRecord>>;
    /// Revoke a key of this business; false if there is no such live key.
    async fn revoke_api_key(&self, business_id: &str, id: &str, at: i64) -> Result<bool>;
    /// Revoke `old_id` and insert `new` in one transaction; false if `old_id` is not live.
    async fn rotate_api_key(
        &self,
        business_id: &str,
        old_id: &str,
        new: &ApiKeyRecord,
        at: i64,
    ) -> Result<bool>;

    async fn insert_device(&self, device: &Device) -> Result<()>;
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

    async fn current_consent_text(&self) -> Result<Option<ConsentText>>;
    async fn consent_text(&self, version: i64) -> Result<Option<ConsentText>>;

    async fn idempotency(&self, business_id: &str, key: &str) -> Result<Option<IdempotencyRecord>>;
    /// Keep the response to an `Idempotency-Key`; false if the key was taken meanwhile.
    async fn save_idempotency(
        &self,
        business_id: &str,
        key: &str,
        record: &IdempotencyRecord,
        at: i64,
    ) -> Result<bool>;
    /// Write an enrollment atomically. `Conflict` if the idempotency key was taken meanwhile.
    async fn enroll(&self, write: &EnrollmentWrite) -> Result<()>;
    async fn next_person_seq(&self) -> Result<i64>;
    async fn people(&self) -> Result<Vec<StoredPerson>>;
    async fn memberships(&self) -> Result<Vec<Membership>>;
    async fn membership_by_pseudonym(
        &self,
        business_id: &str,
        pseudonymous_id: &str,
    ) -> Result<Option<Membership>>;
    async fn membership(&self, business_id: &str, person_id: &str) -> Result<Option<Membership>>;

    /// Make an enrolled person a member of another business (with the person present):
    /// membership, consent record and links in one transaction. `Conflict` if already a
    /// member or a link value is taken.
    async fn join(&self, membership: &Membership, consent: &ConsentRecord, links: &[Link]) -> Result<()>;

    /// Crypto-shred a person: their wrapped data key and templates, memberships, links and
    /// match log lines are deleted in one transaction (the person row stays as a tombstone
    /// without a key; consent records stay as the record of what was agreed). False if the
    /// person has no key (already erased or unknown).
    async fn erase_person(&self, person_id: &str) -> Result<bool>;

    /// `Conflict` if this business already linked the same value.
    async fn insert_link(&self, link: &Link) -> Result<()>;
    async fn links(&self, business_id: &str, person_id: &str) -> Result<Vec<Link>>;

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

fn link_from_row(r: &AnyRow) -> Result<Link> {
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

impl SqlStore {
    /// Connect to `url` (`sqlite://PATH?mode=rwc` or `postgres://...`) and apply the
    /// migrations.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let max = if url.starts_with("sqlite:") { 4 } else { 16 };
        let pool = AnyPoolOptions::new().max_connections(max).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore { pool })
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

#[async_trait]
impl Store for SqlStore {
    async fn create_business(&self, b: &Business, first_key: &ApiKeyRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO businesses (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&b.id)
            .bind(&b.name)
            .bind(b.created_at)
            .execute(&mut *tx)
            .await?;
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

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        insert_key_in(&self.pool, key).await
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
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
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

    async fn insert_device(&self, d: &Device) -> Result<()> {
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
        .execute(&self.pool)
        .await?;
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
        let (at, id) = after
            .map(|c| (c.at, c.id.clone()))
            .unwrap_or((i64::MIN, String::new()));
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
        let mut items: Vec<Device> = rows.iter().map(device_from_row).collect::<Result<_>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|d| Cursor {
                at: d.created_at,
                id: d.id.clone(),
            })
        } else {
            None
        };
        Ok(Page { items, next })
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

    async fn save_idempotency(
        &self,
        business_id: &str,
        key: &str,
        r: &IdempotencyRecord,
        at: i64,
    ) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO idempotency (business_id, idem_key, request_hash, status, response, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(business_id)
        .bind(key)
        .bind(&r.request_hash)
        .bind(i64::from(r.status))
        .bind(&r.response)
        .bind(at)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn enroll(&self, w: &EnrollmentWrite) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
        .execute(&mut *tx)
        .await;
        match idem {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::Conflict("idempotency key already used".into()));
            }
            Err(e) => return Err(e.into()),
        }
        sqlx::query("INSERT INTO people (id, seq, wrapped_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&w.person.id)
            .bind(w.person.seq)
            .bind(hex_encode(&w.person.wrapped_key))
            .bind(w.person.created_at)
            .execute(&mut *tx)
            .await?;
        for t in &w.templates {
            sqlx::query("INSERT INTO templates (person_id, hand, idx, sealed) VALUES ($1, $2, $3, $4)")
                .bind(&t.person_id)
                .bind(t.hand.as_str())
                .bind(t.index)
                .bind(hex_encode(&t.sealed))
                .execute(&mut *tx)
                .await?;
        }
        let c = &w.consent;
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
        let m = &w.membership;
        sqlx::query(
            "INSERT INTO memberships (business_id, pseudonymous_id, person_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&m.business_id)
        .bind(&m.pseudonymous_id)
        .bind(&m.person_id)
        .bind(m.created_at)
        .execute(&mut *tx)
        .await?;
        for l in &w.links {
            if let Err(e) = insert_link_in(&mut *tx, l).await {
                tx.rollback().await?;
                return Err(e);
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_person_seq(&self) -> Result<i64> {
        Ok(self.count("SELECT COALESCE(MAX(seq), 0) + 1 FROM people").await?)
    }

    async fn people(&self) -> Result<Vec<StoredPerson>> {
        let rows = sqlx::query(
            "SELECT id, seq, wrapped_key, created_at FROM people WHERE wrapped_key IS NOT NULL ORDER BY seq",
        )
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
            };
            index.insert(person.id.clone(), people.len());
            people.push(StoredPerson {
                person,
                templates: Vec::new(),
            });
        }
        let rows =
            sqlx::query("SELECT person_id, hand, idx, sealed FROM templates ORDER BY person_id, hand, idx")
                .fetch_all(&self.pool)
                .await?;
        for r in &rows {
            let person_id: String = r.try_get("person_id")?;
            let hand: String = r.try_get("hand")?;
            let sealed: String = r.try_get("sealed")?;
            let Some(&i) = index.get(&person_id) else {
                continue; // shredded person: templates unreadable by design
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

    async fn insert_link(&self, link: &Link) -> Result<()> {
        insert_link_in(&self.pool, link).await
    }

    async fn join(&self, m: &Membership, c: &ConsentRecord, links: &[Link]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
        tx.commit().await?;
        Ok(())
    }

    async fn erase_person(&self, person_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE people SET wrapped_key = NULL WHERE id = $1 AND wrapped_key IS NOT NULL")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for table in ["templates", "memberships", "links", "match_log"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE person_id = $1"))
                .bind(person_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
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
        sqlx::query(
            "INSERT INTO match_log (id, person_id, business_id, device_id, site, at, decision, score)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&e.id)
        .bind(&e.person_id)
        .bind(&e.business_id)
        .bind(&e.device_id)
        .bind(&e.site)
        .bind(e.at)
        .bind(e.decision.as_str())
        .bind(f64::from(e.score))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn match_log(
        &self,
        business_id: &str,
        person_id: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<MatchLogEntry>> {
        let (at, id) = after
            .map(|c| (c.at, c.id.clone()))
            .unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(
            "SELECT id, person_id, business_id, device_id, site, at, decision, score FROM match_log
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
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let decision: String = r.try_get("decision")?;
            let score: f64 = r.try_get("score")?;
            items.push(MatchLogEntry {
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
            });
        }
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| Cursor {
                at: e.at,
                id: e.id.clone(),
            })
        } else {
            None
        };
        Ok(Page { items, next })
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
