//! Each whole-hand acquisition failure reason of the engine, provoked on purpose by its
//! difficulty preset (`Difficulty::provoking`): the engine must name exactly that reason for
//! most captures. Every test prints its rate (`cargo test --release -p openpalm-synth --test
//! provoked_reasons -- --nocapture --include-ignored`).
//!
//! Two reasons cannot be provoked by any plausible capture with the engine's current quality
//! measures; their tests are ignored with the measured reason, to be enabled when the engine
//! can tell: `too_blurred` (the sharpness measure is relative to the ROI's contrast, and 8-bit
//! quantisation alone keeps it at 0.04-0.06 even at defocus sigma 16-24 px with no sensor
//! noise, above the refusal level 0.02) and `not_a_palm` (the line-texture measure is a ratio
//! that noise and skin texture keep near 0.88 on the back of a hand, against 0.91 on a palm,
//! with refusal at 0.15).

use openpalm_engine::{AcquireFailure, Engine, InputKind};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use std::collections::BTreeMap;

/// Captures per reason.
const N: u64 = 12;
/// "Most": the share of captures that must get exactly the provoked reason.
const MOST: f64 = 0.75;

fn provoke(reason: AcquireFailure) {
    let engine = Engine::default();
    let g = Generator::new(Kind::Hand, 77, Difficulty::provoking(reason)).unwrap();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..N {
        let p = g.identity_for(i, &[Band::Visible]);
        let img = g.render(&p, &g.sample(i, 0, 1), Band::Visible);
        let code = match engine.extract_capture(&img.to_capture(), InputKind::Hand) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        *outcomes.entry(code).or_insert(0) += 1;
    }
    let hit = outcomes.get(reason.code()).copied().unwrap_or(0);
    let rate = hit as f64 / N as f64;
    println!(
        "{}: {hit}/{N} = {:.0}% exactly that reason; all outcomes {outcomes:?}",
        reason.code(),
        100.0 * rate
    );
    assert!(
        rate >= MOST,
        "{}: only {hit}/{N} captures refused for that reason: {outcomes:?}",
        reason.code()
    );
}

#[test]
fn no_hand() {
    provoke(AcquireFailure::NoHand);
}

#[test]
fn fingers_not_spread() {
    provoke(AcquireFailure::FingersNotSpread);
}

#[test]
fn partly_out_of_frame() {
    provoke(AcquireFailure::PartlyOutOfFrame);
}

#[test]
#[ignore = "engine gap: its sharpness measure stays at 0.04-0.06 on 8-bit captures however blurred (refusal 0.02)"]
fn too_blurred() {
    provoke(AcquireFailure::TooBlurred);
}

#[test]
fn too_dark() {
    provoke(AcquireFailure::TooDark);
}

#[test]
fn too_bright() {
    provoke(AcquireFailure::TooBright);
}

#[test]
fn too_small() {
    provoke(AcquireFailure::TooSmall);
}

#[test]
#[ignore = "engine gap: its line-texture measure is ~0.88 on the back of a hand vs ~0.91 on a palm (refusal 0.15)"]
fn not_a_palm() {
    provoke(AcquireFailure::NotAPalm);
}
