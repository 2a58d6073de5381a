//! The in-memory gallery and 1:N identification.

use crate::kernel::{self, Kernel, ProbePrep, Sketch, SketchBlock, LANES, SKETCH_WORDS};
use crate::layout::{pack_template, unpack_template, Key, Layout};
use crate::GalleryError;
use openpalm_engine::{MatchConfig, Template};
use rayon::prelude::*;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per storage chunk: the arena grows a chunk at a time, so it never holds more than one
/// chunk of unused room and never copies on growth.
pub const CHUNK_SLOTS: usize = 4096;

static NEXT_GALLERY_ID: AtomicU64 = AtomicU64::new(1);

/// How [`Gallery::identify`] searches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchParams {
    /// Templates the first stage (sketch distance) hands to the exact second stage (at least
    /// `4 * k` are kept).
    pub candidates: usize,
    /// Searches over at most this many templates skip the first stage and score every
    /// template exactly.
    pub exhaustive_up_to: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            candidates: 64,
            exhaustive_up_to: 256,
        }
    }
}

/// One identified person: the best score over their enrolled templates and which one gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub person: u64,
    /// Exactly `Engine::score(probe, enrolled)` for the best of the person's templates.
    pub score: f32,
    /// The template that scored best (the smallest key among equal scores).
    pub key: Key,
}

/// A subset of persons to identify within (the ticket holders of one event, the members of
/// one business). Holds the persons' template slots, re-resolved only when the gallery has
/// changed since, so a search costs in proportion to the subset.
#[derive(Clone, Debug)]
pub struct Scope {
    persons: Vec<u64>,
    slots: Vec<u32>,
    gallery_id: u64,
    epoch: u64,
}

impl Scope {
    pub fn persons(&self) -> &[u64] {
        &self.persons
    }
    /// Templates in the scope when it was last resolved.
    pub fn templates(&self) -> usize {
        self.slots.len()
    }
}

/// Enrolled templates keyed by (person, hand, sample), packed for fast search.
pub struct Gallery {
    layout: Layout,
    matching: MatchConfig,
    algorithm: u16,
    kernel: Kernel,
    params: SearchParams,
    template_words: usize,
    chunks: Vec<Box<[u32]>>,
    sketches: Vec<Box<[Sketch]>>,
    quality: Vec<f32>,
    keys: Vec<Option<Key>>,
    index: HashMap<Key, u32>,
    persons: HashMap<u64, Vec<u32>>,
    free: Vec<u32>,
    id: u64,
    epoch: u64,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("layout", &self.layout)
            .field("templates", &self.len())
            .field("kernel", &self.kernel)
            .finish()
    }
}

impl Gallery {
    /// An empty gallery for templates of `layout` made by the engine's current algorithm,
    /// scored with `matching` (use `MatchConfig::default()` to agree with `Engine::default()`).
    pub fn new(layout: Layout, matching: MatchConfig) -> Result<Gallery, GalleryError> {
        layout.validate()?;
        if matching.max_shift >= layout.grid {
            return Err(GalleryError::UnsupportedLayout(layout));
        }
        Ok(Gallery {
            layout,
            matching,
            algorithm: openpalm_engine::template::ALGORITHM_ID,
            kernel: Kernel::detect(),
            params: SearchParams::default(),
            template_words: layout.template_words(),
            chunks: Vec::new(),
            sketches: Vec::new(),
            quality: Vec::new(),
            keys: Vec::new(),
            index: HashMap::new(),
            persons: HashMap::new(),
            free: Vec::new(),
            id: NEXT_GALLERY_ID.fetch_add(1, Ordering::Relaxed),
            epoch: 0,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }
    pub fn matching(&self) -> &MatchConfig {
        &self.matching
    }
    pub fn algorithm(&self) -> u16 {
        self.algorithm
    }
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Choose the popcount path; refused when this CPU cannot run it.
    pub fn set_kernel(&mut self, kernel: Kernel) -> Result<(), GalleryError> {
        if !kernel.is_supported() {
            return Err(GalleryError::KernelUnsupported(kernel.name()));
        }
        self.kernel = kernel;
        Ok(())
    }

    pub fn search_params(&self) -> &SearchParams {
        &self.params
    }
    pub fn set_search_params(&mut self, params: SearchParams) {
        self.params = params;
    }

    /// Enrolled templates.
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// Distinct enrolled persons.
    pub fn persons(&self) -> usize {
        self.persons.len()
    }
    pub fn contains(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }
    /// Every key, sorted.
    pub fn keys(&self) -> Vec<Key> {
        let mut k: Vec<Key> = self.index.keys().copied().collect();
        k.sort_unstable();
        k
    }

    /// The stored template (bits outside the code grid cleared, as stored).
    pub fn get(&self, key: &Key) -> Option<Template> {
        let slot = *self.index.get(key)? as usize;
        Some(unpack_template(
            &self.layout,
            self.algorithm,
            self.quality[slot],
            self.slot_words(slot),
        ))
    }

    fn check_enrol(&self, t: &Template) -> Result<(), GalleryError> {
        if t.algorithm != self.algorithm {
            return Err(GalleryError::Algorithm {
                expected: self.algorithm,
                found: t.algorithm,
            });
        }
        self.layout.check_template(t)
    }

    /// Enrol a new template; refused if the key is taken.
    pub fn add(&mut self, key: Key, t: &Template) -> Result<(), GalleryError> {
        self.check_add(&key, t)?;
        self.put(key, t);
        Ok(())
    }

    /// Overwrite an enrolled template; refused if the key is not enrolled.
    pub fn replace(&mut self, key: Key, t: &Template) -> Result<(), GalleryError> {
        self.check_replace(&key, t)?;
        self.put(key, t);
        Ok(())
    }

    /// Remove an enrolled template; refused if the key is not enrolled.
    pub fn remove(&mut self, key: &Key) -> Result<(), GalleryError> {
        let slot = self.index.remove(key).ok_or(GalleryError::UnknownKey(*key))?;
        self.keys[slot as usize] = None;
        if let Some(v) = self.persons.get_mut(&key.person) {
            v.retain(|&s| s != slot);
            if v.is_empty() {
                self.persons.remove(&key.person);
            }
        }
        let words = self.template_words;
        self.slot_words_mut(slot as usize)[..words].fill(0);
        self.free.push(slot);
        self.epoch += 1;
        Ok(())
    }

    pub(crate) fn check_add(&self, key: &Key, t: &Template) -> Result<(), GalleryError> {
        if self.index.contains_key(key) {
            return Err(GalleryError::DuplicateKey(*key));
        }
        self.check_enrol(t)
    }

    pub(crate) fn check_replace(&self, key: &Key, t: &Template) -> Result<(), GalleryError> {
        if !self.index.contains_key(key) {
            return Err(GalleryError::UnknownKey(*key));
        }
        self.check_enrol(t)
    }

    /// Insert or overwrite an already validated template.
    pub(crate) fn put(&mut self, key: Key, t: &Template) {
        let mut words = vec![0u32; self.template_words];
        pack_template(&self.layout, t, &mut words);
        self.put_packed(key, t.quality, &words);
    }

    /// Insert or overwrite from packed words (layout already checked by the caller).
    pub(crate) fn put_packed(&mut self, key: Key, quality: f32, words: &[u32]) {
        let slot = match self.index.get(&key) {
            Some(&s) => s as usize,
            None => {
                let s = self.alloc_slot();
                self.index.insert(key, s as u32);
                self.keys[s] = Some(key);
                self.persons.entry(key.person).or_default().push(s as u32);
                s
            }
        };
        let full = self.layout.full();
        let dst = self.slot_words_mut(slot);
        for (d, &w) in dst.iter_mut().zip(words) {
            *d = w & full;
        }
        self.quality[slot] = quality;
        if kernel::sketch_fits(&self.layout, self.matching.max_shift) {
            let rows = self.layout.rows();
            let sk = kernel::template_sketch(&self.layout, &self.slot_words(slot)[..rows]);
            self.sketches[slot / CHUNK_SLOTS][slot % CHUNK_SLOTS] = sk;
        }
        self.epoch += 1;
    }

    fn alloc_slot(&mut self) -> usize {
        if let Some(s) = self.free.pop() {
            return s as usize;
        }
        let s = self.keys.len();
        if s == self.chunks.len() * CHUNK_SLOTS {
            self.chunks
                .push(vec![0u32; CHUNK_SLOTS * self.template_words].into_boxed_slice());
            self.sketches
                .push(vec![[0u32; SKETCH_WORDS]; CHUNK_SLOTS].into_boxed_slice());
            self.keys.reserve_exact(CHUNK_SLOTS);
            self.quality.reserve_exact(CHUNK_SLOTS);
        }
        self.keys.push(None);
        self.quality.push(0.0);
        s
    }

    fn slot_words(&self, slot: usize) -> &[u32] {
        let w = self.template_words;
        let off = (slot % CHUNK_SLOTS) * w;
        &self.chunks[slot / CHUNK_SLOTS][off..off + w]
    }

    fn slot_words_mut(&mut self, slot: usize) -> &mut [u32] {
        let w = self.template_words;
        let off = (slot % CHUNK_SLOTS) * w;
        &mut self.chunks[slot / CHUNK_SLOTS][off..off + w]
    }

    /// Bytes of the packed templates alone (`len * layout.raw_bytes()`).
    pub fn raw_template_bytes(&self) -> usize {
        self.len() * self.layout.raw_bytes()
    }

    /// Heap bytes the gallery holds (arena, sketches, keys, indexes; hash tables estimated
    /// from their capacity).
    pub fn memory_bytes(&self) -> usize {
        let arena = self.chunks.len() * CHUNK_SLOTS * self.template_words * 4;
        let sketches = self.sketches.len() * CHUNK_SLOTS * std::mem::size_of::<Sketch>();
        let keys = self.keys.capacity() * std::mem::size_of::<Option<Key>>();
        let quality = self.quality.capacity() * 4;
        let index = self.index.capacity() * (std::mem::size_of::<(Key, u32)>() + 1);
        let persons = self.persons.capacity() * (std::mem::size_of::<(u64, Vec<u32>)>() + 1)
            + self.persons.values().map(|v| v.capacity() * 4).sum::<usize>();
        let free = self.free.capacity() * 4;
        arena + sketches + keys + quality + index + persons + free
    }

    /// Resolve a subset of persons (unknown persons are kept: they count once enrolled).
    pub fn scope(&self, persons: impl IntoIterator<Item = u64>) -> Scope {
        let mut p: Vec<u64> = persons.into_iter().collect();
        p.sort_unstable();
        p.dedup();
        let mut s = Scope {
            persons: p,
            slots: Vec::new(),
            gallery_id: self.id,
            epoch: u64::MAX,
        };
        self.refresh(&mut s);
        s
    }

    fn refresh(&self, scope: &mut Scope) {
        if scope.gallery_id == self.id && scope.epoch == self.epoch {
            return;
        }
        scope.slots.clear();
        for p in &scope.persons {
            if let Some(v) = self.persons.get(p) {
                scope.slots.extend_from_slice(v);
            }
        }
        scope.slots.sort_unstable();
        scope.gallery_id = self.id;
        scope.epoch = self.epoch;
    }

    /// The top `k` persons for `probe`, by the engine's exact score (two stages when the
    /// gallery is larger than `exhaustive_up_to`; see the crate docs for what is exact).
    pub fn identify(&self, probe: &Template, k: usize) -> Result<Vec<Candidate>, GalleryError> {
        self.search(probe, k, None, false)
    }

    /// Like [`Gallery::identify`], scoring every enrolled template exactly: always identical
    /// to brute-force `Engine::score` over the gallery.
    pub fn identify_exact(&self, probe: &Template, k: usize) -> Result<Vec<Candidate>, GalleryError> {
        self.search(probe, k, None, true)
    }

    /// [`Gallery::identify`] within a scope: costs grow with the scope, not the gallery.
    pub fn identify_in(
        &self,
        scope: &mut Scope,
        probe: &Template,
        k: usize,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.refresh(scope);
        self.search(probe, k, Some(&scope.slots), false)
    }

    /// [`Gallery::identify_exact`] within a scope.
    pub fn identify_in_exact(
        &self,
        scope: &mut Scope,
        probe: &Template,
        k: usize,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.refresh(scope);
        self.search(probe, k, Some(&scope.slots), true)
    }

    fn search(
        &self,
        probe: &Template,
        k: usize,
        scope: Option<&[u32]>,
        exact: bool,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.layout.check_probe(probe)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let lay = &self.layout;
        let codes = 1 + probe.rotated.len();
        let cw = 2 * lay.rows();
        let mut packed = vec![0u32; codes * cw];
        pack_template(
            &Layout {
                rotations: probe.rotated.len(),
                ..*lay
            },
            probe,
            &mut packed,
        );
        let n = scope.map_or(self.len(), |s| s.len());
        let staged =
            !exact && n > self.params.exhaustive_up_to && kernel::sketch_fits(lay, self.matching.max_shift);
        let slots: Vec<u32> = if staged {
            let sk = kernel::probe_sketches(lay, &packed[..lay.rows()], self.matching.max_shift);
            let c = self.params.candidates.max(4 * k);
            self.prefilter(&sk, scope, c)
        } else {
            match scope {
                Some(s) => s.to_vec(),
                None => (0..self.keys.len() as u32)
                    .filter(|&s| self.keys[s as usize].is_some())
                    .collect(),
            }
        };
        let prep = ProbePrep::new(
            lay,
            &packed,
            codes,
            self.matching.max_shift,
            self.matching.reference_bits,
        );
        Ok(self.rank(&prep, &slots, k))
    }

    /// First stage: the `c` templates with the smallest translated-sketch distance, ties by
    /// slot (deterministic whatever the threading).
    fn prefilter(&self, probe: &[Sketch], scope: Option<&[u32]>, c: usize) -> Vec<u32> {
        let total = scope.map_or(self.keys.len(), |s| s.len());
        let blocks = total.div_ceil(LANES);
        let slot_at = |i: usize| -> u32 {
            match scope {
                Some(s) => s[i],
                None => i as u32,
            }
        };
        let kernel = self.kernel;
        let heap = (0..blocks)
            .into_par_iter()
            .with_min_len(64)
            .fold(
                || BinaryHeap::with_capacity(c + 1),
                |mut heap: BinaryHeap<(u32, u32)>, b| {
                    let mut block: SketchBlock = [[0u32; LANES]; SKETCH_WORDS];
                    let mut slots = [u32::MAX; LANES];
                    for l in 0..LANES {
                        let i = b * LANES + l;
                        if i >= total {
                            break;
                        }
                        let s = slot_at(i);
                        slots[l] = s;
                        let sk = &self.sketches[s as usize / CHUNK_SLOTS][s as usize % CHUNK_SLOTS];
                        for w in 0..SKETCH_WORDS {
                            block[w][l] = sk[w];
                        }
                    }
                    let d = kernel::sketch_block(kernel, probe, &block);
                    for l in 0..LANES {
                        let s = slots[l];
                        if s == u32::MAX {
                            continue;
                        }
                        let item = (d[l], s);
                        if heap.len() < c || heap.peek().is_some_and(|top| item < *top) {
                            if self.keys[s as usize].is_none() {
                                continue;
                            }
                            heap.push(item);
                            if heap.len() > c {
                                heap.pop();
                            }
                        }
                    }
                    heap
                },
            )
            .reduce(BinaryHeap::new, |mut a, b| {
                for item in b {
                    a.push(item);
                    if a.len() > c {
                        a.pop();
                    }
                }
                a
            });
        heap.into_iter().map(|(_, s)| s).collect()
    }

    /// Second stage: exact scores of `slots`, best per person, top `k`.
    fn rank(&self, prep: &ProbePrep, slots: &[u32], k: usize) -> Vec<Candidate> {
        let kernel = self.kernel;
        let tcodes = self.layout.codes();
        let scored: Vec<(u32, f32)> = slots
            .par_iter()
            .with_min_len(8)
            .filter(|&&s| (s as usize) < self.keys.len() && self.keys[s as usize].is_some())
            .map(|&s| {
                (
                    s,
                    kernel::best_score(kernel, prep, self.slot_words(s as usize), tcodes),
                )
            })
            .collect();
        let mut best: HashMap<u64, (f32, Key)> = HashMap::new();
        for (s, score) in scored {
            let Some(key) = self.keys[s as usize] else {
                continue;
            };
            best.entry(key.person)
                .and_modify(|e| {
                    if score > e.0 || (score == e.0 && key < e.1) {
                        *e = (score, key);
                    }
                })
                .or_insert((score, key));
        }
        let mut out: Vec<Candidate> = best
            .into_iter()
            .map(|(person, (score, key))| Candidate { person, score, key })
            .collect();
        out.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.person.cmp(&b.person)));
        out.truncate(k);
        out
    }
}
