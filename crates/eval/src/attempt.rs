//! The attempt protocol (`openpalm eval --enrol K --attempt M`): identification as a reader
//! does it, a burst of captures against people enrolled with several samples.
//!
//! Protocol, so that outside tools can recompute it from `scores.csv` and the labels:
//! - Enrolment: for each identity, its acquired samples sorted by path; its *first session* is
//!   the smallest session label among them (numeric order where labels are numbers); the
//!   first `K` of that session are enrolled. Identities without session labels enrol their
//!   first `K` samples.
//! - Attempts: the identity's acquired samples of its other sessions (all samples after the
//!   enrolled ones where there are no sessions), in path order, cut into disjoint groups of
//!   `M`; a remainder shorter than `M` is not used.
//! - Scores: every attempt against every enrolled identity. Each frame keeps its best score
//!   over the identity's enrolled samples; the frames are fused
//!   ([`openpalm_engine::fusion::fuse`], weighted by capture quality) into the raw score; the
//!   score is then cohort-normalised ([`openpalm_engine::fusion::normalise`]) with the attempt's
//!   mean raw score over all enrolled identities but its best one (T-norm) and the enrolled
//!   identity's mean raw score against the other enrolled identities, its enrolled samples
//!   taken as an attempt (Z-norm), each leaving out its highest score.
//!
//! `attempts.csv` has one row per attempt and enrolled identity:
//! `attempt,probe_identity,enrolled_identity,genuine,score,raw_score`.

use crate::run::EvalResult;
use openpalm_engine::fusion::{cohort_mean, fuse, normalise, FrameScore};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// `--enrol K --attempt M`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptConfig {
    pub enrol: usize,
    pub attempt: usize,
}

/// Why the protocol cannot be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("--enrol and --attempt must both be at least 1 (got {enrol} and {attempt})")]
    ZeroSize { enrol: usize, attempt: usize },
    #[error(
        "no attempt can be formed: no identity has {attempt} acquired samples besides its \
         {enrol} enrolled ones (in another session where sessions are labelled)"
    )]
    NoAttempts { enrol: usize, attempt: usize },
    #[error("attempts need at least two enrolled identities (got {0}): no impostor attempt exists")]
    OneIdentity(usize),
}

/// An attempt: the probe identity and its frames (indices into `EvalResult::acquired`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub identity: String,
    pub frames: Vec<usize>,
}

/// Who is enrolled with what, and the attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    pub config: AttemptConfig,
    /// Enrolled identities (sorted) with their enrolled samples.
    pub enrolled: Vec<(String, Vec<usize>)>,
    pub attempts: Vec<Attempt>,
}

/// Sort key of a session label: numbers in numeric order, before any other label.
fn session_key(s: &str) -> (u8, u64, String) {
    match s.trim().parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, s.to_string()),
    }
}

/// Form the protocol over the acquired samples of `result`.
pub fn form(result: &EvalResult, config: AttemptConfig) -> Result<Protocol, AttemptError> {
    if config.enrol == 0 || config.attempt == 0 {
        return Err(AttemptError::ZeroSize {
            enrol: config.enrol,
            attempt: config.attempt,
        });
    }
    let mut by_identity: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in result.acquired.iter().enumerate() {
        by_identity.entry(a.identity.as_str()).or_default().push(i);
    }
    let mut enrolled = Vec::new();
    let mut attempts = Vec::new();
    for (identity, mut samples) in by_identity {
        samples.sort_by(|&a, &b| result.acquired[a].path.cmp(&result.acquired[b].path));
        let first_session = samples
            .iter()
            .filter_map(|&i| result.acquired[i].session.as_deref())
            .min_by_key(|s| session_key(s));
        let (first, rest): (Vec<usize>, Vec<usize>) = match first_session {
            Some(first) => samples
                .iter()
                .partition(|&&i| result.acquired[i].session.as_deref() == Some(first)),
            None => (samples.clone(), Vec::new()),
        };
        let mut enrol: Vec<usize> = first.iter().copied().take(config.enrol).collect();
        let probes: Vec<usize> = if first_session.is_some() {
            rest
        } else {
            samples[enrol.len()..].to_vec()
        };
        enrol.sort_unstable();
        for group in probes.chunks_exact(config.attempt) {
            attempts.push(Attempt {
                identity: identity.to_string(),
                frames: group.to_vec(),
            });
        }
        enrolled.push((identity.to_string(), enrol));
    }
    if enrolled.len() < 2 {
        return Err(AttemptError::OneIdentity(enrolled.len()));
    }
    if attempts.is_empty() {
        return Err(AttemptError::NoAttempts {
            enrol: config.enrol,
            attempt: config.attempt,
        });
    }
    Ok(Protocol {
        config,
        enrolled,
        attempts,
    })
}

/// One row of `attempts.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptScore {
    pub attempt: usize,
    /// Index into [`Protocol::enrolled`].
    pub enrolled: usize,
    pub genuine: bool,
    /// The decision score: fused, then cohort-normalised.
    pub score: f32,
    /// Fused, before normalisation.
    pub raw_score: f32,
}

/// The raw fused score of `frames` against the enrolled samples `enrolled`.
fn raw_score(result: &EvalResult, frames: &[usize], enrolled: &[usize]) -> f32 {
    let per_frame: Vec<FrameScore> = frames
        .iter()
        .map(|&f| FrameScore {
            quality: result.acquired[f].quality,
            best: enrolled
                .iter()
                .map(|&e| result.pair_score(f, e))
                .fold(f32::NEG_INFINITY, f32::max),
        })
        .collect();
    fuse(&per_frame).unwrap_or(0.0)
}

/// Score every attempt against every enrolled identity, attempt by attempt, in parallel.
pub fn score(result: &EvalResult, protocol: &Protocol) -> Vec<AttemptScore> {
    let enrolled = &protocol.enrolled;
    // Z-norm: each enrolled identity's enrolled samples as an attempt against the others.
    let z_means: Vec<Option<f32>> = (0..enrolled.len())
        .into_par_iter()
        .map(|e| {
            let others: Vec<f32> = (0..enrolled.len())
                .filter(|&o| o != e)
                .map(|o| raw_score(result, &enrolled[e].1, &enrolled[o].1))
                .collect();
            cohort_mean(&others, 1)
        })
        .collect();
    protocol
        .attempts
        .par_iter()
        .enumerate()
        .flat_map_iter(|(a, attempt)| {
            let raws: Vec<f32> = enrolled
                .iter()
                .map(|(_, samples)| raw_score(result, &attempt.frames, samples))
                .collect();
            let t_mean = cohort_mean(&raws, 1);
            let z_means = &z_means;
            raws.into_iter().enumerate().map(move |(e, raw)| AttemptScore {
                attempt: a,
                enrolled: e,
                genuine: enrolled[e].0 == attempt.identity,
                score: normalise(raw, t_mean, z_means[e]),
                raw_score: raw,
            })
        })
        .collect()
}

/// The attempt-level part of `report.json` (`attempts`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct AttemptReport {
    pub enrol: usize,
    pub attempt: usize,
    /// How frames become a score (see the module documentation).
    pub fusion: &'static str,
    pub attempts: usize,
    pub enrolled_identities: usize,
    /// Enrolled identities that have no attempt of their own (they still serve as impostor
    /// targets).
    pub identities_without_attempts: usize,
    pub genuine_attempts: usize,
    pub impostor_attempts: usize,
    pub eer: f64,
    /// FNMR at the smallest threshold whose measured FMR is at most the key.
    pub fnmr_at_fmr: BTreeMap<String, f64>,
    pub threshold_at_fmr: BTreeMap<String, f32>,
    /// 1 / impostor_attempts.
    pub fmr_resolution: f64,
    /// The impostor tail fitted on attempt scores (`null` with `tail_error` when there are too
    /// few).
    pub tail: Option<crate::tail::TailFit>,
    pub tail_error: Option<String>,
    /// FNMR at the thresholds where the fitted tail reaches each FMR.
    pub fnmr_at_fitted_fmr: BTreeMap<String, f64>,
    /// The engine's attempt decision threshold and the rates there.
    pub threshold: f32,
    pub fmr_at_threshold: f64,
    pub fmr_fitted_at_threshold: Option<f64>,
    pub fnmr_at_threshold: f64,
    /// FPIR expected at `threshold` by the fitted tail, keyed by gallery size.
    pub fpir_expected: Option<BTreeMap<String, f64>>,
}

/// Metrics of the attempt scores.
pub fn report(
    protocol: &Protocol,
    scores: &[AttemptScore],
    threshold: f32,
) -> Result<AttemptReport, crate::metrics::MetricsError> {
    use crate::metrics::ErrorRates;
    let genuine: Vec<f32> = scores.iter().filter(|s| s.genuine).map(|s| s.score).collect();
    let impostor: Vec<f32> = scores.iter().filter(|s| !s.genuine).map(|s| s.score).collect();
    let rates = ErrorRates::new(&genuine, &impostor)?;
    let (fnmr_at_fmr, threshold_at_fmr) = crate::report::at_fmr_targets(&rates, true)?;
    let (tail, tail_error, fnmr_at_fitted_fmr) = crate::report::fitted_tail(&rates);
    let with_attempts: std::collections::BTreeSet<&str> =
        protocol.attempts.iter().map(|a| a.identity.as_str()).collect();
    Ok(AttemptReport {
        enrol: protocol.config.enrol,
        attempt: protocol.config.attempt,
        fusion: "per frame the best score over the enrolled samples; quality-weighted mean over \
                 frames; T-norm (attempt vs all enrolled but its best) and Z-norm (enrolled vs \
                 other enrolled) mean shifts",
        attempts: protocol.attempts.len(),
        enrolled_identities: protocol.enrolled.len(),
        identities_without_attempts: protocol
            .enrolled
            .iter()
            .filter(|(id, _)| !with_attempts.contains(id.as_str()))
            .count(),
        genuine_attempts: genuine.len(),
        impostor_attempts: impostor.len(),
        eer: rates.eer().eer,
        fnmr_at_fmr,
        threshold_at_fmr,
        fmr_resolution: 1.0 / impostor.len() as f64,
        fmr_fitted_at_threshold: tail.as_ref().map(|t| t.tail().fmr(threshold)),
        fpir_expected: tail
            .as_ref()
            .map(|t| crate::tail::fpir_expected(&t.tail(), threshold)),
        tail,
        tail_error,
        fnmr_at_fitted_fmr,
        threshold,
        fmr_at_threshold: rates.fmr(threshold),
        fnmr_at_threshold: rates.fnmr(threshold),
    })
}

/// `attempts.csv`.
pub fn write_csv(
    path: &std::path::Path,
    protocol: &Protocol,
    scores: &[AttemptScore],
) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "attempt",
        "probe_identity",
        "enrolled_identity",
        "genuine",
        "score",
        "raw_score",
    ])?;
    for s in scores {
        let probe = &protocol.attempts[s.attempt].identity;
        let enrolled = &protocol.enrolled[s.enrolled].0;
        w.write_record([
            s.attempt.to_string().as_str(),
            probe,
            enrolled,
            if s.genuine { "1" } else { "0" },
            &s.score.to_string(),
            &s.raw_score.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
