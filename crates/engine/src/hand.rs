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

pub mod colour;
mod split;
use colour::{log_likelihood_ratio, BackgroundModel, Features, HandModel};
use split::segment_split;

/// Width of the segmentation image. 320 rather than 400 since the per-capture colour
/// models: coep-hands-dev EER, FNMR@1e-4, FTA and rank-1 were the same at both (0.46%,
/// 0.93%, 0.66%, 99.3%), realistic synthetic hands failed 4.5% against 5.0%, and the
/// extraction median fell from 29.7 to 18.9 ms (decoding included).
pub const SEG_WIDTH: usize = 320;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    /// Euclidean distance.
    pub fn dist(self, o: Point) -> f32 {
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

impl HandGeometry {
    /// Whether the ROI square lies inside a capture of `width` x `height` pixels.
    pub fn roi_inside(&self, width: usize, height: usize) -> bool {
        let (w, h) = (width as f32, height as f32);
        self.roi_corners
            .iter()
            .all(|p| p.x >= 0.0 && p.y >= 0.0 && p.x <= w - 1.0 && p.y <= h - 1.0)
    }
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
    /// Largest ratio of the two gaps between neighbouring finger valleys (index-middle to
    /// middle-ring, middle-ring to ring-little). coep-hands-dev: at most 1.35.
    pub max_valley_unevenness: f32,
    /// Largest distance between the outer finger valleys, in palm radii (the palm's
    /// inscribed radius). coep-hands-dev: at most 1.13.
    pub max_valley_span: f32,
    /// Largest distance from the ROI's centre to the palm centre, in palm radii.
    /// coep-hands-dev: at most 0.70.
    pub max_roi_offset: f32,
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
            max_valley_unevenness: 1.5,
            max_valley_span: 1.36,
            max_roi_offset: 1.0,
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

/// 4-connected components of a 0/1 mask: the label of every pixel (0 = background, else
/// 1..) and the area of each label (index 0 unused).
pub fn components(mask: &Plane) -> (Vec<u32>, Vec<usize>) {
    let (w, h) = (mask.width, mask.height);
    let mut label = vec![0u32; w * h];
    let mut areas = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask.data[start] < 0.5 || label[start] != 0 {
            continue;
        }
        let next = areas.len() as u32;
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
        areas.push(area);
    }
    (label, areas)
}

/// Keep the largest 4-connected component of a 0/1 mask; returns it and its area.
pub fn largest_component(mask: &Plane) -> (Plane, usize) {
    let (label, areas) = components(mask);
    let (best, area) = areas
        .iter()
        .enumerate()
        .skip(1)
        .max_by_key(|&(_, &a)| a)
        .map_or((0, 0), |(l, &a)| (l as u32, a));
    let data = label
        .iter()
        .map(|&l| if l == best && l != 0 { 1.0 } else { 0.0 })
        .collect();
    (
        Plane {
            width: mask.width,
            height: mask.height,
            data,
        },
        area,
    )
}

/// The largest component of a 0/1 mask, rejoined with the pieces that a gap of at most
/// about r pixels cuts off it (a ring or a deep crease across a finger): every other
/// component of at least `min_area` pixels is joined by the pixels that a closing of radius
/// r adds between it and the largest one. Gaps within the largest component (between
/// fingers) are left as they are.
///
/// An elongated piece (a finger beyond a ring) is joined through its ends only: bridge
/// pixels must lie on its axis beyond its extent, within its width. Otherwise a fingertip
/// cut off by a ring, lying a pixel or two beside the next finger, would be joined to that
/// finger all along its length and the two would become one. Returns the mask and its area.
pub fn bridge_gaps(mask: &Plane, r: usize, min_area: usize) -> (Plane, usize) {
    let (w, h) = (mask.width, mask.height);
    let (label, areas) = components(mask);
    let Some(main) = (1..areas.len()).max_by_key(|&l| areas[l]) else {
        return (Plane::new(w, h), 0);
    };
    let of = |keep: &dyn Fn(u32) -> bool| Plane {
        width: w,
        height: h,
        data: label.iter().map(|&l| if keep(l) { 1.0 } else { 0.0 }).collect(),
    };
    let piece = |l: u32| l != 0 && l as usize != main && areas[l as usize] >= min_area;
    if !(1..areas.len() as u32).any(piece) {
        return (of(&|l| l as usize == main), areas[main]);
    }
    let both = of(&|l| l as usize == main || piece(l));
    let closed = erode_keep_border(&dilate(&both, r), r);
    let main_only = of(&|l| l as usize == main);
    let near_main = dilate(&main_only, r);
    // The pixels of every piece.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); areas.len()];
    for (i, &l) in label.iter().enumerate() {
        if piece(l) {
            members[l as usize].push(i);
        }
    }
    let mut joined = both.clone();
    for px in members.iter().filter(|m| !m.is_empty()) {
        let shape = PieceShape::of(px, w);
        // An elongated piece is extended along its axis, from the end that faces the main
        // component, by up to 3r (the closing leaves slivers in a wide or slanted gap).
        let reach = if shape.elongated { 3 * r } else { r };
        // The piece's bounding box grown by the reach: where its bridge pixels can be.
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for &i in px {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let (x0, y0) = (x0.saturating_sub(reach), y0.saturating_sub(reach));
        let (x1, y1) = ((x1 + reach).min(w - 1), (y1 + reach).min(h - 1));
        let in_box = || (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| (x, y)));
        if shape.elongated {
            // Main-component pixels just beyond each end, within the piece's width: how many,
            // and how far the nearest is.
            let (mut facing, mut nearest) = ([0usize; 2], [f32::MAX; 2]);
            for (x, y) in in_box() {
                if main_only.data[y * w + x] >= 0.5 {
                    if let Some((end, d)) = shape.beyond_end(x as f32, y as f32, reach as f32) {
                        facing[end] += 1;
                        nearest[end] = nearest[end].min(d);
                    }
                }
            }
            if facing == [0, 0] {
                continue;
            }
            let end = if facing[0] >= facing[1] { 0 } else { 1 };
            for (x, y) in in_box() {
                if shape.extends(x as f32, y as f32, end, nearest[end]) {
                    joined.data[y * w + x] = 1.0;
                }
            }
        } else {
            let mut local = Plane::new(x1 - x0 + 1, y1 - y0 + 1);
            for &i in px {
                local.set(i % w - x0, i / w - y0, 1.0);
            }
            let near = dilate(&local, r);
            for (x, y) in in_box() {
                let i = y * w + x;
                if near.get(x - x0, y - y0) >= 0.5 && near_main.data[i] >= 0.5 && closed.data[i] >= 0.5 {
                    joined.data[i] = 1.0;
                }
            }
        }
    }
    largest_component(&joined)
}

/// A piece's principal axis and extents, to tell where it may be bridged.
struct PieceShape {
    centre: (f32, f32),
    /// Unit vector along the principal axis.
    axis: (f32, f32),
    /// Range of the pixels' positions along the axis.
    along: (f32, f32),
    /// Largest distance of a pixel from the axis.
    half_width: f32,
    /// Whether the piece is at least twice as long as wide (standard deviations).
    elongated: bool,
}

impl PieceShape {
    fn of(px: &[usize], w: usize) -> PieceShape {
        let n = px.len().max(1) as f32;
        let (mut sx, mut sy) = (0.0f32, 0.0f32);
        for &i in px {
            sx += (i % w) as f32;
            sy += (i / w) as f32;
        }
        let centre = (sx / n, sy / n);
        let (mut cxx, mut cxy, mut cyy) = (0.0f32, 0.0f32, 0.0f32);
        for &i in px {
            let (dx, dy) = ((i % w) as f32 - centre.0, (i / w) as f32 - centre.1);
            cxx += dx * dx;
            cxy += dx * dy;
            cyy += dy * dy;
        }
        let (cxx, cxy, cyy) = (cxx / n, cxy / n, cyy / n);
        let mean = (cxx + cyy) / 2.0;
        let root = (((cxx - cyy) / 2.0).powi(2) + cxy * cxy).sqrt();
        let (l1, l2) = (mean + root, (mean - root).max(0.0));
        let angle = 0.5 * (2.0 * cxy).atan2(cxx - cyy);
        let axis = (angle.cos(), angle.sin());
        let (mut lo, mut hi, mut half_width) = (f32::MAX, f32::MIN, 0.0f32);
        for &i in px {
            let (dx, dy) = ((i % w) as f32 - centre.0, (i / w) as f32 - centre.1);
            let t = dx * axis.0 + dy * axis.1;
            (lo, hi) = (lo.min(t), hi.max(t));
            half_width = half_width.max((dy * axis.0 - dx * axis.1).abs());
        }
        PieceShape {
            centre,
            axis,
            along: (lo, hi),
            half_width,
            elongated: l1 >= 4.0 * l2,
        }
    }

    /// Position of (x, y) along the axis and distance from it.
    fn local(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.centre.0, y - self.centre.1);
        (
            dx * self.axis.0 + dy * self.axis.1,
            (dy * self.axis.0 - dx * self.axis.1).abs(),
        )
    }

    /// Which end (0: low, 1: high) a point lies beyond, within the piece's width, and how
    /// far beyond it along the axis (at most `reach`).
    fn beyond_end(&self, x: f32, y: f32, reach: f32) -> Option<(usize, f32)> {
        let (t, across) = self.local(x, y);
        if across > self.half_width + 1.0 {
            None
        } else if t < self.along.0 && t >= self.along.0 - reach {
            Some((0, self.along.0 - t))
        } else if t > self.along.1 && t <= self.along.1 + reach {
            Some((1, t - self.along.1))
        } else {
            None
        }
    }

    /// Whether (x, y) is in the extension of end `end` by `reach`: within the piece's width,
    /// from a piece width inside the end (a ring seen at an angle cuts a finger slantwise) to
    /// `reach` beyond it.
    fn extends(&self, x: f32, y: f32, end: usize, reach: f32) -> bool {
        let (t, across) = self.local(x, y);
        let inside = self.half_width + 1.0;
        across <= self.half_width + 1.0
            && if end == 0 {
                t >= self.along.0 - reach && t <= self.along.0 + inside
            } else {
                t <= self.along.1 + reach && t >= self.along.1 - inside
            }
    }
}

/// Fill background regions that do not touch the border.
pub fn fill_holes(mask: &Plane) -> Plane {
    let (w, h) = (mask.width, mask.height);
    // Flood the background from the border; whatever background it does not reach is a hole.
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    let push = |i: usize, outside: &mut Vec<bool>, stack: &mut Vec<usize>| {
        if !outside[i] && mask.data[i] < 0.5 {
            outside[i] = true;
            stack.push(i);
        }
    };
    for x in 0..w {
        push(x, &mut outside, &mut stack);
        push((h - 1) * w + x, &mut outside, &mut stack);
    }
    for y in 0..h {
        push(y * w, &mut outside, &mut stack);
        push(y * w + w - 1, &mut outside, &mut stack);
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        if x > 0 {
            push(i - 1, &mut outside, &mut stack);
        }
        if x + 1 < w {
            push(i + 1, &mut outside, &mut stack);
        }
        if y > 0 {
            push(i - w, &mut outside, &mut stack);
        }
        if y + 1 < h {
            push(i + w, &mut outside, &mut stack);
        }
    }
    Plane {
        width: w,
        height: h,
        data: outside.iter().map(|&o| if o { 0.0 } else { 1.0 }).collect(),
    }
}

/// Dilation of a 0/1 mask by a square of radius r (outside the frame counts as background).
fn dilate(mask: &Plane, r: usize) -> Plane {
    window_test(mask, r, |v| v >= 0.5, |count| count > 0)
}

/// Erosion of a 0/1 mask by a square of radius r where the outside of the frame counts as
/// hand: a pixel stays only if its window holds no background.
fn erode_keep_border(mask: &Plane, r: usize) -> Plane {
    window_test(mask, r, |v| v < 0.5, |count| count == 0)
}

/// For every pixel, count the pixels of its (2r+1)^2 window (clipped to the frame) for which
/// `counted` holds, and set the output to 1 where `keep(count)`. Running sums, so the cost
/// does not grow with r.
fn window_test(mask: &Plane, r: usize, counted: impl Fn(f32) -> bool, keep: impl Fn(u32) -> bool) -> Plane {
    let (w, h) = (mask.width, mask.height);
    // Counts in horizontal windows.
    let mut tmp = vec![0u32; w * h];
    let mut prefix = vec![0u32; w + 1];
    for y in 0..h {
        let row = &mask.data[y * w..(y + 1) * w];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + counted(row[x]) as u32;
        }
        let out = &mut tmp[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            *o = prefix[(x + r + 1).min(w)] - prefix[x.saturating_sub(r)];
        }
    }
    // Then vertical sums of those counts, whole rows at a time.
    let mut out = Plane::new(w, h);
    let mut acc = vec![0u32; w];
    let (mut lo, mut hi) = (0usize, 0usize);
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
            *d = if keep(s) { 1.0 } else { 0.0 };
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

/// What the segmentation step produced.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// Hand mask at segmentation resolution (1 = hand).
    pub mask: Plane,
    /// Full-resolution pixels per segmentation pixel.
    pub scale: f32,
    /// Hand evidence under the final colour models: the smoothed log-likelihood ratio hand
    /// vs background per segmentation pixel (positive = hand).
    pub evidence: Option<Plane>,
    /// Which colour models made the mask.
    pub source: MaskSource,
}

/// Which colour models made a hand mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskSource {
    /// The capture's hand and background models, seeded from the skin box.
    Colour,
    /// The brighter of two colour groups in the first mask taken as the hand, the other as
    /// background ([`locate`]'s fallback).
    SplitBrighter,
    /// The darker of the two groups taken as the hand.
    SplitDarker,
}

impl MaskSource {
    /// Stable lower-case name (inspect's summary).
    pub fn name(&self) -> &'static str {
        match self {
            MaskSource::Colour => "colour",
            MaskSource::SplitBrighter => "split_brighter",
            MaskSource::SplitDarker => "split_darker",
        }
    }
}

/// Iterations of the colour models after the seed.
const COLOUR_ITERATIONS: usize = 2;

/// Indices of the pixels of a 0/1 mask that are set (or not), on every second row and
/// column: colour models are fitted to a quarter of the pixels, which is plenty for them.
fn pixels(mask: &Plane, set: bool) -> Vec<usize> {
    let w = mask.width;
    (0..mask.height)
        .step_by(2)
        .flat_map(|y| (0..w).step_by(2).map(move |x| y * w + x))
        .filter(|&i| (mask.data[i] >= 0.5) == set)
        .collect()
}

/// Segment the hand with colour models fitted to this capture.
///
/// 1. Seed: the skin-colour box, less the colours that are at least as common on the
///    frame's border (a skin-coloured background is mostly border), largest component.
/// 2. Twice: fit the hand model to the seed's interior and the background model to
///    everything well outside it; the hand is where the smoothed log-likelihood ratio is
///    positive (largest component, holes filled).
/// 3. Thin attachments are opened away.
pub fn segment_detailed(capture: &Capture) -> Result<Segmentation, AcquireFailure> {
    segment_image(&SegImage::new(capture))
}

/// A capture at segmentation resolution: its channels, their colour features, and the scale
/// back to the capture. Made once per capture, for the first segmentation and the colour
/// splits after it.
struct SegImage {
    rgb: [Plane; 3],
    feats: Features,
    /// Full-resolution pixels per segmentation pixel.
    scale: f32,
}

impl SegImage {
    fn new(capture: &Capture) -> SegImage {
        let (w, h) = (capture.width(), capture.height());
        let scale = (w as f32 / SEG_WIDTH as f32).max(1.0);
        let (sw, sh) = (
            ((w as f32) / scale).round() as usize,
            ((h as f32) / scale).round() as usize,
        );
        let rgb = [
            capture.r.resize_area(sw, sh),
            capture.g.resize_area(sw, sh),
            capture.b.resize_area(sw, sh),
        ];
        let feats = Features::new(&rgb[0], &rgb[1], &rgb[2]);
        SegImage { rgb, feats, scale }
    }

    fn size(&self) -> (usize, usize) {
        (self.rgb[0].width, self.rgb[0].height)
    }
}

/// [`segment_detailed`] on a prepared image.
fn segment_image(img: &SegImage) -> Result<Segmentation, AcquireFailure> {
    let [r, g, b] = &img.rgb;
    let (feats, scale) = (&img.feats, img.scale);
    let (sw, sh) = img.size();
    let n = sw * sh;
    let no_skin = || {
        // Nothing skin-like: either no hand, or exposure so far off that colour is lost.
        let m = r
            .data
            .iter()
            .zip(&g.data)
            .zip(&b.data)
            .map(|((r, g), b)| 0.299 * r + 0.587 * g + 0.114 * b)
            .sum::<f32>()
            / n as f32;
        if m < 0.06 {
            AcquireFailure::TooDark
        } else if m > 0.92 {
            AcquireFailure::TooBright
        } else {
            AcquireFailure::NoHand
        }
    };
    let skin = skin_mask(r, g, b);
    // The seed: skin-box pixels whose colour is more common inside the box than on the border.
    let band = ((sw.min(sh) as f32 * 0.02).round() as usize).max(2);
    let on_border = |i: usize| {
        let (x, y) = (i % sw, i / sw);
        x < band || y < band || x + band >= sw || y + band >= sh
    };
    let in_box = pixels(&skin, true);
    let border = BackgroundModel::fit(
        feats,
        in_box
            .iter()
            .chain(&pixels(&skin, false))
            .copied()
            .filter(|&i| on_border(i)),
    );
    let in_box = BackgroundModel::fit(feats, in_box.into_iter());
    let (Some(border), Some(in_box)) = (border, in_box) else {
        return Err(no_skin());
    };
    let ratio = Plane {
        width: sw,
        height: sh,
        data: (0..n)
            .map(|i| {
                if skin.data[i] >= 0.5 {
                    in_box.log_density_at(feats, i) - border.log_density_at(feats, i)
                } else {
                    -1.0
                }
            })
            .collect(),
    };
    let seed = threshold(&colour::box_mean(&ratio, 1), 2f32.ln());
    let (seed, area) = largest_component(&seed);
    if (area as f32) < 0.01 * n as f32 {
        return Err(no_skin());
    }
    let mut mask = fill_holes(&seed);
    // Every component the colour models call hand, for the final step.
    let mut raw = seed;
    let mut evidence = None;
    let guard = guard_of(sw, sh);
    for _ in 0..COLOUR_ITERATIONS {
        let core = pixels(&erode_keep_border(&mask, guard), true);
        let outside = dilate(&mask, guard);
        let hand = HandModel::fit(feats, &core);
        let bg = BackgroundModel::fit(feats, pixels(&outside, false).into_iter());
        let (Some(hand), Some(bg)) = (hand, bg) else {
            break;
        };
        let llr = log_likelihood_ratio(feats, &hand, &bg, 1);
        raw = threshold(&llr, 0.0);
        evidence = Some(llr);
        let (m, area) = largest_component(&raw);
        if (area as f32) < 0.01 * n as f32 {
            return Err(no_skin());
        }
        // Holes are left open here: the models are fitted away from the mask's edges, and
        // a hole too big for that margin is background (a gap between touching fingers).
        mask = m;
    }
    Ok(Segmentation {
        mask: finish_mask(&raw),
        scale,
        evidence,
        source: MaskSource::Colour,
    })
}

/// Margin between a mask's edge and the pixels its colour models are fitted to.
fn guard_of(sw: usize, sh: usize) -> usize {
    ((sw.min(sh) as f32 * 0.01).round() as usize).max(2)
}

/// The final mask from every pixel the colour models call hand: thin attachments (straps, a
/// skin-toned object touching the hand, fingers touching along a thin line) come off; pieces
/// that the opening, a ring or a crease cut off are joined back; holes are filled.
fn finish_mask(raw: &Plane) -> Plane {
    let (sw, sh) = (raw.width, raw.height);
    let open_r = ((sw.min(sh) as f32) * 0.01).round().max(1.0) as usize;
    let opened = open(&fill_holes(raw), open_r);
    let (joined, _) = bridge_gaps(&opened, 2 * guard_of(sw, sh), sw * sh / 1000);
    fill_holes(&joined)
}

/// What [`locate`] found: the palm frame (or why there is none) and the segmentation it
/// rests on.
#[derive(Clone, Debug)]
pub struct Located {
    pub geometry: Result<HandGeometry, AcquireFailure>,
    /// The segmentation behind `geometry`; `None` when segmentation itself refused.
    pub segmentation: Option<Segmentation>,
}

/// Find the hand and its palm frame in a capture. The first segmentation is kept unless the
/// frame refuses it or puts the ROI outside the capture; then the colour-split
/// segmentations ([`segment_split`]) are tried in turn, and the first whose frame holds
/// with its ROI inside the capture is kept. If none holds, the outcome is the first
/// segmentation's (a refusal, or a frame whose ROI [`cut_roi`] will refuse).
pub fn locate(capture: &Capture, cfg: &HandConfig) -> Located {
    let img = SegImage::new(capture);
    let first = match segment_image(&img) {
        Ok(s) => s,
        Err(e) => {
            return Located {
                geometry: Err(e),
                segmentation: None,
            }
        }
    };
    let (w, h) = (capture.width(), capture.height());
    let geometry = frame(first.mask.clone(), first.scale, cfg);
    if geometry.as_ref().is_ok_and(|g| g.roi_inside(w, h)) {
        return Located {
            geometry,
            segmentation: Some(first),
        };
    }
    for alt in segment_split(&img, &first) {
        if let Ok(geo) = frame(alt.mask.clone(), alt.scale, cfg) {
            if geo.roi_inside(w, h) {
                return Located {
                    geometry: Ok(geo),
                    segmentation: Some(alt),
                };
            }
        }
    }
    Located {
        geometry,
        segmentation: Some(first),
    }
}

/// 1 where the plane exceeds `t`, else 0.
fn threshold(p: &Plane, t: f32) -> Plane {
    Plane {
        width: p.width,
        height: p.height,
        data: p.data.iter().map(|&v| if v > t { 1.0 } else { 0.0 }).collect(),
    }
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
    // Where a sleeve, a bracelet or a shadow cuts the forearm, the cut's corners can look
    // like short fingertips. The fingers all point away from the wrist: find the direction
    // of the fingers and drop tips pointing backwards from it. That direction is the median
    // of the tips within +-60 degrees of the tip whose +-60 degrees hold the most tip length:
    // that tip itself can be the index finger, with the thumb in its window, and the cut's
    // corners are then barely more than 125 degrees from it; the median is the middle
    // finger's (or between the middle and ring fingers'), 140 degrees and more from them.
    if tips.len() > 2 {
        let angle = |k: usize| k as f32 * step;
        let diff = |a: f32, b: f32| {
            let d = (a - b).rem_euclid(tau);
            d.min(tau - d)
        };
        let weight = |k: usize| {
            tips.iter()
                .filter(|&&j| diff(angle(j), angle(k)) <= 60f32.to_radians())
                .map(|&j| smooth[j])
                .sum::<f32>()
        };
        let best = tips
            .iter()
            .copied()
            .max_by(|&a, &b| weight(a).total_cmp(&weight(b)))
            .unwrap_or(0);
        let signed = |a: f32, b: f32| (a - b + std::f32::consts::PI).rem_euclid(tau) - std::f32::consts::PI;
        let mut near: Vec<f32> = tips
            .iter()
            .map(|&j| signed(angle(j), angle(best)))
            .filter(|d| d.abs() <= 60f32.to_radians())
            .collect();
        near.sort_by(f32::total_cmp);
        let m = near.len();
        let median = if m % 2 == 1 {
            near[m / 2]
        } else {
            (near[m / 2 - 1] + near[m / 2]) / 2.0
        };
        let dir = angle(best) + median;
        tips.retain(|&k| diff(angle(k), dir) < 125f32.to_radians());
    }
    // Why the fingers cannot be told apart: more hand on the frame's edge than an arm
    // accounts for means fingers are out of frame; otherwise they are not spread.
    let fingers_failure = || {
        let on_edge = (0..sw)
            .filter(|&x| hand.get(x, 0) > 0.5 || hand.get(x, sh - 1) > 0.5)
            .count()
            + (0..sh)
                .filter(|&y| hand.get(0, y) > 0.5 || hand.get(sw - 1, y) > 0.5)
                .count();
        if on_edge as f32 > 2.5 * rmax {
            AcquireFailure::PartlyOutOfFrame
        } else {
            AcquireFailure::FingersNotSpread
        }
    };
    if tips.len() < 4 || tips.len() > 5 {
        return Err(fingers_failure());
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
    // The valleys of a hand's four fingers are about evenly spaced, and no further apart
    // than its palm is wide. Where a finger went unseen (it touches its neighbour, a ring
    // cuts it, or it runs into the frame) and the thumb was taken for a finger, one gap
    // is the thumb's, far wider than the others, and the span is too.
    let (g1, g2) = (valleys[0].dist(valleys[1]), valleys[1].dist(valleys[2]));
    if g1.max(g2) > cfg.max_valley_unevenness * g1.min(g2) || d > cfg.max_valley_span * rmax {
        return Err(fingers_failure());
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
    // The ROI is the palm's centre: a frame that puts it far from the palm's thickest
    // point was built on the wrong fingers (segmentation pixels, as `centre` and `rmax`).
    let down = off + side / 2.0;
    let roi_centre = Point {
        x: mid.x + uy.0 * down,
        y: mid.y + uy.1 * down,
    };
    if roi_centre.dist(centre) > cfg.max_roi_offset * rmax {
        return Err(fingers_failure());
    }
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
    if !geo.roi_inside(capture.width(), capture.height()) {
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
    use super::split::split_colours;
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

    /// Dilation by definition: any pixel of the window (inside the frame) is hand.
    fn naive_dilate(m: &Plane, r: usize) -> Plane {
        Plane::from_fn(m.width, m.height, |x, y| {
            let (x0, x1) = (x.saturating_sub(r), (x + r).min(m.width - 1));
            let (y0, y1) = (y.saturating_sub(r), (y + r).min(m.height - 1));
            let any = (y0..=y1).any(|yy| (x0..=x1).any(|xx| m.get(xx, yy) > 0.5));
            if any {
                1.0
            } else {
                0.0
            }
        })
    }

    #[test]
    fn running_sum_dilation_matches_definition() {
        let m = Plane::from_fn(41, 19, |x, y| if (x * 5 + y * 3) % 17 == 0 { 1.0 } else { 0.0 });
        for r in 0..4 {
            assert_eq!(dilate(&m, r), naive_dilate(&m, r), "r = {r}");
        }
    }

    /// A palm (rectangle) with three fingers: the first cut through by a 2-pixel band (a
    /// ring), the other two 2 pixels apart along their length.
    fn ringed_hand() -> Plane {
        binary(60, 50, |x, y| {
            let palm = (10..50).contains(&x) && (25..45).contains(&y);
            let f1 = (12..20).contains(&x) && (3..25).contains(&y) && !(12..14).contains(&y);
            let f2 = (26..34).contains(&x) && (3..25).contains(&y);
            let f3 = (36..44).contains(&x) && (3..25).contains(&y);
            palm || f1 || f2 || f3
        })
    }

    /// A 0/1 mask: 1 where `f` holds.
    fn binary(w: usize, h: usize, f: impl Fn(usize, usize) -> bool) -> Plane {
        Plane::from_fn(w, h, |x, y| if f(x, y) { 1.0 } else { 0.0 })
    }

    #[test]
    fn bridging_rejoins_a_cut_finger_and_keeps_finger_gaps() {
        let m = ringed_hand();
        let (plain, plain_area) = largest_component(&m);
        assert_eq!(plain.get(15, 6), 0.0, "the tip is cut off the largest component");
        let (joined, area) = bridge_gaps(&m, 2, 20);
        assert_eq!(joined.get(15, 6), 1.0, "the fingertip is joined back");
        assert_eq!(joined.get(15, 13), 1.0, "across the ring");
        // The gap between the touching fingers (x 34..36) stays open: it is inside one
        // component, not between two.
        for y in 3..25 {
            assert_eq!(joined.get(34, y), 0.0, "finger gap at y {y}");
            assert_eq!(joined.get(35, y), 0.0, "finger gap at y {y}");
        }
        // What is added is the tip and the ring band only.
        assert_eq!(area, plain_area + 8 * 9 + 8 * 2);
        // Pieces below the minimum area are not joined.
        assert_eq!(bridge_gaps(&m, 2, 100).1, plain_area);
    }

    /// A deterministic hash in [0, 1).
    fn hash(x: usize, y: usize, k: usize) -> f32 {
        let mut h = (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ k as u64;
        h ^= h >> 29;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 32;
        (h % 10_000) as f32 / 10_000.0
    }

    /// An open hand (palm disc, four finger capsules, a thumb) on a background of `bg`
    /// colour with grain; returns the capture and the true mask.
    fn scene(skin: [f32; 3], bg: [f32; 3], hand: bool) -> (Capture, Plane) {
        scene_with_slab(skin, bg, hand, None)
    }

    /// [`scene`] with an object of colour `slab` behind the fingertips (a door or a piece of
    /// furniture), which the fingers touch: x 110..330, y 0..42 (the tips reach y 32).
    fn scene_with_slab(skin: [f32; 3], bg: [f32; 3], hand: bool, slab: Option<[f32; 3]>) -> (Capture, Plane) {
        let (w, h) = (400usize, 300usize);
        let capsule = |px: f32, py: f32, a: [f32; 2], b: [f32; 2], r: f32| {
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let t = (((px - a[0]) * dx + (py - a[1]) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            (px - a[0] - t * dx).powi(2) + (py - a[1] - t * dy).powi(2) < r * r
        };
        let truth = Plane::from_fn(w, h, |x, y| {
            let (px, py) = (x as f32, y as f32);
            let palm = (px - 220.0).powi(2) + (py - 190.0).powi(2) < 60.0f32.powi(2);
            let fingers = [150.0, 195.0, 240.0, 285.0]
                .iter()
                .any(|&fx| capsule(px, py, [fx + (220.0 - fx) * 0.3, 160.0], [fx, 45.0], 13.0));
            let thumb = capsule(px, py, [190.0, 210.0], [95.0, 170.0], 15.0);
            if hand && (palm || fingers || thumb) {
                1.0
            } else {
                0.0
            }
        });
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let in_slab = (110..330).contains(&x) && (8..42).contains(&y);
                let (c, v) = if truth.get(x, y) > 0.5 {
                    (skin, 0.85 + 0.1 * hash(x / 3, y / 3, 1))
                } else if let Some(c) = slab.filter(|_| in_slab) {
                    (c, 0.8 + 0.1 * hash(x / 2, y / 2, 4))
                } else {
                    let grain = ((y as f32 + 6.0 * (x as f32 / 40.0).sin()) / 5.0).sin();
                    (bg, 0.8 + 0.12 * grain + 0.06 * hash(x, y / 4, 2))
                };
                for (k, ck) in c.iter().enumerate() {
                    let n = 0.02 * (hash(x, y, 3 + k) - 0.5);
                    rgb.push(((ck * v + n).clamp(0.0, 1.0) * 255.0).round() as u8);
                }
            }
        }
        (Capture::from_rgb8(w, h, &rgb), truth)
    }

    const SKIN: [f32; 3] = [0.86, 0.66, 0.58];
    const WOOD: [f32; 3] = [0.6, 0.4, 0.22];

    fn iou(a: &Plane, b: &Plane) -> f32 {
        let (mut inter, mut union) = (0usize, 0usize);
        for (&x, &y) in a.data.iter().zip(&b.data) {
            inter += (x > 0.5 && y > 0.5) as usize;
            union += (x > 0.5 || y > 0.5) as usize;
        }
        inter as f32 / union.max(1) as f32
    }

    #[test]
    fn adaptive_models_separate_a_hand_from_a_skin_toned_background() {
        let (capture, truth) = scene(SKIN, WOOD, true);
        // The premise: a fixed skin-colour box takes the wood for skin.
        let skin = skin_mask(&capture.r, &capture.g, &capture.b);
        let bg_in_box = skin
            .data
            .iter()
            .zip(&truth.data)
            .filter(|(&s, &t)| t < 0.5 && s > 0.5)
            .count() as f32
            / truth.data.iter().filter(|&&t| t < 0.5).count() as f32;
        assert!(bg_in_box > 0.5, "wood in the skin box: {bg_in_box}");
        let seg = segment_detailed(&capture).expect("a hand is found");
        // The mask is at the segmentation width: compare with the truth at that size.
        assert_eq!(seg.mask.width, SEG_WIDTH.min(capture.width()));
        let truth_small = truth.resize_area(seg.mask.width, seg.mask.height);
        let overlap = iou(&seg.mask, &truth_small);
        assert!(overlap > 0.95, "IoU with the true hand {overlap}");
        let ev = seg.evidence.expect("evidence map");
        let at = |v: f32| (v / seg.scale).round() as usize;
        assert!(ev.get(at(220.0), at(190.0)) > 0.0 && ev.get(at(20.0), at(20.0)) < 0.0);
        // The whole pipeline then finds the hand's frame.
        let geo = frame(seg.mask, seg.scale, &HandConfig::default()).expect("palm frame");
        assert!(geo.palm_centre.dist(Point { x: 220.0, y: 190.0 }) < 25.0);
    }

    /// A palm with two fingers: the first, slim, cut through by a ring, its tip lying two
    /// pixels beside the second finger all along its length.
    fn slim_ringed_finger_beside_another() -> Plane {
        binary(60, 50, |x, y| {
            let palm = (10..50).contains(&x) && (30..45).contains(&y);
            let f1 = (12..16).contains(&x) && (3..30).contains(&y) && !(20..22).contains(&y);
            let f2 = (18..26).contains(&x) && (3..30).contains(&y);
            palm || f1 || f2
        })
    }

    #[test]
    fn an_elongated_piece_is_joined_through_its_end_not_along_its_side() {
        let m = slim_ringed_finger_beside_another();
        let (plain, plain_area) = largest_component(&m);
        assert_eq!(plain.get(14, 5), 0.0, "the tip is cut off the largest component");
        let (joined, area) = bridge_gaps(&m, 2, 20);
        assert_eq!(joined.get(14, 5), 1.0, "the fingertip is joined back");
        assert_eq!(joined.get(14, 20), 1.0, "across the ring");
        assert_eq!(joined.get(14, 21), 1.0, "across the ring");
        // A closing of radius 2 would fill the 2-pixel gap between the fingers all along
        // the tip; the piece is joined through its end only, so the fingers stay apart.
        for y in 3..20 {
            assert_eq!(joined.get(17, y), 0.0, "finger gap at y {y}");
        }
        for y in 3..16 {
            assert_eq!(joined.get(16, y), 0.0, "finger gap at y {y}");
        }
        // What is added is the tip (4 x 17) and a strip across the ring at most a pixel
        // wider than the finger on each side, nothing outside it.
        for y in 0..50 {
            for x in (0..11).chain(17..60) {
                assert_eq!(
                    joined.get(x, y),
                    plain.get(x, y),
                    "added outside the strip at ({x}, {y})"
                );
            }
        }
        assert!(area >= plain_area + 4 * 17 + 4 * 2, "area {area}");
    }

    /// Colour features of a 40 x 40 image whose left half is `left` and right half `right`,
    /// each with a little noise (a sum of four hashes: roughly Gaussian, as real colour
    /// noise is).
    fn two_colour_features(left: [f32; 3], right: [f32; 3]) -> Features {
        let noise =
            |x: usize, y: usize, k: usize| (0..4).map(|j| hash(x, y, 4 * k + j)).sum::<f32>() / 4.0 - 0.5;
        let plane = |k: usize| {
            Plane::from_fn(40, 40, |x, y| {
                let c = if x < 20 { left[k] } else { right[k] };
                (c * (1.0 + 0.06 * noise(x, y, 0)) + 0.01 * noise(x, y, k + 1)).clamp(0.0, 1.0)
            })
        };
        Features::new(&plane(0), &plane(1), &plane(2))
    }

    #[test]
    fn colours_split_into_two_groups_brighter_first_only_when_they_are_two() {
        let all: Vec<usize> = (0..40 * 40).collect();
        // Lit skin against a dimmer, more saturated brown of nearly its hue.
        let f = two_colour_features(SKIN, [0.5, 0.33, 0.2]);
        let [bright, dark] = split_colours(&f, &all).expect("two colour groups");
        assert!(
            bright.iter().all(|&i| i % 40 < 20),
            "the brighter group is the skin half"
        );
        assert!(
            dark.iter().all(|&i| i % 40 >= 20),
            "the darker group is the brown half"
        );
        assert_eq!((bright.len(), dark.len()), (800, 800));
        // One colour with noise is not split, nor are too few pixels.
        assert!(split_colours(&two_colour_features(SKIN, SKIN), &all).is_none());
        assert!(split_colours(&f, &all[..60]).is_none());
    }

    #[test]
    fn locate_splits_a_mask_that_holds_the_hand_and_a_skin_hued_object_it_touches() {
        const DARK: [f32; 3] = [0.12, 0.12, 0.13];
        // The skin's own hue at 60% of its brightness: the reader lights the hand, not the door.
        const DOOR: [f32; 3] = [0.5, 0.36, 0.3];
        let (capture, truth) = scene_with_slab(SKIN, DARK, true, Some(DOOR));
        let cfg = HandConfig::default();
        // The premise: the first segmentation takes the door for hand, and the palm frame
        // cannot be found in the joined shape (or its ROI leaves the capture).
        let first = segment_detailed(&capture).expect("skin-coloured pixels are found");
        let at = |v: f32| (v / first.scale).round() as usize;
        let on_door = first.mask.get(at(130.0), at(10.0));
        let framed = frame(first.mask.clone(), first.scale, &cfg);
        assert!(on_door > 0.5, "the first mask includes the door");
        assert!(
            framed.map_or(true, |g| !g.roi_inside(capture.width(), capture.height())),
            "the first mask is framed"
        );
        let found = locate(&capture, &cfg);
        let seg = found.segmentation.expect("a segmentation");
        assert_eq!(seg.source, MaskSource::SplitBrighter);
        let truth_small = truth.resize_area(seg.mask.width, seg.mask.height);
        let overlap = iou(&seg.mask, &truth_small);
        assert!(overlap > 0.9, "IoU with the true hand {overlap}");
        let geo = found.geometry.expect("palm frame on the split mask");
        assert!(geo.palm_centre.dist(Point { x: 220.0, y: 190.0 }) < 25.0);
        // Without the door, the first segmentation is kept.
        let (plain, _) = scene(SKIN, DARK, true);
        let kept = locate(&plain, &cfg);
        assert_eq!(kept.segmentation.map(|s| s.source), Some(MaskSource::Colour));
        assert!(kept.geometry.is_ok());
    }

    #[test]
    fn a_frame_built_on_the_thumb_for_a_missing_finger_is_refused() {
        let (_, truth) = scene(SKIN, WOOD, true);
        let cfg = HandConfig::default();
        let full = frame(truth.clone(), 1.0, &cfg).expect("the whole hand is framed");
        assert!(full.palm_centre.dist(Point { x: 220.0, y: 190.0 }) < 25.0);
        // The middle finger (the capsule from (202.5, 160) to (195, 45)) is taken away
        // outside the palm disc, as if it were hidden: the thumb and three fingers are left.
        let middle = |x: f32, y: f32| {
            let (a, b) = ([202.5f32, 160.0f32], [195.0f32, 45.0f32]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let t = (((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            (x - a[0] - t * dx).powi(2) + (y - a[1] - t * dy).powi(2) < 14.0f32.powi(2)
        };
        let palm = |x: f32, y: f32| (x - 220.0).powi(2) + (y - 190.0).powi(2) < 60.0f32.powi(2);
        let mut hidden = truth.clone();
        for y in 0..truth.height {
            for x in 0..truth.width {
                let (fx, fy) = (x as f32, y as f32);
                if middle(fx, fy) && !palm(fx, fy) {
                    hidden.set(x, y, 0.0);
                }
            }
        }
        // The premise: without the plausibility checks, a frame is built on the thumb.
        let unchecked = HandConfig {
            max_valley_unevenness: f32::INFINITY,
            max_valley_span: f32::INFINITY,
            max_roi_offset: f32::INFINITY,
            ..cfg.clone()
        };
        let wrong = frame(hidden.clone(), 1.0, &unchecked).expect("a frame on the wrong fingers");
        let moved = wrong.valleys[0]
            .dist(full.valleys[0])
            .max(wrong.valleys[2].dist(full.valleys[2]));
        assert!(moved > 20.0, "the valleys moved by {moved} px");
        assert_eq!(
            frame(hidden, 1.0, &cfg).map(|_| ()),
            Err(AcquireFailure::FingersNotSpread)
        );
    }

    #[test]
    fn a_skin_toned_background_alone_is_no_hand() {
        let (capture, _) = scene(SKIN, WOOD, false);
        let err = segment_detailed(&capture)
            .and_then(|s| frame(s.mask, s.scale, &HandConfig::default()))
            .expect_err("no hand in the frame");
        assert_eq!(err, AcquireFailure::NoHand);
    }
}
