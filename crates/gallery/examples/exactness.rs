//! How often the two-stage search differs from exhaustive search on real palms.
//!
//! `cargo run --release -p openpalm-gallery --example exactness -- [PAD]... [rank=PAD]...`
//!
//! For Tongji ROIs and COEP whole hands (../shared/data), enrols the first two samples per
//! palm, pads the gallery with PAD templates that are not real palms, random
//! bits or scrambled real codes (a statistical shortcut, see `tests/common/real.rs`), probes
//! with every other sample and prints how often the two-stage top-1 and top-5 differ from
//! `identify_exact`. With `rank=PAD`, prints where the exhaustive top-1 ranks in the first
//! stage among PAD padding templates (see `first_stage_ranks`).

#[path = "../tests/common/real.rs"]
mod real;

use openpalm_engine::InputKind;
use std::time::Instant;

fn main() {
    // Numbers: padding sizes searched both ways; `rank=N`: padding sizes for the first-stage
    // rank figures (cheap enough for a million).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pads: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let ranks_at: Vec<usize> = args
        .iter()
        .filter_map(|a| a.strip_prefix("rank=")?.parse().ok())
        .collect();
    let Some(data) = openpalm_eval::dataset::shared_data_dir() else {
        return;
    };
    for (set, input) in [
        ("tongji-roi-dev", InputKind::Roi),
        ("coep-hands-dev", InputKind::Hand),
    ] {
        let t = Instant::now();
        let (samples, failed) = real::load(&data.join(set), input);
        eprintln!(
            "{set}: {} templates ({failed} images not read) in {:.1} s",
            samples.len(),
            t.elapsed().as_secs_f64()
        );
        for &pad in &pads {
            for kind in [real::Padding::Random, real::Padding::Scrambled] {
                let f = real::measure(&samples, pad, kind, 5, 7);
                println!(
                    "{set} pad {pad} {kind:?}: {} probes vs {} real + {} padding templates: two-stage top-1 differs {}/{}, top-5 differs {}/{}, exhaustive top-1 genuine {}/{}",
                    f.probes, f.enrolled_real, f.padding, f.top1_differs, f.probes, f.topk_differs, f.probes, f.exact_top1_genuine, f.probes
                );
            }
        }
        for &pad in &ranks_at {
            for kind in [real::Padding::Random, real::Padding::Scrambled] {
                let all = real::first_stage_ranks(&samples, pad, kind, 7);
                for (what, threshold) in [
                    ("all probes", f32::NEG_INFINITY),
                    (
                        "probes whose top-1 reaches the 1:1 threshold",
                        openpalm_engine::DEFAULT_THRESHOLD,
                    ),
                    (
                        "probes whose top-1 reaches the identification threshold",
                        openpalm_engine::IDENTIFICATION_THRESHOLD,
                    ),
                ] {
                    let mut r: Vec<usize> = all
                        .iter()
                        .filter(|(_, s)| *s >= threshold)
                        .map(|&(r, _)| r)
                        .collect();
                    if r.is_empty() {
                        continue;
                    }
                    r.sort_unstable();
                    let q = |f: f64| r[((r.len() - 1) as f64 * f).round() as usize];
                    println!(
                        "{set} first-stage rank of the exhaustive top-1 among the enrolled real + {pad} {kind:?}, {what} ({}): median {}, 99% {}, max {}",
                        r.len(), q(0.5), q(0.99), q(1.0)
                    );
                }
            }
        }
    }
}
