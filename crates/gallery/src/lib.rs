//! Enrolled palm templates and 1:N identification.
//!
//! [`Gallery`] keeps templates keyed by (person, hand, sample) in a packed arena (one `u32`
//! per code row, every template's codes contiguous, grown a 4096-slot chunk at a time, freed
//! slots reused) and answers `identify(probe, k)`: the top-k persons by
//! `Engine::score(probe, enrolled)` (max over the person's templates), the scores computed
//! from the same integer counts with the engine's own `normalised_score`, so they are
//! bit-identical to the engine's.
//!
//! Search runs in two stages when more than `SearchParams::exhaustive_up_to` templates are
//! searched: a first stage compares a 512-bit sketch of the probe's primary code, under each
//! translation, with every template's sketch (16 templates per SIMD pass) and keeps the
//! `candidates` closest; the second stage scores those exactly. The scores returned are
//! always exact; *which* persons make the list is exact only with
//! [`Gallery::identify_exact`] (every template scored) or when the search is small enough to
//! be exhaustive. On synthetic galleries with genuine probes the two-stage top-1 agreed with
//! brute force in every measured case (see the tests and `openpalm bench identify`), but
//! the first stage has no bound that proves it; low-scoring places of the list (impostors)
//! can differ.
//!
//! [`Scope`] restricts a search to some persons at a cost proportional to their templates.
//! [`DecisionPolicy`] turns a ranked list into match / no match / ambiguous, and
//! [`expected_fpir`] gives the false positive identification rate to expect.
//! [`Store`] makes a gallery durable with a checksummed append-only log.

pub mod decision;
pub mod gallery;
pub mod kernel;
pub mod layout;
pub mod store;
pub mod synthetic;

pub use decision::{expected_fpir, Decision, DecisionPolicy};
pub use gallery::{Candidate, Gallery, Scope, SearchParams};
pub use kernel::Kernel;
pub use layout::{Hand, Key, Layout};
pub use store::{RecoveryReport, Store, TailDefect};

/// Why a gallery operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("unsupported gallery layout {0:?} (grid 1..=32, planes >= 1, shift < grid)")]
    UnsupportedLayout(Layout),
    #[error(
        "code geometry grid {grid} x planes {planes} ({rows} rows) does not fit the gallery's {expected:?}"
    )]
    Geometry {
        expected: Layout,
        grid: usize,
        planes: usize,
        rows: usize,
    },
    #[error("template has {found} rotated codes, the gallery stores {expected}")]
    Rotations { expected: usize, found: usize },
    #[error("template made by algorithm {found}, the gallery holds algorithm {expected}")]
    Algorithm { expected: u16, found: u16 },
    #[error("key {0:?} is already enrolled")]
    DuplicateKey(Key),
    #[error("key {0:?} is not enrolled")]
    UnknownKey(Key),
    #[error("popcount kernel {0} is not supported by this CPU")]
    KernelUnsupported(&'static str),
    #[error("gallery log is corrupt at byte {offset}: {reason}")]
    CorruptLog { offset: u64, reason: &'static str },
    #[error("gallery log was written for a different layout or algorithm")]
    LogLayoutMismatch,
    #[error("gallery log I/O: {0}")]
    Io(#[from] std::io::Error),
}
