//! Report and writer tests on a hand-built result.

use crate::report::{write_all, Report, ReportOptions};
use crate::run::{Acquired, EvalResult, Failure, Pair, Timing};
use openpalm_engine::InputKind;

/// Five acquired samples (A: a1 a2 a3, B: b1 b2) and one failure.
fn result() -> EvalResult {
    let acquired: Vec<Acquired> = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("b2", "B")]
        .iter()
        .map(|(p, i)| Acquired {
            path: format!("img/{p}.png"),
            identity: i.to_string(),
            session: None,
            quality: 0.8,
        })
        .collect();
    // Row-major upper triangle: (0,1) (0,2) (0,3) (0,4) (1,2) (1,3) (1,4) (2,3) (2,4) (3,4).
    let scores = [0.9, 0.8, 0.3, 0.2, 0.7, 0.4, 0.1, 0.6, 0.5, 0.75];
    let mut pairs = Vec::new();
    let mut k = 0;
    for a in 0..5u32 {
        for b in a + 1..5 {
            pairs.push(Pair {
                a,
                b,
                genuine: acquired[a as usize].identity == acquired[b as usize].identity,
                score: scores[k],
            });
            k += 1;
        }
    }
    EvalResult {
        dataset: "toy".into(),
        labels: "toy/labels.csv".into(),
        input: InputKind::Roi,
        images: 6,
        identities: 3,
        acquired,
        failures: vec![Failure {
            path: "img/c1.png".into(),
            reason: "too_dark".into(),
            message: "too dark".into(),
        }],
        pairs,
        timing: Timing::default(),
        algorithm: 1,
    }
}

#[test]
fn pair_score_indexes_the_triangle() {
    let r = result();
    assert_eq!(r.pair_score(0, 1), 0.9);
    assert_eq!(r.pair_score(1, 0), 0.9);
    assert_eq!(r.pair_score(2, 4), 0.5);
    assert_eq!(r.pair_score(3, 4), 0.75);
    assert_eq!(r.pair_score(1, 3), 0.4);
}

#[test]
fn report_by_hand() {
    let r = result();
    let rep = Report::build(
        &r,
        &ReportOptions {
            default_threshold: 0.65,
            identification_threshold: 0.6,
            attempts: None,
        },
        None,
    )
    .unwrap();
    // Genuine: (0,1) .9 (0,2) .8 (1,2) .7 (3,4) .75. Impostor: .3 .2 .4 .1 .6 .5.
    assert_eq!((rep.genuine_pairs, rep.impostor_pairs), (4, 6));
    assert_eq!(rep.genuine_pairs + rep.impostor_pairs, 10);
    // Perfectly separated (min genuine .7 > max impostor .6): EER 0 at t = 0.7.
    assert_eq!(rep.eer, 0.0);
    assert_eq!(rep.eer_threshold, 0.7);
    // FMR <= 1e-2 with 6 impostors allows none: t = 0.7, FNMR 0.
    assert_eq!(rep.fnmr_at_fmr["1e-2"], 0.0);
    assert_eq!(rep.threshold_at_fmr["1e-4"], 0.7);
    assert_eq!(rep.fnmr_at_fmr.len(), 6);
    // t = 0.65: no impostor >= 0.65, no genuine below.
    assert_eq!((rep.fmr_at_threshold, rep.fnmr_at_threshold), (0.0, 0.0));
    assert!((rep.fta_rate - 1.0 / 6.0).abs() < 1e-12);
    assert_eq!(rep.failure_reasons["too_dark"], 1);
    // Rank-1: A enrols a1 a2, B enrols b1 b2; the only probe is a3:
    // A = max(.8, .7) = .8 > B = max(.6, .5) -> correct.
    assert_eq!(rep.rank1, Some(1.0));
    let d = rep.rank1_detail.as_ref().unwrap();
    assert_eq!((d.enrolled_identities, d.probes, d.correct), (2, 1, 1));
    // Genuine mean (.9 + .8 + .7 + .75) / 4 = 0.7875.
    assert!((rep.genuine_scores.mean - 0.7875).abs() < 1e-6);
    assert!((rep.impostor_scores.mean - 0.35).abs() < 1e-6);
}

#[test]
fn report_without_impostors_is_a_typed_error() {
    let mut r = result();
    r.pairs.retain(|p| p.genuine);
    let err = Report::build(
        &r,
        &ReportOptions {
            default_threshold: 0.5,
            identification_threshold: 0.6,
            attempts: None,
        },
        None,
    )
    .unwrap_err();
    assert_eq!(err, crate::metrics::MetricsError::NoImpostor);
}

#[test]
fn files_are_written_with_the_contract_headers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (report, files) = write_all(
        &out,
        &result(),
        &ReportOptions {
            default_threshold: 0.5,
            identification_threshold: 0.6,
            attempts: None,
        },
    )
    .unwrap();
    let scores = std::fs::read_to_string(&files.scores).unwrap();
    let lines: Vec<&str> = scores.lines().collect();
    assert_eq!(lines[0], "a,b,genuine,score");
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[1], "img/a1.png,img/a2.png,1,0.9");
    assert_eq!(lines[3], "img/a1.png,img/b1.png,0,0.3");
    let failures = std::fs::read_to_string(&files.failures).unwrap();
    assert_eq!(failures, "path,reason\nimg/c1.png,too_dark\n");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.report).unwrap()).unwrap();
    for key in [
        "eer",
        "fnmr_at_fmr",
        "fta_rate",
        "rank1",
        "genuine_pairs",
        "impostor_pairs",
        "extract_ms_median",
        "match_us_median",
        "match_us_median_from_templates",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(json["fnmr_at_fmr"]["1e-3"], 0.0);
    assert_eq!(json["genuine_pairs"], 4);
    assert_eq!(report.impostor_pairs, 6);
    let svg = std::fs::read_to_string(&files.det).unwrap();
    assert!(svg.contains("DET: toy (roi), EER 0.00%"));
}

#[test]
fn attempts_follow_the_protocol_and_are_written() {
    use crate::attempt::{form, AttemptConfig, AttemptError};
    let r = result();
    // No sessions: enrol the first sample of each identity, attempts of one from the rest.
    let p = form(&r, AttemptConfig { enrol: 1, attempt: 1 }).unwrap();
    assert_eq!(
        p.enrolled,
        vec![("A".to_string(), vec![0]), ("B".to_string(), vec![3])]
    );
    let frames: Vec<(&str, Vec<usize>)> = p
        .attempts
        .iter()
        .map(|a| (a.identity.as_str(), a.frames.clone()))
        .collect();
    assert_eq!(frames, vec![("A", vec![1]), ("A", vec![2]), ("B", vec![4])]);
    // Groups of two: only A has two samples left; its remainder is dropped.
    let p2 = form(&r, AttemptConfig { enrol: 1, attempt: 2 }).unwrap();
    assert_eq!(p2.attempts.len(), 1);
    assert!(matches!(
        form(&r, AttemptConfig { enrol: 2, attempt: 2 }),
        Err(AttemptError::NoAttempts { .. })
    ));
    assert!(matches!(
        form(&r, AttemptConfig { enrol: 0, attempt: 2 }),
        Err(AttemptError::ZeroSize { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let (report, files) = write_all(
        dir.path(),
        &r,
        &ReportOptions {
            default_threshold: 0.5,
            identification_threshold: 0.6,
            attempts: Some((AttemptConfig { enrol: 1, attempt: 1 }, 0.55)),
        },
    )
    .unwrap();
    let csv = std::fs::read_to_string(files.attempts.unwrap()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "attempt,probe_identity,enrolled_identity,genuine,score,raw_score"
    );
    // Cohorts of one person are too small to normalise with: score = raw = the pair's score.
    let row = |i: usize| -> (String, f32, f32) {
        let f: Vec<&str> = lines[i].split(',').collect();
        (f[..4].join(","), f[4].parse().unwrap(), f[5].parse().unwrap())
    };
    for (i, head, want) in [(1, "0,A,A,1", 0.9f32), (2, "0,A,B,0", 0.4)] {
        let (h, score, raw) = row(i);
        assert_eq!(h, head);
        assert!(
            (score - want).abs() < 1e-6 && (raw - want).abs() < 1e-6,
            "{}",
            lines[i]
        );
    }
    assert_eq!(lines.len(), 1 + 3 * 2);
    let a = report.attempts.unwrap();
    assert_eq!((a.attempts, a.genuine_attempts, a.impostor_attempts), (3, 3, 3));
    assert_eq!(a.threshold, 0.55);
    // Genuine 0.9, 0.8, 0.75 (b2 vs b1); impostors 0.4, 0.6, 0.5: FMR at 0.55 is 1/3.
    assert!((a.fmr_at_threshold - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(a.fnmr_at_threshold, 0.0);
    // Three impostor attempts cannot support a tail fit: said, not invented.
    assert!(a.tail.is_none() && a.tail_error.is_some() && a.fpir_expected.is_none());
    assert_eq!(report.fpir_basis, "attempt");
}

#[test]
fn sessions_decide_enrolment_and_attempts() {
    use crate::attempt::{form, AttemptConfig};
    let mut r = result();
    // A: a1 (session 2), a2 (session 10), a3 (session 2); B: b1 (2), b2 (10).
    for (acq, s) in r.acquired.iter_mut().zip(["2", "10", "2", "2", "10"]) {
        acq.session = Some(s.to_string());
    }
    let p = form(&r, AttemptConfig { enrol: 5, attempt: 1 }).unwrap();
    // Session 2 comes before 10 (numeric order); all of it is enrolled, K being larger.
    assert_eq!(p.enrolled[0], ("A".to_string(), vec![0, 2]));
    let frames: Vec<Vec<usize>> = p.attempts.iter().map(|a| a.frames.clone()).collect();
    assert_eq!(frames, vec![vec![1], vec![4]]);
}
