//! Decoding a capture (PNG, JPEG or BMP bytes) into colour planes, with typed errors.

use crate::plane::Plane;
use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest accepted side, in pixels.
pub const MAX_SIDE: u32 = 4096;
/// Smallest accepted side, in pixels.
pub const MIN_SIDE: u32 = 32;

/// Why a byte string is not a usable capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the capture is empty (0 bytes)")]
    Empty,
    #[error("the bytes are not a PNG, JPEG or BMP image")]
    UnsupportedFormat,
    #[error("the image is {width}x{height}; at most {max}x{max} is accepted", max = MAX_SIDE)]
    TooLarge { width: u32, height: u32 },
    #[error("the image is {width}x{height}; at least {min}x{min} is needed", min = MIN_SIDE)]
    TooSmallImage { width: u32, height: u32 },
    #[error("the image data is corrupt or truncated: {0}")]
    Corrupt(String),
}

impl DecodeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::UnsupportedFormat => "unsupported_format",
            DecodeError::TooLarge { .. } => "image_too_large",
            DecodeError::TooSmallImage { .. } => "image_too_small",
            DecodeError::Corrupt(_) => "corrupt_image",
        }
    }
}

/// A decoded capture: red, green and blue planes in [0, 1] (equal for grey sources).
#[derive(Clone, Debug)]
pub struct Capture {
    pub r: Plane,
    pub g: Plane,
    pub b: Plane,
    /// Whether the source had colour (false for grey images).
    pub colour: bool,
}

impl Capture {
    pub fn width(&self) -> usize {
        self.r.width
    }
    pub fn height(&self) -> usize {
        self.r.height
    }

    /// Build from interleaved 8-bit RGB.
    pub fn from_rgb8(width: usize, height: usize, rgb: &[u8]) -> Capture {
        assert_eq!(rgb.len(), width * height * 3, "rgb buffer size");
        let mut r = Plane::new(width, height);
        let mut g = Plane::new(width, height);
        let mut b = Plane::new(width, height);
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            r.data[i] = px[0] as f32 / 255.0;
            g.data[i] = px[1] as f32 / 255.0;
            b.data[i] = px[2] as f32 / 255.0;
        }
        let colour = r.data != g.data || g.data != b.data;
        Capture { r, g, b, colour }
    }

    /// Build from 8-bit grey.
    pub fn from_gray8(width: usize, height: usize, gray: &[u8]) -> Capture {
        assert_eq!(gray.len(), width * height, "gray buffer size");
        let p = Plane {
            width,
            height,
            data: gray.iter().map(|&v| v as f32 / 255.0).collect(),
        };
        Capture {
            r: p.clone(),
            g: p.clone(),
            b: p,
            colour: false,
        }
    }

    /// The palm-line channel: luminance weighted towards green and blue, where creases
    /// have the most contrast under visible light (red light scatters under the skin).
    pub fn line_channel(&self) -> Plane {
        self.line_channel_in(0, 0, self.width(), self.height())
    }

    /// [`Capture::line_channel`] of a rectangle only.
    pub fn line_channel_in(&self, x0: usize, y0: usize, width: usize, height: usize) -> Plane {
        let w = self.width();
        Plane::from_fn(width, height, |x, y| {
            let i = (y0 + y) * w + x0 + x;
            if self.colour {
                0.2 * self.r.data[i] + 0.5 * self.g.data[i] + 0.3 * self.b.data[i]
            } else {
                self.g.data[i]
            }
        })
    }

    /// Overwrite the pixel data (captures are biometric data: do not leave them in memory).
    pub fn zeroise(&mut self) {
        for p in [&mut self.r, &mut self.g, &mut self.b] {
            for v in p.data.iter_mut() {
                // Volatile write so the compiler cannot elide the wipe of a buffer about to be freed.
                unsafe { std::ptr::write_volatile(v, 0.0) };
            }
        }
    }
}

/// Decode PNG, JPEG or BMP bytes. Never panics on any input.
pub fn decode(bytes: &[u8]) -> Result<Capture, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnsupportedFormat)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Bmp) {
        return Err(DecodeError::UnsupportedFormat);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    check_dims(width, height)?;
    reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    // Decoders for these formats are memory safe, but guard against panics in any of them
    // so that a hostile byte string can never take the process down.
    let decoded = std::panic::catch_unwind(move || reader.decode())
        .map_err(|_| DecodeError::Corrupt("decoder panicked".into()))?
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let (w, h) = (decoded.width(), decoded.height());
    check_dims(w, h)?;
    let colour = decoded.color().has_color();
    if colour {
        let rgb = decoded.to_rgb8();
        Ok(Capture::from_rgb8(w as usize, h as usize, rgb.as_raw()))
    } else {
        let g = decoded.to_luma8();
        Ok(Capture::from_gray8(w as usize, h as usize, g.as_raw()))
    }
}

fn check_dims(width: u32, height: u32) -> Result<(), DecodeError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(DecodeError::TooLarge { width, height });
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(DecodeError::TooSmallImage { width, height });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_png() {
        let c = decode(&png(64, 48)).unwrap();
        assert_eq!((c.width(), c.height()), (64, 48));
        assert!(c.colour);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(decode(&[]).unwrap_err(), DecodeError::Empty);
        assert_eq!(
            decode(b"hello world, not an image").unwrap_err(),
            DecodeError::UnsupportedFormat
        );
        let p = png(64, 48);
        assert!(matches!(
            decode(&p[..p.len() / 2]).unwrap_err(),
            DecodeError::Corrupt(_)
        ));
        assert!(matches!(
            decode(&png(16, 16)).unwrap_err(),
            DecodeError::TooSmallImage { .. }
        ));
    }

    #[test]
    fn rejects_oversize_from_header() {
        // A BMP header claiming 5000x5000 pixels, with no pixel data.
        let mut bmp = Vec::new();
        bmp.extend_from_slice(b"BM");
        bmp.extend_from_slice(&(54u32 + 3 * 5000 * 5000).to_le_bytes());
        bmp.extend_from_slice(&[0, 0, 0, 0]);
        bmp.extend_from_slice(&54u32.to_le_bytes());
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&5000i32.to_le_bytes());
        bmp.extend_from_slice(&5000i32.to_le_bytes());
        bmp.extend_from_slice(&1u16.to_le_bytes());
        bmp.extend_from_slice(&24u16.to_le_bytes());
        bmp.extend_from_slice(&[0u8; 24]);
        assert_eq!(
            decode(&bmp).unwrap_err(),
            DecodeError::TooLarge {
                width: 5000,
                height: 5000
            }
        );
    }
}
