//! The engine: configuration and the capture -> template pipeline.

use crate::capture::{decode, Capture};
use crate::code::{encode_with_cuts, fragile_cuts, CodeConfig, FilterBank, PalmCode};
use crate::dense::{pose_responses, pose_valid, DenseBank, Pose};
use crate::error::ExtractError;
use crate::hand::{cut_roi, locate, HandConfig, HandGeometry, Segmentation};
use crate::matcher::{compare, search, search_prepared, MatchConfig, MatchDetail, PackedCode, PreparedProbe};
use crate::plane::Plane;
use crate::quality::{measure, palm_mask, Quality, QualityConfig};
use crate::roi::normalise_contrast_with_scale;
use crate::template::{Template, ALGORITHM_ID};

/// What a capture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A palm-centre crop (region of interest) already cut by the reader or dataset.
    Roi,
    /// A whole open hand, fingers spread, on any background.
    Hand,
}

impl std::str::FromStr for InputKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "roi" => Ok(InputKind::Roi),
            "hand" => Ok(InputKind::Hand),
            other => Err(format!("unknown input kind {other:?}: expected roi or hand")),
        }
    }
}

/// All tunable parameters, in one place.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub code: CodeConfig,
    pub matching: MatchConfig,
    pub quality: QualityConfig,
    pub hand: HandConfig,
    /// Extra poses coded at extraction (rotation in degrees, scale), for matching that
    /// tolerates residual rotation and scale.
    pub variants: Vec<(f32, f32)>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            code: CodeConfig::default(),
            matching: MatchConfig::default(),
            quality: QualityConfig::default(),
            hand: HandConfig::default(),
            variants: vec![(-4.0, 1.0), (4.0, 1.0), (0.0, 0.9), (0.0, 1.1)],
        }
    }
}

/// The result of a successful extraction.
#[derive(Clone, Debug)]
pub struct Extraction {
    pub template: Template,
    pub quality: Quality,
}

/// Intermediate products of one extraction, for inspection.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The palm region (line channel, [0, 1]) as handed to the coder.
    pub region: Option<Plane>,
    /// The contrast-normalised working image.
    pub work: Option<Plane>,
    /// 1 = palm, 0 = background or clipped, at working size.
    pub palm_mask: Option<Plane>,
    /// Filter responses on the code grid.
    pub responses: Vec<Plane>,
    pub code: Option<PalmCode>,
    pub quality: Option<Quality>,
    /// The hand segmentation the palm frame rests on (whole-hand captures): mask at
    /// segmentation resolution, colour evidence, and which colour models made it.
    pub segmentation: Option<Segmentation>,
    /// Hand geometry (whole-hand captures).
    pub hand: Option<HandGeometry>,
}

/// The biometric engine. Cheap to share between threads (`&Engine` is all methods need).
#[derive(Clone, Debug)]
pub struct Engine {
    config: EngineConfig,
    bank: FilterBank,
    dense: DenseBank,
    /// The primary pose, then one per configured variant.
    poses: Vec<Pose>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineConfig::default())
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let bank = FilterBank::new(config.code.clone());
        let dense = DenseBank::new(&bank);
        let c = &config.code;
        let poses = std::iter::once((0.0, 1.0))
            .chain(config.variants.iter().copied())
            .map(|(deg, scale): (f32, f32)| {
                Pose::new(c.work_side, c.grid, c.orientations, deg.to_radians(), scale)
            })
            .collect();
        Engine {
            config,
            bank,
            dense,
            poses,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn filter_bank(&self) -> &FilterBank {
        &self.bank
    }

    /// Decode capture bytes and extract a template.
    pub fn extract(&self, bytes: &[u8], input: InputKind) -> Result<Extraction, ExtractError> {
        let mut capture = decode(bytes)?;
        let result = self.extract_capture(&capture, input);
        capture.zeroise();
        result
    }

    /// Extract a template from an already decoded capture.
    pub fn extract_capture(&self, capture: &Capture, input: InputKind) -> Result<Extraction, ExtractError> {
        self.run(capture, input, None)
    }

    /// Extract, recording every intermediate product into `trace`.
    pub fn extract_traced(
        &self,
        capture: &Capture,
        input: InputKind,
        trace: &mut Trace,
    ) -> Result<Extraction, ExtractError> {
        self.run(capture, input, Some(trace))
    }

    fn run(
        &self,
        capture: &Capture,
        input: InputKind,
        mut trace: Option<&mut Trace>,
    ) -> Result<Extraction, ExtractError> {
        let region = match input {
            InputKind::Roi => capture.line_channel(),
            InputKind::Hand => {
                let located = locate(capture, &self.config.hand);
                if let Some(t) = trace.as_deref_mut() {
                    t.segmentation = located.segmentation;
                }
                let geo = located.geometry?;
                let roi = cut_roi(capture, &geo, self.config.hand.roi_pixels);
                if let Some(t) = trace.as_deref_mut() {
                    t.hand = Some(geo);
                }
                roi?
            }
        };
        let extraction = self.code_region(&region, trace.as_deref_mut());
        if let Some(t) = trace {
            t.region = Some(region);
        }
        extraction
    }

    /// Quality-gate and code a palm region (line channel in [0, 1]).
    fn code_region(&self, region: &Plane, trace: Option<&mut Trace>) -> Result<Extraction, ExtractError> {
        let c = &self.config.code;
        let small = region.resize_area(c.work_side, c.work_side);
        let (mask, median) = palm_mask(&small);
        let (work, contrast) = normalise_contrast_with_scale(&small);
        let dense = self.dense.dense(&work);
        let responses = pose_responses(&dense, c.orientations, &self.poses[0]);
        let quality = measure(
            &small,
            &mask,
            median,
            &work,
            contrast,
            &responses[..c.orientations],
        );
        let refusal = quality.refusal(&self.config.quality);
        // A code cell is reliable only if the filter's core sees palm only.
        let erosion = c
            .scales
            .iter()
            .map(|s| s.sigma_across.ceil() as usize)
            .max()
            .unwrap_or(2);
        let eroded = mask.erode(erosion);
        // The fragile-bit cuts of the primary pose serve every pose (same capture, same
        // distribution of response magnitudes).
        let cuts = fragile_cuts(&responses, c.fragile_fraction);
        let code = encode_with_cuts(
            &responses,
            c.grid,
            &cuts,
            Some(&pose_valid(&eroded, &self.poses[0])),
        );
        if let Some(t) = trace {
            t.work = Some(work.clone());
            t.palm_mask = Some(mask.clone());
            t.responses = responses;
            t.code = Some(code.clone());
            t.quality = Some(quality);
        }
        if let Some(reason) = refusal {
            return Err(reason.into());
        }
        // Other poses of the same palm cost only resampling of the dense responses.
        let rotated = self.poses[1..]
            .iter()
            .map(|pose| {
                let r = pose_responses(&dense, c.orientations, pose);
                encode_with_cuts(&r, c.grid, &cuts, Some(&pose_valid(&eroded, pose)))
            })
            .collect();
        Ok(Extraction {
            template: Template {
                algorithm: ALGORITHM_ID,
                quality: quality.score,
                code,
                rotated,
            },
            quality,
        })
    }

    /// 1:1 comparison with details: `probe`'s codes (its primary code and its coded
    /// rotations and scales) against `reference`'s primary code, over translations. The
    /// search is directional (probe poses against the reference as enrolled), which is what
    /// identification does; `compare(a, b)` and `compare(b, a)` may differ slightly.
    pub fn compare(&self, probe: &Template, reference: &Template) -> MatchDetail {
        let m = &self.config.matching;
        match (PackedCode::new(&reference.code), probe_codes(probe)) {
            (Some(r), Some(p)) => search(&p, &r, m).0,
            _ => {
                // Grids wider than 32 columns: the plain path over every shift.
                std::iter::once(&probe.code)
                    .chain(&probe.rotated)
                    .map(|c| compare(c, &reference.code, m))
                    .fold(None::<MatchDetail>, |b, d| match b {
                        Some(b) if b.score >= d.score => Some(b),
                        _ => Some(d),
                    })
                    .unwrap_or(MatchDetail {
                        score: 0.0,
                        distance: 0.5,
                        compared_bits: 0,
                        shift_x: 0,
                        shift_y: 0,
                    })
            }
        }
    }

    /// 1:1 similarity in [0, 1].
    pub fn score(&self, a: &Template, b: &Template) -> f32 {
        self.compare(a, b).score
    }

    /// A template packed and prepared once for many comparisons, on either side: as a probe
    /// (its coded poses, prepared for the search) and as a reference (its primary code).
    /// `None` when its grid is wider than the packed form holds (use [`Engine::compare`]).
    pub fn prepare(&self, t: &Template) -> Option<PreparedTemplate> {
        let codes = probe_codes(t)?;
        PreparedProbe::new(codes, &self.config.matching)
            .ok()
            .map(|probe| PreparedTemplate { probe })
    }

    /// [`Engine::compare`] on prepared templates: the same detail, without packing or
    /// preparing anything per comparison. Both must come from this engine's [`Engine::prepare`].
    pub fn compare_prepared(&self, probe: &PreparedTemplate, reference: &PreparedTemplate) -> MatchDetail {
        search_prepared(&probe.probe, reference.probe.codes()[0].view()).0
    }
}

/// A template prepared for matching ([`Engine::prepare`]).
#[derive(Clone, Debug)]
pub struct PreparedTemplate {
    probe: PreparedProbe,
}

impl PreparedTemplate {
    /// The packed primary code: the form a gallery stores for a reference.
    pub fn primary(&self) -> &PackedCode {
        &self.probe.codes()[0]
    }

    /// The probe side: every coded pose, prepared for the search.
    pub fn probe(&self) -> &PreparedProbe {
        &self.probe
    }
}

/// A probe's codes (primary first, then the coded poses), packed.
pub fn probe_codes(probe: &Template) -> Option<Vec<PackedCode>> {
    std::iter::once(&probe.code)
        .chain(&probe.rotated)
        .map(PackedCode::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::matcher::tests::code as random_code;

    fn random_template(seed: u64) -> Template {
        Template {
            algorithm: ALGORITHM_ID,
            quality: 0.8,
            code: random_code(seed),
            rotated: (1..5).map(|k| random_code(seed * 31 + k)).collect(),
        }
    }

    /// Prepared templates give exactly the detail of the plain 1:1 comparison, both ways.
    #[test]
    fn prepared_comparison_equals_plain_comparison() {
        let engine = Engine::default();
        let templates: Vec<Template> = (1..8).map(random_template).collect();
        let prepared: Vec<PreparedTemplate> = templates
            .iter()
            .map(|t| engine.prepare(t).expect("32x32 codes pack"))
            .collect();
        for (a, pa) in templates.iter().zip(&prepared) {
            for (b, pb) in templates.iter().zip(&prepared) {
                assert_eq!(engine.compare_prepared(pa, pb), engine.compare(a, b));
            }
        }
        assert_eq!(
            prepared[0].primary(),
            &PackedCode::new(&templates[0].code).unwrap()
        );
        assert_eq!(prepared[0].probe().codes().len(), 5);
    }
}
