//! Failure to acquire of the engine's whole-hand pipeline on synthetic hands: at a difficulty
//! (default realistic), and for each failure reason's provoking preset.
//!
//! ```text
//! fta [--identities 100] [--samples 2] [--seed 1] [--provoked 10]
//! ```
//! Synthetic figures test the machinery; they are never accuracy claims.

use anyhow::Result;
use clap::Parser;
use openpalm_engine::{AcquireFailure, Engine, InputKind};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
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
    /// Captures per provoking preset (0 = skip).
    #[arg(long, default_value_t = 10)]
    provoked: u64,
}

fn outcomes(
    engine: &Engine,
    d: Difficulty,
    seed: u64,
    ids: u64,
    samples: usize,
) -> Result<BTreeMap<String, usize>> {
    let g = Generator::new(Kind::Hand, seed, d)?;
    let codes: Vec<String> = (0..ids)
        .into_par_iter()
        .flat_map_iter(|i| {
            let p = g.identity_for(i, &[Band::Visible]);
            let g = &g;
            (0..samples)
                .map(move |k| {
                    let img = g.render(&p, &g.sample(i, k, samples), Band::Visible);
                    match engine.extract_capture(&img.to_capture(), InputKind::Hand) {
                        Ok(_) => "ok".to_string(),
                        Err(e) => e.code().to_string(),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut m = BTreeMap::new();
    for c in codes {
        *m.entry(c).or_insert(0) += 1;
    }
    Ok(m)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let engine = Engine::default();
    let n = a.identities as usize * a.samples;
    let m = outcomes(&engine, a.difficulty.clone(), a.seed, a.identities, a.samples)?;
    let failed = n - m.get("ok").copied().unwrap_or(0);
    println!(
        "hand captures: {n}, failure to acquire {failed} ({:.1}%): {m:?}",
        100.0 * failed as f64 / n as f64
    );
    if a.provoked > 0 {
        for r in AcquireFailure::ALL {
            let m = outcomes(&engine, Difficulty::provoking(r), a.seed, a.provoked, 1)?;
            let hit = m.get(r.code()).copied().unwrap_or(0);
            println!(
                "provoking {:<20} -> intended reason {hit}/{}: {m:?}",
                r.code(),
                a.provoked
            );
        }
    }
    Ok(())
}
