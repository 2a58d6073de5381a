//! How hard captures are: every nuisance is a separate knob, with three presets and one
//! preset per whole-hand acquisition failure.

use openpalm_engine::AcquireFailure;

/// Backgrounds a whole-hand reader might see.
///
/// A hovering-hand reader looks up or out past the hand: it sees a ceiling, a room, or its
/// own dark surround, sometimes with clutter. Its illuminator lights the hand at 10-20 cm,
/// while the ceiling and the room are metres away, so with the exposure set for the hand they
/// come out dimmer than they look to the eye ([`Difficulty::far_background_gain`]). A surface
/// right under or behind the hand (a wall, a wooden desk) gets the reader's light too and is
/// the harder setting: wood in particular has the hue of skin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Background {
    /// Dark, slightly creased cloth (like COEP's), or the reader's own dark hood.
    DarkCloth,
    /// A light, evenly painted wall close behind the hand.
    LightWall,
    /// Wood grain (a desk or counter under the hand): skin-hued, hard for colour segmentation.
    Wood,
    /// Coloured clutter blobs on a mid-grey surface (some blobs are skin-hued).
    Clutter,
    /// A ceiling seen from below: tiles with seams and a ceiling light, far away.
    Ceiling,
    /// A room seen past the hand: walls, a door, furniture, defocused and far away.
    Room,
}

impl Background {
    pub const ALL: [Background; 6] = [
        Background::DarkCloth,
        Background::LightWall,
        Background::Wood,
        Background::Clutter,
        Background::Ceiling,
        Background::Room,
    ];

    /// Stable lower-case name (reports, command-line lists).
    pub fn name(&self) -> &'static str {
        match self {
            Background::DarkCloth => "dark_cloth",
            Background::LightWall => "light_wall",
            Background::Wood => "wood",
            Background::Clutter => "clutter",
            Background::Ceiling => "ceiling",
            Background::Room => "room",
        }
    }

    /// Whether the background is metres away from the reader (dimmed by
    /// [`Difficulty::far_background_gain`]) rather than a surface at the hand.
    pub fn is_far(&self) -> bool {
        matches!(self, Background::Ceiling | Background::Room | Background::Clutter)
    }
}

impl std::str::FromStr for Background {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Background::ALL
            .iter()
            .find(|b| b.name() == s.trim())
            .copied()
            .ok_or_else(|| {
                let names: Vec<&str> = Background::ALL.iter().map(|b| b.name()).collect();
                format!("unknown background {s:?}: expected one of {}", names.join(", "))
            })
    }
}

/// Every nuisance knob. Spreads are standard deviations unless the field says range.
#[derive(Clone, Debug, PartialEq)]
pub struct Difficulty {
    /// In-plane rotation, degrees (sd).
    pub rotation_deg: f32,
    /// ROI translation, fraction of the ROI side (sd).
    pub translation: f32,
    /// Relative distance change (sd of the scale factor).
    pub scale: f32,
    /// Out-of-plane tilt as a perspective coefficient per ROI side (sd).
    pub tilt: f32,
    /// Non-rigid skin deformation amplitude, fraction of the ROI side.
    pub deformation: f32,
    /// Illumination gradient: largest relative brightness change across the frame.
    pub illumination_gradient: f32,
    /// Exposure spread (sd of log exposure).
    pub exposure: f32,
    /// Exposure multiplier (1 = well exposed; 0.1 = very dark; 4 = blown out).
    pub exposure_bias: f32,
    /// Defocus blur sigma range in output pixels.
    pub defocus: (f32, f32),
    /// Largest motion blur length in output pixels.
    pub motion_blur: f32,
    /// Sensor noise sd (fraction of full scale).
    pub noise: f32,
    /// Crease contrast changes between captures (sd of log contrast; wrinkles vary twice as
    /// much).
    pub crease_contrast: f32,

    // Whole-hand knobs.
    /// Angle between neighbouring fingers, degrees (range). At or below 0 the fingers touch.
    pub finger_spread_deg: (f32, f32),
    /// Hand size relative to the nominal reader distance.
    pub hand_scale: f32,
    /// Hand translation, fraction of the frame (sd).
    pub hand_translation: f32,
    /// Fixed offset of the hand centre, fraction of frame width and height (0.45 puts the
    /// hand half out of the frame).
    pub hand_offset: [f32; 2],
    /// Whether a hand is in the frame at all.
    pub hand_present: bool,
    /// Show the back of the hand instead of the palm.
    pub show_back: bool,
    /// Multiplier on all palm creases and skin texture (0 = texture-less palm).
    pub palm_texture: f32,
    /// Backgrounds to choose from (uniformly; list one twice to weight it).
    pub backgrounds: Vec<Background>,
    /// Brightness of far backgrounds (ceiling, room, clutter) relative to how they would look
    /// under the reader's light (range): the reader's exposure is set for the near hand.
    pub far_background_gain: (f32, f32),
    /// Probability of COEP-style pegs between the fingers.
    pub pegs: f32,
    /// Probability of each accessory (ring, bracelet, sleeve).
    pub accessories: f32,
}

impl Difficulty {
    /// Clean captures: aligned, sharp, well lit.
    pub fn easy() -> Self {
        Difficulty {
            rotation_deg: 0.5,
            translation: 0.004,
            scale: 0.005,
            tilt: 0.0,
            deformation: 0.0,
            illumination_gradient: 0.05,
            exposure: 0.04,
            exposure_bias: 1.0,
            defocus: (0.3, 0.6),
            motion_blur: 0.0,
            noise: 0.004,
            crease_contrast: 0.03,
            finger_spread_deg: (10.0, 14.0),
            hand_scale: 1.0,
            hand_translation: 0.01,
            hand_offset: [0.0, 0.0],
            hand_present: true,
            show_back: false,
            palm_texture: 1.0,
            backgrounds: vec![Background::DarkCloth],
            far_background_gain: (0.3, 0.5),
            pegs: 0.0,
            accessories: 0.0,
        }
    }

    /// Captures like those of a real contactless reader, tuned against the Tongji ROI set.
    pub fn realistic() -> Self {
        Difficulty {
            rotation_deg: 1.5,
            translation: 0.015,
            scale: 0.025,
            tilt: 0.04,
            deformation: 0.006,
            illumination_gradient: 0.2,
            exposure: 0.12,
            exposure_bias: 1.0,
            defocus: (0.6, 1.3),
            motion_blur: 1.5,
            noise: 0.012,
            crease_contrast: 0.15,
            finger_spread_deg: (6.0, 14.0),
            hand_scale: 1.0,
            hand_translation: 0.04,
            hand_offset: [0.0, 0.0],
            hand_present: true,
            show_back: false,
            palm_texture: 1.0,
            // What a hovering-hand reader sees: ceiling and room most often, its dark hood,
            // some clutter. Desks (wood) and walls right behind the hand are in `hard`.
            backgrounds: vec![
                Background::Ceiling,
                Background::Ceiling,
                Background::Room,
                Background::Room,
                Background::DarkCloth,
                Background::Clutter,
            ],
            far_background_gain: (0.25, 0.7),
            pegs: 0.4,
            accessories: 0.3,
        }
    }

    /// Careless captures that a reader should still mostly handle.
    pub fn hard() -> Self {
        Difficulty {
            rotation_deg: 6.0,
            translation: 0.05,
            scale: 0.06,
            tilt: 0.1,
            deformation: 0.018,
            illumination_gradient: 0.45,
            exposure: 0.3,
            exposure_bias: 1.0,
            defocus: (1.0, 2.5),
            motion_blur: 4.0,
            noise: 0.03,
            crease_contrast: 0.35,
            finger_spread_deg: (3.0, 16.0),
            hand_scale: 1.0,
            hand_translation: 0.08,
            hand_offset: [0.0, 0.0],
            hand_present: true,
            show_back: false,
            palm_texture: 1.0,
            backgrounds: Background::ALL.to_vec(),
            far_background_gain: (0.4, 1.0),
            pegs: 0.4,
            accessories: 0.6,
        }
    }

    /// Realistic captures changed so that a whole-hand reader should refuse them for
    /// `reason`. Each preset changes what a person or a scene would: an empty ceiling, fingers
    /// held together, a hand half out of view, a camera out of focus, too little or too much
    /// light, a hand held far away, the back of the hand. Rates at which the engine names
    /// exactly that reason are measured in `tests/provoked_reasons.rs`.
    pub fn provoking(reason: AcquireFailure) -> Self {
        let mut d = Difficulty::realistic();
        match reason {
            AcquireFailure::NoHand => {
                // The empty scene above an upward-looking reader.
                d.hand_present = false;
                d.backgrounds = vec![Background::Ceiling];
            }
            AcquireFailure::FingersNotSpread => {
                d.finger_spread_deg = (-1.5, 0.0);
                d.pegs = 0.0;
            }
            AcquireFailure::PartlyOutOfFrame => d.hand_offset = [0.0, 0.45],
            AcquireFailure::TooBlurred => {
                // Far out of focus (12-16 px on the 800x600 frame), in good light (little
                // sensor noise), fingers well apart and a plain background, so that the hand
                // itself is still found and framed.
                d.defocus = (12.0, 16.0);
                d.motion_blur = 0.0;
                d.noise = 0.002;
                d.finger_spread_deg = (12.0, 16.0);
                d.pegs = 0.0;
                d.accessories = 0.0;
                d.backgrounds = vec![Background::Ceiling, Background::DarkCloth];
            }
            AcquireFailure::TooDark => {
                d.exposure_bias = 0.07;
                d.exposure = 0.05;
            }
            AcquireFailure::TooBright => {
                // Direct light on the hand and the wall or ceiling behind it: everything clips.
                d.exposure_bias = 4.5;
                d.exposure = 0.05;
                d.backgrounds = vec![Background::LightWall, Background::Ceiling];
            }
            AcquireFailure::TooSmall => {
                // A hand held far from the reader, bare forearm, in front of a plain ceiling
                // or the reader's dark hood.
                d.hand_scale = 0.22;
                d.accessories = 0.0;
                d.pegs = 0.0;
                d.backgrounds = vec![Background::Ceiling, Background::DarkCloth];
            }
            AcquireFailure::NotAPalm => {
                // The back of the hand, held so that everything else about the capture is
                // fine: fingers apart, steady light, a plain background (a cluttered one can
                // lead the hand frame astray, which is another failure).
                d.show_back = true;
                d.finger_spread_deg = (12.0, 16.0);
                d.exposure = 0.04;
                d.pegs = 0.0;
                d.accessories = 0.0;
                d.backgrounds = vec![Background::Ceiling, Background::DarkCloth];
            }
        }
        d
    }

    /// Check that every knob is in range.
    pub fn validate(&self) -> Result<(), String> {
        let nonneg = [
            ("rotation_deg", self.rotation_deg),
            ("translation", self.translation),
            ("scale", self.scale),
            ("tilt", self.tilt),
            ("deformation", self.deformation),
            ("illumination_gradient", self.illumination_gradient),
            ("exposure", self.exposure),
            ("motion_blur", self.motion_blur),
            ("noise", self.noise),
            ("crease_contrast", self.crease_contrast),
            ("hand_translation", self.hand_translation),
            ("palm_texture", self.palm_texture),
        ];
        for (name, v) in nonneg {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if !(self.exposure_bias.is_finite() && self.exposure_bias > 0.0) {
            return Err(format!("exposure_bias must be > 0, got {}", self.exposure_bias));
        }
        if !(self.hand_scale.is_finite() && self.hand_scale > 0.0) {
            return Err(format!("hand_scale must be > 0, got {}", self.hand_scale));
        }
        if !(self.defocus.0 >= 0.0 && self.defocus.1 >= self.defocus.0 && self.defocus.1 <= 50.0) {
            return Err(format!(
                "defocus range {:?} must satisfy 0 <= lo <= hi <= 50",
                self.defocus
            ));
        }
        let (a, b) = self.finger_spread_deg;
        if !(a.is_finite() && b.is_finite() && a <= b && a >= -10.0 && b <= 40.0) {
            return Err(format!(
                "finger_spread_deg {:?} must satisfy -10 <= lo <= hi <= 40",
                self.finger_spread_deg
            ));
        }
        for (name, p) in [("pegs", self.pegs), ("accessories", self.accessories)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} is a probability, got {p}"));
            }
        }
        let (g0, g1) = self.far_background_gain;
        if !(g0.is_finite() && g1.is_finite() && g0 >= 0.0 && g0 <= g1 && g1 <= 4.0) {
            return Err(format!(
                "far_background_gain {:?} must satisfy 0 <= lo <= hi <= 4",
                self.far_background_gain
            ));
        }
        if self.hand_offset.iter().any(|v| !v.is_finite()) {
            return Err("hand_offset must be finite".into());
        }
        if self.backgrounds.is_empty() {
            return Err("backgrounds must list at least one background".into());
        }
        Ok(())
    }
}

impl std::str::FromStr for Difficulty {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "easy" => Ok(Difficulty::easy()),
            "realistic" => Ok(Difficulty::realistic()),
            "hard" => Ok(Difficulty::hard()),
            other => AcquireFailure::ALL
                .iter()
                .find(|r| r.code() == other)
                .map(|r| Difficulty::provoking(*r))
                .ok_or_else(|| {
                    format!("unknown difficulty {other:?}: expected easy, realistic, hard or a failure reason code (no_hand, too_dark, ...)")
                }),
        }
    }
}
