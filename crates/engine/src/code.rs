//! The palm code: a bank of oriented even-symmetric line filters sampled on a grid, turned
//! into bit planes (per-orientation signs, with fragile bits masked) that compare by Hamming
//! distance.

use crate::plane::Plane;

/// One filter scale: an even-symmetric Gabor line detector.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleSpec {
    /// Wavelength of the modulation across the line, in working pixels.
    pub wavelength: f32,
    /// Gaussian sigma across the line (along the modulation).
    pub sigma_across: f32,
    /// Gaussian sigma along the line.
    pub sigma_along: f32,
    /// Kernel radius in working pixels.
    pub radius: usize,
}

/// Parameters of the palm code.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeConfig {
    /// Side of the working image the filters run on (the ROI is resampled to this).
    pub work_side: usize,
    /// Code grid side (positions per row and per column); at most 64.
    pub grid: usize,
    /// Number of filter orientations in [0, pi).
    pub orientations: usize,
    pub scales: Vec<ScaleSpec>,
    /// Fraction of the weakest responses of each orientation plane whose sign bits are
    /// masked as unreliable.
    pub fragile_fraction: f32,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            work_side: 64,
            grid: 32,
            orientations: 6,
            scales: vec![ScaleSpec {
                wavelength: 10.0,
                sigma_across: 2.8,
                sigma_along: 8.0,
                radius: 10,
            }],
            fragile_fraction: 0.1,
        }
    }
}

/// Precomputed filter kernels.
#[derive(Clone, Debug)]
pub struct FilterBank {
    pub config: CodeConfig,
    /// kernels[scale][orientation]: (2r+1)^2 weights, zero mean.
    kernels: Vec<Vec<Vec<f32>>>,
}

impl FilterBank {
    pub fn new(config: CodeConfig) -> Self {
        assert!(config.grid > 0 && config.grid <= 64, "grid must be in 1..=64");
        let kernels = config
            .scales
            .iter()
            .map(|s| {
                (0..config.orientations)
                    .map(|o| gabor_even(s, std::f32::consts::PI * o as f32 / config.orientations as f32))
                    .collect()
            })
            .collect();
        FilterBank { config, kernels }
    }

    pub fn planes(&self) -> usize {
        self.config.scales.len() * self.config.orientations
    }

    /// Raw filter responses on the code grid: responses[scale * orientations + o] is a
    /// grid x grid plane.
    pub fn responses(&self, work: &Plane) -> Vec<Plane> {
        let c = &self.config;
        assert_eq!(work.width, c.work_side);
        assert_eq!(work.height, c.work_side);
        let g = c.grid;
        let stride = c.work_side as f32 / g as f32;
        let mut out = Vec::with_capacity(self.planes());
        for (si, spec) in c.scales.iter().enumerate() {
            let r = spec.radius as isize;
            let k = 2 * spec.radius + 1;
            // Gather patches once per grid point and apply every orientation to them.
            let mut resp = vec![Plane::new(g, g); c.orientations];
            let mut patch = vec![0.0f32; k * k];
            for gy in 0..g {
                for gx in 0..g {
                    let cx = ((gx as f32 + 0.5) * stride - 0.5).round() as isize;
                    let cy = ((gy as f32 + 0.5) * stride - 0.5).round() as isize;
                    let inside = cx - r >= 0
                        && cy - r >= 0
                        && cx + r < work.width as isize
                        && cy + r < work.height as isize;
                    for dy in 0..k {
                        let yy = cy + dy as isize - r;
                        if inside {
                            let start = yy as usize * work.width + (cx - r) as usize;
                            patch[dy * k..(dy + 1) * k].copy_from_slice(&work.data[start..start + k]);
                        } else {
                            for dx in 0..k {
                                patch[dy * k + dx] = work.get_clamped(cx + dx as isize - r, yy);
                            }
                        }
                    }
                    for (o, kern) in self.kernels[si].iter().enumerate() {
                        let v = dot(kern, &patch);
                        resp[o].set(gx, gy, v);
                    }
                }
            }
            out.extend(resp);
        }
        out
    }

    pub fn kernel(&self, scale: usize, orientation: usize) -> &[f32] {
        &self.kernels[scale][orientation]
    }
}

/// Dot product with eight independent accumulators, so the compiler can keep it in SIMD
/// registers (a single running float sum must stay sequential).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Even-symmetric Gabor: a line detector for lines running along direction `theta`, with
/// the zero-frequency component removed so that brightness does not matter.
fn gabor_even(s: &ScaleSpec, theta: f32) -> Vec<f32> {
    let r = s.radius as isize;
    let (sin, cos) = theta.sin_cos();
    let mut k = Vec::with_capacity(((2 * r + 1) * (2 * r + 1)) as usize);
    let mut env = Vec::with_capacity(k.capacity());
    for y in -r..=r {
        for x in -r..=r {
            let (xf, yf) = (x as f32, y as f32);
            let along = xf * cos + yf * sin;
            let across = -xf * sin + yf * cos;
            let e = (-(across * across) / (2.0 * s.sigma_across * s.sigma_across)
                - (along * along) / (2.0 * s.sigma_along * s.sigma_along))
                .exp();
            env.push(e);
            k.push(e * (2.0 * std::f32::consts::PI * across / s.wavelength).cos());
        }
    }
    // Remove DC in proportion to the envelope, so the filter stays well localised.
    let dc = k.iter().sum::<f32>() / env.iter().sum::<f32>();
    for (v, e) in k.iter_mut().zip(&env) {
        *v -= dc * e;
    }
    let norm = k.iter().map(|v| v * v).sum::<f32>().sqrt();
    k.iter_mut().for_each(|v| *v /= norm);
    k
}

/// A packed code: `planes` bit planes of `grid` rows, one u64 per row (bit x = column x),
/// each with its own validity mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PalmCode {
    pub grid: usize,
    pub planes: usize,
    /// bits[p * grid + y]
    pub bits: Vec<u64>,
    /// mask[p * grid + y]; 1 = bit is reliable.
    pub mask: Vec<u64>,
}

impl PalmCode {
    pub fn valid_fraction(&self) -> f32 {
        let ones: u32 = self.mask.iter().map(|m| m.count_ones()).sum();
        ones as f32 / (self.grid * self.grid * self.planes) as f32
    }
}

/// Turn responses into sign planes with fragile bits masked.
pub fn encode(responses: &[Plane], grid: usize, fragile_fraction: f32, valid: Option<&Plane>) -> PalmCode {
    encode_with_cuts(responses, grid, &fragile_cuts(responses, fragile_fraction), valid)
}

/// Per plane, the response magnitude below which a bit counts as fragile: the
/// `fragile_fraction` quantile of the plane's magnitudes (negative = none).
pub fn fragile_cuts(responses: &[Plane], fragile_fraction: f32) -> Vec<f32> {
    responses
        .iter()
        .map(|resp| {
            if fragile_fraction <= 0.0 {
                return -1.0;
            }
            let mut mags: Vec<f32> = resp.data.iter().map(|v| v.abs()).collect();
            let idx = ((mags.len() as f32 * fragile_fraction) as usize).min(mags.len() - 1);
            *mags.select_nth_unstable_by(idx, |a, b| a.total_cmp(b)).1
        })
        .collect()
}

/// [`encode`] with given fragile-bit cuts (one per plane), e.g. those of another pose of the
/// same capture.
pub fn encode_with_cuts(responses: &[Plane], grid: usize, cuts: &[f32], valid: Option<&Plane>) -> PalmCode {
    let planes = responses.len();
    let mut bits = vec![0u64; planes * grid];
    let mut mask = vec![0u64; planes * grid];
    for (p, resp) in responses.iter().enumerate() {
        let cut = cuts[p];
        for y in 0..grid {
            let mut b = 0u64;
            let mut m = 0u64;
            for x in 0..grid {
                let v = resp.get(x, y);
                if v < 0.0 {
                    b |= 1 << x;
                }
                let ok = v.abs() > cut && valid.is_none_or(|vp| vp.get(x, y) > 0.5);
                if ok {
                    m |= 1 << x;
                }
            }
            bits[p * grid + y] = b;
            mask[p * grid + y] = m;
        }
    }
    PalmCode {
        grid,
        planes,
        bits,
        mask,
    }
}
