//! Decisions on top of a ranked candidate list, and what they cost in false positives.

use crate::gallery::Candidate;

/// Accept the best person only when their score reaches `threshold` and beats the best
/// other person by at least `margin`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecisionPolicy {
    pub threshold: f32,
    pub margin: f32,
}

impl Default for DecisionPolicy {
    fn default() -> Self {
        DecisionPolicy {
            threshold: openpalm_engine::IDENTIFICATION_THRESHOLD,
            margin: 0.05,
        }
    }
}

/// The outcome of one identification.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// `best` is identified; `margin` is its lead over the runner-up (its score when alone).
    Match { best: Candidate, margin: f32 },
    /// Nobody reaches the threshold (`best` is the top candidate, if any).
    NoMatch { best: Option<Candidate> },
    /// The top two are both plausible: the lead is below the margin.
    Ambiguous { first: Candidate, second: Candidate },
}

impl DecisionPolicy {
    /// Decide from a ranked list (best first, as `Gallery::identify` returns; ask for `k >= 2`
    /// so the margin can be checked).
    pub fn decide(&self, ranked: &[Candidate]) -> Decision {
        let Some(&first) = ranked.first() else {
            return Decision::NoMatch { best: None };
        };
        if first.score < self.threshold {
            return Decision::NoMatch { best: Some(first) };
        }
        match ranked.get(1) {
            Some(&second) if first.score - second.score < self.margin => {
                Decision::Ambiguous { first, second }
            }
            Some(&second) => Decision::Match {
                best: first,
                margin: first.score - second.score,
            },
            None => Decision::Match {
                best: first,
                margin: first.score,
            },
        }
    }
}

/// Expected false positive identification rate of a search against `comparisons` enrolled
/// templates of other persons, each falsely matching independently with probability `fmr`
/// (the false match rate measured at the threshold): `1 - (1 - fmr)^comparisons`. The margin
/// rule can only lower it; independence is the usual assumption and is not guaranteed.
pub fn expected_fpir(fmr: f64, comparisons: u64) -> f64 {
    if !(0.0..=1.0).contains(&fmr) {
        return f64::NAN;
    }
    if fmr >= 1.0 {
        return if comparisons == 0 { 0.0 } else { 1.0 };
    }
    -((comparisons as f64) * (-fmr).ln_1p()).exp_m1()
}
