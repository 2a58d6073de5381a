//! On real palms (Tongji ROIs, ../shared/data), the two-stage search returns the same top-1
//! as scoring every template, for every probe. The gallery is padded with scrambled real
//! codes (see `common/real.rs`); `examples/exactness.rs` prints the full figures.

#[path = "common/real.rs"]
mod real;

use openpalm_engine::InputKind;
use openpalm_eval::dataset::shared_data_dir;

#[test]
fn two_stage_top1_equals_exhaustive_on_every_tongji_probe() {
    let Some(data) = shared_data_dir() else {
        return;
    };
    let (samples, failed) = real::load(&data.join("tongji-roi-dev"), InputKind::Roi);
    assert!(
        samples.len() > 300,
        "{} templates, {failed} failed",
        samples.len()
    );
    let f = real::measure(&samples, 3000, real::Padding::Scrambled, 5, 7);
    eprintln!("{f:?}");
    assert!(f.probes > 200);
    assert_eq!(f.top1_differs, 0, "{f:?}");
}
