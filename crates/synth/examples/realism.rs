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
//! with all four. Synthetic figures are never accuracy claims.

use anyhow::{bail, Context, Result};
use clap::Parser;
use openpalm_engine::{Engine, InputKind, Template};
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
}

struct Scores {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

/// All genuine pairs; impostor pairs between the first `impostor_samples` captures of each
/// identity (all of them when that is `usize::MAX`).
fn scores(engine: &Engine, groups: &[Vec<Template>], impostor_samples: usize) -> Scores {
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
    let mut s = Scores {
        genuine: Vec::new(),
        impostor: Vec::new(),
    };
    for (g, v) in pairs {
        if g {
            s.genuine.push(v)
        } else {
            s.impostor.push(v)
        }
    }
    s
}

fn mean_sd(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

const BINS: usize = 50;

fn histogram(v: &[f32]) -> Vec<f64> {
    let mut h = vec![0.0; BINS];
    for &x in v {
        h[((x * BINS as f32) as usize).min(BINS - 1)] += 1.0;
    }
    let n = v.len().max(1) as f64;
    h.iter().map(|c| c / n).collect()
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
    let g = Generator::new(Kind::Roi, a.seed, a.difficulty.clone())?;
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
    let (rg, ri) = (mean_sd(&rs.genuine), mean_sd(&rs.impostor));
    let (sg, si) = (mean_sd(&ss.genuine), mean_sd(&ss.impostor));
    println!("set        pairs(gen/imp)     genuine mean  sd     impostor mean  sd");
    println!(
        "real       {:>7}/{:<9}   {:.3}        {:.3}  {:.3}          {:.3}",
        rs.genuine.len(),
        rs.impostor.len(),
        rg.0,
        rg.1,
        ri.0,
        ri.1
    );
    println!(
        "synthetic  {:>7}/{:<9}   {:.3}        {:.3}  {:.3}          {:.3}",
        ss.genuine.len(),
        ss.impostor.len(),
        sg.0,
        sg.1,
        si.0,
        si.1
    );
    let rel = |s: f64, r: f64| 100.0 * (s - r) / r;
    println!(
        "impostor: mean {:+.1}%, sd {:+.1}% (bar: within 10%)",
        rel(si.0, ri.0),
        rel(si.1, ri.1)
    );
    let (hr, hs) = (histogram(&rs.genuine), histogram(&ss.genuine));
    let overlap: f64 = hr.iter().zip(&hs).map(|(a, b)| a.min(*b)).sum();
    println!("genuine histogram overlap (sum of bin minima, 1 = identical): {overlap:.2}");
    let min_gen = ss.genuine.iter().cloned().fold(f32::MAX, f32::min);
    let max_imp = ss.impostor.iter().cloned().fold(f32::MIN, f32::max);
    let over = ss.genuine.iter().filter(|&&g| g <= max_imp).count();
    println!(
        "synthetic separation: lowest genuine {min_gen:.3}, highest impostor {max_imp:.3}, genuine pairs at or below the highest impostor: {over}"
    );
    let real_min_gen = rs.genuine.iter().cloned().fold(f32::MAX, f32::min);
    let real_max_imp = rs.impostor.iter().cloned().fold(f32::MIN, f32::max);
    println!("real separation: lowest genuine {real_min_gen:.3}, highest impostor {real_max_imp:.3}");
    write_svg(
        &a.svg,
        &[
            ("real genuine", "#1f77b4", false, &histogram(&rs.genuine)),
            ("real impostor", "#1f77b4", true, &histogram(&rs.impostor)),
            ("synthetic genuine", "#d62728", false, &histogram(&ss.genuine)),
            ("synthetic impostor", "#d62728", true, &histogram(&ss.impostor)),
        ],
    )?;
    println!("histograms: {}", a.svg.display());
    Ok(())
}

fn write_svg(path: &Path, series: &[(&str, &str, bool, &Vec<f64>)]) -> Result<()> {
    let (w, h, ml, mb, mt, mr) = (760.0, 420.0, 60.0, 50.0, 30.0, 20.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let ymax = series
        .iter()
        .flat_map(|s| s.3.iter().cloned())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.05;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    s += &format!("<text x=\"{ml}\" y=\"18\">Engine score distributions: real Tongji ROIs vs SYNTHETIC ROIs (synthetic: machinery test, not an accuracy claim)</text>\n");
    s += &format!(
        "<line x1=\"{ml}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"black\"/><line x1=\"{ml}\" y1=\"{mt}\" x2=\"{ml}\" y2=\"{y}\" stroke=\"black\"/>\n",
        y = mt + ph,
        x2 = ml + pw
    );
    for i in 0..=10 {
        let x = ml + pw * i as f64 / 10.0;
        s += &format!(
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{:.1}</text>\n",
            mt + ph + 16.0,
            i as f64 / 10.0
        );
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">score</text>\n",
        ml + pw / 2.0,
        h - 10.0
    );
    s += &format!(
        "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">fraction of pairs per bin (bin 0.02)</text>\n",
        mt + ph / 2.0,
        mt + ph / 2.0
    );
    for (k, (name, colour, dashed, hist)) in series.iter().enumerate() {
        let mut d = String::new();
        for (i, v) in hist.iter().enumerate() {
            let x0 = ml + pw * i as f64 / BINS as f64;
            let x1 = ml + pw * (i + 1) as f64 / BINS as f64;
            let y = mt + ph - ph * v / ymax;
            d += &format!(
                "{}{x0:.1},{y:.1} L{x1:.1},{y:.1} ",
                if i == 0 { "M" } else { "L" }
            );
        }
        let dash = if *dashed { " stroke-dasharray=\"5,3\"" } else { "" };
        s += &format!("<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"{dash}/>\n");
        let ly = mt + 14.0 + 16.0 * k as f64;
        let lx = ml + pw - 170.0;
        s += &format!(
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"1.6\"{dash}/><text x=\"{}\" y=\"{}\">{name}</text>\n",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0
        );
    }
    s += "</svg>\n";
    std::fs::write(path, s).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
