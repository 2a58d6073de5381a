//! Keys, gallery geometry and the packed template representation.
//!
//! A template is packed as `codes` codes (primary first, then the rotations), each code as
//! `planes * grid` bit rows followed by as many mask rows, one `u32` per row (the gallery
//! requires `grid <= 32`). Bits at columns `>= grid` are cleared: the engine's matcher never
//! looks at them, so packing keeps every score unchanged.

use crate::GalleryError;
use openpalm_engine::code::PalmCode;
use openpalm_engine::Template;

/// Which hand a template was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hand {
    Left,
    Right,
}

impl Hand {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Hand::Left => 0,
            Hand::Right => 1,
        }
    }
    pub(crate) fn from_byte(b: u8) -> Option<Hand> {
        match b {
            0 => Some(Hand::Left),
            1 => Some(Hand::Right),
            _ => None,
        }
    }
}

/// Key of one enrolled template. Ordered by person, then hand, then sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub person: u64,
    pub hand: Hand,
    pub sample: u32,
}

impl Key {
    pub fn new(person: u64, hand: Hand, sample: u32) -> Key {
        Key { person, hand, sample }
    }
}

/// Geometry shared by every template of a gallery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Code grid side, 1..=32.
    pub grid: usize,
    /// Bit planes per code.
    pub planes: usize,
    /// Rotated codes per template (besides the primary code).
    pub rotations: usize,
}

impl Layout {
    /// The geometry of [`openpalm_engine::Engine::default`]'s templates.
    pub const ENGINE_DEFAULT: Layout = Layout {
        grid: 32,
        planes: 6,
        rotations: 2,
    };

    /// The geometry of a template.
    pub fn of(t: &Template) -> Layout {
        Layout {
            grid: t.code.grid,
            planes: t.code.planes,
            rotations: t.rotated.len(),
        }
    }

    /// Rows per code (`planes * grid`).
    pub fn rows(&self) -> usize {
        self.planes * self.grid
    }

    /// Codes per template (primary plus rotations).
    pub fn codes(&self) -> usize {
        1 + self.rotations
    }

    /// `u32` words of one packed template.
    pub fn template_words(&self) -> usize {
        self.codes() * 2 * self.rows()
    }

    /// Bytes of one packed template: the "raw template bytes" memory is measured against.
    pub fn raw_bytes(&self) -> usize {
        self.template_words() * 4
    }

    pub(crate) fn full(&self) -> u32 {
        if self.grid >= 32 {
            u32::MAX
        } else {
            (1u32 << self.grid) - 1
        }
    }

    pub(crate) fn validate(&self) -> Result<(), GalleryError> {
        if self.grid == 0 || self.grid > 32 || self.planes == 0 || self.rotations > 64 {
            return Err(GalleryError::UnsupportedLayout(*self));
        }
        Ok(())
    }

    pub(crate) fn check_code(&self, c: &PalmCode) -> Result<(), GalleryError> {
        let rows = self.rows();
        if c.grid != self.grid || c.planes != self.planes || c.bits.len() != rows || c.mask.len() != rows {
            return Err(GalleryError::Geometry {
                expected: *self,
                grid: c.grid,
                planes: c.planes,
                rows: c.bits.len().min(c.mask.len()),
            });
        }
        Ok(())
    }

    /// Enrolled templates must have exactly this layout.
    pub(crate) fn check_template(&self, t: &Template) -> Result<(), GalleryError> {
        self.check_code(&t.code)?;
        for r in &t.rotated {
            self.check_code(r)?;
        }
        if t.rotated.len() != self.rotations {
            return Err(GalleryError::Rotations {
                expected: self.rotations,
                found: t.rotated.len(),
            });
        }
        Ok(())
    }

    /// Probes need the same grid and planes; any number of rotations.
    pub(crate) fn check_probe(&self, t: &Template) -> Result<(), GalleryError> {
        self.check_code(&t.code)?;
        t.rotated.iter().try_for_each(|r| self.check_code(r))
    }
}

/// Pack one code into `out` (`2 * rows` words: bit rows then mask rows).
pub(crate) fn pack_code(layout: &Layout, code: &PalmCode, out: &mut [u32]) {
    let rows = layout.rows();
    let full = layout.full();
    for i in 0..rows {
        out[i] = (code.bits[i] as u32) & full;
        out[rows + i] = (code.mask[i] as u32) & full;
    }
}

/// Pack a template's codes (primary first) into `out`.
pub(crate) fn pack_template(layout: &Layout, t: &Template, out: &mut [u32]) {
    let cw = 2 * layout.rows();
    pack_code(layout, &t.code, &mut out[..cw]);
    for (i, r) in t.rotated.iter().enumerate() {
        pack_code(layout, r, &mut out[(i + 1) * cw..(i + 2) * cw]);
    }
}

pub(crate) fn unpack_code(layout: &Layout, words: &[u32]) -> PalmCode {
    let rows = layout.rows();
    PalmCode {
        grid: layout.grid,
        planes: layout.planes,
        bits: words[..rows].iter().map(|&w| w as u64).collect(),
        mask: words[rows..2 * rows].iter().map(|&w| w as u64).collect(),
    }
}

/// The template a packed record stands for (bits outside the grid cleared).
pub(crate) fn unpack_template(layout: &Layout, algorithm: u16, quality: f32, words: &[u32]) -> Template {
    let cw = 2 * layout.rows();
    Template {
        algorithm,
        quality,
        code: unpack_code(layout, &words[..cw]),
        rotated: (1..layout.codes())
            .map(|i| unpack_code(layout, &words[i * cw..(i + 1) * cw]))
            .collect(),
    }
}
