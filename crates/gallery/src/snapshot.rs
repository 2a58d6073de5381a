//! Snapshots: a compact, checksummed image of a whole gallery, so that reopening reads one
//! file at disk speed instead of replaying every change ever logged (see [`crate::Store`] for
//! how snapshots and the log fit together).
//!
//! File (little-endian): a 64-byte header, then the live templates in key order, in blocks of
//! [`CHUNK_SLOTS`] templates (the last block may be shorter):
//!
//! | bytes | header field |
//! |---|---|
//! | 0..8 | `OPGALSNP` |
//! | 8..12 | version, 1 |
//! | 12..16, 16..20 | layout grid, planes |
//! | 20..24, 24..28 | u64 words per stored code, per sketch |
//! | 28..30, 30..32 | engine algorithm id, sketch version ([`sketch::SKETCH_VERSION`]) |
//! | 32..40 | generation: the log generation that continues this snapshot |
//! | 40..48 | templates |
//! | 48..52 | templates per block ([`CHUNK_SLOTS`]) |
//! | 52..60 | zero |
//! | 60..64 | CRC-32 of bytes 0..60 |
//!
//! A block of `n` templates: `n` keys (`person u64, hand u8, sample u32`), then the `n`
//! stored codes (the engine's packed words, bits then mask, `u64` each), then the `n`
//! first-stage sketches, then the CRC-32 of the block's bytes. The file's length follows from
//! the header, so a short or long file is caught before any block is read.
//!
//! A snapshot is only ever published by an atomic rename after an fsync, so a damaged one
//! cannot come from a crash: any damage (bad header, wrong length, checksum mismatch, keys not
//! strictly ascending, code bits outside the grid) is [`GalleryError::CorruptSnapshot`] and
//! nothing is loaded. Blocks are read and checked in parallel, straight into the gallery's
//! storage chunks (a block is exactly one chunk).

use crate::gallery::{Gallery, LoadedChunk, CHUNK_SLOTS};
use crate::layout::{Hand, Key, Layout};
use crate::sketch;
use crate::GalleryError;
use openpalm_engine::MatchConfig;
use rayon::prelude::*;
use std::fs::File;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"OPGALSNP";
const VERSION: u32 = 1;
/// Header bytes.
pub const HEADER: u64 = 64;
const KEY_BYTES: usize = 8 + 1 + 4;
/// Bytes of codes read and checked at a time while loading.
const READ_PIECE: usize = 256 << 10;
/// Blocks encoded at once while writing (memory: this many blocks' bytes).
const WRITE_BATCH: usize = 8;

/// What a snapshot's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub layout: Layout,
    pub code_words: usize,
    pub sketch_words: usize,
    pub algorithm: u16,
    pub sketch_version: u16,
    /// The log generation that continues this snapshot.
    pub generation: u64,
    pub templates: u64,
}

impl SnapshotHeader {
    fn encode(&self) -> [u8; HEADER as usize] {
        let mut h = [0u8; HEADER as usize];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.layout.grid as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(self.layout.planes as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(self.code_words as u32).to_le_bytes());
        h[24..28].copy_from_slice(&(self.sketch_words as u32).to_le_bytes());
        h[28..30].copy_from_slice(&self.algorithm.to_le_bytes());
        h[30..32].copy_from_slice(&self.sketch_version.to_le_bytes());
        h[32..40].copy_from_slice(&self.generation.to_le_bytes());
        h[40..48].copy_from_slice(&self.templates.to_le_bytes());
        h[48..52].copy_from_slice(&(CHUNK_SLOTS as u32).to_le_bytes());
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn decode(h: &[u8; HEADER as usize]) -> Result<SnapshotHeader, GalleryError> {
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if &h[..8] != MAGIC || crc32fast::hash(&h[..60]) != u32_at(60) {
            return Err(GalleryError::CorruptSnapshot {
                offset: 0,
                reason: "bad header",
            });
        }
        if u32_at(8) != VERSION || u32_at(48) as usize != CHUNK_SLOTS {
            return Err(GalleryError::SnapshotLayoutMismatch);
        }
        Ok(SnapshotHeader {
            layout: Layout {
                grid: u32_at(12) as usize,
                planes: u32_at(16) as usize,
            },
            code_words: u32_at(20) as usize,
            sketch_words: u32_at(24) as usize,
            algorithm: u16::from_le_bytes([h[28], h[29]]),
            sketch_version: u16::from_le_bytes([h[30], h[31]]),
            generation: u64_at(32),
            templates: u64_at(40),
        })
    }

    fn record_bytes(&self) -> u64 {
        (KEY_BYTES + 8 * self.code_words + 8 * self.sketch_words) as u64
    }

    /// Bytes of a block of `n` templates.
    fn block_bytes(&self, n: u64) -> u64 {
        n * self.record_bytes() + 4
    }

    /// The file's length, or `None` when it overflows (a header no build could write).
    fn file_len(&self) -> Option<u64> {
        let full = self.templates / CHUNK_SLOTS as u64;
        let last = self.templates % CHUNK_SLOTS as u64;
        let mut len = full.checked_mul(self.block_bytes(CHUNK_SLOTS as u64))?;
        if last > 0 {
            len = len.checked_add(self.block_bytes(last))?;
        }
        len.checked_add(HEADER)
    }
}

/// The words' memory as bytes (for reading and checksumming without a copy).
fn as_bytes(w: &[u64]) -> &[u8] {
    // SAFETY: u8 has alignment 1 and the length covers exactly the words' memory.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), std::mem::size_of_val(w)) }
}

/// The words' memory as bytes, for reading into.
fn as_bytes_mut(w: &mut [u64]) -> &mut [u8] {
    // SAFETY: u8 has alignment 1, every byte pattern is a valid u64, and the length covers
    // exactly the words' memory.
    unsafe { std::slice::from_raw_parts_mut(w.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(w)) }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut off: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, off)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                off += n as u64;
            }
        }
    }
    Ok(())
}

/// Write `g` as a snapshot continued by log generation `generation` to `path` (created or
/// truncated) and fsync it; returns the bytes written. The caller publishes it by renaming.
pub(crate) fn write(path: &Path, g: &Gallery, generation: u64) -> Result<u64, GalleryError> {
    let layout = g.layout();
    let header = SnapshotHeader {
        layout,
        code_words: layout.code_words(),
        sketch_words: g.sketch_words(),
        algorithm: g.algorithm(),
        sketch_version: sketch::SKETCH_VERSION,
        generation,
        templates: g.len() as u64,
    };
    let order = g.slots_by_key();
    let mut file = File::create(path)?;
    file.write_all(&header.encode())?;
    for batch in order.chunks(CHUNK_SLOTS * WRITE_BATCH) {
        let blocks: Vec<Vec<u8>> = batch
            .par_chunks(CHUNK_SLOTS)
            .map(|block| encode_block(g, &header, block))
            .collect();
        for b in blocks {
            file.write_all(&b)?;
        }
    }
    file.sync_all()?;
    Ok(header.file_len().unwrap_or(u64::MAX))
}

fn encode_block(g: &Gallery, h: &SnapshotHeader, block: &[(Key, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(h.block_bytes(block.len() as u64) as usize);
    for (k, _) in block {
        out.extend_from_slice(&k.person.to_le_bytes());
        out.push(k.hand.to_byte());
        out.extend_from_slice(&k.sample.to_le_bytes());
    }
    for &(_, s) in block {
        for w in g.slot_code(s as usize) {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    for &(_, s) in block {
        for w in g.slot_sketch(s as usize) {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Read only a snapshot's header (checked), for deciding how it pairs with a log.
pub fn read_header(path: &Path) -> Result<SnapshotHeader, GalleryError> {
    let file = File::open(path)?;
    header_of(&file)
}

fn header_of(file: &File) -> Result<SnapshotHeader, GalleryError> {
    let len = file.metadata()?.len();
    if len < HEADER {
        return Err(GalleryError::CorruptSnapshot {
            offset: len,
            reason: "shorter than its header",
        });
    }
    let mut h = [0u8; HEADER as usize];
    read_at(file, &mut h, 0)?;
    let header = SnapshotHeader::decode(&h)?;
    match header.file_len() {
        Some(want) if want == len => Ok(header),
        want => Err(GalleryError::CorruptSnapshot {
            offset: want.unwrap_or(0).min(len),
            reason: "file length does not match the header",
        }),
    }
}

/// Load the snapshot at `path` as a gallery of `layout` scored with `matching`. Every block is
/// checked (see the module docs); any damage is an error and nothing is loaded.
pub(crate) fn read(
    path: &Path,
    layout: Layout,
    matching: MatchConfig,
) -> Result<(Gallery, SnapshotHeader), GalleryError> {
    let file = File::open(path)?;
    let h = header_of(&file)?;
    let empty = Gallery::new(layout, matching.clone())?;
    let sketch_words = empty.sketch_words();
    let same_sketch = h.sketch_version == sketch::SKETCH_VERSION && h.sketch_words == sketch_words;
    if h.layout != layout || h.code_words != layout.code_words() || h.algorithm != empty.algorithm() {
        return Err(GalleryError::SnapshotLayoutMismatch);
    }
    drop(empty);
    let pattern = layout.valid_pattern();
    let blocks = (h.templates as usize).div_ceil(CHUNK_SLOTS);
    let full_block = h.block_bytes(CHUNK_SLOTS as u64);
    let chunks = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let n = CHUNK_SLOTS.min(h.templates as usize - b * CHUNK_SLOTS);
            let off = HEADER + b as u64 * full_block;
            read_block(&file, &h, &pattern, n, off, same_sketch.then_some(sketch_words))
        })
        .collect::<Result<Vec<LoadedChunk>, GalleryError>>()?;
    for (b, pair) in chunks.windows(2).enumerate() {
        if pair[0].keys.last() >= pair[1].keys.first() {
            return Err(GalleryError::CorruptSnapshot {
                offset: HEADER + (b + 1) as u64 * full_block,
                reason: "keys not strictly ascending",
            });
        }
    }
    let mut g = Gallery::from_chunks(layout, matching, chunks)?;
    if !same_sketch {
        g.rebuild_sketches();
    }
    Ok((g, h))
}

/// Read and check one block of `n` templates at `off`. `sketch_words`: keep the stored
/// sketches (this build's), or `None` to leave them zero for recomputing.
fn read_block(
    file: &File,
    h: &SnapshotHeader,
    pattern: &[u64],
    n: usize,
    off: u64,
    sketch_words: Option<usize>,
) -> Result<LoadedChunk, GalleryError> {
    let cw = h.code_words;
    let bad = |reason| GalleryError::CorruptSnapshot { offset: off, reason };
    let mut hasher = crc32fast::Hasher::new();
    let mut keys_raw = vec![0u8; n * KEY_BYTES];
    read_at(file, &mut keys_raw, off)?;
    hasher.update(&keys_raw);
    let mut at = off + keys_raw.len() as u64;
    // Codes are read, checksummed and checked a cache-sized piece at a time, so the block's
    // bytes cross the memory bus once.
    let mut codes = vec![0u64; CHUNK_SLOTS * cw].into_boxed_slice();
    let per_piece = (READ_PIECE / (8 * cw)).max(1);
    let mut stray = 0u64;
    for piece in codes[..n * cw].chunks_mut(per_piece * cw) {
        read_at(file, as_bytes_mut(piece), at)?;
        at += 8 * piece.len() as u64;
        hasher.update(as_bytes(piece));
        #[cfg(target_endian = "big")]
        for w in piece.iter_mut() {
            *w = u64::from_le(*w);
        }
        for t in piece.chunks_exact(cw) {
            stray |= t.iter().zip(pattern).fold(0u64, |acc, (w, p)| acc | (w & !p));
        }
    }
    let keep = sketch_words.filter(|&sw| sw == h.sketch_words);
    let sw = keep.unwrap_or(h.sketch_words);
    let mut sketches = vec![0u64; CHUNK_SLOTS * sw].into_boxed_slice();
    read_at(file, as_bytes_mut(&mut sketches[..n * sw]), at)?;
    hasher.update(as_bytes(&sketches[..n * sw]));
    at += 8 * (n * sw) as u64;
    let mut crc = [0u8; 4];
    read_at(file, &mut crc, at)?;
    if hasher.finalize() != u32::from_le_bytes(crc) {
        return Err(bad("block checksum mismatch"));
    }
    // A checksummed code this build could not have written: refuse it.
    if stray != 0 {
        return Err(bad("code bits outside the grid"));
    }
    let sketches = match keep {
        Some(_) => {
            #[cfg(target_endian = "big")]
            for w in sketches.iter_mut() {
                *w = u64::from_le(*w);
            }
            sketches
        }
        // Another sketch version: left zero for recomputing.
        None => vec![0u64; CHUNK_SLOTS * sketch::geometry(&h.layout).1].into_boxed_slice(),
    };
    let mut keys = Vec::with_capacity(n);
    for r in keys_raw.chunks_exact(KEY_BYTES) {
        let mut p = [0u8; 8];
        p.copy_from_slice(&r[..8]);
        let hand = Hand::from_byte(r[8]).ok_or(bad("hand"))?;
        let key = Key::new(
            u64::from_le_bytes(p),
            hand,
            u32::from_le_bytes([r[9], r[10], r[11], r[12]]),
        );
        if keys.last().is_some_and(|last| *last >= key) {
            return Err(bad("keys not strictly ascending"));
        }
        keys.push(key);
    }
    Ok(LoadedChunk {
        keys,
        codes,
        sketches,
    })
}
