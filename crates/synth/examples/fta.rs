//! Failure to acquire of the engine's whole-hand pipeline on synthetic hands: at a difficulty
//! (default realistic), broken down by background, then with every background forced in turn
//! (same captures otherwise), then for each failure reason's provoking preset.
//!
//! ```text
//! fta [--identities 100] [--samples 2] [--seed 1] [--difficulty realistic]
//!     [--per-background 0] [--provoked 10] [--dump DIR]
//! ```
//! Every failed capture of the main run is listed (identity, sample, background, finger
//! spread, reason); `--dump DIR` also writes those captures as PNGs, to look at.
//! Synthetic figures test the machinery; they are never accuracy claims.

use anyhow::Result;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use openpalm_engine::hand::MaskSource;
use openpalm_engine::{AcquireFailure, Engine, InputKind, Trace};
use openpalm_synth::{Background, Band, Difficulty, Generator, Kind};
use rayon::prelude::*;
use std::collections::BTreeMap;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    identities: u64,
    #[arg(long, default_value_t = 2)]
    samples: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "realistic")]
    difficulty: Difficulty,
    /// Identities (one capture each) per forced background (0 = skip).
    #[arg(long, default_value_t = 0)]
    per_background: u64,
    /// Captures per provoking preset (0 = skip).
    #[arg(long, default_value_t = 10)]
    provoked: u64,
    /// Write the failed captures of the main run here as PNGs.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

/// One failed capture of the main run.
struct Failure {
    identity: u64,
    sample: usize,
    background: &'static str,
    spread_deg: f32,
    reason: String,
    png: Option<Vec<u8>>,
}

/// Outcome code ("ok" or the failure reason) per background.
type Outcomes = BTreeMap<&'static str, BTreeMap<String, usize>>;

fn outcomes(engine: &Engine, d: Difficulty, seed: u64, ids: u64, samples: usize) -> Result<Outcomes> {
    Ok(run(engine, d, seed, ids, samples, false)?.outcomes)
}

/// What one run over generated captures found.
struct Run {
    outcomes: Outcomes,
    /// Every failure (with its PNG if asked for).
    failures: Vec<Failure>,
    /// Captures acquired on a colour-split mask (the first segmentation's frame failed).
    acquired_by_split: usize,
}

/// Outcomes per background, and every failure (with its PNG if `keep_png`).
fn run(engine: &Engine, d: Difficulty, seed: u64, ids: u64, samples: usize, keep_png: bool) -> Result<Run> {
    let g = Generator::new(Kind::Hand, seed, d)?;
    let bar = ProgressBar::new(ids * samples as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {elapsed}/{duration}")
            .expect("valid template"),
    );
    bar.set_message("captures");
    // Per capture: its background, its failure if any, and whether it was acquired on a
    // colour-split mask.
    let results: Vec<(&'static str, Option<Failure>, bool)> = (0..ids)
        .into_par_iter()
        .flat_map_iter(|i| {
            let p = g.identity_for(i, &[Band::Visible]);
            let (g, bar) = (&g, &bar);
            (0..samples)
                .map(move |k| {
                    let s = g.sample(i, k, samples);
                    let img = g.render(&p, &s, Band::Visible);
                    let mut trace = Trace::default();
                    let outcome = engine.extract_traced(&img.to_capture(), InputKind::Hand, &mut trace);
                    let split =
                        outcome.is_ok() && trace.segmentation.is_some_and(|s| s.source != MaskSource::Colour);
                    let failure = outcome.err().map(|e| Failure {
                        identity: i,
                        sample: k,
                        background: s.background.name(),
                        spread_deg: s.spread.to_degrees(),
                        reason: e.code().to_string(),
                        png: keep_png.then(|| img.encode_png().ok()).flatten(),
                    });
                    bar.inc(1);
                    (s.background.name(), failure, split)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    bar.finish_and_clear();
    let mut m = Outcomes::new();
    let mut failures = Vec::new();
    let acquired_by_split = results.iter().filter(|r| r.2).count();
    for (bg, f, _) in results {
        let code = f.as_ref().map_or("ok".to_string(), |f| f.reason.clone());
        *m.entry(bg).or_default().entry(code).or_insert(0) += 1;
        failures.extend(f);
    }
    Ok(Run {
        outcomes: m,
        failures,
        acquired_by_split,
    })
}

fn merged(o: &Outcomes) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for per in o.values() {
        for (c, n) in per {
            *m.entry(c.clone()).or_insert(0) += n;
        }
    }
    m
}

fn line(name: &str, m: &BTreeMap<String, usize>) -> String {
    let n: usize = m.values().sum();
    let failed = n - m.get("ok").copied().unwrap_or(0);
    let reasons: Vec<String> = m
        .iter()
        .filter(|(c, _)| *c != "ok")
        .map(|(c, k)| format!("{c} {k}"))
        .collect();
    format!(
        "{name:<22} {n:>6} {failed:>6}  {:>5.1}%  {}",
        100.0 * failed as f64 / n.max(1) as f64,
        reasons.join(", ")
    )
}

fn main() -> Result<()> {
    let a = Args::parse();
    let engine = Engine::default();
    let Run {
        outcomes: o,
        failures,
        acquired_by_split,
    } = run(
        &engine,
        a.difficulty.clone(),
        a.seed,
        a.identities,
        a.samples,
        a.dump.is_some(),
    )?;
    println!("background             images failed    FTA  reasons");
    println!("{}", line("all", &merged(&o)));
    for (bg, m) in &o {
        println!("{}", line(bg, m));
    }
    println!("acquired on a colour-split mask (first segmentation's frame refused): {acquired_by_split}");
    if !failures.is_empty() {
        println!("\nfailed captures (identity/sample, background, finger spread, reason):");
    }
    if let Some(dir) = &a.dump {
        std::fs::create_dir_all(dir)?;
    }
    for f in &failures {
        println!(
            "  {:>4}/{}  {:<11} {:>5.1} deg  {}",
            f.identity, f.sample, f.background, f.spread_deg, f.reason
        );
        if let (Some(dir), Some(png)) = (&a.dump, &f.png) {
            let name = format!("{:04}_{}_{}_{}.png", f.identity, f.sample, f.background, f.reason);
            std::fs::write(dir.join(name), png)?;
        }
    }
    if a.per_background > 0 {
        println!(
            "\nevery background forced in turn ({} captures each, otherwise the same):",
            a.per_background
        );
        for bg in Background::ALL {
            let mut d = a.difficulty.clone();
            d.backgrounds = vec![bg];
            let o = outcomes(&engine, d, a.seed, a.per_background, 1)?;
            println!("{}", line(bg.name(), &merged(&o)));
        }
    }
    if a.provoked > 0 {
        println!("\nprovoking presets ({} captures each):", a.provoked);
        for r in AcquireFailure::ALL {
            let m = merged(&outcomes(
                &engine,
                Difficulty::provoking(r),
                a.seed,
                a.provoked,
                1,
            )?);
            let hit = m.get(r.code()).copied().unwrap_or(0);
            println!("{:<20} -> intended reason {hit}/{}: {m:?}", r.code(), a.provoked);
        }
    }
    Ok(())
}
