//! One capture of an identity: every per-sample nuisance, drawn from a seed.

use crate::difficulty::{Background, Difficulty};
use crate::util::{normal, rng_for, uniform};
use rand::Rng;

/// A smooth non-rigid displacement component: `amp * sin(freq . p + phase)` along `dir`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wave {
    pub amp: f32,
    pub freq: [f32; 2],
    pub phase: f32,
    pub dir: [f32; 2],
}

/// Everything that differs between two captures of the same palm.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub identity: u64,
    pub index: u32,
    /// Capture session (1-based).
    pub session: u32,
    /// Rotation, radians.
    pub rotation: f32,
    /// Translation, palm units (ROI) or fraction of the frame (hand).
    pub translation: [f32; 2],
    /// Scale factor (> 1: closer, palm looks bigger).
    pub scale: f32,
    /// Perspective coefficients.
    pub perspective: [f32; 2],
    pub waves: [Wave; 3],
    /// Illumination gradient direction (radians) and strength.
    pub light_angle: f32,
    pub light_strength: f32,
    /// Colour of the light (multiplies the visible channels).
    pub light_colour: [f32; 3],
    pub exposure: f32,
    pub defocus: f32,
    pub motion_len: f32,
    pub motion_angle: f32,
    pub noise: f32,
    /// Contrast multipliers for principal lines, secondary creases, wrinkles.
    pub contrast: [f32; 3],
    /// Angle between neighbouring fingers, radians.
    pub spread: f32,
    pub hand_scale: f32,
    /// Hand centre shift, fraction of frame width and height.
    pub hand_shift: [f32; 2],
    pub hand_present: bool,
    pub show_back: bool,
    pub palm_texture: f32,
    pub background: Background,
    /// Brightness multiplier of the background (1 for surfaces at the hand).
    pub background_gain: f32,
    pub pegs: bool,
    pub ring: bool,
    pub bracelet: bool,
    pub sleeve: Option<[f32; 3]>,
    /// Seed for the per-sample noise fields (background, sensor noise).
    pub noise_seed: u64,
}

impl Sample {
    /// Capture `index` (0-based) of identity `identity`, in session `session`.
    pub fn generate(seed: u64, identity: u64, index: u32, session: u32, d: &Difficulty) -> Sample {
        // Session-level conditions (light colour, exposure level) shared by its captures.
        let mut srng = rng_for(seed, identity, session as u64, 3);
        let session_exposure = (normal(&mut srng) * d.exposure * 0.5).exp();
        let session_tint = [
            1.0 + normal(&mut srng) * 0.02,
            1.0,
            1.0 + normal(&mut srng) * 0.03,
        ];
        let mut rng = rng_for(seed, identity, index as u64, 2);
        let r = &mut rng;
        let waves = std::array::from_fn(|_| {
            let a = uniform(r, 0.0, std::f32::consts::TAU);
            let f = uniform(r, 2.0, 6.0);
            let b = uniform(r, 0.0, std::f32::consts::TAU);
            Wave {
                amp: d.deformation * uniform(r, 0.3, 1.0),
                freq: [f * a.cos(), f * a.sin()],
                phase: uniform(r, 0.0, std::f32::consts::TAU),
                dir: [b.cos(), b.sin()],
            }
        });
        let translation_sd = d.translation;
        let spread_deg = uniform(r, d.finger_spread_deg.0, d.finger_spread_deg.1);
        let background = if d.backgrounds.is_empty() {
            Background::DarkCloth
        } else {
            d.backgrounds[r.gen_range(0..d.backgrounds.len())]
        };
        let hand_shift = [
            d.hand_offset[0] + normal(r) * d.hand_translation,
            d.hand_offset[1] + normal(r) * d.hand_translation,
        ];
        let sleeve_colours = [
            [0.15, 0.2, 0.45],
            [0.55, 0.1, 0.1],
            [0.8, 0.8, 0.78],
            [0.2, 0.35, 0.2],
        ];
        Sample {
            identity,
            index,
            session,
            rotation: normal(r) * d.rotation_deg.to_radians(),
            translation: [normal(r) * translation_sd, normal(r) * translation_sd],
            scale: (normal(r) * d.scale).exp(),
            perspective: [normal(r) * d.tilt, normal(r) * d.tilt],
            waves,
            light_angle: uniform(r, 0.0, std::f32::consts::TAU),
            light_strength: d.illumination_gradient * uniform(r, 0.3, 1.0),
            light_colour: [
                session_tint[0] * (1.0 + normal(r) * 0.01),
                session_tint[1],
                session_tint[2] * (1.0 + normal(r) * 0.01),
            ],
            exposure: d.exposure_bias * session_exposure * (normal(r) * d.exposure).exp(),
            defocus: uniform(r, d.defocus.0, d.defocus.1),
            motion_len: uniform(r, 0.0, d.motion_blur),
            motion_angle: uniform(r, 0.0, std::f32::consts::PI),
            noise: d.noise,
            contrast: [
                (normal(r) * d.crease_contrast).exp() * d.palm_texture,
                (normal(r) * d.crease_contrast * 1.3).exp() * d.palm_texture,
                (normal(r) * d.crease_contrast * 2.0).exp() * d.palm_texture,
            ],
            spread: spread_deg.to_radians(),
            hand_scale: d.hand_scale * (1.0 + normal(r) * d.scale),
            hand_shift,
            hand_present: d.hand_present,
            show_back: d.show_back,
            palm_texture: d.palm_texture,
            background,
            pegs: r.gen::<f32>() < d.pegs,
            ring: r.gen::<f32>() < d.accessories,
            bracelet: r.gen::<f32>() < d.accessories,
            sleeve: if r.gen::<f32>() < d.accessories {
                Some(sleeve_colours[r.gen_range(0..sleeve_colours.len())])
            } else {
                None
            },
            noise_seed: r.gen(),
            // Drawn last (struct fields evaluate in order), so adding it left every earlier
            // draw, and so every ROI capture, unchanged.
            background_gain: if background.is_far() {
                uniform(r, d.far_background_gain.0, d.far_background_gain.1)
            } else {
                1.0
            },
        }
    }

    /// Non-rigid displacement at `p` (palm units).
    #[inline]
    pub fn displacement(&self, p: [f32; 2]) -> [f32; 2] {
        let mut d = [0.0, 0.0];
        for w in &self.waves {
            let s = w.amp * (w.freq[0] * p[0] + w.freq[1] * p[1] + w.phase).sin();
            d[0] += s * w.dir[0];
            d[1] += s * w.dir[1];
        }
        d
    }
}
