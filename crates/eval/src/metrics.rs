//! Verification and identification metrics after ISO/IEC 19795-1. Pure functions on scores.
//!
//! Conventions (scores are similarities: higher = more alike; a comparison is a match when
//! `score >= t`):
//! - `FMR(t)`: fraction of impostor comparisons with `score >= t`.
//! - `FNMR(t)`: fraction of genuine comparisons with `score < t`.
//!
//! Both are computed over comparisons between acquired samples only; failures to acquire
//! are reported separately as the FTA rate.
//!
//! The thresholds that matter are the distinct observed scores: between two consecutive
//! distinct scores neither rate changes. Every distinct score (genuine or impostor) is an
//! *operating point*, plus one threshold just above the largest score, where FMR = 0 and
//! FNMR = 1.

use serde::Serialize;

/// Why a metric is undefined for the given scores.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("no genuine comparisons (no identity has two acquired samples): FNMR is undefined")]
    NoGenuine,
    #[error("no impostor comparisons (all acquired samples belong to one identity): FMR is undefined")]
    NoImpostor,
    #[error("score {0} is not a finite number")]
    NotFinite(f32),
    #[error("target false match rate {0} is not in [0, 1]")]
    BadTarget(f64),
    #[error("no probes for rank-1: no identity has more than two acquired samples")]
    NoProbes,
}

/// One threshold with its error rates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OperatingPoint {
    pub threshold: f32,
    pub fmr: f64,
    pub fnmr: f64,
}

/// The equal error rate and where it lies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Eer {
    /// The EER: where the DET polyline (consecutive operating points joined by straight
    /// segments in linear FMR/FNMR space) crosses FMR = FNMR.
    pub eer: f64,
    /// The operating point nearest the crossing: the threshold minimising |FMR - FNMR|
    /// (the lower one on a tie), with its FMR and FNMR.
    pub threshold: f32,
    pub fmr: f64,
    pub fnmr: f64,
}

/// FNMR at the smallest threshold whose FMR does not exceed a target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AtFmr {
    pub target: f64,
    pub threshold: f32,
    pub fmr: f64,
    pub fnmr: f64,
}

/// Count, mean, population standard deviation, minimum and maximum of a score set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScoreStats {
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f32,
    pub max: f32,
}

/// Genuine and impostor scores, sorted, ready for error-rate queries.
#[derive(Clone, Debug)]
pub struct ErrorRates {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

/// The smallest f32 greater than `x` (for finite `x`).
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f32::from_bits(bits + 1)
    } else {
        f32::from_bits(bits - 1)
    }
}

fn sorted_finite(scores: &[f32]) -> Result<Vec<f32>, MetricsError> {
    if let Some(&bad) = scores.iter().find(|s| !s.is_finite()) {
        return Err(MetricsError::NotFinite(bad));
    }
    let mut v = scores.to_vec();
    v.sort_by(f32::total_cmp);
    Ok(v)
}

impl ErrorRates {
    /// Both sets must be non-empty and every score finite.
    pub fn new(genuine: &[f32], impostor: &[f32]) -> Result<ErrorRates, MetricsError> {
        if genuine.is_empty() {
            return Err(MetricsError::NoGenuine);
        }
        if impostor.is_empty() {
            return Err(MetricsError::NoImpostor);
        }
        Ok(ErrorRates {
            genuine: sorted_finite(genuine)?,
            impostor: sorted_finite(impostor)?,
        })
    }

    pub fn genuine_count(&self) -> usize {
        self.genuine.len()
    }

    pub fn impostor_count(&self) -> usize {
        self.impostor.len()
    }

    /// Fraction of impostor scores `>= t`.
    pub fn fmr(&self, t: f32) -> f64 {
        let below = self.impostor.partition_point(|&s| s < t);
        (self.impostor.len() - below) as f64 / self.impostor.len() as f64
    }

    /// Fraction of genuine scores `< t`.
    pub fn fnmr(&self, t: f32) -> f64 {
        self.genuine.partition_point(|&s| s < t) as f64 / self.genuine.len() as f64
    }

    /// The operating point at threshold `t`.
    pub fn at_threshold(&self, t: f32) -> OperatingPoint {
        OperatingPoint {
            threshold: t,
            fmr: self.fmr(t),
            fnmr: self.fnmr(t),
        }
    }

    /// Every operating point in increasing threshold order: each distinct score, then one
    /// threshold just above the largest score (FMR 0, FNMR 1). The first has FMR 1, FNMR 0.
    pub fn operating_points(&self) -> Vec<OperatingPoint> {
        let mut thresholds: Vec<f32> = self.genuine.iter().chain(self.impostor.iter()).copied().collect();
        thresholds.sort_by(f32::total_cmp);
        thresholds.dedup();
        let top = *thresholds.last().expect("both score sets are non-empty");
        thresholds.push(next_up(top));
        thresholds.into_iter().map(|t| self.at_threshold(t)).collect()
    }

    /// The equal error rate.
    ///
    /// Definition: walk the operating points in increasing threshold order (FMR falls from
    /// 1, FNMR rises from 0). Take the first segment between consecutive points where
    /// `d = FMR - FNMR` goes from positive to `<= 0` and interpolate linearly along it to
    /// `d = 0`; the EER is the common value of FMR and FNMR there. The result is unique (if
    /// several points have `d = 0` they share the same FMR and FNMR). The reported threshold
    /// is the segment end with the smaller `|FMR - FNMR|`.
    pub fn eer(&self) -> Eer {
        let points = self.operating_points();
        let d = |p: &OperatingPoint| p.fmr - p.fnmr;
        for w in points.windows(2) {
            let (p, q) = (&w[0], &w[1]);
            let (dp, dq) = (d(p), d(q));
            if dp > 0.0 && dq <= 0.0 {
                let lambda = dp / (dp - dq);
                let eer = p.fmr + lambda * (q.fmr - p.fmr);
                let nearest = if dp <= -dq { p } else { q };
                return Eer {
                    eer,
                    threshold: nearest.threshold,
                    fmr: nearest.fmr,
                    fnmr: nearest.fnmr,
                };
            }
        }
        // The first point has d = 1 and the last d = -1, so a crossing always exists.
        unreachable!("operating points run from FMR 1/FNMR 0 to FMR 0/FNMR 1")
    }

    /// FNMR at the smallest threshold `t` with `FMR(t) <= target`.
    ///
    /// With `N` impostor scores, at most `k = floor(target * N)` of them may reach `t`, so
    /// `t` must lie above the `(k+1)`-th largest impostor score `s` (ties included: every
    /// impostor scoring `s` would be accepted otherwise). The threshold reported is the
    /// smallest observed score above `s` (or the next float above `s` when there is none);
    /// FNMR there is the fraction of genuine scores `<= s`. With `k >= N` every threshold
    /// qualifies: the smallest observed score, FNMR 0.
    pub fn fnmr_at_fmr(&self, target: f64) -> Result<AtFmr, MetricsError> {
        if !(0.0..=1.0).contains(&target) {
            return Err(MetricsError::BadTarget(target));
        }
        let n = self.impostor.len();
        // A relative slack so that e.g. 1e-3 * 1000 counts as 1 despite rounding.
        let k = (target * n as f64 * (1.0 + 1e-12)).floor() as usize;
        let threshold = if k >= n {
            self.genuine[0].min(self.impostor[0])
        } else {
            let s = self.impostor[n - 1 - k];
            let above = |v: &[f32]| v.get(v.partition_point(|&x| x <= s)).copied();
            match (above(&self.genuine), above(&self.impostor)) {
                (Some(g), Some(i)) => g.min(i),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => next_up(s),
            }
        };
        let p = self.at_threshold(threshold);
        Ok(AtFmr {
            target,
            threshold,
            fmr: p.fmr,
            fnmr: p.fnmr,
        })
    }
}

/// Count, mean, population standard deviation (divide by n), min and max. `None` when empty.
pub fn score_stats(scores: &[f32]) -> Option<ScoreStats> {
    if scores.is_empty() {
        return None;
    }
    let n = scores.len() as f64;
    let mean = scores.iter().map(|&s| s as f64).sum::<f64>() / n;
    let var = scores.iter().map(|&s| (s as f64 - mean).powi(2)).sum::<f64>() / n;
    Some(ScoreStats {
        count: scores.len(),
        mean,
        std: var.sqrt(),
        min: scores.iter().copied().fold(f32::INFINITY, f32::min),
        max: scores.iter().copied().fold(f32::NEG_INFINITY, f32::max),
    })
}

/// Median (mean of the two middle values for an even count). `None` when empty or when a
/// value is NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Closed-set rank-1 identification result.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rank1 {
    pub enrolled_identities: usize,
    pub probes: usize,
    pub correct: usize,
    pub rate: f64,
}

/// Closed-set rank-1 identification rate.
///
/// `samples` are the acquired samples as `(path, identity)`; `score(i, j)` compares samples
/// `i` and `j` (indices into `samples`). For each identity, its first two samples in path
/// order are enrolled; every other sample of that identity is a probe. A probe's score for an
/// enrolled identity is the maximum over that identity's enrolled samples. A probe counts as
/// correct only when its own identity scores strictly higher than every other identity (a tie
/// for the best score is a miss).
pub fn rank1<F>(samples: &[(&str, &str)], score: F) -> Result<Rank1, MetricsError>
where
    F: Fn(usize, usize) -> f32,
{
    let mut by_identity: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, (_, identity)) in samples.iter().enumerate() {
        by_identity.entry(identity).or_default().push(i);
    }
    let mut enrolled: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut probes: Vec<(usize, usize)> = Vec::new(); // (sample, index into enrolled)
    for (identity, mut members) in by_identity {
        members.sort_by(|&a, &b| samples[a].0.cmp(samples[b].0));
        let rest = members.split_off(members.len().min(2));
        let slot = enrolled.len();
        enrolled.push((identity, members));
        probes.extend(rest.into_iter().map(|p| (p, slot)));
    }
    if probes.is_empty() {
        return Err(MetricsError::NoProbes);
    }
    let correct = probes
        .iter()
        .filter(|&&(probe, own)| {
            let per_identity = enrolled.iter().map(|(_, members)| {
                members
                    .iter()
                    .map(|&e| score(probe, e))
                    .fold(f32::NEG_INFINITY, f32::max)
            });
            let mut own_score = f32::NEG_INFINITY;
            let mut best_other = f32::NEG_INFINITY;
            for (slot, s) in per_identity.enumerate() {
                if slot == own {
                    own_score = s;
                } else {
                    best_other = best_other.max(s);
                }
            }
            own_score > best_other
        })
        .count();
    Ok(Rank1 {
        enrolled_identities: enrolled.len(),
        probes: probes.len(),
        correct,
        rate: correct as f64 / probes.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn fmr_and_fnmr_count_ties_as_matches() {
        // genuine 0.5 0.5 0.9, impostor 0.1 0.2 0.5 0.5
        let r = ErrorRates::new(&[0.5, 0.9, 0.5], &[0.5, 0.1, 0.5, 0.2]).unwrap();
        // t = 0.5: impostors >= 0.5 are the two 0.5s -> 2/4; genuine < 0.5: none.
        assert!(close(r.fmr(0.5), 0.5));
        assert!(close(r.fnmr(0.5), 0.0));
        // t just above 0.5: no impostor accepted; both genuine 0.5s rejected.
        let t = next_up(0.5);
        assert!(close(r.fmr(t), 0.0));
        assert!(close(r.fnmr(t), 2.0 / 3.0));
        // Extremes.
        assert!(close(r.fmr(0.0), 1.0));
        assert!(close(r.fnmr(0.0), 0.0));
        assert!(close(r.fmr(1.0), 0.0));
        assert!(close(r.fnmr(1.0), 1.0));
    }

    #[test]
    fn operating_points_cover_every_distinct_score() {
        let r = ErrorRates::new(&[0.5, 0.9, 0.5], &[0.5, 0.1, 0.5, 0.2]).unwrap();
        let p = r.operating_points();
        let th: Vec<f32> = p.iter().map(|p| p.threshold).collect();
        assert_eq!(th, vec![0.1, 0.2, 0.5, 0.9, next_up(0.9)]);
        let rates: Vec<(f64, f64)> = p.iter().map(|p| (p.fmr, p.fnmr)).collect();
        let expected = [(1.0, 0.0), (0.75, 0.0), (0.5, 0.0), (0.0, 2.0 / 3.0), (0.0, 1.0)];
        for (got, want) in rates.iter().zip(expected) {
            assert!(
                close(got.0, want.0) && close(got.1, want.1),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn eer_exactly_at_an_operating_point() {
        // genuine 0.6 0.8 0.9; impostor 0.1 0.3 0.7.
        // t=0.6: FMR 1/3 FNMR 0; t=0.7: FMR 1/3 (0.7) FNMR 1/3 (0.6) -> crossing, EER 1/3.
        let r = ErrorRates::new(&[0.6, 0.8, 0.9], &[0.1, 0.3, 0.7]).unwrap();
        let e = r.eer();
        assert!(close(e.eer, 1.0 / 3.0), "{e:?}");
        assert_eq!(e.threshold, 0.7);
        assert!(close(e.fmr, 1.0 / 3.0) && close(e.fnmr, 1.0 / 3.0));
    }

    #[test]
    fn eer_interpolates_between_operating_points() {
        // genuine 0.5 0.9 0.95; impostor 0.2 0.6 0.7 0.8.
        // t=0.7: FMR 2/4, FNMR 1/3, d = +1/6; t=0.8: FMR 1/4, FNMR 1/3, d = -1/12.
        // lambda = (1/6) / (1/6 + 1/12) = 2/3; EER = 1/2 + 2/3 (1/4 - 1/2) = 1/3.
        // Nearest point: |d| 1/12 at t = 0.8.
        let r = ErrorRates::new(&[0.5, 0.9, 0.95], &[0.2, 0.6, 0.7, 0.8]).unwrap();
        let e = r.eer();
        assert!(close(e.eer, 1.0 / 3.0), "{e:?}");
        assert_eq!(e.threshold, 0.8);
        assert!(close(e.fmr, 0.25) && close(e.fnmr, 1.0 / 3.0));
    }

    #[test]
    fn eer_with_ties() {
        // genuine 0.5 0.5 0.9; impostor 0.1 0.2 0.5 0.5.
        // t=0.5: FMR 2/4, FNMR 0, d = 1/2; t=0.9: FMR 0, FNMR 2/3, d = -2/3.
        // lambda = (1/2) / (1/2 + 2/3) = 3/7; EER = 1/2 - 3/7 * 1/2 = 2/7.
        let r = ErrorRates::new(&[0.5, 0.5, 0.9], &[0.1, 0.2, 0.5, 0.5]).unwrap();
        let e = r.eer();
        assert!(close(e.eer, 2.0 / 7.0), "{e:?}");
        assert_eq!(e.threshold, 0.5);
        assert!(close(e.fmr, 0.5) && close(e.fnmr, 0.0));
    }

    #[test]
    fn eer_zero_when_separated_and_one_half_when_all_equal() {
        let r = ErrorRates::new(&[0.8, 0.9], &[0.1, 0.2]).unwrap();
        let e = r.eer();
        assert_eq!(e.eer, 0.0);
        assert_eq!(e.threshold, 0.8);
        // All scores equal: t=0.5 gives FMR 1 FNMR 0; above it FMR 0 FNMR 1 -> EER 1/2.
        let r = ErrorRates::new(&[0.5, 0.5], &[0.5, 0.5, 0.5]).unwrap();
        assert!(close(r.eer().eer, 0.5));
        // Fully inverted: genuine all below impostors. t=0.1: 1/0; t=0.2: FMR 1, FNMR 1/2;
        // t=0.8: FMR 1, FNMR 1 (d=0) -> EER 1.
        let r = ErrorRates::new(&[0.1, 0.2], &[0.8, 0.9]).unwrap();
        assert!(close(r.eer().eer, 1.0));
    }

    #[test]
    fn fnmr_at_fmr_targets() {
        // genuine 0.5 0.9 0.95; impostor 0.2 0.6 0.7 0.8 (N = 4).
        let r = ErrorRates::new(&[0.5, 0.9, 0.95], &[0.2, 0.6, 0.7, 0.8]).unwrap();
        // FMR <= 0.25: k = 1, s = 2nd largest impostor = 0.7, t = 0.8, FMR 1/4, FNMR 1/3.
        let a = r.fnmr_at_fmr(0.25).unwrap();
        assert_eq!(a.threshold, 0.8);
        assert!(close(a.fmr, 0.25) && close(a.fnmr, 1.0 / 3.0), "{a:?}");
        // FMR <= 0.1: k = 0, s = 0.8, t = 0.9 (next observed score), FMR 0, FNMR 1/3.
        let a = r.fnmr_at_fmr(0.1).unwrap();
        assert_eq!(a.threshold, 0.9);
        assert!(close(a.fmr, 0.0) && close(a.fnmr, 1.0 / 3.0), "{a:?}");
        let zero = r.fnmr_at_fmr(0.0).unwrap();
        assert_eq!(
            (zero.threshold, zero.fmr, zero.fnmr),
            (a.threshold, a.fmr, a.fnmr)
        );
        // FMR <= 0.5: k = 2, s = 0.6, t = 0.7: FMR 2/4, FNMR 1/3.
        let a = r.fnmr_at_fmr(0.5).unwrap();
        assert_eq!(a.threshold, 0.7);
        assert!(close(a.fmr, 0.5) && close(a.fnmr, 1.0 / 3.0), "{a:?}");
        // FMR <= 1: every threshold qualifies: the smallest score, FNMR 0.
        let a = r.fnmr_at_fmr(1.0).unwrap();
        assert_eq!(a.threshold, 0.2);
        assert!(close(a.fmr, 1.0) && close(a.fnmr, 0.0), "{a:?}");
        assert_eq!(r.fnmr_at_fmr(1.5), Err(MetricsError::BadTarget(1.5)));
        assert!(r.fnmr_at_fmr(f64::NAN).is_err());
    }

    #[test]
    fn fnmr_at_fmr_with_tied_impostors() {
        // genuine 0.5 0.5 0.9; impostor 0.1 0.2 0.5 0.5.
        // FMR <= 0.25: k = 1; 2nd largest impostor is 0.5, tied with the largest, so t = 0.5
        // would accept both (FMR 1/2). t must be above 0.5: next observed score 0.9.
        // FMR 0, FNMR 2/3.
        let r = ErrorRates::new(&[0.5, 0.5, 0.9], &[0.1, 0.2, 0.5, 0.5]).unwrap();
        let a = r.fnmr_at_fmr(0.25).unwrap();
        assert_eq!(a.threshold, 0.9);
        assert!(close(a.fmr, 0.0) && close(a.fnmr, 2.0 / 3.0), "{a:?}");
    }

    #[test]
    fn fnmr_at_fmr_above_every_score() {
        // Largest impostor above every genuine: t is the next float above it; FNMR 1.
        let r = ErrorRates::new(&[0.3, 0.4], &[0.1, 0.9]).unwrap();
        let a = r.fnmr_at_fmr(0.0).unwrap();
        assert_eq!(a.threshold, next_up(0.9));
        assert!(close(a.fmr, 0.0) && close(a.fnmr, 1.0), "{a:?}");
    }

    #[test]
    fn fnmr_at_fmr_rounding() {
        // 1000 impostors at 0.001, 0.002, ..., 1.000; FMR <= 1e-3 allows exactly one.
        let imp: Vec<f32> = (1..=1000).map(|i| i as f32 / 1000.0).collect();
        let r = ErrorRates::new(&[0.9995], &imp).unwrap();
        let a = r.fnmr_at_fmr(1e-3).unwrap();
        assert_eq!(a.threshold, 0.9995);
        assert!(close(a.fmr, 1e-3));
        assert!(close(a.fnmr, 0.0));
    }

    #[test]
    fn empty_and_invalid_sets_are_typed_errors() {
        assert_eq!(ErrorRates::new(&[], &[0.1]).unwrap_err(), MetricsError::NoGenuine);
        assert_eq!(
            ErrorRates::new(&[0.1], &[]).unwrap_err(),
            MetricsError::NoImpostor
        );
        assert!(matches!(
            ErrorRates::new(&[f32::NAN], &[0.1]),
            Err(MetricsError::NotFinite(_))
        ));
        assert!(matches!(
            ErrorRates::new(&[0.2], &[f32::INFINITY]),
            Err(MetricsError::NotFinite(_))
        ));
    }

    #[test]
    fn stats_and_median() {
        // 0.2 0.4 0.6: mean 0.4, variance ((0.2)^2 + 0 + (0.2)^2) / 3 = 0.08/3.
        let s = score_stats(&[0.2, 0.4, 0.6]).unwrap();
        assert_eq!(s.count, 3);
        assert!((s.mean - 0.4).abs() < 1e-7);
        assert!((s.std - (0.08f64 / 3.0).sqrt()).abs() < 1e-7);
        assert_eq!((s.min, s.max), (0.2, 0.6));
        assert_eq!(score_stats(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    fn score_table<'a>(pairs: &'a [(&'a str, &'a str, f32)]) -> impl Fn(&str, &str) -> f32 + 'a {
        move |a, b| {
            pairs
                .iter()
                .find(|(x, y, _)| (*x == a && *y == b) || (*x == b && *y == a))
                .map_or(0.0, |p| p.2)
        }
    }

    #[test]
    fn rank1_by_hand() {
        // A: a/1 a/2 enrolled (path order even though a/3 comes first), a/3 probe.
        // B: b/1 b/2 enrolled, b/3 and b/4 probes. C: c/1 enrolled, no probe.
        let samples = [
            ("a/3", "A"),
            ("a/1", "A"),
            ("a/2", "A"),
            ("b/1", "B"),
            ("b/2", "B"),
            ("b/3", "B"),
            ("c/1", "C"),
            ("b/4", "B"),
        ];
        let table = [
            // a/3: A = max(0.4, 0.7) = 0.7 > B 0.65, C 0.69 -> correct.
            ("a/3", "a/1", 0.4),
            ("a/3", "a/2", 0.7),
            ("a/3", "b/1", 0.6),
            ("a/3", "b/2", 0.65),
            ("a/3", "c/1", 0.69),
            // b/3: B = 0.5 < C 0.55 -> miss.
            ("b/3", "b/1", 0.5),
            ("b/3", "b/2", 0.5),
            ("b/3", "a/1", 0.3),
            ("b/3", "a/2", 0.2),
            ("b/3", "c/1", 0.55),
            // b/4: B = 0.6 ties A = 0.6 -> miss.
            ("b/4", "b/1", 0.6),
            ("b/4", "b/2", 0.1),
            ("b/4", "a/1", 0.6),
            ("b/4", "a/2", 0.0),
            ("b/4", "c/1", 0.2),
            // Probe-to-probe scores must not matter.
            ("a/3", "b/3", 1.0),
            ("b/3", "b/4", 1.0),
        ];
        let lookup = score_table(&table);
        let r = rank1(&samples, |i, j| lookup(samples[i].0, samples[j].0)).unwrap();
        assert_eq!(r.enrolled_identities, 3);
        assert_eq!(r.probes, 3);
        assert_eq!(r.correct, 1);
        assert!(close(r.rate, 1.0 / 3.0));
    }

    #[test]
    fn rank1_without_probes_is_typed() {
        let samples = [("a/1", "A"), ("a/2", "A"), ("b/1", "B")];
        assert_eq!(rank1(&samples, |_, _| 0.5).unwrap_err(), MetricsError::NoProbes);
        assert_eq!(rank1(&[], |_, _| 0.5).unwrap_err(), MetricsError::NoProbes);
    }
}
