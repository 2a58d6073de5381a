//! A fast ROI renderer for galleries at scale: the capture the engine would see after its
//! own area resize, drawn directly at the engine's working side (64 px) instead of at 150 px.
//!
//! The full path ([`crate::render::render_roi`]) rasterises a 256x256 crease texture per
//! identity, renders a 150x150 RGB image from it (skin noise, blur, sensor noise, 8-bit
//! quantisation), and the engine then area-resizes that to 64x64. Most of that work is
//! averaged away. This renderer produces the 64x64 RGB planes directly, from the same
//! [`Identity`] and [`Sample`] (same seeds, same pose, light, contrast and blur draws):
//!
//! - **Creases** are evaluated analytically at each working pixel's palm coordinates (no
//!   texture). Each crease segment's Gaussian profile is widened by the blur the full path
//!   applies across it (texture interpolation, defocus, motion blur along its direction, and
//!   the engine's area resize, all as variances) and its depth lowered so that the darkening
//!   integrated across the crease is kept. Thin creases keep the full path's minimum width.
//! - **Skin texture** (the fine value noise) is point-sampled at the working pixels, blurred
//!   by the defocus and motion blur at working scale and scaled by [`FINE_GAIN`], a constant
//!   measured so that its variance matches the full path's after the area resize.
//! - **Sensor noise and 8-bit quantisation** are added per channel with the standard
//!   deviation they have after the full path's area resize (each working pixel averages
//!   about 5.5 full-resolution pixels, the exact area weights are used).
//! - Blotches, illumination gradient, vignetting, exposure and per-channel clipping are as in
//!   the full path (values are clipped before the sensor noise and again after it).
//!
//! What is approximated: the blur kernels are matched by their variance (the full path's box
//! and Gaussian kernels are not exactly Gaussian), crossing creases combine after blur rather
//! than before, the skin texture's spectrum differs in aliasing, and the sensor noise is
//! another draw of the same distribution. Visible band only. The engine's extraction itself
//! is untouched: the planes go through [`openpalm_engine::Engine::extract_capture`].
//!
//! Measured against the full render on the same identities and captures
//! (`examples/fast_vs_full.rs`, realistic difficulty): the line channel the engine codes
//! correlates at 0.98 per image after contrast normalisation; the engine's scores over 600
//! identities (seed 1) differ by +0.4% in impostor mean, +1.6% in impostor sd, +0.6% in
//! genuine mean and -3.3% in genuine sd; `crates/synth/tests/templates.rs` keeps them close.

use crate::generator::PX_PER_UNIT;
use crate::identity::{Identity, Polyline};
use crate::render::{BLOTCH_CH, CREASE_CH, DEVICE_ROI, ROI_SIDE};
use crate::sample::Sample;
use crate::util::{fast_normal, gaussian_blur, motion_blur, rng_for, ValueNoise};
use openpalm_engine::plane::Plane;
use openpalm_engine::{Capture, Engine};
use rand::Rng;

/// Gain on the point-sampled, blurred skin texture so that its standard deviation after
/// rendering matches the full path's after the area resize (measured with
/// `examples/fast_vs_full.rs fine`).
pub const FINE_GAIN: f32 = 0.72;

/// Working pixels per bucket cell side, for finding the pixels near a crease segment.
const CELL_PX: f32 = 2.0;

/// Renders ROI captures at the engine's working side. Cheap to share between threads.
#[derive(Clone, Debug)]
pub struct FastRoi {
    /// Side of the rendered capture (the engine's working side).
    pub side: usize,
    /// Side of the full path's render that this one stands for.
    pub full_side: usize,
    /// Per working row or column: sum of squared area-resize weights (noise variance factor).
    noise_var: Vec<f32>,
}

/// Per-thread buffers, reused between renders.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// Palm coordinates and blotch value of each working pixel.
    coords: Vec<[f32; 3]>,
    /// Crease darkening at every working pixel.
    crease: Vec<f32>,
    fine: Vec<f32>,
    cell_start: Vec<u32>,
    cell_pixels: Vec<u32>,
    cell_of: Vec<u32>,
    sorted_u: Vec<f32>,
    sorted_v: Vec<f32>,
    sorted_layers: [Vec<f32>; 3],
}

impl FastRoi {
    /// A renderer standing for `full_side` renders resized to `side`.
    pub fn new(full_side: usize, side: usize) -> Self {
        let scale = full_side as f64 / side as f64;
        let noise_var = (0..side)
            .map(|i| {
                let (a, b) = (i as f64 * scale, (i + 1) as f64 * scale);
                let (start, end) = (a.floor() as usize, (b.ceil() as usize).min(full_side));
                (start..end)
                    .map(|j| (((j + 1) as f64).min(b) - (j as f64).max(a)).max(0.0) / scale)
                    .map(|w| w * w)
                    .sum::<f64>() as f32
            })
            .collect();
        FastRoi {
            side,
            full_side,
            noise_var,
        }
    }

    /// Renders standing for [`ROI_SIDE`] captures at `engine`'s working side.
    pub fn for_engine(engine: &Engine) -> Self {
        FastRoi::new(ROI_SIDE, engine.config().code.work_side)
    }

    /// The visible-band capture of `sample` of `id`, at working side.
    pub fn capture(&self, id: &Identity, s: &Sample, scratch: &mut Scratch) -> Capture {
        let [r, g, b] = self.render(id, s, scratch);
        Capture {
            r,
            g,
            b,
            colour: true,
        }
    }

    /// Red, green and blue planes in [0, 1].
    pub fn render(&self, id: &Identity, s: &Sample, scratch: &mut Scratch) -> [Plane; 3] {
        let n = self.side;
        self.map_coords(id, s, scratch);
        let blur = Blur::new(s, self.full_side, n, id.right_hand);
        self.draw_creases(id, s, &blur, scratch);
        self.skin_texture(id, s, &blur, scratch);

        let (ca, sa) = (s.light_angle.cos(), s.light_angle.sin());
        let base: [f32; 3] = std::array::from_fn(|c| id.albedo[c] * s.light_colour[c] * DEVICE_ROI[c]);
        let mut planes = [Plane::new(n, n), Plane::new(n, n), Plane::new(n, n)];
        for y in 0..n {
            let fy = (y as f32 + 0.5) / n as f32 - 0.5;
            let row = y * n..(y + 1) * n;
            let (crease, fine) = (&scratch.crease[row.clone()], &scratch.fine[row.clone()]);
            let coords = &scratch.coords[row.clone()];
            for (c, plane) in planes.iter_mut().enumerate() {
                let out = &mut plane.data[row.clone()];
                for x in 0..n {
                    let fx = (x as f32 + 0.5) / n as f32 - 0.5;
                    let illum = (1.0 + s.light_strength * 2.0 * (ca * fx + sa * fy)).max(0.05);
                    let gain = illum * (1.0 - 0.12 * (fx * fx + fy * fy)) * s.exposure;
                    let skin = 1.0 + fine[x] + coords[x][2] * BLOTCH_CH[c];
                    out[x] = (base[c] * skin * (1.0 - crease[x] * CREASE_CH[c]) * gain).clamp(0.0, 1.0);
                }
            }
        }
        // Sensor noise and quantisation, at their standard deviation after the area resize.
        let q2 = 1.0 / (255.0f32 * 255.0 * 12.0);
        let mut rng = SplitMix(rng_for(s.noise_seed, s.identity, s.index as u64, 8).gen());
        for plane in planes.iter_mut() {
            for (y, row) in plane.data.chunks_exact_mut(n).enumerate() {
                for (v, area) in row.iter_mut().zip(&self.noise_var) {
                    let sd = s.noise * (0.5 + 0.5 * v.sqrt());
                    let sd = ((sd * sd + q2) * area * self.noise_var[y]).sqrt();
                    *v = (*v + sd * fast_normal(&mut rng)).clamp(0.0, 1.0);
                }
            }
        }
        planes
    }

    /// Palm coordinates (and blotch) of every working pixel: exact on a coarse grid,
    /// bilinear in between, like the full path.
    fn map_coords(&self, id: &Identity, s: &Sample, scratch: &mut Scratch) {
        let n = self.side;
        let step = 4;
        let (c, sn) = (s.rotation.cos(), s.rotation.sin());
        let blotch = ValueNoise::new(id.texture_seed ^ 0x5bd1_e995);
        let at = |x: f32, y: f32| -> [f32; 3] {
            let p = [x / n as f32 - 0.5, y / n as f32 - 0.5];
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
            [u, v, blotch.fbm(u * 3.5, v * 3.5, 2) * id.blotch_amp]
        };
        let gw = n.div_ceil(step) + 1;
        let mut grid = Vec::with_capacity(gw * gw);
        for gy in 0..gw {
            for gx in 0..gw {
                grid.push(at((gx * step) as f32 + 0.5, (gy * step) as f32 + 0.5));
            }
        }
        let inv = 1.0 / step as f32;
        scratch.coords.clear();
        for y in 0..n {
            let (gy, ty) = (y / step, (y % step) as f32 * inv);
            for x in 0..n {
                let (gx, tx) = (x / step, (x % step) as f32 * inv);
                let i = gy * gw + gx;
                let (a, b, c, d) = (grid[i], grid[i + 1], grid[i + gw], grid[i + gw + 1]);
                scratch.coords.push(std::array::from_fn(|k| {
                    let top = a[k] + (b[k] - a[k]) * tx;
                    let bot = c[k] + (d[k] - c[k]) * tx;
                    top + (bot - top) * ty
                }));
            }
        }
    }

    /// Crease depth per layer at every working pixel, blurred analytically.
    fn draw_creases(&self, id: &Identity, s: &Sample, blur: &Blur, scratch: &mut Scratch) {
        let n = self.side;
        let coords = &scratch.coords;
        // Bucket the pixels by palm position so that a segment visits only nearby pixels.
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        for p in coords {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        // Cells of CELL_PX working pixels at scale 1; coarser if an extreme pose spreads the
        // capture over a much larger part of the palm (at most 4n x 4n cells).
        let spread = (hi[0] - lo[0]).max(hi[1] - lo[1]);
        let cell = (CELL_PX / n as f32).max(spread / (4 * n) as f32);
        let cw = ((hi[0] - lo[0]) / cell) as usize + 1;
        let ch = ((hi[1] - lo[1]) / cell) as usize + 1;
        let cell_at = |u: f32, v: f32| -> usize {
            let cx = (((u - lo[0]) / cell) as usize).min(cw - 1);
            let cy = (((v - lo[1]) / cell) as usize).min(ch - 1);
            cy * cw + cx
        };
        scratch.cell_start.clear();
        scratch.cell_start.resize(cw * ch + 1, 0);
        scratch.cell_of.clear();
        for p in coords {
            let c = cell_at(p[0], p[1]);
            scratch.cell_of.push(c as u32);
            scratch.cell_start[c + 1] += 1;
        }
        for c in 0..cw * ch {
            scratch.cell_start[c + 1] += scratch.cell_start[c];
        }
        // Pixels, their palm positions and their crease depths in cell order (contiguous for
        // the segments' inner loops), scattered back at the end.
        scratch.cell_pixels.clear();
        scratch.cell_pixels.resize(coords.len(), 0);
        scratch.sorted_u.clear();
        scratch.sorted_u.resize(coords.len(), 0.0);
        scratch.sorted_v.clear();
        scratch.sorted_v.resize(coords.len(), 0.0);
        {
            let mut fill: Vec<u32> = scratch.cell_start[..cw * ch].to_vec();
            for (i, &c) in scratch.cell_of.iter().enumerate() {
                let j = fill[c as usize] as usize;
                scratch.cell_pixels[j] = i as u32;
                scratch.sorted_u[j] = coords[i][0];
                scratch.sorted_v[j] = coords[i][1];
                fill[c as usize] += 1;
            }
        }
        for l in scratch.sorted_layers.iter_mut() {
            l.clear();
            l.resize(n * n, 0.0);
        }
        let grid = Cells {
            lo,
            hi,
            cell,
            cw,
            ch,
            start: &scratch.cell_start,
            u: &scratch.sorted_u,
            v: &scratch.sorted_v,
        };
        let [l0, l1, l2] = &mut scratch.sorted_layers;
        for l in &id.principal {
            draw(l0, &grid, blur, l);
        }
        for l in &id.secondary {
            draw(l1, &grid, blur, l);
        }
        for l in &id.wrinkles {
            draw(l2, &grid, blur, l);
        }
        // Layers combine as in the full path: contrast-weighted sum, at most 0.9.
        let k = s.contrast;
        scratch.crease.clear();
        scratch.crease.resize(n * n, 0.0);
        for (j, &i) in scratch.cell_pixels.iter().enumerate() {
            scratch.crease[i as usize] = (k[0] * l0[j] + k[1] * l1[j] + k[2] * l2[j]).min(0.9);
        }
    }

    /// The fine skin texture at every working pixel, blurred at working scale.
    fn skin_texture(&self, id: &Identity, s: &Sample, blur: &Blur, scratch: &mut Scratch) {
        let n = self.side;
        let fine = ValueNoise::new(id.texture_seed);
        let amp = id.texture_amp * s.palm_texture * FINE_GAIN;
        scratch.fine.clear();
        scratch.fine.extend(
            scratch
                .coords
                .iter()
                .map(|p| fine.fbm(p[0] * 60.0, p[1] * 60.0, 2) * amp),
        );
        let r = self.full_side as f32 / n as f32;
        gaussian_blur(&mut scratch.fine, n, n, blur.defocus_px / r);
        motion_blur(&mut scratch.fine, n, n, blur.motion_px / r, s.motion_angle);
    }
}

/// The full path's blur, as variances in palm units.
struct Blur {
    /// Isotropic part: texture interpolation, defocus and the area resize.
    iso: f32,
    /// Variance of the motion blur along its direction and that direction in palm units.
    motion: f32,
    motion_dir: [f32; 2],
    /// Smallest crease width the full path's texture draws (palm units).
    min_width: f32,
    defocus_px: f32,
    motion_px: f32,
}

impl Blur {
    fn new(s: &Sample, full_side: usize, side: usize, right_hand: bool) -> Self {
        // Full-resolution pixels per palm unit.
        let ppu = full_side as f32 * s.scale;
        let defocus_px = if s.defocus < 0.2 { 0.0 } else { s.defocus };
        let r = full_side as f32 / side as f32;
        let iso_px = defocus_px * defocus_px + r * r / 12.0;
        let iso = iso_px / (ppu * ppu) + (1.0 / 6.0) / (PX_PER_UNIT * PX_PER_UNIT);
        let (motion_px, motion) = if s.motion_len < 1.0 {
            (0.0, 0.0)
        } else {
            let taps = (s.motion_len.ceil() as usize).max(2) + 1;
            let l = s.motion_len;
            let var = l * l * (taps + 1) as f32 / (12.0 * (taps - 1) as f32);
            (l, var / (ppu * ppu))
        };
        // Image direction to palm direction: the render's rotation, then the mirror.
        let (c, sn) = (s.rotation.cos(), s.rotation.sin());
        let (dx, dy) = (s.motion_angle.cos(), s.motion_angle.sin());
        let mut dir = [c * dx - sn * dy, sn * dx + c * dy];
        if right_hand {
            dir[0] = -dir[0];
        }
        Blur {
            iso,
            motion,
            motion_dir: dir,
            min_width: 0.6 / PX_PER_UNIT,
            defocus_px,
            motion_px,
        }
    }

    /// Blur variance across a segment from `a` to `b`.
    fn across(&self, a: [f32; 2], b: [f32; 2]) -> f32 {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len <= 0.0 {
            return self.iso + 0.5 * self.motion;
        }
        let cos = (-dy * self.motion_dir[0] + dx * self.motion_dir[1]) / len;
        self.iso + self.motion * cos * cos
    }
}

/// Working pixels bucketed by palm position.
struct Cells<'a> {
    lo: [f32; 2],
    hi: [f32; 2],
    cell: f32,
    cw: usize,
    ch: usize,
    start: &'a [u32],
    /// Palm positions of the pixels in cell order.
    u: &'a [f32],
    v: &'a [f32],
}

/// Crease profiles are cut at 3 widths: (d / w)^2 <= 9.
const PROFILE_MAX: f32 = 9.0;

/// `exp(-x / 2)` for `x` in `[0, PROFILE_MAX]` (relative error below 1e-4), branch-free
/// so that the crease loop vectorises.
#[inline(always)]
fn gauss(x: f32) -> f32 {
    // 2^y with y = -x / (2 ln 2) + 8 in [1.5, 8]: integer part by truncation, fraction by a
    // degree-5 polynomial, then scaled back by 2^-8 through the exponent bits.
    let y = x * (-0.5 * std::f32::consts::LOG2_E) + 8.0;
    let i = y as i32;
    let f = y - i as f32;
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5 + f * (0.055_504_11 + f * (0.009_618_129 + f * 0.001_333_355))));
    p * f32::from_bits(((i - 8 + 127) as u32) << 23)
}

/// Draw one polyline into `layer` (pixels in cell order): per segment, a Gaussian profile
/// widened by the blur across it (`w_eff^2 = w^2 + blur`), its depth scaled by `w / w_eff`
/// to keep the integrated darkening; the maximum over segments. Width and depth are
/// interpolated along a segment as the full path's texture does.
fn draw(layer: &mut [f32], g: &Cells, blur: &Blur, line: &Polyline) {
    for i in 0..line.points.len().saturating_sub(1) {
        let (a, b) = (line.points[i], line.points[i + 1]);
        let var = blur.across(a, b);
        let (w0, w1) = (
            line.width[i].max(blur.min_width),
            line.width[i + 1].max(blur.min_width),
        );
        let wmax = w0.max(w1);
        let reach = 3.0 * (wmax * wmax + var).sqrt();
        let (u0, u1) = (a[0].min(b[0]) - reach, a[0].max(b[0]) + reach);
        let (v0, v1) = (a[1].min(b[1]) - reach, a[1].max(b[1]) + reach);
        if u1 < g.lo[0] || v1 < g.lo[1] || u0 > g.hi[0] || v0 > g.hi[1] {
            continue;
        }
        let cx0 = ((u0 - g.lo[0]) / g.cell).max(0.0) as usize;
        let cy0 = ((v0 - g.lo[1]) / g.cell).max(0.0) as usize;
        let cx1 = (((u1 - g.lo[0]) / g.cell) as usize).min(g.cw - 1);
        let cy1 = (((v1 - g.lo[1]) / g.cell) as usize).min(g.ch - 1);
        if cx0 > cx1 || cy0 > cy1 {
            continue;
        }
        let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
        let len2 = abx * abx + aby * aby;
        let inv_len2 = if len2 > 0.0 { 1.0 / len2 } else { 0.0 };
        // At both ends: 1 / w_eff^2 and the blurred peak depth; linear in between.
        let (k0, k1) = (1.0 / (w0 * w0 + var), 1.0 / (w1 * w1 + var));
        let (p0, p1) = (line.depth[i] * w0 * k0.sqrt(), line.depth[i + 1] * w1 * k1.sqrt());
        let (dk, dp) = (k1 - k0, p1 - p0);
        for cy in cy0..=cy1 {
            let row = cy * g.cw;
            let (s, e) = (g.start[row + cx0] as usize, g.start[row + cx1 + 1] as usize);
            let pixels = g.u[s..e].iter().zip(&g.v[s..e]).zip(&mut layer[s..e]);
            for ((&pu, &pv), l) in pixels {
                let (apx, apy) = (pu - a[0], pv - a[1]);
                let t = ((apx * abx + apy * aby) * inv_len2).clamp(0.0, 1.0);
                let (ex, ey) = (apx - t * abx, apy - t * aby);
                let x = (ex * ex + ey * ey) * (k0 + dk * t);
                let v = (p0 + dp * t) * gauss(x.min(PROFILE_MAX));
                let v = if x < PROFILE_MAX { v } else { 0.0 };
                *l = l.max(v);
            }
        }
    }
}

/// SplitMix64: the per-pixel sensor noise stream (seeded from the sample's ChaCha stream;
/// ChaCha per pixel would cost as much as the rest of the render).
struct SplitMix(u64);

impl rand::RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core_fill(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        rand_core_fill(self, dest);
        Ok(())
    }
}

fn rand_core_fill(r: &mut SplitMix, dest: &mut [u8]) {
    use rand::RngCore;
    for chunk in dest.chunks_mut(8) {
        let v = r.next_u64().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_matches_exp() {
        let worst = (0..=9000)
            .map(|i| {
                let x = i as f32 / 1000.0;
                let e = (-0.5 * x).exp();
                ((gauss(x) - e) / e).abs()
            })
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "relative error {worst}");
    }

    #[test]
    fn noise_weights_match_the_engines_area_resize() {
        // White noise at 150 px, area-resized by the engine to 64 px: its variance is what
        // the per-pixel weights say.
        let f = FastRoi::new(150, 64);
        let mut rng = SplitMix(7);
        let mut p = Plane::new(150, 150);
        p.data.iter_mut().for_each(|v| *v = fast_normal(&mut rng));
        let small = p.resize_area(64, 64);
        let (_, sd) = small.mean_std();
        let mean_weight = f.noise_var.iter().sum::<f32>() / 64.0;
        let predicted = mean_weight * mean_weight;
        assert!(
            (sd * sd / predicted - 1.0).abs() < 0.06,
            "{} vs {predicted}",
            sd * sd
        );
    }
}
