//! Compare the fast ROI renderer (`openpalm_synth::fast`) with the full path, on the same
//! identities and samples (SYNTHETIC: machinery figures, never accuracy claims).
//!
//! ```text
//! cargo run --release -p openpalm-synth --example fast_vs_full -- [scores|pixels|fine] [N] [seed] [REAL_SCORES_CSV]
//! ```
//!
//! - `scores` (default): engine templates of N identities through both paths; mean and sd of
//!   all impostor scores among them, and of genuine scores (captures 0 and 1 of each
//!   identity), with the relative differences; templates/s of each path. With the
//!   `scores.csv` of an `openpalm eval` run on a real set (e.g. tongji-roi-dev), also each
//!   path's impostor mean and sd relative to the real set's.
//! - `pixels`: the line channel the engine sees at working size, both paths: mean standard
//!   deviation and correlation per image (raw and contrast-normalised).
//! - `fine`: the same for the skin texture alone (the render divided by the same render
//!   without skin texture; no creases, blotches or sensor noise): the ratio of standard
//!   deviations calibrates `fast::FINE_GAIN`.
//! - `timing`: median milliseconds per template of each stage on one thread: identity,
//!   crease texture, full render, fast render, extraction of a full and of a fast capture.

use openpalm_engine::plane::Plane;
use openpalm_engine::roi::normalise_contrast;
use openpalm_engine::{Engine, InputKind, Template};
use openpalm_synth::fast::{FastRoi, Scratch};
use openpalm_synth::identity::{Identity, ROI_DOMAIN};
use openpalm_synth::realism::{read_eval_scores, Stats};
use openpalm_synth::render::render_roi;
use openpalm_synth::{Difficulty, Generator, Kind, Sample, ROI_SIDE};
use rayon::prelude::*;
use std::time::Instant;

fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

fn corr(a: &[f32], b: &[f32]) -> f64 {
    let a: Vec<f64> = a.iter().map(|&x| x as f64).collect();
    let b: Vec<f64> = b.iter().map(|&x| x as f64).collect();
    let (ma, sa) = stats(&a);
    let (mb, sb) = stats(&b);
    let c = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / a.len() as f64;
    c / (sa * sb)
}

fn full_plane(id: &Identity, s: &Sample, side: usize) -> Plane {
    let tex = id.texture(ROI_DOMAIN, 150.0, false);
    let img = render_roi(id, &tex, s, openpalm_synth::Band::Visible, ROI_SIDE);
    img.to_capture().line_channel().resize_area(side, side)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("scores");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let g = Generator::new(Kind::Roi, seed, Difficulty::realistic()).expect("difficulty");
    let engine = &Engine::default();
    let fast = FastRoi::for_engine(engine);
    match mode {
        "timing" => {
            // Median time per item of each stage: robust to the preemption of a loaded
            // machine (a time slice is longer than one item).
            fn timed<T>(n: u64, mut f: impl FnMut(usize) -> T) -> (Vec<T>, f64) {
                let mut times = Vec::with_capacity(n as usize);
                let out = (0..n as usize)
                    .map(|i| {
                        let t = Instant::now();
                        let v = f(i);
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                        v
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                (out, times[times.len() / 2])
            }
            let (ids, t_id) = timed(n, |i| Identity::generate(seed, i as u64, &g.population));
            let (tex, t_tex) = timed(n, |i| ids[i].texture(ROI_DOMAIN, 150.0, false));
            let samples: Vec<Sample> = (0..n).map(|i| g.sample(i, 0, 1)).collect();
            let (full, t_full) = timed(n, |i| {
                render_roi(
                    &ids[i],
                    &tex[i],
                    &samples[i],
                    openpalm_synth::Band::Visible,
                    ROI_SIDE,
                )
                .to_capture()
            });
            let mut scratch = Scratch::default();
            let (quick, t_fast) = timed(n, |i| fast.capture(&ids[i], &samples[i], &mut scratch));
            let extract = |caps: &[openpalm_engine::Capture]| {
                let (ok, t) = timed(n, |i| engine.extract_capture(&caps[i], InputKind::Roi).is_ok());
                (t, ok.iter().filter(|&&ok| ok).count())
            };
            let (x_full, ok_full) = extract(&full);
            let (x_fast, ok_fast) = extract(&quick);
            println!(
                "median ms per template, one thread, {n} identities: identity {t_id:.3}; full path: \
                 texture {t_tex:.3} render {t_full:.3} extract {x_full:.3} ({ok_full} ok); fast path: \
                 render {t_fast:.3} extract {x_fast:.3} ({ok_fast} ok)"
            );
        }
        "pixels" | "fine" => {
            let fine_only = mode == "fine";
            let rows: Vec<[f64; 4]> = (0..n)
                .into_par_iter()
                .map_init(Scratch::default, |scr, i| {
                    let mut id = Identity::generate(seed, i, &g.population);
                    let mut s = g.sample(i, 0, 1);
                    if fine_only {
                        id.principal.clear();
                        id.secondary.clear();
                        id.wrinkles.clear();
                        id.blotch_amp = 0.0;
                        s.noise = 0.0;
                        s.light_strength = 0.0;
                    }
                    let mut a = full_plane(&id, &s, fast.side);
                    let mut b = fast.capture(&id, &s, scr).line_channel();
                    if fine_only {
                        // The skin texture alone: relative to the same render without it.
                        id.texture_amp = 0.0;
                        let a0 = full_plane(&id, &s, fast.side);
                        let b0 = fast.capture(&id, &s, scr).line_channel();
                        for (p, q) in [(&mut a, &a0), (&mut b, &b0)] {
                            p.data
                                .iter_mut()
                                .zip(&q.data)
                                .for_each(|(v, w)| *v = 1.0 + *v / w - 1.0);
                        }
                    }
                    let rel = |p: &Plane| {
                        let (m, sd) = p.mean_std();
                        (sd / m) as f64
                    };
                    let (na, nb) = (normalise_contrast(&a), normalise_contrast(&b));
                    [rel(&a), rel(&b), corr(&a.data, &b.data), corr(&na.data, &nb.data)]
                })
                .collect();
            let col = |k: usize| stats(&rows.iter().map(|r| r[k]).collect::<Vec<_>>()).0;
            println!(
                "{mode}: {n} images: relative sd full {:.5} fast {:.5} (fast/full {:.3}); correlation raw {:.3} normalised {:.3}",
                col(0),
                col(1),
                col(1) / col(0),
                col(2),
                col(3)
            );
        }
        _ => {
            let make = |full: bool| -> (Vec<Template>, Vec<Template>, f64) {
                let t = Instant::now();
                let out: Vec<(Template, Template)> = (0..n)
                    .into_par_iter()
                    .map_init(Scratch::default, |scr, i| {
                        let id = Identity::generate(seed, i, &g.population);
                        let tex = full.then(|| id.texture(ROI_DOMAIN, 150.0, false));
                        let mut two = (0..2).map(|k| {
                            let s = g.sample(i, k, 2);
                            let cap = match &tex {
                                Some(tex) => {
                                    render_roi(&id, tex, &s, openpalm_synth::Band::Visible, ROI_SIDE)
                                        .to_capture()
                                }
                                None => fast.capture(&id, &s, scr),
                            };
                            engine
                                .extract_capture(&cap, InputKind::Roi)
                                .expect("extraction")
                                .template
                        });
                        (two.next().unwrap(), two.next().unwrap())
                    })
                    .collect();
                let rate = 2.0 * n as f64 / t.elapsed().as_secs_f64();
                let (a, b) = out.into_iter().unzip();
                (a, b, rate)
            };
            let report = |name: &str, (a, b, rate): &(Vec<Template>, Vec<Template>, f64)| {
                let imp: Vec<f64> = (0..a.len())
                    .into_par_iter()
                    .flat_map_iter(|i| {
                        let a = &a;
                        (i + 1..a.len()).map(move |j| engine.score(&a[i], &a[j]) as f64)
                    })
                    .collect();
                let gen: Vec<f64> = a.iter().zip(b).map(|(x, y)| engine.score(x, y) as f64).collect();
                let (im, is) = stats(&imp);
                let (gm, gs) = stats(&gen);
                println!(
                    "{name}: impostor mean {im:.4} sd {is:.4} ({} pairs); genuine mean {gm:.4} sd {gs:.4}; {rate:.0} templates/s",
                    imp.len()
                );
                (im, is, gm, gs)
            };
            let full = report("full", &make(true));
            let fast = report("fast", &make(false));
            let rel = |a: f64, b: f64| 100.0 * (b - a) / a;
            if let Some(real) = args.get(4) {
                let real = read_eval_scores(std::path::Path::new(real)).expect("real scores");
                let imp = Stats::of(&real.impostor);
                let gen = Stats::of(&real.genuine);
                println!(
                    "real: impostor mean {:.4} sd {:.4} ({} pairs); genuine mean {:.4} sd {:.4}",
                    imp.mean, imp.sd, imp.count, gen.mean, gen.sd
                );
                for (name, r) in [("full", full), ("fast", fast)] {
                    println!(
                        "{name} vs real: impostor mean {:+.1}% sd {:+.1}%",
                        rel(imp.mean, r.0),
                        rel(imp.sd, r.1)
                    );
                }
            }
            println!(
                "fast vs full: impostor mean {:+.1}% sd {:+.1}%; genuine mean {:+.1}% sd {:+.1}%",
                rel(full.0, fast.0),
                rel(full.1, fast.1),
                rel(full.2, fast.2),
                rel(full.3, fast.3)
            );
        }
    }
}
