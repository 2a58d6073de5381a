//! Speed of the engine on one core: ROI to template, whole hand to template, one 1:1 match.
//! Uses the real development images when ../shared/data is present (prints which), else a
//! synthetic stand-in of the same size.

use criterion::{criterion_group, criterion_main, Criterion};
use openpalm_engine::{decode, Capture, Engine, InputKind};
use std::path::PathBuf;

fn shared(path: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(path);
    std::fs::read(p).ok()
}

/// A stand-in capture: skin-toned noise with dark curved lines.
fn synthetic(w: usize, h: usize) -> Capture {
    let mut rgb = Vec::with_capacity(w * h * 3);
    let mut s = 0x9e3779b97f4a7c15u64;
    for y in 0..h {
        for x in 0..w {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let line = (((x as f32 * 0.07).sin() * 20.0 + y as f32 * 0.5) as usize).is_multiple_of(23);
            let n = (s % 20) as u8;
            let base = if line { 110 } else { 170 };
            rgb.extend_from_slice(&[base + n, base - 40 + n, base - 60 + n]);
        }
    }
    Capture::from_rgb8(w, h, &rgb)
}

fn benches(c: &mut Criterion) {
    let engine = Engine::default();
    let roi = match shared("tongji-roi-dev/images/0001_0001.bmp") {
        Some(b) => decode(&b).expect("tongji image decodes"),
        None => {
            eprintln!("../shared/data missing: benchmarking a synthetic 150x150 ROI");
            synthetic(150, 150)
        }
    };
    c.bench_function("roi_to_template_150px", |b| {
        b.iter(|| {
            engine
                .extract_capture(&roi, InputKind::Roi)
                .expect("roi extracts")
        })
    });
    if let Some(bytes) = shared("coep-hands-dev/images/001_1.jpg") {
        let hand = decode(&bytes).expect("coep image decodes");
        c.bench_function("hand_to_template_800x600", |b| {
            b.iter(|| {
                engine
                    .extract_capture(&hand, InputKind::Hand)
                    .expect("hand extracts")
            })
        });
        c.bench_function("decode_jpeg_800x600", |b| {
            b.iter(|| decode(&bytes).expect("decodes"))
        });
    } else {
        eprintln!("../shared/data missing: no whole-hand bench (needs a real hand photo)");
    }
    let a = engine
        .extract_capture(&roi, InputKind::Roi)
        .expect("roi extracts")
        .template;
    let other = match shared("tongji-roi-dev/images/0002_0001.bmp") {
        Some(b) => decode(&b).expect("decodes"),
        None => synthetic(150, 150),
    };
    let b2 = engine
        .extract_capture(&other, InputKind::Roi)
        .expect("roi extracts")
        .template;
    c.bench_function("match_1to1_with_alignment_search", |b| {
        b.iter(|| engine.score(&a, &b2))
    });
    // The same search with both sides packed once, as a gallery holds them.
    let probe = openpalm_engine::engine::probe_codes(&a).expect("grid fits");
    let reference = openpalm_engine::matcher::PackedCode::new(&b2.code).expect("grid fits");
    let m = engine.config().matching.clone();
    c.bench_function("match_1to1_prepacked", |b| {
        b.iter(|| openpalm_engine::matcher::search(&probe, &reference, &m))
    });
    // Per reference in a 1:N search: the probe prepared once, the reference read in place.
    let prepared = openpalm_engine::matcher::PreparedProbe::new(probe.clone(), &m).expect("probe prepares");
    c.bench_function("match_per_reference_prepared_probe", |b| {
        b.iter(|| openpalm_engine::matcher::search_prepared(&prepared, reference.view()))
    });
    c.bench_function("prepare_probe", |b| {
        b.iter(|| openpalm_engine::matcher::PreparedProbe::new(probe.clone(), &m).expect("probe prepares"))
    });
    eprintln!("matcher kernel: {}", openpalm_engine::matcher::kernel_name());
}

criterion_group! {
    name = engine;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(engine);
