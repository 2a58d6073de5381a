//! openpalm-synth: synthetic palms and hands to test OpenPalm's machinery.
//!
//! An [`Identity`] is a palm drawn from a seed: heart, head and life lines as Bezier curves
//! with identity-specific control points, secondary creases, a field of fine wrinkles, skin
//! tone and texture, a branching vein network (NIR) and whole-hand geometry. A [`Sample`] is
//! one capture of it: pose, finger spread, light, exposure, blur, noise, non-rigid skin
//! deformation and crease contrast, scaled by a [`Difficulty`]. [`write_dataset`] writes
//! images plus `labels.csv` in the layout of the real sets; [`template_stream`] turns many
//! identities into engine templates without writing images, by default through [`fast`], a
//! renderer that draws the capture directly at the engine's working size. [`realism`]
//! compares score distributions of a synthetic and a real set (`openpalm synth realism`).
//!
//! Whole-hand captures are placed on backgrounds a hovering-hand reader sees ([`Background`]);
//! [`Difficulty::provoking`] makes captures the engine should refuse for a given reason.
//!
//! Everything is deterministic for a seed: each identity and each capture draws from its own
//! ChaCha stream keyed by (seed, identity, sample), so output does not depend on threads.
//!
//! Synthetic figures are never accuracy claims: they test the machinery.

// Image code indexes pixels and channels by position.
#![allow(clippy::needless_range_loop)]

pub mod dataset;
pub mod difficulty;
pub mod error;
pub mod fast;
pub mod generator;
pub mod identity;
pub mod realism;
pub mod render;
pub mod sample;
pub mod templates;
mod util;

pub use dataset::{write_dataset, DatasetSpec, DatasetSummary};
pub use difficulty::{Background, Difficulty};
pub use error::SynthError;
pub use fast::FastRoi;
pub use generator::{Generator, Kind, Prepared};
pub use identity::{Identity, Population};
pub use render::{Band, HandRender, SynthImage, HAND_HEIGHT, HAND_WIDTH, ROI_SIDE};
pub use sample::Sample;
pub use templates::{template_stream, RenderPath, TemplateMaker, TemplateStream};

/// Parse a comma-separated band list (`visible,nir`).
pub fn parse_bands(s: &str) -> Result<Vec<render::Band>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect()
}
