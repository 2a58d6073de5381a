//! From frames to an attempt: how the scores of a burst of captures against one enrolled
//! person become one decision score, and how that score is normalised against the rest of the
//! search (cohort normalisation).
//!
//! Fusion: each frame of the attempt is compared with every enrolled sample of the person and
//! keeps its best score (the best-aligned pair); the worst third of the frames is set aside
//! ([`kept_frames`]: of 3 frames the best 2 count) and the attempt's score is the
//! quality-weighted mean of the rest. Averaging is what a burst buys: one badly aligned or
//! blurred frame no longer decides the attempt. Whether to set the worst frame aside is not
//! settled by the data: `openpalm eval --enrol 3 --attempt 3` on `tongji-600-dev` gives an FNMR
//! at the fitted FMR 1e-8 of 2.67% with all 3 frames and 3.78% with the best 2 on the tuning half
//! (tongji000-149), 1.11% and 0.00% on the other half. Fusion does not make two unrelated palms
//! less alike (an impostor's
//! frames are as correlated as the two palms are), which is why the cohort step follows.
//!
//! Cohort normalisation: some palms score above the crowd against everybody (a probe with
//! strong, generic creases) and some enrolled people attract everybody. Both are visible in
//! scores the search computes anyway: the probe's mean score against the scope (T-norm), and the
//! enrolled person's mean score against other enrolled people (Z-norm, kept with the person).
//! The normalised score subtracts each mean's excess over [`COHORT_REFERENCE_MEAN`], so it stays
//! on the raw score's scale; a mean taken over fewer than [`MIN_COHORT`] others is not trusted
//! and counts as the reference (no correction).

/// Typical mean fused score of an attempt against unrelated people: the impostor mean of the
/// raw fused score (all frames averaged) on the tuning half of `tongji-600-dev`, `--enrol 3
/// --attempt 3`, 0.176. With the best 2 of 3 frames the same mean is 0.183 (`raw_score` in
/// `attempts.csv`).
pub const COHORT_REFERENCE_MEAN: f32 = 0.176;

/// Decision threshold on the cohort-normalised attempt score: where the impostor tail fitted on
/// the tuning half of `tongji-600-dev` (`openpalm eval --enrol 3 --attempt 3`, identities
/// tongji000-149) reaches FMR 1e-8 (0.5149 there, 0.4798 on the other half, 0.4870 on the whole
/// set). At 0.515 the fits state FMR 9.9e-9, 1.6e-10 and 4.2e-10, with FNMR 3.78%, 1.11% and
/// 2.56%.
pub const ATTEMPT_THRESHOLD: f32 = 0.515;

/// Fewest other people a cohort mean must be taken over to be used.
pub const MIN_COHORT: usize = 20;

/// One frame of an attempt against one enrolled person: the frame's capture quality and its
/// best score over the person's enrolled samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameScore {
    pub quality: f32,
    pub best: f32,
}

/// How many of an attempt's `frames` are fused: all but the worst third (1 of 1, 2 of 2, 2 of
/// 3, 3 of 4, 4 of 5 and 6).
pub fn kept_frames(frames: usize) -> usize {
    frames - frames / 3
}

/// The attempt's fused score: the quality-weighted mean of the best [`kept_frames`] frames'
/// scores (a plain mean when their qualities are all zero). `None` for an attempt without
/// frames.
pub fn fuse(frames: &[FrameScore]) -> Option<f32> {
    if frames.is_empty() {
        return None;
    }
    let mut sorted = frames.to_vec();
    sorted.sort_by(|a, b| b.best.total_cmp(&a.best));
    let frames = &sorted[..kept_frames(sorted.len())];
    let weight: f32 = frames.iter().map(|f| f.quality.max(0.0)).sum();
    if weight > 0.0 {
        Some(frames.iter().map(|f| f.quality.max(0.0) * f.best).sum::<f32>() / weight)
    } else {
        Some(frames.iter().map(|f| f.best).sum::<f32>() / frames.len() as f32)
    }
}

/// Mean of `scores` after leaving out the `exclude_top` highest (the candidates themselves);
/// `None` when fewer than [`MIN_COHORT`] remain.
pub fn cohort_mean(scores: &[f32], exclude_top: usize) -> Option<f32> {
    if scores.len() < exclude_top + MIN_COHORT {
        return None;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let rest = &sorted[exclude_top..];
    Some(rest.iter().sum::<f32>() / rest.len() as f32)
}

/// The cohort-normalised score: `raw` minus the excess of the probe's and of the enrolled
/// person's cohort means over the reference (a missing mean contributes nothing).
pub fn normalise(raw: f32, probe_mean: Option<f32>, enrolled_mean: Option<f32>) -> f32 {
    let excess = |m: Option<f32>| m.map_or(0.0, |m| m - COHORT_REFERENCE_MEAN);
    raw - excess(probe_mean) - excess(enrolled_mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_weights_by_quality() {
        let f = |quality, best| FrameScore { quality, best };
        assert_eq!(fuse(&[]), None);
        assert_eq!(fuse(&[f(0.8, 0.6)]), Some(0.6));
        let v = fuse(&[f(0.9, 0.6), f(0.3, 0.2)]).unwrap();
        assert!((v - (0.9 * 0.6 + 0.3 * 0.2) / 1.2).abs() < 1e-6);
        assert_eq!(fuse(&[f(0.0, 0.4), f(0.0, 0.6)]), Some(0.5));
    }

    #[test]
    fn the_worst_third_of_the_frames_is_set_aside() {
        let f = |best| FrameScore { quality: 0.5, best };
        assert_eq!([1, 2, 3, 4, 5, 6, 9].map(kept_frames), [1, 2, 2, 3, 4, 4, 6]);
        // A badly aligned frame among three no longer pulls the attempt down.
        let v = fuse(&[f(0.7), f(0.1), f(0.6)]).unwrap();
        assert!((v - 0.65).abs() < 1e-6);
    }

    #[test]
    fn cohort_leaves_out_the_candidates_and_needs_enough_people() {
        let few: Vec<f32> = vec![0.2; MIN_COHORT];
        assert_eq!(cohort_mean(&few, 1), None);
        let mut many: Vec<f32> = vec![0.2; MIN_COHORT + 1];
        many.push(0.9);
        let m = cohort_mean(&many, 1).unwrap();
        assert!(
            (m - 0.2).abs() < 1e-6,
            "the top score is the candidate, not the cohort"
        );
    }

    #[test]
    fn normalisation_removes_only_the_excess() {
        let r = COHORT_REFERENCE_MEAN;
        assert_eq!(normalise(0.5, None, None), 0.5);
        assert_eq!(normalise(0.5, Some(r), Some(r)), 0.5);
        assert!((normalise(0.5, Some(r + 0.05), Some(r + 0.02)) - 0.43).abs() < 1e-6);
        assert!((normalise(0.5, Some(r - 0.05), None) - 0.55).abs() < 1e-6);
    }
}
