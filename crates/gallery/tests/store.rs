//! Durability: reopen restores what was acknowledged; torn or corrupt tails are cut and
//! reported; corruption followed by data is refused.

use openpalm_engine::matcher::PackedCode;
use openpalm_engine::MatchConfig;
use openpalm_gallery::synthetic::random_template;
use openpalm_gallery::{GalleryError, Hand, Key, Layout, Store, TailDefect};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const LAYOUT: Layout = Layout { grid: 8, planes: 3 };

fn open(p: &Path) -> Result<(Store, openpalm_gallery::RecoveryReport), GalleryError> {
    Store::open(
        p,
        LAYOUT,
        MatchConfig {
            max_shift: 1,
            reference_bits: 100,
            ..Default::default()
        },
    )
}

fn contents(s: &Store) -> Vec<(Key, PackedCode)> {
    s.gallery()
        .keys()
        .into_iter()
        .map(|k| (k, s.gallery().get(&k).unwrap()))
        .collect()
}

/// A log with 4 puts, a replace and a remove; returns the file bytes, the byte offset where
/// the last record starts and the contents before and after it.
type Contents = Vec<(Key, PackedCode)>;

fn write_log(p: &Path) -> (Vec<u8>, u64, Contents, Contents) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut s, r) = open(p).unwrap();
    assert_eq!(r.records, 0);
    for i in 0..4u64 {
        s.add(Key::new(i, Hand::Right, 0), &random_template(&mut rng, &LAYOUT))
            .unwrap();
    }
    s.replace(Key::new(1, Hand::Right, 0), &random_template(&mut rng, &LAYOUT))
        .unwrap();
    let before = contents(&s);
    let last_start = s.log_bytes();
    s.add(Key::new(7, Hand::Left, 2), &random_template(&mut rng, &LAYOUT))
        .unwrap();
    let after = contents(&s);
    drop(s);
    (std::fs::read(p).unwrap(), last_start, before, after)
}

#[test]
fn reopen_restores_exactly_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let (_, _, _, after) = write_log(&p);
    let (mut s, r) = open(&p).unwrap();
    assert_eq!((r.records, r.truncated_bytes, r.defect), (6, 0, None));
    assert_eq!(contents(&s), after);
    s.remove(&Key::new(0, Hand::Right, 0)).unwrap();
    drop(s);
    let (s, r) = open(&p).unwrap();
    assert_eq!(r.records, 7);
    assert_eq!(s.gallery().len(), after.len() - 1);
}

#[test]
fn a_torn_last_record_is_cut_and_reported_at_every_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let (bytes, last, before, _) = write_log(&p);
    for cut in last as usize..bytes.len() {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let (mut s, r) = open(&p).unwrap();
        assert_eq!(r.records, 5, "cut at {cut}");
        assert_eq!(r.truncated_bytes, (cut as u64) - last, "cut at {cut}");
        assert_eq!(r.defect.is_some(), cut as u64 > last);
        assert_eq!(contents(&s), before, "cut at {cut}");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), last);
        // The log stays appendable after the cut.
        let mut rng = ChaCha8Rng::seed_from_u64(cut as u64);
        s.add(Key::new(100, Hand::Left, 0), &random_template(&mut rng, &LAYOUT))
            .unwrap();
        drop(s);
        let (_, r) = open(&p).unwrap();
        assert_eq!((r.records, r.truncated_bytes), (6, 0));
    }
}

#[test]
fn a_flipped_byte_is_detected_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let (bytes, last, before, _) = write_log(&p);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        std::fs::write(&p, &b).unwrap();
        match open(&p) {
            Ok((s, r)) => {
                // Only damage in the last record may be cut, and it must be reported.
                assert!(i as u64 >= last, "byte {i} loaded silently");
                assert_eq!(r.records, 5);
                assert_eq!(r.truncated_bytes, bytes.len() as u64 - last);
                assert!(matches!(
                    r.defect,
                    Some(TailDefect::Checksum | TailDefect::BadLength | TailDefect::Torn)
                ));
                assert_eq!(contents(&s), before);
            }
            Err(GalleryError::CorruptLog { .. }) => assert!((i as u64) < last, "byte {i}"),
            Err(e) => panic!("byte {i}: unexpected error {e}"),
        }
    }
}

#[test]
fn a_log_of_another_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    write_log(&p);
    let other = Layout { grid: 8, planes: 2 };
    assert!(matches!(
        Store::open(&p, other, MatchConfig::default()),
        Err(GalleryError::LogLayoutMismatch)
    ));
}

#[test]
fn a_checksummed_record_with_bits_outside_the_grid_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.log");
    let (mut bytes, last, _, _) = write_log(&p);
    let start = last as usize;
    // Column 9 of the first code word: outside the 8-column grid, checksum made valid again.
    bytes[start + 8 + 14 + 1] |= 0x02;
    let crc = crc32fast::hash(&[&bytes[start..start + 4], &bytes[start + 8..]].concat());
    bytes[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(open(&p), Err(GalleryError::CorruptLog { .. })));
}
