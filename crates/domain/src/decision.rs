//! The identification decision: match, no match or ambiguous, from the best score of each
//! candidate person.

use serde::{Deserialize, Serialize};

/// The outcome of one identification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Match,
    NoMatch,
    Ambiguous,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Match => "match",
            Decision::NoMatch => "no_match",
            Decision::Ambiguous => "ambiguous",
        }
    }
}

impl std::str::FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "match" => Ok(Decision::Match),
            "no_match" => Ok(Decision::NoMatch),
            "ambiguous" => Ok(Decision::Ambiguous),
            other => Err(format!("unknown decision {other:?}")),
        }
    }
}

/// How scores become a decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecisionPolicy {
    /// At or above: the same palm.
    pub threshold: f32,
    /// When the second-best other person also reaches the threshold and scores within this
    /// margin of the best, the answer is ambiguous rather than a guess.
    pub ambiguity_margin: f32,
}

impl DecisionPolicy {
    /// Decide from candidates sorted by descending score (one entry per person).
    /// Returns the decision and the index of the chosen candidate for a match or an
    /// ambiguous answer (the best one).
    pub fn decide(&self, scores_desc: &[f32]) -> (Decision, Option<usize>) {
        let Some(&best) = scores_desc.first() else {
            return (Decision::NoMatch, None);
        };
        if best < self.threshold {
            return (Decision::NoMatch, None);
        }
        match scores_desc.get(1) {
            Some(&second) if second >= self.threshold && best - second <= self.ambiguity_margin => {
                (Decision::Ambiguous, Some(0))
            }
            _ => (Decision::Match, Some(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: DecisionPolicy = DecisionPolicy {
        threshold: 0.42,
        ambiguity_margin: 0.03,
    };

    #[test]
    fn decisions() {
        assert_eq!(P.decide(&[]).0, Decision::NoMatch);
        assert_eq!(P.decide(&[0.41, 0.40]).0, Decision::NoMatch);
        assert_eq!(P.decide(&[0.42]).0, Decision::Match);
        assert_eq!(P.decide(&[0.60, 0.30]).0, Decision::Match);
        assert_eq!(P.decide(&[0.60, 0.58]).0, Decision::Ambiguous);
        assert_eq!(P.decide(&[0.60, 0.50]).0, Decision::Match);
        // A close second below the threshold is not a rival.
        assert_eq!(P.decide(&[0.43, 0.41]).0, Decision::Match);
    }
}
