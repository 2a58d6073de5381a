//! Cost of the generator's stages for one ROI: identity (texture), render, PNG encoding.

use criterion::{criterion_group, criterion_main, Criterion};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let g = Generator::new(Kind::Roi, 7, Difficulty::realistic()).expect("valid difficulty");
    c.bench_function("roi identity", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(g.identity_for(i, &[Band::Visible]))
        })
    });
    let p = g.identity(1);
    c.bench_function("roi render visible", |b| {
        let mut k = 0usize;
        b.iter(|| {
            k += 1;
            let s = g.sample(1, k, 8);
            black_box(g.render(&p, &s, Band::Visible))
        })
    });
    let img = g.render(&p, &g.sample(1, 0, 8), Band::Visible);
    c.bench_function("roi png encode", |b| {
        b.iter(|| black_box(img.encode_png().expect("encode")))
    });
    let h = Generator::new(Kind::Hand, 7, Difficulty::realistic()).expect("valid difficulty");
    let hp = h.identity(1);
    c.bench_function("hand render visible", |b| {
        let mut k = 0usize;
        b.iter(|| {
            k += 1;
            let s = h.sample(1, k, 8);
            black_box(h.render(&hp, &s, Band::Visible))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(300));
    targets = bench
}
criterion_main!(benches);
