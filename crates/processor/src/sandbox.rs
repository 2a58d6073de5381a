//! The sandbox processor: behaves like a card processor's test mode, moves no money.
//!
//! # Test card tokens
//!
//! A token is `tok_sandbox_<behaviour>`, optionally followed by `_<suffix>` (letters and
//! digits) so that many people can hold distinct cards that behave alike. If the suffix is
//! exactly four digits, they are the card's last four digits.
//!
//! | behaviour | what happens | last four |
//! |---|---|---|
//! | `visa` | authorised | 4242 |
//! | `mastercard` | authorised | 4444 |
//! | `decline` | declined: `generic_decline` | 0002 |
//! | `insufficient_funds` | declined: `insufficient_funds` | 9995 |
//! | `expired_card` | declined: `expired_card` | 0069 |
//! | `processing_error` | declined: `processing_error` | 0119 |
//! | `requires_verification` | `requires_action` until the customer is verified, then authorised | 3184 |
//! | `timeout` | every call times out and nothing happens | 0000 |
//! | `timeout_after_auth` | the first authorisation acts, then times out; a retry with the same key returns it | 0341 |
//!
//! Any other token is declined as `generic_decline`.
//!
//! # Behaviour
//!
//! Authorisations lapse [`Sandbox::authorization_secs`] after they are made (7 days by
//! default, as card authorisations commonly do), by the clock it was given. Calls are
//! idempotent by key; a key reused with other parameters is refused. Every change is pushed to
//! subscribers as a callback; [`Faults`] can duplicate and reorder them, and make a share of
//! calls time out after acting. With a journal file the sandbox keeps its intents across
//! restarts, as a real processor would.

use crate::{AuthorizeRequest, Processor, ProcessorError};
use async_trait::async_trait;
use openpalm_domain::payment::{DeclineReason, Intent, IntentState};
use openpalm_domain::Clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Default lifetime of an authorisation (seconds).
pub const AUTHORIZATION_SECS: i64 = 7 * 86_400;

/// Failures the sandbox can inject, as real processors and networks produce them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Send every callback twice.
    pub duplicate_callbacks: bool,
    /// Hold each callback back until the next one, and send them in reverse order.
    pub reorder_callbacks: bool,
    /// Every n-th call that changes an intent acts, then answers [`ProcessorError::Timeout`].
    pub timeout_after_act_every: Option<u32>,
}

/// What a test card token does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Approve(&'static str),
    Decline(DeclineReason, &'static str),
    RequiresVerification,
    Timeout,
    TimeoutAfterAuth,
}

fn behaviour(token: &str) -> (Behaviour, Option<String>) {
    let Some(rest) = token.strip_prefix("tok_sandbox_") else {
        return (Behaviour::Decline(DeclineReason::GenericDecline, "0002"), None);
    };
    let table: [(&str, Behaviour); 9] = [
        ("timeout_after_auth", Behaviour::TimeoutAfterAuth),
        ("timeout", Behaviour::Timeout),
        ("visa", Behaviour::Approve("4242")),
        ("mastercard", Behaviour::Approve("4444")),
        (
            "decline",
            Behaviour::Decline(DeclineReason::GenericDecline, "0002"),
        ),
        (
            "insufficient_funds",
            Behaviour::Decline(DeclineReason::InsufficientFunds, "9995"),
        ),
        (
            "expired_card",
            Behaviour::Decline(DeclineReason::ExpiredCard, "0069"),
        ),
        (
            "processing_error",
            Behaviour::Decline(DeclineReason::ProcessingError, "0119"),
        ),
        ("requires_verification", Behaviour::RequiresVerification),
    ];
    for (name, b) in table {
        if let Some(tail) = rest.strip_prefix(name) {
            let suffix = match tail.strip_prefix('_') {
                Some(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric()) => Some(s),
                _ if tail.is_empty() => None,
                _ => continue,
            };
            let last4 = suffix
                .filter(|s| s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit()))
                .map(str::to_string);
            return (b, last4);
        }
    }
    (Behaviour::Decline(DeclineReason::GenericDecline, "0002"), None)
}

fn default_last4(b: Behaviour) -> &'static str {
    match b {
        Behaviour::Approve(l) | Behaviour::Decline(_, l) => l,
        Behaviour::RequiresVerification => "3184",
        Behaviour::Timeout => "0000",
        Behaviour::TimeoutAfterAuth => "0341",
    }
}

/// One intent as the sandbox keeps it (and journals it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub intent: Intent,
    pub card_token: String,
    /// The service's payment ID.
    pub reference: String,
    /// The idempotency key of the authorisation that created it.
    pub create_key: String,
    /// Captures that moved money (at most one).
    pub captures: u32,
    /// Whether the timeout-after-auth card already timed out once.
    #[serde(default)]
    pub timed_out_once: bool,
}

#[derive(Debug, Default)]
struct State {
    intents: HashMap<String, Record>,
    by_key: HashMap<String, String>,
    next: u64,
    calls: u64,
    held_callback: Option<Intent>,
}

/// The sandbox processor.
#[derive(Debug)]
pub struct Sandbox {
    state: Mutex<State>,
    journal: Option<(PathBuf, Mutex<std::fs::File>)>,
    clock: Arc<dyn Clock>,
    faults: Faults,
    authorization_secs: i64,
    subscribers: Mutex<Vec<UnboundedSender<Intent>>>,
}

/// Why the sandbox's journal could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("sandbox journal {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("sandbox journal {path} line {line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Sandbox {
    /// A sandbox that keeps nothing across restarts.
    pub fn in_memory(clock: Arc<dyn Clock>, faults: Faults) -> Sandbox {
        Sandbox {
            state: Mutex::new(State::default()),
            journal: None,
            clock,
            faults,
            authorization_secs: AUTHORIZATION_SECS,
            subscribers: Mutex::new(Vec::new()),
        }
    }

    /// A sandbox that journals every change to `path` (JSON lines) and reads it back.
    pub fn with_journal(path: &Path, clock: Arc<dyn Clock>, faults: Faults) -> Result<Sandbox, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut state = State::default();
        if path.exists() {
            let f = std::fs::File::open(path).map_err(io)?;
            for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io)?;
                if line.trim().is_empty() {
                    continue;
                }
                let rec: Record = match serde_json::from_str(&line) {
                    Ok(r) => r,
                    // A line cut short by a crash mid-write is the last one: what it said
                    // was never answered to anyone.
                    Err(e) if e.is_eof() => break,
                    Err(e) => {
                        return Err(JournalError::Corrupt {
                            path: path.to_path_buf(),
                            line: i + 1,
                            message: e.to_string(),
                        })
                    }
                };
                state.by_key.insert(rec.create_key.clone(), rec.intent.id.clone());
                state.next = state.next.max(
                    rec.intent
                        .id
                        .trim_start_matches("pi_sandbox_")
                        .parse::<u64>()
                        .unwrap_or(0),
                );
                state.intents.insert(rec.intent.id.clone(), rec);
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Sandbox {
            state: Mutex::new(state),
            journal: Some((path.to_path_buf(), Mutex::new(file))),
            clock,
            faults,
            authorization_secs: AUTHORIZATION_SECS,
            subscribers: Mutex::new(Vec::new()),
        })
    }

    /// Lifetime of new authorisations (seconds).
    pub fn authorization_secs(mut self, secs: i64) -> Sandbox {
        self.authorization_secs = secs;
        self
    }

    /// Every intent with its token and reference (for tests and benches that check who was
    /// charged).
    pub fn ledger(&self) -> Vec<Record> {
        let s = self.state.lock().expect("sandbox lock");
        let mut v: Vec<Record> = s.intents.values().cloned().collect();
        v.sort_by(|a, b| a.intent.id.cmp(&b.intent.id));
        v
    }

    /// Send a callback held back by [`Faults::reorder_callbacks`].
    pub fn flush_callbacks(&self) {
        let held = self.state.lock().expect("sandbox lock").held_callback.take();
        if let Some(i) = held {
            self.send(&i);
        }
    }

    fn send(&self, intent: &Intent) {
        let mut subs = self.subscribers.lock().expect("sandbox lock");
        subs.retain(|s| {
            let ok = s.send(intent.clone()).is_ok();
            if ok && self.faults.duplicate_callbacks {
                let _ = s.send(intent.clone());
            }
            ok
        });
    }

    fn notify(&self, intent: Intent) {
        if self.faults.reorder_callbacks {
            let held = {
                let mut s = self.state.lock().expect("sandbox lock");
                match s.held_callback.take() {
                    None => {
                        s.held_callback = Some(intent);
                        return;
                    }
                    Some(h) => h,
                }
            };
            self.send(&intent);
            self.send(&held);
        } else {
            self.send(&intent);
        }
    }

    fn persist(&self, rec: &Record) -> Result<(), ProcessorError> {
        if let Some((_, f)) = &self.journal {
            let mut line =
                serde_json::to_string(rec).map_err(|e| ProcessorError::InvalidRequest(e.to_string()))?;
            line.push('\n');
            let mut f = f.lock().expect("sandbox journal lock");
            f.write_all(line.as_bytes())
                .and_then(|_| f.flush())
                .map_err(|_| ProcessorError::Unavailable)?;
        }
        Ok(())
    }

    /// Lapse an authorisation past its time.
    fn expire_if_due(&self, rec: &mut Record) -> bool {
        let now = self.clock.now();
        if rec.intent.state == IntentState::RequiresCapture && rec.intent.expires_at.is_some_and(|e| now >= e)
        {
            rec.intent.state = IntentState::Expired;
            rec.intent.authorized_minor = 0;
            rec.intent.version += 1;
            return true;
        }
        false
    }

    /// Apply `change` to the intent, journal and announce it; `Ok(false)` from `change`:
    /// nothing changed (a repeated call).
    fn mutate(
        &self,
        intent_id: &str,
        change: impl FnOnce(&mut Record) -> Result<bool, ProcessorError>,
    ) -> Result<Intent, ProcessorError> {
        let (intent, changed, expired, fault) = {
            let mut s = self.state.lock().expect("sandbox lock");
            let rec = s
                .intents
                .get_mut(intent_id)
                .ok_or_else(|| ProcessorError::NoSuchIntent(intent_id.to_string()))?;
            if behaviour(&rec.card_token).0 == Behaviour::Timeout {
                return Err(ProcessorError::Timeout);
            }
            let expired = self.expire_if_due(rec);
            let mut work = rec.clone();
            let result = change(&mut work);
            let changed = match result {
                Ok(c) => c,
                Err(e) => {
                    if expired {
                        let r = rec.clone();
                        drop(s);
                        self.persist(&r)?;
                        self.notify(r.intent);
                    }
                    return Err(e);
                }
            };
            if changed {
                work.intent.version += 1;
            }
            *rec = work;
            let rec = rec.clone();
            s.calls += 1;
            let fault = changed
                && self
                    .faults
                    .timeout_after_act_every
                    .is_some_and(|n| n > 0 && s.calls.is_multiple_of(u64::from(n)));
            (rec, changed, expired, fault)
        };
        if changed || expired {
            self.persist(&intent)?;
            self.notify(intent.intent.clone());
        }
        if fault {
            return Err(ProcessorError::Timeout);
        }
        Ok(intent.intent)
    }

    fn state_name(s: &IntentState) -> String {
        match s {
            IntentState::RequiresAction => "requires_action".into(),
            IntentState::RequiresCapture => "requires_capture".into(),
            IntentState::Succeeded => "succeeded".into(),
            IntentState::Canceled => "canceled".into(),
            IntentState::Expired => "expired".into(),
            IntentState::Declined(r) => format!("declined ({})", r.as_str()),
        }
    }

    fn authorise_now(&self, intent: &mut Intent, last4: &str) {
        intent.state = IntentState::RequiresCapture;
        intent.authorized_minor = intent.amount_minor;
        intent.expires_at = Some(self.clock.now() + self.authorization_secs);
        intent.card_last4 = Some(last4.to_string());
    }
}

#[async_trait]
impl Processor for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn authorize(&self, req: &AuthorizeRequest) -> Result<Intent, ProcessorError> {
        let (b, last4) = behaviour(&req.card_token);
        if b == Behaviour::Timeout {
            return Err(ProcessorError::Timeout);
        }
        if req.idempotency_key.is_empty() || req.idempotency_key.len() > 255 {
            return Err(ProcessorError::InvalidRequest(
                "idempotency key must be 1..255 characters".into(),
            ));
        }
        if req.amount.minor == 0 {
            return Err(ProcessorError::InvalidRequest(
                "amount must be more than zero".into(),
            ));
        }
        let last4 = last4.unwrap_or_else(|| default_last4(b).to_string());
        let (rec, created, timeout) = {
            let mut s = self.state.lock().expect("sandbox lock");
            if let Some(id) = s.by_key.get(&req.idempotency_key).cloned() {
                let rec = s.intents.get_mut(&id).expect("key points at an intent");
                if rec.card_token != req.card_token
                    || rec.intent.amount_minor != req.amount.minor
                    || rec.intent.currency != req.amount.code()
                    || rec.reference != req.reference
                {
                    return Err(ProcessorError::IdempotencyConflict(req.idempotency_key.clone()));
                }
                let expired = self.expire_if_due(rec);
                (rec.clone(), expired, false)
            } else {
                s.next += 1;
                let id = format!("pi_sandbox_{:08}", s.next);
                let mut intent = Intent {
                    id: id.clone(),
                    state: IntentState::RequiresAction,
                    version: 1,
                    currency: req.amount.code().to_string(),
                    amount_minor: req.amount.minor,
                    authorized_minor: 0,
                    captured_minor: 0,
                    refunded_minor: 0,
                    card_last4: Some(last4.clone()),
                    expires_at: None,
                    refund_keys: vec![],
                };
                let mut timed_out_once = false;
                match b {
                    Behaviour::Approve(_) => self.authorise_now(&mut intent, &last4),
                    Behaviour::TimeoutAfterAuth => {
                        self.authorise_now(&mut intent, &last4);
                        timed_out_once = true;
                    }
                    Behaviour::Decline(r, _) => intent.state = IntentState::Declined(r),
                    Behaviour::RequiresVerification if req.verified => {
                        self.authorise_now(&mut intent, &last4)
                    }
                    Behaviour::RequiresVerification => {}
                    Behaviour::Timeout => unreachable!("answered above"),
                }
                let rec = Record {
                    intent,
                    card_token: req.card_token.clone(),
                    reference: req.reference.clone(),
                    create_key: req.idempotency_key.clone(),
                    captures: 0,
                    timed_out_once,
                };
                s.by_key.insert(req.idempotency_key.clone(), id.clone());
                s.intents.insert(id, rec.clone());
                s.calls += 1;
                let injected = self
                    .faults
                    .timeout_after_act_every
                    .is_some_and(|n| n > 0 && s.calls.is_multiple_of(u64::from(n)));
                (rec, true, timed_out_once || injected)
            }
        };
        if created {
            self.persist(&rec)?;
            self.notify(rec.intent.clone());
        }
        if timeout {
            return Err(ProcessorError::Timeout);
        }
        Ok(rec.intent)
    }

    async fn complete_verification(
        &self,
        intent_id: &str,
        _idempotency_key: &str,
    ) -> Result<Intent, ProcessorError> {
        let now_exp = self.clock.now() + self.authorization_secs;
        self.mutate(intent_id, |r| match &r.intent.state {
            IntentState::RequiresAction => {
                let last4 = r.intent.card_last4.clone().unwrap_or_default();
                r.intent.state = IntentState::RequiresCapture;
                r.intent.authorized_minor = r.intent.amount_minor;
                r.intent.expires_at = Some(now_exp);
                r.intent.card_last4 = Some(last4);
                Ok(true)
            }
            // Repeated: the verification was already taken.
            IntentState::RequiresCapture | IntentState::Succeeded => Ok(false),
            s => Err(ProcessorError::InvalidState {
                state: Sandbox::state_name(s),
                action: "verification",
            }),
        })
    }

    async fn capture(
        &self,
        intent_id: &str,
        minor: u64,
        _idempotency_key: &str,
    ) -> Result<Intent, ProcessorError> {
        self.mutate(intent_id, |r| match &r.intent.state {
            IntentState::RequiresCapture => {
                if minor == 0 || minor > r.intent.authorized_minor {
                    return Err(ProcessorError::AboveCapturable {
                        max: r.intent.authorized_minor,
                    });
                }
                r.intent.state = IntentState::Succeeded;
                r.intent.captured_minor = minor;
                r.intent.authorized_minor = 0;
                r.captures += 1;
                Ok(true)
            }
            // The same capture again: answered as it was.
            IntentState::Succeeded if r.intent.captured_minor == minor => Ok(false),
            s => Err(ProcessorError::InvalidState {
                state: Sandbox::state_name(s),
                action: "capture",
            }),
        })
    }

    async fn cancel(&self, intent_id: &str, _idempotency_key: &str) -> Result<Intent, ProcessorError> {
        self.mutate(intent_id, |r| match &r.intent.state {
            IntentState::RequiresCapture | IntentState::RequiresAction => {
                r.intent.state = IntentState::Canceled;
                r.intent.authorized_minor = 0;
                Ok(true)
            }
            IntentState::Canceled => Ok(false),
            s => Err(ProcessorError::InvalidState {
                state: Sandbox::state_name(s),
                action: "cancel",
            }),
        })
    }

    async fn refund(
        &self,
        intent_id: &str,
        minor: u64,
        idempotency_key: &str,
    ) -> Result<Intent, ProcessorError> {
        let key = idempotency_key.to_string();
        self.mutate(intent_id, move |r| {
            if r.intent.refund_keys.contains(&key) {
                return Ok(false);
            }
            match &r.intent.state {
                IntentState::Succeeded => {
                    let left = r.intent.captured_minor - r.intent.refunded_minor;
                    if minor == 0 || minor > left {
                        return Err(ProcessorError::AboveRefundable { max: left });
                    }
                    r.intent.refunded_minor += minor;
                    r.intent.refund_keys.push(key);
                    Ok(true)
                }
                s => Err(ProcessorError::InvalidState {
                    state: Sandbox::state_name(s),
                    action: "refund",
                }),
            }
        })
    }

    async fn retrieve(&self, intent_id: &str) -> Result<Intent, ProcessorError> {
        self.mutate(intent_id, |_| Ok(false))
    }

    async fn find_by_key(&self, idempotency_key: &str) -> Result<Option<Intent>, ProcessorError> {
        let id = self
            .state
            .lock()
            .expect("sandbox lock")
            .by_key
            .get(idempotency_key)
            .cloned();
        match id {
            Some(id) => self.retrieve(&id).await.map(Some),
            None => Ok(None),
        }
    }

    fn subscribe(&self) -> UnboundedReceiver<Intent> {
        let (tx, rx) = unbounded_channel();
        self.subscribers.lock().expect("sandbox lock").push(tx);
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_behaviour() {
        assert_eq!(behaviour("tok_sandbox_visa"), (Behaviour::Approve("4242"), None));
        assert_eq!(
            behaviour("tok_sandbox_visa_1234"),
            (Behaviour::Approve("4242"), Some("1234".into()))
        );
        assert_eq!(
            behaviour("tok_sandbox_visa_alice"),
            (Behaviour::Approve("4242"), None)
        );
        assert_eq!(behaviour("tok_sandbox_timeout").0, Behaviour::Timeout);
        assert_eq!(
            behaviour("tok_sandbox_timeout_after_auth").0,
            Behaviour::TimeoutAfterAuth
        );
        assert_eq!(
            behaviour("tok_sandbox_timeout_after_auth_x1").0,
            Behaviour::TimeoutAfterAuth
        );
        assert_eq!(
            behaviour("tok_sandbox_visax").0,
            Behaviour::Decline(DeclineReason::GenericDecline, "0002")
        );
        assert_eq!(
            behaviour("tok_live_visa").0,
            Behaviour::Decline(DeclineReason::GenericDecline, "0002")
        );
    }
}
