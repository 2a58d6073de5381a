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
/// (x + dx, y + dy). Uses the POPCNT instruction when the CPU has it (detected at run time);
/// both paths give identical counts.
#[inline]
pub fn counts_at(a: &PalmCode, b: &PalmCode, dx: i32, dy: i32) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports POPCNT, checked just above.
            return unsafe { counts_at_popcnt(a, b, dx, dy) };
        }
    }
    counts_at_portable(a, b, dx, dy)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn counts_at_popcnt(a: &PalmCode, b: &PalmCode, dx: i32, dy: i32) -> (u32, u32) {
    counts_at_portable(a, b, dx, dy)
}

/// Portable implementation of [`counts_at`].
#[inline(always)]
pub fn counts_at_portable(a: &PalmCode, b: &PalmCode, dx: i32, dy: i32) -> (u32, u32) {
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
    if y1 <= y0 {
        return (0, 0);
    }
    let rows = (y1 - y0) as usize;
    let mut diff = 0u32;
    let mut n = 0u32;
    for p in 0..a.planes {
        let base = p * a.grid;
        let ia = base + y0 as usize;
        let ib = base + (y0 + dy) as usize;
        let (ab, am) = (&a.bits[ia..ia + rows], &a.mask[ia..ia + rows]);
        let (bb, bm) = (&b.bits[ib..ib + rows], &b.mask[ib..ib + rows]);
        for k in 0..rows {
            let (sb, sm) = if dx >= 0 {
                (bb[k] >> dx, bm[k] >> dx)
            } else {
                (bb[k] << (-dx), bm[k] << (-dx))
            };
            let m = am[k] & sm & col_mask;
            diff += ((ab[k] ^ sb) & m).count_ones();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn code(seed: u64) -> PalmCode {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x & 0xffff_ffff
        };
        PalmCode {
            grid: 32,
            planes: 6,
            bits: (0..192).map(|_| next()).collect(),
            mask: (0..192).map(|_| next() | next()).collect(),
        }
    }

    /// Counts by definition, bit by bit.
    fn naive(a: &PalmCode, b: &PalmCode, dx: i32, dy: i32) -> (u32, u32) {
        let g = a.grid as i32;
        let bit = |rows: &[u64], p: usize, x: i32, y: i32| rows[p * a.grid + y as usize] >> x & 1;
        let (mut d, mut n) = (0, 0);
        for p in 0..a.planes {
            for y in 0..g {
                for x in 0..g {
                    let (xb, yb) = (x + dx, y + dy);
                    if xb < 0 || yb < 0 || xb >= g || yb >= g {
                        continue;
                    }
                    if bit(&a.mask, p, x, y) & bit(&b.mask, p, xb, yb) == 1 {
                        n += 1;
                        d += (bit(&a.bits, p, x, y) ^ bit(&b.bits, p, xb, yb)) as u32;
                    }
                }
            }
        }
        (d, n)
    }

    #[test]
    fn counts_match_definition_on_every_path() {
        for s in 1..6u64 {
            let (a, b) = (code(s), code(s * 7919));
            for dy in -3..=3 {
                for dx in -3..=3 {
                    let want = naive(&a, &b, dx, dy);
                    assert_eq!(counts_at_portable(&a, &b, dx, dy), want);
                    assert_eq!(counts_at(&a, &b, dx, dy), want);
                }
            }
        }
    }

    #[test]
    fn identical_codes_score_one_and_score_is_symmetric_in_shift() {
        let a = code(42);
        let d = compare(
            &a,
            &a,
            &MatchConfig {
                max_shift: 2,
                reference_bits: 1000,
            },
        );
        assert_eq!((d.distance, d.shift_x, d.shift_y, d.score), (0.0, 0, 0, 1.0));
        let b = code(43);
        assert_eq!(counts_at(&a, &b, 1, -2), counts_at(&b, &a, -1, 2));
    }

    #[test]
    fn normalised_score_pulls_small_overlaps_down() {
        assert_eq!(normalised_score(0, 0, 100), 0.0);
        assert!(normalised_score(10, 100, 1000) < normalised_score(100, 1000, 1000));
        assert_eq!(normalised_score(500, 1000, 1000), 0.0);
    }
}
