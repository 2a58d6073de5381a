//! Enrolled palm templates and 1:N identification.
//!
//! Matching is directional (`Engine::score(probe, reference)`): the probe's codes (its
//! primary code and its coded poses) are searched over translations against the reference's
//! *primary* code only. So [`Gallery`] stores, per template keyed by (person, hand, sample),
//! only the primary code, packed exactly as the engine's matcher packs it
//! (`matcher::PackedCode`, 1536 bytes for the engine's codes), in contiguous chunks of 4096
//! slots (grown a chunk at a time, freed slots reused), and answers `identify(probe, k)`: the
//! top-k persons by `Engine::score(probe, enrolled)`, max over the person's templates. Every
//! score is computed by calling the engine's own `matcher::search` on the stored packed code,
//! so scores are bit-identical to the engine's; the gallery has no scoring code of its own.
//!
//! Search runs in two stages when more than `SearchParams::exhaustive_up_to` templates are
//! searched: a first stage ranks every template by a 48-byte translation-tolerant sketch
//! ([`sketch`]: block-pooled majority bits, compared once per probe pose with a popcount, no
//! shift search) and keeps the closest few hundred; the second stage scores those exactly.
//! The scores returned are always exact; *which* persons make the list is exact only with
//! [`Gallery::identify_exact`] (every template scored) or when the search is small enough to
//! be exhaustive. Nothing bounds the first stage; how often it changes the answer is measured
//! on real palms by `tests/real_palms.rs` and `examples/exactness.rs`. Measured (two samples
//! per palm enrolled, the rest probing, galleries padded with templates that are not real
//! palms, a statistical shortcut): with 3000 padding templates the two-stage top-1 equalled
//! the exhaustive one for 353/353 Tongji probes and 143/144 COEP probes (the other's
//! exhaustive top-1 is not its own palm). The first-stage rank of the exhaustive top-1 among
//! 1M padding templates (`examples/exactness.rs rank=1000000`, engine at 057551a), for the
//! probes whose top-1 reaches the identification threshold: Tongji 353 probes, at most 44
//! (random padding) and 201 (scrambled real codes); COEP whole hands 143 probes, 99% within
//! 33 / 117 and the worst at 498 / 2823. So at a million templates the first look's 256
//! candidates miss that worst COEP probe (an earlier engine put it at 1613).
//!
//! Hence a second look (`SearchParams::extend_below`, `extended_per_million`): when no
//! template among the first look's candidates reaches the identification threshold
//! (`openpalm_engine::IDENTIFICATION_THRESHOLD`, the decision policy's default), the search
//! goes on down the first stage's order, to 8192 templates per million by default (2.9 times
//! the worst rank measured above). A probe the exhaustive search would accept is then
//! accepted whenever its template ranks within that depth, and probes that match early (most
//! genuine ones) pay nothing more; probes that match nobody (impostors, persons not
//! enrolled) pay the second look: about 7900 more `matcher::search` calls at a million. The
//! bench reports both (`threads_2`, `impostors`). Still no proof: the guarantee is only as
//! good as the measured ranks, which grow with the gallery (hence per million), were
//! measured on padding that is not real palms, and move when the engine changes. A first
//! look that finds someone above the threshold is not extended, so the runner-up the
//! decision policy's margin is checked against comes from the first look only.
//!
//! [`Scope`] restricts a search to some persons at a cost proportional to their templates.
//! [`DecisionPolicy`] turns a ranked list into match / no match / ambiguous, and
//! [`expected_fpir`] gives the false positive identification rate to expect.
//! [`Store`] makes a gallery durable with a checksummed append-only log and checksummed
//! snapshots ([`snapshot`]), so reopening reads one snapshot and replays only the log's tail.

pub mod decision;
pub mod gallery;
pub mod layout;
pub mod sketch;
pub mod snapshot;
pub mod store;
pub mod synthetic;

pub use decision::{expected_fpir, Decision, DecisionPolicy};
pub use gallery::{Candidate, Gallery, Scope, SearchParams};
pub use layout::{Hand, Key, Layout};
pub use store::{RecoveryReport, SnapshotPolicy, SnapshotStep, Store, TailDefect};

/// Why a gallery operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("unsupported gallery layout {0:?} (grid 1..=32, planes 1..=64, max_shift < grid)")]
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
    #[error("stored code refused: {0}")]
    StoredCode(&'static str),
    #[error("template made by algorithm {found}, the gallery holds algorithm {expected}")]
    Algorithm { expected: u16, found: u16 },
    #[error("key {0:?} is already enrolled")]
    DuplicateKey(Key),
    #[error("key {0:?} is not enrolled")]
    UnknownKey(Key),
    #[error("gallery log is corrupt at byte {offset}: {reason}")]
    CorruptLog { offset: u64, reason: &'static str },
    #[error("gallery log was written for a different layout or algorithm")]
    LogLayoutMismatch,
    #[error("gallery snapshot is corrupt at byte {offset}: {reason}")]
    CorruptSnapshot { offset: u64, reason: &'static str },
    #[error("gallery snapshot was written for a different layout, algorithm or format version")]
    SnapshotLayoutMismatch,
    #[error(
        "gallery snapshot (generation {snapshot:?}) and log (generation {log:?}) do not belong together"
    )]
    Generations { snapshot: Option<u64>, log: Option<u64> },
    #[error("gallery log I/O: {0}")]
    Io(#[from] std::io::Error),
}
