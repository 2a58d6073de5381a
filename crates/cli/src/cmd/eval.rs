//! `openpalm eval`: the evaluation contract (see `openpalm_eval`).

use anyhow::Context;
use openpalm_engine::DEFAULT_THRESHOLD;
use openpalm_engine::{Engine, InputKind};
use openpalm_eval::dataset::Dataset;
use openpalm_eval::report::{write_all, ReportOptions};
use openpalm_eval::run::{run as run_eval, RunConfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder holding the images and labels.csv (path,identity,session).
    #[arg(long)]
    pub dataset: PathBuf,
    /// What the images show: `roi` (palm-centre crop) or `hand` (whole open hand).
    #[arg(long)]
    pub input: InputKind,
    /// Labels file (default DATASET/labels.csv); a relative path that does not exist is
    /// also looked for inside DATASET.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Output folder (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

fn percent(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dataset = Dataset::load(&args.dataset, args.labels.as_deref())?;
    eprintln!(
        "evaluating {}: {} images, {} identities ({})",
        dataset.name,
        dataset.samples.len(),
        dataset.identities(),
        dataset.labels_path.display()
    );
    let engine = Engine::default();
    let mut config = RunConfig::new(args.input);
    config.progress = true;
    let result = run_eval(&engine, &dataset, &config);
    let options = ReportOptions {
        default_threshold: DEFAULT_THRESHOLD,
    };
    let (report, files) = write_all(&args.out, &result, &options)
        .with_context(|| format!("evaluation of {} incomplete", dataset.name))?;
    let ms = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.3} {unit}"));
    println!(
        "{} ({}): {} images, {} acquired, {} genuine / {} impostor pairs",
        report.dataset,
        report.input,
        report.images,
        report.acquired,
        report.genuine_pairs,
        report.impostor_pairs
    );
    println!("  EER         {}", percent(report.eer));
    for (key, fnmr) in &report.fnmr_at_fmr {
        println!("  FNMR@{key:<6} {}", percent(*fnmr));
    }
    println!("  FTA         {}", percent(report.fta_rate));
    println!(
        "  rank-1      {}",
        report
            .rank1
            .map_or("n/a (no identity has a third sample)".to_string(), percent)
    );
    println!(
        "  at t={:.4}: FMR {}  FNMR {}",
        report.threshold,
        percent(report.fmr_at_threshold),
        percent(report.fnmr_at_threshold)
    );
    println!(
        "  extract {} / image, match {} / pair prepared, {} from plain templates (one core)",
        ms(report.timing.extract_ms_median, "ms"),
        ms(report.timing.match_us_median, "us"),
        ms(report.timing.match_us_median_from_templates, "us")
    );
    println!(
        "wrote {}, {}, {}, {}",
        files.scores.display(),
        files.failures.display(),
        files.report.display(),
        files.det.display()
    );
    Ok(())
}
