//! OpenPalm's biometric core.
//!
//! A capture (PNG, JPEG or BMP bytes of a palm-centre crop or of a whole open hand) goes
//! through: decode -> (hand: segmentation, finger valleys, palm frame) -> normalised ROI ->
//! quality gate -> palm code template. Two templates compare into a score in [0, 1].
//!
//! Pure: no I/O, no threads, no async. Every intermediate product can be rendered for
//! inspection ([`inspect`]).

pub mod capture;
pub mod code;
pub mod dense;
pub mod error;
pub mod hand;
pub mod inspect;
pub mod matcher;
pub mod plane;
pub mod quality;
pub mod roi;
pub mod template;

pub mod engine;
pub mod fusion;
pub mod tail;

pub use capture::{decode, Capture, DecodeError};
pub use engine::{Engine, EngineConfig, Extraction, InputKind, PreparedTemplate, Trace};
pub use error::{AcquireFailure, ExtractError};
pub use matcher::{MatchConfig, MatchDetail};
pub use quality::{Quality, QualityConfig};
pub use template::Template;
pub use template::TemplateError;

/// Default decision threshold on [`Engine::score`]: at or above it two templates are taken
/// to be the same palm. Chosen so that the false match rate stays at or below 1e-4 on the
/// development sets (thresholds at FMR 1e-4: tongji-roi-dev 0.429, coep-hands-dev 0.414).
pub const DEFAULT_THRESHOLD: f32 = 0.43;

/// Decision threshold for identification among many enrolled people (gates, checkouts).
/// A 1:N search makes N comparisons, so its false positive identification rate is about
/// N x FMR: it needs a stricter operating point than a 1:1 check. On the development sets no
/// impostor comparison reaches it (tongji-roi-dev max 0.449 in 100,016, coep-hands-dev
/// max 0.425 in 45,321, and 0.444 seen in the reverse direction on coep), at a cost of
/// genuine comparisons below it of 1 in 1,910 (tongji) and 5 in 432 (coep).
pub const IDENTIFICATION_THRESHOLD: f32 = 0.47;
