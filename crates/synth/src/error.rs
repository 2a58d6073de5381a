//! Typed errors of the generator.

use std::path::PathBuf;

/// Why a synthetic data set could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("at least one identity is needed (got 0)")]
    ZeroIdentities,
    #[error("at least one sample per identity is needed (got 0)")]
    ZeroSamples,
    #[error("at least one band is needed")]
    NoBands,
    #[error("band {0} is listed twice")]
    DuplicateBand(&'static str),
    #[error("sessions must be between 1 and the number of samples ({samples}), got {sessions}")]
    BadSessions { sessions: u32, samples: usize },
    #[error("invalid difficulty: {0}")]
    Difficulty(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {message}")]
    Encode { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{path} line {line}: {message}")]
    Scores {
        path: PathBuf,
        line: u64,
        message: String,
    },
}
