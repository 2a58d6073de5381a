//! Typed errors and acquisition failure reasons.

use crate::capture::DecodeError;

/// Why a capture could not be turned into a template. Each variant is guidance a kiosk can
/// show to the person in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AcquireFailure {
    #[error("no hand found: hold your open hand over the reader")]
    NoHand,
    #[error("fingers not spread: open your hand and spread your fingers")]
    FingersNotSpread,
    #[error("hand partly out of frame: centre your hand over the reader")]
    PartlyOutOfFrame,
    #[error("too blurred: hold your hand still")]
    TooBlurred,
    #[error("too dark: move your hand closer to the light")]
    TooDark,
    #[error("too bright: move your hand away from direct light")]
    TooBright,
    #[error("hand too small: move your hand closer to the reader")]
    TooSmall,
    #[error("not enough palm texture: show the palm, not the back of the hand or the background")]
    NotAPalm,
}

impl AcquireFailure {
    /// Stable machine-readable code, used in `failures.csv` and in API errors.
    pub fn code(&self) -> &'static str {
        match self {
            AcquireFailure::NoHand => "no_hand",
            AcquireFailure::FingersNotSpread => "fingers_not_spread",
            AcquireFailure::PartlyOutOfFrame => "partly_out_of_frame",
            AcquireFailure::TooBlurred => "too_blurred",
            AcquireFailure::TooDark => "too_dark",
            AcquireFailure::TooBright => "too_bright",
            AcquireFailure::TooSmall => "too_small",
            AcquireFailure::NotAPalm => "not_a_palm",
        }
    }

    pub const ALL: [AcquireFailure; 8] = [
        AcquireFailure::NoHand,
        AcquireFailure::FingersNotSpread,
        AcquireFailure::PartlyOutOfFrame,
        AcquireFailure::TooBlurred,
        AcquireFailure::TooDark,
        AcquireFailure::TooBright,
        AcquireFailure::TooSmall,
        AcquireFailure::NotAPalm,
    ];
}

/// Everything that can go wrong between capture bytes and a template.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    #[error("cannot decode the capture: {0}")]
    Decode(#[from] DecodeError),
    #[error("capture refused: {0}")]
    Acquire(#[from] AcquireFailure),
}

impl ExtractError {
    /// Stable machine-readable code (`failures.csv`'s `reason`, API error codes).
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Decode(d) => d.code(),
            ExtractError::Acquire(a) => a.code(),
        }
    }
}
