//! The service configuration: one typed struct, read from defaults, then a TOML file, then
//! `OPENPALM_*` environment variables, then command-line overrides, and validated once at
//! start with messages that say what to change.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `openpalm serve` can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Folder for the SQLite database and the service keys; created on first start.
    pub data_dir: PathBuf,
    /// Database URL; default: SQLite file `openpalm.db` in `data_dir`.
    pub database_url: Option<String>,
    /// Bearer token that may create businesses (`POST /v1/businesses`). Unset: bootstrap off.
    pub admin_token: Option<String>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// A match is ambiguous when another person scores within this of the best.
    pub ambiguity_margin: f32,
    /// At a palm lane, a match among an event's ticket holders scoring below this is checked
    /// against every member of the business too: when someone outside the event scores as
    /// well (within `ambiguity_margin`) or better, the lane answers `ambiguous` rather than
    /// admit a look-alike on a holder's ticket. 0 turns the check off.
    pub lane_confirm_below: f32,
    /// Decision threshold for paying by palm: stricter than [`IDENTIFICATION_THRESHOLD`]
    /// (0.47, entry), because a false match pays with someone else's card. At 0.50, on
    /// `tongji-600-dev` (17,940,000 impostor pairs, one ROI template against one) no
    /// impostor pair reaches it (the highest scores 0.481; 8 pairs reach 0.47), so the
    /// false match rate per comparison is below 1.7e-7 (95% upper bound, rule of three);
    /// genuine pairs below it: 3.26% (1,859 of 57,000 single pairs) there, 1.85% (8 of 432) on
    /// `coep-hands-dev`. Among a store of N members with T templates each, a palm that is
    /// not enrolled is falsely matched with probability at most about N x T x FMR: below
    /// 1.7% for 100,000 one-template members, by that bound (the point estimate is 0; #12
    /// measures the tail). Identification among the store's members only, the ambiguity
    /// margin and the person's limits and step-up bound what such a match can spend.
    ///
    /// [`IDENTIFICATION_THRESHOLD`]: openpalm_engine::IDENTIFICATION_THRESHOLD
    pub payment_threshold: f32,
    /// A person not identified for this many days is sent a dormancy notice (`person.dormant`
    /// to each business, shown on their own side), then deleted.
    pub dormancy_days: u32,
    /// Days between the dormancy notice and the deletion (an identification meanwhile
    /// cancels it).
    pub dormancy_notice_days: u32,
    /// Failures the sandbox processor injects (tests and drills; none by default).
    pub sandbox_faults: openpalm_processor::sandbox::Faults,
    /// Accept `http://` webhook URLs (default: `https://` only; for local development).
    pub webhook_allow_http: bool,
    /// Delay before the first webhook retry, milliseconds; each further retry doubles it (at
    /// most 6 hours apart).
    pub webhook_retry_base_ms: u64,
    /// Attempts per webhook delivery before it is marked failed.
    pub webhook_max_attempts: u32,
    /// Time limit of one webhook request, milliseconds.
    pub webhook_timeout_ms: u64,
    /// Non-public address ranges webhooks may be sent to anyway (CIDR, e.g. `10.20.0.0/16`);
    /// by default none: loopback, private, link-local and metadata addresses are refused.
    pub webhook_allow_private: Vec<ipnet::IpNet>,
    /// Rate, attempt, time and concurrency limits.
    pub limits: crate::limits::LimitSettings,
    /// Log lines as text (default) or one JSON object each.
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".into()),
        }
    }
}

fn parse_nets(key: &str, items: &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| invalid(key, s, "expected an address range such as 10.20.0.0/16"))
        })
        .collect()
}

/// Longest wait between two webhook attempts.
pub const WEBHOOK_MAX_DELAY_MS: u64 = 6 * 3600 * 1000;

/// Lowest accepted admin-token length.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("openpalm-data"),
            database_url: None,
            admin_token: None,
            max_body_bytes: 8 * 1024 * 1024,
            ambiguity_margin: 0.03,
            lane_confirm_below: 0.6,
            payment_threshold: 0.50,
            dormancy_days: 730,
            dormancy_notice_days: 30,
            sandbox_faults: openpalm_processor::sandbox::Faults::default(),
            webhook_allow_http: false,
            webhook_retry_base_ms: 5_000,
            // 5 s, 10 s, 20 s, ... then every 6 h: the last attempt about 30 h after the first.
            webhook_max_attempts: 17,
            webhook_timeout_ms: 10_000,
            webhook_allow_private: Vec::new(),
            limits: crate::limits::LimitSettings::default(),
            log_format: LogFormat::Text,
        }
    }
}

/// The file form: every field optional, unknown fields refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    admin_token: Option<String>,
    max_body_bytes: Option<usize>,
    ambiguity_margin: Option<f32>,
    lane_confirm_below: Option<f32>,
    payment_threshold: Option<f32>,
    dormancy_days: Option<u32>,
    dormancy_notice_days: Option<u32>,
    webhook_allow_http: Option<bool>,
    webhook_retry_base_ms: Option<u64>,
    webhook_max_attempts: Option<u32>,
    webhook_timeout_ms: Option<u64>,
    webhook_allow_private: Option<Vec<String>>,
    limits: Option<crate::limits::LimitSettings>,
    log_format: Option<LogFormat>,
}

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key} = {value:?} is not valid: {message}")]
    Invalid {
        key: String,
        value: String,
        message: String,
    },
}

fn invalid(key: &str, value: impl ToString, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

fn parse_listen(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|_| invalid(key, s, "expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080"))
}

impl Config {
    /// Defaults, then `file`, then the `OPENPALM_*` variables in `env`, then `overrides`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let f: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            if let Some(v) = f.listen {
                c.listen = parse_listen("listen", &v)?;
            }
            if let Some(v) = f.data_dir {
                c.data_dir = v;
            }
            c.database_url = f.database_url.or(c.database_url);
            c.admin_token = f.admin_token.or(c.admin_token);
            if let Some(v) = f.max_body_bytes {
                c.max_body_bytes = v;
            }
            if let Some(v) = f.ambiguity_margin {
                c.ambiguity_margin = v;
            }
            c.lane_confirm_below = f.lane_confirm_below.unwrap_or(c.lane_confirm_below);
            c.payment_threshold = f.payment_threshold.unwrap_or(c.payment_threshold);
            c.dormancy_days = f.dormancy_days.unwrap_or(c.dormancy_days);
            c.dormancy_notice_days = f.dormancy_notice_days.unwrap_or(c.dormancy_notice_days);
            c.webhook_allow_http = f.webhook_allow_http.unwrap_or(c.webhook_allow_http);
            c.webhook_retry_base_ms = f.webhook_retry_base_ms.unwrap_or(c.webhook_retry_base_ms);
            c.webhook_max_attempts = f.webhook_max_attempts.unwrap_or(c.webhook_max_attempts);
            c.webhook_timeout_ms = f.webhook_timeout_ms.unwrap_or(c.webhook_timeout_ms);
            if let Some(v) = f.webhook_allow_private {
                c.webhook_allow_private = parse_nets("webhook_allow_private", &v)?;
            }
            c.limits = f.limits.unwrap_or(c.limits);
            c.log_format = f.log_format.unwrap_or(c.log_format);
        }
        for (k, v) in env {
            match k.as_str() {
                "OPENPALM_LISTEN" => c.listen = parse_listen(&k, &v)?,
                "OPENPALM_DATA_DIR" => c.data_dir = PathBuf::from(v),
                "OPENPALM_DATABASE_URL" => c.database_url = Some(v),
                "OPENPALM_ADMIN_TOKEN" => c.admin_token = Some(v),
                "OPENPALM_MAX_BODY_BYTES" => {
                    c.max_body_bytes = v.parse().map_err(|_| invalid(&k, &v, "expected a number of bytes"))?
                }
                "OPENPALM_AMBIGUITY_MARGIN" => {
                    c.ambiguity_margin = v.parse().map_err(|_| invalid(&k, &v, "expected a number, e.g. 0.03"))?
                }
                "OPENPALM_LANE_CONFIRM_BELOW" => {
                    c.lane_confirm_below = v.parse().map_err(|_| invalid(&k, &v, "expected a number, e.g. 0.6"))?
                }
                "OPENPALM_PAYMENT_THRESHOLD" => {
                    c.payment_threshold = v.parse().map_err(|_| invalid(&k, &v, "expected a number, e.g. 0.5"))?
                }
                "OPENPALM_DORMANCY_DAYS" => {
                    c.dormancy_days = v.parse().map_err(|_| invalid(&k, &v, "expected a number of days"))?
                }
                "OPENPALM_DORMANCY_NOTICE_DAYS" => {
                    c.dormancy_notice_days = v.parse().map_err(|_| invalid(&k, &v, "expected a number of days"))?
                }
                "OPENPALM_WEBHOOK_ALLOW_HTTP" => {
                    c.webhook_allow_http = v.parse().map_err(|_| invalid(&k, &v, "expected true or false"))?
                }
                "OPENPALM_WEBHOOK_RETRY_BASE_MS" => {
                    c.webhook_retry_base_ms = v.parse().map_err(|_| invalid(&k, &v, "expected milliseconds"))?
                }
                "OPENPALM_WEBHOOK_MAX_ATTEMPTS" => {
                    c.webhook_max_attempts = v.parse().map_err(|_| invalid(&k, &v, "expected a number"))?
                }
                "OPENPALM_WEBHOOK_TIMEOUT_MS" => {
                    c.webhook_timeout_ms = v.parse().map_err(|_| invalid(&k, &v, "expected milliseconds"))?
                }
                "OPENPALM_WEBHOOK_ALLOW_PRIVATE" => {
                    let items: Vec<String> = v.split(',').map(str::to_string).collect();
                    c.webhook_allow_private = parse_nets(&k, &items)?
                }
                "OPENPALM_LOG_FORMAT" => c.log_format = v.parse().map_err(|m: String| invalid(&k, &v, m))?,
                other if other.starts_with("OPENPALM_LIMIT_") => {
                    let name = other["OPENPALM_LIMIT_".len()..].to_ascii_lowercase();
                    c.limits.set(&name, &v).map_err(|m| invalid(other, &v, m))?
                }
                // Read by other parts of OpenPalm (the device simulator, the test suite).
                "OPENPALM_API_KEY" | "OPENPALM_TEST_POSTGRES_URL" => {}
                other if other.starts_with("OPENPALM_") => {
                    return Err(invalid(
                        other,
                        "(set)",
                        "unknown setting; known: OPENPALM_LISTEN, OPENPALM_DATA_DIR, OPENPALM_DATABASE_URL, OPENPALM_ADMIN_TOKEN, OPENPALM_MAX_BODY_BYTES, OPENPALM_AMBIGUITY_MARGIN, OPENPALM_LANE_CONFIRM_BELOW, OPENPALM_PAYMENT_THRESHOLD, OPENPALM_DORMANCY_DAYS, OPENPALM_DORMANCY_NOTICE_DAYS, OPENPALM_WEBHOOK_ALLOW_HTTP, OPENPALM_WEBHOOK_RETRY_BASE_MS, OPENPALM_WEBHOOK_MAX_ATTEMPTS, OPENPALM_WEBHOOK_TIMEOUT_MS, OPENPALM_WEBHOOK_ALLOW_PRIVATE, OPENPALM_LOG_FORMAT, OPENPALM_LIMIT_<NAME> (api_key, device, identify_per_device, enroll_per_kiosk, failed_auth_per_address as PER_MINUTE/BURST; request_timeout_ms, max_concurrent_requests, queue_wait_ms)",
                    ))
                }
                _ => {}
            }
        }
        if let Some(v) = overrides.listen {
            c.listen = parse_listen("--listen", &v)?;
        }
        if let Some(v) = overrides.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = overrides.database_url {
            c.database_url = Some(v);
        }
        c.validate()?;
        Ok(c)
    }

    /// Check every value; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "", "must name a folder"));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(invalid(
                    "database_url",
                    url,
                    "expected sqlite://PATH or postgres://...",
                ));
            }
        }
        if let Some(t) = &self.admin_token {
            if t.len() < MIN_ADMIN_TOKEN_LEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(
                    "admin_token",
                    "(hidden)",
                    format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters without spaces (e.g. `openssl rand -hex 32`)"),
                ));
            }
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                self.max_body_bytes,
                "must be between 1024 and 268435456",
            ));
        }
        if !(0.0..=0.5).contains(&self.ambiguity_margin) {
            return Err(invalid(
                "ambiguity_margin",
                self.ambiguity_margin,
                "must be between 0 and 0.5",
            ));
        }
        if !(0.0..=1.0).contains(&self.lane_confirm_below) {
            return Err(invalid(
                "lane_confirm_below",
                self.lane_confirm_below,
                "must be between 0 and 1",
            ));
        }
        if !(openpalm_engine::IDENTIFICATION_THRESHOLD..=1.0).contains(&self.payment_threshold) {
            return Err(invalid(
                "payment_threshold",
                self.payment_threshold,
                "must be between the identification threshold (0.47) and 1: payment is never looser than entry",
            ));
        }
        if self.dormancy_days < 30
            || self.dormancy_notice_days < 1
            || self.dormancy_notice_days >= self.dormancy_days
        {
            return Err(invalid(
                "dormancy_days",
                self.dormancy_days,
                "must be at least 30, with dormancy_notice_days between 1 and it",
            ));
        }
        if !(10..=WEBHOOK_MAX_DELAY_MS).contains(&self.webhook_retry_base_ms) {
            return Err(invalid(
                "webhook_retry_base_ms",
                self.webhook_retry_base_ms,
                format!("must be between 10 and {WEBHOOK_MAX_DELAY_MS}"),
            ));
        }
        if !(1..=100).contains(&self.webhook_max_attempts) {
            return Err(invalid(
                "webhook_max_attempts",
                self.webhook_max_attempts,
                "must be between 1 and 100",
            ));
        }
        self.limits
            .validate()
            .map_err(|(key, m)| invalid(key, "(set)", m))?;
        if !(100..=120_000).contains(&self.webhook_timeout_ms) {
            return Err(invalid(
                "webhook_timeout_ms",
                self.webhook_timeout_ms,
                "must be between 100 and 120000",
            ));
        }
        Ok(())
    }

    /// Delay before the next attempt after `failed` failed attempts (1, 2, ...): the base,
    /// doubled for each earlier failure, at most [`WEBHOOK_MAX_DELAY_MS`].
    pub fn webhook_backoff_ms(&self, failed: u32) -> u64 {
        let doublings = failed.saturating_sub(1).min(40);
        self.webhook_retry_base_ms
            .saturating_mul(1u64 << doublings)
            .min(WEBHOOK_MAX_DELAY_MS)
    }

    /// The database URL in effect.
    pub fn effective_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| openpalm_store::SqlStore::sqlite_url(&self.data_dir.join("openpalm.db")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("openpalm.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/var/lib/openpalm\"\nmax_body_bytes = 4096\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[("OPENPALM_MAX_BODY_BYTES", "2048"), ("HOME", "/x")]),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/openpalm"));
        assert_eq!(c.max_body_bytes, 2048);
        let c = Config::load(
            Some(&file),
            env(&[]),
            Overrides {
                listen: Some("127.0.0.1:0".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let e = Config::load(
            None,
            env(&[("OPENPALM_LISTEN", "localhost")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("OPENPALM_LISTEN") && e.to_string().contains("IP:PORT"),
            "{e}"
        );
        let e = Config::load(
            None,
            env(&[("OPENPALM_ADMIN_TOKEN", "short")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
        assert!(!e.to_string().contains("short"), "the token is not echoed");
        assert!(Config::load(
            None,
            env(&[("OPENPALM_API_KEY", "op_test_x")]),
            Overrides::default()
        )
        .is_ok());
        let e = Config::load(None, env(&[("OPENPALM_LISTN", "x")]), Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("unknown setting"), "{e}");
        let e = Config::load(
            None,
            env(&[("OPENPALM_DATABASE_URL", "mysql://x")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("postgres://"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let e = Config::load(Some(&file), env(&[]), Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = Config::load(
            Some(&dir.path().join("missing.toml")),
            env(&[]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot read config file"), "{e}");
    }

    #[test]
    fn webhook_settings_load_validate_and_back_off() {
        let c = Config::load(
            None,
            env(&[
                ("OPENPALM_WEBHOOK_ALLOW_HTTP", "true"),
                ("OPENPALM_WEBHOOK_RETRY_BASE_MS", "100"),
                ("OPENPALM_WEBHOOK_MAX_ATTEMPTS", "5"),
            ]),
            Overrides::default(),
        )
        .unwrap();
        assert!(c.webhook_allow_http);
        assert_eq!(c.webhook_max_attempts, 5);
        assert_eq!(
            (1..=4).map(|n| c.webhook_backoff_ms(n)).collect::<Vec<_>>(),
            vec![100, 200, 400, 800]
        );
        let d = Config::default();
        assert!(!d.webhook_allow_http, "https only unless asked");
        assert_eq!(d.webhook_backoff_ms(1), 5_000);
        assert_eq!(d.webhook_backoff_ms(16), WEBHOOK_MAX_DELAY_MS, "capped");
        assert_eq!(d.webhook_backoff_ms(200), WEBHOOK_MAX_DELAY_MS, "no overflow");
        let e = Config::load(
            None,
            env(&[("OPENPALM_WEBHOOK_MAX_ATTEMPTS", "0")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("webhook_max_attempts"), "{e}");
        let e = Config::load(
            None,
            env(&[("OPENPALM_WEBHOOK_ALLOW_HTTP", "yes")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
    }
}
