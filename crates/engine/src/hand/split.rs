//! The colour split: [`super::locate`]'s fallback when the first hand mask gives no palm
//! frame because a background object of nearly the hand's colour merged with it.

use super::colour::{log_likelihood_ratio, BackgroundModel, Features, HandModel};
use super::{
    dilate, erode_keep_border, finish_mask, guard_of, pixels, threshold, MaskSource, SegImage, Segmentation,
};

/// Segmentations for a capture whose first mask the palm frame refused, when that mask may
/// hold the hand and a background object of nearly its colour (a door, furniture, a skin-
/// coloured blob touching the fingers): its colours are split in two by 2-means over chroma
/// and a quarter of log-luma, and each half in turn, the brighter first (the reader lights
/// the hand, a few centimetres away, far more than anything behind it), is taken as the hand
/// and the other half as background. Empty when the colours do not fall into two distinct
/// groups. The caller keeps a segmentation only if the palm frame accepts it: the hand's
/// shape, not its colour, decides.
///
/// `first` is the segmentation [`super::segment_image`] made of `img`, so its mask has
/// `img`'s size.
pub(super) fn segment_split<'a>(
    img: &'a SegImage,
    first: &Segmentation,
) -> impl Iterator<Item = Segmentation> + 'a {
    let (feats, (sw, sh)) = (&img.feats, img.size());
    let mask = &first.mask;
    let guard = guard_of(sw, sh);
    // The colours split are those the models called hand, well inside the mask: not the
    // holes the mask's filling closed (background between fingers and the object).
    let called_hand = |i: usize| first.evidence.as_ref().is_none_or(|e| e.data[i] > 0.0);
    let mut core = pixels(&erode_keep_border(mask, guard), true);
    core.retain(|&i| called_hand(i));
    let split = split_colours(feats, &core).map(|groups| (groups, pixels(&dilate(mask, guard), false)));
    // Each split is made only when the one before it did not hold.
    let sources = [MaskSource::SplitBrighter, MaskSource::SplitDarker];
    split.into_iter().flat_map(move |(groups, outside)| {
        (0..2).filter_map(move |k| {
            let (hand_px, other) = (&groups[k], &groups[1 - k]);
            let hand = HandModel::fit(feats, hand_px)?;
            let bg = BackgroundModel::fit(feats, outside.iter().chain(other).copied())?;
            let llr = log_likelihood_ratio(feats, &hand, &bg, 1);
            let raw = threshold(&llr, 0.0);
            (raw.data.iter().sum::<f32>() >= 0.01 * (sw * sh) as f32).then(|| Segmentation {
                mask: finish_mask(&raw),
                scale: img.scale,
                evidence: Some(llr),
                source: sources[k],
            })
        })
    })
}

/// Weight of log-luma against log-chroma when splitting a mask's colours.
const SPLIT_LUMA_WEIGHT: f32 = 0.25;
/// Least separation of the two colour groups: distance of their means over the pooled
/// standard deviation along the line joining them.
const SPLIT_MIN_SEPARATION: f32 = 3.0;
/// Least share of the pixels in each group.
const SPLIT_MIN_SHARE: f32 = 0.1;

/// 2-means of the pixels `idx` over (u, v, SPLIT_LUMA_WEIGHT * l), started from a split at
/// the median luma; the brighter group first. `None` unless both groups hold at least
/// SPLIT_MIN_SHARE of the pixels and lie SPLIT_MIN_SEPARATION apart.
pub(super) fn split_colours(f: &Features, idx: &[usize]) -> Option<[Vec<usize>; 2]> {
    if idx.len() < 100 {
        return None;
    }
    let at = |i: usize| [f.u[i], f.v[i], SPLIT_LUMA_WEIGHT * f.l[i]];
    let mut lum: Vec<f32> = idx.iter().map(|&i| f.l[i]).collect();
    let mid = lum.len() / 2;
    let median = *lum.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut bright: Vec<bool> = idx.iter().map(|&i| f.l[i] > median).collect();
    let mut centres = [[0.0f32; 3]; 2];
    for _ in 0..10 {
        let mut sums = [[0.0f64; 3]; 2];
        let mut counts = [0usize; 2];
        for (&i, &b) in idx.iter().zip(&bright) {
            let k = (!b) as usize;
            counts[k] += 1;
            for (s, v) in sums[k].iter_mut().zip(at(i)) {
                *s += v as f64;
            }
        }
        if counts.contains(&0) {
            return None;
        }
        for k in 0..2 {
            centres[k] = sums[k].map(|s| (s / counts[k] as f64) as f32);
        }
        let d2 = |p: [f32; 3], c: [f32; 3]| (0..3).map(|j| (p[j] - c[j]).powi(2)).sum::<f32>();
        let mut changed = false;
        for (&i, b) in idx.iter().zip(bright.iter_mut()) {
            let p = at(i);
            let nb = d2(p, centres[0]) <= d2(p, centres[1]);
            changed |= nb != *b;
            *b = nb;
        }
        if !changed {
            break;
        }
    }
    // The group with the higher mean luma comes first.
    if centres[1][2] > centres[0][2] {
        bright.iter_mut().for_each(|b| *b = !*b);
        centres.swap(0, 1);
    }
    let dir: Vec<f32> = (0..3).map(|j| centres[0][j] - centres[1][j]).collect();
    let dist = dir.iter().map(|d| d * d).sum::<f32>().sqrt();
    if dist < 1e-6 {
        return None;
    }
    let mut groups = [Vec::new(), Vec::new()];
    let mut var = 0.0f64;
    for (&i, &b) in idx.iter().zip(&bright) {
        let k = (!b) as usize;
        let p = at(i);
        let t: f32 = (0..3).map(|j| (p[j] - centres[k][j]) * dir[j] / dist).sum();
        var += (t * t) as f64;
        groups[k].push(i);
    }
    let sd = (var / idx.len() as f64).sqrt() as f32;
    let share = groups[0].len().min(groups[1].len()) as f32 / idx.len() as f32;
    (share >= SPLIT_MIN_SHARE && dist >= SPLIT_MIN_SEPARATION * sd).then_some(groups)
}
