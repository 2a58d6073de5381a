//! 1:1 comparison of palm codes: masked Hamming distance, minimised over a small search of
//! translations that absorbs the residual misalignment the ROI step leaves.
//!
//! The fast path ([`search`], [`search_view`], [`search_prepared`]) works on codes packed two
//! bit planes per word ([`PackedCode`]). It is coarse to fine: every (probe pose, shift) is
//! counted on every 4th probe row, and the two best are counted on all rows. The probe side
//! of the coarse stage (its rows moved by each horizontal shift) can be prepared once per
//! probe ([`PreparedProbe`]), which is what a 1:N search does; a 1:1 search prepares it on
//! the stack. The default geometry (32x32 cells, 6 planes, step 4, shifts of +-2) is compiled
//! with every size constant, and each entry point has AVX-512 VPOPCNTDQ, AVX2, POPCNT and
//! portable copies chosen at run time; all give identical results (tests compare them with
//! each other and with the search written out by its definition).

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
        let (g, planes) = (code.grid, code.planes);
        let lanes = planes.div_ceil(2);
        // Plane pair by plane pair into row-major words (planes 2k and 2k+1 of row y in word
        // y * lanes + k), with iterators rather than indexing so the loop has no bounds
        // checks: packing used to cost more than the search it feeds.
        let pack = |src: &[u64]| -> Vec<u64> {
            let mut out = vec![0u64; g * lanes];
            for (k, pair) in src.chunks(2 * g).enumerate().take(lanes) {
                let (lo, hi) = pair.split_at(g.min(pair.len()));
                for (y, row) in out.chunks_exact_mut(lanes).enumerate() {
                    let h = hi.get(y).copied().unwrap_or(0);
                    row[k] = lo[y] | h << 32;
                }
            }
            out
        };
        let (bits, mask) = (pack(&code.bits), pack(&code.mask));
        Some(PackedCode {
            grid: g,
            lanes,
            bits,
            mask,
        })
    }
}

/// A borrowed packed code: the words of a [`PackedCode`] wherever they live (a gallery keeps
/// them in one arena and searches them in place, without copying).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeView<'a> {
    pub grid: usize,
    pub lanes: usize,
    /// `grid * lanes` words.
    pub bits: &'a [u64],
    /// `grid * lanes` words.
    pub mask: &'a [u64],
}

impl PackedCode {
    /// This code as a [`CodeView`].
    pub fn view(&self) -> CodeView<'_> {
        CodeView {
            grid: self.grid,
            lanes: self.lanes,
            bits: &self.bits,
            mask: &self.mask,
        }
    }
}

/// Counts over equally long word runs of a probe and a reference at horizontal shift `dx`.
/// Written as plain zipped loops with 64-bit accumulators so the compiler vectorises them.
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

/// Counts of probe `a` at (x, y) against reference `b` at (x + dx, y + dy), on every
/// `step`-th probe row (rows 0, step, 2 step, ...; `step` 1 is every row).
#[inline(always)]
fn packed_counts(a: CodeView<'_>, b: CodeView<'_>, dx: i32, dy: i32, step: usize) -> (u32, u32) {
    let g = a.grid as i32;
    let col_mask = lane_col_mask(a.grid, dx);
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
    // Align the row subsample to absolute probe rows.
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

/// Disagreeing and compared bits over two equally long coarse runs, both already aligned
/// and the probe's mask already limited to the columns inside both codes: `d` in the low 32
/// bits, `n` in the high 32 (one accumulator, one horizontal sum). A run holds at most
/// `grid` rows of 32 cells x 2 planes per word, so each count stays far below 2^32.
#[inline(always)]
fn coarse_counts(pb: &[u64], pm: &[u64], rb: &[u64], rm: &[u64]) -> u64 {
    let mut acc = 0u64;
    for (((&a, &am), &b), &bm) in pb.iter().zip(pm).zip(rb).zip(rm) {
        let m = am & bm;
        acc += ((a ^ b) & m).count_ones() as u64 + ((m.count_ones() as u64) << 32);
    }
    acc
}

/// [`coarse_counts`] on runs of a length known at compile time (the default geometry), so
/// the loop is fully unrolled into whole vector registers.
#[inline(always)]
fn coarse_counts_n<const N: usize>(pb: &[u64], pm: &[u64], rb: &[u64], rm: &[u64]) -> u64 {
    let (pb, pm): (&[u64; N], &[u64; N]) = (pb.try_into().unwrap(), pm.try_into().unwrap());
    let (rb, rm): (&[u64; N], &[u64; N]) = (rb.try_into().unwrap(), rm.try_into().unwrap());
    let mut acc = 0u64;
    for k in 0..N {
        let m = pm[k] & rm[k];
        acc += ((pb[k] ^ rb[k]) & m).count_ones() as u64 + ((m.count_ones() as u64) << 32);
    }
    acc
}

/// A coarse candidate: counts on the coarse rows, probe code `i`, shift (`dx`, `dy`), and
/// its rank `order` in (dy, dx, code) order, which breaks ties so that every loop order
/// keeps the same candidates. `n == 0` marks an empty slot.
#[derive(Clone, Copy)]
struct Candidate {
    d: u32,
    n: u32,
    order: u32,
    i: usize,
    dx: i32,
    dy: i32,
}

const EMPTY: Candidate = Candidate {
    d: 0,
    n: 0,
    order: 0,
    i: 0,
    dx: 0,
    dy: 0,
};

/// Whether `c` ranks before `t`: a strictly smaller distance `d / n`, compared exactly (no
/// division), or the same distance earlier in (dy, dx, code) order. A count on no bits is
/// never better, and anything is better than an empty slot.
#[inline(always)]
fn before(c: &Candidate, t: &Candidate) -> bool {
    if c.n == 0 {
        return false;
    }
    if t.n == 0 {
        return true;
    }
    let (l, r) = ((c.d as u64) * (t.n as u64), (t.d as u64) * (c.n as u64));
    l < r || (l == r && c.order < t.order)
}

/// Keep `c` if it ranks among the best `top.len()` seen so far (`top` sorted best first).
#[inline(always)]
fn consider(top: &mut [Candidate], c: Candidate) {
    let last = top.len() - 1;
    if before(&c, &top[last]) {
        let mut t = last;
        while t > 0 && before(&c, &top[t - 1]) {
            top[t] = top[t - 1];
            t -= 1;
        }
        top[t] = c;
    }
}

/// The reference rows that the probe's coarse rows meet at vertical shift `dy`, as one run
/// (bits then mask), zero-masked where they fall outside the code.
#[inline(always)]
fn gather_reference<G: Geometry>(geo: G, reference: CodeView<'_>, dy: i32, out: &mut [u64]) {
    let (g, l, cw) = (geo.grid(), geo.lanes(), geo.run_words());
    let (gb, gm) = out.split_at_mut(cw);
    for k in 0..geo.coarse_rows() {
        let y = (k * geo.step()) as i32 + dy;
        let inside = y >= 0 && y < g as i32;
        let src = if inside { y as usize * l } else { 0 };
        for j in 0..l {
            let (b, m) = if inside {
                (reference.bits[src + j], reference.mask[src + j])
            } else {
                (0, 0)
            };
            gb[k * l + j] = b;
            gm[k * l + j] = m;
        }
    }
}

/// The coarse count of one moved probe run (bits then mask) against one gathered
/// reference run.
#[inline(always)]
fn coarse_pair<G: Geometry>(geo: G, probe: &[u64], reference: &[u64]) -> (u32, u32) {
    let cw = geo.run_words();
    let (pb, pm) = probe.split_at(cw);
    let (rb, rm) = reference.split_at(cw);
    // A plain `if`, not a closure: closures do not inherit the enclosing function's target
    // features, and the kernels must be compiled with them.
    let acc = if cw == 24 {
        coarse_counts_n::<24>(pb, pm, rb, rm)
    } else {
        coarse_counts(pb, pm, rb, rm)
    };
    (acc as u32, (acc >> 32) as u32)
}

/// Fine stage: the kept candidates scored on every row; the best normalised score wins
/// (the first kept on equal scores), with the index of its probe code.
#[inline(always)]
fn refine(
    top: &[Candidate],
    codes: &[PackedCode],
    reference: CodeView<'_>,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
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
    for c in top {
        if c.n == 0 && !first {
            continue;
        }
        let (diff, n) = packed_counts(codes[c.i].view(), reference, c.dx, c.dy, 1);
        let score = normalised_score(diff, n, cfg.reference_bits);
        if first || score > best.0.score {
            first = false;
            best = (
                MatchDetail {
                    score,
                    distance: if n == 0 { 0.5 } else { diff as f32 / n as f32 },
                    compared_bits: n,
                    shift_x: c.dx,
                    shift_y: c.dy,
                },
                c.i,
            );
        }
    }
    best
}

/// Candidates kept by the coarse stage at most.
const KEEP: usize = 4;
/// Longest coarse run kept on the stack (words); longer ones use the heap.
const MAX_RUN: usize = 256;

/// The shape of a search: code grid, words per row, coarse row step and largest shift.
/// [`Fixed`] carries the default geometry in the type, so that every loop bound and buffer
/// size in [`search_runs`] is a compile-time constant; [`Dynamic`] serves any other.
trait Geometry: Copy {
    fn grid(self) -> usize;
    fn lanes(self) -> usize;
    fn step(self) -> usize;
    fn max_shift(self) -> i32;
    /// Coarse rows: the probe rows 0, step, 2 step, ...
    #[inline(always)]
    fn coarse_rows(self) -> usize {
        self.grid().div_ceil(self.step())
    }
    /// Words in one coarse run (bits or mask).
    #[inline(always)]
    fn run_words(self) -> usize {
        self.coarse_rows() * self.lanes()
    }
    #[inline(always)]
    fn shifts(self) -> usize {
        2 * self.max_shift() as usize + 1
    }
}

#[derive(Clone, Copy)]
struct Fixed<const G: usize, const L: usize, const S: usize, const M: i32>;

impl<const G: usize, const L: usize, const S: usize, const M: i32> Geometry for Fixed<G, L, S, M> {
    #[inline(always)]
    fn grid(self) -> usize {
        G
    }
    #[inline(always)]
    fn lanes(self) -> usize {
        L
    }
    #[inline(always)]
    fn step(self) -> usize {
        S
    }
    #[inline(always)]
    fn max_shift(self) -> i32 {
        M
    }
}

/// The engine's default code and search: 32x32 cells, 6 planes in 3 words a row, every 4th
/// row in the coarse stage, shifts of up to 2 cells.
type DefaultGeometry = Fixed<32, 3, 4, 2>;

#[derive(Clone, Copy)]
struct Dynamic {
    grid: usize,
    lanes: usize,
    step: usize,
    max_shift: i32,
}

impl Geometry for Dynamic {
    #[inline(always)]
    fn grid(self) -> usize {
        self.grid
    }
    #[inline(always)]
    fn lanes(self) -> usize {
        self.lanes
    }
    #[inline(always)]
    fn step(self) -> usize {
        self.step
    }
    #[inline(always)]
    fn max_shift(self) -> i32 {
        self.max_shift
    }
}

impl Dynamic {
    fn of_view(code: CodeView<'_>, cfg: &MatchConfig) -> Dynamic {
        Dynamic {
            grid: code.grid,
            lanes: code.lanes,
            step: cfg.coarse_step.clamp(1, 8),
            max_shift: cfg.max_shift as i32,
        }
    }

    fn is_default(self) -> bool {
        let d = DefaultGeometry {};
        (self.grid, self.lanes, self.step, self.max_shift) == (d.grid(), d.lanes(), d.step(), d.max_shift())
    }
}

/// The probe side of the coarse stage, for every (probe code, horizontal shift dx): the
/// code's coarse rows moved by dx columns into the reference's frame, the mask limited to
/// the columns that stay inside both codes. Laid out code-major, then dx, each entry a bits
/// run then a mask run. Moving the probe rather than the reference is what lets one
/// preparation serve every reference of a gallery; the counts are the same either way.
#[inline(always)]
fn prepare_runs<G: Geometry>(geo: G, codes: &[PackedCode], out: &mut [u64]) {
    let (l, cw, s) = (geo.lanes(), geo.run_words(), geo.max_shift());
    let mut stack = [0u64; 2 * MAX_RUN];
    let mut heap = Vec::new();
    let gathered: &mut [u64] = if cw <= MAX_RUN {
        &mut stack[..2 * cw]
    } else {
        heap.resize(2 * cw, 0);
        &mut heap[..]
    };
    let mut chunks = out.chunks_exact_mut(2 * cw);
    for c in codes {
        let (gb, gm) = gathered.split_at_mut(cw);
        for k in 0..geo.coarse_rows() {
            let src = k * geo.step() * l;
            for j in 0..l {
                gb[k * l + j] = c.bits[src + j];
                gm[k * l + j] = c.mask[src + j];
            }
        }
        for dx in -s..=s {
            let (pb, pm) = chunks
                .next()
                .expect("buffer sized for every run")
                .split_at_mut(cw);
            // A plain `if`, not a closure: closures do not inherit target features.
            if cw == 24 {
                move_run_n::<24>(gb, gm, pb, pm, dx, lane_col_mask(geo.grid(), dx));
            } else {
                move_run(gb, gm, pb, pm, dx, lane_col_mask(geo.grid(), dx));
            }
        }
    }
}

/// One probe run moved by `dx` columns into the reference's frame (the cell at x lands on
/// x + dx), its mask first limited to `col_mask`, the columns that stay inside both codes
/// (masking before moving keeps bits from crossing between the two 32-bit lanes).
#[inline(always)]
fn move_run(gb: &[u64], gm: &[u64], pb: &mut [u64], pm: &mut [u64], dx: i32, col_mask: u64) {
    if dx >= 0 {
        let k = dx as u32;
        for (((&b, &m), ob), om) in gb.iter().zip(gm).zip(pb.iter_mut()).zip(pm.iter_mut()) {
            *ob = b << k;
            *om = (m & col_mask) << k;
        }
    } else {
        let k = (-dx) as u32;
        for (((&b, &m), ob), om) in gb.iter().zip(gm).zip(pb.iter_mut()).zip(pm.iter_mut()) {
            *ob = b >> k;
            *om = (m & col_mask) >> k;
        }
    }
}

/// [`move_run`] on runs of a length known at compile time.
#[inline(always)]
fn move_run_n<const N: usize>(
    gb: &[u64],
    gm: &[u64],
    pb: &mut [u64],
    pm: &mut [u64],
    dx: i32,
    col_mask: u64,
) {
    let (gb, gm): (&[u64; N], &[u64; N]) = (gb.try_into().unwrap(), gm.try_into().unwrap());
    let (pb, pm): (&mut [u64; N], &mut [u64; N]) = (pb.try_into().unwrap(), pm.try_into().unwrap());
    if dx >= 0 {
        let k = dx as u32;
        for j in 0..N {
            pb[j] = gb[j] << k;
            pm[j] = (gm[j] & col_mask) << k;
        }
    } else {
        let k = (-dx) as u32;
        for j in 0..N {
            pb[j] = gb[j] >> k;
            pm[j] = (gm[j] & col_mask) >> k;
        }
    }
}

/// Words [`prepare_runs`] writes.
fn prepared_words<G: Geometry>(geo: G, codes: usize) -> usize {
    codes * geo.shifts() * 2 * geo.run_words()
}

/// Coarse-to-fine search of prepared probe runs against one reference: every (probe code,
/// shift) is scored on the probe's coarse rows (0, step, 2 step, ...); the `refine`
/// candidates with the smallest raw distance are scored on all rows; the best normalised
/// score among those is the result, with the index of the probe code that gave it.
///
/// For each vertical shift dy the reference rows the coarse rows meet are gathered into one
/// run; the probe side is already moved by dx ([`prepare_runs`]), so the inner loop is only
/// AND, XOR and population counts over two equally long runs.
#[inline(always)]
fn search_runs<G: Geometry>(
    geo: G,
    runs: &[u64],
    codes: &[PackedCode],
    reference: CodeView<'_>,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    let (s, cw, shifts) = (geo.max_shift(), geo.run_words(), geo.shifts());
    let mut stack = [0u64; 2 * MAX_RUN];
    let mut heap = Vec::new();
    let gathered: &mut [u64] = if cw <= MAX_RUN {
        &mut stack[..2 * cw]
    } else {
        heap.resize(2 * cw, 0);
        &mut heap[..]
    };
    let mut top = [EMPTY; KEEP];
    let top = &mut top[..cfg.refine.clamp(1, KEEP)];
    let mut order = 0u32;
    for dy in -s..=s {
        gather_reference(geo, reference, dy, gathered);
        for (jx, dx) in (-s..=s).enumerate() {
            for i in 0..codes.len() {
                let at = (i * shifts + jx) * 2 * cw;
                let (d, n) = coarse_pair(geo, &runs[at..at + 2 * cw], gathered);
                consider(
                    top,
                    Candidate {
                        d,
                        n,
                        order,
                        i,
                        dx,
                        dy,
                    },
                );
                order += 1;
            }
        }
    }
    refine(top, codes, reference, cfg)
}

/// One 1:1 search: the probe runs prepared in a stack buffer, then [`search_runs`].
/// (Measured: scoring each moved probe run against all gathered reference runs instead, to
/// save the buffer, was 15% slower.)
#[inline(always)]
fn search_once<G: Geometry>(
    geo: G,
    probes: &[PackedCode],
    reference: CodeView<'_>,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    // Exactly what the default geometry needs (5 codes x 5 shifts x 2 runs of 24 words).
    const STACK_WORDS: usize = 1200;
    let need = prepared_words(geo, probes.len());
    let mut stack = [0u64; STACK_WORDS];
    let mut heap = Vec::new();
    let runs: &mut [u64] = if need <= STACK_WORDS {
        &mut stack[..need]
    } else {
        heap.resize(need, 0);
        &mut heap[..]
    };
    prepare_runs(geo, probes, runs);
    search_runs(geo, runs, probes, reference, cfg)
}

/// Every search goes through here: the default geometry gets its constant-folded
/// instance, anything else the general one. Same algorithm, same results.
#[inline(always)]
fn search_impl(probes: &[PackedCode], reference: CodeView<'_>, cfg: &MatchConfig) -> (MatchDetail, usize) {
    let geo = Dynamic::of_view(reference, cfg);
    if geo.is_default() && probes.iter().all(|p| (p.grid, p.lanes) == (geo.grid, geo.lanes)) {
        search_once(DefaultGeometry {}, probes, reference, cfg)
    } else {
        search_once(geo, probes, reference, cfg)
    }
}

/// [`search_runs`] for a [`PreparedProbe`], with the same dispatch on geometry.
#[inline(always)]
fn search_prepared_impl(
    probe: &PreparedProbe,
    reference: CodeView<'_>,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    let geo = probe.geometry;
    if geo.is_default() {
        search_runs(DefaultGeometry {}, &probe.runs, &probe.codes, reference, cfg)
    } else {
        search_runs(geo, &probe.runs, &probe.codes, reference, cfg)
    }
}

/// A probe prepared once for searching many references (a 1:N identification): its packed
/// codes and, for every (code, horizontal shift), its coarse rows already moved into the
/// reference's frame. [`search_prepared`] then does per reference only what depends on the
/// reference. Prepared for one [`MatchConfig`]: search with that same configuration.
#[derive(Clone, Debug)]
pub struct PreparedProbe {
    codes: Vec<PackedCode>,
    geometry: Dynamic,
    config: MatchConfig,
    runs: Vec<u64>,
}

impl std::fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "grid {} lanes {} step {} max_shift {}",
            self.grid, self.lanes, self.step, self.max_shift
        )
    }
}

/// Why a probe cannot be prepared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("a probe needs at least one code")]
    NoCodes,
    #[error("the probe's codes differ in geometry")]
    MixedGeometry,
}

impl PreparedProbe {
    /// Prepare `codes` (the probe's primary code first, then its coded poses) for `cfg`.
    pub fn new(codes: Vec<PackedCode>, cfg: &MatchConfig) -> Result<PreparedProbe, PrepareError> {
        let first = codes.first().ok_or(PrepareError::NoCodes)?;
        if codes.iter().any(|c| {
            (c.grid, c.lanes, c.bits.len(), c.mask.len())
                != (first.grid, first.lanes, first.bits.len(), first.mask.len())
        }) {
            return Err(PrepareError::MixedGeometry);
        }
        let geometry = Dynamic::of_view(first.view(), cfg);
        let mut runs = vec![0u64; prepared_words(geometry, codes.len())];
        prepare_runs(geometry, &codes, &mut runs);
        Ok(PreparedProbe {
            codes,
            geometry,
            config: cfg.clone(),
            runs,
        })
    }

    /// The packed codes, primary first.
    pub fn codes(&self) -> &[PackedCode] {
        &self.codes
    }

    /// The configuration the probe was prepared for.
    pub fn config(&self) -> &MatchConfig {
        &self.config
    }
}

/// Defines the runtime-dispatched entry point `$name` over `$impl` (signature
/// `($($arg: $ty),*) -> $ret`), with one `#[target_feature]` copy per instruction set and a
/// portable copy `$portable`; the copies are the same Rust code, so they give identical
/// results (a test checks every path the CPU has).
macro_rules! dispatched {
    (
        $(#[$doc:meta])*
        pub fn $name:ident / $portable:ident / $avx512:ident / $avx2:ident / $popcnt:ident
            ($($arg:ident: $ty:ty),*) -> $ret:ty = $imp:ident;
    ) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vpopcntdq,avx2,popcnt")]
        unsafe fn $avx512($($arg: $ty),*) -> $ret {
            $imp($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,popcnt")]
        unsafe fn $avx2($($arg: $ty),*) -> $ret {
            $imp($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "popcnt")]
        unsafe fn $popcnt($($arg: $ty),*) -> $ret {
            $imp($($arg),*)
        }

        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                match Kernel::detect() {
                    // SAFETY: `detect` saw every feature each copy is compiled for.
                    Kernel::Avx512 => return unsafe { $avx512($($arg),*) },
                    Kernel::Avx2 => return unsafe { $avx2($($arg),*) },
                    Kernel::Popcnt => return unsafe { $popcnt($($arg),*) },
                    Kernel::Portable => {}
                }
            }
            $imp($($arg),*)
        }

        /// The portable path of the function above, for tests.
        pub fn $portable($($arg: $ty),*) -> $ret {
            $imp($($arg),*)
        }
    };
}

/// The widest instruction set this CPU offers for the search kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Avx512,
    Avx2,
    Popcnt,
    Portable,
}

impl Kernel {
    #[inline]
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt") {
                return Kernel::Avx2;
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                return Kernel::Popcnt;
            }
        }
        Kernel::Portable
    }
}

dispatched! {
    /// Best match of any of the probe's codes against the reference code (coarse to fine,
    /// see `search_runs`); returns the detail and the index of the probe code that gave it.
    /// Dispatches at run time to the widest instruction set the CPU has; every path gives
    /// identical results.
    pub fn search_view / search_view_portable / search_view_avx512 / search_view_avx2 / search_view_popcnt
        (probes: &[PackedCode], reference: CodeView<'_>, cfg: &MatchConfig) -> (MatchDetail, usize) = search_impl;
}

dispatched! {
    /// [`search_view`] for a probe prepared once ([`PreparedProbe`]): identical results,
    /// without redoing the probe's part for every reference. `cfg` must be the configuration
    /// the probe was prepared for (checked in debug builds).
    pub fn search_prepared / search_prepared_portable / search_prepared_avx512 / search_prepared_avx2 / search_prepared_popcnt
        (probe: &PreparedProbe, reference: CodeView<'_>) -> (MatchDetail, usize) = search_prepared_cfg;
}

#[inline(always)]
fn search_prepared_cfg(probe: &PreparedProbe, reference: CodeView<'_>) -> (MatchDetail, usize) {
    search_prepared_impl(probe, reference, &probe.config)
}

/// [`search_view`] on an owned reference.
pub fn search(probes: &[PackedCode], reference: &PackedCode, cfg: &MatchConfig) -> (MatchDetail, usize) {
    search_view(probes, reference.view(), cfg)
}

/// The portable path of [`search`], for tests.
pub fn search_portable(
    probes: &[PackedCode],
    reference: &PackedCode,
    cfg: &MatchConfig,
) -> (MatchDetail, usize) {
    search_view_portable(probes, reference.view(), cfg)
}

/// The instruction set [`search`] dispatches to on this CPU: `avx512_vpopcntdq`, `avx2`,
/// `popcnt` or `portable`. Benchmarks print it beside their figures.
pub fn kernel_name() -> &'static str {
    match Kernel::detect() {
        Kernel::Avx512 => "avx512_vpopcntdq",
        Kernel::Avx2 => "avx2",
        Kernel::Popcnt => "popcnt",
        Kernel::Portable => "portable",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A random 32x32, 6-plane code (the engine's default geometry), about 3/4 reliable.
    pub(crate) fn code(seed: u64) -> PalmCode {
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
                    assert_eq!(
                        packed_counts(pa.view(), pb.view(), dx, dy, 1),
                        counts_at(&a, &b, dx, dy)
                    );
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

    /// Random codes of any geometry (grid <= 32).
    fn code_of(seed: u64, grid: usize, planes: usize) -> PalmCode {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let cols = if grid == 32 {
            0xffff_ffff
        } else {
            (1u64 << grid) - 1
        };
        PalmCode {
            grid,
            planes,
            bits: (0..grid * planes).map(|_| next() & cols).collect(),
            mask: (0..grid * planes).map(|_| (next() | next()) & cols).collect(),
        }
    }

    /// The search by its definition: every (probe code, shift) scored with `packed_counts`
    /// on the coarse rows, ranked by raw distance (ties: scan order dy, dx, probe code), the
    /// `refine` best rescored on all rows, the best normalised score kept.
    fn search_by_definition(probes: &[PackedCode], reference: &PackedCode, cfg: &MatchConfig) -> f32 {
        let s = cfg.max_shift as i32;
        let mut cands = Vec::new();
        for dy in -s..=s {
            for dx in -s..=s {
                for (i, p) in probes.iter().enumerate() {
                    let (d, n) =
                        packed_counts(p.view(), reference.view(), dx, dy, cfg.coarse_step.clamp(1, 8));
                    if n > 0 {
                        cands.push((d as f64 / n as f64, i, dx, dy));
                    }
                }
            }
        }
        // Stable sort keeps the scan order among ties, as the search's insertion does.
        cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        cands
            .iter()
            .take(cfg.refine.clamp(1, 4))
            .map(|&(_, i, dx, dy)| {
                let (d, n) = packed_counts(probes[i].view(), reference.view(), dx, dy, 1);
                normalised_score(d, n, cfg.reference_bits)
            })
            .fold(0.0f32, f32::max)
    }

    /// Configurations and geometries the tests run: the default (constant-folded) one and
    /// others that take the general path.
    fn cases() -> Vec<(MatchConfig, usize, usize)> {
        let d = MatchConfig::default();
        vec![
            (d.clone(), 32, 6),
            (
                MatchConfig {
                    coarse_step: 2,
                    refine: 3,
                    ..d.clone()
                },
                32,
                6,
            ),
            (
                MatchConfig {
                    max_shift: 3,
                    coarse_step: 1,
                    refine: 1,
                    ..d.clone()
                },
                24,
                4,
            ),
            (
                MatchConfig {
                    coarse_step: 5,
                    refine: 4,
                    ..d.clone()
                },
                20,
                8,
            ),
            (
                MatchConfig {
                    max_shift: 0,
                    ..d.clone()
                },
                32,
                6,
            ),
        ]
    }

    /// The fast layout gives exactly the result of the plain definition, on the default
    /// geometry and on others; the prepared probe gives the same detail as the 1:1 search.
    #[test]
    fn search_equals_its_definition() {
        for (cfg, grid, planes) in cases() {
            for seed in 1..12u64 {
                let probes: Vec<PackedCode> = (0..5)
                    .map(|k| PackedCode::new(&code_of(seed * 10 + k, grid, planes)).unwrap())
                    .collect();
                let reference = PackedCode::new(&code_of(seed * 977, grid, planes)).unwrap();
                let want = search_by_definition(&probes, &reference, &cfg);
                let got = search(&probes, &reference, &cfg);
                assert_eq!(got.0.score, want, "seed {seed} cfg {cfg:?} grid {grid}");
                assert_eq!(search_portable(&probes, &reference, &cfg), got);
                let prepared = PreparedProbe::new(probes.clone(), &cfg).unwrap();
                assert_eq!(search_prepared(&prepared, reference.view()), got);
                assert_eq!(search_prepared_portable(&prepared, reference.view()), got);
            }
        }
    }

    #[test]
    fn preparing_refuses_empty_and_mixed_probes() {
        let cfg = MatchConfig::default();
        assert_eq!(
            PreparedProbe::new(Vec::new(), &cfg).unwrap_err(),
            PrepareError::NoCodes
        );
        let mixed = vec![
            PackedCode::new(&code_of(1, 32, 6)).unwrap(),
            PackedCode::new(&code_of(2, 24, 6)).unwrap(),
        ];
        assert_eq!(
            PreparedProbe::new(mixed, &cfg).unwrap_err(),
            PrepareError::MixedGeometry
        );
    }

    /// Every instruction-set path this CPU supports gives the portable path's result, for
    /// the 1:1 search and the prepared one.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn every_supported_cpu_path_agrees() {
        use std::arch::is_x86_feature_detected as has;
        for (cfg, grid, planes) in cases() {
            for seed in 1..8u64 {
                let probes: Vec<PackedCode> = (0..5)
                    .map(|k| PackedCode::new(&code_of(seed * 3 + k, grid, planes)).unwrap())
                    .collect();
                let reference = PackedCode::new(&code_of(seed * 101, grid, planes)).unwrap();
                let r = reference.view();
                let prepared = PreparedProbe::new(probes.clone(), &cfg).unwrap();
                let want = search_view_portable(&probes, r, &cfg);
                if has!("popcnt") {
                    assert_eq!(unsafe { search_view_popcnt(&probes, r, &cfg) }, want);
                    assert_eq!(unsafe { search_prepared_popcnt(&prepared, r) }, want);
                }
                if has!("avx2") && has!("popcnt") {
                    assert_eq!(unsafe { search_view_avx2(&probes, r, &cfg) }, want);
                    assert_eq!(unsafe { search_prepared_avx2(&prepared, r) }, want);
                }
                if has!("avx512f") && has!("avx512vpopcntdq") && has!("avx2") && has!("popcnt") {
                    assert_eq!(unsafe { search_view_avx512(&probes, r, &cfg) }, want);
                    assert_eq!(unsafe { search_prepared_avx512(&prepared, r) }, want);
                } else {
                    eprintln!("AVX-512 VPOPCNTDQ not available here: that path is not exercised");
                }
            }
        }
    }
}
