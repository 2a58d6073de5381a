//! The real evaluation on `../shared/data/tongji-roi-dev`: checks the output contract
//! (files, headers, pair counts, metric ranges), not accuracy.

use openpalm_engine::{Engine, InputKind};
use openpalm_eval::dataset::{shared_data_dir, Dataset};
use openpalm_eval::report::{write_all, ReportOptions};
use openpalm_eval::run::{run, RunConfig};
use std::collections::HashSet;
use std::path::Path;

fn in_unit(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}

#[test]
fn tongji_roi_dev_contract() {
    let Some(data) = shared_data_dir() else {
        return;
    };
    let dir = data.join("tongji-roi-dev");
    assert!(dir.is_dir(), "{} is missing from ../shared/data", dir.display());
    let dataset = Dataset::load(&dir, None).expect("tongji labels");
    assert_eq!(dataset.name, "tongji-roi-dev");
    let n = dataset.samples.len();
    assert!(n > 0);

    let result = run(&Engine::default(), &dataset, &RunConfig::new(InputKind::Roi));
    let out = tempfile::tempdir().unwrap();
    let (report, files) = write_all(
        out.path(),
        &result,
        &ReportOptions {
            default_threshold: 0.5,
            identification_threshold: 0.6,
            attempts: None,
        },
    )
    .expect("metrics defined on tongji");

    // Counts.
    let acquired = report.acquired;
    assert_eq!(acquired + report.failures, n);
    assert_eq!(report.images, n);
    assert_eq!(
        report.genuine_pairs + report.impostor_pairs,
        acquired * (acquired - 1) / 2
    );
    assert!(report.genuine_pairs > 0 && report.impostor_pairs > 0);

    // scores.csv: header, one row per pair, paths from the labels, genuine flag by identity.
    let identity: std::collections::HashMap<&str, &str> = dataset
        .samples
        .iter()
        .map(|s| (s.path.as_str(), s.identity.as_str()))
        .collect();
    let mut rdr = csv::Reader::from_path(&files.scores).unwrap();
    assert_eq!(
        rdr.headers().unwrap(),
        &csv::StringRecord::from(vec!["a", "b", "genuine", "score"])
    );
    let (mut rows, mut genuine) = (0usize, 0usize);
    let mut seen = HashSet::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let (a, b) = (&rec[0], &rec[1]);
        assert_ne!(a, b);
        let same = identity[a] == identity[b];
        assert_eq!(&rec[2], if same { "1" } else { "0" }, "{a} {b}");
        genuine += same as usize;
        let score: f64 = rec[3].parse().unwrap();
        assert!(in_unit(score), "score {score} out of [0, 1]");
        let key = if a < b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        };
        assert!(seen.insert(key), "pair {a} {b} listed twice");
        rows += 1;
    }
    assert_eq!(rows, acquired * (acquired - 1) / 2);
    assert_eq!(genuine, report.genuine_pairs);

    // failures.csv: header and one row per failure.
    let mut rdr = csv::Reader::from_path(&files.failures).unwrap();
    assert_eq!(
        rdr.headers().unwrap(),
        &csv::StringRecord::from(vec!["path", "reason"])
    );
    let failed: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(failed.len(), report.failures);
    for f in &failed {
        assert!(identity.contains_key(&f[0]));
        assert!(!f[1].is_empty());
    }

    // report.json: required keys and ranges.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.report).unwrap()).unwrap();
    for key in ["eer", "fta_rate", "rank1"] {
        let v = json[key].as_f64().unwrap_or_else(|| panic!("{key} missing"));
        assert!(in_unit(v), "{key} = {v}");
    }
    let mut previous = 0.0;
    for key in ["1e-2", "1e-3", "1e-4"] {
        let v = json["fnmr_at_fmr"][key].as_f64().unwrap();
        assert!(in_unit(v));
        assert!(v >= previous, "FNMR must not fall as the FMR target tightens");
        previous = v;
    }
    assert_eq!(json["genuine_pairs"].as_u64(), Some(report.genuine_pairs as u64));
    assert_eq!(
        json["impostor_pairs"].as_u64(),
        Some(report.impostor_pairs as u64)
    );
    for key in ["extract_ms_median", "match_us_median"] {
        let v = json[key].as_f64().unwrap_or_else(|| panic!("{key} missing"));
        assert!(v > 0.0 && v.is_finite(), "{key} = {v}");
    }
    assert_eq!(json["dataset"], "tongji-roi-dev");
    assert_eq!(json["input"], "roi");

    let svg = std::fs::read_to_string(&files.det).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("tongji-roi-dev"));
    eprintln!(
        "tongji-roi-dev: EER {:.4}, FNMR@1e-3 {:.4}, FTA {:.4}, rank-1 {:?}",
        report.eer, report.fnmr_at_fmr["1e-3"], report.fta_rate, report.rank1
    );
}

#[test]
fn labels_option_finds_band_files_inside_the_dataset() {
    let Some(data) = shared_data_dir() else {
        return;
    };
    let dir = data.join("polyu-ms-dev");
    assert!(dir.is_dir(), "{} is missing from ../shared/data", dir.display());
    for (labels, band) in [
        ("labels_G.csv", "Multispectral_G/"),
        ("labels_I_nir.csv", "Multispectral_I/"),
    ] {
        let ds = Dataset::load(&dir, Some(Path::new(labels))).unwrap();
        assert_eq!(ds.labels_path, dir.join(labels));
        assert!(ds.samples.iter().all(|s| s.path.starts_with(band)));
        assert!(ds.samples.iter().all(|s| ds.image_path(s).is_file()));
    }
}
