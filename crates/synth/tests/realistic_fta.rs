//! Whole hands at realistic difficulty go through the engine's hand pipeline with a failure
//! to acquire under 3% (issue 3's bar), and what is acquired is framed on the hand: the ROI
//! the engine cuts lies on the rendered hand's ground-truth skin mask. Synthetic figures test
//! the machinery; they are never accuracy claims.
//!
//! The seed is one the hand step was never looked at on: its parameters came from
//! coep-hands-dev and synthetic seeds 1, 3, 7 and 2026 (seed 2026 showed a frame built on the
//! thumb, which led to the frame's plausibility checks; it gives FTA 1.1% now).
//! `cargo test --release -p openpalm-synth --test realistic_fta -- --nocapture` prints the
//! figures.

use openpalm_engine::hand::Point;
use openpalm_engine::{Engine, InputKind, Trace};
use openpalm_synth::{Band, Difficulty, Generator, HandRender, Kind};
use rayon::prelude::*;
use std::collections::BTreeMap;

const SEED: u64 = 4242;
const IDENTITIES: u64 = 60;
const SAMPLES: usize = 3;
/// The bar: failure to acquire under 3%.
const MAX_FTA: f64 = 0.03;

/// Whether `p` (capture pixels) falls on the rendered hand's skin.
fn on_hand(r: &HandRender, p: Point) -> bool {
    let (w, h) = (r.image.width, r.image.height);
    let (x, y) = (p.x.round(), p.y.round());
    x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h && r.mask[y as usize * w + x as usize] == 1
}

/// How one capture went: failure reason, or how many of the ROI's corners and centre lie on
/// the hand.
enum Outcome {
    Failed(String),
    Acquired {
        corners_on_hand: usize,
        centre_on_hand: bool,
    },
}

#[test]
fn realistic_whole_hands_are_acquired_and_framed_on_the_hand() {
    let engine = Engine::default();
    let g = Generator::new(Kind::Hand, SEED, Difficulty::realistic()).unwrap();
    let outcomes: Vec<Outcome> = (0..IDENTITIES)
        .into_par_iter()
        .flat_map_iter(|i| {
            let p = g.identity_for(i, &[Band::Visible]);
            let (g, engine) = (&g, &engine);
            (0..SAMPLES).map(move |k| {
                let r = g.render_hand(&p, &g.sample(i, k, SAMPLES), Band::Visible);
                let mut trace = Trace::default();
                match engine.extract_traced(&r.image.to_capture(), InputKind::Hand, &mut trace) {
                    Err(e) => Outcome::Failed(e.code().to_string()),
                    Ok(_) => {
                        let geo = trace.hand.expect("an acquired hand has its geometry");
                        let c = geo.roi_corners;
                        let centre = Point {
                            x: c.iter().map(|p| p.x).sum::<f32>() / 4.0,
                            y: c.iter().map(|p| p.y).sum::<f32>() / 4.0,
                        };
                        Outcome::Acquired {
                            corners_on_hand: c.iter().filter(|&&p| on_hand(&r, p)).count(),
                            centre_on_hand: on_hand(&r, centre),
                        }
                    }
                }
            })
        })
        .collect();
    let n = outcomes.len();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut acquired, mut centres, mut all_corners) = (0, 0, 0);
    for o in &outcomes {
        match o {
            Outcome::Failed(r) => *reasons.entry(r).or_default() += 1,
            Outcome::Acquired {
                corners_on_hand,
                centre_on_hand,
            } => {
                acquired += 1;
                centres += *centre_on_hand as usize;
                all_corners += (*corners_on_hand == 4) as usize;
            }
        }
    }
    let fta = (n - acquired) as f64 / n as f64;
    println!(
        "realistic whole hands, seed {SEED}: {n} captures, FTA {:.1}% {reasons:?}; of {acquired} acquired, ROI centre on the hand {centres}, all four ROI corners on the hand {all_corners}",
        100.0 * fta
    );
    assert!(fta < MAX_FTA, "FTA {:.1}% ({reasons:?})", 100.0 * fta);
    // The ROI is cut from the palm below the finger valleys: its centre is always on the
    // hand, and its corners are too but for the odd capture whose palm edge runs close to
    // them (measured: 177 of 179; on seed 2026 all 178 of 178, where before the frame's
    // plausibility checks one ROI of 179 was centred on the wrist).
    assert_eq!(centres, acquired, "ROIs centred off the hand");
    assert!(
        all_corners as f64 >= 0.97 * acquired as f64,
        "only {all_corners} of {acquired} ROIs lie wholly on the hand"
    );
}
