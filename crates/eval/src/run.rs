//! The evaluation runner: extract every image of a dataset (in parallel), score every
//! unordered pair of acquired samples (in parallel), and time extraction and matching on one
//! core. Returns everything in memory; [`crate::report`] turns it into files.

use crate::dataset::Dataset;
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use openpalm_engine::{Engine, InputKind, PreparedTemplate, Template};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Reason code recorded when an image file cannot be read from disk.
pub const UNREADABLE_FILE: &str = "unreadable_file";

/// Runner settings.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub input: InputKind,
    /// Show progress bars on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Images re-extracted serially on one thread to time extraction.
    pub extract_timing_images: usize,
    /// Pairs re-scored serially on one thread to time matching.
    pub match_timing_pairs: usize,
}

impl RunConfig {
    pub fn new(input: InputKind) -> RunConfig {
        RunConfig {
            input,
            progress: false,
            extract_timing_images: 50,
            match_timing_pairs: 2000,
        }
    }
}

/// The name used for an input kind in files (`roi`, `hand`).
pub fn input_name(input: InputKind) -> &'static str {
    match input {
        InputKind::Roi => "roi",
        InputKind::Hand => "hand",
    }
}

/// A sample that produced a template (the templates themselves are dropped once scored).
#[derive(Clone, Debug, PartialEq)]
pub struct Acquired {
    /// Path exactly as in the labels file.
    pub path: String,
    pub identity: String,
    /// Acquisition session, as in the labels file.
    pub session: Option<String>,
    /// The template's capture quality in [0, 1].
    pub quality: f32,
}

/// A sample that did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    /// Stable reason code: the engine's `ExtractError::code()`, or [`UNREADABLE_FILE`].
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}

/// One comparison: indices into [`EvalResult::acquired`], `a < b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub genuine: bool,
    pub score: f32,
}

/// One-core timings.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timing {
    /// Median wall time of one extraction (decode included), timed serially on one thread.
    pub extract_ms_median: Option<f64>,
    pub extract_timed_images: usize,
    /// Median per-image wall time during the parallel pass (contended; for reference).
    pub extract_ms_median_parallel: Option<f64>,
    /// Median wall time of one 1:1 comparison (alignment search included) on templates
    /// packed and prepared once, as a gallery holds them; timed serially on one thread.
    pub match_us_median: Option<f64>,
    /// The same pairs from plain [`Template`]s, packing and preparing both sides per call.
    pub match_us_median_from_templates: Option<f64>,
    pub match_timed_pairs: usize,
    /// Threads used by the parallel passes.
    pub threads: usize,
    pub extract_wall_s: f64,
    pub score_wall_s: f64,
}

/// Everything an evaluation produced.
#[derive(Clone, Debug)]
pub struct EvalResult {
    pub dataset: String,
    pub labels: String,
    pub input: InputKind,
    pub images: usize,
    pub identities: usize,
    /// Acquired samples, in labels-file order.
    pub acquired: Vec<Acquired>,
    /// Failed samples, in labels-file order.
    pub failures: Vec<Failure>,
    /// Every unordered pair of acquired samples, ordered by (a, b).
    pub pairs: Vec<Pair>,
    pub timing: Timing,
    /// Algorithm identifier of the templates (the engine's current one when none was
    /// acquired).
    pub algorithm: u16,
}

impl EvalResult {
    pub fn genuine_scores(&self) -> Vec<f32> {
        self.pairs.iter().filter(|p| p.genuine).map(|p| p.score).collect()
    }

    pub fn impostor_scores(&self) -> Vec<f32> {
        self.pairs
            .iter()
            .filter(|p| !p.genuine)
            .map(|p| p.score)
            .collect()
    }

    /// Failure-to-acquire rate: failures / images.
    pub fn fta_rate(&self) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            self.failures.len() as f64 / self.images as f64
        }
    }

    /// Score of acquired samples `i` and `j` (`i != j`), from the pair list.
    pub fn pair_score(&self, i: usize, j: usize) -> f32 {
        let (a, b) = if i < j { (i, j) } else { (j, i) };
        let n = self.acquired.len();
        // Pairs are laid out row by row: row a holds (a, a+1..n).
        let row_start = a * n - a * (a + 1) / 2;
        self.pairs[row_start + (b - a - 1)].score
    }
}

fn progress_bar(show: bool, len: usize, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>9} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})")
    {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Up to `k` indices spread evenly over `0..n`.
fn spread(n: usize, k: usize) -> Vec<usize> {
    if n == 0 || k == 0 {
        return Vec::new();
    }
    let k = k.min(n);
    (0..k).map(|i| i * n / k).collect()
}

/// Run the evaluation of `dataset` with `engine`.
pub fn run(engine: &Engine, dataset: &Dataset, config: &RunConfig) -> EvalResult {
    let input = config.input;
    let samples = &dataset.samples;

    // Extraction, in parallel.
    let started = Instant::now();
    let pb = progress_bar(config.progress, samples.len(), "extract");
    let outcomes: Vec<(Result<Template, Failure>, Duration)> = samples
        .par_iter()
        .progress_with(pb.clone())
        .map(|sample| {
            let t0 = Instant::now();
            let outcome = match std::fs::read(dataset.image_path(sample)) {
                Err(e) => Err(Failure {
                    path: sample.path.clone(),
                    reason: UNREADABLE_FILE.to_string(),
                    message: e.to_string(),
                }),
                Ok(bytes) => engine
                    .extract(&bytes, input)
                    .map(|x| x.template)
                    .map_err(|e| Failure {
                        path: sample.path.clone(),
                        reason: e.code().to_string(),
                        message: e.to_string(),
                    }),
            };
            (outcome, t0.elapsed())
        })
        .collect();
    pb.finish_and_clear();
    let extract_wall_s = started.elapsed().as_secs_f64();

    let parallel_ms: Vec<f64> = outcomes.iter().map(|(_, d)| ms(*d)).collect();
    let mut acquired = Vec::new();
    let mut templates = Vec::new();
    let mut failures = Vec::new();
    for (sample, (outcome, _)) in samples.iter().zip(outcomes) {
        match outcome {
            Ok(template) => {
                acquired.push(Acquired {
                    path: sample.path.clone(),
                    identity: sample.identity.clone(),
                    session: sample.session.clone(),
                    quality: template.quality,
                });
                templates.push(template);
            }
            Err(f) => failures.push(f),
        }
    }

    // Every template packed and prepared once (as a gallery holds them), so that a pair costs
    // only the search; the scores are exactly `Engine::score`'s.
    let prepared: Vec<Option<PreparedTemplate>> = templates.par_iter().map(|t| engine.prepare(t)).collect();
    let score_pair = |a: usize, b: usize| match (&prepared[a], &prepared[b]) {
        (Some(pa), Some(pb)) => engine.compare_prepared(pa, pb).score,
        _ => engine.score(&templates[a], &templates[b]),
    };

    // Scores of every unordered pair, in parallel, one row per task.
    let started = Instant::now();
    let n = acquired.len();
    let pb = progress_bar(config.progress, n, "score");
    let pairs: Vec<Pair> = (0..n)
        .into_par_iter()
        .progress_with(pb.clone())
        .flat_map_iter(|a| {
            let (acquired, score_pair) = (&acquired, &score_pair);
            (a + 1..n).map(move |b| Pair {
                a: a as u32,
                b: b as u32,
                genuine: acquired[a].identity == acquired[b].identity,
                score: score_pair(a, b),
            })
        })
        .collect();
    pb.finish_and_clear();
    let score_wall_s = started.elapsed().as_secs_f64();

    // One-core timings, serially on this thread.
    let extract_serial = time_extraction(engine, dataset, input, &acquired, config);
    let timed = spread(pairs.len(), config.match_timing_pairs);
    let match_serial: Vec<f64> = timed
        .iter()
        .map(|&k| {
            let (a, b) = (pairs[k].a as usize, pairs[k].b as usize);
            let t0 = Instant::now();
            black_box(score_pair(black_box(a), black_box(b)));
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    // The same pairs from plain templates: packing and preparing both sides every time.
    let match_templates_serial: Vec<f64> = timed
        .iter()
        .map(|&k| {
            let (a, b) = (pairs[k].a as usize, pairs[k].b as usize);
            let t0 = Instant::now();
            black_box(engine.score(black_box(&templates[a]), black_box(&templates[b])));
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();

    EvalResult {
        dataset: dataset.name.clone(),
        labels: dataset.labels_path.display().to_string(),
        input,
        images: samples.len(),
        identities: dataset.identities(),
        algorithm: templates
            .first()
            .map_or(openpalm_engine::template::ALGORITHM_ID, |t| t.algorithm),
        acquired,
        failures,
        pairs,
        timing: Timing {
            extract_ms_median: crate::metrics::median(&extract_serial),
            extract_timed_images: extract_serial.len(),
            extract_ms_median_parallel: crate::metrics::median(&parallel_ms),
            match_us_median: crate::metrics::median(&match_serial),
            match_us_median_from_templates: crate::metrics::median(&match_templates_serial),
            match_timed_pairs: match_serial.len(),
            threads: rayon::current_num_threads(),
            extract_wall_s,
            score_wall_s,
        },
    }
}

/// Per-image extraction times (ms) on this thread, over a spread sample of acquired images
/// (all images when none was acquired). Files are read before the clock starts.
fn time_extraction(
    engine: &Engine,
    dataset: &Dataset,
    input: InputKind,
    acquired: &[Acquired],
    config: &RunConfig,
) -> Vec<f64> {
    let paths: Vec<&str> = if acquired.is_empty() {
        dataset.samples.iter().map(|s| s.path.as_str()).collect()
    } else {
        acquired.iter().map(|a| a.path.as_str()).collect()
    };
    spread(paths.len(), config.extract_timing_images)
        .into_iter()
        .filter_map(|k| std::fs::read(dataset.root.join(paths[k])).ok())
        .map(|bytes| {
            let t0 = Instant::now();
            let _ = black_box(engine.extract(black_box(&bytes), input));
            ms(t0.elapsed())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_even_and_bounded() {
        assert_eq!(spread(10, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread(3, 50), vec![0, 1, 2]);
        assert!(spread(0, 5).is_empty());
        assert!(spread(5, 0).is_empty());
    }
}
