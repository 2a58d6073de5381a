//! A durable gallery: every change is appended to a log and fsynced before it is
//! acknowledged; reopening replays the log.
//!
//! File: a 32-byte header (`OPGALLOG`, version 2, grid, planes, words per code, algorithm,
//! CRC-32), then records `len u32 | crc u32 | payload`, little-endian, where the CRC covers
//! the length and the payload. Payload: `kind u8` (1 put, 2 remove), `person u64`, `hand u8`,
//! `sample u32`, and for a put the template's packed primary code (the engine's `PackedCode`
//! words, bits then mask, `u64` each: what the gallery stores and searches). Version 1 logs
//! (three plain-packed codes per template, from before the matcher became directional) are
//! refused as written for another layout.
//!
//! Recovery: a damaged *last* record (short, checksum mismatch, impossible length) is what a
//! crash mid-append leaves; it was never acknowledged, so it is cut and reported in
//! [`RecoveryReport`]. Damage followed by more data cannot come from a crash and is refused
//! ([`GalleryError::CorruptLog`]) rather than cut, so acknowledged data is never dropped
//! silently. Snapshots and compaction are not implemented: the log only grows.

use crate::gallery::Gallery;
use crate::layout::{code_words, Hand, Key, Layout};
use crate::GalleryError;
use openpalm_engine::matcher::PackedCode;
use openpalm_engine::{MatchConfig, Template};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"OPGALLOG";
const VERSION: u32 = 2;
const HEADER: u64 = 32;
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
    /// Records replayed.
    pub records: u64,
    /// Bytes cut from the end of the log (0: clean).
    pub truncated_bytes: u64,
    pub defect: Option<TailDefect>,
}

/// A gallery whose changes survive crashes.
#[derive(Debug)]
pub struct Store {
    gallery: Gallery,
    file: File,
    path: PathBuf,
    len: u64,
}

fn header(layout: &Layout, algorithm: u16) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(layout.grid as u32).to_le_bytes());
    h[16..20].copy_from_slice(&(layout.planes as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(layout.code_words() as u32).to_le_bytes());
    h[24..26].copy_from_slice(&algorithm.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
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

impl Store {
    /// Open (or create) the log at `path` and replay it.
    pub fn open(
        path: impl AsRef<Path>,
        layout: Layout,
        matching: MatchConfig,
    ) -> Result<(Store, RecoveryReport), GalleryError> {
        let path = path.as_ref().to_path_buf();
        let mut gallery = Gallery::new(layout, matching)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let file_len = file.metadata()?.len();
        let want = header(&layout, gallery.algorithm());
        if file_len < HEADER {
            // Nothing was acknowledged before the header reached the disk.
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&want)?;
            file.sync_all()?;
            sync_dir(&path)?;
            let report = RecoveryReport {
                records: 0,
                truncated_bytes: file_len,
                defect: (file_len > 0).then_some(TailDefect::Torn),
            };
            return Ok((
                Store {
                    gallery,
                    file,
                    path,
                    len: HEADER,
                },
                report,
            ));
        }
        let mut reader = BufReader::with_capacity(1 << 22, &file);
        let mut got = [0u8; HEADER as usize];
        reader.read_exact(&mut got)?;
        if got != want {
            let crc_ok = crc32fast::hash(&got[..28]).to_le_bytes() == got[28..32];
            if &got[..8] != MAGIC || !crc_ok {
                return Err(GalleryError::CorruptLog {
                    offset: 0,
                    reason: "bad header",
                });
            }
            return Err(GalleryError::LogLayoutMismatch);
        }
        let (records, good) = replay(&mut reader, &mut gallery, &layout, file_len)?;
        drop(reader);
        let mut report = RecoveryReport {
            records,
            truncated_bytes: file_len - good.0,
            defect: good.1,
        };
        if good.0 < file_len {
            file.set_len(good.0)?;
            file.sync_all()?;
        } else {
            report.defect = None;
        }
        Ok((
            Store {
                gallery,
                file,
                path,
                len: good.0,
            },
            report,
        ))
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }
    /// For searching and tuning; changes go through the store's own methods.
    pub fn gallery_mut_search(&mut self) -> &mut Gallery {
        &mut self.gallery
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Bytes in the log.
    pub fn log_bytes(&self) -> u64 {
        self.len
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

    /// Append and fsync; on failure cut the log back so no half record stays.
    fn commit(&mut self, bytes: &[u8]) -> Result<(), GalleryError> {
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
    file_len: u64,
) -> Result<(u64, (u64, Option<TailDefect>)), GalleryError> {
    let plen = put_len(layout);
    let mut off = HEADER;
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
