//! A model of the impostor score tail, for stating false match rates below what any data set
//! can measure.
//!
//! A score is `s = 1 - 2 h`, with `h` the (normalised) fraction of disagreeing code bits, so
//! `a = (1 + s) / 2` is the fraction that agree. Two unrelated palms agree on each bit by chance;
//! as in iris recognition, the number of agreeing bits behaves like a binomial count with fewer
//! *effective* degrees of freedom `n` than there are bits (neighbouring bits are correlated) and
//! a chance agreement `p` a little above 1/2 (the best of several alignments is kept):
//!
//! `FMR(t) = P(X >= n (1 + t) / 2)`, `X ~ Binomial(n, p)`,
//!
//! extended to real `n` through the regularised incomplete beta function,
//! `P(X >= k) = I_p(k, n - k + 1)`. The two parameters are fitted on measured impostor scores
//! (`openpalm_eval::tail`), the fit is shown against the measured tail down to the smallest
//! rate the data reaches, and only then used below it. On `tongji-600-dev` (17.94 million
//! impostor pairs, `openpalm eval --dataset ../shared/data/tongji-600-dev --input roi`) the
//! fitted FMR is 1.35, 1.02, 0.70, 0.91 and 1.45 times the measured one at 1e-2, 1e-3, 1e-4,
//! 1e-5 and 1e-6 (the last on 17 pairs).
//!
//! Pure numerics: log-space throughout, so rates down to 1e-300 are represented.

/// The fitted binomial tail of impostor scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinomialTail {
    /// Effective degrees of freedom `n`.
    pub dof: f64,
    /// Chance agreement per degree of freedom `p`.
    pub p: f64,
}

impl BinomialTail {
    /// Natural logarithm of the modelled FMR at threshold `t` (a score in [0, 1]).
    pub fn ln_fmr(&self, t: f32) -> f64 {
        let a = ((1.0 + t as f64) / 2.0).clamp(0.0, 1.0);
        let k = self.dof * a;
        if k <= 0.0 {
            return 0.0;
        }
        ln_beta_inc_reg(k, self.dof - k + 1.0, self.p)
    }

    /// The modelled FMR at threshold `t`.
    pub fn fmr(&self, t: f32) -> f64 {
        self.ln_fmr(t).exp()
    }

    /// Expected false positive identification rate of one search among `gallery` unrelated
    /// enrolled people at threshold `t`: `1 - (1 - FMR)^N`, computed without cancellation.
    pub fn fpir(&self, t: f32, gallery: u64) -> f64 {
        fpir_from_fmr(self.fmr(t), gallery)
    }

    /// The smallest threshold in [0, 1] whose modelled FMR is at most `target` (bisection to
    /// 1e-6; 1.0 when even a perfect score would not get there).
    pub fn threshold_for(&self, target: f64) -> f32 {
        let ln_target = target.ln();
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        if self.ln_fmr(hi as f32) > ln_target {
            return 1.0;
        }
        if self.ln_fmr(lo as f32) <= ln_target {
            return 0.0;
        }
        while hi - lo > 1e-6 {
            let mid = 0.5 * (lo + hi);
            if self.ln_fmr(mid as f32) > ln_target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi as f32
    }
}

/// `1 - (1 - fmr)^n` without cancellation for tiny `fmr`.
pub fn fpir_from_fmr(fmr: f64, n: u64) -> f64 {
    if fmr >= 1.0 {
        return 1.0;
    }
    -((n as f64) * (-fmr).ln_1p()).exp_m1()
}

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, g = 7, nine terms; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Continued fraction of the incomplete beta function (modified Lentz), converging for
/// `x < (a + 1) / (a + b + 2)`.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let fix = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / fix(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / fix(1.0 + aa * d);
        c = fix(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / fix(1.0 + aa * d);
        c = fix(1.0 + aa / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// `ln I_x(a, b)`, the logarithm of the regularised incomplete beta function, for `a, b > 0`.
pub fn ln_beta_inc_reg(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let ln_front = a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front - a.ln() + beta_continued_fraction(a, b, x).ln()
    } else {
        // I_x(a, b) = 1 - I_{1-x}(b, a); the subtracted term is small here.
        let rest = (ln_front - b.ln() + beta_continued_fraction(b, a, 1.0 - x).ln()).exp();
        (-rest).ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `P(X >= k)` for integer `n`, summed term by term.
    fn binomial_sf_direct(n: u32, k: u32, p: f64) -> f64 {
        (k..=n)
            .map(|j| {
                let ln_choose =
                    ln_gamma(n as f64 + 1.0) - ln_gamma(j as f64 + 1.0) - ln_gamma((n - j) as f64 + 1.0);
                (ln_choose + j as f64 * p.ln() + (n - j) as f64 * (1.0 - p).ln()).exp()
            })
            .sum()
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            fact *= n as f64;
            let got = ln_gamma(n as f64 + 1.0);
            assert!((got - fact.ln()).abs() < 1e-10 * fact.ln().max(1.0), "n={n}");
        }
        // Γ(1/2) = √π.
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn incomplete_beta_is_the_binomial_tail() {
        for &(n, k, p) in &[
            (10u32, 3u32, 0.5),
            (200, 150, 0.58),
            (250, 200, 0.59),
            (40, 1, 0.1),
            (40, 39, 0.9),
        ] {
            let direct = binomial_sf_direct(n, k, p);
            let via_beta = ln_beta_inc_reg(k as f64, (n - k) as f64 + 1.0, p).exp();
            let rel = (via_beta - direct).abs() / direct;
            assert!(rel < 1e-9, "n={n} k={k} p={p}: {via_beta} vs {direct}");
        }
    }

    #[test]
    fn fmr_falls_with_the_threshold_and_inverts() {
        let tail = BinomialTail { dof: 200.0, p: 0.575 };
        let mut last = 1.0;
        for i in 0..=100 {
            let f = tail.fmr(i as f32 / 100.0);
            assert!(f <= last && f >= 0.0);
            last = f;
        }
        for target in [1e-2, 1e-4, 1e-6, 1e-8, 1e-12] {
            let t = tail.threshold_for(target);
            assert!(tail.fmr(t) <= target * 1.0001, "target {target}");
            assert!(tail.fmr(t - 1e-4) > target, "target {target}: not the smallest");
        }
    }

    #[test]
    fn fpir_grows_with_the_gallery_without_cancellation() {
        assert!((fpir_from_fmr(1e-12, 1_000_000) - 1e-6).abs() < 1e-12);
        assert!((fpir_from_fmr(1e-6, 1_000_000) - (1.0 - (-1.0f64).exp())).abs() < 1e-6);
        assert_eq!(fpir_from_fmr(1.0, 10), 1.0);
        assert_eq!(fpir_from_fmr(0.0, 10), 0.0);
    }
}
