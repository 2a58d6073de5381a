//! The first stage of a two-stage search: a small, translation-tolerant sketch per enrolled
//! template, compared with a popcount, to choose which templates the exact stage scores.
//!
//! A template's sketch pools its packed primary code into blocks of `BLOCK x BLOCK` cells per
//! bit plane and keeps one bit per block: whether most of the block's valid bits are ones (48
//! bytes for the engine's 32 x 32 x 6 codes). Pooling makes the sketch tolerant of the small
//! translations the exact matcher searches: a shift of one or two cells moves only a block's
//! border cells, so no shift search is needed in the first stage. A probe is sketched the same
//! way once per pose (its primary code and each coded rotation/scale), with a *confidence
//! mask* on top: only blocks whose majority is clear (`|ones - zeros| >= CONFIDENCE`) count.
//! The distance of a template is the smallest, over the probe's poses, of the disagreeing
//! confident blocks divided by the pose's confident blocks (fixed point, so it is one integer
//! multiply per pose).
//!
//! Nothing bounds the sketch distance by the exact score: this stage only ranks. Which
//! templates it keeps decides whether a two-stage search equals the exhaustive one; the
//! scores of the templates it keeps are always exact (see `Gallery::identify`).

use crate::layout::Layout;
use openpalm_engine::matcher::PackedCode;
use std::collections::BinaryHeap;

/// Version of the sketch computation ([`reference_sketch`]), recorded in snapshots: a
/// snapshot whose sketches were made by another version has them recomputed on load. Bump it
/// whenever [`reference_sketch`] or its constants change.
pub const SKETCH_VERSION: u16 = 1;

/// Block side, in code cells.
pub const BLOCK: usize = 4;
/// A probe block counts when its ones and zeros differ by at least this much.
pub const CONFIDENCE: i32 = 2;
/// Fixed-point scale of a sketch distance (`disagreeing * ONE / confident`).
const ONE: u64 = 1 << 20;

/// Blocks per side and u64 words per sketch for a layout.
pub fn geometry(layout: &Layout) -> (usize, usize) {
    let nb = layout.grid.div_ceil(BLOCK);
    (nb, (layout.planes * nb * nb).div_ceil(64))
}

/// Per block: (ones among valid cells, valid cells), indexed `(plane * nb + by) * nb + bx`.
fn block_counts(layout: &Layout, code: &PackedCode) -> Vec<(i32, i32)> {
    let (nb, _) = geometry(layout);
    let lanes = layout.lanes();
    let mut counts = vec![(0i32, 0i32); layout.planes * nb * nb];
    let cell = (1u64 << BLOCK) - 1;
    for p in 0..layout.planes {
        let (lane, hi) = (p / 2, 32 * (p % 2));
        for y in 0..layout.grid {
            let i = y * lanes + lane;
            let (b, m) = (
                (code.bits[i] >> hi) & 0xffff_ffff,
                (code.mask[i] >> hi) & 0xffff_ffff,
            );
            let by = y / BLOCK;
            for bx in 0..nb {
                let cm = cell << (bx * BLOCK);
                let c = &mut counts[(p * nb + by) * nb + bx];
                c.0 += (b & m & cm).count_ones() as i32;
                c.1 += (m & cm).count_ones() as i32;
            }
        }
    }
    counts
}

/// The sketch of an enrolled template's packed primary code, into `out` (`geometry().1` words).
pub fn reference_sketch(layout: &Layout, code: &PackedCode, out: &mut [u64]) {
    out.fill(0);
    for (i, &(ones, valid)) in block_counts(layout, code).iter().enumerate() {
        if 2 * ones > valid {
            out[i / 64] |= 1 << (i % 64);
        }
    }
}

/// A probe's sketches, one per pose, with their confidence masks.
#[derive(Clone, Debug)]
pub struct ProbeSketch {
    words: usize,
    /// Per usable pose: `words` sketch words then `words` confidence words.
    data: Vec<u64>,
    /// Per usable pose: `ONE / confident blocks`.
    scale: Vec<u64>,
}

impl ProbeSketch {
    /// Sketch every pose (`codes`: the probe's packed codes, primary first). Poses without a
    /// single confident block are left out.
    pub fn new(layout: &Layout, codes: &[PackedCode]) -> ProbeSketch {
        let (_, words) = geometry(layout);
        let mut data = Vec::new();
        let mut scale = Vec::new();
        for code in codes {
            let mut sk = vec![0u64; 2 * words];
            let mut confident = 0u64;
            for (i, &(ones, valid)) in block_counts(layout, code).iter().enumerate() {
                let lead = 2 * ones - valid;
                if lead > 0 {
                    sk[i / 64] |= 1 << (i % 64);
                }
                if lead.abs() >= CONFIDENCE {
                    sk[words + i / 64] |= 1 << (i % 64);
                    confident += 1;
                }
            }
            if let Some(q) = ONE.checked_div(confident) {
                data.extend_from_slice(&sk);
                scale.push(q);
            }
        }
        ProbeSketch { words, data, scale }
    }

    /// Poses that take part.
    pub fn poses(&self) -> usize {
        self.scale.len()
    }

    /// Distance of a reference sketch: smallest over poses of disagreeing confident blocks
    /// per confident block, in units of 2^-20 (0 when no pose takes part).
    #[inline(always)]
    pub fn distance(&self, r: &[u64]) -> u32 {
        match self.words {
            // The engine's 32 x 32 x 6 codes: fixed length, fully unrolled.
            6 => self.distance_n::<6>(r),
            _ => self.distance_any(r),
        }
    }

    #[inline(always)]
    fn distance_n<const W: usize>(&self, r: &[u64]) -> u32 {
        let Some(r) = r.first_chunk::<W>() else {
            return self.distance_any(r);
        };
        let mut best = if self.scale.is_empty() { 0 } else { u64::MAX };
        for (d, &scale) in self.data.chunks_exact(2 * W).zip(&self.scale) {
            let mut n = 0u32;
            for k in 0..W {
                n += ((d[k] ^ r[k]) & d[W + k]).count_ones();
            }
            best = best.min(n as u64 * scale);
        }
        best as u32
    }

    fn distance_any(&self, r: &[u64]) -> u32 {
        let w = self.words;
        let mut best = if self.scale.is_empty() { 0 } else { u64::MAX };
        for (d, &scale) in self.data.chunks_exact(2 * w).zip(&self.scale) {
            let n: u32 = (0..w.min(r.len()))
                .map(|k| ((d[k] ^ r[k]) & d[w + k]).count_ones())
                .sum();
            best = best.min(n as u64 * scale);
        }
        best as u32
    }
}

/// Keep the `c` smallest `(distance, slot)` pairs of `items` whose slot is `live` in `heap`
/// (a max-heap); `live` is asked only of pairs that would be kept.
#[inline(always)]
fn scan_impl<'a>(
    probe: &ProbeSketch,
    items: impl Iterator<Item = (u32, &'a [u64])>,
    live: impl Fn(u32) -> bool,
    heap: &mut BinaryHeap<(u32, u32)>,
    c: usize,
) {
    if c == 0 {
        return;
    }
    let mut bound = if heap.len() >= c {
        heap.peek().copied()
    } else {
        None
    };
    for (slot, sk) in items {
        let item = (probe.distance(sk), slot);
        if bound.is_some_and(|b| item >= b) || !live(slot) {
            continue;
        }
        heap.push(item);
        if heap.len() > c {
            heap.pop();
        }
        if heap.len() >= c {
            bound = heap.peek().copied();
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn scan_popcnt<'a>(
    probe: &ProbeSketch,
    items: impl Iterator<Item = (u32, &'a [u64])>,
    live: impl Fn(u32) -> bool,
    heap: &mut BinaryHeap<(u32, u32)>,
    c: usize,
) {
    scan_impl(probe, items, live, heap, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn scan_avx2<'a>(
    probe: &ProbeSketch,
    items: impl Iterator<Item = (u32, &'a [u64])>,
    live: impl Fn(u32) -> bool,
    heap: &mut BinaryHeap<(u32, u32)>,
    c: usize,
) {
    scan_impl(probe, items, live, heap, c)
}

/// [`scan_impl`] compiled for the widest instruction set this CPU has (AVX2, POPCNT; checked
/// at run time); every path keeps the same pairs.
pub fn scan<'a>(
    probe: &ProbeSketch,
    items: impl Iterator<Item = (u32, &'a [u64])>,
    live: impl Fn(u32) -> bool,
    heap: &mut BinaryHeap<(u32, u32)>,
    c: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports both, checked just above.
            return unsafe { scan_avx2(probe, items, live, heap, c) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports POPCNT, checked just above.
            return unsafe { scan_popcnt(probe, items, live, heap, c) };
        }
    }
    scan_impl(probe, items, live, heap, c)
}

/// The portable path of [`scan`], for tests.
pub fn scan_portable<'a>(
    probe: &ProbeSketch,
    items: impl Iterator<Item = (u32, &'a [u64])>,
    live: impl Fn(u32) -> bool,
    heap: &mut BinaryHeap<(u32, u32)>,
    c: usize,
) {
    scan_impl(probe, items, live, heap, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::random_code;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_probe_equal_to_the_reference_is_at_distance_zero() {
        let layout = Layout::ENGINE_DEFAULT;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let code = PackedCode::new(&random_code(&mut rng, 32, 6)).unwrap();
        let other = PackedCode::new(&random_code(&mut rng, 32, 6)).unwrap();
        let (_, w) = geometry(&layout);
        assert_eq!(w, 6);
        let mut sk = vec![0u64; w];
        reference_sketch(&layout, &code, &mut sk);
        let probe = ProbeSketch::new(&layout, &[other, code.clone()]);
        assert_eq!(probe.poses(), 2);
        assert_eq!(probe.distance(&sk), 0);
        let alone = ProbeSketch::new(&layout, std::slice::from_ref(&code));
        assert!(alone.distance(&[!0u64; 6]) > 0);
    }

    #[test]
    fn scan_paths_keep_the_same_pairs() {
        let layout = Layout { grid: 20, planes: 3 };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (_, w) = geometry(&layout);
        let mut sketches = vec![0u64; 500 * w];
        for s in sketches.chunks_mut(w) {
            let c = PackedCode::new(&random_code(&mut rng, 20, 3)).unwrap();
            reference_sketch(&layout, &c, s);
        }
        let probe = ProbeSketch::new(
            &layout,
            &[PackedCode::new(&random_code(&mut rng, 20, 3)).unwrap()],
        );
        let items = || sketches.chunks(w).enumerate().map(|(i, s)| (i as u32, s));
        let (mut a, mut b) = (BinaryHeap::new(), BinaryHeap::new());
        let live = |s: u32| s % 7 != 3;
        scan(&probe, items(), live, &mut a, 37);
        scan_portable(&probe, items(), live, &mut b, 37);
        let mut all: Vec<(u32, u32)> = items()
            .filter(|&(i, _)| live(i))
            .map(|(i, s)| (probe.distance(s), i))
            .collect();
        all.sort_unstable();
        all.truncate(37);
        assert_eq!(a.into_sorted_vec(), all);
        assert_eq!(b.into_sorted_vec(), all);
    }
}
