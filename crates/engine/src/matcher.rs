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
    /// Coarse stage: every (probe code, shift) is scored on every `coarse_step`-th row (1..=8).
    pub coarse_step: usize,
    /// Fine stage: how many of the coarse stage's best candidates are scored on all rows (1..=4).
    pub refine: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            max_shift: 2,
            reference_bits: 4000,
            coarse_step: 4,
            refine: 2,
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

/// A code packed for fast comparison: each row holds two bit planes per u64 (plane 2k in
/// the low 32 bits, plane 2k+1 in the high 32), rows in order, so a vertical shift is an
/// offset into the array and a horizontal shift is one shift per word. Needs grid <= 32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedCode {
    pub grid: usize,
    /// u64 words per row: ceil(planes / 2).
    pub lanes: usize,
    pub bits: Vec<u64>,
    pub mask: Vec<u64>,
}

impl PackedCode {
    /// Pack a code; `None` when its grid is wider than 32 columns.
    pub fn new(code: &PalmCode) -> Option<PackedCode> {
        if code.grid > 32 {
            return None;
        }
        let (g, lanes) = (code.grid, code.planes.div_ceil(2));
        let mut bits = vec![0u64; g * lanes];
        let mut mask = vec![0u64; g * lanes];
        for p in 0..code.planes {
            let (lane, hi) = (p / 2, (p % 2) * 32);
            for y in 0..g {
                bits[y * lanes + lane] |= code.bits[p * g + y] << hi;
                mask[y * lanes + lane] |= code.mask[p * g + y] << hi;
            }
        }
        Some(PackedCode {
            grid: g,
            lanes,
            bits,
            mask,
        })
    }
}

/// Counts over equally long word runs of a probe and a reference at horizontal shift `dx`.
/// Written as plain zipped loops with 64-bit accumulators so the compiler vectorises them
/// (in the AVX2 build the population counts become byte-table lookups on 4 words at once).
#[inline(always)]
fn run_counts(ab: &[u64], am: &[u64], bb: &[u64], bm: &[u64], dx: i32, col_mask: u64) -> (u32, u32) {
    let (mut d, mut n) = (0u64, 0u64);
    if dx >= 0 {
        let s = dx as u32;
        for (((a, am), b), bm) in ab.iter().zip(am).zip(bb).zip(bm) {
            let m = am & (bm >> s) & col_mask;
            d += ((a ^ (b >> s)) & m).count_ones() as u64;
            n += m.count_ones() as u64;
        }
    } else {
        let s = (-dx) as u32;
        for (((a, am), b), bm) in ab.iter().zip(am).zip(bb).zip(bm) {
            let m = am & (bm << s) & col_mask;
            d += ((a ^ (b << s)) & m).count_ones() as u64;
            n += m.count_ones() as u64;
        }
    }
    (d as u32, n as u32)
}

/// [`run_counts`] at the five horizontal shifts -2..=2 in one pass over the words (loads
/// shared, ten running counts).
#[inline(always)]
fn run_counts5(ab: &[u64], am: &[u64], bb: &[u64], bm: &[u64], grid: usize) -> [(u32, u32); 5] {
    let cm = [
        lane_col_mask(grid, -2),
        lane_col_mask(grid, -1),
        lane_col_mask(grid, 0),
        lane_col_mask(grid, 1),
        lane_col_mask(grid, 2),
    ];
    let mut d = [0u64; 5];
    let mut n = [0u64; 5];
    for (((&a, &am), &b), &bm) in ab.iter().zip(am).zip(bb).zip(bm) {
        let bs = [b << 2, b << 1, b, b >> 1, b >> 2];
        let ms = [bm << 2, bm << 1, bm, bm >> 1, bm >> 2];
        for k in 0..5 {
            let m = am & ms[k] & cm[k];
            d[k] += ((a ^ bs[k]) & m).count_ones() as u64;
            n[k] += m.count_ones() as u64;
        }
    }
    std::array::from_fn(|k| (d[k] as u32, n[k] as u32))
}

/// Columns that stay inside both codes at horizontal shift `dx`, in both 32-bit lanes.
#[inline(always)]
fn lane_col_mask(grid: usize, dx: i32) -> u64 {
    let lane_full: u64 = if grid == 32 {
        0xffff_ffff
    } else {
        (1u64 << grid) - 1
    };
    let lane = if dx >= 0 {
        lane_full >> dx
    } else {
        (lane_full << (-dx)) & lane_full
    };
    lane | (lane << 32)
}

/// Counts over rows `rows` (a range of probe rows, every `step`-th) at one shift.
#[inline(always)]
fn packed_counts(a: &PackedCode, b: &PackedCode, dx: i32, dy: i32, step: usize) -> (u32, u32) {
    let g = a.grid as i32;
    let lane_full: u64 = if a.grid == 32 {
        0xffff_ffff
    } else {
        (1u64 << a.grid) - 1
    };
    let lane_mask = if dx >= 0 {
        lane_full >> dx
    } else {
        (lane_full << (-dx)) & lane_full
    };
    let col_mask = lane_mask | (lane_mask << 32);
    let (y0, y1) = (0.max(-dy), g.min(g - dy));
    let l = a.lanes;
    if step == 1 {
        if y1 <= y0 {
            return (0, 0);
        }
        let (a0, a1) = (y0 as usize * l, y1 as usize * l);
        let (b0, b1) = ((y0 + dy) as usize * l, (y1 + dy) as usize * l);
        return run_counts(
            &a.bits[a0..a1],
            &a.mask[a0..a1],
            &b.bits[b0..b1],
            &b.mask[b0..b1],
            dx,
            col_mask,
        );
    }
    let (mut diff, mut n) = (0u32, 0u32);
    let mut y = y0;
    // Align the row subsample to absolute rows so both directions see the same rows.
    y += (step as i32 - y.rem_euclid(step as i32)) % step as i32;
    while y < y1 {
        let ia = y as usize * l;
        let ib = (y + dy) as usize * l;
        let (d, m) = run_counts(
            &a.bits[ia..ia + l],
            &a.mask[ia..ia + l],
            &b.bits[ib..ib + l],
            &b.mask[ib..ib + l],
            dx,
            col_mask,
        );
        diff += d;
        n += m;
        y += step as i32;
    }
    (diff, n)
}

/// Coarse-to-fine search of a probe's codes against a reference code: every (probe code,
/// shift) is scored on every `coarse_step`-th row; the `refine` best are scored on all rows;
/// the best of those is the result. `which` in the detail is the probe code index.
#[inline(always)]
fn search_impl(probes: &[PackedCode], reference: &PackedCode, cfg: &MatchConfig) -> (MatchDetail, usize) {
    let s = cfg.max_shift as i32;
    const KEEP: usize = 4;
    let mut top: [(f32, usize, i32, i32); KEEP] = [(-1.0, 0, 0, 0); KEEP];
    let keep = cfg.refine.clamp(1, KEEP);
    let step = cfg.coarse_step.clamp(1, 8);
    let (g, l) = (reference.grid, reference.lanes);
    // The reference's rows grouped by residue modulo `step`, and each probe's rows
    // 0, step, 2 step, ...: for a vertical shift dy, probe row step*k meets reference row
    // step*k + dy, which is entry k + (dy - r) / step of residue group r = dy mod step, so
    // every (probe code, shift) is one contiguous run.
    // One buffer: reference bits and mask regrouped by residue (each g*l words), then each
    // probe's coarse rows (bits, then mask). On the stack for the default geometry.
    let ref_words = g * l;
    let coarse_words = g.div_ceil(step) * l;
    let need = 2 * ref_words + probes.len() * 2 * coarse_words;
    let mut stack = [0u64; 448];
    let mut heap = Vec::new();
    let buf: &mut [u64] = if need <= stack.len() {
        &mut stack[..need]
    } else {
        heap.resize(need, 0);
        &mut heap[..]
    };
    let mut group_start = [0usize; 9];
    let mut w = 0;
    for (r, start) in group_start.iter_mut().enumerate().take(step) {
        *start = w / l;
        for y in (r..g).step_by(step) {
            buf[w..w + l].copy_from_slice(&reference.bits[y * l..(y + 1) * l]);
            buf[ref_words + w..ref_words + w + l].copy_from_slice(&reference.mask[y * l..(y + 1) * l]);
            w += l;
        }
    }
    group_start[step] = w / l;
    let mut w = 2 * ref_words;
    for p in probes {
        for y in (0..g).step_by(step) {
            buf[w..w + l].copy_from_slice(&p.bits[y * l..(y + 1) * l]);
            buf[w + coarse_words..w + coarse_words + l].copy_from_slice(&p.mask[y * l..(y + 1) * l]);
            w += l;
        }
        w += coarse_words;
    }
    let (refs, probe_rows) = buf.split_at(2 * ref_words);
    let (rb, rm) = refs.split_at(ref_words);
    let k_rows = g.div_ceil(step) as i32;
    for (i, chunk) in probe_rows.chunks_exact(2 * coarse_words).enumerate() {
        let (pb, pm) = chunk.split_at(coarse_words);
        for dy in -s..=s {
            let r = dy.rem_euclid(step as i32) as usize;
            let koff = (dy - r as i32) / step as i32;
            let (gs, ge) = (group_start[r], group_start[r + 1]);
            let (gb, gm) = (&rb[gs * l..ge * l], &rm[gs * l..ge * l]);
            let count = (ge - gs) as i32;
            let (k0, k1) = (0.max(-koff), k_rows.min(count - koff));
            if k1 <= k0 {
                continue;
            }
            let (a0, a1) = (k0 as usize * l, k1 as usize * l);
            let (b0, b1) = ((k0 + koff) as usize * l, (k1 + koff) as usize * l);
            // A plain `if`, not a closure: closures do not inherit the enclosing function's
            // target features, and the kernel must be compiled with them.
            let five = if s == 2 {
                Some(run_counts5(&pb[a0..a1], &pm[a0..a1], &gb[b0..b1], &gm[b0..b1], g))
            } else {
                None
            };
            for (k, dx) in (-s..=s).enumerate() {
                let (d, n) = match &five {
                    Some(c) => c[k],
                    None => run_counts(
                        &pb[a0..a1],
                        &pm[a0..a1],
                        &gb[b0..b1],
                        &gm[b0..b1],
                        dx,
                        lane_col_mask(g, dx),
                    ),
                };
                let sc = if n == 0 {
                    -1.0
                } else {
                    1.0 - 2.0 * d as f32 / n as f32
                };
                if sc > top[keep - 1].0 {
                    let mut j = keep - 1;
                    while j > 0 && sc > top[j - 1].0 {
                        top[j] = top[j - 1];
                        j -= 1;
                    }
                    top[j] = (sc, i, dx, dy);
                }
            }
        }
    }
    let mut best = (
        MatchDetail {
            score: 0.0,
            distance: 0.5,
            compared_bits: 0,
            shift_x: 0,
            shift_y: 0,
        },
        0,
    );
    let mut first = true;
    for &(c, i, dx, dy) in &top[..keep] {
        if c < 0.0 && !first {
            continue;
        }
        let (diff, n) = packed_counts(&probes[i], reference, dx, dy, 1);
        let score = normalised_score(diff, n, cfg.reference_bits);
        if first || score > best.0.score {
            first = false;
            best = (
                MatchDetail {
                    score,
                    distance: if n == 0 { 0.5 } else { diff as f32 / n as f32 },
                    compared_bits: n,
                    shift_x: dx,
                    shift_y: dy,
                },
                i,
            );
        }
    }
    best
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,popcnt")]
unsafe fn search_avx512(
    probes: &[PackedCode],
    reference: &PackedCode,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    search_impl(probes, reference, cfg)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn search_avx2(
    probes: &[PackedCode],
    reference: &PackedCode,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    search_impl(probes, reference, cfg)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn search_popcnt(
    probes: &[PackedCode],
    reference: &PackedCode,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    search_impl(probes, reference, cfg)
}

/// Best match of any of the probe's codes against the reference code (see [`search_impl`]);
/// returns the detail and the index of the probe code that gave it. Dispatches at run time
/// to the widest instruction set the CPU has; every path gives identical results.
pub fn search(probes: &[PackedCode], reference: &PackedCode, cfg: &MatchConfig) -> (MatchDetail, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            // SAFETY: every feature the function is compiled for was detected on this CPU.
            return unsafe { search_avx512(probes, reference, cfg) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: both features were detected on this CPU.
            return unsafe { search_avx2(probes, reference, cfg) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: detected above.
            return unsafe { search_popcnt(probes, reference, cfg) };
        }
    }
    search_impl(probes, reference, cfg)
}

/// The instruction set [`search`] dispatches to on this CPU: `avx512_vpopcntdq`, `avx2`,
/// `popcnt` or `portable`. Benchmarks print it beside their figures.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return "avx512_vpopcntdq";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            return "avx2";
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            return "popcnt";
        }
    }
    "portable"
}

/// The portable path of [`search`], for tests.
pub fn search_portable(
    probes: &[PackedCode],
    reference: &PackedCode,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    search_impl(probes, reference, cfg)
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
                coarse_step: 1,
                refine: 1,
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

    #[test]
    fn packed_counts_equal_plain_counts_at_every_shift() {
        for s in 1..5u64 {
            let (a, b) = (code(s), code(s * 31 + 7));
            let (pa, pb) = (PackedCode::new(&a).unwrap(), PackedCode::new(&b).unwrap());
            for dy in -3..=3 {
                for dx in -3..=3 {
                    assert_eq!(packed_counts(&pa, &pb, dx, dy, 1), counts_at(&a, &b, dx, dy));
                }
            }
        }
    }

    #[test]
    fn search_paths_agree_and_find_a_planted_shift() {
        let cfg = MatchConfig::default();
        let reference = code(5);
        // The probe is the reference moved by one cell right and one down, plus a decoy.
        let g = reference.grid;
        let mut moved = reference.clone();
        for p in 0..reference.planes {
            for y in 0..g {
                let src = if y == 0 {
                    0
                } else {
                    reference.bits[p * g + y - 1] << 1 & 0xffff_ffff
                };
                let srcm = if y == 0 {
                    0
                } else {
                    reference.mask[p * g + y - 1] << 1 & 0xffff_ffff
                };
                moved.bits[p * g + y] = src;
                moved.mask[p * g + y] = srcm;
            }
        }
        let probes = vec![
            PackedCode::new(&code(99)).unwrap(),
            PackedCode::new(&moved).unwrap(),
        ];
        let r = PackedCode::new(&reference).unwrap();
        let (fast, which) = search(&probes, &r, &cfg);
        assert_eq!((fast, which), search_portable(&probes, &r, &cfg));
        assert_eq!(which, 1);
        assert_eq!((fast.shift_x, fast.shift_y, fast.distance), (-1, -1, 0.0));
    }

    /// The fast layout gives exactly the result of the plain definition: every (probe code,
    /// shift) scored with `packed_counts` on every 4th row, the best two rescored on all rows.
    #[test]
    fn search_equals_its_definition() {
        let cfg = MatchConfig::default();
        for seed in 1..20u64 {
            let probes: Vec<PackedCode> = (0..5)
                .map(|k| PackedCode::new(&code(seed * 10 + k)).unwrap())
                .collect();
            let reference = PackedCode::new(&code(seed * 977)).unwrap();
            let mut cands = Vec::new();
            for (i, p) in probes.iter().enumerate() {
                for dy in -2..=2 {
                    for dx in -2..=2 {
                        let (d, n) = packed_counts(p, &reference, dx, dy, cfg.coarse_step);
                        let sc = if n == 0 {
                            -1.0
                        } else {
                            1.0 - 2.0 * d as f32 / n as f32
                        };
                        cands.push((sc, i, dx, dy));
                    }
                }
            }
            // Stable sort keeps the scan order among ties, as the search's insertion does.
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            let want = cands[..cfg.refine]
                .iter()
                .map(|&(_, i, dx, dy)| {
                    let (d, n) = packed_counts(&probes[i], &reference, dx, dy, 1);
                    normalised_score(d, n, cfg.reference_bits)
                })
                .fold(0.0f32, f32::max);
            assert_eq!(search(&probes, &reference, &cfg).0.score, want, "seed {seed}");
            assert_eq!(
                search_portable(&probes, &reference, &cfg).0.score,
                want,
                "seed {seed}"
            );
        }
    }

    /// Every instruction-set path this CPU supports gives the portable path's result.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn every_supported_cpu_path_agrees() {
        use std::arch::is_x86_feature_detected as has;
        let cfg = MatchConfig::default();
        for seed in 1..10u64 {
            let probes: Vec<PackedCode> = (0..5)
                .map(|k| PackedCode::new(&code(seed * 3 + k)).unwrap())
                .collect();
            let reference = PackedCode::new(&code(seed * 101)).unwrap();
            let want = search_portable(&probes, &reference, &cfg);
            if has!("popcnt") {
                assert_eq!(unsafe { search_popcnt(&probes, &reference, &cfg) }, want);
            }
            if has!("avx2") && has!("popcnt") {
                assert_eq!(unsafe { search_avx2(&probes, &reference, &cfg) }, want);
            }
            if has!("avx512f") && has!("avx512vpopcntdq") && has!("avx2") && has!("popcnt") {
                assert_eq!(unsafe { search_avx512(&probes, &reference, &cfg) }, want);
            } else {
                eprintln!("AVX-512 VPOPCNTDQ not available here: that path is not exercised");
            }
        }
    }
}
