//! Transparency: every intermediate product of an extraction as a picture, so anyone can see
//! why two palms did or did not match.

use crate::capture::Capture;
use crate::engine::{Engine, InputKind, Trace};
use crate::error::ExtractError;
use crate::hand::{colour, HandGeometry, Point};
use crate::plane::Plane;
use image::{Rgb, RgbImage};

/// A named picture of one intermediate product.
pub struct Picture {
    /// File-name stem, e.g. `"03_roi"`.
    pub name: String,
    pub image: RgbImage,
}

/// Pictures of every intermediate product, and the extraction's outcome.
pub struct Inspection {
    pub pictures: Vec<Picture>,
    pub outcome: Result<crate::Extraction, ExtractError>,
    pub trace: Trace,
}

fn grey(p: &Plane, bytes: Vec<u8>) -> RgbImage {
    RgbImage::from_fn(p.width as u32, p.height as u32, |x, y| {
        let v = bytes[y as usize * p.width + x as usize];
        Rgb([v, v, v])
    })
}

fn upscale(img: RgbImage, min_side: u32) -> RgbImage {
    let k = (min_side / img.width().max(1)).max(1);
    if k == 1 {
        return img;
    }
    RgbImage::from_fn(img.width() * k, img.height() * k, |x, y| {
        *img.get_pixel(x / k, y / k)
    })
}

fn capture_rgb(c: &Capture) -> RgbImage {
    let q = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    RgbImage::from_fn(c.width() as u32, c.height() as u32, |x, y| {
        let i = y as usize * c.width() + x as usize;
        Rgb([q(c.r.data[i]), q(c.g.data[i]), q(c.b.data[i])])
    })
}

fn dot(img: &mut RgbImage, p: Point, r: i32, col: Rgb<u8>) {
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                let (x, y) = (p.x as i32 + dx, p.y as i32 + dy);
                if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                    img.put_pixel(x as u32, y as u32, col);
                }
            }
        }
    }
}

fn line(img: &mut RgbImage, a: Point, b: Point, col: Rgb<u8>) {
    let n = (a.x - b.x).abs().max((a.y - b.y).abs()).ceil().max(1.0) as usize;
    for i in 0..=n {
        let t = i as f32 / n as f32;
        dot(
            img,
            Point {
                x: a.x + (b.x - a.x) * t,
                y: a.y + (b.y - a.y) * t,
            },
            1,
            col,
        );
    }
}

/// The hand with its mask outline, palm disc, finger directions, valleys and ROI square.
pub fn draw_hand(capture: &Capture, geo: &HandGeometry) -> RgbImage {
    let mut img = capture_rgb(capture);
    // The contour is already in capture coordinates.
    for &p in &geo.contour {
        dot(&mut img, p, 1, Rgb([0, 255, 255]));
    }
    let c = geo.palm_centre;
    for k in 0..360 {
        let a = (k as f32).to_radians();
        dot(
            &mut img,
            Point {
                x: c.x + geo.palm_radius * a.cos(),
                y: c.y + geo.palm_radius * a.sin(),
            },
            0,
            Rgb([255, 255, 0]),
        );
    }
    dot(&mut img, c, 4, Rgb([255, 255, 0]));
    for &f in &geo.finger_points {
        line(&mut img, c, f, Rgb([80, 80, 255]));
    }
    for &v in &geo.valleys {
        dot(&mut img, v, 5, Rgb([255, 0, 0]));
    }
    let r = geo.roi_corners;
    for i in 0..4 {
        line(&mut img, r[i], r[(i + 1) % 4], Rgb([0, 255, 0]));
    }
    img
}

/// Bit plane (white = 1) with unreliable bits shown mid-grey.
fn code_picture(code: &crate::code::PalmCode, plane: usize) -> RgbImage {
    let g = code.grid;
    RgbImage::from_fn(g as u32, g as u32, |x, y| {
        let i = plane * g + y as usize;
        let bit = code.bits[i] >> x & 1 == 1;
        let ok = code.mask[i] >> x & 1 == 1;
        let v = if !ok {
            128
        } else if bit {
            255
        } else {
            0
        };
        Rgb([v, if ok { v } else { 64 }, v])
    })
}

impl Engine {
    /// Run the pipeline on a capture and render every intermediate product.
    pub fn inspect(&self, capture: &Capture, input: InputKind) -> Inspection {
        let mut trace = Trace::default();
        let outcome = self.extract_traced(capture, input, &mut trace);
        let mut pictures = Vec::new();
        let mut add = |name: String, image: RgbImage| pictures.push(Picture { name, image });
        add("00_capture".into(), capture_rgb(capture));
        if let Some(s) = &trace.segmentation {
            add("01_hand_mask".into(), grey(&s.mask, s.mask.to_u8_range(0.0, 1.0)));
            // The colour models' evidence behind the mask: white = hand, black = background.
            if let Some(e) = &s.evidence {
                add(
                    "01_hand_evidence".into(),
                    grey(e, e.to_u8_range(-colour::LLR_BG_CLAMP, colour::LLR_HAND_CLAMP)),
                );
            }
        }
        if let Some(geo) = &trace.hand {
            add("02_hand_geometry".into(), draw_hand(capture, geo));
        }
        if let Some(r) = &trace.region {
            add("03_roi".into(), upscale(grey(r, r.to_u8_range(0.0, 1.0)), 256));
        }
        if let Some(m) = &trace.palm_mask {
            add(
                "04_palm_mask".into(),
                upscale(grey(m, m.to_u8_range(0.0, 1.0)), 256),
            );
        }
        if let Some(w) = &trace.work {
            add(
                "05_normalised".into(),
                upscale(grey(w, w.to_u8_range(-2.5, 2.5)), 256),
            );
        }
        for (i, r) in trace.responses.iter().enumerate() {
            add(
                format!("06_response_{i:02}"),
                upscale(grey(r, r.to_u8_auto()), 256),
            );
        }
        if let Some(code) = &trace.code {
            for p in 0..code.planes {
                add(format!("07_code_{p:02}"), upscale(code_picture(code, p), 256));
            }
        }
        Inspection {
            pictures,
            outcome,
            trace,
        }
    }
}
