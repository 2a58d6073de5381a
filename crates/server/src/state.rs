//! Start-up: data folder, service keys, database, in-memory gallery; and the shared state
//! every handler sees.

use crate::config::Config;
use crate::matcher::{GalleryMatcher, Matcher};
use openpalm_domain::keys::ServiceKeys;
use openpalm_domain::model::EncryptedTemplate;
use openpalm_domain::{Clock, MovableClock};
use openpalm_engine::{Engine, Template};
use openpalm_processor::sandbox::Sandbox;
use openpalm_processor::Processor;
use openpalm_store::{EntryStore, QuarantineStore, SqlStore, Store};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Persons loaded per page at start.
const LOAD_PAGE: i64 = 5000;

/// Name of the key file in the data folder.
pub const KEY_FILE: &str = "service-keys";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data folder {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("key file {path}: {message}")]
    Keys { path: PathBuf, message: String },
    #[error("database: {0}")]
    Store(#[from] openpalm_store::StoreError),
    #[error("stored person {person}: {message}")]
    Gallery { person: String, message: String },
    #[error("{0}")]
    Matcher(#[from] crate::matcher::MatcherError),
    #[error("{0}")]
    Processor(#[from] openpalm_processor::sandbox::JournalError),
    #[error("webhook HTTP client: {0}")]
    Http(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The person IDs behind the matcher's person numbers (who may be identified where is kept
/// by the matcher's scopes).
#[derive(Debug, Default)]
pub struct Directory {
    /// Person number -> person ID.
    pub person_ids: HashMap<u64, String>,
    /// Person ID -> person number.
    pub seqs: HashMap<String, u64>,
}

impl Directory {
    pub fn insert(&mut self, seq: u64, person_id: String) {
        self.seqs.insert(person_id.clone(), seq);
        self.person_ids.insert(seq, person_id);
    }

    /// Forget a person; their number, if they had one.
    pub fn remove_person(&mut self, person_id: &str) -> Option<u64> {
        let seq = self.seqs.remove(person_id)?;
        self.person_ids.remove(&seq);
        Some(seq)
    }
}

/// Shared by every request.
pub struct Inner {
    pub config: Config,
    pub keys: ServiceKeys,
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub matcher: RwLock<Box<dyn Matcher>>,
    pub directory: RwLock<Directory>,
    /// Serialises enrollments: duplicate check, write and gallery insert are one step.
    pub enroll_lock: tokio::sync::Mutex<()>,
    /// Wakes the webhook deliverer after a change wrote events to the outbox.
    pub webhook_wakeup: tokio::sync::Notify,
    /// Sends webhooks (its resolver refuses non-public addresses, see [`crate::egress`]).
    pub http: reqwest::Client,
    /// Where webhooks may go.
    pub egress: Arc<crate::egress::EgressPolicy>,
    /// Rate and attempt limits.
    pub limits: crate::limits::Limits,
    /// Stored people left out of the gallery at start because their data could not be read
    /// (listed in the store's quarantine).
    pub quarantined: usize,
    /// Slots for requests handled at once (see [`crate::admission`]).
    pub admission: Arc<tokio::sync::Semaphore>,
    /// The service's clock for payments (expiry); tests and the demo move it.
    pub clock: Arc<MovableClock>,
    /// The card processor payments are made with.
    pub processor: Arc<dyn Processor>,
    /// The same processor as the sandbox it is (its ledger, for tests and benches).
    pub sandbox: Arc<Sandbox>,
    /// Sends people their sign-in codes.
    pub codes: Arc<dyn crate::codes::CodeSender>,
    /// To the audit log's writer.
    pub audit: tokio::sync::mpsc::UnboundedSender<crate::audit::AuditMsg>,
    /// The writer's end, taken when the service starts.
    pub audit_rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::audit::AuditMsg>>>,
    /// Prometheus metrics (`GET /metrics`), this service's own registry.
    pub metrics: crate::metrics::Metrics,
}

impl Inner {
    /// Now by the service's clock (Unix seconds).
    pub fn clock_now(&self) -> i64 {
        self.clock.now()
    }
}

/// Name of the file the development code sender writes sign-in codes to (data folder).
pub const SIGN_IN_CODES: &str = "sign-in-codes.jsonl";

/// Name of the sandbox processor's journal in the data folder.
pub const SANDBOX_JOURNAL: &str = "sandbox-processor.jsonl";

pub type AppState = Arc<Inner>;

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Read the key file, or create it (mode 0600) on first start.
pub fn load_or_create_keys(data_dir: &Path) -> Result<ServiceKeys, StartError> {
    let path = data_dir.join(KEY_FILE);
    let err = |message: String| StartError::Keys {
        path: path.clone(),
        message,
    };
    if path.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(|e| err(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "permissions are {:o}; the key file must be readable by its owner only (chmod 600)",
                    mode & 0o777
                )));
            }
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?);
        return ServiceKeys::from_file_contents(&text).map_err(|e| err(e.to_string()));
    }
    let keys = ServiceKeys::generate();
    let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| err(format!("cannot create: {e}")))?;
        f.write_all(keys.to_file_contents().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| err(format!("cannot write: {e}")))?;
    }
    restrict(&tmp, 0o600).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
    Ok(keys)
}

/// A stored person, decrypted and parsed: (sequence number, ID, templates).
type OpenedPerson = (
    u64,
    String,
    openpalm_domain::apikey::Environment,
    Vec<(openpalm_domain::ids::HandSide, Template)>,
);

fn open_person(
    keys: &ServiceKeys,
    stored: &openpalm_store::StoredPerson,
) -> Result<OpenedPerson, StartError> {
    let p = &stored.person;
    let gerr = |message: String| StartError::Gallery {
        person: p.id.clone(),
        message,
    };
    let dk = keys
        .unwrap_data_key(&p.id, &p.wrapped_key)
        .map_err(|e| gerr(e.to_string()))?;
    let mut templates = Vec::with_capacity(stored.templates.len());
    for t in &stored.templates {
        let plain = dk
            .decrypt(&EncryptedTemplate::aad(&p.id, t.hand, t.index), &t.sealed)
            .map_err(|e| gerr(e.to_string()))?;
        templates.push((
            t.hand,
            Template::from_bytes(&plain).map_err(|e| gerr(e.to_string()))?,
        ));
    }
    let seq = u64::try_from(p.seq).map_err(|e| gerr(e.to_string()))?;
    Ok((seq, p.id.clone(), p.environment, templates))
}

/// Open everything: data folder, keys, database (migrated), gallery (decrypted).
pub async fn open(config: Config) -> Result<AppState, StartError> {
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    restrict(&dir, 0o700).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let keys = load_or_create_keys(&dir)?;
    let store = SqlStore::connect(&config.effective_database_url()).await?;
    let engine = Engine::default();
    let mut matcher: Box<dyn Matcher> = Box::new(GalleryMatcher::new(engine.config().matching.clone())?);
    let mut directory = Directory::default();
    // A page of persons at a time, so that a large population is never held encrypted and
    // decrypted at once (sequence numbers start at 1; negative ones cannot be matcher keys).
    let end = store.next_person_seq().await?;
    let mut quarantine = Vec::new();
    let mut from = 0i64;
    while from < end {
        let to = from.saturating_add(LOAD_PAGE);
        let page = store.people_in(from, to).await?;
        from = to;
        // Decrypted and parsed on every core (start-up serves nothing yet, so holding this
        // thread is fine); added to the gallery in sequence order.
        let opened: Vec<Result<OpenedPerson, (String, String)>> = {
            use rayon::prelude::*;
            page.par_iter()
                .map(|stored| {
                    open_person(&keys, stored).map_err(|e| {
                        let reason = match e {
                            StartError::Gallery { message, .. } => message,
                            other => other.to_string(),
                        };
                        (stored.person.id.clone(), reason)
                    })
                })
                .collect()
        };
        for r in opened {
            // One unreadable person is quarantined (kept, left out of the gallery, reported),
            // never a reason to refuse service to everyone else.
            let (seq, id, environment, templates) = match r {
                Ok(o) => o,
                Err((person_id, reason)) => {
                    tracing::warn!(person = %person_id, %reason, "quarantined stored person");
                    quarantine.push(openpalm_store::Quarantined {
                        person_id,
                        reason,
                        detected_at: openpalm_domain::now_unix(),
                    });
                    continue;
                }
            };
            if let Err(e) = matcher.add(seq, templates) {
                tracing::warn!(person = %id, error = %e, "quarantined stored person");
                quarantine.push(openpalm_store::Quarantined {
                    person_id: id,
                    reason: e.to_string(),
                    detected_at: openpalm_domain::now_unix(),
                });
                continue;
            }
            matcher.admit(environment.everyone_scope(), seq);
            directory.insert(seq, id);
        }
    }
    store.replace_quarantine(&quarantine).await?;
    let quarantined = quarantine.len();
    for m in store.memberships().await? {
        if let Some(&s) = directory.seqs.get(&m.person_id) {
            matcher.admit(&m.business_id, s);
        }
    }
    // Each venue event is a scope of its own: everyone who holds or held a ticket for it.
    for (event_id, person_id) in store.ticket_holders().await? {
        if let Some(&s) = directory.seqs.get(&person_id) {
            matcher.admit(&event_id, s);
        }
    }
    let egress = Arc::new(crate::egress::EgressPolicy {
        allow: config.webhook_allow_private.clone(),
    });
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(config.webhook_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names itself, past the resolver's checks.
        .no_proxy()
        .dns_resolver(Arc::new(crate::egress::GuardedResolver(egress.clone())))
        .build()
        .map_err(|e| StartError::Http(e.to_string()))?;
    let clock = Arc::new(MovableClock::default());
    let sandbox = Arc::new(Sandbox::with_journal(
        &dir.join(SANDBOX_JOURNAL),
        clock.clone(),
        config.sandbox_faults,
    )?);
    let codes = Arc::new(crate::codes::FileSender::new(dir.join(SIGN_IN_CODES)));
    let (audit, audit_rx) = tokio::sync::mpsc::unbounded_channel();
    let config_limits = config.limits;
    Ok(Arc::new(Inner {
        audit,
        audit_rx: std::sync::Mutex::new(Some(audit_rx)),
        codes,
        clock,
        processor: sandbox.clone(),
        sandbox,
        config,
        keys,
        store: Arc::new(store),
        engine,
        matcher: RwLock::new(matcher),
        directory: RwLock::new(directory),
        enroll_lock: tokio::sync::Mutex::new(()),
        webhook_wakeup: tokio::sync::Notify::new(),
        http,
        egress,
        limits: crate::limits::Limits::new(config_limits),
        quarantined,
        admission: Arc::new(tokio::sync::Semaphore::new(config_limits.max_concurrent_requests)),
        metrics: crate::metrics::Metrics::new(),
    }))
}
