//! The template fast path streams the real extraction, in order, independent of chunking.

use openpalm_engine::{Engine, InputKind};
use openpalm_synth::{template_stream, Band, Difficulty, Generator, Kind, SynthError};

#[test]
fn stream_matches_direct_extraction_and_chunking() {
    let engine = Engine::default();
    let g = Generator::new(Kind::Roi, 9, Difficulty::realistic()).unwrap();
    let a: Vec<_> = template_stream(&engine, &g, 10).unwrap().with_chunk(3).collect();
    let b: Vec<_> = template_stream(&engine, &g, 10).unwrap().with_chunk(64).collect();
    assert_eq!(a.len(), 10);
    assert_eq!(a, b);
    let p = g.identity_for(4, &[Band::Visible]);
    let img = g.render(&p, &g.sample(4, 0, 1), Band::Visible);
    let direct = engine
        .extract_capture(&img.to_capture(), InputKind::Roi)
        .map(|e| e.template);
    assert_eq!(a[4], direct);
    // Different identities give different templates.
    let t: Vec<_> = a.into_iter().map(|t| t.unwrap()).collect();
    assert!(t.windows(2).all(|w| w[0].code != w[1].code));
    assert!(matches!(
        template_stream(&engine, &g, 0),
        Err(SynthError::ZeroIdentities)
    ));
}

/// Difficulty really changes what the engine sees: easy captures of a palm agree more with
/// each other than hard ones. (Machinery check, not an accuracy figure.)
#[test]
fn harder_captures_score_lower() {
    let engine = Engine::default();
    let mean_genuine = |d: Difficulty| -> f32 {
        let g = Generator::new(Kind::Roi, 3, d).unwrap();
        let mut sum = 0.0;
        let mut n = 0;
        for i in 0..6u64 {
            let p = g.identity_for(i, &[Band::Visible]);
            let t: Vec<_> = (0..3)
                .map(|k| {
                    let img = g.render(&p, &g.sample(i, k, 3), Band::Visible);
                    engine
                        .extract_capture(&img.to_capture(), InputKind::Roi)
                        .unwrap()
                        .template
                })
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
    assert!(easy > hard + 0.05, "easy {easy} hard {hard}");
}
