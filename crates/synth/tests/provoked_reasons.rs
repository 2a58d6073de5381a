//! Each whole-hand acquisition failure reason of the engine, provoked on purpose by its
//! difficulty preset (`Difficulty::provoking`): the engine must name exactly that reason for
//! most captures. Every test prints its rate (`cargo test --release -p openpalm-synth --test
//! provoked_reasons -- --nocapture`).

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
fn not_a_palm() {
    provoke(AcquireFailure::NotAPalm);
}
