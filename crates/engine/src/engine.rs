//! The engine: configuration and the capture -> template pipeline.

use crate::capture::{decode, Capture};
use crate::code::{encode, CodeConfig, FilterBank};
use crate::error::ExtractError;
use crate::matcher::{compare, MatchConfig, MatchDetail};
use crate::roi::{normalise_roi, roi_plane};
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
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    pub code: CodeConfig,
    pub matching: MatchConfig,
}

/// The result of a successful extraction.
#[derive(Clone, Debug)]
pub struct Extraction {
    pub template: Template,
}

/// The biometric engine. Cheap to share between threads (`&Engine` is all methods need).
#[derive(Clone, Debug)]
pub struct Engine {
    config: EngineConfig,
    bank: FilterBank,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineConfig::default())
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let bank = FilterBank::new(config.code.clone());
        Engine { config, bank }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
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
        let roi = match input {
            InputKind::Roi => roi_plane(capture),
            InputKind::Hand => roi_plane(capture),
        };
        let work = normalise_roi(&roi, self.config.code.work_side);
        let responses = self.bank.responses(&work);
        let code = encode(
            &responses,
            self.config.code.grid,
            self.config.code.fragile_fraction,
            None,
        );
        Ok(Extraction {
            template: Template {
                algorithm: ALGORITHM_ID,
                quality: 1.0,
                code,
            },
        })
    }

    /// 1:1 comparison with details.
    pub fn compare(&self, a: &Template, b: &Template) -> MatchDetail {
        compare(&a.code, &b.code, &self.config.matching)
    }

    /// 1:1 similarity in [0, 1].
    pub fn score(&self, a: &Template, b: &Template) -> f32 {
        self.compare(a, b).score
    }
}
