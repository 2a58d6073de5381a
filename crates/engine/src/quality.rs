//! Capture quality: measured components, a combined score in [0, 1], and the typed reason
//! when a capture is refused.
//!
//! Each component is a ramp from a refusal level (0) to a level at which it no longer costs
//! anything (1). The levels are physical (brightness, fraction of the crop that is palm,
//! relative fine-detail energy), chosen once for all sensors, not per data set.

use crate::error::AcquireFailure;
use crate::plane::Plane;

/// Measured quality of a normalised palm region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// Combined score in [0, 1] (geometric mean of the components).
    pub score: f32,
    /// Median brightness of the palm, in [0, 1].
    pub brightness: f32,
    /// Fraction of the palm pixels that are clipped white.
    pub saturated: f32,
    /// Fraction of the region that is palm (not background, not clipped).
    pub coverage: f32,
    /// Fine-detail energy relative to the region's contrast (low = blurred).
    pub sharpness: f32,
    /// Strength of oriented line structure (low = no palm texture).
    pub texture: f32,
    /// Component scores in [0, 1]: exposure, coverage, sharpness, texture.
    pub exposure_score: f32,
    pub coverage_score: f32,
    pub sharpness_score: f32,
    pub texture_score: f32,
}

/// Refusal and comfort levels of each component.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityConfig {
    pub too_dark: f32,
    pub dark_ok: f32,
    pub too_bright: f32,
    pub bright_ok: f32,
    pub max_saturated: f32,
    pub min_coverage: f32,
    pub coverage_ok: f32,
    pub min_sharpness: f32,
    pub sharpness_ok: f32,
    pub min_texture: f32,
    pub texture_ok: f32,
    /// Refuse any capture whose combined score is below this.
    pub min_score: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            too_dark: 0.08,
            dark_ok: 0.2,
            too_bright: 0.93,
            bright_ok: 0.8,
            max_saturated: 0.25,
            min_coverage: 0.88,
            coverage_ok: 0.97,
            min_sharpness: 0.02,
            sharpness_ok: 0.06,
            min_texture: 0.15,
            texture_ok: 0.4,
            min_score: 0.2,
        }
    }
}

fn ramp(v: f32, lo: f32, hi: f32) -> f32 {
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// Background mask of a region: 1 where the pixel is palm, 0 where it is far darker than
/// the palm (background, shadow past the hand edge) or clipped white.
pub fn palm_mask(region: &Plane) -> (Plane, f32) {
    let mut v: Vec<f32> = region.data.clone();
    let mid = v.len() / 2;
    let median = *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1;
    let dark = 0.45 * median;
    let mask = Plane {
        width: region.width,
        height: region.height,
        data: region
            .data
            .iter()
            .map(|&p| if p > dark && p < 0.985 { 1.0 } else { 0.0 })
            .collect(),
    };
    (mask, median)
}

/// Measure the quality of a palm region.
///
/// `region`: the line channel of the ROI in [0, 1] at any size; `work`: the same region
/// contrast-normalised at the coder's working size; `mask`/`median` from [`palm_mask`];
/// `line_energy`: the coder's mean strongest-orientation response relative to the mean response.
pub fn measure(region: &Plane, mask: &Plane, median: f32, work: &Plane, line_energy: f32) -> Quality {
    let n = region.data.len() as f32;
    let coverage = mask.data.iter().sum::<f32>() / n;
    let saturated = region.data.iter().filter(|&&p| p >= 0.985).count() as f32 / n;
    // Sharpness: energy of the finest detail (difference of the image and a 1-pixel blur)
    // relative to the overall contrast of the normalised (unit-variance) region.
    let blurred = work.gaussian_blur(1.0);
    let fine = work
        .data
        .iter()
        .zip(&blurred.data)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        / work.data.len() as f32;
    let sharpness = fine.sqrt();
    let c = QualityConfig::default();
    let exposure_score =
        ramp(median, c.too_dark, c.dark_ok).min(1.0 - ramp(median, c.bright_ok, c.too_bright));
    let coverage_score = ramp(coverage, c.min_coverage, c.coverage_ok);
    let sharpness_score = ramp(sharpness, c.min_sharpness, c.sharpness_ok);
    let texture_score = ramp(line_energy, c.min_texture, c.texture_ok);
    let score = (exposure_score.max(1e-3)
        * coverage_score.max(1e-3)
        * sharpness_score.max(1e-3)
        * texture_score.max(1e-3))
    .powf(0.25);
    Quality {
        score: if score < 0.01 { 0.0 } else { score },
        brightness: median,
        saturated,
        coverage,
        sharpness,
        texture: line_energy,
        exposure_score,
        coverage_score,
        sharpness_score,
        texture_score,
    }
}

impl Quality {
    /// The reason to refuse this capture, if any, most actionable first.
    pub fn refusal(&self, c: &QualityConfig) -> Option<AcquireFailure> {
        if self.brightness < c.too_dark {
            return Some(AcquireFailure::TooDark);
        }
        if self.brightness > c.too_bright || self.saturated > c.max_saturated {
            return Some(AcquireFailure::TooBright);
        }
        if self.coverage < c.min_coverage {
            return Some(AcquireFailure::PartlyOutOfFrame);
        }
        if self.sharpness < c.min_sharpness {
            return Some(AcquireFailure::TooBlurred);
        }
        if self.texture < c.min_texture {
            return Some(AcquireFailure::NotAPalm);
        }
        if self.score < c.min_score {
            // Several components marginal at once: name the weakest.
            let parts = [
                (
                    self.exposure_score,
                    if self.brightness < 0.5 {
                        AcquireFailure::TooDark
                    } else {
                        AcquireFailure::TooBright
                    },
                ),
                (self.coverage_score, AcquireFailure::PartlyOutOfFrame),
                (self.sharpness_score, AcquireFailure::TooBlurred),
                (self.texture_score, AcquireFailure::NotAPalm),
            ];
            return parts.iter().min_by(|a, b| a.0.total_cmp(&b.0)).map(|p| p.1);
        }
        None
    }
}
