//! Templates: a palm code plus the facts needed to use it, in a versioned binary format.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `OPTM` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | algorithm id ([`ALGORITHM_ID`]) |
//! | 8 | 1 | grid side (1..=64) |
//! | 9 | 1 | bit planes per code (1..=32) |
//! | 10 | 1 | codes (1 primary + rotations, 1..=16) |
//! | 11 | 1 | reserved, 0 |
//! | 12 | 2 | quality x 10000 |
//! | 14 | 4 | payload length |
//! | 18 | n | payload: per code, `planes*grid` bit rows then as many mask rows, each row `ceil(grid/8)` bytes |
//! | 18+n | 4 | CRC-32 of everything before it |
//!
//! Parsing any byte string returns a template or a typed error; it never panics.

use crate::code::PalmCode;

/// Algorithm identifier of the current coder; bumped whenever codes stop being comparable.
pub const ALGORITHM_ID: u16 = 1;
/// Current binary format version.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"OPTM";
const HEADER: usize = 18;

/// A palm template: what is stored and matched. Holds no image.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub algorithm: u16,
    /// Capture quality in [0, 1].
    pub quality: f32,
    pub code: PalmCode,
    /// Codes of the same capture under small rotations, for rotation-tolerant matching.
    pub rotated: Vec<PalmCode>,
}

/// Why bytes are not a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template truncated: {got} bytes, at least {need} needed")]
    Truncated { got: usize, need: usize },
    #[error("not an OpenPalm template (bad magic)")]
    BadMagic,
    #[error("template format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    #[error("template made by algorithm {0}, this engine runs algorithm {ALGORITHM_ID}")]
    UnsupportedAlgorithm(u16),
    #[error("template geometry out of range: grid {grid}, planes {planes}, codes {codes}")]
    BadGeometry { grid: u8, planes: u8, codes: u8 },
    #[error("template length {got} does not match its header ({expected})")]
    LengthMismatch { got: usize, expected: usize },
    #[error("template checksum mismatch: the bytes are corrupt")]
    ChecksumMismatch,
    #[error("template is not in canonical form: {0}")]
    NonCanonical(&'static str),
}

fn row_bytes(grid: usize) -> usize {
    grid.div_ceil(8)
}

impl Template {
    /// Serialise to the versioned binary format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.code;
        let rb = row_bytes(c.grid);
        let codes: Vec<&PalmCode> = std::iter::once(c).chain(self.rotated.iter()).collect();
        let payload_len = codes.len() * 2 * c.planes * c.grid * rb;
        let mut out = Vec::with_capacity(HEADER + payload_len + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.algorithm.to_le_bytes());
        out.push(c.grid as u8);
        out.push(c.planes as u8);
        out.push(codes.len() as u8);
        out.push(0);
        out.extend_from_slice(&((self.quality.clamp(0.0, 1.0) * 10000.0).round() as u16).to_le_bytes());
        out.extend_from_slice(&(payload_len as u32).to_le_bytes());
        for code in codes {
            for rows in [&code.bits, &code.mask] {
                for &r in rows.iter() {
                    out.extend_from_slice(&r.to_le_bytes()[..rb]);
                }
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse the binary format, validating everything.
    pub fn from_bytes(bytes: &[u8]) -> Result<Template, TemplateError> {
        if bytes.len() < HEADER + 4 {
            return Err(TemplateError::Truncated {
                got: bytes.len(),
                need: HEADER + 4,
            });
        }
        if &bytes[0..4] != MAGIC {
            return Err(TemplateError::BadMagic);
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let version = u16_at(4);
        if version != FORMAT_VERSION {
            return Err(TemplateError::UnsupportedVersion(version));
        }
        let (grid, planes, ncodes) = (bytes[8], bytes[9], bytes[10]);
        if !(1..=64).contains(&grid) || !(1..=32).contains(&planes) || !(1..=16).contains(&ncodes) {
            return Err(TemplateError::BadGeometry {
                grid,
                planes,
                codes: ncodes,
            });
        }
        let (g, p, n) = (grid as usize, planes as usize, ncodes as usize);
        let rb = row_bytes(g);
        let expected_payload = n * 2 * p * g * rb;
        let declared = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]) as usize;
        let expected = HEADER + expected_payload + 4;
        if bytes.len() < expected {
            return Err(TemplateError::Truncated {
                got: bytes.len(),
                need: expected,
            });
        }
        if declared != expected_payload || bytes.len() != expected {
            return Err(TemplateError::LengthMismatch {
                got: bytes.len(),
                expected,
            });
        }
        let body = &bytes[..expected - 4];
        let crc = u32::from_le_bytes([
            bytes[expected - 4],
            bytes[expected - 3],
            bytes[expected - 2],
            bytes[expected - 1],
        ]);
        if crc32fast::hash(body) != crc {
            return Err(TemplateError::ChecksumMismatch);
        }
        // Checked after the checksum so that corruption is reported as corruption.
        let algorithm = u16_at(6);
        if algorithm != ALGORITHM_ID {
            return Err(TemplateError::UnsupportedAlgorithm(algorithm));
        }
        if bytes[11] != 0 {
            return Err(TemplateError::NonCanonical("reserved byte is not zero"));
        }
        let q = u16_at(12);
        if q > 10000 {
            return Err(TemplateError::NonCanonical("quality above 1"));
        }
        let valid_bits: u64 = if g == 64 { u64::MAX } else { (1u64 << g) - 1 };
        let mut pos = HEADER;
        let mut read_rows = |count: usize| -> Result<Vec<u64>, TemplateError> {
            let mut rows = Vec::with_capacity(count);
            for _ in 0..count {
                let mut buf = [0u8; 8];
                buf[..rb].copy_from_slice(&bytes[pos..pos + rb]);
                pos += rb;
                let r = u64::from_le_bytes(buf);
                if r & !valid_bits != 0 {
                    return Err(TemplateError::NonCanonical("bits set beyond the grid"));
                }
                rows.push(r);
            }
            Ok(rows)
        };
        let mut codes = Vec::with_capacity(n);
        for _ in 0..n {
            let bits = read_rows(p * g)?;
            let mask = read_rows(p * g)?;
            codes.push(PalmCode {
                grid: g,
                planes: p,
                bits,
                mask,
            });
        }
        let code = codes.remove(0);
        Ok(Template {
            algorithm,
            quality: q as f32 / 10000.0,
            code,
            rotated: codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn template(seed: u64, grid: usize, planes: usize, rotations: usize) -> Template {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid: u64 = if grid == 64 { u64::MAX } else { (1u64 << grid) - 1 };
        let mut code = || PalmCode {
            grid,
            planes,
            bits: (0..planes * grid).map(|_| next() & valid).collect(),
            mask: (0..planes * grid).map(|_| next() & valid).collect(),
        };
        Template {
            algorithm: ALGORITHM_ID,
            quality: 0.5,
            code: code(),
            rotated: (0..rotations).map(|_| code()).collect(),
        }
    }

    #[test]
    fn round_trip() {
        for (g, p, r) in [(32, 6, 2), (1, 1, 0), (64, 3, 1), (17, 2, 0)] {
            let t = template(7, g, p, r);
            assert_eq!(Template::from_bytes(&t.to_bytes()).unwrap(), t);
        }
    }

    #[test]
    fn typed_errors() {
        let b = template(3, 32, 6, 2).to_bytes();
        assert!(matches!(
            Template::from_bytes(&b[..10]),
            Err(TemplateError::Truncated { .. })
        ));
        assert!(matches!(
            Template::from_bytes(&b[..b.len() - 1]),
            Err(TemplateError::Truncated { .. })
        ));
        let mut m = b.clone();
        m[0] = b'X';
        assert_eq!(Template::from_bytes(&m), Err(TemplateError::BadMagic));
        let mut m = b.clone();
        m[4] = 9;
        assert_eq!(
            Template::from_bytes(&m),
            Err(TemplateError::UnsupportedVersion(9))
        );
        let mut m = b.clone();
        m[100] ^= 0x10;
        assert_eq!(Template::from_bytes(&m), Err(TemplateError::ChecksumMismatch));
        let mut m = b.clone();
        m.push(0);
        assert!(matches!(
            Template::from_bytes(&m),
            Err(TemplateError::LengthMismatch { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Template::from_bytes(&bytes);
        }

        #[test]
        fn mutated_templates_are_rejected_or_identical(
            seed in any::<u64>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let t = template(seed, 32, 6, 2);
            let mut b = t.to_bytes();
            for (i, v) in &edits {
                let i = i.index(b.len());
                b[i] = *v;
            }
            if truncate {
                b.truncate(cut.index(b.len()));
            }
            // Any change is either rejected or (an edit that wrote the same byte) harmless.
            if let Ok(parsed) = Template::from_bytes(&b) {
                prop_assert_eq!(parsed, t);
            }
        }
    }
}
