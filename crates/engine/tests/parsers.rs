//! Property tests of the engine's two parsers of outside bytes: templates
//! ([`Template::from_bytes`]) and captures ([`decode`]). Whatever the bytes, the answer is a
//! value or a typed error, never a panic (the same properties as the `fuzz/` targets, in
//! the default test run).

use image::{ImageFormat, RgbImage};
use openpalm_engine::capture::{decode, DecodeError, MAX_SIDE, MIN_SIDE};
use openpalm_engine::code::PalmCode;
use openpalm_engine::template::{Template, TemplateError, ALGORITHM_ID};
use proptest::prelude::*;
use std::io::Cursor;
use std::sync::OnceLock;

fn code(grid: usize, planes: usize, words: &[u64], k: usize) -> PalmCode {
    let valid: u64 = if grid == 64 { u64::MAX } else { (1u64 << grid) - 1 };
    let row = |i: usize| words[(i + k * 7) % words.len()].rotate_left((i + k) as u32) & valid;
    PalmCode {
        grid,
        planes,
        bits: (0..planes * grid).map(row).collect(),
        mask: (0..planes * grid).map(|i| row(i + 1000)).collect(),
    }
}

prop_compose! {
    /// Any template the format can hold: every grid, plane and rotation count it allows.
    fn any_template()(
        grid in 1usize..=64,
        planes in 1usize..=32,
        rotations in 0usize..=15,
        quality in 0u16..=10000,
        words in proptest::collection::vec(any::<u64>(), 1..16),
    ) -> Template {
        Template {
            algorithm: ALGORITHM_ID,
            quality: quality as f32 / 10000.0,
            code: code(grid, planes, &words, 0),
            rotated: (1..=rotations).map(|k| code(grid, planes, &words, k)).collect(),
        }
    }
}

fn image(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, ((x ^ y) * 3) as u8])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A small valid PNG, JPEG and BMP, made once.
fn samples() -> &'static [(ImageFormat, Vec<u8>); 3] {
    static S: OnceLock<[(ImageFormat, Vec<u8>); 3]> = OnceLock::new();
    S.get_or_init(|| [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp].map(|f| (f, image(f))))
}

/// What every successful decode must satisfy.
fn sane(bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
    let c = decode(bytes)?;
    let (w, h) = (c.width(), c.height());
    assert!((MIN_SIDE as usize..=MAX_SIDE as usize).contains(&w));
    assert!((MIN_SIDE as usize..=MAX_SIDE as usize).contains(&h));
    for p in [&c.r, &c.g, &c.b] {
        assert_eq!(p.data.len(), w * h);
        assert!(p.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    Ok((w, h))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn templates_round_trip(t in any_template()) {
        let bytes = t.to_bytes();
        let back = Template::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn every_truncation_is_a_typed_truncation(t in any_template(), cut in any::<prop::sample::Index>()) {
        let bytes = t.to_bytes();
        let cut = cut.index(bytes.len());
        let e = Template::from_bytes(&bytes[..cut]).unwrap_err();
        prop_assert!(matches!(e, TemplateError::Truncated { .. }), "{:?} at {}", e, cut);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_template_parser(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        magic in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 6 {
            // Past the magic and version, where the interesting checks are.
            bytes[..6].copy_from_slice(b"OPTM\x01\x00");
        }
        if let Ok(t) = Template::from_bytes(&bytes) {
            prop_assert_eq!(t.to_bytes(), bytes);
        }
    }

    #[test]
    fn a_flipped_byte_is_rejected(t in any_template(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = t.to_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        prop_assert!(Template::from_bytes(&bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        header in 0usize..4,
    ) {
        let mut bytes = bytes;
        // Most random strings stop at format detection: give some a real signature.
        let sig: &[u8] = match header {
            0 => b"\x89PNG\r\n\x1a\n",
            1 => b"\xff\xd8\xff",
            2 => b"BM",
            _ => b"",
        };
        bytes.splice(0..0, sig.iter().copied());
        let _ = sane(&bytes);
    }

    #[test]
    fn truncated_and_corrupted_images_never_panic(
        which in 0usize..3,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let (format, full) = &samples()[which];
        let mut bytes = full[..cut.index(full.len())].to_vec();
        for (i, v) in &flips {
            if !bytes.is_empty() {
                let i = i.index(bytes.len());
                bytes[i] ^= *v;
            }
        }
        let got = sane(&bytes);
        if flips.is_empty() && *format == ImageFormat::Png && bytes.len() + 40 < full.len() {
            // A PNG cut inside its image data is incomplete: refused, with a reason.
            prop_assert!(got.is_err(), "a truncated PNG decoded");
        }
        if let Err(e) = got {
            // Typed, with a stable code.
            prop_assert!(!e.code().is_empty());
        }
    }
}

#[test]
fn the_samples_decode_whole() {
    for (f, bytes) in samples() {
        assert_eq!(sane(bytes), Ok((48, 40)), "{f:?}");
    }
}
