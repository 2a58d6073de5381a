//! Data set writing: layout, labels, determinism, typed errors.

use openpalm_synth::{write_dataset, Band, DatasetSpec, Difficulty, Generator, Kind, SynthError};
use std::collections::BTreeMap;
use std::path::Path;

fn spec(kind: Kind, identities: usize, samples: usize, bands: Vec<Band>) -> DatasetSpec {
    let mut generator = Generator::new(kind, 42, Difficulty::realistic()).unwrap();
    generator.sessions = 2.min(samples as u32);
    DatasetSpec {
        generator,
        identities,
        samples,
        bands,
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn two_runs_are_byte_identical_whatever_the_thread_count() {
    let s = spec(Kind::Roi, 3, 3, vec![Band::Visible, Band::Nir]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_dataset(&s, a.path(), false).unwrap();
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| write_dataset(&s, b.path(), false).unwrap());
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(
        fa.len(),
        3 * 3 * 2 + 3 + 1,
        "images, three labels files, manifest"
    );
    assert_eq!(fa, fb);
    // A different seed gives different images.
    let mut s2 = s.clone();
    s2.generator.seed = 43;
    let c = tempfile::tempdir().unwrap();
    write_dataset(&s2, c.path(), false).unwrap();
    assert_ne!(fa["visible/0001_01.png"], files(c.path())["visible/0001_01.png"]);
}

#[test]
fn hand_runs_are_byte_identical() {
    let s = spec(Kind::Hand, 1, 1, vec![Band::Visible]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_dataset(&s, a.path(), false).unwrap();
    write_dataset(&s, b.path(), false).unwrap();
    assert_eq!(files(a.path()), files(b.path()));
    let img = image::open(a.path().join("images/0001_01.png")).unwrap();
    assert_eq!((img.width(), img.height()), (800, 600));
}

#[test]
fn layout_and_labels_match_the_real_sets() {
    let s = spec(Kind::Roi, 2, 4, vec![Band::Visible, Band::Nir]);
    let dir = tempfile::tempdir().unwrap();
    let summary = write_dataset(&s, dir.path(), false).unwrap();
    assert_eq!(summary.images, 16);
    let read = |name: &str| -> Vec<Vec<String>> {
        let mut r = csv::Reader::from_path(dir.path().join(name)).unwrap();
        assert_eq!(r.headers().unwrap(), vec!["path", "identity", "session"]);
        r.records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect()
    };
    let all = read("labels.csv");
    let vis = read("labels_visible.csv");
    let nir = read("labels_nir.csv");
    assert_eq!((all.len(), vis.len(), nir.len()), (16, 8, 8));
    assert_eq!(vis[0], vec!["visible/0001_01.png", "synth0001", "1"]);
    assert_eq!(vis[3], vec!["visible/0001_04.png", "synth0001", "2"]);
    assert_eq!(nir[4], vec!["nir/0002_01.png", "synth0002", "1"]);
    for row in &all {
        let img = image::open(dir.path().join(&row[0])).unwrap();
        assert_eq!((img.width(), img.height()), (150, 150));
        let grey = row[0].starts_with("nir/");
        assert_eq!(img.color().has_color(), !grey, "{}", row[0]);
    }
    // The engine reads what was written.
    let engine = openpalm_engine::Engine::default();
    let bytes = std::fs::read(dir.path().join(&vis[0][0])).unwrap();
    assert!(engine.extract(&bytes, openpalm_engine::InputKind::Roi).is_ok());
    let manifest = std::fs::read_to_string(dir.path().join("MANIFEST.md")).unwrap();
    assert!(manifest.contains("SYNTHETIC") && manifest.contains("seed: 42"));

    // One band: images/ and a single labels.csv.
    let one = spec(Kind::Roi, 1, 2, vec![Band::Visible]);
    let d1 = tempfile::tempdir().unwrap();
    let sum = write_dataset(&one, d1.path(), false).unwrap();
    assert_eq!(sum.labels.len(), 1);
    assert!(d1.path().join("images/0001_02.png").exists());
}

#[test]
fn bad_arguments_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = write_dataset(&spec(Kind::Roi, 0, 2, vec![Band::Visible]), dir.path(), false);
    assert!(matches!(e, Err(SynthError::ZeroIdentities)));
    let mut s = spec(Kind::Roi, 2, 1, vec![Band::Visible]);
    s.samples = 0;
    s.generator.sessions = 1;
    assert!(matches!(
        write_dataset(&s, dir.path(), false),
        Err(SynthError::ZeroSamples)
    ));
    let e = write_dataset(&spec(Kind::Roi, 1, 1, vec![]), dir.path(), false);
    assert!(matches!(e, Err(SynthError::NoBands)));
    let e = write_dataset(
        &spec(Kind::Roi, 1, 1, vec![Band::Nir, Band::Nir]),
        dir.path(),
        false,
    );
    assert!(matches!(e, Err(SynthError::DuplicateBand("nir"))));
    let mut s = spec(Kind::Roi, 1, 2, vec![Band::Visible]);
    s.generator.sessions = 3;
    assert!(matches!(
        write_dataset(&s, dir.path(), false),
        Err(SynthError::BadSessions { .. })
    ));
    // A file where the folder should be.
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let e = write_dataset(&spec(Kind::Roi, 1, 1, vec![Band::Visible]), &file, false);
    assert!(matches!(e, Err(SynthError::Io { .. })), "{e:?}");
    // Knobs out of range.
    let mut d = Difficulty::realistic();
    d.noise = -1.0;
    assert!(matches!(
        Generator::new(Kind::Roi, 1, d),
        Err(SynthError::Difficulty(_))
    ));
    let mut d = Difficulty::realistic();
    d.backgrounds.clear();
    assert!(matches!(
        Generator::new(Kind::Hand, 1, d),
        Err(SynthError::Difficulty(_))
    ));
    assert!("nonsense".parse::<Difficulty>().is_err());
    assert_eq!(
        "too_dark".parse::<Difficulty>().unwrap(),
        Difficulty::provoking(openpalm_engine::AcquireFailure::TooDark)
    );
}
