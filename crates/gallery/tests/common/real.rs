//! Two-stage search against exhaustive search on real palms (shared by `tests/real_palms.rs`
//! and `examples/exactness.rs`).
//!
//! Real templates are extracted with `Engine::default()`; the first two samples of each
//! identity are enrolled and every other sample is a probe. Fifty or eighty real palms are
//! far too few to stress a first stage, so the gallery is padded with templates that are not
//! real palms (a statistical shortcut, stated with every figure):
//! - `Random`: independent random bits (`synthetic::random_template`);
//! - `Scrambled`: real enrolled codes with their planes permuted and their rows and columns
//!   rolled cyclically by 4 or more cells, so they keep the spatial texture of real codes but
//!   belong to nobody (much harder impostors for a sketch than random bits).

#![allow(dead_code)]

use openpalm_engine::code::PalmCode;
use openpalm_engine::{Engine, InputKind, Template};
use openpalm_eval::dataset::Dataset;
use openpalm_gallery::synthetic::random_template;
use openpalm_gallery::{Gallery, Hand, Key, Layout};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Random,
    Scrambled,
}

/// Templates of a labelled set, in labels order, with the identity of each (images the engine
/// cannot read are counted and left out).
pub fn load(dir: &Path, input: InputKind) -> (Vec<(String, Template)>, usize) {
    let ds = Dataset::load(dir, None).expect("labels");
    let engine = Engine::default();
    let got: Vec<Option<(String, Template)>> = ds
        .samples
        .par_iter()
        .map(|s| {
            let bytes = std::fs::read(ds.image_path(s)).ok()?;
            let t = engine.extract(&bytes, input).ok()?.template;
            Some((s.identity.clone(), t))
        })
        .collect();
    let failed = got.iter().filter(|x| x.is_none()).count();
    (got.into_iter().flatten().collect(), failed)
}

fn scramble(rng: &mut ChaCha8Rng, c: &PalmCode) -> PalmCode {
    let g = c.grid;
    let full = if g >= 64 { u64::MAX } else { (1u64 << g) - 1 };
    let (dx, dy) = (rng.gen_range(4..=g - 4), rng.gen_range(4..=g - 4));
    let mut planes: Vec<usize> = (0..c.planes).collect();
    planes.shuffle(rng);
    let roll = |v: u64| ((v << dx) | (v >> (g - dx))) & full;
    let mut out = PalmCode {
        grid: g,
        planes: c.planes,
        bits: vec![0; c.bits.len()],
        mask: vec![0; c.mask.len()],
    };
    for (p, &src) in planes.iter().enumerate() {
        for y in 0..g {
            let (i, j) = (p * g + (y + dy) % g, src * g + y);
            out.bits[i] = roll(c.bits[j]);
            out.mask[i] = roll(c.mask[j]);
        }
    }
    out
}

#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub enrolled_real: usize,
    pub padding: usize,
    pub probes: usize,
    /// Two-stage top-1 (person or score) differs from exhaustive top-1.
    pub top1_differs: usize,
    /// Two-stage top-k list (persons, keys, scores) differs from exhaustive.
    pub topk_differs: usize,
    /// Exhaustive top-1 is the probe's own identity.
    pub exact_top1_genuine: usize,
}

/// Enrol two samples per identity plus `pad` padding templates, probe with the rest.
pub fn measure(samples: &[(String, Template)], pad: usize, kind: Padding, k: usize, seed: u64) -> Figures {
    let layout = Layout::of(&samples[0].1);
    let mut g = Gallery::new(layout, Engine::default().config().matching.clone()).unwrap();
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut count: HashMap<u64, u32> = HashMap::new();
    let mut probes = Vec::new();
    let mut enrolled = Vec::new();
    for (name, t) in samples {
        let n = ids.len() as u64;
        let id = *ids.entry(name.as_str()).or_insert(n);
        let c = count.entry(id).or_insert(0);
        if *c < 2 {
            g.add(Key::new(id, Hand::Right, *c), t).unwrap();
            enrolled.push(t);
        } else {
            probes.push((id, t));
        }
        *c += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..pad {
        let mut t = random_template(&mut rng, &layout);
        if kind == Padding::Scrambled {
            let src = enrolled[rng.gen_range(0..enrolled.len())];
            t.code = scramble(&mut rng, &src.code);
        }
        g.add(Key::new(1_000_000 + i as u64, Hand::Left, 0), &t).unwrap();
    }
    let mut f = Figures {
        enrolled_real: enrolled.len(),
        padding: pad,
        probes: probes.len(),
        ..Figures::default()
    };
    for (id, p) in probes {
        let fast = g.identify(p, k).unwrap();
        let exact = g.identify_exact(p, k).unwrap();
        let key = |c: &openpalm_gallery::Candidate| (c.person, c.key, c.score.to_bits());
        if fast.first().map(key) != exact.first().map(key) {
            f.top1_differs += 1;
        }
        if !fast.iter().map(key).eq(exact.iter().map(key)) {
            f.topk_differs += 1;
        }
        if exact.first().map(|c| c.person) == Some(id) {
            f.exact_top1_genuine += 1;
        }
    }
    f
}

/// First-stage rank of the best real template, for galleries too large to search
/// exhaustively for every probe: for each probe, the enrolled real template with the highest
/// `Engine::score` (the exhaustive answer, as long as no padding template beats it, which
/// `measure` checks at smaller sizes), and how many templates (real and `pad` padding) have a
/// sketch distance at most its own (ties counted against it). The two-stage search keeps that
/// template, so returns the exhaustive top-1, whenever its rank is below the candidates kept.
/// Returns, per probe, (rank, the exhaustive top-1 score).
pub fn first_stage_ranks(
    samples: &[(String, Template)],
    pad: usize,
    kind: Padding,
    seed: u64,
) -> Vec<(usize, f32)> {
    use openpalm_engine::engine::probe_codes;
    use openpalm_engine::matcher::PackedCode;
    use openpalm_gallery::sketch::{geometry, reference_sketch, ProbeSketch};
    let layout = Layout::of(&samples[0].1);
    let engine = Engine::default();
    let (_, w) = geometry(&layout);
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut enrolled = Vec::new();
    let mut probes = Vec::new();
    for (name, t) in samples {
        let c = ids.entry(name.as_str()).or_insert(0);
        if *c < 2 {
            enrolled.push(t);
        } else {
            probes.push(t);
        }
        *c += 1;
    }
    let sketch = |c: &PalmCode| {
        let mut s = vec![0u64; w];
        reference_sketch(&layout, &PackedCode::new(c).unwrap(), &mut s);
        s
    };
    let real: Vec<Vec<u64>> = enrolled.iter().map(|t| sketch(&t.code)).collect();
    let padding: Vec<u64> = (0..pad)
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let code = match kind {
                Padding::Random => random_template(&mut rng, &layout).code,
                Padding::Scrambled => {
                    let src = rng.gen_range(0..enrolled.len());
                    scramble(&mut rng, &enrolled[src].code)
                }
            };
            sketch(&code)
        })
        .collect();
    probes
        .par_iter()
        .map(|p| {
            let scores: Vec<f32> = enrolled.iter().map(|t| engine.score(p, t)).collect();
            let best = (0..enrolled.len())
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
                .unwrap();
            let ps = ProbeSketch::new(&layout, &probe_codes(p).unwrap());
            let d = ps.distance(&real[best]);
            let rank = real.iter().filter(|s| ps.distance(s) <= d).count() - 1
                + padding.chunks_exact(w).filter(|s| ps.distance(s) <= d).count();
            (rank, scores[best])
        })
        .collect()
}
