//! 1:1 comparison of palm codes: masked Hamming distance, minimised over a small search of
//! translations that absorbs the residual misalignment the ROI step leaves.

use crate::code::PalmCode;

/// Matching parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchConfig {
    /// Largest translation tried, in code cells, along x and along y.
    pub max_shift: usize,
    /// Overlap (valid bits compared) at which a distance counts in full; smaller overlaps are
    /// pulled towards 0.5 (Daugman's normalisation), so a lucky match on few bits scores low.
    pub reference_bits: u32,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            max_shift: 2,
            reference_bits: 4000,
        }
    }
}

/// Result of comparing two codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchDetail {
    /// Similarity in [0, 1]; higher = more alike.
    pub score: f32,
    /// Raw fraction of disagreeing valid bits at the best shift.
    pub distance: f32,
    /// Valid bits compared at the best shift.
    pub compared_bits: u32,
    pub shift_x: i32,
    pub shift_y: i32,
}

/// Disagreeing and compared bit counts at one shift: code `a` at (x, y) against `b` at
/// (x + dx, y + dy).
#[inline]
pub fn counts_at(a: &PalmCode, b: &PalmCode, dx: i32, dy: i32) -> (u32, u32) {
    let g = a.grid as i32;
    let full: u64 = if a.grid == 64 {
        u64::MAX
    } else {
        (1u64 << a.grid) - 1
    };
    let col_mask = if dx >= 0 {
        full >> dx
    } else {
        (full << (-dx)) & full
    };
    let (y0, y1) = (0.max(-dy), g.min(g - dy));
    let mut diff = 0u32;
    let mut n = 0u32;
    for p in 0..a.planes {
        let base = p * a.grid;
        for y in y0..y1 {
            let ia = base + y as usize;
            let ib = base + (y + dy) as usize;
            let (bb, bm) = if dx >= 0 {
                (b.bits[ib] >> dx, b.mask[ib] >> dx)
            } else {
                (b.bits[ib] << (-dx), b.mask[ib] << (-dx))
            };
            let m = a.mask[ia] & bm & col_mask;
            diff += ((a.bits[ia] ^ bb) & m).count_ones();
            n += m.count_ones();
        }
    }
    (diff, n)
}

/// Score from a raw distance and the bits it was measured on.
#[inline]
pub fn normalised_score(diff: u32, n: u32, reference_bits: u32) -> f32 {
    if n == 0 {
        return 0.0;
    }
    let hd = diff as f32 / n as f32;
    let hd_norm = 0.5 - (0.5 - hd) * (n as f32 / reference_bits as f32).min(1.0).sqrt();
    (1.0 - 2.0 * hd_norm).clamp(0.0, 1.0)
}

/// Compare two codes with translation search.
pub fn compare(a: &PalmCode, b: &PalmCode, cfg: &MatchConfig) -> MatchDetail {
    assert_eq!(
        (a.grid, a.planes),
        (b.grid, b.planes),
        "codes of different geometry"
    );
    let s = cfg.max_shift as i32;
    let mut best = MatchDetail {
        score: 0.0,
        distance: 0.5,
        compared_bits: 0,
        shift_x: 0,
        shift_y: 0,
    };
    let mut first = true;
    for dy in -s..=s {
        for dx in -s..=s {
            let (diff, n) = counts_at(a, b, dx, dy);
            let score = normalised_score(diff, n, cfg.reference_bits);
            if first || score > best.score {
                first = false;
                best = MatchDetail {
                    score,
                    distance: if n == 0 { 0.5 } else { diff as f32 / n as f32 },
                    compared_bits: n,
                    shift_x: dx,
                    shift_y: dy,
                };
            }
        }
    }
    best
}
