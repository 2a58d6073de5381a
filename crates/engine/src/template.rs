//! Templates: a palm code plus the facts needed to use it, in a versioned binary format.

use crate::code::PalmCode;

/// Algorithm identifier of the current coder; bumped whenever codes stop being comparable.
pub const ALGORITHM_ID: u16 = 1;

/// A palm template: what is stored and matched. Holds no image.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub algorithm: u16,
    /// Capture quality in [0, 1].
    pub quality: f32,
    pub code: PalmCode,
    /// Codes of the same capture under small rotations, for rotation-tolerant matching.
    pub rotated: Vec<PalmCode>,
}
