//! Dense filter responses by FFT, and codes for any pose read off them.
//!
//! The working image is padded by edge replication, transformed once, multiplied by each
//! filter's spectrum and transformed back two orientations at a time (two real results share
//! one complex inverse transform). A pose of the palm (a small rotation and scale) then costs
//! only bilinear sampling: the response of the rotated image at orientation theta is the
//! response of the original at theta + angle, interpolated between orientation channels.

use crate::code::FilterBank;
use crate::plane::Plane;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Precomputed transforms and filter spectra for one working size.
#[derive(Clone)]
pub struct DenseBank {
    side: usize,
    pad: usize,
    n: usize,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    /// Spectra of the filters, in the transposed layout `fft2` produces, one per plane.
    spectra: Vec<Vec<Complex32>>,
}

impl std::fmt::Debug for DenseBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseBank")
            .field("side", &self.side)
            .field("fft", &self.n)
            .finish()
    }
}

fn transpose(buf: &[Complex32], out: &mut [Complex32], n: usize) {
    for y in 0..n {
        for x in 0..n {
            out[x * n + y] = buf[y * n + x];
        }
    }
}

impl DenseBank {
    pub fn new(bank: &FilterBank) -> DenseBank {
        let side = bank.config.work_side;
        let radius = bank.config.scales.iter().map(|s| s.radius).max().unwrap_or(1);
        // Pad by at least the kernel radius on each side; round the transform size up to a
        // product of small primes.
        let mut n = side + 2 * radius + 2;
        while !is_smooth(n) {
            n += 1;
        }
        let pad = (n - side) / 2;
        let mut planner = FftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let mut me = DenseBank {
            side,
            pad,
            n,
            forward,
            inverse,
            spectra: Vec::new(),
        };
        let orientations = bank.config.orientations;
        for (si, spec) in bank.config.scales.iter().enumerate() {
            let r = spec.radius as isize;
            let k = 2 * spec.radius + 1;
            for o in 0..orientations {
                let kern = bank.kernel(si, o);
                let mut buf = vec![Complex32::new(0.0, 0.0); n * n];
                for dy in 0..k {
                    for dx in 0..k {
                        // Correlation with an even kernel equals convolution: place it
                        // centred on the origin with wrap-around.
                        let y = (dy as isize - r).rem_euclid(n as isize) as usize;
                        let x = (dx as isize - r).rem_euclid(n as isize) as usize;
                        buf[y * n + x] = Complex32::new(kern[dy * k + dx], 0.0);
                    }
                }
                me.fft2(&mut buf);
                me.spectra.push(buf);
            }
        }
        me
    }

    fn fft2(&self, buf: &mut Vec<Complex32>) {
        let n = self.n;
        self.forward.process(buf);
        let mut t = vec![Complex32::new(0.0, 0.0); n * n];
        transpose(buf, &mut t, n);
        self.forward.process(&mut t);
        *buf = t;
    }

    fn ifft2(&self, buf: &mut Vec<Complex32>) {
        let n = self.n;
        self.inverse.process(buf);
        let mut t = vec![Complex32::new(0.0, 0.0); n * n];
        transpose(buf, &mut t, n);
        self.inverse.process(&mut t);
        *buf = t;
    }

    /// Responses of every filter at every pixel of the working image.
    pub fn dense(&self, work: &Plane) -> Vec<Plane> {
        let (n, pad, side) = (self.n, self.pad as isize, self.side);
        assert_eq!((work.width, work.height), (side, side));
        let mut img = vec![Complex32::new(0.0, 0.0); n * n];
        for (y, row) in img.chunks_exact_mut(n).enumerate() {
            let sy = (y as isize - pad).clamp(0, side as isize - 1) as usize;
            let src = &work.data[sy * side..(sy + 1) * side];
            for (x, v) in row.iter_mut().enumerate() {
                v.re = src[(x as isize - pad).clamp(0, side as isize - 1) as usize];
            }
        }
        self.fft2(&mut img);
        let scale = 1.0 / (n * n) as f32;
        let mut out = Vec::with_capacity(self.spectra.len());
        let mut pair = vec![Complex32::new(0.0, 0.0); n * n];
        for chunk in self.spectra.chunks(2) {
            let i = Complex32::new(0.0, 1.0);
            for (j, p) in pair.iter_mut().enumerate() {
                let a = img[j] * chunk[0][j];
                *p = if chunk.len() == 2 {
                    a + i * (img[j] * chunk[1][j])
                } else {
                    a
                };
            }
            self.ifft2(&mut pair);
            for part in 0..chunk.len() {
                out.push(Plane::from_fn(side, side, |x, y| {
                    let v = pair[(y + self.pad) * n + x + self.pad];
                    scale * if part == 0 { v.re } else { v.im }
                }));
            }
        }
        out
    }
}

fn is_smooth(mut n: usize) -> bool {
    for p in [2, 3, 5] {
        while n.is_multiple_of(p) {
            n /= p;
        }
    }
    n == 1
}

/// Working-image coordinate of a code cell's centre (the same convention as
/// [`FilterBank::responses`]).
fn cell(g: usize, stride: f32) -> f32 {
    ((g as f32 + 0.5) * stride - 0.5).round()
}

/// Where the code cells of one pose (a rotation and scale of the palm about the working
/// image's centre) land in the working image, precomputed once per engine.
#[derive(Clone, Debug)]
pub struct Pose {
    taps: Vec<Tap>,
    inside: Vec<bool>,
    /// Orientation shift in channels: the response of the rotated palm at orientation theta
    /// is the original's at theta + angle.
    channel_shift: f32,
    grid: usize,
}

impl Pose {
    pub fn new(side: usize, grid: usize, orientations: usize, angle: f32, scale: f32) -> Pose {
        Pose {
            taps: pose_taps(side, grid, angle, scale),
            inside: pose_inside(side, grid, angle, scale),
            channel_shift: angle / (std::f32::consts::PI / orientations as f32),
            grid,
        }
    }
}

/// Grid responses of a pose read off the dense responses (`scales` groups of `orientations`
/// planes). Returns one grid x grid plane per filter.
pub fn pose_responses(dense: &[Plane], orientations: usize, pose: &Pose) -> Vec<Plane> {
    let f0 = pose.channel_shift.floor();
    let w1 = pose.channel_shift - f0;
    let mut out = Vec::with_capacity(dense.len());
    for group in dense.chunks(orientations) {
        // Sample every channel once at the pose's cell positions.
        let sampled: Vec<Vec<f32>> = group
            .iter()
            .map(|ch| pose.taps.iter().map(|t| t.apply(&ch.data)).collect())
            .collect();
        for o in 0..orientations {
            let o0 = ((o as isize) + f0 as isize).rem_euclid(orientations as isize) as usize;
            let o1 = (o0 + 1) % orientations;
            let data = if w1 == 0.0 {
                sampled[o0].clone()
            } else {
                sampled[o0]
                    .iter()
                    .zip(&sampled[o1])
                    .map(|(a, b)| (1.0 - w1) * a + w1 * b)
                    .collect()
            };
            out.push(Plane {
                width: pose.grid,
                height: pose.grid,
                data,
            });
        }
    }
    out
}

/// Bilinear weights of one sample position.
#[derive(Clone, Debug)]
struct Tap {
    i: [usize; 4],
    w: [f32; 4],
}

impl Tap {
    #[inline]
    fn apply(&self, d: &[f32]) -> f32 {
        self.w[0] * d[self.i[0]]
            + self.w[1] * d[self.i[1]]
            + self.w[2] * d[self.i[2]]
            + self.w[3] * d[self.i[3]]
    }
}

/// Where each code cell of a pose lands in the working image (clamped to it).
fn pose_taps(side: usize, grid: usize, angle: f32, scale: f32) -> Vec<Tap> {
    let stride = side as f32 / grid as f32;
    let c = (side as f32 - 1.0) / 2.0;
    let (s, co) = angle.sin_cos();
    let max = (side - 1) as f32;
    let mut taps = Vec::with_capacity(grid * grid);
    for gy in 0..grid {
        for gx in 0..grid {
            let px = cell(gx, stride) - c;
            let py = cell(gy, stride) - c;
            let sx = (c + (co * px - s * py) / scale).clamp(0.0, max);
            let sy = (c + (s * px + co * py) / scale).clamp(0.0, max);
            let (x0, y0) = (sx as usize, sy as usize);
            let (x1, y1) = ((x0 + 1).min(side - 1), (y0 + 1).min(side - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            taps.push(Tap {
                i: [y0 * side + x0, y0 * side + x1, y1 * side + x0, y1 * side + x1],
                w: [(1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy],
            });
        }
    }
    taps
}

/// Validity of each grid cell for a pose: the palm mask sampled where the cell lands
/// (0 where the cell falls outside the working image).
pub fn pose_valid(mask: &Plane, pose: &Pose) -> Plane {
    let data = pose
        .taps
        .iter()
        .zip(&pose.inside)
        .map(|(t, &ok)| if ok { t.apply(&mask.data) } else { 0.0 })
        .collect();
    Plane {
        width: pose.grid,
        height: pose.grid,
        data,
    }
}

/// Whether each code cell of a pose lands inside the working image.
fn pose_inside(side: usize, grid: usize, angle: f32, scale: f32) -> Vec<bool> {
    let stride = side as f32 / grid as f32;
    let c = (side as f32 - 1.0) / 2.0;
    let (s, co) = angle.sin_cos();
    let max = (side - 1) as f32;
    (0..grid * grid)
        .map(|i| {
            let (px, py) = (cell(i % grid, stride) - c, cell(i / grid, stride) - c);
            let (sx, sy) = (c + (co * px - s * py) / scale, c + (s * px + co * py) / scale);
            (0.0..=max).contains(&sx) && (0.0..=max).contains(&sy)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::CodeConfig;

    #[test]
    fn dense_responses_equal_direct_filtering_on_the_grid() {
        let bank = FilterBank::new(CodeConfig {
            work_side: 64,
            grid: 32,
            ..CodeConfig::default()
        });
        let work = Plane::from_fn(64, 64, |x, y| {
            ((x * 7 + y * 3) % 11) as f32 - 5.0 + (x as f32 * 0.3).sin()
        });
        let direct = bank.responses(&work);
        let dense = DenseBank::new(&bank).dense(&work);
        let sampled = pose_responses(
            &dense,
            bank.config.orientations,
            &Pose::new(64, 32, bank.config.orientations, 0.0, 1.0),
        );
        for (d, s) in direct.iter().zip(&sampled) {
            for (a, b) in d.data.iter().zip(&s.data) {
                assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
            }
        }
    }

    /// The code of a pose read off the dense responses agrees with the code of the image
    /// actually rotated and scaled, on the reliable bits.
    #[test]
    fn pose_codes_agree_with_transformed_images() {
        let bank = FilterBank::new(CodeConfig::default());
        let dense_bank = DenseBank::new(&bank);
        // A palm-like pattern: several smooth dark curves at different angles.
        let work = Plane::from_fn(64, 64, |x, y| {
            let (x, y) = (x as f32, y as f32);
            let l1 = ((y - 0.4 * x - 10.0).abs() - 1.5).min(0.0);
            let l2 = ((x - 0.02 * (y - 30.0).powi(2) - 20.0).abs() - 1.5).min(0.0);
            let l3 = ((y + 0.7 * x - 60.0).abs() - 1.0).min(0.0);
            let l4 = ((0.3 * x + 5.0 * (0.2 * y).sin() - y * 0.1).sin() * 0.3).min(0.0);
            l1 + l2 + l3 + l4
        });
        let dense = dense_bank.dense(&work);
        let c = &bank.config;
        for (deg, scale) in [(4.0f32, 1.0f32), (-4.0, 1.0), (0.0, 0.9), (0.0, 1.1)] {
            let a = deg.to_radians();
            let pose = Pose::new(c.work_side, c.grid, c.orientations, a, scale);
            let posed =
                crate::code::encode(&pose_responses(&dense, c.orientations, &pose), c.grid, 0.2, None);
            let moved = work.rotate_scale(a, scale);
            let direct = crate::code::encode(&bank.responses(&moved), c.grid, 0.2, None);
            let (mut agree, mut total) = (0u32, 0u32);
            // Compare away from the border, where clamping differs.
            for p in 0..posed.planes {
                for y in 4..c.grid - 4 {
                    let i = p * c.grid + y;
                    let m = posed.mask[i] & direct.mask[i] & 0x0fff_fff0;
                    agree += (!(posed.bits[i] ^ direct.bits[i]) & m).count_ones();
                    total += m.count_ones();
                }
            }
            let rate = agree as f32 / total as f32;
            assert!(rate > 0.9, "pose ({deg}, {scale}): {rate}");
        }
    }
}
