//! Small numeric helpers: seeded RNG streams, Gaussian draws, hashed value noise, blurs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent RNG stream for `(seed, a, b, tag)`. ChaCha is a PRF, so neighbouring inputs
/// give unrelated streams, and the stream does not depend on which thread asks for it.
pub(crate) fn rng_for(seed: u64, a: u64, b: u64, tag: u64) -> ChaCha8Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(&a.to_le_bytes());
    s[16..24].copy_from_slice(&b.to_le_bytes());
    s[24..].copy_from_slice(&tag.to_le_bytes());
    ChaCha8Rng::from_seed(s)
}

/// Standard normal draw (Box-Muller).
pub(crate) fn normal<R: Rng>(rng: &mut R) -> f32 {
    let u1: f32 = rng.gen::<f32>().max(1e-7);
    let u2: f32 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Fast approximately normal draw (Irwin-Hall: sum of four 16-bit uniforms, unit variance),
/// for per-pixel sensor noise where Box-Muller would dominate the render time.
#[inline]
pub(crate) fn fast_normal<R: Rng>(rng: &mut R) -> f32 {
    let x: u64 = rng.gen();
    let s = (x & 0xffff) + ((x >> 16) & 0xffff) + ((x >> 32) & 0xffff) + (x >> 48);
    // Mean 2 * 65535, variance 4 * 65536^2 / 12.
    (s as f32 - 131_070.0) * (3.0f32.sqrt() / 65_536.0)
}

/// Uniform draw in `[lo, hi)` (returns `lo` when the range is empty).
pub(crate) fn uniform<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        return lo;
    }
    lo + (hi - lo) * rng.gen::<f32>()
}

pub(crate) fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Hashed lattice value noise in [-1, 1]: a pure function of (seed, x, y).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ValueNoise {
    seed: u32,
}

impl ValueNoise {
    pub(crate) fn new(seed: u64) -> Self {
        ValueNoise {
            seed: (seed ^ (seed >> 32)) as u32,
        }
    }

    #[inline]
    fn hash(&self, x: i32, y: i32) -> f32 {
        let mut h = (x as u32).wrapping_mul(0x27d4_eb2d)
            ^ (y as u32).wrapping_mul(0x1656_67b1)
            ^ self.seed.wrapping_mul(0x9e37_79b9);
        h ^= h >> 15;
        h = h.wrapping_mul(0x2c1b_3c6d);
        h ^= h >> 12;
        h = h.wrapping_mul(0x297a_2d39);
        h ^= h >> 15;
        (h as f32 / u32::MAX as f32) * 2.0 - 1.0
    }

    #[inline]
    pub(crate) fn at(&self, x: f32, y: f32) -> f32 {
        // Truncation corrected for negatives (faster than floorf without SSE4.1).
        let ix = x as i32 - (x < 0.0) as i32;
        let iy = y as i32 - (y < 0.0) as i32;
        let (fx, fy) = (ix as f32, iy as f32);
        let (tx, ty) = (x - fx, y - fy);
        let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
        let a = self.hash(ix, iy);
        let b = self.hash(ix + 1, iy);
        let c = self.hash(ix, iy + 1);
        let d = self.hash(ix + 1, iy + 1);
        let top = a + (b - a) * sx;
        let bot = c + (d - c) * sx;
        top + (bot - top) * sy
    }

    /// Fractal sum of `octaves` octaves, roughly in [-1, 1].
    #[inline]
    pub(crate) fn fbm(&self, x: f32, y: f32, octaves: u32) -> f32 {
        let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
        for o in 0..octaves {
            let off = o as f32 * 17.31;
            sum += amp * self.at(x * freq + off, y * freq - off);
            norm += amp;
            amp *= 0.5;
            freq *= 2.03;
        }
        sum / norm
    }
}

/// Separable Gaussian blur of one plane in place, clamped borders.
pub(crate) fn gaussian_blur(data: &mut [f32], w: usize, h: usize, sigma: f32) {
    if sigma < 0.2 || w == 0 || h == 0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let (wi, hi) = (w as isize, h as isize);
    // Horizontal pass through a padded row.
    let mut padded = vec![0.0f32; w + 2 * r as usize];
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        let row = &data[y * w..(y + 1) * w];
        for (i, p) in padded.iter_mut().enumerate() {
            *p = row[(i as isize - r).clamp(0, wi - 1) as usize];
        }
        let out = &mut tmp[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            *o = k.iter().zip(&padded[x..x + k.len()]).map(|(a, b)| a * b).sum();
        }
    }
    // Vertical pass: whole rows at a time (contiguous, vectorisable).
    for y in 0..hi {
        let out = &mut data[y as usize * w..(y as usize + 1) * w];
        out.iter_mut().for_each(|v| *v = 0.0);
        for (j, kv) in k.iter().enumerate() {
            let yy = (y + j as isize - r).clamp(0, hi - 1) as usize;
            let src = &tmp[yy * w..(yy + 1) * w];
            for (o, s) in out.iter_mut().zip(src) {
                *o += kv * s;
            }
        }
    }
}

/// Linear motion blur of length `len` pixels along `angle`, in place: the mean of bilinear
/// shifted copies of the image (borders clamped).
pub(crate) fn motion_blur(data: &mut [f32], w: usize, h: usize, len: f32, angle: f32) {
    if len < 1.0 || w == 0 || h == 0 {
        return;
    }
    let taps = (len.ceil() as usize).max(2) + 1;
    let (dx, dy) = (angle.cos(), angle.sin());
    let src = data.to_vec();
    data.iter_mut().for_each(|v| *v = 0.0);
    let wt = 1.0 / taps as f32;
    let (wi, hi) = (w as isize, h as isize);
    let mut xs0 = vec![0usize; w];
    let mut xs1 = vec![0usize; w];
    for t in 0..taps {
        let s = (t as f32 / (taps - 1) as f32 - 0.5) * len;
        let (ox, oy) = (s * dx, s * dy);
        let (fx, fy) = (ox.floor(), oy.floor());
        let (tx, ty) = (ox - fx, oy - fy);
        let (ix, iy) = (fx as isize, fy as isize);
        for x in 0..w {
            xs0[x] = (x as isize + ix).clamp(0, wi - 1) as usize;
            xs1[x] = (x as isize + ix + 1).clamp(0, wi - 1) as usize;
        }
        let (w00, w10, w01, w11) = (
            (1.0 - tx) * (1.0 - ty) * wt,
            tx * (1.0 - ty) * wt,
            (1.0 - tx) * ty * wt,
            tx * ty * wt,
        );
        for y in 0..hi {
            let y0 = (y + iy).clamp(0, hi - 1) as usize;
            let y1 = (y + iy + 1).clamp(0, hi - 1) as usize;
            let (r0, r1) = (&src[y0 * w..(y0 + 1) * w], &src[y1 * w..(y1 + 1) * w]);
            let out = &mut data[y as usize * w..(y as usize + 1) * w];
            for x in 0..w {
                let (a, b) = (xs0[x], xs1[x]);
                out[x] += w00 * r0[a] + w10 * r0[b] + w01 * r1[a] + w11 * r1[b];
            }
        }
    }
}

/// Distance from `p` to segment `a`-`b` and the position `t` in [0, 1] of the closest point.
#[inline]
pub(crate) fn seg_dist(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> (f32, f32) {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let (apx, apy) = (p[0] - a[0], p[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 {
        ((apx * abx + apy * aby) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (apx - t * abx, apy - t * aby);
    ((dx * dx + dy * dy).sqrt(), t)
}
