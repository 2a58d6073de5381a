use openpalm_gallery::{expected_fpir, Candidate, Decision, DecisionPolicy, Hand, Key};

fn c(person: u64, score: f32) -> Candidate {
    Candidate {
        person,
        score,
        key: Key::new(person, Hand::Left, 0),
    }
}

#[test]
fn decisions_follow_threshold_and_margin() {
    let p = DecisionPolicy {
        threshold: 0.4,
        margin: 0.05,
    };
    assert_eq!(p.decide(&[]), Decision::NoMatch { best: None });
    assert_eq!(
        p.decide(&[c(1, 0.39)]),
        Decision::NoMatch {
            best: Some(c(1, 0.39))
        }
    );
    assert_eq!(
        p.decide(&[c(1, 0.5)]),
        Decision::Match {
            best: c(1, 0.5),
            margin: 0.5
        }
    );
    assert_eq!(
        p.decide(&[c(1, 0.5), c(2, 0.48)]),
        Decision::Ambiguous {
            first: c(1, 0.5),
            second: c(2, 0.48)
        }
    );
    match p.decide(&[c(1, 0.6), c(2, 0.3)]) {
        Decision::Match { best, margin } => {
            assert_eq!(best.person, 1);
            assert!((margin - 0.3).abs() < 1e-6);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn fpir_grows_with_the_gallery_as_one_minus_the_survival_product() {
    assert_eq!(expected_fpir(1e-4, 0), 0.0);
    assert!((expected_fpir(1e-4, 1) - 1e-4).abs() < 1e-12);
    let want = 1.0 - (1.0f64 - 1e-6).powi(1_000_000);
    assert!((expected_fpir(1e-6, 1_000_000) - want).abs() < 1e-9);
    assert!((expected_fpir(1e-6, 1_000_000) - 0.632).abs() < 1e-3);
    assert!(expected_fpir(2.0, 10).is_nan());
    assert_eq!(expected_fpir(1.0, 3), 1.0);
}
