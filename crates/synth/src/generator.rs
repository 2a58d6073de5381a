//! The generator: identities, samples and renders from one seed, each drawn from its own RNG
//! stream so results do not depend on the order or thread they are made in.

use crate::difficulty::Difficulty;
use crate::error::SynthError;
use crate::identity::{Identity, IdentityTexture, Population, HAND_DOMAIN, ROI_DOMAIN};
use crate::render::{
    render_hand, render_roi, Band, HandRender, SynthImage, HAND_HEIGHT, HAND_WIDTH, ROI_SIDE,
};
use crate::sample::Sample;

/// What a capture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Palm-centre crop, 150x150, like Tongji's.
    Roi,
    /// Whole open hand in an 800x600 frame, like COEP's.
    Hand,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "roi" => Ok(Kind::Roi),
            "hand" => Ok(Kind::Hand),
            other => Err(format!("unknown kind {other:?}: expected roi or hand")),
        }
    }
}

/// Texture resolution (texels per palm unit); the ROI is 150 px per palm unit.
pub(crate) const PX_PER_UNIT: f32 = 150.0;

/// An identity ready to render.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub identity: Identity,
    pub texture: IdentityTexture,
}

/// Makes identities and their captures.
#[derive(Clone, Debug)]
pub struct Generator {
    pub kind: Kind,
    pub seed: u64,
    pub difficulty: Difficulty,
    pub population: Population,
    /// Capture sessions per identity; samples are split evenly between them.
    pub sessions: u32,
}

impl Generator {
    pub fn new(kind: Kind, seed: u64, difficulty: Difficulty) -> Result<Self, SynthError> {
        difficulty.validate().map_err(SynthError::Difficulty)?;
        Ok(Generator {
            kind,
            seed,
            difficulty,
            population: Population::default(),
            sessions: 1,
        })
    }

    /// Identity number `index` (0-based), rasterised for this generator's kind and every band.
    pub fn identity(&self, index: u64) -> Prepared {
        self.identity_for(index, &[Band::Visible, Band::Nir])
    }

    /// Identity number `index`, rasterised only for `bands` (veins are drawn for NIR only).
    pub fn identity_for(&self, index: u64, bands: &[Band]) -> Prepared {
        let identity = Identity::generate(self.seed, index, &self.population);
        let domain = match self.kind {
            Kind::Roi => ROI_DOMAIN,
            Kind::Hand => HAND_DOMAIN,
        };
        let texture = identity.texture(domain, PX_PER_UNIT, bands.contains(&Band::Nir));
        Prepared { identity, texture }
    }

    /// Session (1-based) of capture `k` of `samples`.
    pub fn session_of(&self, k: usize, samples: usize) -> u32 {
        let sessions = self.sessions.max(1) as usize;
        (k * sessions / samples.max(1)) as u32 + 1
    }

    /// The nuisance parameters of capture `k` (0-based) of identity `index`.
    pub fn sample(&self, index: u64, k: usize, samples: usize) -> Sample {
        Sample::generate(
            self.seed,
            index,
            k as u32,
            self.session_of(k, samples),
            &self.difficulty,
        )
    }

    /// Render capture `sample` of `prepared` in `band`.
    pub fn render(&self, prepared: &Prepared, sample: &Sample, band: Band) -> SynthImage {
        match self.kind {
            Kind::Roi => render_roi(&prepared.identity, &prepared.texture, sample, band, ROI_SIDE),
            Kind::Hand => self.render_hand(prepared, sample, band).image,
        }
    }

    /// Render a whole-hand capture with its ground-truth mask.
    pub fn render_hand(&self, prepared: &Prepared, sample: &Sample, band: Band) -> HandRender {
        render_hand(
            &prepared.identity,
            &prepared.texture,
            sample,
            band,
            HAND_WIDTH,
            HAND_HEIGHT,
        )
    }
}
