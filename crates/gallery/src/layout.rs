//! Keys, gallery geometry and the stored form of a template.
//!
//! Identification is directional: a probe's poses (primary code plus its coded rotations and
//! scales) are searched against the *primary* code of each enrolled template, so a gallery
//! stores only that code, packed exactly as the engine's matcher packs it
//! ([`openpalm_engine::matcher::PackedCode`]: `grid` rows of `lanes` u64 words, two bit planes
//! per word). A stored template is `2 * grid * lanes` words: the bit words, then the mask words.

use crate::GalleryError;
use openpalm_engine::code::PalmCode;
use openpalm_engine::matcher::PackedCode;
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

/// Code geometry shared by every template of a gallery and every probe searched in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Code grid side, 1..=32.
    pub grid: usize,
    /// Bit planes per code, 1..=64.
    pub planes: usize,
}

impl Layout {
    /// The geometry of [`openpalm_engine::Engine::default`]'s codes.
    pub const ENGINE_DEFAULT: Layout = Layout { grid: 32, planes: 6 };

    /// The geometry of a template's primary code.
    pub fn of(t: &Template) -> Layout {
        Layout {
            grid: t.code.grid,
            planes: t.code.planes,
        }
    }

    /// Rows per code in the engine's plain form (`planes * grid`).
    pub fn rows(&self) -> usize {
        self.planes * self.grid
    }

    /// u64 words per packed row (`ceil(planes / 2)`).
    pub fn lanes(&self) -> usize {
        self.planes.div_ceil(2)
    }

    /// u64 words of one stored template: packed bits then packed mask.
    pub fn code_words(&self) -> usize {
        2 * self.grid * self.lanes()
    }

    /// Bytes of one stored template (a packed primary code): the "raw template bytes" the
    /// gallery's memory is measured against. 1536 for the engine's default codes.
    pub fn raw_bytes(&self) -> usize {
        self.code_words() * 8
    }

    pub(crate) fn validate(&self) -> Result<(), GalleryError> {
        if self.grid == 0 || self.grid > 32 || self.planes == 0 || self.planes > 64 {
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

    /// Enrolled templates need a primary code of this geometry (their poses are not stored).
    pub(crate) fn check_template(&self, t: &Template) -> Result<(), GalleryError> {
        self.check_code(&t.code)?;
        let col = if self.grid >= 64 {
            u64::MAX
        } else {
            (1u64 << self.grid) - 1
        };
        if t.code.bits.iter().chain(&t.code.mask).any(|&r| r & !col != 0) {
            return Err(GalleryError::StoredCode("bits outside the code grid"));
        }
        Ok(())
    }

    /// Probes: every code (primary and poses) of this geometry.
    pub(crate) fn check_probe(&self, t: &Template) -> Result<(), GalleryError> {
        self.check_code(&t.code)?;
        t.rotated.iter().try_for_each(|r| self.check_code(r))
    }

    /// The engine's packing of a checked code (`None` only for grids over 32, which
    /// [`Layout::validate`] refuses).
    pub(crate) fn pack(&self, c: &PalmCode) -> Result<PackedCode, GalleryError> {
        self.check_code(c)?;
        PackedCode::new(c).ok_or(GalleryError::UnsupportedLayout(*self))
    }

    /// A packed code from stored words (`code_words` of them); refused when the words cannot
    /// come from a code of this layout (bits in columns `>= grid`, or in the unused high half
    /// of the last lane when `planes` is odd).
    pub fn packed_from_words(&self, words: &[u64]) -> Result<PackedCode, GalleryError> {
        if words.len() != self.code_words() {
            return Err(GalleryError::StoredCode("wrong number of words"));
        }
        let n = self.code_words() / 2;
        let lanes = self.lanes();
        for (i, &w) in words.iter().enumerate() {
            if w & !self.lane_valid(i % n % lanes) != 0 {
                return Err(GalleryError::StoredCode("bits outside the code grid"));
            }
        }
        Ok(PackedCode {
            grid: self.grid,
            lanes,
            bits: words[..n].to_vec(),
            mask: words[n..].to_vec(),
        })
    }

    /// Per stored word of a template (`code_words` of them), the bits it may hold: a stored
    /// template is valid when `word & !pattern == 0` for every word.
    pub(crate) fn valid_pattern(&self) -> Vec<u64> {
        let n = self.code_words() / 2;
        let lanes = self.lanes();
        (0..self.code_words())
            .map(|i| self.lane_valid(i % n % lanes))
            .collect()
    }

    /// Bits a word of lane `lane` may hold.
    fn lane_valid(&self, lane: usize) -> u64 {
        let col = if self.grid == 32 {
            0xffff_ffffu64
        } else {
            (1u64 << self.grid) - 1
        };
        if 2 * lane + 1 < self.planes {
            col | (col << 32)
        } else {
            col
        }
    }
}

/// A template's stored words: its packed primary code, bits then mask.
pub(crate) fn code_words(p: &PackedCode, out: &mut [u64]) {
    let n = p.bits.len();
    out[..n].copy_from_slice(&p.bits);
    out[n..2 * n].copy_from_slice(&p.mask);
}
