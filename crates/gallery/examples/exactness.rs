//! How often the two-stage search differs from exhaustive search on real palms.
//!
//! `cargo run --release -p openpalm-gallery --example exactness -- [PAD]...`
//!
//! For Tongji ROIs and COEP whole hands (../shared/data), enrols the first two samples per
//! palm, pads the gallery with PAD (default 20000) templates that are not real palms, random
//! bits or scrambled real codes (a statistical shortcut, see `tests/common/real.rs`), probes
//! with every other sample and prints how often the two-stage top-1 and top-5 differ from
//! `identify_exact`.

#[path = "../tests/common/real.rs"]
mod real;

use openpalm_engine::InputKind;
use std::time::Instant;

fn main() {
    let pads: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let pads = if pads.is_empty() { vec![20_000] } else { pads };
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
    }
}
