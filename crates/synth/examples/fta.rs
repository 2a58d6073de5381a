//! Failure to acquire of the engine's whole-hand pipeline on synthetic hands: at a difficulty
//! (default realistic), broken down by background, then with every background forced in turn
//! (same captures otherwise), then for each failure reason's provoking preset.
//!
//! ```text
//! fta [--identities 100] [--samples 2] [--seed 1] [--difficulty realistic]
//!     [--per-background 0] [--provoked 10]
//! ```
//! Synthetic figures test the machinery; they are never accuracy claims.

use anyhow::Result;
use clap::Parser;
use openpalm_engine::{AcquireFailure, Engine, InputKind};
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
}

/// Outcome code ("ok" or the failure reason) per background.
type Outcomes = BTreeMap<&'static str, BTreeMap<String, usize>>;

fn outcomes(engine: &Engine, d: Difficulty, seed: u64, ids: u64, samples: usize) -> Result<Outcomes> {
    let g = Generator::new(Kind::Hand, seed, d)?;
    let codes: Vec<(&'static str, String)> = (0..ids)
        .into_par_iter()
        .flat_map_iter(|i| {
            let p = g.identity_for(i, &[Band::Visible]);
            let g = &g;
            (0..samples)
                .map(move |k| {
                    let s = g.sample(i, k, samples);
                    let img = g.render(&p, &s, Band::Visible);
                    let code = match engine.extract_capture(&img.to_capture(), InputKind::Hand) {
                        Ok(_) => "ok".to_string(),
                        Err(e) => e.code().to_string(),
                    };
                    (s.background.name(), code)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut m = Outcomes::new();
    for (bg, c) in codes {
        *m.entry(bg).or_default().entry(c).or_insert(0) += 1;
    }
    Ok(m)
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
    let o = outcomes(&engine, a.difficulty.clone(), a.seed, a.identities, a.samples)?;
    println!("background             images failed    FTA  reasons");
    println!("{}", line("all", &merged(&o)));
    for (bg, m) in &o {
        println!("{}", line(bg, m));
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
