//! An identity: one palm (and the hand around it), sampled from a seed.
//!
//! Coordinates are *palm units*: the palm-centre region of interest (what a Tongji-style ROI
//! crop shows) is the unit square `[0, 1]^2`, `u` across the palm, `v` from the finger bases
//! (v < 0) towards the wrist (v > 1). Geometry is laid out for a left hand (thumb at u < 0);
//! a right hand is its mirror image (`u -> 1 - u`), applied when rendering.

use crate::util::{normal, rng_for, seg_dist, uniform, ValueNoise};
use rand::Rng;

/// A crease or vein: a polyline with a width (Gaussian sigma, palm units) and a depth
/// (darkening in [0, 1]) at each vertex.
#[derive(Clone, Debug, PartialEq)]
pub struct Polyline {
    pub points: Vec<[f32; 2]>,
    pub width: Vec<f32>,
    pub depth: Vec<f32>,
}

/// One finger (or the thumb): a capsule from `base`, `length` long, pointing along
/// `rest_angle` (radians from the -v direction, positive towards +u) when the hand is relaxed.
#[derive(Clone, Debug, PartialEq)]
pub struct Finger {
    pub base: [f32; 2],
    pub length: f32,
    pub radius: f32,
    pub rest_angle: f32,
}

/// Palm and finger geometry of a whole-hand identity, in palm units.
#[derive(Clone, Debug, PartialEq)]
pub struct HandGeometry {
    /// Palm box corners (radial-distal and ulnar-proximal).
    pub palm_min: [f32; 2],
    pub palm_max: [f32; 2],
    pub corner: f32,
    /// Index, middle, ring, little.
    pub fingers: [Finger; 4],
    pub thumb: Finger,
    pub forearm_radius: f32,
}

/// How varied the population is. The defaults are tuned so that the engine's impostor score
/// distribution on synthetic ROIs resembles the one on real Tongji ROIs
/// (`examples/realism.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    /// Standard deviation of principal-line control points around the population mean, in
    /// palm units. Smaller: palms look alike (impostor scores rise).
    pub line_jitter: f32,
    /// Range of principal line depth (darkening).
    pub principal_depth: (f32, f32),
    /// Range of principal line width (Gaussian sigma, palm units).
    pub principal_width: (f32, f32),
    /// Range of the number of secondary creases.
    pub secondary_count: (usize, usize),
    pub secondary_depth: (f32, f32),
    /// Range of the number of fine wrinkles.
    pub wrinkle_count: (usize, usize),
    pub wrinkle_depth: (f32, f32),
    /// Range of the fine skin texture amplitude.
    pub texture: (f32, f32),
}

impl Default for Population {
    fn default() -> Self {
        Population {
            line_jitter: 0.035,
            principal_depth: (0.15, 0.7),
            principal_width: (0.008, 0.016),
            secondary_count: (4, 12),
            secondary_depth: (0.1, 0.3),
            wrinkle_count: (150, 450),
            wrinkle_depth: (0.05, 0.18),
            texture: (0.015, 0.04),
        }
    }
}

/// One synthetic palm.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub index: u64,
    pub right_hand: bool,
    /// Skin albedo (linear RGB in [0, 1]).
    pub albedo: [f32; 3],
    /// Skin reflectance in the near infrared.
    pub nir_albedo: f32,
    /// Heart, head and life lines.
    pub principal: Vec<Polyline>,
    pub secondary: Vec<Polyline>,
    pub wrinkles: Vec<Polyline>,
    /// Subcutaneous vein network (visible in NIR).
    pub veins: Vec<Polyline>,
    pub texture_seed: u64,
    pub texture_amp: f32,
    pub blotch_amp: f32,
    pub hand: HandGeometry,
}

/// Mean control points of the principal lines (left hand).
const HEART: [[f32; 2]; 4] = [[1.42, 0.10], [0.95, 0.02], [0.55, -0.04], [0.15, -0.32]];
const HEAD: [[f32; 2]; 4] = [[-0.42, 0.20], [0.15, 0.30], [0.60, 0.50], [1.12, 0.80]];
const LIFE: [[f32; 2]; 4] = [[-0.40, 0.24], [0.25, 0.40], [0.32, 0.95], [0.10, 1.60]];

fn bezier(p: &[[f32; 2]; 4], t: f32) -> [f32; 2] {
    let s = 1.0 - t;
    let (a, b, c, d) = (s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t);
    [
        a * p[0][0] + b * p[1][0] + c * p[2][0] + d * p[3][0],
        a * p[0][1] + b * p[1][1] + c * p[2][1] + d * p[3][1],
    ]
}

impl Identity {
    /// The identity number `index` of the population drawn with `seed`.
    pub fn generate(seed: u64, index: u64, pop: &Population) -> Identity {
        let mut rng = rng_for(seed, index, u64::MAX, 1);
        let r = &mut rng;
        let right_hand = r.gen_bool(0.5);

        // Skin: albedo between light and dark skin.
        let m: f32 = r.gen::<f32>().powf(1.3);
        let light = [0.86, 0.66, 0.58];
        let dark = [0.42, 0.26, 0.19];
        let mut albedo = [0.0; 3];
        for c in 0..3 {
            albedo[c] = (light[c] + (dark[c] - light[c]) * m) * (1.0 + 0.04 * normal(r));
        }
        let nir_albedo = uniform(r, 0.5, 0.66);

        // Principal lines: the population mean, a per-identity offset, and jittered control
        // points.
        let j = pop.line_jitter;
        let mut principal = Vec::with_capacity(3);
        let head_start_shift = [normal(r) * j * 0.6, normal(r) * j * 0.6];
        for (li, mean) in [HEART, HEAD, LIFE].iter().enumerate() {
            let off = [normal(r) * j * 0.7, normal(r) * j * 0.7];
            let mut cp = *mean;
            for (k, p) in cp.iter_mut().enumerate() {
                p[0] += off[0] + normal(r) * j;
                p[1] += off[1] + normal(r) * j;
                // Head and life lines often share their start.
                if li > 0 && k == 0 {
                    p[0] += head_start_shift[0];
                    p[1] += head_start_shift[1];
                }
            }
            let width = uniform(r, pop.principal_width.0, pop.principal_width.1);
            let depth = uniform(r, pop.principal_depth.0, pop.principal_depth.1);
            principal.push(curve(r, &cp, 56, width, depth, true));
        }

        // Secondary creases: a fate line often, then short creases anywhere.
        let mut secondary = Vec::new();
        if r.gen_bool(0.6) {
            let x0 = 0.5 + normal(r) * 0.12;
            let cp = [
                [x0, 1.6],
                [x0 + normal(r) * 0.08, 1.1],
                [x0 + normal(r) * 0.08, 0.6],
                [x0 + normal(r) * 0.12, uniform(r, -0.1, 0.5)],
            ];
            let w = uniform(r, 0.005, 0.011);
            let d = uniform(r, pop.secondary_depth.0, pop.secondary_depth.1);
            secondary.push(curve(r, &cp, 40, w, d, true));
        }
        let n_sec = r.gen_range(pop.secondary_count.0..=pop.secondary_count.1.max(pop.secondary_count.0));
        for _ in 0..n_sec {
            let start = [uniform(r, -0.3, 1.3), uniform(r, -0.3, 1.4)];
            let ang = uniform(r, 0.0, std::f32::consts::PI);
            let len = uniform(r, 0.15, 0.55);
            let (dx, dy) = (ang.cos() * len, ang.sin() * len);
            let bend = normal(r) * 0.08 * len;
            let cp = [
                start,
                [start[0] + dx / 3.0 - dy * bend, start[1] + dy / 3.0 + dx * bend],
                [
                    start[0] + 2.0 * dx / 3.0 - dy * bend,
                    start[1] + 2.0 * dy / 3.0 + dx * bend,
                ],
                [start[0] + dx, start[1] + dy],
            ];
            let w = uniform(r, 0.004, 0.009);
            let d = uniform(r, pop.secondary_depth.0, pop.secondary_depth.1);
            secondary.push(curve(r, &cp, 20, w, d, false));
        }

        // Fine wrinkles, oriented by a smooth field and clustered by a density field.
        let field = ValueNoise::new(r.gen());
        let density = ValueNoise::new(r.gen());
        let base_angle = uniform(r, 0.0, std::f32::consts::PI);
        let n_wr = r.gen_range(pop.wrinkle_count.0..=pop.wrinkle_count.1.max(pop.wrinkle_count.0));
        let mut wrinkles = Vec::with_capacity(n_wr);
        let mut tries = 0;
        while wrinkles.len() < n_wr && tries < n_wr * 6 {
            tries += 1;
            let p = [uniform(r, -0.35, 1.35), uniform(r, -0.4, 1.5)];
            let dens = 0.5 + 0.5 * density.fbm(p[0] * 2.5, p[1] * 2.5, 2);
            if r.gen::<f32>() > dens.clamp(0.05, 1.0) {
                continue;
            }
            let ang = base_angle + 1.6 * field.fbm(p[0] * 1.8, p[1] * 1.8, 2) + normal(r) * 0.25;
            let len = uniform(r, 0.03, 0.13);
            let bend = normal(r) * 0.15;
            let (c, s) = (ang.cos(), ang.sin());
            let pts = vec![
                [p[0] - c * len / 2.0, p[1] - s * len / 2.0],
                [p[0] - s * bend * len, p[1] + c * bend * len],
                [p[0] + c * len / 2.0, p[1] + s * len / 2.0],
            ];
            let w = uniform(r, 0.0025, 0.0055);
            let d = uniform(r, pop.wrinkle_depth.0, pop.wrinkle_depth.1);
            wrinkles.push(Polyline {
                points: pts,
                width: vec![w * 0.6, w, w * 0.6],
                depth: vec![d * 0.3, d, d * 0.3],
            });
        }

        let veins = vein_network(r);
        let texture_seed = r.gen();
        let texture_amp = uniform(r, pop.texture.0, pop.texture.1);
        let blotch_amp = uniform(r, 0.03, 0.09);
        let hand = hand_geometry(r);
        Identity {
            index,
            right_hand,
            albedo,
            nir_albedo,
            principal,
            secondary,
            wrinkles,
            veins,
            texture_seed,
            texture_amp,
            blotch_amp,
            hand,
        }
    }

    /// Rasterise the creases (and the veins if `veins`; only the NIR band shows them) over
    /// `domain` (palm units: u0, v0, u1, v1).
    pub fn texture(&self, domain: [f32; 4], px_per_unit: f32, veins: bool) -> IdentityTexture {
        let width = ((domain[2] - domain[0]) * px_per_unit).ceil() as usize + 1;
        let height = ((domain[3] - domain[1]) * px_per_unit).ceil() as usize + 1;
        let mut tex = IdentityTexture {
            origin: [domain[0], domain[1]],
            px_per_unit,
            width,
            height,
            data: vec![[0.0; LAYERS]; width * height],
        };
        for l in &self.principal {
            tex.draw(0, l);
        }
        for l in &self.secondary {
            tex.draw(1, l);
        }
        for l in &self.wrinkles {
            tex.draw(2, l);
        }
        if veins {
            for l in &self.veins {
                tex.draw(3, l);
            }
        }
        tex
    }
}

/// Domain of the texture needed for ROI renders (the unit square plus pose margin).
pub const ROI_DOMAIN: [f32; 4] = [-0.35, -0.35, 1.35, 1.35];
/// Domain of the texture needed for whole-hand renders (the whole palm).
pub const HAND_DOMAIN: [f32; 4] = [-0.6, -0.6, 1.6, 1.75];

/// Layers: 0 principal lines, 1 secondary creases, 2 wrinkles, 3 veins.
pub const LAYERS: usize = 4;

/// Creases and veins rasterised in palm coordinates, looked up per sample (so a sample costs
/// a warp, not a redraw).
#[derive(Clone, Debug)]
pub struct IdentityTexture {
    pub origin: [f32; 2],
    pub px_per_unit: f32,
    pub width: usize,
    pub height: usize,
    pub data: Vec<[f32; LAYERS]>,
}

impl IdentityTexture {
    fn draw(&mut self, layer: usize, line: &Polyline) {
        let s = self.px_per_unit;
        for i in 0..line.points.len().saturating_sub(1) {
            let a = line.points[i];
            let b = line.points[i + 1];
            let wmax = line.width[i].max(line.width[i + 1]);
            let reach = 3.0 * wmax + 1.0 / s;
            let x0 = (((a[0].min(b[0]) - reach - self.origin[0]) * s).floor().max(0.0)) as usize;
            let y0 = (((a[1].min(b[1]) - reach - self.origin[1]) * s).floor().max(0.0)) as usize;
            let x1 = (((a[0].max(b[0]) + reach - self.origin[0]) * s).ceil() as isize)
                .min(self.width as isize - 1);
            let y1 = (((a[1].max(b[1]) + reach - self.origin[1]) * s).ceil() as isize)
                .min(self.height as isize - 1);
            if x1 < 0 || y1 < 0 {
                continue;
            }
            for y in y0..=y1 as usize {
                for x in x0..=x1 as usize {
                    let p = [self.origin[0] + x as f32 / s, self.origin[1] + y as f32 / s];
                    let (d, t) = seg_dist(p, a, b);
                    // Never thinner than about a texel, so thin creases do not alias.
                    let w = (line.width[i] + (line.width[i + 1] - line.width[i]) * t).max(0.6 / s);
                    if d > 3.0 * w {
                        continue;
                    }
                    let dep = line.depth[i] + (line.depth[i + 1] - line.depth[i]) * t;
                    let v = dep * (-0.5 * (d / w) * (d / w)).exp();
                    let cell = &mut self.data[y * self.width + x][layer];
                    if v > *cell {
                        *cell = v;
                    }
                }
            }
        }
    }

    /// Bilinear lookup; zero outside the domain.
    #[inline]
    pub fn sample(&self, u: f32, v: f32) -> [f32; LAYERS] {
        let x = (u - self.origin[0]) * self.px_per_unit;
        let y = (v - self.origin[1]) * self.px_per_unit;
        if x < 0.0 || y < 0.0 || x >= (self.width - 1) as f32 || y >= (self.height - 1) as f32 {
            return [0.0; LAYERS];
        }
        let (x0, y0) = (x as usize, y as usize);
        let (tx, ty) = (x - x0 as f32, y - y0 as f32);
        let i = y0 * self.width + x0;
        let (a, b, c, d) = (
            &self.data[i],
            &self.data[i + 1],
            &self.data[i + self.width],
            &self.data[i + self.width + 1],
        );
        let mut out = [0.0; LAYERS];
        for k in 0..LAYERS {
            let top = a[k] + (b[k] - a[k]) * tx;
            let bot = c[k] + (d[k] - c[k]) * tx;
            out[k] = top + (bot - top) * ty;
        }
        out
    }
}

/// A crease along a cubic Bezier, tapering at the ends, with depth modulated along its
/// length and, for principal lines, sometimes broken.
fn curve<R: Rng>(
    r: &mut R,
    cp: &[[f32; 2]; 4],
    n: usize,
    width: f32,
    depth: f32,
    may_break: bool,
) -> Polyline {
    let mut points = Vec::with_capacity(n + 1);
    let mut widths = Vec::with_capacity(n + 1);
    let mut depths = Vec::with_capacity(n + 1);
    let mod_noise = ValueNoise::new(r.gen());
    let gap = if may_break && r.gen_bool(0.25) {
        Some((uniform(r, 0.2, 0.8), uniform(r, 0.03, 0.1)))
    } else {
        None
    };
    let taper_in = uniform(r, 0.05, 0.25);
    let taper_out = uniform(r, 0.05, 0.3);
    for i in 0..=n {
        let t = i as f32 / n as f32;
        points.push(bezier(cp, t));
        let taper = (t / taper_in).min((1.0 - t) / taper_out).clamp(0.0, 1.0).sqrt();
        let m = 0.75 + 0.25 * mod_noise.at(t * 6.0, 0.5);
        let mut d = depth * m * (0.15 + 0.85 * taper);
        if let Some((c, half)) = gap {
            if (t - c).abs() < half {
                d *= 0.15;
            }
        }
        widths.push(width * (0.5 + 0.5 * taper) * (0.85 + 0.15 * m));
        depths.push(d);
    }
    Polyline {
        points,
        width: widths,
        depth: depths,
    }
}

/// A branching vein network entering from the wrist.
fn vein_network<R: Rng>(r: &mut R) -> Vec<Polyline> {
    struct Branch {
        p: [f32; 2],
        angle: f32,
        width: f32,
        depth: f32,
    }
    let mut out = Vec::new();
    let mut stack: Vec<Branch> = (0..r.gen_range(2..=4))
        .map(|_| Branch {
            p: [uniform(r, -0.1, 1.1), 1.75],
            angle: normal(r) * 0.25,
            width: uniform(r, 0.018, 0.03),
            depth: uniform(r, 0.5, 0.9),
        })
        .collect();
    let mut segments = 0;
    while let Some(mut b) = stack.pop() {
        let mut pts = vec![b.p];
        let mut ws = vec![b.width];
        let mut ds = vec![b.depth];
        for _ in 0..60 {
            b.angle += normal(r) * 0.18;
            b.angle = b.angle.clamp(-1.2, 1.2);
            let step = 0.05;
            b.p = [b.p[0] + b.angle.sin() * step, b.p[1] - b.angle.cos() * step];
            b.width *= 0.985;
            pts.push(b.p);
            ws.push(b.width);
            ds.push(b.depth);
            segments += 1;
            if b.p[1] < -0.6 || b.p[0] < -0.6 || b.p[0] > 1.6 || segments > 500 {
                break;
            }
            if r.gen_bool(0.07) && b.width > 0.01 {
                let side = if r.gen_bool(0.5) { 1.0 } else { -1.0 };
                stack.push(Branch {
                    p: b.p,
                    angle: b.angle + side * uniform(r, 0.4, 0.9),
                    width: b.width * 0.7,
                    depth: b.depth * 0.85,
                });
            }
        }
        out.push(Polyline {
            points: pts,
            width: ws,
            depth: ds,
        });
    }
    out
}

fn hand_geometry<R: Rng>(r: &mut R) -> HandGeometry {
    let palm_min = [-0.4 + normal(r) * 0.03, -0.45 + normal(r) * 0.03];
    let palm_max = [1.4 + normal(r) * 0.03, 1.5 + normal(r) * 0.04];
    let len_f = 1.0 + normal(r) * 0.06;
    let wid_f = 1.0 + normal(r) * 0.06;
    let span = (palm_max[0] - palm_min[0]) - 0.46;
    let lengths = [1.45, 1.65, 1.55, 1.2];
    let radii = [0.215, 0.225, 0.21, 0.18];
    let drop = [0.06, 0.0, 0.03, 0.16];
    let rest = [-0.07, 0.0, 0.05, 0.12];
    let fingers: [Finger; 4] = std::array::from_fn(|i| Finger {
        base: [
            palm_min[0] + 0.24 + span * i as f32 / 3.0 + normal(r) * 0.015,
            palm_min[1] + 0.08 + drop[i] + normal(r) * 0.02,
        ],
        length: lengths[i] * len_f * (1.0 + normal(r) * 0.03),
        radius: radii[i] * wid_f,
        rest_angle: rest[i] + normal(r) * 0.03,
    });
    let thumb = Finger {
        base: [palm_min[0] + 0.12, 0.8 + normal(r) * 0.04],
        length: 1.25 * len_f * (1.0 + normal(r) * 0.04),
        radius: 0.25 * wid_f,
        rest_angle: -0.2 + normal(r) * 0.05,
    };
    HandGeometry {
        palm_min,
        palm_max,
        corner: 0.32,
        fingers,
        thumb,
        forearm_radius: 0.68 * wid_f,
    }
}
