//! `openpalm eval`: the evaluation contract (see `openpalm_eval`).

use anyhow::Context;
use openpalm_engine::fusion::ATTEMPT_THRESHOLD;
use openpalm_engine::{Engine, InputKind};
use openpalm_eval::attempt::AttemptConfig;
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
    /// Attempt protocol: enrol the first K acquired samples of each identity's first session
    /// (path order). Needs --attempt.
    #[arg(long, value_name = "K", requires = "attempt")]
    pub enrol: Option<usize>,
    /// Attempt protocol: attempts are disjoint groups of M of each identity's other-session
    /// samples (its remaining samples where there are no sessions); writes attempts.csv and
    /// the `attempts` section of report.json. Needs --enrol.
    #[arg(long, value_name = "M", requires = "enrol")]
    pub attempt: Option<usize>,
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
    let attempts = match (args.enrol, args.attempt) {
        (Some(enrol), Some(attempt)) => Some((AttemptConfig { enrol, attempt }, ATTEMPT_THRESHOLD)),
        _ => None,
    };
    let options = ReportOptions {
        attempts,
        ..ReportOptions::engine_defaults()
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
    let fit = |tail: &Option<openpalm_eval::tail::TailFit>, what: &str| {
        match tail {
        Some(t) => println!(
            "  {what} tail: binomial dof {:.1} p {:.4}, fitted FMR {:.0e}..{:.0e}, within x{:.2} of the measured tail; t@FMR 1e-6 {:.4}, 1e-8 {:.4}",
            t.dof,
            t.p,
            t.fitted_from_fmr,
            t.fitted_to_fmr,
            t.max_ratio_measured,
            t.threshold_at_fitted_fmr["1e-6"],
            t.threshold_at_fitted_fmr["1e-8"]
        ),
        None => println!("  {what} tail: not fitted"),
    }
    };
    fit(&report.tail, "capture");
    if let Some(a) = &report.attempts {
        println!(
            "  attempts (enrol {}, attempt {}): {} attempts, {} genuine / {} impostor, EER {}",
            a.enrol,
            a.attempt,
            a.attempts,
            a.genuine_attempts,
            a.impostor_attempts,
            percent(a.eer)
        );
        for (key, fnmr) in &a.fnmr_at_fmr {
            println!("    FNMR@{key:<6} {}", percent(*fnmr));
        }
        for (key, fnmr) in &a.fnmr_at_fitted_fmr {
            println!("    FNMR@fitted {key:<6} {}", percent(*fnmr));
        }
        fit(&a.tail, "  attempt");
        println!(
            "    at t={:.4}: FMR measured {} fitted {}  FNMR {}",
            a.threshold,
            a.fmr_at_threshold,
            a.fmr_fitted_at_threshold
                .map_or("n/a".into(), |f| format!("{f:.2e}")),
            percent(a.fnmr_at_threshold)
        );
    }
    if let Some(f) = &report.fpir_expected {
        let line: Vec<String> = f.iter().map(|(n, v)| format!("{n}: {}", percent(*v))).collect();
        println!(
            "  FPIR expected ({} at t={:.4}): {}",
            report.fpir_basis,
            report.fpir_threshold,
            line.join(", ")
        );
    }
    println!(
        "wrote {}, {}, {}, {}{}",
        files.scores.display(),
        files.failures.display(),
        files.report.display(),
        files.det.display(),
        files
            .attempts
            .as_ref()
            .map_or(String::new(), |p| format!(", {}", p.display()))
    );
    Ok(())
}
