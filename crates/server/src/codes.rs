//! Sending a person their sign-in code: the [`CodeSender`] port, and [`FileSender`], which
//! appends each message to a JSON-lines file (the development, test and demo sink; an SMS
//! provider's adapter implements the same trait).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Why a code could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("could not send the sign-in code: {0}")]
pub struct SendError(pub String);

/// Sends a one-time code to a phone number.
pub trait CodeSender: Send + Sync + std::fmt::Debug {
    fn send(&self, phone: &str, code: &str, expires_at: i64) -> Result<(), SendError>;
}

/// One message as the file sink writes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SentCode {
    pub phone: String,
    pub code: String,
    pub expires_at: i64,
}

/// Appends every message to a file (mode 0600), one JSON object per line.
#[derive(Debug)]
pub struct FileSender {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSender {
    pub fn new(path: PathBuf) -> FileSender {
        FileSender {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Every message sent so far (for tests and the demo).
    pub fn read(path: &std::path::Path) -> Vec<SentCode> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl CodeSender for FileSender {
    fn send(&self, phone: &str, code: &str, expires_at: i64) -> Result<(), SendError> {
        let _g = self.lock.lock().map_err(|_| SendError("lock poisoned".into()))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&self.path).map_err(|e| SendError(e.to_string()))?;
        let line = serde_json::to_string(&SentCode {
            phone: phone.to_string(),
            code: code.to_string(),
            expires_at,
        })
        .map_err(|e| SendError(e.to_string()))?;
        writeln!(f, "{line}").map_err(|e| SendError(e.to_string()))
    }
}
