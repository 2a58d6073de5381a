//! The template stream: the real extraction, in order, independent of chunking and threads,
//! on both render paths; and the fast path's score distributions stay close to the full
//! render's on the same identities and captures.

use openpalm_engine::{Engine, InputKind, Template};
use openpalm_synth::fast::Scratch;
use openpalm_synth::{
    template_stream, Band, Difficulty, Generator, Kind, RenderPath, SynthError, TemplateMaker,
};
use rayon::prelude::*;

#[test]
fn stream_matches_direct_extraction_and_chunking() {
    let engine = Engine::default();
    let g = Generator::new(Kind::Roi, 9, Difficulty::realistic()).unwrap();
    for path in [RenderPath::Fast, RenderPath::Full] {
        let stream = |chunk| -> Vec<_> {
            template_stream(&engine, &g, 10)
                .unwrap()
                .with_render(path)
                .with_chunk(chunk)
                .collect()
        };
        let a = stream(3);
        let b = stream(64);
        assert_eq!(a.len(), 10);
        assert_eq!(a, b, "{path:?}");
        let direct = match path {
            RenderPath::Full => {
                let p = g.identity_for(4, &[Band::Visible]);
                let img = g.render(&p, &g.sample(4, 0, 1), Band::Visible);
                engine
                    .extract_capture(&img.to_capture(), InputKind::Roi)
                    .map(|e| e.template)
            }
            RenderPath::Fast => {
                let maker = TemplateMaker::new(&engine, &g, path).unwrap();
                maker.template(4, 0, 1, &mut Scratch::default())
            }
        };
        assert_eq!(a[4], direct, "{path:?}");
        // Different identities give different templates.
        let t: Vec<_> = a.into_iter().map(|t| t.unwrap()).collect();
        assert!(t.windows(2).all(|w| w[0].code != w[1].code));
    }
    assert!(matches!(
        template_stream(&engine, &g, 0),
        Err(SynthError::ZeroIdentities)
    ));
}

/// The fast renderer is a pure function of (seed, identity, capture): reusing a scratch
/// buffer across identities and captures changes nothing, and another seed changes the
/// templates.
#[test]
fn fast_path_is_deterministic() {
    let engine = Engine::default();
    let g = Generator::new(Kind::Roi, 5, Difficulty::realistic()).unwrap();
    let maker = TemplateMaker::new(&engine, &g, RenderPath::Fast).unwrap();
    let mut shared = Scratch::default();
    let reused: Vec<_> = (0..6)
        .flat_map(|i| (0..2).map(move |k| (i, k)))
        .map(|(i, k)| maker.template(i, k, 2, &mut shared).unwrap())
        .collect();
    let fresh: Vec<_> = (0..6)
        .flat_map(|i| (0..2).map(move |k| (i, k)))
        .map(|(i, k)| maker.template(i, k, 2, &mut Scratch::default()).unwrap())
        .collect();
    assert_eq!(reused, fresh);
    let other = Generator::new(Kind::Roi, 6, Difficulty::realistic()).unwrap();
    let other = TemplateMaker::new(&engine, &other, RenderPath::Fast).unwrap();
    assert_ne!(other.template(0, 0, 2, &mut shared).unwrap().code, reused[0].code);
    // Two captures of one palm differ, but score far above impostors.
    assert_ne!(reused[0].code, reused[1].code);
    assert!(engine.score(&reused[0], &reused[1]) > 0.4);
}

fn mean_sd(v: &[f32]) -> (f32, f32) {
    let n = v.len() as f32;
    let m = v.iter().sum::<f32>() / n;
    (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / n).sqrt())
}

/// Mean and sd of all impostor scores among enrolment captures, and of genuine scores
/// (capture 0 against capture 1 of each identity).
fn distributions(engine: &Engine, maker: &TemplateMaker, n: u64) -> ((f32, f32), (f32, f32)) {
    let pairs: Vec<(Template, Template)> = (0..n)
        .into_par_iter()
        .map_init(Scratch::default, |s, i| {
            (
                maker.template(i, 0, 2, s).unwrap(),
                maker.template(i, 1, 2, s).unwrap(),
            )
        })
        .collect();
    let mut impostor = Vec::new();
    for i in 0..pairs.len() {
        for j in i + 1..pairs.len() {
            impostor.push(engine.score(&pairs[i].0, &pairs[j].0));
        }
    }
    let genuine: Vec<f32> = pairs.iter().map(|(a, b)| engine.score(a, b)).collect();
    (mean_sd(&impostor), mean_sd(&genuine))
}

/// The fast path stands for the full render statistically. Measured with 150 identities
/// (seeds 1-6, realistic): impostor mean +0.0..+0.6%, sd +1.5..+2.1%; genuine mean
/// +0.4..+0.7%, sd -6.6..+0.7%. Bounds leave margin: 3% on means, 6% on the impostor sd,
/// 15% on the genuine sd (150 genuine pairs only).
#[test]
fn fast_path_scores_match_full_render() {
    let engine = Engine::default();
    let g = Generator::new(Kind::Roi, 3, Difficulty::realistic()).unwrap();
    let fast = TemplateMaker::new(&engine, &g, RenderPath::Fast).unwrap();
    let full = TemplateMaker::new(&engine, &g, RenderPath::Full).unwrap();
    let (fi, fg) = distributions(&engine, &fast, 150);
    let (ri, rg) = distributions(&engine, &full, 150);
    let rel = |a: f32, b: f32| (a - b).abs() / b;
    let msg = format!("fast impostor {fi:?} genuine {fg:?}; full impostor {ri:?} genuine {rg:?}");
    assert!(rel(fi.0, ri.0) < 0.03, "impostor mean: {msg}");
    assert!(rel(fi.1, ri.1) < 0.06, "impostor sd: {msg}");
    assert!(rel(fg.0, rg.0) < 0.03, "genuine mean: {msg}");
    assert!(rel(fg.1, rg.1) < 0.15, "genuine sd: {msg}");
}

/// Difficulty really changes what the engine sees: easy captures of a palm agree more with
/// each other than hard ones, on both render paths. (Machinery check, not an accuracy
/// figure.)
#[test]
fn harder_captures_score_lower() {
    let engine = Engine::default();
    for path in [RenderPath::Fast, RenderPath::Full] {
        let mean_genuine = |d: Difficulty| -> f32 {
            let g = Generator::new(Kind::Roi, 3, d).unwrap();
            let maker = TemplateMaker::new(&engine, &g, path).unwrap();
            let mut scratch = Scratch::default();
            let mut sum = 0.0;
            let mut n = 0;
            for i in 0..6u64 {
                let t: Vec<_> = (0..3)
                    .map(|k| maker.template(i, k, 3, &mut scratch).unwrap())
                    .collect();
                for a in 0..3 {
                    for b in a + 1..3 {
                        sum += engine.score(&t[a], &t[b]);
                        n += 1;
                    }
                }
            }
            sum / n as f32
        };
        let (easy, hard) = (mean_genuine(Difficulty::easy()), mean_genuine(Difficulty::hard()));
        assert!(easy > hard + 0.05, "{path:?}: easy {easy} hard {hard}");
    }
}
