//! Fitting the impostor score tail ([`openpalm_engine::tail::BinomialTail`]) on measured
//! scores, and checking the fit against the measured tail before anything is extrapolated.
//!
//! Fit: thresholds are taken at measured FMR levels spaced evenly in log10 from [`FIT_FROM`]
//! down to the smallest level at which at least [`MIN_COUNT_FIT`] impostor scores remain above
//! the threshold (below that the measured rate is mostly counting noise). The two parameters
//! minimise the squared difference of log10 FMR, model against measured, over those points.
//! Check: at every decade from 1e-1 down to the smallest the data reaches, the measured FMR,
//! the count behind it and the model's FMR; the fit "matches where it can be measured" when
//! the ratio stays within a factor of 2 at every decade backed by [`MIN_COUNT_CHECK`] or more
//! impostor scores.

use crate::metrics::ErrorRates;
use openpalm_engine::tail::BinomialTail;
use serde::Serialize;
use std::collections::BTreeMap;

/// Highest FMR level fitted.
pub const FIT_FROM: f64 = 1e-2;
/// Impostor scores that must remain above the lowest fitted threshold.
pub const MIN_COUNT_FIT: usize = 20;
/// Impostor scores behind a check point for it to count in [`TailFit::max_ratio_measured`].
pub const MIN_COUNT_CHECK: usize = 10;
/// Points fitted.
const FIT_POINTS: usize = 20;
/// The FMR levels at which fitted thresholds are reported, with their keys.
pub const FITTED_TARGETS: [(&str, f64); 5] = [
    ("1e-5", 1e-5),
    ("1e-6", 1e-6),
    ("1e-7", 1e-7),
    ("1e-8", 1e-8),
    ("1e-9", 1e-9),
];

/// Why no tail can be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TailError {
    #[error(
        "too few impostor scores to fit the tail: {got}, at least {need} needed \
         ({MIN_COUNT_FIT} above a threshold at FMR {FIT_FROM})"
    )]
    TooFew { got: usize, need: usize },
}

/// One check point: a measured decade of the tail against the model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckPoint {
    /// The decade (target FMR).
    pub level: f64,
    /// The threshold: the smallest observed score with at most `level` of impostors at or
    /// above it (as in `fnmr_at_fmr`).
    pub threshold: f32,
    /// Impostor scores at or above the threshold.
    pub count: usize,
    pub measured_fmr: f64,
    pub fitted_fmr: f64,
    /// fitted / measured.
    pub ratio: f64,
}

/// A fitted tail with its check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TailFit {
    /// `binomial`: agreeing bits ~ Binomial(dof, p) (see the engine's `tail` module).
    pub model: &'static str,
    pub dof: f64,
    pub p: f64,
    /// Fitted range of measured FMR (from, to) and the points in it.
    pub fitted_from_fmr: f64,
    pub fitted_to_fmr: f64,
    pub points_fitted: usize,
    /// Root mean square error of log10 FMR over the fitted points.
    pub rms_log10_error: f64,
    pub check: Vec<CheckPoint>,
    /// Largest factor between model and measurement (max of ratio and 1/ratio) over check
    /// points backed by at least [`MIN_COUNT_CHECK`] scores.
    pub max_ratio_measured: f64,
    /// Threshold at which the model's FMR reaches each of [`FITTED_TARGETS`].
    pub threshold_at_fitted_fmr: BTreeMap<String, f32>,
}

impl TailFit {
    pub fn tail(&self) -> BinomialTail {
        BinomialTail {
            dof: self.dof,
            p: self.p,
        }
    }
}

/// Minimise `f` over [lo, hi] by golden-section search (f unimodal there).
fn golden(lo: f64, hi: f64, iters: usize, f: impl Fn(f64) -> f64) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..iters {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    0.5 * (a + b)
}

/// Fit the binomial tail on the impostor scores of `rates` (already sorted there). Thresholds
/// and measured rates are [`ErrorRates::fnmr_at_fmr`]'s and [`ErrorRates::fmr`]'s, so the fit
/// and the check use the same operating points as the rest of the report.
pub fn fit(rates: &ErrorRates) -> Result<TailFit, TailError> {
    let n = rates.impostor_count();
    let need = (MIN_COUNT_FIT as f64 / FIT_FROM).ceil() as usize;
    if n < need {
        return Err(TailError::TooFew { got: n, need });
    }
    // Levels are in (0, 1], so `fnmr_at_fmr` cannot refuse them.
    let at = |level: f64| rates.fnmr_at_fmr(level).ok();
    let lowest = MIN_COUNT_FIT as f64 / n as f64;
    let (l0, l1) = (FIT_FROM.log10(), lowest.log10());
    let mut points: Vec<(f32, f64)> = (0..FIT_POINTS)
        .filter_map(|i| at(10f64.powf(l0 + (l1 - l0) * i as f64 / (FIT_POINTS - 1) as f64)))
        .map(|a| (a.threshold, a.fmr))
        .filter(|&(_, m)| m > 0.0)
        .collect();
    points.dedup_by(|a, b| a.0 == b.0);

    let loss = |ln_dof: f64, p: f64| -> f64 {
        let tail = BinomialTail { dof: ln_dof.exp(), p };
        points
            .iter()
            .map(|&(t, m)| {
                let e = tail.ln_fmr(t).max(-700.0) / std::f64::consts::LN_10 - m.log10();
                e * e
            })
            .sum()
    };
    // Coarse grid, then nested golden-section refinement around the best cell.
    let (ln_lo, ln_hi) = (5f64.ln(), 20_000f64.ln());
    let (p_lo, p_hi) = (0.30, 0.95);
    let (gn, gp) = (40usize, 66usize);
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for i in 0..gn {
        let ln_dof = ln_lo + (ln_hi - ln_lo) * i as f64 / (gn - 1) as f64;
        for j in 0..gp {
            let p = p_lo + (p_hi - p_lo) * j as f64 / (gp - 1) as f64;
            let l = loss(ln_dof, p);
            if l < best.0 {
                best = (l, ln_dof, p);
            }
        }
    }
    let (dn, dp) = ((ln_hi - ln_lo) / (gn - 1) as f64, (p_hi - p_lo) / (gp - 1) as f64);
    let best_p = |ln_dof: f64| golden(best.2 - 2.0 * dp, best.2 + 2.0 * dp, 60, |p| loss(ln_dof, p));
    let ln_dof = golden(best.1 - 2.0 * dn, best.1 + 2.0 * dn, 60, |x| loss(x, best_p(x)));
    let p = best_p(ln_dof);
    let tail = BinomialTail { dof: ln_dof.exp(), p };
    let rms = (loss(ln_dof, p) / points.len() as f64).sqrt();

    let mut check = Vec::new();
    for level in (1..).map(|k| 10f64.powi(-k)).take_while(|l| l * n as f64 >= 1.0) {
        if let Some(a) = at(level) {
            let (m, f) = (a.fmr, tail.fmr(a.threshold));
            check.push(CheckPoint {
                level,
                threshold: a.threshold,
                count: (m * n as f64).round() as usize,
                measured_fmr: m,
                fitted_fmr: f,
                ratio: if m > 0.0 { f / m } else { f64::INFINITY },
            });
        }
    }
    let max_ratio_measured = check
        .iter()
        .filter(|c| c.count >= MIN_COUNT_CHECK)
        .map(|c| c.ratio.max(1.0 / c.ratio))
        .fold(1.0, f64::max);
    let threshold_at_fitted_fmr = FITTED_TARGETS
        .iter()
        .map(|&(k, v)| (k.to_string(), tail.threshold_for(v)))
        .collect();
    Ok(TailFit {
        model: "binomial",
        dof: tail.dof,
        p: tail.p,
        fitted_from_fmr: points.first().map_or(FIT_FROM, |p| p.1),
        fitted_to_fmr: points.last().map_or(lowest, |p| p.1),
        points_fitted: points.len(),
        rms_log10_error: rms,
        check,
        max_ratio_measured,
        threshold_at_fitted_fmr,
    })
}

/// The gallery sizes `fpir_expected` is keyed by.
pub const FPIR_GALLERIES: [u64; 4] = [10_000, 100_000, 1_000_000, 10_000_000];

/// FPIR expected at threshold `t` for each of [`FPIR_GALLERIES`], keyed by the size.
pub fn fpir_expected(tail: &BinomialTail, t: f32) -> BTreeMap<String, f64> {
    FPIR_GALLERIES
        .iter()
        .map(|&g| (g.to_string(), tail.fpir(t, g)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores drawn exactly from the model (deterministic inverse-CDF sampling on a grid):
    /// the fit must recover the parameters and match its own tail.
    #[test]
    fn recovers_a_binomial_tail() {
        let truth = BinomialTail { dof: 220.0, p: 0.58 };
        // Binomial(220, 0.58) counts k, as scores s = 2k/n - 1, with exact frequencies.
        let n_scores = 400_000usize;
        let dof = 220u32;
        let mut scores = Vec::with_capacity(n_scores);
        let ln_pmf = |k: u32| {
            use openpalm_engine::tail::ln_gamma;
            ln_gamma(dof as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((dof - k) as f64 + 1.0)
                + k as f64 * truth.p.ln()
                + (dof - k) as f64 * (1.0 - truth.p).ln()
        };
        let mut cum = 0.0;
        let mut emitted = 0usize;
        for k in 0..=dof {
            cum += ln_pmf(k).exp();
            let upto = ((cum * n_scores as f64).round() as usize).min(n_scores);
            for _ in emitted..upto {
                scores.push(2.0 * k as f32 / dof as f32 - 1.0);
            }
            emitted = upto;
        }
        let fit = fit(&ErrorRates::new(&[1.0], &scores).unwrap()).unwrap();
        assert!((fit.p - 0.58).abs() < 0.03, "p {}", fit.p);
        assert!((fit.dof / 220.0 - 1.0).abs() < 0.25, "dof {}", fit.dof);
        assert!(fit.max_ratio_measured < 2.0, "{:?}", fit.check);
        assert!(fit.threshold_at_fitted_fmr["1e-8"] > fit.threshold_at_fitted_fmr["1e-6"]);
    }

    #[test]
    fn refuses_too_few_scores() {
        let rates = ErrorRates::new(&[1.0], &[0.1; 100]).unwrap();
        assert!(matches!(fit(&rates), Err(TailError::TooFew { got: 100, .. })));
    }

    #[test]
    fn fpir_is_keyed_by_gallery_size() {
        let tail = BinomialTail { dof: 220.0, p: 0.58 };
        let t = tail.threshold_for(1e-8);
        let f = fpir_expected(&tail, t);
        assert_eq!(
            f.keys().cloned().collect::<Vec<_>>(),
            ["10000", "100000", "1000000", "10000000"]
        );
        assert!(f["1000000"] <= 0.0101 && f["1000000"] > 0.005, "{f:?}");
        assert!(f["10000"] < f["100000"] && f["100000"] < f["1000000"]);
    }
}
