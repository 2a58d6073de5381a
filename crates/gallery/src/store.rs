//! A durable gallery: every change is appended to a log and fsynced before it is
//! acknowledged; now and then the whole gallery is written as a snapshot and the log starts
//! afresh, so reopening reads the snapshot and replays only the log's tail.
//!
//! Files, beside each other: the log at the path given to [`Store::open`] and its snapshot at
//! that path with `.snap` appended (format in [`crate::snapshot`]).
//!
//! Log: a 40-byte header (`OPGALLOG`, version 3, grid, planes, words per code, algorithm,
//! generation `u64`, CRC-32), then records `len u32 | crc u32 | payload`, little-endian, where
//! the CRC covers the length and the payload. Payload: `kind u8` (1 put, 2 remove), `person
//! u64`, `hand u8`, `sample u32`, and for a put the template's packed primary code (the
//! engine's `PackedCode` words, bits then mask, `u64` each: what the gallery stores and
//! searches). Version 2 logs (32-byte header, no generation) are read as generation 0 and
//! replaced by a version 3 log at the first snapshot; version 1 logs (three plain-packed
//! codes per template, from before the matcher became directional) are refused as written
//! for another layout.
//!
//! Generations: a snapshot of generation `g` holds everything written before the log of
//! generation `g` began. Taking one ([`Store::snapshot`]): write `<log>.snap.tmp`, fsync,
//! rename it over `<log>.snap`, fsync the directory; then write an empty log of generation
//! `g` as `<log>.next`, fsync, rename it over the log, fsync the directory. A crash anywhere
//! leaves one of: the old snapshot with the old log (the temporary files are removed on
//! reopen), or the new snapshot with the old log of generation `g - 1`, which the snapshot
//! already holds whole (the store writes nothing between taking a snapshot and rotating the
//! log), so reopening discards it and finishes the rotation, or the new snapshot with the new
//! log. Any other pairing (a log of generation > 0 and no snapshot, generations that do not
//! follow) cannot come from a crash and is refused ([`GalleryError::Generations`]).
//!
//! Recovery: a damaged *last* record (short, checksum mismatch, impossible length) is what a
//! crash mid-append leaves; it was never acknowledged, so it is cut and reported in
//! [`RecoveryReport`]. Damage followed by more data cannot come from a crash and is refused
//! ([`GalleryError::CorruptLog`]) rather than cut, so acknowledged data is never dropped
//! silently. A snapshot is published only whole, so any damage to one is refused
//! ([`GalleryError::CorruptSnapshot`]), never loaded.
//!
//! Snapshots are taken by [`Store::snapshot`] and, under a [`SnapshotPolicy`] (on by
//! default), before an append once the log's records outgrow the policy's share of the last
//! snapshot; a snapshot that fails refuses that change (nothing is lost, nothing half-done).

use crate::gallery::Gallery;
use crate::layout::{code_words, Hand, Key, Layout};
use crate::snapshot;
use crate::GalleryError;
use openpalm_engine::matcher::PackedCode;
use openpalm_engine::{MatchConfig, Template};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"OPGALLOG";
const VERSION: u32 = 3;
/// Header bytes of a version 3 log.
const HEADER: u64 = 40;
/// Header bytes of a version 2 log.
const HEADER_V2: u64 = 32;
const KIND_PUT: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KEY_BYTES: usize = 1 + 8 + 1 + 4;

/// Why the tail of the log was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailDefect {
    /// The last record (or the header) is incomplete.
    Torn,
    /// The last record's checksum does not match.
    Checksum,
    /// The last record's length is impossible.
    BadLength,
}

/// What reopening found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Log records replayed (after the snapshot, if any).
    pub records: u64,
    /// Bytes cut from the end of the log (0: clean).
    pub truncated_bytes: u64,
    pub defect: Option<TailDefect>,
    /// Templates loaded from the snapshot (0: none).
    pub snapshot_templates: u64,
    /// Generation of the log now open.
    pub generation: u64,
    /// Bytes of a log found already held whole by the snapshot (a crash between publishing
    /// a snapshot and starting the next log) and replaced by an empty one; 0 normally.
    pub discarded_log_bytes: u64,
}

/// When [`Store`] takes a snapshot by itself: before an append, once the log's records reach
/// `max(min_log_bytes, last snapshot's bytes * log_percent_of_snapshot / 100)`. The first
/// bounds how often small galleries are rewritten; the second bounds the write amplification
/// of large ones (each snapshot rewrites the whole gallery: at most `1 + 100 / percent`
/// bytes written per byte logged) and the tail a reopen replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub min_log_bytes: u64,
    pub log_percent_of_snapshot: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            min_log_bytes: 64 << 20,
            log_percent_of_snapshot: 25,
        }
    }
}

impl SnapshotPolicy {
    /// Log record bytes that trigger a snapshot, given the last snapshot's size.
    pub fn threshold(&self, snapshot_bytes: u64) -> u64 {
        self.min_log_bytes
            .max(snapshot_bytes.saturating_mul(self.log_percent_of_snapshot) / 100)
    }
}

/// A gallery whose changes survive crashes.
#[derive(Debug)]
pub struct Store {
    gallery: Gallery,
    file: File,
    path: PathBuf,
    /// Bytes in the log.
    len: u64,
    /// Bytes of the log's header.
    header_len: u64,
    /// Generation of the log appended to.
    generation: u64,
    /// Bytes of the last snapshot (0: none).
    snapshot_bytes: u64,
    policy: Option<SnapshotPolicy>,
    /// A snapshot of `generation` is published but the log has not been replaced yet: nothing
    /// may be appended to the old log (reopening would discard it).
    rotation_pending: bool,
}

fn header(layout: &Layout, algorithm: u16, generation: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(layout.grid as u32).to_le_bytes());
    h[16..20].copy_from_slice(&(layout.planes as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(layout.code_words() as u32).to_le_bytes());
    h[24..26].copy_from_slice(&algorithm.to_le_bytes());
    h[28..36].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[..36]);
    h[36..40].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A log header: its length and generation, or `None` when the file is shorter than its
/// header (torn at creation).
fn read_header(
    r: &mut impl Read,
    file_len: u64,
    layout: &Layout,
    algorithm: u16,
) -> Result<Option<(u64, u64)>, GalleryError> {
    if file_len < 12 {
        return Ok(None);
    }
    let mut got = [0u8; HEADER as usize];
    r.read_exact(&mut got[..12])?;
    let bad = GalleryError::CorruptLog {
        offset: 0,
        reason: "bad header",
    };
    if &got[..8] != MAGIC {
        return Err(bad);
    }
    let version = u32::from_le_bytes([got[8], got[9], got[10], got[11]]);
    let len = if version == VERSION { HEADER } else { HEADER_V2 };
    if file_len < len {
        return Ok(None);
    }
    r.read_exact(&mut got[12..len as usize])?;
    let crc_at = len as usize - 4;
    let crc = u32::from_le_bytes([got[crc_at], got[crc_at + 1], got[crc_at + 2], got[crc_at + 3]]);
    if crc32fast::hash(&got[..crc_at]) != crc {
        return Err(bad);
    }
    // Layout fields (bytes 12..26) are where versions 2 and 3 both keep them.
    let want = header(layout, algorithm, 0);
    if !(version == VERSION || version == 2) || got[12..26] != want[12..26] {
        return Err(GalleryError::LogLayoutMismatch);
    }
    let generation = if version == VERSION {
        let mut g = [0u8; 8];
        g.copy_from_slice(&got[28..36]);
        u64::from_le_bytes(g)
    } else {
        0
    };
    Ok(Some((len, generation)))
}

fn put_len(layout: &Layout) -> usize {
    KEY_BYTES + 8 * layout.code_words()
}

fn encode_key(out: &mut Vec<u8>, kind: u8, key: &Key) {
    out.push(kind);
    out.extend_from_slice(&key.person.to_le_bytes());
    out.push(key.hand.to_byte());
    out.extend_from_slice(&key.sample.to_le_bytes());
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> Result<(), GalleryError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

impl Store {
    /// Open (or create) the store whose log is at `path`: load its snapshot, if any, and
    /// replay the log after it.
    pub fn open(
        path: impl AsRef<Path>,
        layout: Layout,
        matching: MatchConfig,
    ) -> Result<(Store, RecoveryReport), GalleryError> {
        let path = path.as_ref().to_path_buf();
        let snap_path = Store::snapshot_path_of(&path);
        // Files of a snapshot or a rotation cut short before their rename: never published.
        remove_if_exists(&with_suffix(&snap_path, ".tmp"))?;
        remove_if_exists(&with_suffix(&path, ".next"))?;
        let snapshot = if snap_path.try_exists()? {
            if !path.try_exists()? {
                return Err(GalleryError::Generations {
                    snapshot: Some(snapshot::read_header(&snap_path)?.generation),
                    log: None,
                });
            }
            Some(snapshot::read(&snap_path, layout, matching.clone())?)
        } else {
            None
        };
        let snapshot_bytes = match &snapshot {
            Some(_) => std::fs::metadata(&snap_path)?.len(),
            None => 0,
        };
        let (mut gallery, snap_gen) = match snapshot {
            Some((g, h)) => (g, Some(h.generation)),
            None => (Gallery::new(layout, matching)?, None),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(snap_gen.is_none())
            .truncate(false)
            .open(&path)?;
        let file_len = file.metadata()?.len();
        let mut report = RecoveryReport {
            records: 0,
            truncated_bytes: 0,
            defect: None,
            snapshot_templates: gallery.len() as u64,
            generation: 0,
            discarded_log_bytes: 0,
        };
        let mut reader = BufReader::with_capacity(1 << 22, &file);
        let head = read_header(&mut reader, file_len, &layout, gallery.algorithm())?;
        let store = |gallery, file, len, header_len, generation| Store {
            gallery,
            file,
            path: path.clone(),
            len,
            header_len,
            generation,
            snapshot_bytes,
            policy: Some(SnapshotPolicy::default()),
            rotation_pending: false,
        };
        let Some((header_len, log_gen)) = head else {
            drop(reader);
            if snap_gen.is_some() {
                // Logs beside a snapshot are only ever published whole, by a rename.
                return Err(GalleryError::CorruptLog {
                    offset: 0,
                    reason: "header torn in a log beside a snapshot",
                });
            }
            // Nothing was acknowledged before the header reached the disk.
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header(&layout, gallery.algorithm(), 0))?;
            file.sync_all()?;
            sync_dir(&path)?;
            report.truncated_bytes = file_len;
            report.defect = (file_len > 0).then_some(TailDefect::Torn);
            return Ok((store(gallery, file, HEADER, HEADER, 0), report));
        };
        match (snap_gen, log_gen) {
            (None, 0) => {}
            (Some(s), l) if s == l => {}
            (Some(s), l) if l.checked_add(1) == Some(s) => {
                // The snapshot holds this log whole: finish the rotation it was cut from.
                drop(reader);
                report.discarded_log_bytes = file_len;
                report.generation = s;
                let mut st = store(gallery, file, file_len, header_len, s);
                st.rotation_pending = true;
                st.rotate()?;
                return Ok((st, report));
            }
            (s, l) => {
                return Err(GalleryError::Generations {
                    snapshot: s,
                    log: Some(l),
                })
            }
        }
        let (records, good) = replay(&mut reader, &mut gallery, &layout, header_len, file_len)?;
        drop(reader);
        report.records = records;
        report.truncated_bytes = file_len - good.0;
        report.defect = good.1;
        report.generation = log_gen;
        if good.0 < file_len {
            file.set_len(good.0)?;
            file.sync_all()?;
        } else {
            report.defect = None;
        }
        Ok((store(gallery, file, good.0, header_len, log_gen), report))
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }
    /// For searching and tuning; changes go through the store's own methods.
    pub fn gallery_mut_search(&mut self) -> &mut Gallery {
        &mut self.gallery
    }
    /// The gallery, closing the store.
    pub fn into_gallery(self) -> Gallery {
        self.gallery
    }
    /// The log's path (as given to [`Store::open`]).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The snapshot's path: the log's with `.snap` appended.
    pub fn snapshot_path(&self) -> PathBuf {
        Store::snapshot_path_of(&self.path)
    }
    /// The snapshot path of the store whose log is at `log`.
    pub fn snapshot_path_of(log: &Path) -> PathBuf {
        with_suffix(log, ".snap")
    }
    /// Bytes in the log.
    pub fn log_bytes(&self) -> u64 {
        self.len
    }
    /// Bytes of the last snapshot (0: none yet).
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes
    }
    /// Generation of the log appended to (the number of snapshots taken).
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn snapshot_policy(&self) -> Option<SnapshotPolicy> {
        self.policy
    }
    /// When to snapshot by itself (`None`: only when [`Store::snapshot`] is called).
    pub fn set_snapshot_policy(&mut self, policy: Option<SnapshotPolicy>) {
        self.policy = policy;
    }

    /// Write the whole gallery as a snapshot and start an empty log after it (see the module
    /// docs for the steps and what a crash between any two leaves). On error the store is
    /// still consistent: either nothing changed, or the snapshot is published and the next
    /// write first finishes starting the new log.
    pub fn snapshot(&mut self) -> Result<(), GalleryError> {
        self.snapshot_stopping_after(SnapshotStep::Done)
    }

    /// [`Store::snapshot`], stopping (as if the process died there) after `step`: for crash
    /// tests. The store must be dropped and reopened afterwards.
    #[doc(hidden)]
    pub fn snapshot_stopping_after(&mut self, step: SnapshotStep) -> Result<(), GalleryError> {
        if self.rotation_pending {
            self.rotate()?;
        }
        let generation = self.generation + 1;
        let snap = self.snapshot_path();
        let tmp = with_suffix(&snap, ".tmp");
        let bytes = match snapshot::write(&tmp, &self.gallery, generation) {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if step == SnapshotStep::TempWritten {
            return Ok(());
        }
        if let Err(e) = std::fs::rename(&tmp, &snap) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        // Published: the old log may no longer be appended to.
        self.generation = generation;
        self.snapshot_bytes = bytes;
        self.rotation_pending = true;
        if step == SnapshotStep::Published {
            return Ok(());
        }
        sync_dir(&self.path)?;
        self.rotate_stopping(step)
    }

    /// Replace the log by an empty one of the current generation.
    fn rotate(&mut self) -> Result<(), GalleryError> {
        self.rotate_stopping(SnapshotStep::Done)
    }

    fn rotate_stopping(&mut self, step: SnapshotStep) -> Result<(), GalleryError> {
        // The snapshot's rename must be durable before the log it replaces goes.
        sync_dir(&self.path)?;
        let next = with_suffix(&self.path, ".next");
        let res = (|| -> Result<File, GalleryError> {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&next)?;
            f.write_all(&header(
                &self.gallery.layout(),
                self.gallery.algorithm(),
                self.generation,
            ))?;
            f.sync_all()?;
            Ok(f)
        })();
        let f = match res {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&next);
                return Err(e);
            }
        };
        if step == SnapshotStep::NextLogWritten {
            return Ok(());
        }
        if let Err(e) = std::fs::rename(&next, &self.path) {
            let _ = std::fs::remove_file(&next);
            return Err(e.into());
        }
        self.file = f;
        self.len = HEADER;
        self.header_len = HEADER;
        self.rotation_pending = false;
        sync_dir(&self.path)
    }

    fn put_record(&self, out: &mut Vec<u8>, key: &Key, code: &PackedCode) {
        let layout = self.gallery.layout();
        let mut payload = Vec::with_capacity(put_len(&layout));
        encode_key(&mut payload, KIND_PUT, key);
        let mut words = vec![0u64; layout.code_words()];
        code_words(code, &mut words);
        for w in words {
            payload.extend_from_slice(&w.to_le_bytes());
        }
        frame(out, &payload);
    }

    /// Append and fsync; on failure cut the log back so no half record stays. Before
    /// appending, finish a pending log rotation and take a snapshot if the policy asks.
    fn commit(&mut self, bytes: &[u8]) -> Result<(), GalleryError> {
        if self.rotation_pending {
            self.rotate()?;
        }
        if let Some(p) = self.policy {
            let records = self.len - self.header_len;
            if records > 0 && records >= p.threshold(self.snapshot_bytes) {
                self.snapshot()?;
            }
        }
        let res = (|| -> std::io::Result<()> {
            self.file.seek(SeekFrom::Start(self.len))?;
            self.file.write_all(bytes)?;
            self.file.sync_data()
        })();
        if let Err(e) = res {
            let _ = self.file.set_len(self.len);
            return Err(e.into());
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Enrol durably: returns once the change is on disk.
    pub fn add(&mut self, key: Key, t: &Template) -> Result<(), GalleryError> {
        self.add_batch(std::slice::from_ref(&(key, t.clone())))
    }

    /// Enrol many with one fsync (group commit); all or none are acknowledged.
    pub fn add_batch(&mut self, items: &[(Key, Template)]) -> Result<(), GalleryError> {
        let mut seen = std::collections::HashSet::new();
        let mut codes = Vec::with_capacity(items.len());
        for (k, t) in items {
            codes.push(self.gallery.check_add(k, t)?);
            if !seen.insert(*k) {
                return Err(GalleryError::DuplicateKey(*k));
            }
        }
        let mut buf = Vec::new();
        for ((k, _), c) in items.iter().zip(&codes) {
            self.put_record(&mut buf, k, c);
        }
        self.commit(&buf)?;
        for ((k, _), c) in items.iter().zip(&codes) {
            self.gallery.put(*k, c);
        }
        Ok(())
    }

    /// Replace durably.
    pub fn replace(&mut self, key: Key, t: &Template) -> Result<(), GalleryError> {
        let code = self.gallery.check_replace(&key, t)?;
        let mut buf = Vec::new();
        self.put_record(&mut buf, &key, &code);
        self.commit(&buf)?;
        self.gallery.put(key, &code);
        Ok(())
    }

    /// Remove durably.
    pub fn remove(&mut self, key: &Key) -> Result<(), GalleryError> {
        if !self.gallery.contains(key) {
            return Err(GalleryError::UnknownKey(*key));
        }
        let mut payload = Vec::with_capacity(KEY_BYTES);
        encode_key(&mut payload, KIND_REMOVE, key);
        let mut buf = Vec::new();
        frame(&mut buf, &payload);
        self.commit(&buf)?;
        self.gallery.remove(key)
    }
}

/// Where [`Store::snapshot_stopping_after`] stops, in the order a snapshot goes.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStep {
    /// `<log>.snap.tmp` written and fsynced, not renamed.
    TempWritten,
    /// The snapshot renamed into place; the old log still there.
    Published,
    /// `<log>.next` written and fsynced, not renamed.
    NextLogWritten,
    /// Everything.
    Done,
}

fn sync_dir(path: &Path) -> Result<(), GalleryError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Replay records; returns (records, (end of the last good record, defect)).
fn replay(
    r: &mut impl Read,
    gallery: &mut Gallery,
    layout: &Layout,
    header_len: u64,
    file_len: u64,
) -> Result<(u64, (u64, Option<TailDefect>)), GalleryError> {
    let plen = put_len(layout);
    let mut off = header_len;
    let mut records = 0u64;
    let mut payload = vec![0u8; plen];
    let mut words = vec![0u64; layout.code_words()];
    loop {
        let left = file_len - off;
        if left == 0 {
            return Ok((records, (off, None)));
        }
        if left < 8 {
            return Ok((records, (off, Some(TailDefect::Torn))));
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len != plen && len != KEY_BYTES {
            // An impossible length: a crash mid-append only if nothing could follow it.
            if left <= 8 + plen as u64 {
                return Ok((records, (off, Some(TailDefect::BadLength))));
            }
            return Err(GalleryError::CorruptLog {
                offset: off,
                reason: "impossible record length",
            });
        }
        if left < 8 + len as u64 {
            return Ok((records, (off, Some(TailDefect::Torn))));
        }
        let p = &mut payload[..len];
        r.read_exact(p)?;
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..4]);
        h.update(p);
        if h.finalize() != crc {
            if left == 8 + len as u64 {
                return Ok((records, (off, Some(TailDefect::Checksum))));
            }
            return Err(GalleryError::CorruptLog {
                offset: off,
                reason: "checksum mismatch",
            });
        }
        let bad = |reason| GalleryError::CorruptLog { offset: off, reason };
        let kind = p[0];
        let person = u64::from_le_bytes(p[1..9].try_into().map_err(|_| bad("key"))?);
        let hand = Hand::from_byte(p[9]).ok_or(bad("hand"))?;
        let sample = u32::from_le_bytes(p[10..14].try_into().map_err(|_| bad("key"))?);
        let key = Key::new(person, hand, sample);
        match (kind, len) {
            (KIND_PUT, l) if l == plen => {
                for (w, c) in words.iter_mut().zip(p[KEY_BYTES..].chunks_exact(8)) {
                    *w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                }
                // A checksummed record this build could not have written: refuse it.
                let code = layout
                    .packed_from_words(&words)
                    .map_err(|_| bad("code bits outside the grid"))?;
                gallery.put(key, &code);
            }
            (KIND_REMOVE, KEY_BYTES) => gallery
                .remove(&key)
                .map_err(|_| bad("remove of a key not enrolled"))?,
            _ => return Err(bad("unknown record kind")),
        }
        records += 1;
        off += 8 + len as u64;
    }
}
