//! Turning an [`EvalResult`] into the evaluation's files: `scores.csv`, `failures.csv`,
//! `report.json` and `det.svg`.

use crate::attempt::{AttemptConfig, AttemptReport};
use crate::metrics::{self, ErrorRates, MetricsError, ScoreStats};
use crate::run::{input_name, EvalResult, Timing};
use crate::tail::TailFit;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The FMR targets reported, with their keys in `report.json`.
pub const FMR_TARGETS: [(&str, f64); 6] = [
    ("1e-2", 1e-2),
    ("1e-3", 1e-3),
    ("1e-4", 1e-4),
    ("1e-5", 1e-5),
    ("1e-6", 1e-6),
    ("1e-7", 1e-7),
];

/// Why the outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("cannot write {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("metrics are undefined for this evaluation: {0}")]
    Metrics(#[from] MetricsError),
    #[error("attempt protocol: {0}")]
    Attempts(#[from] crate::attempt::AttemptError),
}

/// Settings that are not part of the run itself.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The engine's default decision threshold, at which FMR and FNMR are also reported.
    pub default_threshold: f32,
    /// The engine's single-capture identification threshold, at which `fpir_expected` is
    /// stated when no attempt protocol is run.
    pub identification_threshold: f32,
    /// The attempt protocol (`--enrol K --attempt M`) and the engine's attempt threshold.
    pub attempts: Option<(AttemptConfig, f32)>,
}

impl ReportOptions {
    /// The engine's thresholds, no attempt protocol.
    pub fn engine_defaults() -> ReportOptions {
        ReportOptions {
            default_threshold: openpalm_engine::DEFAULT_THRESHOLD,
            identification_threshold: openpalm_engine::IDENTIFICATION_THRESHOLD,
            attempts: None,
        }
    }
}

/// Closed-set rank-1 details.
#[derive(Clone, Debug, Serialize)]
pub struct Rank1Detail {
    pub enrolled_identities: usize,
    pub probes: usize,
    pub correct: usize,
}

/// Contents of `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub dataset: String,
    pub labels: String,
    pub input: String,
    /// Algorithm identifier of the templates compared.
    pub algorithm: u16,
    pub images: usize,
    pub identities: usize,
    pub acquired: usize,
    pub failures: usize,
    /// Failures per reason code.
    pub failure_reasons: BTreeMap<String, usize>,
    /// Failure-to-acquire rate: failures / images.
    pub fta_rate: f64,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Equal error rate (see [`ErrorRates::eer`] for the exact definition).
    pub eer: f64,
    /// Threshold nearest the EER crossing.
    pub eer_threshold: f32,
    /// FNMR at the smallest threshold whose FMR is at most the key.
    pub fnmr_at_fmr: BTreeMap<String, f64>,
    /// Those thresholds.
    pub threshold_at_fmr: BTreeMap<String, f32>,
    /// The smallest non-zero FMR measurable: 1 / impostor_pairs. FNMR at an FMR target
    /// below this is an extrapolation to FMR = 0.
    pub fmr_resolution: f64,
    /// The engine's default threshold, and the error rates there.
    pub threshold: f32,
    pub fmr_at_threshold: f64,
    pub fnmr_at_threshold: f64,
    /// Closed-set rank-1 identification rate (first two samples of each identity enrolled);
    /// `null` when no identity has a third sample.
    pub rank1: Option<f64>,
    pub rank1_detail: Option<Rank1Detail>,
    pub genuine_scores: ScoreStats,
    pub impostor_scores: ScoreStats,
    /// The impostor tail fitted on single-capture scores (`null` with `tail_error` when there
    /// are too few impostor pairs), with its check against the measured tail.
    pub tail: Option<TailFit>,
    pub tail_error: Option<String>,
    /// Single captures: FNMR at the thresholds where the fitted tail reaches each FMR.
    pub fnmr_at_fitted_fmr: BTreeMap<String, f64>,
    /// What `fpir_expected` is about: `attempt` (the attempt protocol ran; its threshold and
    /// fit) or `capture` (single captures at the identification threshold).
    pub fpir_basis: &'static str,
    /// The operating threshold of `fpir_expected`.
    pub fpir_threshold: f32,
    /// FPIR expected at `fpir_threshold` by the fitted tail, keyed by gallery size
    /// (`"10000"`, `"100000"`, `"1000000"`, `"10000000"`); `null` without a fit.
    pub fpir_expected: Option<BTreeMap<String, f64>>,
    /// The attempt protocol's metrics (`null` unless `--enrol`/`--attempt` were given).
    pub attempts: Option<AttemptReport>,
    /// One-core timings (`extract_ms_median`, `match_us_median`, ...), as top-level keys.
    #[serde(flatten)]
    pub timing: Timing,
}

impl Report {
    /// Compute every metric. Fails when there are no genuine or no impostor pairs.
    pub fn build(
        result: &EvalResult,
        options: &ReportOptions,
        attempts: Option<AttemptReport>,
    ) -> Result<Report, MetricsError> {
        let genuine = result.genuine_scores();
        let impostor = result.impostor_scores();
        let rates = ErrorRates::new(&genuine, &impostor)?;
        let eer = rates.eer();
        let (fnmr_at_fmr, threshold_at_fmr) = at_fmr_targets(&rates, false)?;
        let at_default = rates.at_threshold(options.default_threshold);

        let labelled: Vec<(&str, &str)> = result
            .acquired
            .iter()
            .map(|a| (a.path.as_str(), a.identity.as_str()))
            .collect();
        let rank1 = match metrics::rank1(&labelled, |i, j| result.pair_score(i, j)) {
            Ok(r) => Some(r),
            Err(MetricsError::NoProbes) => None,
            Err(e) => return Err(e),
        };

        let mut failure_reasons = BTreeMap::new();
        for f in &result.failures {
            *failure_reasons.entry(f.reason.clone()).or_insert(0) += 1;
        }
        let stats = |s: &[f32]| metrics::score_stats(s).ok_or(MetricsError::NoGenuine);
        let t = &result.timing;
        let (tail, tail_error, fnmr_at_fitted_fmr) = fitted_tail(&rates);
        let (fpir_basis, fpir_threshold, fpir_expected) = match &attempts {
            Some(a) => ("attempt", a.threshold, a.fpir_expected.clone()),
            None => (
                "capture",
                options.identification_threshold,
                tail.as_ref()
                    .map(|f| crate::tail::fpir_expected(&f.tail(), options.identification_threshold)),
            ),
        };
        Ok(Report {
            dataset: result.dataset.clone(),
            labels: result.labels.clone(),
            input: input_name(result.input).to_string(),
            algorithm: result.algorithm,
            images: result.images,
            identities: result.identities,
            acquired: result.acquired.len(),
            failures: result.failures.len(),
            failure_reasons,
            fta_rate: result.fta_rate(),
            genuine_pairs: genuine.len(),
            impostor_pairs: impostor.len(),
            eer: eer.eer,
            eer_threshold: eer.threshold,
            fnmr_at_fmr,
            threshold_at_fmr,
            fmr_resolution: 1.0 / impostor.len() as f64,
            threshold: options.default_threshold,
            fmr_at_threshold: at_default.fmr,
            fnmr_at_threshold: at_default.fnmr,
            rank1: rank1.map(|r| r.rate),
            rank1_detail: rank1.map(|r| Rank1Detail {
                enrolled_identities: r.enrolled_identities,
                probes: r.probes,
                correct: r.correct,
            }),
            genuine_scores: stats(&genuine)?,
            impostor_scores: stats(&impostor)?,
            tail,
            tail_error,
            fnmr_at_fitted_fmr,
            fpir_basis,
            fpir_threshold,
            fpir_expected,
            attempts,
            timing: t.clone(),
        })
    }
}

/// FNMR and threshold at FMR targets, each keyed like [`FMR_TARGETS`].
pub(crate) type AtTargets = (BTreeMap<String, f64>, BTreeMap<String, f32>);

/// FNMR and threshold at each of [`FMR_TARGETS`], keyed like them; with `measurable_only`,
/// only the targets that admit at least one impostor score.
pub(crate) fn at_fmr_targets(rates: &ErrorRates, measurable_only: bool) -> Result<AtTargets, MetricsError> {
    let mut fnmr = BTreeMap::new();
    let mut threshold = BTreeMap::new();
    for (key, target) in FMR_TARGETS {
        if measurable_only && target * (rates.impostor_count() as f64) < 1.0 {
            continue;
        }
        let at = rates.fnmr_at_fmr(target)?;
        fnmr.insert(key.to_string(), at.fnmr);
        threshold.insert(key.to_string(), at.threshold);
    }
    Ok((fnmr, threshold))
}

/// The impostor tail fitted on `rates` (or why there is none), with the FNMR at each of its
/// fitted thresholds.
pub(crate) fn fitted_tail(rates: &ErrorRates) -> (Option<TailFit>, Option<String>, BTreeMap<String, f64>) {
    match crate::tail::fit(rates) {
        Ok(t) => {
            let fnmr = t
                .threshold_at_fitted_fmr
                .iter()
                .map(|(k, &th)| (k.clone(), rates.fnmr(th)))
                .collect();
            (Some(t), None, fnmr)
        }
        Err(e) => (None, Some(e.to_string()), BTreeMap::new()),
    }
}

/// Where the outputs were written.
#[derive(Clone, Debug)]
pub struct Outputs {
    pub scores: PathBuf,
    pub failures: PathBuf,
    pub report: PathBuf,
    pub det: PathBuf,
    /// `attempts.csv`, when the attempt protocol ran.
    pub attempts: Option<PathBuf>,
}

fn csv_error(path: &Path) -> impl Fn(csv::Error) -> ReportError + '_ {
    move |source| ReportError::Csv {
        path: path.to_path_buf(),
        source,
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `scores.csv`: `a,b,genuine,score`, one row per unordered pair of acquired samples.
pub fn write_scores(path: &Path, result: &EvalResult) -> Result<(), ReportError> {
    let err = csv_error(path);
    let mut w = csv::Writer::from_path(path).map_err(&err)?;
    w.write_record(["a", "b", "genuine", "score"]).map_err(&err)?;
    for p in &result.pairs {
        let a = &result.acquired[p.a as usize].path;
        let b = &result.acquired[p.b as usize].path;
        let genuine = if p.genuine { "1" } else { "0" };
        w.write_record([a.as_str(), b.as_str(), genuine, &p.score.to_string()])
            .map_err(&err)?;
    }
    w.flush().map_err(io_error(path))
}

/// `failures.csv`: `path,reason`, one row per image that failed to acquire.
pub fn write_failures(path: &Path, result: &EvalResult) -> Result<(), ReportError> {
    let err = csv_error(path);
    let mut w = csv::Writer::from_path(path).map_err(&err)?;
    w.write_record(["path", "reason"]).map_err(&err)?;
    for f in &result.failures {
        w.write_record([f.path.as_str(), f.reason.as_str()])
            .map_err(&err)?;
    }
    w.flush().map_err(io_error(path))
}

/// Write all four outputs into `out` (created if needed). The CSVs are written first, so
/// they exist even when the metrics are undefined (then the error is returned and neither
/// `report.json` nor `det.svg` is written).
pub fn write_all(
    out: &Path,
    result: &EvalResult,
    options: &ReportOptions,
) -> Result<(Report, Outputs), ReportError> {
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    let outputs = Outputs {
        scores: out.join("scores.csv"),
        failures: out.join("failures.csv"),
        report: out.join("report.json"),
        det: out.join("det.svg"),
        attempts: options.attempts.map(|_| out.join("attempts.csv")),
    };
    write_scores(&outputs.scores, result)?;
    write_failures(&outputs.failures, result)?;
    let attempts = match (options.attempts, &outputs.attempts) {
        (Some((config, threshold)), Some(path)) => {
            let protocol = crate::attempt::form(result, config)?;
            let scores = crate::attempt::score(result, &protocol);
            crate::attempt::write_csv(path, &protocol, &scores).map_err(csv_error(path))?;
            Some(crate::attempt::report(&protocol, &scores, threshold)?)
        }
        _ => None,
    };
    let report = Report::build(result, options, attempts)?;
    let json = serde_json::to_string_pretty(&report).map_err(|source| ReportError::Json {
        path: outputs.report.clone(),
        source,
    })?;
    std::fs::write(&outputs.report, json + "\n").map_err(io_error(&outputs.report))?;
    let rates = ErrorRates::new(&result.genuine_scores(), &result.impostor_scores())?;
    let title = format!(
        "DET: {} ({}), EER {:.2}%",
        result.dataset,
        input_name(result.input),
        report.eer * 100.0
    );
    let svg = crate::det::det_svg(&rates.operating_points(), &rates.eer(), &title);
    std::fs::write(&outputs.det, svg).map_err(io_error(&outputs.det))?;
    Ok((report, outputs))
}
