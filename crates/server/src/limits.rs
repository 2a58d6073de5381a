//! Abuse limits: request rates per API key and per device, identification attempts per
//! device, enrollment attempts per kiosk, and failed authentications per source address,
//! each a GCRA quota (`governor`) kept in memory per key. A refused request is a typed
//! `429 rate_limited` problem with `Retry-After` (whole seconds, rounded up) and the limit's
//! name, so a client knows which limit it hit and when to try again.
//!
//! Limits are per process: with several API instances behind a balancer, each enforces its
//! own share (a deployment divides the quotas by the instance count, or keeps clients
//! sticky). Limiter state is pruned of idle keys every minute, so a flood of distinct keys
//! does not grow memory without bound.

use crate::problem::ApiError;
use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A sustained rate with a burst: `per_minute` requests a minute on average, at most `burst`
/// at once. `per_minute = 0` turns the limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_minute: u32, burst: u32) -> Rate {
        Rate { per_minute, burst }
    }

    fn quota(self) -> Option<Quota> {
        let per_minute = NonZeroU32::new(self.per_minute)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Some(Quota::per_minute(per_minute).allow_burst(burst))
    }

    /// Parse `PER_MINUTE/BURST` (the form of the `OPENPALM_LIMIT_*` variables), e.g. `600/30`.
    pub fn parse(s: &str) -> Option<Rate> {
        let (a, b) = s.split_once('/')?;
        Some(Rate::new(a.trim().parse().ok()?, b.trim().parse().ok()?))
    }
}

/// The limits' settings (the `[limits]` table of the configuration file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Every request made with one API key.
    pub api_key: Rate,
    /// Every capture request (enroll, identify, lane, checkout) from one device.
    pub device: Rate,
    /// Identification attempts (identify, lane, checkout) from one device.
    pub identify_per_device: Rate,
    /// Enrollment attempts from one kiosk.
    pub enroll_per_kiosk: Rate,
    /// Failed authentications (API key, admin token, person session) from one source address;
    /// once spent, every authentication from that address is refused until it refills.
    pub failed_auth_per_address: Rate,
    /// Longest time one request may take before it is answered `503 request_timeout`.
    pub request_timeout_ms: u64,
    /// Requests handled at once; more wait up to `queue_wait_ms` for a slot, then get `503
    /// overloaded`.
    pub max_concurrent_requests: usize,
    /// How long a request waits for a slot when `max_concurrent_requests` are in flight.
    pub queue_wait_ms: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            // 50 a second sustained, 200 at once.
            api_key: Rate::new(3000, 200),
            // A gate lane serves about one person a second; twice that, with retries.
            device: Rate::new(240, 30),
            identify_per_device: Rate::new(120, 20),
            // An enrollment takes a person about a minute at a kiosk.
            enroll_per_kiosk: Rate::new(30, 10),
            failed_auth_per_address: Rate::new(30, 20),
            request_timeout_ms: 30_000,
            max_concurrent_requests: 256,
            queue_wait_ms: 2_000,
        }
    }
}

impl LimitSettings {
    /// No rate limit at all (bulk loads in benches and tests; never a default).
    pub fn unlimited() -> LimitSettings {
        let off = Rate::new(0, 0);
        LimitSettings {
            api_key: off,
            device: off,
            identify_per_device: off,
            enroll_per_kiosk: off,
            failed_auth_per_address: off,
            ..LimitSettings::default()
        }
    }

    /// Set one value by its name (as in the file's `[limits]` table); for the environment.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let rate =
            |v: &str| Rate::parse(v).ok_or_else(|| "expected PER_MINUTE/BURST, e.g. 600/30".to_string());
        let num = |v: &str| v.parse::<u64>().map_err(|_| "expected a number".to_string());
        match name {
            "api_key" => self.api_key = rate(value)?,
            "device" => self.device = rate(value)?,
            "identify_per_device" => self.identify_per_device = rate(value)?,
            "enroll_per_kiosk" => self.enroll_per_kiosk = rate(value)?,
            "failed_auth_per_address" => self.failed_auth_per_address = rate(value)?,
            "request_timeout_ms" => self.request_timeout_ms = num(value)?,
            "max_concurrent_requests" => self.max_concurrent_requests = num(value)? as usize,
            "queue_wait_ms" => self.queue_wait_ms = num(value)?,
            _ => return Err(format!("unknown limit {name}")),
        }
        Ok(())
    }

    /// Check the values; the message says what to change.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(100..=600_000).contains(&self.request_timeout_ms) {
            return Err((
                "limits.request_timeout_ms",
                "must be between 100 and 600000".into(),
            ));
        }
        if !(1..=100_000).contains(&self.max_concurrent_requests) {
            return Err((
                "limits.max_concurrent_requests",
                "must be between 1 and 100000".into(),
            ));
        }
        if self.queue_wait_ms > 60_000 {
            return Err(("limits.queue_wait_ms", "must be at most 60000".into()));
        }
        for (name, r) in [
            ("limits.api_key", self.api_key),
            ("limits.device", self.device),
            ("limits.identify_per_device", self.identify_per_device),
            ("limits.enroll_per_kiosk", self.enroll_per_kiosk),
            ("limits.failed_auth_per_address", self.failed_auth_per_address),
        ] {
            if r.per_minute > 0 && r.burst == 0 {
                return Err((name, "burst must be at least 1 when per_minute is set".into()));
            }
        }
        Ok(())
    }
}

/// One keyed limit; `None` when turned off.
struct Keyed<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(name: &'static str, rate: Rate) -> Keyed<K> {
        Keyed {
            name,
            limiter: rate.quota().map(DefaultKeyedRateLimiter::keyed),
        }
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        l.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            limited(self.name, wait)
        })
    }

    fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The `429` problem for limit `name`, retry after `wait`.
pub fn limited(name: &'static str, wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests ({name} limit); try again in {secs} s"),
    )
    .with("limit", name)
    .with("retry_after_seconds", secs)
    .retry_after(secs)
}

/// The service's limiters.
pub struct Limits {
    api_key: Keyed<String>,
    device: Keyed<String>,
    identify: Keyed<String>,
    enroll: Keyed<String>,
    failed_auth: Keyed<IpAddr>,
    /// Addresses whose failed-authentication allowance is spent, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

/// What a capture request is for, as far as the limits go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureUse {
    Enroll,
    Identify,
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Limits {
        Limits {
            api_key: Keyed::new("api_key", settings.api_key),
            device: Keyed::new("device", settings.device),
            identify: Keyed::new("identify_per_device", settings.identify_per_device),
            enroll: Keyed::new("enroll_per_kiosk", settings.enroll_per_kiosk),
            failed_auth: Keyed::new("failed_auth_per_address", settings.failed_auth_per_address),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// A request made with API key `key_id`.
    pub fn api_key(&self, key_id: &str) -> Result<(), ApiError> {
        self.api_key.check(&key_id.to_string())
    }

    /// A capture request from device `device_id`.
    pub fn capture(&self, device_id: &str, what: CaptureUse) -> Result<(), ApiError> {
        let id = device_id.to_string();
        self.device.check(&id)?;
        match what {
            CaptureUse::Enroll => self.enroll.check(&id),
            CaptureUse::Identify => self.identify.check(&id),
        }
    }

    /// Before authenticating a request from `addr`: refused while its failures are spent.
    pub fn before_auth(&self, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(addr) = addr else { return Ok(()) };
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = blocked.get(&addr).copied() {
            let now = Instant::now();
            if until > now {
                return Err(limited(self.failed_auth.name, until - now));
            }
            blocked.remove(&addr);
        }
        Ok(())
    }

    /// A failed authentication from `addr`: `Err` (429) once its allowance is spent.
    pub fn failed_auth(&self, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(addr) = addr else { return Ok(()) };
        let Some(l) = &self.failed_auth.limiter else {
            return Ok(());
        };
        if let Err(not_until) = l.check_key(&addr) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            blocked.insert(addr, Instant::now() + wait);
            return Err(limited(self.failed_auth.name, wait));
        }
        Ok(())
    }

    /// Forget idle keys (run every minute).
    pub fn prune(&self) {
        self.api_key.prune();
        self.device.prune();
        self.identify.prune();
        self.enroll.prune();
        self.failed_auth.prune();
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_limit_answers_429_with_retry_after() {
        let l = Limits::new(LimitSettings {
            api_key: Rate::new(60, 3),
            ..LimitSettings::default()
        });
        for _ in 0..3 {
            l.api_key("key_a").unwrap();
        }
        let e = l.api_key("key_a").unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, "rate_limited");
        assert_eq!(e.retry_after, Some(1), "one a second refills");
        // Another key has its own allowance.
        l.api_key("key_b").unwrap();
    }

    #[test]
    fn identification_and_enrollment_are_limited_apart_and_under_the_device_limit() {
        let l = Limits::new(LimitSettings {
            device: Rate::new(60, 4),
            identify_per_device: Rate::new(60, 2),
            enroll_per_kiosk: Rate::new(1, 1),
            ..LimitSettings::default()
        });
        l.capture("dev_1", CaptureUse::Identify).unwrap();
        l.capture("dev_1", CaptureUse::Identify).unwrap();
        let e = l.capture("dev_1", CaptureUse::Identify).unwrap_err();
        assert!(e.detail.contains("identify_per_device"), "{}", e.detail);
        l.capture("dev_2", CaptureUse::Enroll).unwrap();
        let e = l.capture("dev_2", CaptureUse::Enroll).unwrap_err();
        assert!(e.detail.contains("enroll_per_kiosk"), "{}", e.detail);
        assert!(e.retry_after.unwrap() >= 59, "one a minute: {:?}", e.retry_after);
    }

    #[test]
    fn spent_failed_authentications_block_the_address() {
        let l = Limits::new(LimitSettings {
            failed_auth_per_address: Rate::new(1, 2),
            ..LimitSettings::default()
        });
        let a: IpAddr = "203.0.113.9".parse().unwrap();
        let b: IpAddr = "203.0.113.10".parse().unwrap();
        l.before_auth(Some(a)).unwrap();
        l.failed_auth(Some(a)).unwrap();
        l.failed_auth(Some(a)).unwrap();
        assert!(l.failed_auth(Some(a)).is_err());
        // Now even a correct credential from that address waits.
        let e = l.before_auth(Some(a)).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        l.before_auth(Some(b)).unwrap();
        l.prune();
        assert!(l.before_auth(Some(a)).is_err(), "still blocked after pruning");
    }

    #[test]
    fn off_means_off_and_rates_parse() {
        let l = Limits::new(LimitSettings::unlimited());
        for _ in 0..10_000 {
            l.api_key("k").unwrap();
        }
        assert_eq!(Rate::parse("600/30"), Some(Rate::new(600, 30)));
        assert_eq!(Rate::parse("600"), None);
        let mut s = LimitSettings::default();
        s.set("enroll_per_kiosk", "5/2").unwrap();
        assert_eq!(s.enroll_per_kiosk, Rate::new(5, 2));
        assert!(s.set("nope", "1/1").is_err());
        assert!(LimitSettings {
            api_key: Rate::new(5, 0),
            ..LimitSettings::default()
        }
        .validate()
        .is_err());
    }
}
