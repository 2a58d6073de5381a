//! Whole-hand captures: segment the hand, find the valleys between the fingers, build a palm
//! coordinate frame from them and cut a normalised palm ROI.
//!
//! Steps (every product is kept in [`HandGeometry`] so it can be drawn by `inspect`):
//! 1. Work on a copy scaled to [`SEG_WIDTH`] pixels wide.
//! 2. Skin segmentation in YCbCr chroma with a brightness floor; the largest connected
//!    component is the hand; holes are filled; thin bridges (pegs, rings) are opened away.
//! 3. The palm centre is the maximum of the distance transform; its value is the palm radius.
//! 4. Circles around the centre cross the fingers: each crossing arc narrow enough to be a
//!    finger is one; the wide arc is the wrist. Five arcs: the thumb is at the end with the
//!    widest gap. Four arcs: the thumb is on the side nearer the palm's bulk.
//! 5. Between neighbouring fingers, the valley is the background point nearest the centre.
//! 6. The index-middle and ring-little valleys define the palm frame: x along them, y towards
//!    the palm centre; the ROI is a square below that line, sized by the valley distance, so
//!    rotation, scale and handedness are normalised (a left palm is sampled mirrored, so both
//!    hands come out in the same anatomical orientation).

use crate::capture::Capture;
use crate::error::AcquireFailure;
use crate::plane::Plane;

/// Width of the segmentation image.
pub const SEG_WIDTH: usize = 400;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    fn dist(self, o: Point) -> f32 {
        ((self.x - o.x).powi(2) + (self.y - o.y).powi(2)).sqrt()
    }
}

/// Which hand the capture shows (palm towards the camera).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handedness {
    Left,
    Right,
}

/// Everything found about the hand, in full-resolution capture coordinates.
#[derive(Clone, Debug)]
pub struct HandGeometry {
    /// Hand mask at segmentation resolution (1 = hand).
    pub mask: Plane,
    /// Full-resolution pixels per segmentation pixel.
    pub scale: f32,
    pub palm_centre: Point,
    pub palm_radius: f32,
    /// Hand contour points (segmentation resolution is upscaled to capture coordinates).
    pub contour: Vec<Point>,
    /// Fingertip directions: the midpoints of the finger crossings, thumb first if found.
    pub finger_points: Vec<Point>,
    /// Valleys: index-middle, middle-ring, ring-little.
    pub valleys: [Point; 3],
    pub handedness: Handedness,
    /// ROI corners: top-left, top-right, bottom-right, bottom-left (in ROI orientation).
    pub roi_corners: [Point; 4],
}

/// Parameters of the hand step.
#[derive(Clone, Debug, PartialEq)]
pub struct HandConfig {
    /// ROI side as a multiple of the distance between the outer valleys.
    pub roi_side: f32,
    /// Gap between the valley line and the ROI, as a multiple of that distance.
    pub roi_offset: f32,
    /// Side of the cut ROI in pixels.
    pub roi_pixels: usize,
    /// Smallest acceptable palm radius as a fraction of the shorter image side.
    pub min_palm_radius: f32,
    /// Weight of the valleys-to-palm-centre direction (vs the valley line's normal) in the
    /// frame's orientation.
    pub centre_weight: f32,
    /// Weight of the palm radius (vs the valley spacing) in the frame's scale.
    pub radius_weight: f32,
}

impl Default for HandConfig {
    fn default() -> Self {
        HandConfig {
            roi_side: 1.25,
            roi_offset: 0.2,
            roi_pixels: 128,
            min_palm_radius: 0.05,
            centre_weight: 0.5,
            radius_weight: 0.0,
        }
    }
}

/// Skin likelihood segmentation at segmentation resolution.
pub fn skin_mask(r: &Plane, g: &Plane, b: &Plane) -> Plane {
    let data = r
        .data
        .iter()
        .zip(&g.data)
        .zip(&b.data)
        .map(|((&r, &g), &b)| {
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            let cr = 0.5 + 0.5 * r - 0.4187 * g - 0.0813 * b;
            let cb = 0.5 - 0.1687 * r - 0.3313 * g + 0.5 * b;
            let skin = y > 0.12 && (0.52..=0.71).contains(&cr) && (0.29..=0.53).contains(&cb) && r >= g;
            if skin {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Plane {
        width: r.width,
        height: r.height,
        data,
    }
}

/// Keep the largest 4-connected component of a 0/1 mask; returns it and its area.
pub fn largest_component(mask: &Plane) -> (Plane, usize) {
    let (w, h) = (mask.width, mask.height);
    let mut label = vec![0u32; w * h];
    let mut best = (0u32, 0usize);
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask.data[start] < 0.5 || label[start] != 0 {
            continue;
        }
        next += 1;
        let mut area = 0usize;
        label[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            area += 1;
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if mask.data[j] >= 0.5 && label[j] == 0 {
                    label[j] = next;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if area > best.1 {
            best = (next, area);
        }
    }
    let data = label
        .iter()
        .map(|&l| if l == best.0 && l != 0 { 1.0 } else { 0.0 })
        .collect();
    (
        Plane {
            width: w,
            height: h,
            data,
        },
        best.1,
    )
}

/// Fill background regions that do not touch the border.
pub fn fill_holes(mask: &Plane) -> Plane {
    let inv = Plane {
        width: mask.width,
        height: mask.height,
        data: mask.data.iter().map(|v| 1.0 - v).collect(),
    };
    let (w, h) = (mask.width, mask.height);
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    for x in 0..w {
        stack.push(x);
        stack.push((h - 1) * w + x);
    }
    for y in 0..h {
        stack.push(y * w);
        stack.push(y * w + w - 1);
    }
    while let Some(i) = stack.pop() {
        if outside[i] || inv.data[i] < 0.5 {
            continue;
        }
        outside[i] = true;
        let (x, y) = (i % w, i / w);
        if x > 0 {
            stack.push(i - 1);
        }
        if x + 1 < w {
            stack.push(i + 1);
        }
        if y > 0 {
            stack.push(i - w);
        }
        if y + 1 < h {
            stack.push(i + w);
        }
    }
    Plane {
        width: w,
        height: h,
        data: outside.iter().map(|&o| if o { 0.0 } else { 1.0 }).collect(),
    }
}

/// Dilation of a 0/1 mask by a square of radius r.
fn dilate(mask: &Plane, r: usize) -> Plane {
    let inv = Plane {
        width: mask.width,
        height: mask.height,
        data: mask.data.iter().map(|v| 1.0 - v).collect(),
    };
    // Erosion of the complement, with the outside counted as background (not as hand).
    let e = erode_keep_border(&inv, r);
    Plane {
        width: mask.width,
        height: mask.height,
        data: e.data.iter().map(|v| 1.0 - v).collect(),
    }
}

/// Erosion of a 0/1 mask by a square of radius r where the outside of the frame counts as
/// hand: a pixel stays only if its window holds no background. Counted with running sums, so
/// the cost does not grow with r.
fn erode_keep_border(mask: &Plane, r: usize) -> Plane {
    let (w, h) = (mask.width, mask.height);
    // Background counts in horizontal windows.
    let mut tmp = vec![0u32; w * h];
    let mut prefix = vec![0u32; w.max(h) + 1];
    for y in 0..h {
        let row = &mask.data[y * w..(y + 1) * w];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + (row[x] < 0.5) as u32;
        }
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r + 1).min(w));
            tmp[y * w + x] = prefix[b] - prefix[a];
        }
    }
    // Then vertical sums of those counts.
    let mut out = Plane::new(w, h);
    let mut acc = vec![0u32; w];
    let mut lo = 0usize;
    let mut hi = 0usize;
    for y in 0..h {
        let (a, b) = (y.saturating_sub(r), (y + r + 1).min(h));
        while hi < b {
            for (s, t) in acc.iter_mut().zip(&tmp[hi * w..(hi + 1) * w]) {
                *s += t;
            }
            hi += 1;
        }
        while lo < a {
            for (s, t) in acc.iter_mut().zip(&tmp[lo * w..(lo + 1) * w]) {
                *s -= t;
            }
            lo += 1;
        }
        for (d, &s) in out.data[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *d = if s == 0 { 1.0 } else { 0.0 };
        }
    }
    out
}

/// Morphological opening: removes structures thinner than 2r+1.
pub fn open(mask: &Plane, r: usize) -> Plane {
    dilate(&erode_keep_border(mask, r), r)
}

/// Euclidean-like (chamfer 3-4) distance to the nearest background pixel, in pixels. Outside
/// the frame counts as hand (a wrist cut by the frame does not pull the palm centre inwards).
pub fn distance_transform(mask: &Plane) -> Plane {
    let (w, h) = (mask.width, mask.height);
    let big = 1e9f32;
    let mut d: Vec<f32> = mask
        .data
        .iter()
        .map(|&m| if m >= 0.5 { big } else { 0.0 })
        .collect();
    let at = |d: &Vec<f32>, x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            big
        } else {
            d[y as usize * w + x as usize]
        }
    };
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            if d[i] == 0.0 {
                continue;
            }
            let v = d[i]
                .min(at(&d, x - 1, y) + 3.0)
                .min(at(&d, x, y - 1) + 3.0)
                .min(at(&d, x - 1, y - 1) + 4.0)
                .min(at(&d, x + 1, y - 1) + 4.0);
            d[i] = v;
        }
    }
    for y in (0..h as isize).rev() {
        for x in (0..w as isize).rev() {
            let i = y as usize * w + x as usize;
            if d[i] == 0.0 {
                continue;
            }
            let v = d[i]
                .min(at(&d, x + 1, y) + 3.0)
                .min(at(&d, x, y + 1) + 3.0)
                .min(at(&d, x + 1, y + 1) + 4.0)
                .min(at(&d, x - 1, y + 1) + 4.0);
            d[i] = v;
        }
    }
    Plane {
        width: w,
        height: h,
        data: d.into_iter().map(|v| v / 3.0).collect(),
    }
}

fn inside(mask: &Plane, p: Point) -> bool {
    let (x, y) = (p.x.round() as isize, p.y.round() as isize);
    x >= 0
        && y >= 0
        && (x as usize) < mask.width
        && (y as usize) < mask.height
        && mask.get(x as usize, y as usize) >= 0.5
}

fn on_circle(c: Point, r: f32, a: f32) -> Point {
    Point {
        x: c.x + r * a.cos(),
        y: c.y + r * a.sin(),
    }
}

/// Segment the hand: returns the mask at segmentation resolution and the scale factor to
/// full resolution.
pub fn segment(capture: &Capture) -> Result<(Plane, f32), AcquireFailure> {
    let (w, h) = (capture.width(), capture.height());
    let scale = (w as f32 / SEG_WIDTH as f32).max(1.0);
    let (sw, sh) = (
        ((w as f32) / scale).round() as usize,
        ((h as f32) / scale).round() as usize,
    );
    let (r, g, b) = (
        capture.r.resize_area(sw, sh),
        capture.g.resize_area(sw, sh),
        capture.b.resize_area(sw, sh),
    );
    let skin = skin_mask(&r, &g, &b);
    let (hand, area) = largest_component(&skin);
    let frac = area as f32 / (sw * sh) as f32;
    if frac < 0.01 {
        // Nothing skin-like: either no hand, or exposure so far off that colour is lost.
        let n = (sw * sh) as f32;
        let m = r
            .data
            .iter()
            .zip(&g.data)
            .zip(&b.data)
            .map(|((r, g), b)| 0.299 * r + 0.587 * g + 0.114 * b)
            .sum::<f32>()
            / n;
        return Err(if m < 0.06 {
            AcquireFailure::TooDark
        } else if m > 0.92 {
            AcquireFailure::TooBright
        } else {
            AcquireFailure::NoHand
        });
    }
    let hand = fill_holes(&hand);
    // Thin attachments (pegs, straps, rings' reflections) come off; the component is taken again.
    let open_r = ((sw.min(sh) as f32) * 0.01).round().max(1.0) as usize;
    Ok((largest_component(&open(&hand, open_r)).0, scale))
}

/// Find the palm frame in a hand mask.
pub fn frame(hand: Plane, scale: f32, cfg: &HandConfig) -> Result<HandGeometry, AcquireFailure> {
    let (sw, sh) = (hand.width, hand.height);
    let frac = hand.data.iter().sum::<f32>() / (sw * sh) as f32;
    let dt = distance_transform(&hand);
    // Palm centre: the thickest point of the hand that is not pressed against the frame.
    let (mut imax, mut best_v, mut rmax) = (0usize, 0.0f32, 0.0f32);
    for (i, &v) in dt.data.iter().enumerate() {
        let (x, y) = ((i % sw) as f32, (i / sw) as f32);
        let border = x.min(y).min(sw as f32 - 1.0 - x).min(sh as f32 - 1.0 - y);
        let s = v.min(1.1 * border);
        if s > best_v {
            (imax, best_v, rmax) = (i, s, v);
        }
    }
    let centre = Point {
        x: (imax % sw) as f32,
        y: (imax / sw) as f32,
    };
    if rmax < cfg.min_palm_radius * sw.min(sh) as f32 {
        return Err(if frac < 0.03 {
            AcquireFailure::TooSmall
        } else {
            AcquireFailure::NoHand
        });
    }
    // A palm cut by the frame shows up as a centre nearer the border than the palm radius.
    let margin = 0.9 * rmax;
    if centre.x < margin
        || centre.y < margin
        || centre.x > sw as f32 - margin
        || centre.y > sh as f32 - margin
    {
        return Err(AcquireFailure::PartlyOutOfFrame);
    }
    // Radial profile: for each direction, how far from the palm centre the hand first ends.
    let n_rays = 720usize;
    let tau = std::f32::consts::TAU;
    let step = tau / n_rays as f32;
    let mut radius = vec![0.0f32; n_rays];
    let mut hits_frame = vec![false; n_rays];
    for (k, (rk, fk)) in radius.iter_mut().zip(hits_frame.iter_mut()).enumerate() {
        let a = k as f32 * step;
        let mut r = 0.5 * rmax;
        loop {
            let p = on_circle(centre, r, a);
            if p.x < 0.0 || p.y < 0.0 || p.x > (sw - 1) as f32 || p.y > (sh - 1) as f32 {
                *fk = true;
                break;
            }
            if !inside(&hand, p) || r > 5.0 * rmax {
                break;
            }
            r += 0.5;
        }
        *rk = r;
    }
    let smooth: Vec<f32> = (0..n_rays)
        .map(|k| (0..5).map(|j| radius[(k + n_rays + j - 2) % n_rays]).sum::<f32>() / 5.0)
        .collect();
    // Fingertip candidates: local maxima over +-3 degrees, well beyond the palm disc, not
    // running into the frame (that is the arm, or a finger out of frame).
    let win = 6usize;
    let mut tips: Vec<usize> = (0..n_rays)
        .filter(|&k| {
            smooth[k] > 1.25 * rmax
                && !hits_frame[k]
                && (1..=win).all(|j| {
                    smooth[k] >= smooth[(k + j) % n_rays] && smooth[k] >= smooth[(k + n_rays - j) % n_rays]
                })
        })
        .collect();
    tips.dedup_by(|a, b| *a - *b <= win);
    // A fingertip is a sharp peak: the rays that reach within 10% of its length span less
    // than a finger's width. The heel of the hand at a sleeve or cuff is a broad one.
    tips.retain(|&k| {
        let top = 0.9 * smooth[k];
        let mut span = 1usize;
        for dir in [1usize, n_rays - 1] {
            let mut j = (k + dir) % n_rays;
            while smooth[j] >= top && span < n_rays {
                span += 1;
                j = (j + dir) % n_rays;
            }
        }
        span as f32 * step * smooth[k] < 0.8 * rmax
    });
    // Two candidates with no real valley between them are one finger: keep the longer.
    let valley_of = |a: usize, b: usize| -> (usize, f32) {
        let len = (b + n_rays - a) % n_rays;
        (1..len.max(1))
            .map(|j| (a + j) % n_rays)
            .fold((a, f32::INFINITY), |m, k| {
                if smooth[k] < m.1 {
                    (k, smooth[k])
                } else {
                    m
                }
            })
    };
    loop {
        let n = tips.len();
        if n < 2 {
            break;
        }
        let mut merged = false;
        for i in 0..n {
            let (a, b) = (tips[i], tips[(i + 1) % n]);
            let (_, v) = valley_of(a, b);
            let through_frame = {
                let len = (b + n_rays - a) % n_rays;
                (1..len).any(|j| hits_frame[(a + j) % n_rays])
            };
            if !through_frame && smooth[a].min(smooth[b]) - v < 0.15 * rmax {
                let drop = if smooth[a] < smooth[b] { i } else { (i + 1) % n };
                tips.remove(drop);
                merged = true;
                break;
            }
        }
        if !merged {
            break;
        }
    }
    if tips.len() < 4 || tips.len() > 5 {
        // More hand on the frame's edge than an arm accounts for: fingers are out of frame.
        let on_edge = (0..sw)
            .filter(|&x| hand.get(x, 0) > 0.5 || hand.get(x, sh - 1) > 0.5)
            .count()
            + (0..sh)
                .filter(|&y| hand.get(0, y) > 0.5 || hand.get(sw - 1, y) > 0.5)
                .count();
        return Err(if on_edge as f32 > 2.5 * rmax {
            AcquireFailure::PartlyOutOfFrame
        } else {
            AcquireFailure::FingersNotSpread
        });
    }
    // Order the tips starting after the widest angular gap (the wrist side), so the sequence
    // runs thumb..little or little..thumb.
    let n = tips.len();
    let gap_after = |i: usize| (tips[(i + 1) % n] + n_rays - tips[i]) % n_rays;
    let wrist_gap = (0..n).max_by_key(|&i| gap_after(i)).unwrap_or(0);
    let seq: Vec<usize> = (1..=n).map(|k| tips[(wrist_gap + k) % n]).collect();
    let gap = |a: usize, b: usize| (b + n_rays - a) % n_rays;
    // Decide which end is the thumb; `four` = [index, middle, ring, little] as ray indices.
    let valley_point = |a: usize, b: usize| {
        let (lo, hi) = if gap(a, b) < gap(b, a) { (a, b) } else { (b, a) };
        let (kv, rv) = valley_of(lo, hi);
        on_circle(centre, radius[kv].min(rv + 1.0), kv as f32 * step)
    };
    let four: Vec<usize> = if n == 5 {
        // Neighbouring finger valleys are about a finger's width apart; the thumb-index
        // valley lies much further from the index-middle one. That end is the thumb.
        let v: Vec<Point> = (0..4).map(|i| valley_point(seq[i], seq[i + 1])).collect();
        if v[0].dist(v[1]) > v[3].dist(v[2]) {
            seq[1..].to_vec()
        } else {
            seq[..4].iter().rev().copied().collect()
        }
    } else {
        // Thumb not separated as a peak (seen from the palm centre it is a broad shoulder):
        // it is on the side where the hand reaches further out beyond the outer fingers.
        let sector = |from: usize, dir: isize| {
            let (a, b) = (
                (20.0f32.to_radians() / step) as isize,
                (90.0f32.to_radians() / step) as isize,
            );
            (a..b)
                .map(|j| smooth[(from as isize + dir * j).rem_euclid(n_rays as isize) as usize])
                .sum::<f32>()
        };
        if sector(seq[0], -1) > sector(seq[3], 1) {
            seq.clone()
        } else {
            seq.iter().rev().copied().collect()
        }
    };
    let valleys = [
        valley_point(four[0], four[1]),
        valley_point(four[1], four[2]),
        valley_point(four[2], four[3]),
    ];
    let four: Vec<f32> = four.iter().map(|&k| k as f32 * step).collect();
    let (p1, p3) = (valleys[0], valleys[2]);
    let d = p1.dist(p3);
    if d < 0.4 * rmax {
        return Err(AcquireFailure::FingersNotSpread);
    }
    let mid = Point {
        x: (p1.x + p3.x) / 2.0,
        y: (p1.y + p3.y) / 2.0,
    };
    // Frame: x from the index-middle valley towards the ring-little valley, y towards the palm.
    let ux_valleys = ((p3.x - p1.x) / d, (p3.y - p1.y) / d);
    let mut uy_valleys = (-ux_valleys.1, ux_valleys.0);
    if (centre.x - mid.x) * uy_valleys.0 + (centre.y - mid.y) * uy_valleys.1 < 0.0 {
        uy_valleys = (-uy_valleys.0, -uy_valleys.1);
    }
    // y from the valleys' midpoint to the palm centre: less sensitive to how far the fingers
    // are spread than the valley line itself. Blend the two by `cfg.centre_weight`.
    let to_centre = (centre.x - mid.x, centre.y - mid.y);
    let lc = (to_centre.0 * to_centre.0 + to_centre.1 * to_centre.1)
        .sqrt()
        .max(1e-3);
    let w = cfg.centre_weight;
    let mut uy = (
        w * to_centre.0 / lc + (1.0 - w) * uy_valleys.0,
        w * to_centre.1 / lc + (1.0 - w) * uy_valleys.1,
    );
    let ly = (uy.0 * uy.0 + uy.1 * uy.1).sqrt().max(1e-6);
    uy = (uy.0 / ly, uy.1 / ly);
    // x keeps the valley line's sense (index -> little).
    let mut ux = (uy.1, -uy.0);
    if ux.0 * ux_valleys.0 + ux.1 * ux_valleys.1 < 0.0 {
        ux = (-ux.0, -ux.1);
    }
    // Palm towards the camera, image y pointing down: for a right hand the little finger lies
    // clockwise of the index finger seen from the palm centre, which makes this frame
    // left-handed (negative cross product).
    let handedness = if ux.0 * uy.1 - ux.1 * uy.0 < 0.0 {
        Handedness::Right
    } else {
        Handedness::Left
    };
    // Scale: the valley spacing grows with finger spread, the palm's inscribed radius does not.
    let unit = cfg.radius_weight * rmax * 0.8 + (1.0 - cfg.radius_weight) * d;
    let side = cfg.roi_side * unit;
    let off = cfg.roi_offset * unit;
    let corner = |sx: f32, sy: f32| Point {
        x: (mid.x + ux.0 * sx + uy.0 * sy) * scale,
        y: (mid.y + ux.1 * sx + uy.1 * sy) * scale,
    };
    let roi_corners = [
        corner(-side / 2.0, off),
        corner(side / 2.0, off),
        corner(side / 2.0, off + side),
        corner(-side / 2.0, off + side),
    ];
    let up = |p: Point| Point {
        x: p.x * scale,
        y: p.y * scale,
    };
    let finger_points = four
        .iter()
        .map(|&a| up(on_circle(centre, 1.9 * rmax, a)))
        .collect();
    Ok(HandGeometry {
        contour: contour_points(&hand).into_iter().map(up).collect(),
        mask: hand,
        scale,
        palm_centre: up(centre),
        palm_radius: rmax * scale,
        finger_points,
        valleys: valleys.map(up),
        handedness,
        roi_corners,
    })
}

/// Boundary pixels of a mask (hand pixels with a background 4-neighbour).
fn contour_points(mask: &Plane) -> Vec<Point> {
    let (w, h) = (mask.width, mask.height);
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if mask.get(x, y) < 0.5 {
                continue;
            }
            let edge = x == 0
                || y == 0
                || x + 1 == w
                || y + 1 == h
                || mask.get(x - 1, y) < 0.5
                || mask.get(x + 1, y) < 0.5
                || mask.get(x, y - 1) < 0.5
                || mask.get(x, y + 1) < 0.5;
            if edge {
                out.push(Point {
                    x: x as f32,
                    y: y as f32,
                });
            }
        }
    }
    out
}

/// Cut the ROI square (line channel) from the capture. Fails if the square leaves the frame.
pub fn cut_roi(capture: &Capture, geo: &HandGeometry, pixels: usize) -> Result<Plane, AcquireFailure> {
    let [tl, tr, br, bl] = geo.roi_corners;
    let (w, h) = (capture.width() as f32, capture.height() as f32);
    if geo
        .roi_corners
        .iter()
        .any(|p| p.x < 0.0 || p.y < 0.0 || p.x > w - 1.0 || p.y > h - 1.0)
    {
        return Err(AcquireFailure::PartlyOutOfFrame);
    }
    // Work on the bounding box only, pre-smoothed when shrinking so samples are not aliased.
    let shrink = tl.dist(tr) / pixels as f32;
    let sigma = if shrink > 1.5 { 0.5 * shrink } else { 0.0 };
    let pad = (3.0 * sigma).ceil() + 2.0;
    let xs = [tl.x, tr.x, br.x, bl.x];
    let ys = [tl.y, tr.y, br.y, bl.y];
    let x0 = (xs.iter().copied().fold(f32::INFINITY, f32::min) - pad).max(0.0) as usize;
    let y0 = (ys.iter().copied().fold(f32::INFINITY, f32::min) - pad).max(0.0) as usize;
    let x1 = ((xs.iter().copied().fold(0.0, f32::max) + pad).ceil() as usize).min(capture.width() - 1);
    let y1 = ((ys.iter().copied().fold(0.0, f32::max) + pad).ceil() as usize).min(capture.height() - 1);
    let crop = capture.line_channel_in(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    let src = if sigma > 0.0 {
        crop.gaussian_blur(sigma)
    } else {
        crop
    };
    let (ox, oy) = (x0 as f32, y0 as f32);
    let mut out = Plane::new(pixels, pixels);
    for v in 0..pixels {
        for u in 0..pixels {
            let fu = (u as f32 + 0.5) / pixels as f32;
            let fv = (v as f32 + 0.5) / pixels as f32;
            let x = tl.x + (tr.x - tl.x) * fu + (bl.x - tl.x) * fv - ox;
            let y = tl.y + (tr.y - tl.y) * fu + (bl.y - tl.y) * fv - oy;
            out.set(u, v, src.sample(x, y).ok_or(AcquireFailure::PartlyOutOfFrame)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Erosion by definition: every pixel of the window (inside the frame) is hand.
    fn naive_erode(m: &Plane, r: usize) -> Plane {
        Plane::from_fn(m.width, m.height, |x, y| {
            let (x0, x1) = (x.saturating_sub(r), (x + r).min(m.width - 1));
            let (y0, y1) = (y.saturating_sub(r), (y + r).min(m.height - 1));
            let all = (y0..=y1).all(|yy| (x0..=x1).all(|xx| m.get(xx, yy) > 0.5));
            if all {
                1.0
            } else {
                0.0
            }
        })
    }

    #[test]
    fn running_sum_erosion_matches_definition() {
        let m = Plane::from_fn(37, 23, |x, y| if (x * 7 + y * 11) % 13 < 10 { 1.0 } else { 0.0 });
        for r in 0..4 {
            assert_eq!(erode_keep_border(&m, r), naive_erode(&m, r), "r = {r}");
        }
    }

    #[test]
    fn opening_removes_thin_bridges_and_keeps_blobs() {
        // Two squares joined by a 1-pixel bridge.
        let m = Plane::from_fn(30, 12, |x, y| {
            let a = (1..11).contains(&x) && (1..11).contains(&y);
            let b = (19..29).contains(&x) && (1..11).contains(&y);
            let bridge = (11..19).contains(&x) && y == 5;
            if a || b || bridge {
                1.0
            } else {
                0.0
            }
        });
        let o = open(&m, 1);
        assert_eq!(o.get(15, 5), 0.0);
        assert_eq!(o.get(5, 5), 1.0);
        assert_eq!(largest_component(&o).1, 100);
    }
}
