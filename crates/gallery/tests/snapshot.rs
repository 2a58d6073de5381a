//! Snapshots: reopening loads the snapshot and replays only the log after it, restoring
//! exactly what was acknowledged; a crash at any step of taking a snapshot loses nothing;
//! any damage to a snapshot is refused, never loaded.

use openpalm_engine::matcher::PackedCode;
use openpalm_engine::MatchConfig;
use openpalm_gallery::synthetic::{genuine_probe, random_template};
use openpalm_gallery::{
    GalleryError, Hand, Key, Layout, RecoveryReport, SnapshotPolicy, SnapshotStep, Store,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const LAYOUT: Layout = Layout { grid: 8, planes: 3 };

fn matching() -> MatchConfig {
    MatchConfig {
        max_shift: 1,
        reference_bits: 100,
        ..Default::default()
    }
}

fn open(p: &Path) -> Result<(Store, RecoveryReport), GalleryError> {
    Store::open(p, LAYOUT, matching())
}

type Contents = Vec<(Key, PackedCode)>;

fn contents(s: &Store) -> Contents {
    s.gallery()
        .keys()
        .into_iter()
        .map(|k| (k, s.gallery().get(&k).unwrap()))
        .collect()
}

/// A store with some adds, a replace and a remove.
fn populated(p: &Path, rng: &mut ChaCha8Rng, n: u64) -> Store {
    let (mut s, _) = open(p).unwrap();
    for i in 0..n {
        let hand = if i % 3 == 0 { Hand::Left } else { Hand::Right };
        s.add(
            Key::new(i / 2, hand, (i % 2) as u32),
            &random_template(rng, &LAYOUT),
        )
        .unwrap();
    }
    s.replace(Key::new(0, Hand::Left, 0), &random_template(rng, &LAYOUT))
        .unwrap();
    s.remove(&Key::new(1, Hand::Right, 0)).unwrap();
    s
}

#[test]
fn reopen_loads_the_snapshot_and_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = populated(&p, &mut rng, 20);
    let logged = s.log_bytes();
    s.snapshot().unwrap();
    assert_eq!(s.generation(), 1);
    assert!(s.log_bytes() < logged, "the log starts afresh after a snapshot");
    assert_eq!(
        s.snapshot_bytes(),
        std::fs::metadata(s.snapshot_path()).unwrap().len()
    );
    let at_snapshot = s.gallery().len() as u64;
    s.add(Key::new(100, Hand::Left, 0), &random_template(&mut rng, &LAYOUT))
        .unwrap();
    s.remove(&Key::new(2, Hand::Right, 0)).unwrap();
    s.replace(Key::new(3, Hand::Right, 1), &random_template(&mut rng, &LAYOUT))
        .unwrap();
    let want = contents(&s);
    drop(s);
    let (s, r) = open(&p).unwrap();
    assert_eq!(r.snapshot_templates, at_snapshot);
    assert_eq!(
        (r.records, r.generation, r.truncated_bytes, r.discarded_log_bytes),
        (3, 1, 0, 0)
    );
    assert_eq!(contents(&s), want);
    // A second snapshot, nothing logged after it.
    let mut s = s;
    s.snapshot().unwrap();
    drop(s);
    let (s, r) = open(&p).unwrap();
    assert_eq!((r.records, r.generation), (0, 2));
    assert_eq!(contents(&s), want);
}

#[test]
fn identify_is_the_same_after_reopening_from_a_snapshot() {
    // More than one storage chunk (4096 slots), with holes left by removals.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (mut s, _) = open(&p).unwrap();
    let templates: Vec<_> = (0..6000u64)
        .map(|i| {
            (
                Key::new(i / 3, Hand::Right, (i % 3) as u32),
                random_template(&mut rng, &LAYOUT),
            )
        })
        .collect();
    for batch in templates.chunks(1000) {
        s.add_batch(batch).unwrap();
    }
    for i in (0..6000u64).step_by(7) {
        s.remove(&Key::new(i / 3, Hand::Right, (i % 3) as u32)).unwrap();
    }
    s.snapshot().unwrap();
    let probes: Vec<_> = (0..20)
        .map(|_| {
            let i = rng.gen_range(0..templates.len());
            genuine_probe(&mut rng, &templates[i].1)
        })
        .collect();
    let before: Vec<_> = probes
        .iter()
        .map(|q| {
            (
                s.gallery().identify(q, 5).unwrap(),
                s.gallery().identify_exact(q, 5).unwrap(),
            )
        })
        .collect();
    let want = contents(&s);
    drop(s);
    let (s, r) = open(&p).unwrap();
    assert_eq!(r.snapshot_templates, want.len() as u64);
    assert_eq!(contents(&s), want);
    let after: Vec<_> = probes
        .iter()
        .map(|q| {
            (
                s.gallery().identify(q, 5).unwrap(),
                s.gallery().identify_exact(q, 5).unwrap(),
            )
        })
        .collect();
    for (b, a) in before.iter().zip(&after) {
        // Exact search is fully determined; the two-stage list's scores are exact and its
        // first stage reads the snapshot's stored sketches.
        assert_eq!(b.1, a.1);
        assert_eq!(b.0.first().map(|c| c.person), a.0.first().map(|c| c.person));
    }
}

#[test]
fn a_crash_at_any_step_of_a_snapshot_loses_nothing() {
    for step in [
        SnapshotStep::TempWritten,
        SnapshotStep::Published,
        SnapshotStep::NextLogWritten,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.log");
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut s = populated(&p, &mut rng, 12);
        // One complete snapshot first, so the interrupted one replaces an older one.
        s.snapshot().unwrap();
        s.add(Key::new(50, Hand::Left, 0), &random_template(&mut rng, &LAYOUT))
            .unwrap();
        let want = contents(&s);
        s.snapshot_stopping_after(step).unwrap();
        drop(s); // the "crash"
        let (mut s, r) = open(&p).unwrap();
        assert_eq!(contents(&s), want, "{step:?}");
        assert!(!dir.path().join("g.log.snap.tmp").exists(), "{step:?}");
        assert!(!dir.path().join("g.log.next").exists(), "{step:?}");
        match step {
            SnapshotStep::TempWritten => {
                assert_eq!((r.generation, r.records, r.discarded_log_bytes), (1, 1, 0));
            }
            _ => {
                // The new snapshot holds the old log whole: the log is replaced, not replayed.
                assert_eq!((r.generation, r.records), (2, 0), "{step:?}");
                assert!(r.discarded_log_bytes > 0, "{step:?}");
            }
        }
        // And the store goes on.
        s.add(Key::new(51, Hand::Left, 0), &random_template(&mut rng, &LAYOUT))
            .unwrap();
        let want = contents(&s);
        drop(s);
        assert_eq!(contents(&open(&p).unwrap().0), want, "{step:?}");
    }
}

#[test]
fn a_half_written_temporary_snapshot_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let s = populated(&p, &mut rng, 10);
    let want = contents(&s);
    drop(s);
    std::fs::write(dir.path().join("g.log.snap.tmp"), b"OPGALSNP half").unwrap();
    std::fs::write(dir.path().join("g.log.next"), b"OPGAL").unwrap();
    let (s, r) = open(&p).unwrap();
    assert_eq!((r.snapshot_templates, r.generation), (0, 0));
    assert_eq!(contents(&s), want);
}

#[test]
fn a_flipped_byte_anywhere_in_a_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut s = populated(&p, &mut rng, 6);
    s.snapshot().unwrap();
    let snap = s.snapshot_path();
    drop(s);
    let bytes = std::fs::read(&snap).unwrap();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        std::fs::write(&snap, &b).unwrap();
        match open(&p) {
            Err(GalleryError::CorruptSnapshot { .. }) => {}
            Err(e) => panic!("byte {i}: unexpected error {e}"),
            Ok(_) => panic!("byte {i}: a damaged snapshot was loaded"),
        }
    }
    // Cut short or extended: refused too.
    for len in [0, 10, 64, bytes.len() - 1] {
        std::fs::write(&snap, &bytes[..len]).unwrap();
        assert!(
            matches!(open(&p), Err(GalleryError::CorruptSnapshot { .. })),
            "length {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&snap, &longer).unwrap();
    assert!(matches!(open(&p), Err(GalleryError::CorruptSnapshot { .. })));
    std::fs::write(&snap, &bytes).unwrap();
    assert!(open(&p).is_ok());
}

#[test]
fn snapshot_and_log_that_do_not_belong_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut s = populated(&p, &mut rng, 6);
    s.snapshot().unwrap();
    s.add(Key::new(70, Hand::Left, 0), &random_template(&mut rng, &LAYOUT))
        .unwrap();
    let snap = s.snapshot_path();
    drop(s);
    let snap_bytes = std::fs::read(&snap).unwrap();
    let log_bytes = std::fs::read(&p).unwrap();
    // The log follows a snapshot that is gone.
    std::fs::remove_file(&snap).unwrap();
    assert!(matches!(
        open(&p),
        Err(GalleryError::Generations {
            snapshot: None,
            log: Some(1)
        })
    ));
    // A snapshot whose log is gone.
    std::fs::write(&snap, &snap_bytes).unwrap();
    std::fs::remove_file(&p).unwrap();
    assert!(matches!(
        open(&p),
        Err(GalleryError::Generations {
            snapshot: Some(1),
            log: None
        })
    ));
    // A log two generations behind its snapshot.
    std::fs::write(&p, &log_bytes).unwrap();
    let (mut s, _) = open(&p).unwrap();
    s.snapshot().unwrap();
    s.snapshot().unwrap();
    drop(s);
    std::fs::write(&p, &log_bytes).unwrap();
    assert!(matches!(
        open(&p),
        Err(GalleryError::Generations {
            snapshot: Some(3),
            log: Some(1)
        })
    ));
}

#[test]
fn a_snapshot_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut s = populated(&p, &mut rng, 4);
    s.snapshot().unwrap();
    drop(s);
    let other = Layout { grid: 8, planes: 2 };
    assert!(matches!(
        Store::open(&p, other, MatchConfig::default()),
        Err(GalleryError::SnapshotLayoutMismatch)
    ));
}

#[test]
fn sketches_of_another_sketch_version_are_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut s, _) = open(&p).unwrap();
    let templates: Vec<_> = (0..600u64)
        .map(|i| (Key::new(i, Hand::Right, 0), random_template(&mut rng, &LAYOUT)))
        .collect();
    s.add_batch(&templates).unwrap();
    s.snapshot().unwrap();
    let probes: Vec<_> = (0..10)
        .map(|i| genuine_probe(&mut rng, &templates[i * 37].1))
        .collect();
    let before: Vec<_> = probes
        .iter()
        .map(|q| s.gallery().identify(q, 3).unwrap())
        .collect();
    let snap = s.snapshot_path();
    drop(s);
    // Same snapshot, its sketches claimed by another sketch version (header CRC made valid)
    // and zeroed (block CRCs made valid): reopening must recompute them, not use them.
    let mut b = std::fs::read(&snap).unwrap();
    b[30] = b[30].wrapping_add(1);
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    let sketch_words = u32::from_le_bytes([b[24], b[25], b[26], b[27]]) as usize;
    assert!(sketch_words > 0);
    let n = 600;
    let sk_start = 64 + n * (13 + 8 * LAYOUT.code_words());
    let sk_end = sk_start + n * 8 * sketch_words;
    b[sk_start..sk_end].fill(0);
    let crc = crc32fast::hash(&b[64..sk_end]);
    b[sk_end..sk_end + 4].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(sk_end + 4, b.len());
    std::fs::write(&snap, &b).unwrap();
    let (s, r) = open(&p).unwrap();
    assert_eq!(r.snapshot_templates, 600);
    let after: Vec<_> = probes
        .iter()
        .map(|q| s.gallery().identify(q, 3).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn the_policy_snapshots_by_itself_and_reopen_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (mut s, _) = open(&p).unwrap();
    assert_eq!(s.snapshot_policy(), Some(SnapshotPolicy::default()));
    let record = (8 + 14 + LAYOUT.raw_bytes()) as u64;
    s.set_snapshot_policy(Some(SnapshotPolicy {
        min_log_bytes: 10 * record,
        log_percent_of_snapshot: 50,
    }));
    for i in 0..200u64 {
        s.add(Key::new(i, Hand::Left, 0), &random_template(&mut rng, &LAYOUT))
            .unwrap();
        if i % 9 == 4 {
            s.remove(&Key::new(i - 2, Hand::Left, 0)).unwrap();
        }
        let limit = s.snapshot_policy().unwrap().threshold(s.snapshot_bytes());
        assert!(s.log_bytes() <= 40 + limit + record, "the log outgrew the policy");
    }
    assert!(s.generation() >= 3, "generation {}", s.generation());
    let want = contents(&s);
    drop(s);
    let (s, r) = open(&p).unwrap();
    assert_eq!(contents(&s), want);
    assert!(r.snapshot_templates > 0);
}

#[test]
fn a_version_2_log_is_read_and_replaced_at_the_first_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let s = populated(&p, &mut rng, 8);
    let want = contents(&s);
    drop(s);
    // The same records behind a version 2 header (32 bytes, no generation).
    let v3 = std::fs::read(&p).unwrap();
    let mut v2 = v3[..32].to_vec();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    v2[26..32].fill(0);
    let crc = crc32fast::hash(&v2[..28]);
    v2[28..32].copy_from_slice(&crc.to_le_bytes());
    v2.extend_from_slice(&v3[40..]);
    std::fs::write(&p, &v2).unwrap();
    let (mut s, r) = open(&p).unwrap();
    assert_eq!((r.generation, r.truncated_bytes), (0, 0));
    assert_eq!(contents(&s), want);
    s.snapshot().unwrap();
    drop(s);
    let (s, r) = open(&p).unwrap();
    assert_eq!(r.generation, 1);
    assert_eq!(contents(&s), want);
    assert_eq!(&std::fs::read(&p).unwrap()[8..12], &3u32.to_le_bytes());
}
