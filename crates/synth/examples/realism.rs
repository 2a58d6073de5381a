//! Realism check: the engine's genuine and impostor score distributions on synthetic ROIs
//! against a real ROI set (default `../shared/data/tongji-roi-dev`).
//!
//! ```text
//! realism --svg OUT.svg [--real DIR] [--identities 200] [--samples 8] [--seed 1]
//!         [--difficulty realistic]
//! ```
//!
//! Prints mean and standard deviation of both distributions for both sets, the relative
//! differences and the overlap of the genuine distributions, and writes one histogram plot
//! with all four. In memory, and with impostor pairs among the first two captures of each
//! synthetic identity only, so it is quick enough for tuning the generator; the figures of
//! record come from `openpalm eval` on both sets and `openpalm synth realism` (README).
//! Synthetic figures are never accuracy claims.

use anyhow::{bail, Context, Result};
use clap::Parser;
use openpalm_engine::{Engine, InputKind, Template};
use openpalm_synth::realism::{histogram_svg, Comparison, ScoreSet};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    svg: PathBuf,
    #[arg(long, default_value = "../shared/data/tongji-roi-dev")]
    real: PathBuf,
    #[arg(long, default_value_t = 200)]
    identities: usize,
    #[arg(long, default_value_t = 8)]
    samples: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "realistic")]
    difficulty: Difficulty,
    /// Override the population's principal-line jitter (tuning).
    #[arg(long)]
    line_jitter: Option<f32>,
    /// Override the population's wrinkle depth range, as "lo,hi" (tuning).
    #[arg(long)]
    wrinkle_depth: Option<String>,
}

/// All genuine pairs; impostor pairs between the first `impostor_samples` captures of each
/// identity (all of them when that is `usize::MAX`).
fn scores(engine: &Engine, groups: &[Vec<Template>], impostor_samples: usize) -> ScoreSet {
    let flat: Vec<(usize, usize, &Template)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, ts)| ts.iter().enumerate().map(move |(k, t)| (g, k, t)))
        .collect();
    let pairs: Vec<(bool, f32)> = (0..flat.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let flat = &flat;
            (i + 1..flat.len()).filter_map(move |j| {
                let (a, b) = (&flat[i], &flat[j]);
                let genuine = a.0 == b.0;
                if !genuine && (a.1 >= impostor_samples || b.1 >= impostor_samples) {
                    return None;
                }
                Some((genuine, engine.score(a.2, b.2)))
            })
        })
        .collect();
    let mut s = ScoreSet::default();
    for (g, v) in pairs {
        if g {
            s.genuine.push(v)
        } else {
            s.impostor.push(v)
        }
    }
    s
}

/// Templates by identity and the number of captures the engine refused.
fn real_templates(engine: &Engine, dir: &Path) -> Result<(Vec<Vec<Template>>, usize)> {
    let labels = dir.join("labels.csv");
    if !labels.exists() {
        bail!(
            "real set not found: {} is missing (the shared data folder is not in a fresh clone)",
            labels.display()
        );
    }
    let mut rdr = csv::Reader::from_path(&labels)?;
    let mut by_id: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec?;
        by_id
            .entry(rec[1].to_string())
            .or_default()
            .push(dir.join(&rec[0]));
    }
    let mut out = Vec::new();
    let mut refused = 0;
    for paths in by_id.into_values() {
        let ts: Vec<Option<Template>> = paths
            .par_iter()
            .map(|p| -> Result<Option<Template>> {
                let bytes = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
                Ok(engine.extract(&bytes, InputKind::Roi).ok().map(|e| e.template))
            })
            .collect::<Result<_>>()?;
        refused += ts.iter().filter(|t| t.is_none()).count();
        out.push(ts.into_iter().flatten().collect());
    }
    Ok((out, refused))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let engine = Engine::default();
    let t0 = Instant::now();
    let (real, real_refused) = real_templates(&engine, &a.real)?;
    let t1 = Instant::now();
    let mut g = Generator::new(Kind::Roi, a.seed, a.difficulty.clone())?;
    if let Some(j) = a.line_jitter {
        g.population.line_jitter = j;
    }
    if let Some(w) = &a.wrinkle_depth {
        let (lo, hi) = w.split_once(',').context("--wrinkle-depth lo,hi")?;
        g.population.wrinkle_depth = (lo.trim().parse()?, hi.trim().parse()?);
    }
    let synth: Vec<Vec<Option<Template>>> = (0..a.identities)
        .into_par_iter()
        .map(|i| {
            let p = g.identity_for(i as u64, &[Band::Visible]);
            (0..a.samples)
                .map(|k| {
                    let s = g.sample(i as u64, k, a.samples);
                    let img = g.render(&p, &s, Band::Visible);
                    engine
                        .extract_capture(&img.to_capture(), InputKind::Roi)
                        .ok()
                        .map(|e| e.template)
                })
                .collect()
        })
        .collect();
    let synth_refused: usize = synth
        .iter()
        .map(|ts| ts.iter().filter(|t| t.is_none()).count())
        .sum();
    let synth: Vec<Vec<Template>> = synth
        .into_iter()
        .map(|ts| ts.into_iter().flatten().collect())
        .collect();
    println!(
        "refused by the engine (failure to acquire): real {real_refused}/{}, synthetic {synth_refused}/{}",
        real.iter().map(Vec::len).sum::<usize>() + real_refused,
        a.identities * a.samples
    );
    let t2 = Instant::now();
    let rs = scores(&engine, &real, usize::MAX);
    // All impostor pairs of 200 x 8 would be 1.27 M comparisons; the first two captures of
    // each identity give ~80 k, as many as the real set has.
    let ss = scores(&engine, &synth, 2);
    let t3 = Instant::now();
    eprintln!(
        "real templates {:.1} s, synthetic {} templates {:.1} s ({:.0}/s incl. extraction), scoring {:.1} s",
        (t1 - t0).as_secs_f64(),
        a.identities * a.samples,
        (t2 - t1).as_secs_f64(),
        (a.identities * a.samples) as f64 / (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64()
    );
    print!("{}", Comparison::new(&rs, &ss).table());
    let real_min_gen = rs.genuine.iter().copied().fold(f32::MAX, f32::min);
    let real_max_imp = rs.impostor.iter().copied().fold(f32::MIN, f32::max);
    println!("real separation: lowest genuine {real_min_gen:.3}, highest impostor {real_max_imp:.3}");
    let svg = histogram_svg(
        "Engine scores: real Tongji ROIs vs SYNTHETIC ROIs (synthetic: machinery test, not an accuracy claim)",
        &rs,
        &ss,
    );
    std::fs::write(&a.svg, svg).with_context(|| format!("write {}", a.svg.display()))?;
    println!("histograms: {}", a.svg.display());
    Ok(())
}
