//! Defaults shared by subcommands.

/// Decision threshold on the engine's similarity score (match when `score >= threshold`).
/// Mirrors the engine's default operating point for its current algorithm; keep the two equal.
pub const DEFAULT_THRESHOLD: f32 = 0.43;
