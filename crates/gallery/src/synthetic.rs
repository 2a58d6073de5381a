//! Synthetic templates for tests and benchmarks.
//!
//! A statistical shortcut, not a model of palms: codes are independent random bits with a
//! random validity mask (7/8 of the bits valid); the [`POSES`] pose codes ("rotated") are the
//! primary with 1/8 of its bits flipped; a genuine probe is an enrolled template with about 19% of its bits
//! flipped (1/4 x 3/4) and translated by one cell, so a search has a real match to find. Real
//! palm codes are spatially correlated and their genuine scores sit much closer to
//! impostors'; figures on these templates say how fast the search is, not how accurate.

use crate::layout::Layout;
use openpalm_engine::code::PalmCode;
use openpalm_engine::Template;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn full(grid: usize) -> u64 {
    if grid >= 64 {
        u64::MAX
    } else {
        (1u64 << grid) - 1
    }
}

/// Random bits, 7/8 valid.
pub fn random_code<R: Rng>(rng: &mut R, grid: usize, planes: usize) -> PalmCode {
    let f = full(grid);
    let rows = grid * planes;
    PalmCode {
        grid,
        planes,
        bits: (0..rows).map(|_| rng.gen::<u64>() & f).collect(),
        mask: (0..rows)
            .map(|_| (rng.gen::<u64>() | rng.gen::<u64>() | rng.gen::<u64>()) & f)
            .collect(),
    }
}

/// `code` with the bits where `flips` draws a one flipped.
fn perturb<R: Rng>(rng: &mut R, code: &PalmCode, flips: impl Fn(&mut R) -> u64) -> PalmCode {
    let f = full(code.grid);
    PalmCode {
        grid: code.grid,
        planes: code.planes,
        bits: code.bits.iter().map(|&b| (b ^ flips(rng)) & f).collect(),
        mask: code.mask.clone(),
    }
}

/// Pose codes per synthetic template, as many as `Engine::default()` codes.
pub const POSES: usize = 4;

/// A random template of `layout` ([`POSES`] pose codes correlated with the primary).
pub fn random_template<R: Rng>(rng: &mut R, layout: &Layout) -> Template {
    let code = random_code(rng, layout.grid, layout.planes);
    let rotated = (0..POSES)
        .map(|_| perturb(rng, &code, |r| r.gen::<u64>() & r.gen::<u64>() & r.gen::<u64>()))
        .collect();
    Template {
        algorithm: openpalm_engine::template::ALGORITHM_ID,
        quality: 0.8,
        code,
        rotated,
    }
}

/// The template the bench enrols at index `i` (deterministic in `seed` and `i`).
pub fn indexed_template(seed: u64, i: u64, layout: &Layout) -> Template {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    random_template(&mut rng, layout)
}

/// Translate a code by `dx` columns (positive: towards higher columns); vacated cells invalid.
pub fn translate(code: &PalmCode, dx: i32) -> PalmCode {
    let f = full(code.grid);
    let sh = |v: u64| {
        if dx >= 0 {
            (v << dx) & f
        } else {
            (v >> (-dx)) & f
        }
    };
    PalmCode {
        grid: code.grid,
        planes: code.planes,
        bits: code.bits.iter().map(|&v| sh(v)).collect(),
        mask: code.mask.iter().map(|&v| sh(v)).collect(),
    }
}

/// A genuine probe for `t`: ~19% of the bits flipped, translated by one cell.
pub fn genuine_probe<R: Rng>(rng: &mut R, t: &Template) -> Template {
    let noisy = |rng: &mut R, c: &PalmCode| {
        translate(
            &perturb(rng, c, |r| {
                r.gen::<u64>() & r.gen::<u64>() & (r.gen::<u64>() | r.gen::<u64>())
            }),
            1,
        )
    };
    let code = noisy(rng, &t.code);
    let rotated = t.rotated.iter().map(|c| noisy(rng, c)).collect();
    Template {
        algorithm: t.algorithm,
        quality: t.quality,
        code,
        rotated,
    }
}
