//! Rasterising a sample of an identity: palm-centre ROIs (Tongji-like, 150x150) and whole
//! hands (COEP-like, 800x600), in the visible band (RGB) or the near infrared (grey).

use crate::difficulty::Background;
use crate::identity::{Finger, HandGeometry, Identity, IdentityTexture};
use crate::sample::Sample;
use crate::util::{
    fast_normal, gaussian_blur, motion_blur, rng_for, seg_dist, smoothstep, uniform, ValueNoise,
};
use openpalm_engine::Capture;
use rand::Rng;

/// Side of a synthetic ROI, like Tongji's crops.
pub const ROI_SIDE: usize = 150;
/// Whole-hand frame, like COEP's downscaled photos.
pub const HAND_WIDTH: usize = 800;
pub const HAND_HEIGHT: usize = 600;

/// Spectral band of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Band {
    /// Visible light, RGB.
    Visible,
    /// Near infrared, grey: creases faint, veins visible.
    Nir,
}

impl Band {
    pub fn name(&self) -> &'static str {
        match self {
            Band::Visible => "visible",
            Band::Nir => "nir",
        }
    }
}

impl std::str::FromStr for Band {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "visible" | "vis" | "rgb" => Ok(Band::Visible),
            "nir" | "infrared" => Ok(Band::Nir),
            other => Err(format!("unknown band {other:?}: expected visible or nir")),
        }
    }
}

/// An 8-bit image: RGB (3 channels) or grey (1 channel), row-major, interleaved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthImage {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl SynthImage {
    /// The engine's in-memory capture of this image.
    pub fn to_capture(&self) -> Capture {
        if self.channels == 3 {
            Capture::from_rgb8(self.width, self.height, &self.data)
        } else {
            Capture::from_gray8(self.width, self.height, &self.data)
        }
    }

    /// PNG bytes (fast compression; deterministic).
    pub fn encode_png(&self) -> Result<Vec<u8>, image::ImageError> {
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        use image::ImageEncoder;
        let mut out = Vec::new();
        let enc = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub);
        let ct = if self.channels == 3 {
            image::ExtendedColorType::Rgb8
        } else {
            image::ExtendedColorType::L8
        };
        enc.write_image(&self.data, self.width as u32, self.height as u32, ct)?;
        Ok(out)
    }

    /// Rec. 601 luma in [0, 255] per pixel.
    pub fn luma(&self) -> Vec<f32> {
        if self.channels == 1 {
            return self.data.iter().map(|&v| v as f32).collect();
        }
        self.data
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
            .collect()
    }
}

/// A rendered whole hand and its ground truth.
#[derive(Clone, Debug)]
pub struct HandRender {
    pub image: SynthImage,
    /// 1 where the pixel is mostly hand skin (palm, fingers, thumb; not the forearm beyond
    /// the wrist), before blur; else 0.
    pub mask: Vec<u8>,
}

/// Distance from the wrist to the elbow, palm units (a forearm is about 1.5 palm lengths).
const ELBOW: f32 = 3.0;
/// Short-sleeve colours seen at the elbow of a bare forearm.
const SHIRTS: [[f32; 3]; 4] = [
    [0.2, 0.22, 0.5],
    [0.85, 0.85, 0.83],
    [0.1, 0.1, 0.1],
    [0.25, 0.45, 0.3],
];
/// Radius of a COEP-style peg, palm units.
const PEG_RADIUS: f32 = 0.09;
/// Reader illuminant of the ROI device (Tongji's crops are pink-violet).
pub(crate) const DEVICE_ROI: [f32; 3] = [0.83, 0.81, 1.22];
/// Reader illuminant of the whole-hand device (warm white).
const DEVICE_HAND: [f32; 3] = [1.02, 1.0, 0.97];
/// How much a crease darkens each channel (creases are blood-red: green and blue drop most).
pub(crate) const CREASE_CH: [f32; 3] = [0.72, 1.0, 0.9];
/// How blotches (blood flow) change each channel.
pub(crate) const BLOTCH_CH: [f32; 3] = [0.6, 1.0, 0.85];

/// Palm coordinates of every pixel, computed on a coarse grid and interpolated (the mapping
/// is smooth).
fn map_pixels<const N: usize>(
    w: usize,
    h: usize,
    step: usize,
    f: impl Fn(f32, f32) -> [f32; N],
) -> Vec<[f32; N]> {
    let gw = w.div_ceil(step) + 1;
    let gh = h.div_ceil(step) + 1;
    let mut grid = Vec::with_capacity(gw * gh);
    for gy in 0..gh {
        for gx in 0..gw {
            grid.push(f((gx * step) as f32 + 0.5, (gy * step) as f32 + 0.5));
        }
    }
    let mut out = Vec::with_capacity(w * h);
    let inv = 1.0 / step as f32;
    for y in 0..h {
        let gy = y / step;
        let ty = (y % step) as f32 * inv;
        for x in 0..w {
            let gx = x / step;
            let tx = (x % step) as f32 * inv;
            let i = gy * gw + gx;
            let (a, b, c, d) = (grid[i], grid[i + 1], grid[i + gw], grid[i + gw + 1]);
            let mut p = [0.0; N];
            for k in 0..N {
                let top = a[k] + (b[k] - a[k]) * tx;
                let bot = c[k] + (d[k] - c[k]) * tx;
                p[k] = top + (bot - top) * ty;
            }
            out.push(p);
        }
    }
    out
}

/// Post-processing shared by all renders: illumination gradient, exposure, blur, sensor noise,
/// quantisation.
fn finish(planes: &mut [Vec<f32>], w: usize, h: usize, s: &Sample) -> Vec<u8> {
    let (ca, sa) = (s.light_angle.cos(), s.light_angle.sin());
    let mut gain = vec![0.0f32; w * h];
    for y in 0..h {
        let fy = (y as f32 + 0.5) / h as f32 - 0.5;
        for x in 0..w {
            let fx = (x as f32 + 0.5) / w as f32 - 0.5;
            let illum = (1.0 + s.light_strength * 2.0 * (ca * fx + sa * fy)).max(0.05);
            let vig = 1.0 - 0.12 * (fx * fx + fy * fy);
            gain[y * w + x] = illum * vig * s.exposure;
        }
    }
    for p in planes.iter_mut() {
        for (v, g) in p.iter_mut().zip(&gain) {
            *v *= g;
        }
        gaussian_blur(p, w, h, s.defocus);
        motion_blur(p, w, h, s.motion_len, s.motion_angle);
    }
    let mut rng = rng_for(s.noise_seed, s.identity, s.index as u64, 7);
    let n = planes.len();
    let mut out = vec![0u8; w * h * n];
    for i in 0..w * h {
        for (c, p) in planes.iter().enumerate() {
            let v = p[i].max(0.0);
            let sd = s.noise * (0.5 + 0.5 * v.min(1.0).sqrt());
            let v = v + sd * fast_normal(&mut rng);
            out[i * n + c] = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    }
    // A stray bit of randomness per image keeps the RNG stream use constant across bands.
    let _: u32 = rng.gen();
    out
}

/// Render a palm-centre ROI of `side` x `side` pixels.
pub fn render_roi(id: &Identity, tex: &IdentityTexture, s: &Sample, band: Band, side: usize) -> SynthImage {
    let (c, sn) = (s.rotation.cos(), s.rotation.sin());
    let fine = ValueNoise::new(id.texture_seed);
    let blotch = ValueNoise::new(id.texture_seed ^ 0x5bd1_e995);
    let coords = map_pixels(side, side, 10, |x, y| {
        let p = [x / side as f32 - 0.5, y / side as f32 - 0.5];
        let den = 1.0 + s.perspective[0] * p[0] + s.perspective[1] * p[1];
        let q = [p[0] / den / s.scale, p[1] / den / s.scale];
        let q = [
            c * q[0] - sn * q[1] + s.translation[0],
            sn * q[0] + c * q[1] + s.translation[1],
        ];
        let d = s.displacement(q);
        let u = 0.5 + q[0] + d[0];
        let v = 0.5 + q[1] + d[1];
        let u = if id.right_hand { 1.0 - u } else { u };
        // Blotches are smooth: the coarse grid carries them too.
        [u, v, blotch.fbm(u * 3.5, v * 3.5, 2) * id.blotch_amp]
    });
    let tex_amp = id.texture_amp * s.palm_texture;
    let n = side * side;
    let mut planes: Vec<Vec<f32>> = match band {
        Band::Visible => vec![vec![0.0; n]; 3],
        Band::Nir => vec![vec![0.0; n]],
    };
    for (i, &[u, v, b]) in coords.iter().enumerate() {
        let l = tex.sample(u, v);
        let f = fine.fbm(u * 60.0, v * 60.0, 2) * tex_amp;
        let crease = (s.contrast[0] * l[0] + s.contrast[1] * l[1] + s.contrast[2] * l[2]).min(0.9);
        match band {
            Band::Visible => {
                for ch in 0..3 {
                    let base = id.albedo[ch] * s.light_colour[ch] * DEVICE_ROI[ch];
                    planes[ch][i] = base * (1.0 + f + b * BLOTCH_CH[ch]) * (1.0 - crease * CREASE_CH[ch]);
                }
            }
            Band::Nir => {
                planes[0][i] =
                    id.nir_albedo * (1.0 + 0.6 * f + 0.5 * b) * (1.0 - 0.35 * crease) * (1.0 - 0.22 * l[3]);
            }
        }
    }
    let data = finish(&mut planes, side, side, s);
    SynthImage {
        width: side,
        height: side,
        channels: planes.len(),
        data,
    }
}

/// A finger posed for a capture: axis from `base` to `tip` (palm units, left-hand layout),
/// radius at the base.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PosedFinger {
    pub base: [f32; 2],
    pub tip: [f32; 2],
    pub radius: f32,
}

fn dir(angle: f32) -> [f32; 2] {
    [angle.sin(), -angle.cos()]
}

/// Fingers (index, middle, ring, little) and the thumb (two segments) for a finger spread of
/// `spread` radians between neighbours. At spread <= 0 the fingers touch each other.
pub fn pose_fingers(hand: &HandGeometry, spread: f32) -> ([PosedFinger; 4], [PosedFinger; 2]) {
    let open = (spread.to_degrees() / 8.0).clamp(0.0, 1.0);
    let mut closed = f32::MAX;
    for i in 0..3 {
        let gap = hand.fingers[i + 1].base[0] - hand.fingers[i].base[0];
        // Overlapping at the base so that the tapered fingers still touch at the tips.
        closed = closed.min(0.84 * (hand.fingers[i].radius + hand.fingers[i + 1].radius) / gap);
    }
    let closed = closed.min(1.0);
    let squeeze = closed + (1.0 - closed) * open;
    let mid = hand.fingers.iter().map(|f| f.base[0]).sum::<f32>() / 4.0;
    let fingers = std::array::from_fn(|i| {
        let f: &Finger = &hand.fingers[i];
        let base = [mid + (f.base[0] - mid) * squeeze, f.base[1]];
        let a = f.rest_angle * open + (i as f32 - 1.5) * spread;
        let d = dir(a);
        PosedFinger {
            base,
            tip: [base[0] + d[0] * f.length, base[1] + d[1] * f.length],
            radius: f.radius,
        }
    });
    let t = &hand.thumb;
    let thumb_open = (spread.to_degrees() / 10.0).clamp(0.0, 1.3);
    let a = t.rest_angle - 0.35 - 0.6 * thumb_open;
    let d1 = dir(a);
    let k = [
        t.base[0] + d1[0] * t.length * 0.55,
        t.base[1] + d1[1] * t.length * 0.55,
    ];
    let d2 = dir(a + 0.25);
    let tip = [k[0] + d2[0] * t.length * 0.45, k[1] + d2[1] * t.length * 0.45];
    let thumb = [
        PosedFinger {
            base: t.base,
            tip: k,
            radius: t.radius,
        },
        PosedFinger {
            base: k,
            tip,
            radius: t.radius * 0.9,
        },
    ];
    (fingers, thumb)
}

/// The posed hand's signed distance field (palm units, left-hand layout).
struct HandShape {
    palm_c: [f32; 2],
    palm_half: [f32; 2],
    corner: f32,
    thenar: ([f32; 2], [f32; 2], f32),
    fingers: [PosedFinger; 4],
    thumb: [PosedFinger; 2],
    forearm: ([f32; 2], [f32; 2], f32),
}

#[derive(Clone, Copy, Debug)]
struct ShapeSample {
    /// Signed distance to the whole hand (negative inside).
    d: f32,
    /// Signed distance to the palm proper (box and thenar).
    palm: f32,
    /// Closest finger (0..4; 4 = thumb) and the position along and across its axis.
    finger: usize,
    along: f32,
    across: f32,
    finger_d: f32,
}

fn smin(a: f32, b: f32, k: f32) -> f32 {
    let h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0);
    b + (a - b) * h - k * h * (1.0 - h)
}

impl HandShape {
    fn new(hand: &HandGeometry, spread: f32) -> Self {
        let (fingers, thumb) = pose_fingers(hand, spread);
        let palm_c = [
            (hand.palm_min[0] + hand.palm_max[0]) / 2.0,
            (hand.palm_min[1] + hand.palm_max[1]) / 2.0,
        ];
        let palm_half = [
            (hand.palm_max[0] - hand.palm_min[0]) / 2.0,
            (hand.palm_max[1] - hand.palm_min[1]) / 2.0,
        ];
        let mx = hand.palm_min[0];
        HandShape {
            palm_c,
            palm_half,
            corner: hand.corner,
            thenar: ([mx + 0.17, 0.55], [mx + 0.35, 1.3], 0.3),
            fingers,
            thumb,
            forearm: (
                [palm_c[0], hand.palm_max[1] - 0.3],
                [palm_c[0], hand.palm_max[1] + 12.0],
                hand.forearm_radius,
            ),
        }
    }

    fn at(&self, p: [f32; 2]) -> ShapeSample {
        let q = [
            (p[0] - self.palm_c[0]).abs() - (self.palm_half[0] - self.corner),
            (p[1] - self.palm_c[1]).abs() - (self.palm_half[1] - self.corner),
        ];
        let outside = (q[0].max(0.0).powi(2) + q[1].max(0.0).powi(2)).sqrt();
        let box_d = outside + q[0].max(q[1]).min(0.0) - self.corner;
        let (td, _) = seg_dist(p, self.thenar.0, self.thenar.1);
        let palm = smin(box_d, td - self.thenar.2, 0.1);
        let (fd, _) = seg_dist(p, self.forearm.0, self.forearm.1);
        let mut d = smin(palm, fd - self.forearm.2, 0.15);
        let mut best = (f32::MAX, 0usize, 0.0f32, 0.0f32);
        let all = self.fingers.iter().chain(self.thumb.iter()).enumerate();
        for (i, f) in all {
            let (dist, t) = seg_dist(p, f.base, f.tip);
            let r = f.radius * (1.0 - 0.18 * t);
            let fdist = dist - r;
            let idx = i.min(4);
            if fdist < best.0 {
                let len = ((f.tip[0] - f.base[0]).powi(2) + (f.tip[1] - f.base[1]).powi(2)).sqrt();
                let along = if i == 5 {
                    0.55 + 0.45 * t
                } else if i == 4 {
                    0.55 * t
                } else {
                    t
                };
                let _ = len;
                best = (fdist, idx, along, dist / r);
            }
            d = smin(d, fdist, 0.05);
        }
        ShapeSample {
            d,
            palm,
            finger: best.1,
            along: best.2,
            across: best.3,
            finger_d: best.0,
        }
    }
}

/// Map palm coordinates (after mirroring for a right hand) to image pixel coordinates,
/// ignoring perspective and non-rigid deformation (exact when `tilt` and `deformation` are 0).
pub fn hand_to_image(id: &Identity, s: &Sample, width: usize, height: usize, p: [f32; 2]) -> [f32; 2] {
    let (ppu, cx, cy) = hand_frame(s, width, height);
    let p = [if id.right_hand { 1.0 - p[0] } else { p[0] }, p[1]];
    let d = [p[0] - 0.5, p[1] - 0.5];
    let a = -(std::f32::consts::FRAC_PI_2 + s.rotation);
    let q = [a.cos() * d[0] - a.sin() * d[1], a.sin() * d[0] + a.cos() * d[1]];
    [cx + q[0] * ppu - 0.5, cy + q[1] * ppu - 0.5]
}

fn hand_frame(s: &Sample, width: usize, height: usize) -> (f32, f32, f32) {
    let ppu = width as f32 / 7.0 * s.hand_scale * s.scale;
    let cx = (0.56 + s.hand_shift[0]) * width as f32;
    let cy = (0.5 + s.hand_shift[1]) * height as f32;
    (ppu, cx, cy)
}

struct Blob {
    c: [f32; 2],
    r: [f32; 2],
    angle: f32,
    colour: [f32; 3],
}

/// A soft-edged rotated rectangle (room furniture, doors, windows, ceiling lights).
struct Rect {
    c: [f32; 2],
    half: [f32; 2],
    angle: f32,
    colour: [f32; 3],
    /// Edge softness in pixels (the background is out of focus).
    soft: f32,
}

impl Rect {
    /// Coverage in [0, 1] at pixel (x, y).
    fn cover(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.c[0], y - self.c[1]);
        let (ca, sa) = (self.angle.cos(), self.angle.sin());
        let (u, v) = ((ca * dx + sa * dy).abs(), (-sa * dx + ca * dy).abs());
        let d = (u - self.half[0]).max(v - self.half[1]);
        smoothstep(self.soft, -self.soft, d)
    }
}

/// Everything random about one capture's background, drawn once per capture.
struct Scene {
    kind: Background,
    noise: ValueNoise,
    fold: f32,
    blobs: Vec<Blob>,
    rects: Vec<Rect>,
    /// Ceiling or wall colour.
    base: [f32; 3],
    /// Ceiling tile side in pixels.
    tile: f32,
    gain: f32,
}

impl Scene {
    fn new(s: &Sample, width: usize, height: usize) -> Scene {
        let mut r = rng_for(s.noise_seed, s.identity, s.index as u64, 11);
        let noise = ValueNoise::new(r.gen());
        let fold: f32 = r.gen::<f32>() * std::f32::consts::PI;
        let (w, h) = (width as f32, height as f32);
        let mut blobs = Vec::new();
        let mut rects = Vec::new();
        let mut base = [0.0; 3];
        let mut tile = 0.0;
        match s.background {
            Background::Clutter => {
                blobs = (0..r.gen_range(10..26))
                    .map(|_| Blob {
                        c: [r.gen::<f32>() * w, r.gen::<f32>() * h],
                        r: [
                            (0.03 + 0.12 * r.gen::<f32>()) * w,
                            (0.03 + 0.1 * r.gen::<f32>()) * w,
                        ],
                        angle: r.gen::<f32>() * std::f32::consts::PI,
                        colour: [r.gen::<f32>(), r.gen::<f32>(), r.gen::<f32>()],
                    })
                    .collect();
            }
            Background::Ceiling => {
                // Off-white, from cool to warm, with tile seams and one or two lights.
                let warm = r.gen::<f32>();
                base = [0.82 + 0.08 * warm, 0.83 + 0.02 * warm, 0.88 - 0.1 * warm];
                tile = uniform(&mut r, 0.1, 0.22) * w;
                for _ in 0..r.gen_range(1..=2) {
                    let long = uniform(&mut r, 0.12, 0.3) * w;
                    rects.push(Rect {
                        c: [r.gen::<f32>() * w, r.gen::<f32>() * h],
                        half: [long, long * uniform(&mut r, 0.15, 0.5)],
                        angle: fold,
                        colour: [1.6, 1.6, 1.55],
                        soft: 4.0,
                    });
                }
            }
            Background::Room => {
                // A wall in a muted colour, a floor or ceiling band, a door, furniture, a
                // window; soft edges because the camera focuses on the hand.
                const WALLS: [[f32; 3]; 5] = [
                    [0.72, 0.7, 0.64],
                    [0.58, 0.63, 0.7],
                    [0.55, 0.6, 0.5],
                    [0.68, 0.68, 0.68],
                    [0.76, 0.68, 0.58],
                ];
                const THINGS: [[f32; 3]; 7] = [
                    [0.45, 0.3, 0.2],
                    [0.2, 0.2, 0.22],
                    [0.6, 0.15, 0.12],
                    [0.15, 0.25, 0.45],
                    [0.85, 0.85, 0.82],
                    [0.35, 0.4, 0.3],
                    [0.7, 0.55, 0.35],
                ];
                base = WALLS[r.gen_range(0..WALLS.len())];
                let tilt = (r.gen::<f32>() - 0.5) * 0.3;
                let band_y = uniform(&mut r, -0.1, 0.35) * h;
                rects.push(Rect {
                    c: [w / 2.0, band_y - h],
                    half: [2.0 * w, h],
                    angle: tilt,
                    colour: [0.5, 0.48, 0.45],
                    soft: 8.0,
                });
                for k in 0..r.gen_range(2..6) {
                    let colour = if k == 0 {
                        [1.3, 1.32, 1.35]
                    } else {
                        THINGS[r.gen_range(0..THINGS.len())]
                    };
                    rects.push(Rect {
                        c: [r.gen::<f32>() * w, r.gen::<f32>() * h],
                        half: [uniform(&mut r, 0.05, 0.2) * w, uniform(&mut r, 0.08, 0.35) * h],
                        angle: tilt + (r.gen::<f32>() - 0.5) * 0.1,
                        colour,
                        soft: uniform(&mut r, 4.0, 12.0),
                    });
                }
            }
            Background::DarkCloth | Background::LightWall | Background::Wood => {}
        }
        Scene {
            kind: s.background,
            noise,
            fold,
            blobs,
            rects,
            base,
            tile,
            gain: s.background_gain,
        }
    }

    fn colour(&self, x: f32, y: f32) -> [f32; 3] {
        let noise = &self.noise;
        let fold = self.fold;
        let mut col = match self.kind {
            Background::DarkCloth => {
                let n = noise.fbm(x / 70.0, y / 70.0, 3);
                let folds = (x * fold.cos() / 23.0
                    + y * fold.sin() / 23.0
                    + 4.0 * noise.fbm(x / 250.0, y / 250.0, 2))
                .sin();
                let v = 0.075 * (1.0 + 0.3 * n + 0.18 * folds) + 0.01 * noise.at(x / 1.5, y / 1.5);
                [v, v, v * 1.08]
            }
            Background::LightWall => {
                let n = noise.fbm(x / 160.0, y / 160.0, 3);
                let g = 1.0 + 0.04 * n + 0.01 * noise.at(x / 2.0, y / 2.0);
                [0.8 * g, 0.77 * g, 0.71 * g]
            }
            Background::Wood => {
                let warp = 30.0 * noise.fbm(x / 300.0, y / 90.0, 3);
                let grain = ((y * fold.cos() + x * fold.sin() + warp) / 7.0).sin();
                let fine = noise.fbm(x / 25.0, y / 4.0, 2);
                let v = 0.82 + 0.12 * grain + 0.06 * fine;
                [0.56 * v, 0.37 * v, 0.21 * v]
            }
            Background::Clutter => {
                let base = 0.45 * (1.0 + 0.08 * noise.fbm(x / 120.0, y / 120.0, 2));
                let mut col = [base, base, base * 1.03];
                for b in &self.blobs {
                    let (dx, dy) = (x - b.c[0], y - b.c[1]);
                    let (ca, sa) = (b.angle.cos(), b.angle.sin());
                    let ex = (ca * dx + sa * dy) / b.r[0];
                    let ey = (-sa * dx + ca * dy) / b.r[1];
                    let e = ex * ex + ey * ey;
                    if e < 1.0 {
                        let a = smoothstep(1.0, 0.85, e);
                        let shade = 0.85 + 0.15 * (1.0 - e);
                        for k in 0..3 {
                            col[k] += (b.colour[k] * shade - col[k]) * a;
                        }
                    }
                }
                col
            }
            Background::Ceiling => {
                // Light falls off away from the lights: a broad shading field.
                let shade = 1.0 + 0.1 * noise.fbm(x / 300.0, y / 300.0, 2);
                let (ca, sa) = (fold.cos(), fold.sin());
                let (u, v) = (ca * x + sa * y, -sa * x + ca * y);
                let seam = |t: f32| {
                    let d = (t / self.tile - (t / self.tile).round()).abs() * self.tile;
                    smoothstep(2.5, 0.5, d)
                };
                let g = shade * (1.0 - 0.18 * seam(u).max(seam(v))) + 0.008 * noise.at(x / 1.7, y / 1.7);
                let mut col = [self.base[0] * g, self.base[1] * g, self.base[2] * g];
                for rc in &self.rects {
                    let a = rc.cover(x, y);
                    if a > 0.0 {
                        for k in 0..3 {
                            col[k] += (rc.colour[k] - col[k]) * a;
                        }
                    }
                }
                col
            }
            Background::Room => {
                let shade = 1.0 + 0.12 * noise.fbm(x / 200.0, y / 200.0, 2);
                let mut col = [self.base[0] * shade, self.base[1] * shade, self.base[2] * shade];
                for rc in &self.rects {
                    let a = rc.cover(x, y);
                    if a > 0.0 {
                        for k in 0..3 {
                            col[k] += (rc.colour[k] * shade - col[k]) * a;
                        }
                    }
                }
                col
            }
        };
        for c in col.iter_mut() {
            *c *= self.gain;
        }
        col
    }
}

/// Render a whole hand (or, if the sample says so, an empty scene) in a `width` x `height`
/// frame.
pub fn render_hand(
    id: &Identity,
    tex: &IdentityTexture,
    s: &Sample,
    band: Band,
    width: usize,
    height: usize,
) -> HandRender {
    let (ppu, cx, cy) = hand_frame(s, width, height);
    let a = std::f32::consts::FRAC_PI_2 + s.rotation;
    let (ca, sa) = (a.cos(), a.sin());
    let coords = map_pixels(width, height, 8, |x, y| {
        let q = [(x - cx) / ppu, (y - cy) / ppu];
        let den = 1.0 + 0.5 * (s.perspective[0] * q[0] + s.perspective[1] * q[1]);
        let q = [q[0] / den, q[1] / den];
        let q = [ca * q[0] - sa * q[1], sa * q[0] + ca * q[1]];
        let d = s.displacement(q);
        let u = 0.5 + q[0] + d[0];
        let v = 0.5 + q[1] + d[1];
        [if id.right_hand { 1.0 - u } else { u }, v]
    });
    let shape = HandShape::new(&id.hand, s.spread);
    let scene = Scene::new(s, width, height);
    let peg_colours = [
        [0.1, 0.3, 0.85],
        [0.9, 0.8, 0.1],
        [0.1, 0.6, 0.3],
        [0.15, 0.35, 0.9],
    ];
    let pegs: Vec<([f32; 2], [f32; 3])> = if s.pegs && s.hand_present {
        (0..3)
            .map(|i| {
                let (f0, f1) = (shape.fingers[i], shape.fingers[i + 1]);
                let p0 = [
                    f0.base[0] + (f0.tip[0] - f0.base[0]) * 0.3,
                    f0.base[1] + (f0.tip[1] - f0.base[1]) * 0.3,
                ];
                let p1 = [
                    f1.base[0] + (f1.tip[0] - f1.base[0]) * 0.3,
                    f1.base[1] + (f1.tip[1] - f1.base[1]) * 0.3,
                ];
                ([(p0[0] + p1[0]) / 2.0, (p0[1] + p1[1]) / 2.0], peg_colours[i])
            })
            .collect()
    } else {
        Vec::new()
    };
    let fine = ValueNoise::new(id.texture_seed);
    let blotch = ValueNoise::new(id.texture_seed ^ 0x5bd1_e995);
    let tex_amp = id.texture_amp * s.palm_texture;
    let hm = &id.hand;
    let n = width * height;
    let nch = if band == Band::Visible { 3 } else { 1 };
    let mut planes = vec![vec![0.0f32; n]; nch];
    let mut mask = vec![0u8; n];
    let pix = 1.0 / ppu;
    let tone = if s.show_back {
        [id.albedo[0] * 0.9, id.albedo[1] * 0.78, id.albedo[2] * 0.74]
    } else {
        id.albedo
    };
    for (i, &[u, v]) in coords.iter().enumerate() {
        let (x, y) = ((i % width) as f32, (i / width) as f32);
        let mut col = scene.colour(x, y);
        for (pc, pcol) in &pegs {
            let d = ((u - pc[0]).powi(2) + (v - pc[1]).powi(2)).sqrt() / PEG_RADIUS;
            if d < 1.0 {
                let a = smoothstep(1.0, 1.0 - 2.0 * pix / PEG_RADIUS, d);
                let shade = 0.5 + 0.5 * (1.0 - d * d).sqrt();
                let hl = (1.0 - ((u - pc[0] + 0.025).powi(2) + (v - pc[1] + 0.025).powi(2)).sqrt() / 0.02)
                    .max(0.0);
                for k in 0..3 {
                    col[k] += ((pcol[k] * shade + 0.6 * hl).min(1.0) - col[k]) * a;
                }
            }
        }
        if s.hand_present {
            let sh = shape.at([u, v]);
            let cover = (0.5 - sh.d / pix).clamp(0.0, 1.0);
            if cover > 0.0 {
                let depth = -sh.d;
                let shade = 0.68 + 0.32 * smoothstep(0.0, 0.22, depth);
                let f = fine.fbm(u * 60.0, v * 60.0, 2) * tex_amp;
                let b = blotch.fbm(u * 3.5, v * 3.5, 2) * id.blotch_amp;
                let mut crease = 0.0;
                let mut skin = tone;
                let in_finger = sh.finger_d < sh.palm + 0.02 && sh.finger_d < 0.0;
                if !s.show_back {
                    let w_palm = smoothstep(0.04, -0.08, sh.palm) * (1.0 - if in_finger { 1.0 } else { 0.0 });
                    if w_palm > 0.0 {
                        let l = tex.sample(u, v);
                        crease =
                            w_palm * (s.contrast[0] * l[0] + s.contrast[1] * l[1] + s.contrast[2] * l[2]);
                    }
                    if in_finger && sh.across < 1.0 {
                        let joints: &[f32] = if sh.finger == 4 {
                            &[0.62]
                        } else {
                            &[0.12, 0.5, 0.76]
                        };
                        for &j in joints {
                            let t = (sh.along - j) / 0.012;
                            crease += 0.2 * s.palm_texture * (-0.5 * t * t).exp();
                        }
                    }
                } else if in_finger {
                    // Nails near the finger tips, faint knuckle wrinkles.
                    if sh.along > 0.83 && sh.across < 0.6 {
                        skin = [0.86, 0.72, 0.7];
                    }
                    for &j in &[0.45, 0.72] {
                        let t = (sh.along - j) / 0.02;
                        crease += 0.08 * (-0.5 * t * t).exp();
                    }
                }
                // The forearm beyond the wrist: sleeve or bracelet.
                let wrist = v - hm.palm_max[1];
                let mut cloth: Option<[f32; 3]> = None;
                match s.sleeve {
                    Some(sc) if wrist > 0.55 => cloth = Some(sc),
                    // A bare forearm ends at the elbow in a short sleeve (seen only when the
                    // hand is far enough for the elbow to be in the frame).
                    None if wrist > ELBOW => cloth = Some(SHIRTS[(s.noise_seed % 4) as usize]),
                    _ => {}
                }
                if s.bracelet && (0.18..0.26).contains(&wrist) {
                    cloth = Some([0.7, 0.08, 0.1]);
                }
                if s.ring && in_finger && sh.finger == 2 && (0.22..0.28).contains(&sh.along) {
                    cloth = Some([0.85, 0.68, 0.3]);
                }
                let crease = crease.min(0.9);
                let mut px = [0.0f32; 3];
                match (band, cloth) {
                    (_, Some(cc)) => {
                        for k in 0..3 {
                            px[k] = cc[k] * shade;
                        }
                    }
                    (Band::Visible, None) => {
                        for k in 0..3 {
                            px[k] = skin[k]
                                * DEVICE_HAND[k]
                                * shade
                                * (1.0 + f + b * BLOTCH_CH[k])
                                * (1.0 - crease * CREASE_CH[k]);
                        }
                    }
                    (Band::Nir, None) => {
                        let l = if s.show_back { [0.0; 4] } else { tex.sample(u, v) };
                        let g = id.nir_albedo
                            * shade
                            * (1.0 + 0.6 * f + 0.5 * b)
                            * (1.0 - 0.35 * crease)
                            * (1.0 - 0.22 * l[3]);
                        px = [g, g, g];
                    }
                }
                for k in 0..3 {
                    col[k] += (px[k] * s.light_colour[k] - col[k]) * cover;
                }
                // The mask is the hand (palm, fingers, thumb), not the forearm.
                if cover >= 0.5 && s.sleeve.is_none_or(|_| wrist <= 0.55) && wrist < 0.3 {
                    mask[i] = 1;
                }
            }
        }
        if nch == 3 {
            for k in 0..3 {
                planes[k][i] = col[k];
            }
        } else {
            // Backgrounds in the NIR look like their visible luminance.
            planes[0][i] = 0.3 * col[0] + 0.59 * col[1] + 0.11 * col[2];
        }
    }
    let data = finish(&mut planes, width, height, s);
    HandRender {
        image: SynthImage {
            width,
            height,
            channels: nch,
            data,
        },
        mask,
    }
}
