//! Popcount kernels: the exact masked-Hamming score of a probe against a packed template,
//! and the first-stage sketch distance of a probe against 16 templates at once.
//!
//! Each kernel is one portable body compiled three times: plain, with AVX2 (+POPCNT), and
//! with AVX-512 (F/BW/VL + VPOPCNTDQ); the CPU is asked at runtime which may run
//! ([`Kernel::detect`]). The loops are written so that LLVM vectorises them (`vpopcntd` on
//! AVX-512, the nibble-lookup popcount on AVX2). All paths compute the same integers.

use crate::layout::Layout;
use openpalm_engine::matcher::normalised_score;

/// Sketch words per template (16 x u32 = one 64-byte line).
pub const SKETCH_WORDS: usize = 16;
/// Templates per sketch block.
pub const LANES: usize = 16;

/// A template's sketch: 2 planes x 16 rows x 16 central columns of its primary code's bits.
pub type Sketch = [u32; SKETCH_WORDS];
/// 16 templates' sketches, transposed: `block[word][lane]`.
pub type SketchBlock = [[u32; LANES]; SKETCH_WORDS];

/// Which compiled path runs the popcounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Portable,
    Avx2,
    Avx512,
}

impl Kernel {
    /// The fastest path this CPU supports.
    pub fn detect() -> Kernel {
        [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vpopcntdq")
                    && is_x86_feature_detected!("popcnt")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every path this CPU supports.
    pub fn supported() -> Vec<Kernel> {
        [Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|k| k.is_supported())
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512-vpopcntdq",
        }
    }
}

/// A probe prepared for exact scoring: for every probe code and every translation, the probe
/// rows already shifted (and column-masked) so that one translation is one flat pass over a
/// template code's rows.
///
/// Matches `openpalm_engine::matcher::counts_at(probe, enrolled, dx, dy)`: enrolled row `t`
/// meets probe row `t - dy` (rows outside the grid get an empty mask); for `dx >= 0` the
/// probe row is shifted left by `dx` and the columns `< dx` dropped, for `dx < 0` shifted
/// right by `-dx` and the columns `>= grid + dx` dropped. Both sides moved by the same
/// amount, the disagreeing and compared bit counts are the engine's exactly.
pub struct ProbePrep {
    rows: usize,
    codes: usize,
    shifts: usize,
    reference_bits: u32,
    /// `data[((c * shifts + s) * 2 + {0: bits, 1: mask}) * rows + i]`
    data: Vec<u32>,
}

impl ProbePrep {
    /// `packed`: the probe's codes packed as in [`crate::layout`], `codes` of them.
    pub(crate) fn new(
        layout: &Layout,
        packed: &[u32],
        codes: usize,
        max_shift: usize,
        reference_bits: u32,
    ) -> Self {
        let (g, rows, full) = (layout.grid as i32, layout.rows(), layout.full());
        let s = max_shift as i32;
        let shifts = ((2 * s + 1) * (2 * s + 1)) as usize;
        let mut data = vec![0u32; codes * shifts * 2 * rows];
        for c in 0..codes {
            let code = &packed[c * 2 * rows..(c + 1) * 2 * rows];
            let mut si = 0;
            for dy in -s..=s {
                for dx in -s..=s {
                    let base = (c * shifts + si) * 2 * rows;
                    for p in 0..layout.planes {
                        for t in 0..g {
                            let y = t - dy;
                            if y < 0 || y >= g {
                                continue;
                            }
                            let ia = p * layout.grid + y as usize;
                            let (ab, am) = (code[ia], code[rows + ia]);
                            let (pb, pm) = if dx >= 0 {
                                let d = dx as u32;
                                (shl(ab, d), shl(am, d) & shl(shr(full, d), d))
                            } else {
                                let d = (-dx) as u32;
                                (shr(ab, d), shr(am, d) & shr(full, d))
                            };
                            let it = p * layout.grid + t as usize;
                            data[base + it] = pb;
                            data[base + rows + it] = pm;
                        }
                    }
                    si += 1;
                }
            }
        }
        ProbePrep {
            rows,
            codes,
            shifts,
            reference_bits,
            data,
        }
    }

    #[inline(always)]
    fn get(&self, c: usize, s: usize) -> (&[u32], &[u32]) {
        let base = (c * self.shifts + s) * 2 * self.rows;
        (
            &self.data[base..base + self.rows],
            &self.data[base + self.rows..base + 2 * self.rows],
        )
    }

    /// Integer counts `(diff, n)` of probe code `c` at translation index `s` against the
    /// code `(bits, mask)`; for tests.
    #[cfg(test)]
    pub(crate) fn counts(
        &self,
        kernel: Kernel,
        c: usize,
        s: usize,
        bits: &[u32],
        mask: &[u32],
    ) -> (u32, u32) {
        let (pb, pm) = self.get(c, s);
        dispatch_counts(kernel, pb, pm, bits, mask)
    }
}

#[inline(always)]
fn shl(v: u32, d: u32) -> u32 {
    v.checked_shl(d).unwrap_or(0)
}
#[inline(always)]
fn shr(v: u32, d: u32) -> u32 {
    v.checked_shr(d).unwrap_or(0)
}

#[inline(always)]
fn counts_impl(pb: &[u32], pm: &[u32], tb: &[u32], tm: &[u32]) -> (u32, u32) {
    let n = pb.len().min(pm.len()).min(tb.len()).min(tm.len());
    let (pb, pm, tb, tm) = (&pb[..n], &pm[..n], &tb[..n], &tm[..n]);
    let mut diff = 0u32;
    let mut cmp = 0u32;
    for i in 0..n {
        let m = pm[i] & tm[i];
        diff += ((pb[i] ^ tb[i]) & m).count_ones();
        cmp += m.count_ones();
    }
    (diff, cmp)
}

/// Best score over (probe codes x primary) and (primary probe code x rotations), every
/// translation: what `Engine::score(probe, enrolled)` returns.
#[inline(always)]
fn best_score_impl(p: &ProbePrep, t: &[u32], tcodes: usize) -> f32 {
    let rows = p.rows;
    let code = |d: usize| {
        let b = d * 2 * rows;
        (&t[b..b + rows], &t[b + rows..b + 2 * rows])
    };
    let mut best = f32::NEG_INFINITY;
    let (tb0, tm0) = code(0);
    for c in 0..p.codes {
        for s in 0..p.shifts {
            let (pb, pm) = p.get(c, s);
            let (d, n) = counts_impl(pb, pm, tb0, tm0);
            let sc = normalised_score(d, n, p.reference_bits);
            if sc > best {
                best = sc;
            }
        }
    }
    for d in 1..tcodes {
        let (tb, tm) = code(d);
        for s in 0..p.shifts {
            let (pb, pm) = p.get(0, s);
            let (dd, n) = counts_impl(pb, pm, tb, tm);
            let sc = normalised_score(dd, n, p.reference_bits);
            if sc > best {
                best = sc;
            }
        }
    }
    best
}

/// Per lane: the smallest (over the probe's translated sketches) Hamming distance.
#[inline(always)]
fn sketch_block_impl(probe: &[Sketch], block: &SketchBlock) -> [u32; LANES] {
    let mut best = [u32::MAX; LANES];
    for ps in probe {
        let mut acc = [0u32; LANES];
        for w in 0..SKETCH_WORDS {
            let pw = ps[w];
            let row = &block[w];
            for l in 0..LANES {
                acc[l] += (pw ^ row[l]).count_ones();
            }
        }
        for l in 0..LANES {
            best[l] = best[l].min(acc[l]);
        }
    }
    best
}

macro_rules! multiversion {
    ($portable:ident, $avx2:ident, $avx512:ident, $body:ident, ($($a:ident : $t:ty),*) -> $r:ty) => {
        #[allow(dead_code)]
        fn $portable($($a: $t),*) -> $r {
            $body($($a),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,popcnt")]
        #[allow(dead_code)]
        unsafe fn $avx2($($a: $t),*) -> $r {
            $body($($a),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,popcnt")]
        #[allow(dead_code)]
        unsafe fn $avx512($($a: $t),*) -> $r {
            $body($($a),*)
        }
    };
}

multiversion!(counts_portable, counts_avx2, counts_avx512, counts_impl,
    (pb: &[u32], pm: &[u32], tb: &[u32], tm: &[u32]) -> (u32, u32));
multiversion!(best_portable, best_avx2, best_avx512, best_score_impl,
    (p: &ProbePrep, t: &[u32], tcodes: usize) -> f32);
multiversion!(sketch_portable, sketch_avx2, sketch_avx512, sketch_block_impl,
    (probe: &[Sketch], block: &SketchBlock) -> [u32; LANES]);

// The dispatchers below only reach a SIMD path for a `Kernel` whose `is_supported()` held:
// the gallery checks it when the kernel is chosen and falls back to portable otherwise.
macro_rules! dispatch {
    ($k:expr, $portable:ident, $avx2:ident, $avx512:ident, ($($a:expr),*)) => {
        match $k {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX-512 F/BW/VL/VPOPCNTDQ (checked by `supported`).
            Kernel::Avx512 if supported(Kernel::Avx512) => unsafe { $avx512($($a),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU supports AVX2 and POPCNT (checked by `supported`).
            Kernel::Avx2 if supported(Kernel::Avx2) => unsafe { $avx2($($a),*) },
            _ => $portable($($a),*),
        }
    };
}

/// Cached feature check (std caches the CPUID answer; this is a couple of loads).
#[inline(always)]
fn supported(k: Kernel) -> bool {
    k.is_supported()
}

#[cfg(test)]
pub(crate) fn dispatch_counts(k: Kernel, pb: &[u32], pm: &[u32], tb: &[u32], tm: &[u32]) -> (u32, u32) {
    dispatch!(k, counts_portable, counts_avx2, counts_avx512, (pb, pm, tb, tm))
}

pub(crate) fn best_score(k: Kernel, p: &ProbePrep, t: &[u32], tcodes: usize) -> f32 {
    dispatch!(k, best_portable, best_avx2, best_avx512, (p, t, tcodes))
}

pub(crate) fn sketch_block(k: Kernel, probe: &[Sketch], block: &SketchBlock) -> [u32; LANES] {
    dispatch!(k, sketch_portable, sketch_avx2, sketch_avx512, (probe, block))
}

/// Whether the layout admits a sketch (the 16x16 window plus the translation margin fits).
pub(crate) fn sketch_fits(layout: &Layout, max_shift: usize) -> bool {
    layout.grid >= 16 + 2 * max_shift
}

fn sketch_planes(layout: &Layout) -> [usize; 2] {
    [0, layout.planes / 2]
}

/// A template's sketch from its packed primary code (bit rows first).
pub(crate) fn template_sketch(layout: &Layout, primary_bits: &[u32]) -> Sketch {
    let o = layout.grid / 2 - 8;
    let mut out = [0u32; SKETCH_WORDS];
    for (j, &p) in sketch_planes(layout).iter().enumerate() {
        for r in 0..8 {
            let y0 = o + 2 * r;
            let lo = (primary_bits[p * layout.grid + y0] >> o) & 0xFFFF;
            let hi = (primary_bits[p * layout.grid + y0 + 1] >> o) & 0xFFFF;
            out[j * 8 + r] = lo | (hi << 16);
        }
    }
    out
}

/// The probe's primary code's sketch under every translation, in the engine's sense:
/// enrolled cell (x, y) meets probe cell (x - dx, y - dy).
pub(crate) fn probe_sketches(layout: &Layout, primary_bits: &[u32], max_shift: usize) -> Vec<Sketch> {
    let o = (layout.grid / 2 - 8) as i32;
    let s = max_shift as i32;
    let mut out = Vec::new();
    for dy in -s..=s {
        for dx in -s..=s {
            let mut sk = [0u32; SKETCH_WORDS];
            for (j, &p) in sketch_planes(layout).iter().enumerate() {
                for r in 0..8 {
                    let row = |y: i32| {
                        let v = primary_bits[p * layout.grid + (y - dy) as usize];
                        (v >> (o - dx) as u32) & 0xFFFF
                    };
                    let y0 = o + 2 * r;
                    sk[j * 8 + r as usize] = row(y0) | (row(y0 + 1) << 16);
                }
            }
            out.push(sk);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::pack_template;
    use crate::synthetic::random_template;
    use openpalm_engine::matcher::counts_at;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn prepared_counts_equal_engine_counts_on_every_kernel_and_shift() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for layout in [
            Layout::ENGINE_DEFAULT,
            Layout {
                grid: 9,
                planes: 2,
                rotations: 1,
            },
        ] {
            for _ in 0..4 {
                let a = random_template(&mut rng, &layout);
                let mut b = random_template(&mut rng, &layout);
                // Stray bits above the grid must be ignored, as the engine ignores them.
                b.code.bits[0] |= 1 << 40;
                let mut pa = vec![0u32; layout.template_words()];
                let mut pb = vec![0u32; layout.template_words()];
                pack_template(&layout, &a, &mut pa);
                pack_template(&layout, &b, &mut pb);
                let s = 2usize;
                let prep = ProbePrep::new(&layout, &pa, layout.codes(), s, 4000);
                let rows = layout.rows();
                for k in Kernel::supported() {
                    let mut si = 0;
                    for dy in -(s as i32)..=s as i32 {
                        for dx in -(s as i32)..=s as i32 {
                            let want = counts_at(&a.code, &b.code, dx, dy);
                            let got = prep.counts(k, 0, si, &pb[..rows], &pb[rows..2 * rows]);
                            assert_eq!(got, want, "{k:?} dx {dx} dy {dy}");
                            si += 1;
                        }
                    }
                }
                let _ = rng.gen::<u8>();
            }
        }
    }

    #[test]
    fn sketch_kernels_agree_with_portable_and_with_a_plain_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let probe: Vec<Sketch> = (0..25).map(|_| std::array::from_fn(|_| rng.gen())).collect();
        let block: SketchBlock = std::array::from_fn(|_| std::array::from_fn(|_| rng.gen()));
        let want = sketch_portable(&probe, &block);
        for l in 0..LANES {
            let plain = probe
                .iter()
                .map(|p| {
                    (0..SKETCH_WORDS)
                        .map(|w| (p[w] ^ block[w][l]).count_ones())
                        .sum::<u32>()
                })
                .min();
            assert_eq!(Some(want[l]), plain);
        }
        for k in Kernel::supported() {
            assert_eq!(sketch_block(k, &probe, &block), want, "{k:?}");
        }
    }

    #[test]
    fn probe_sketch_at_the_true_shift_equals_the_template_sketch() {
        let layout = Layout::ENGINE_DEFAULT;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let t = random_template(&mut rng, &layout);
        let moved = crate::synthetic::translate(&t.code, 1);
        let mut pt = vec![0u32; layout.template_words()];
        pack_template(&layout, &t, &mut pt);
        let mut pm = pt.clone();
        crate::layout::pack_code(&layout, &moved, &mut pm[..2 * layout.rows()]);
        let sk = template_sketch(&layout, &pt[..layout.rows()]);
        let probes = probe_sketches(&layout, &pm[..layout.rows()], 2);
        // Probe column x holds template column x - 1: enrolled (x, y) meets probe (x + 1, y),
        // i.e. dx = -1, dy = 0: index (0 + 2) * 5 + (-1 + 2).
        assert_eq!(probes[2 * 5 + 1], sk);
        assert_ne!(probes[2 * 5 + 2], sk);
    }
}
