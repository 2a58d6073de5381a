//! Per-image colour models for hand segmentation.
//!
//! A fixed skin-colour box cannot tell a hand from a background of the same colour (wood,
//! skin-toned clutter, a warm wall under warm light). Instead, each capture gets its own two
//! models, fitted to that capture:
//! - the hand: a Gaussian in log-chroma (`u = ln R/G`, `v = ln B/G`, full covariance) times
//!   an independent, deliberately broad Gaussian in log-luma (`l = ln Y`), so shading,
//!   illumination gradients and exposure barely matter while chroma decides;
//! - the background: a smoothed 3-D histogram over (u, v, l), mixed with a uniform density
//!   so that a colour seen nowhere (a peg, a ring, a sleeve) counts as background rather
//!   than hand.
//!
//! The per-pixel log-likelihood ratio between them, smoothed over a small window, is the
//! hand evidence; see [`super::segment_detailed`] for how the models are seeded and iterated.

use crate::plane::Plane;

/// Range and bin width of each feature.
const U_RANGE: (f32, f32) = (-1.0, 2.0);
const V_RANGE: (f32, f32) = (-2.0, 1.0);
const L_RANGE: (f32, f32) = (-5.0, 0.0);
const UV_BINS: usize = 60;
const L_BINS: usize = 10;
/// Smallest channel value fed to the logarithm (about 1/255).
const FLOOR: f32 = 0.004;

/// Features of every pixel of an image.
#[derive(Clone, Debug)]
pub struct Features {
    pub width: usize,
    pub height: usize,
    /// ln(R/G)
    pub u: Vec<f32>,
    /// ln(B/G)
    pub v: Vec<f32>,
    /// ln(luma)
    pub l: Vec<f32>,
    /// Background-histogram bin of each pixel.
    bin: Vec<u16>,
}

/// Levels of the logarithm table (channel values are quantised to 1/LOG_LEVELS).
const LOG_LEVELS: usize = 4096;

/// ln of channel values at 1/4096 steps, from [`FLOOR`] up (a table instead of a libm call
/// per pixel and channel; the histogram bins are far coarser than its error).
fn log_table() -> Vec<f32> {
    (0..=LOG_LEVELS)
        .map(|k| (k as f32 / LOG_LEVELS as f32).max(FLOOR).ln())
        .collect()
}

impl Features {
    pub fn new(r: &Plane, g: &Plane, b: &Plane) -> Features {
        let n = r.data.len();
        let (mut u, mut v, mut l, mut bin) =
            (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0u16; n]);
        let table = log_table();
        let ln = |x: f32| table[((x * LOG_LEVELS as f32 + 0.5).max(0.0) as usize).min(LOG_LEVELS)];
        let scale = |(lo, hi): (f32, f32), bins: usize| (lo, bins as f32 / (hi - lo), bins - 1);
        let (su, sv, sl) = (
            scale(U_RANGE, UV_BINS),
            scale(V_RANGE, UV_BINS),
            scale(L_RANGE, L_BINS),
        );
        let quant = |x: f32, (lo, k, top): (f32, f32, usize)| (((x - lo) * k).max(0.0) as usize).min(top);
        for i in 0..n {
            let (cr, cg, cb) = (r.data[i], g.data[i], b.data[i]);
            let lg = ln(cg);
            let (fu, fv) = (ln(cr) - lg, ln(cb) - lg);
            let y = ln(0.299 * cr + 0.587 * cg + 0.114 * cb);
            u[i] = fu;
            v[i] = fv;
            l[i] = y;
            bin[i] = ((quant(fu, su) * UV_BINS + quant(fv, sv)) * L_BINS + quant(y, sl)) as u16;
        }
        Features {
            width: r.width,
            height: r.height,
            u,
            v,
            l,
            bin,
        }
    }
}

/// The hand's colour: a 2-D Gaussian in chroma times a 1-D Gaussian in log-luma.
#[derive(Clone, Debug, PartialEq)]
pub struct HandModel {
    /// Means of u, v and l.
    pub mean: [f32; 3],
    /// Inverse of the chroma covariance: [a, b, c] of [[a, b], [b, c]].
    inv: [f32; 3],
    /// Standard deviation of l.
    pub sd_l: f32,
    /// log of the density's normalising constant.
    log_norm: f32,
}

/// The fitted spreads are widened by this factor: the fit sees the palm's interior, while
/// fingers, creases and the hand's shaded edges vary a little more.
const WIDEN: f32 = 1.5;
/// Smallest chroma standard deviation of the hand model (keeps a model fitted to very
/// uniform skin from rejecting the skin's own small variations).
const MIN_SD_UV: f32 = 0.03;
/// Smallest luma standard deviation (shading and finger thickness change brightness a lot
/// more than chroma).
const MIN_SD_L: f32 = 0.35;

impl HandModel {
    /// Robust fit to the pixels `idx`: median start, then mean and covariance of the pixels
    /// within 3 standard deviations, twice. `None` with fewer than 20 pixels.
    pub fn fit(f: &Features, idx: &[usize]) -> Option<HandModel> {
        if idx.len() < 20 {
            return None;
        }
        let median = |x: &[f32]| {
            let mut s: Vec<f32> = idx.iter().map(|&i| x[i]).collect();
            let m = s.len() / 2;
            *s.select_nth_unstable_by(m, f32::total_cmp).1
        };
        let mad = |x: &[f32], m: f32| {
            let mut s: Vec<f32> = idx.iter().map(|&i| (x[i] - m).abs()).collect();
            let k = s.len() / 2;
            1.4826 * *s.select_nth_unstable_by(k, f32::total_cmp).1
        };
        let (mu, mv, ml) = (median(&f.u), median(&f.v), median(&f.l));
        let mut model = HandModel::from_moments(
            [mu, mv, ml],
            [mad(&f.u, mu).powi(2), 0.0, mad(&f.v, mv).powi(2)],
            mad(&f.l, ml),
        );
        for _ in 0..2 {
            let (mut n, mut s) = (0.0f64, [0.0f64; 3]);
            let mut inl = Vec::with_capacity(idx.len());
            for &i in idx {
                if model.chroma_d2(f.u[i], f.v[i]) < 9.0 {
                    n += 1.0;
                    s[0] += f.u[i] as f64;
                    s[1] += f.v[i] as f64;
                    s[2] += f.l[i] as f64;
                    inl.push(i);
                }
            }
            if n < 10.0 {
                return None;
            }
            let m = [s[0] / n, s[1] / n, s[2] / n];
            let mut c = [0.0f64; 4];
            for &i in &inl {
                let (du, dv, dl) = (f.u[i] as f64 - m[0], f.v[i] as f64 - m[1], f.l[i] as f64 - m[2]);
                c[0] += du * du;
                c[1] += du * dv;
                c[2] += dv * dv;
                c[3] += dl * dl;
            }
            // Trimming at 3 sd cuts a Gaussian's variance by about 3%; ignore that.
            model = HandModel::from_moments(
                [m[0] as f32, m[1] as f32, m[2] as f32],
                [(c[0] / n) as f32, (c[1] / n) as f32, (c[2] / n) as f32],
                ((c[3] / n).sqrt()) as f32,
            );
        }
        Some(model)
    }

    /// From means, the chroma covariance [var u, cov uv, var v] and the luma sd, with the
    /// minimum spreads applied.
    pub fn from_moments(mean: [f32; 3], cov: [f32; 3], sd_l: f32) -> HandModel {
        let k = WIDEN * WIDEN;
        let (a, b, c) = (
            k * cov[0] + MIN_SD_UV * MIN_SD_UV,
            k * cov[1],
            k * cov[2] + MIN_SD_UV * MIN_SD_UV,
        );
        let det = (a * c - b * b).max(1e-12);
        let sd_l = (WIDEN * sd_l).max(MIN_SD_L);
        let tau = std::f32::consts::TAU;
        HandModel {
            mean,
            inv: [c / det, -b / det, a / det],
            sd_l,
            log_norm: -(tau.ln() + 0.5 * det.ln()) - (0.5 * tau.ln() + sd_l.ln()),
        }
    }

    /// Squared Mahalanobis distance in chroma.
    pub fn chroma_d2(&self, u: f32, v: f32) -> f32 {
        let (du, dv) = (u - self.mean[0], v - self.mean[1]);
        self.inv[0] * du * du + 2.0 * self.inv[1] * du * dv + self.inv[2] * dv * dv
    }

    /// ln of the density at (u, v, l).
    pub fn log_density(&self, u: f32, v: f32, l: f32) -> f32 {
        let dl = (l - self.mean[2]) / self.sd_l;
        self.log_norm - 0.5 * (self.chroma_d2(u, v) + dl * dl)
    }
}

/// The background's colour: a smoothed histogram over (u, v, l) mixed with a uniform
/// density, stored as ln density per bin.
#[derive(Clone, Debug)]
pub struct BackgroundModel {
    log_density: Vec<f32>,
}

/// Weight of the uniform "any colour" component of the background model.
const UNIFORM_WEIGHT: f32 = 0.1;

impl BackgroundModel {
    /// Fit to the pixels `idx`; `None` with fewer than 20 pixels.
    pub fn fit(f: &Features, idx: impl Iterator<Item = usize>) -> Option<BackgroundModel> {
        let nb = UV_BINS * UV_BINS * L_BINS;
        let mut h = vec![0.0f32; nb];
        let mut n = 0usize;
        for i in idx {
            h[f.bin[i] as usize] += 1.0;
            n += 1;
        }
        if n < 20 {
            return None;
        }
        // Smooth with [1 2 1]/4 along each axis (each bin's neighbours share its colour up to
        // noise and a slight change of light); the ends repeat their bin.
        let mut tmp = vec![0.0f32; nb];
        for (stride, size) in [(UV_BINS * L_BINS, UV_BINS), (L_BINS, UV_BINS), (1, L_BINS)] {
            for outer in 0..nb / (stride * size) {
                for inner in 0..stride {
                    let base = outer * stride * size + inner;
                    for pos in 0..size {
                        let k = base + pos * stride;
                        let lo = if pos > 0 { h[k - stride] } else { h[k] };
                        let hi = if pos + 1 < size { h[k + stride] } else { h[k] };
                        tmp[k] = 0.25 * lo + 0.5 * h[k] + 0.25 * hi;
                    }
                }
            }
            std::mem::swap(&mut h, &mut tmp);
        }
        let vol = |r: (f32, f32)| r.1 - r.0;
        let total = vol(U_RANGE) * vol(V_RANGE) * vol(L_RANGE);
        let bin_vol = total / nb as f32;
        let uniform = UNIFORM_WEIGHT / total;
        let k = (1.0 - UNIFORM_WEIGHT) / (n as f32 * bin_vol);
        let empty = uniform.ln();
        Some(BackgroundModel {
            log_density: h
                .iter()
                .map(|&c| if c > 0.0 { (k * c + uniform).ln() } else { empty })
                .collect(),
        })
    }

    /// ln of the density at pixel `i` of the features the model is used with.
    pub fn log_density_at(&self, f: &Features, i: usize) -> f32 {
        self.log_density[f.bin[i] as usize]
    }
}

/// Clamps of the per-pixel log-likelihood ratio before smoothing, so that one odd pixel
/// cannot outvote its neighbours. Background evidence is clamped at half the hand's: over a
/// 3x3 window a straight hand edge stays where it is (3 x 6 = 6 x 3), while a line of
/// background one pixel thin across a finger (a crease, a shadow) is outvoted.
pub const LLR_HAND_CLAMP: f32 = 6.0;
pub const LLR_BG_CLAMP: f32 = 6.0;

/// Per-pixel log-likelihood ratio hand vs background, clamped, then averaged over a
/// (2r+1)^2 window.
pub fn log_likelihood_ratio(f: &Features, hand: &HandModel, bg: &BackgroundModel, r: usize) -> Plane {
    let data = (0..f.u.len())
        .map(|i| {
            (hand.log_density(f.u[i], f.v[i], f.l[i]) - bg.log_density_at(f, i))
                .clamp(-LLR_BG_CLAMP, LLR_HAND_CLAMP)
        })
        .collect();
    box_mean(
        &Plane {
            width: f.width,
            height: f.height,
            data,
        },
        r,
    )
}

/// Mean over a (2r+1)^2 window clipped to the frame (running sums: cost independent of r).
pub fn box_mean(p: &Plane, r: usize) -> Plane {
    if r == 0 {
        return p.clone();
    }
    let (w, h) = (p.width, p.height);
    // Horizontal window sums...
    let mut tmp = vec![0.0f32; w * h];
    let mut prefix = vec![0.0f32; w + 1];
    for y in 0..h {
        let row = &p.data[y * w..(y + 1) * w];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + row[x];
        }
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r + 1).min(w));
            tmp[y * w + x] = (prefix[b] - prefix[a]) / (b - a) as f32;
        }
    }
    // ...then vertical ones, whole rows at a time (each window row added once, removed once).
    let mut out = Plane::new(w, h);
    let mut acc = vec![0.0f32; w];
    let (mut lo, mut hi) = (0usize, 0usize);
    for y in 0..h {
        let (a, b) = (y.saturating_sub(r), (y + r + 1).min(h));
        while hi < b {
            acc.iter_mut()
                .zip(&tmp[hi * w..(hi + 1) * w])
                .for_each(|(s, t)| *s += t);
            hi += 1;
        }
        while lo < a {
            acc.iter_mut()
                .zip(&tmp[lo * w..(lo + 1) * w])
                .for_each(|(s, t)| *s -= t);
            lo += 1;
        }
        let k = 1.0 / (b - a) as f32;
        for (d, &s) in out.data[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *d = s * k;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Planes of one colour per pixel, chosen by `pick(x, y)`, with a small deterministic
    /// ripple so the data are not degenerate.
    fn planes(w: usize, h: usize, pick: impl Fn(usize, usize) -> [f32; 3]) -> (Plane, Plane, Plane) {
        let ch = |k: usize| {
            Plane::from_fn(w, h, |x, y| {
                let ripple = 1.0 + 0.03 * (((x * 7 + y * 13 + k * 5) % 11) as f32 / 10.0 - 0.5);
                pick(x, y)[k] * ripple
            })
        };
        (ch(0), ch(1), ch(2))
    }

    #[test]
    fn hand_model_fit_ignores_a_minority_of_other_colours() {
        let skin = [0.7, 0.5, 0.42];
        let (r, g, b) = planes(50, 40, |x, _| if x < 40 { skin } else { [0.2, 0.5, 0.8] });
        let f = Features::new(&r, &g, &b);
        let all: Vec<usize> = (0..f.u.len()).collect();
        let m = HandModel::fit(&f, &all).expect("enough pixels");
        let (u, v) = ((skin[0] / skin[1]).ln(), (skin[2] / skin[1]).ln());
        assert!(
            (m.mean[0] - u).abs() < 0.02 && (m.mean[1] - v).abs() < 0.02,
            "{:?}",
            m.mean
        );
        // The skin is far more likely under the model than the blue minority.
        let (i_skin, i_blue) = (0, 45);
        let ls = m.log_density(f.u[i_skin], f.v[i_skin], f.l[i_skin]);
        let lb = m.log_density(f.u[i_blue], f.v[i_blue], f.l[i_blue]);
        assert!(ls - lb > 20.0, "{ls} vs {lb}");
        assert!(HandModel::fit(&f, &all[..10]).is_none());
    }

    #[test]
    fn background_model_puts_unseen_colours_at_the_floor() {
        let (r, g, b) = planes(30, 30, |x, _| {
            if x < 15 {
                [0.1, 0.1, 0.11]
            } else {
                [0.7, 0.5, 0.42]
            }
        });
        let f = Features::new(&r, &g, &b);
        let dark: Vec<usize> = (0..f.u.len()).filter(|i| i % 30 < 15).collect();
        let bg = BackgroundModel::fit(&f, dark.iter().copied()).expect("enough pixels");
        let (seen, unseen) = (bg.log_density_at(&f, 0), bg.log_density_at(&f, 20));
        assert!(seen > unseen + 5.0, "{seen} vs {unseen}");
        let floor = UNIFORM_WEIGHT / (3.0 * 3.0 * 5.0);
        assert!((unseen - floor.ln()).abs() < 1e-4, "{unseen} vs {}", floor.ln());
        assert!(BackgroundModel::fit(&f, 0..5).is_none());
    }

    #[test]
    fn box_mean_matches_definition() {
        let p = Plane::from_fn(23, 17, |x, y| ((x * 7 + y * 3) % 10) as f32);
        for r in 0..4 {
            let fast = box_mean(&p, r);
            for y in 0..p.height {
                for x in 0..p.width {
                    let (x0, x1) = (x.saturating_sub(r), (x + r).min(p.width - 1));
                    let (y0, y1) = (y.saturating_sub(r), (y + r).min(p.height - 1));
                    let (mut s, mut n) = (0.0, 0.0);
                    for yy in y0..=y1 {
                        for xx in x0..=x1 {
                            s += p.get(xx, yy);
                            n += 1.0;
                        }
                    }
                    assert!((fast.get(x, y) - s / n).abs() < 1e-4, "r {r} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn log_likelihood_ratio_marks_the_hand_positive() {
        let skin = [0.7, 0.5, 0.42];
        let wood = [0.56, 0.37, 0.21];
        let (r, g, b) = planes(40, 30, |x, y| {
            if (10..30).contains(&x) && (8..22).contains(&y) {
                skin
            } else {
                wood
            }
        });
        let f = Features::new(&r, &g, &b);
        let inside = |i: usize| (10..30).contains(&(i % 40)) && (8..22).contains(&(i / 40));
        let hand_px: Vec<usize> = (0..f.u.len()).filter(|&i| inside(i)).collect();
        let hand = HandModel::fit(&f, &hand_px).expect("hand fit");
        let bg = BackgroundModel::fit(&f, (0..f.u.len()).filter(|&i| !inside(i))).expect("bg fit");
        let llr = log_likelihood_ratio(&f, &hand, &bg, 1);
        for (i, &v) in llr.data.iter().enumerate() {
            let (x, y) = (i % 40, i / 40);
            let interior = (12..28).contains(&x) && (10..20).contains(&y);
            let far = !(8..32).contains(&x) || !(6..24).contains(&y);
            assert!(!interior || v > 0.0, "hand at {x},{y}: {v}");
            assert!(!far || v < 0.0, "background at {x},{y}: {v}");
        }
    }
}
