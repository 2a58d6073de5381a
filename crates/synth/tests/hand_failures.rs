//! Each whole-hand acquisition failure reason can be provoked on purpose by a difficulty
//! setting. These tests measure on the generated image (against its ground-truth hand mask)
//! that the knob produces the intended condition, whatever the engine makes of it; that the
//! engine names exactly that reason is tested in `provoked_reasons.rs`.

use openpalm_engine::AcquireFailure;
use openpalm_synth::render::{hand_to_image, pose_fingers};
use openpalm_synth::{Band, Difficulty, Generator, HandRender, Kind, Prepared, Sample};

const W: usize = 800;
const H: usize = 600;

struct Shot {
    prepared: Prepared,
    sample: Sample,
    render: HandRender,
}

fn shots(d: Difficulty, n: u64) -> Vec<Shot> {
    let g = Generator::new(Kind::Hand, 2024, d).unwrap();
    (0..n)
        .map(|i| {
            let prepared = g.identity_for(i, &[Band::Visible]);
            let sample = g.sample(i, 0, 1);
            let render = g.render_hand(&prepared, &sample, Band::Visible);
            Shot {
                prepared,
                sample,
                render,
            }
        })
        .collect()
}

/// Realistic captures without tilt or skin deformation, so that `hand_to_image` is exact.
fn realistic_flat() -> Difficulty {
    let mut d = Difficulty::realistic();
    d.tilt = 0.0;
    d.deformation = 0.0;
    d
}

fn hand_fraction(s: &Shot) -> f32 {
    s.render.mask.iter().map(|&m| m as f32).sum::<f32>() / s.render.mask.len() as f32
}

fn hand_pixels(s: &Shot) -> impl Iterator<Item = usize> + '_ {
    s.render
        .mask
        .iter()
        .enumerate()
        .filter(|(_, &m)| m == 1)
        .map(|(i, _)| i)
}

fn mean_hand_luma(s: &Shot) -> f32 {
    let l = s.render.image.luma();
    let (sum, n) = hand_pixels(s).fold((0.0, 0), |(a, n), i| (a + l[i], n + 1));
    sum / n.max(1) as f32
}

fn saturated_fraction(s: &Shot) -> f32 {
    let d = &s.render.image.data;
    let (sat, n) = hand_pixels(s).fold((0, 0), |(a, n), i| {
        (
            a + (d[3 * i..3 * i + 3].iter().any(|&v| v >= 250) as usize),
            n + 1,
        )
    });
    sat as f32 / n.max(1) as f32
}

/// Sharpness: mean squared luma gradient over hand pixels, measured on 4x4 block means so
/// that sensor noise does not count as detail.
fn gradient_energy(s: &Shot) -> f32 {
    let l = s.render.image.luma();
    let (bw, bh) = (W / 4, H / 4);
    let mut b = vec![0.0f32; bw * bh];
    let mut hand = vec![true; bw * bh];
    for y in 0..bh * 4 {
        for x in 0..bw * 4 {
            b[(y / 4) * bw + x / 4] += l[y * W + x] / 16.0;
            hand[(y / 4) * bw + x / 4] &= s.render.mask[y * W + x] == 1;
        }
    }
    let (mut sum, mut n) = (0.0, 0);
    for y in 0..bh - 1 {
        for x in 0..bw - 1 {
            let i = y * bw + x;
            if hand[i] {
                let (gx, gy) = (b[i + 1] - b[i], b[i + bw] - b[i]);
                sum += gx * gx + gy * gy;
                n += 1;
            }
        }
    }
    sum / n.max(1) as f32
}

/// Mask pixels on the top row, bottom row and left column (the wrist side, right, always
/// leaves the frame through the forearm).
fn border_touch(s: &Shot) -> usize {
    let m = &s.render.mask;
    (0..W)
        .map(|x| (m[x] + m[(H - 1) * W + x]) as usize)
        .sum::<usize>()
        + (0..H).map(|y| m[y * W] as usize).sum::<usize>()
}

/// Separate runs of hand pixels along the line across the four fingers at 60% of their
/// length: 4 when the fingers are spread, 1 when they are closed together.
fn finger_runs(s: &Shot) -> usize {
    let (fingers, _) = pose_fingers(&s.prepared.identity.hand, s.sample.spread);
    let at = |f: usize| {
        let p = fingers[f];
        [
            p.base[0] + 0.6 * (p.tip[0] - p.base[0]),
            p.base[1] + 0.6 * (p.tip[1] - p.base[1]),
        ]
    };
    let (a, b) = (at(0), at(3));
    // Extend just beyond both outer fingers (palm units), then map to the image.
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    let (e0, e1) = ((fingers[0].radius + 0.08) / len, (fingers[3].radius + 0.08) / len);
    let a = [a[0] - e0 * dx, a[1] - e0 * dy];
    let b = [b[0] + e1 * dx, b[1] + e1 * dy];
    let a = hand_to_image(&s.prepared.identity, &s.sample, W, H, a);
    let b = hand_to_image(&s.prepared.identity, &s.sample, W, H, b);
    let steps = 600;
    let along: Vec<bool> = (0..=steps)
        .map(|k| {
            let t = k as f32 / steps as f32;
            let (x, y) = (
                (a[0] + t * (b[0] - a[0])).round(),
                (a[1] + t * (b[1] - a[1])).round(),
            );
            x >= 0.0
                && y >= 0.0
                && (x as usize) < W
                && (y as usize) < H
                && s.render.mask[y as usize * W + x as usize] == 1
        })
        .collect();
    // Debounced: a change counts only if it holds for 4 samples (ignores 1-pixel slivers
    // where the line grazes an antialiased edge).
    let mut runs = 0;
    let mut inside = false;
    for k in 0..along.len() {
        let v = along[k];
        if v != inside && along[k..(k + 4).min(along.len())].iter().all(|&w| w == v) {
            inside = v;
            if v {
                runs += 1;
            }
        }
    }
    runs
}

/// High-pass luma energy in a disc at the palm centre (crease and skin texture).
fn palm_texture(s: &Shot) -> f32 {
    let l = s.render.image.luma();
    let c = hand_to_image(&s.prepared.identity, &s.sample, W, H, [0.5, 0.5]);
    let r = 40isize;
    let (cx, cy) = (c[0] as isize, c[1] as isize);
    let (mut sum, mut n) = (0.0, 0);
    for y in cy - r..=cy + r {
        for x in cx - r..=cx + r {
            if (x - cx).pow(2) + (y - cy).pow(2) > r * r
                || x < 3
                || y < 3
                || x + 3 >= W as isize
                || y + 3 >= H as isize
            {
                continue;
            }
            let mut local = 0.0;
            for yy in y - 3..=y + 3 {
                for xx in x - 3..=x + 3 {
                    local += l[yy as usize * W + xx as usize];
                }
            }
            let d = l[y as usize * W + x as usize] - local / 49.0;
            sum += d * d;
            n += 1;
        }
    }
    sum / n.max(1) as f32
}

#[test]
fn realistic_hands_are_acquirable_by_these_measures() {
    for s in shots(realistic_flat(), 4) {
        let f = hand_fraction(&s);
        assert!((0.08..0.4).contains(&f), "hand fraction {f}");
        let l = mean_hand_luma(&s);
        assert!((50.0..220.0).contains(&l), "luma {l}");
        assert!(saturated_fraction(&s) < 0.05);
        assert_eq!(border_touch(&s), 0);
        assert_eq!(finger_runs(&s), 4);
        assert!(gradient_energy(&s) > 1.0, "gradient {}", gradient_energy(&s));
    }
}

#[test]
fn no_hand() {
    for s in shots(Difficulty::provoking(AcquireFailure::NoHand), 2) {
        assert_eq!(hand_fraction(&s), 0.0);
        // The background is still an image, not a blank frame.
        let l = s.render.image.luma();
        let m = l.iter().sum::<f32>() / l.len() as f32;
        let sd = (l.iter().map(|v| (v - m).powi(2)).sum::<f32>() / l.len() as f32).sqrt();
        assert!(sd > 1.0, "background sd {sd}");
    }
}

#[test]
fn fingers_not_spread() {
    let mut d = Difficulty::provoking(AcquireFailure::FingersNotSpread);
    d.tilt = 0.0;
    d.deformation = 0.0;
    for s in shots(d, 4) {
        assert_eq!(finger_runs(&s), 1, "closed fingers form one run of skin");
        assert!(hand_fraction(&s) > 0.08);
    }
}

#[test]
fn partly_out_of_frame() {
    for s in shots(Difficulty::provoking(AcquireFailure::PartlyOutOfFrame), 3) {
        assert!(border_touch(&s) > 100, "touching {}", border_touch(&s));
        assert!(hand_fraction(&s) > 0.03);
    }
}

#[test]
fn too_blurred() {
    // The same scenes in focus: only the defocus differs.
    let mut focused = Difficulty::provoking(AcquireFailure::TooBlurred);
    focused.defocus = Difficulty::realistic().defocus;
    let base: f32 = shots(focused, 2).iter().map(gradient_energy).sum();
    let blurred: f32 = shots(Difficulty::provoking(AcquireFailure::TooBlurred), 2)
        .iter()
        .map(gradient_energy)
        .sum();
    // At a quarter resolution inside the hand, where smooth shading is untouched by blur:
    // 12-16 px of defocus leaves about a fifth of the gradient energy.
    assert!(blurred < 0.3 * base, "blurred {blurred} base {base}");
}

#[test]
fn too_dark() {
    for s in shots(Difficulty::provoking(AcquireFailure::TooDark), 3) {
        let l = mean_hand_luma(&s);
        assert!(l < 20.0, "luma {l}");
    }
}

#[test]
fn too_bright() {
    for s in shots(Difficulty::provoking(AcquireFailure::TooBright), 3) {
        let f = saturated_fraction(&s);
        assert!(f > 0.6, "saturated {f}");
    }
}

#[test]
fn too_small() {
    for s in shots(Difficulty::provoking(AcquireFailure::TooSmall), 3) {
        let f = hand_fraction(&s);
        assert!(f > 0.001 && f < 0.025, "hand fraction {f}");
    }
}

#[test]
fn not_a_palm() {
    let mut back = Difficulty::provoking(AcquireFailure::NotAPalm);
    back.tilt = 0.0;
    back.deformation = 0.0;
    let front: f32 = shots(realistic_flat(), 3).iter().map(palm_texture).sum();
    let backs = shots(back, 3);
    let b: f32 = backs.iter().map(palm_texture).sum();
    assert!(b < 0.4 * front, "back {b} palm {front}");
    // Still a hand of normal size.
    assert!(backs.iter().all(|s| hand_fraction(s) > 0.08));
}
