//! The in-memory gallery and 1:N identification.

use crate::layout::{code_words, Key, Layout};
use crate::sketch::{self, ProbeSketch};
use crate::GalleryError;
use openpalm_engine::matcher::{search_prepared, CodeView, PackedCode, PreparedProbe};
use openpalm_engine::{MatchConfig, Template};
use rayon::prelude::*;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per storage chunk: storage grows a chunk at a time, so it never holds more than one
/// chunk of unused room and never copies on growth.
pub const CHUNK_SLOTS: usize = 4096;

/// End of a person's slot list.
const NIL: u32 = u32::MAX;

static NEXT_GALLERY_ID: AtomicU64 = AtomicU64::new(1);

/// How [`Gallery::identify`] searches.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchParams {
    /// The first stage hands at least this many templates to the exact stage...
    pub min_candidates: usize,
    /// ...and at least this many per million templates searched (the impostors that can
    /// outrank a genuine template in the first stage grow with the gallery). At least `4 * k`
    /// are always kept.
    pub candidates_per_million: usize,
    /// Searches over at most this many templates skip the first stage and score every
    /// template exactly.
    pub exhaustive_up_to: usize,
    /// A second look for probes the first look does not match: when no template among the
    /// first [`SearchParams::candidates`] scores at least this, the templates next in the
    /// first stage's order are scored too, up to [`SearchParams::extended_candidates`]. A
    /// probe that matches is answered after the first look; one that does not (a person not
    /// enrolled, or a genuine probe whose template the sketch ranked low) is searched
    /// deeper. `None`: one look only.
    pub extend_below: Option<f32>,
    /// Templates per million searched that the second look reaches.
    pub extended_per_million: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            min_candidates: 32,
            candidates_per_million: 256,
            exhaustive_up_to: 256,
            extend_below: Some(openpalm_engine::IDENTIFICATION_THRESHOLD),
            extended_per_million: 8192,
        }
    }
}

impl SearchParams {
    /// Templates kept by the first stage when `n` are searched for the top `k`.
    pub fn candidates(&self, n: usize, k: usize) -> usize {
        let per = (n as u128 * self.candidates_per_million as u128).div_ceil(1_000_000) as usize;
        self.min_candidates.max(per).max(k.saturating_mul(4))
    }

    /// Templates the second look reaches (at least [`SearchParams::candidates`]; equal when
    /// there is no second look).
    pub fn extended_candidates(&self, n: usize, k: usize) -> usize {
        let first = self.candidates(n, k);
        if self.extend_below.is_none() {
            return first;
        }
        let per = (n as u128 * self.extended_per_million as u128).div_ceil(1_000_000) as usize;
        first.max(per)
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
    /// The slots' first-stage sketches, contiguous, in slot order.
    sketches: Vec<u64>,
    gallery_id: u64,
    epoch: u64,
    /// A per-person scope ([`Gallery::scope_per_person`]): one sketch per person.
    per_person: bool,
}

impl Scope {
    pub fn persons(&self) -> &[u64] {
        &self.persons
    }
    /// Templates in the scope when it was last resolved (for a per-person scope: the
    /// persons' latest templates, one each).
    pub fn templates(&self) -> usize {
        self.slots.len()
    }
    /// Whether the first stage sees one template per person ([`Gallery::scope_per_person`]).
    pub fn is_per_person(&self) -> bool {
        self.per_person
    }
}

/// One storage chunk read back from a snapshot (see [`Gallery::from_chunks`]).
pub(crate) struct LoadedChunk {
    pub keys: Vec<Key>,
    /// `CHUNK_SLOTS * code_words` words, slots past `keys.len()` zero.
    pub codes: Box<[u64]>,
    /// `CHUNK_SLOTS * sketch_words` words, slots past `keys.len()` zero.
    pub sketches: Box<[u64]>,
}

/// Enrolled templates keyed by (person, hand, sample): each template's packed primary code in
/// chunked contiguous storage, with its first-stage sketch beside it.
pub struct Gallery {
    layout: Layout,
    matching: MatchConfig,
    algorithm: u16,
    params: SearchParams,
    code_words: usize,
    sketch_words: usize,
    /// Per chunk: `CHUNK_SLOTS * code_words` words.
    codes: Vec<Box<[u64]>>,
    /// Per chunk: `CHUNK_SLOTS * sketch_words` words.
    sketches: Vec<Box<[u64]>>,
    /// Per slot: its key (`None`: free).
    keys: Vec<Option<Key>>,
    /// Per slot: the next slot of the same person (`NIL` ends the list).
    next: Vec<u32>,
    /// Per person: the first slot of their list.
    heads: HashMap<u64, u32>,
    free: Vec<u32>,
    len: usize,
    id: u64,
    epoch: u64,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("layout", &self.layout)
            .field("templates", &self.len)
            .finish()
    }
}

impl Gallery {
    /// An empty gallery for codes of `layout` made by the engine's current algorithm, scored
    /// with `matching` (use `MatchConfig::default()` to agree with `Engine::default()`).
    pub fn new(layout: Layout, matching: MatchConfig) -> Result<Gallery, GalleryError> {
        layout.validate()?;
        if matching.max_shift >= layout.grid {
            return Err(GalleryError::UnsupportedLayout(layout));
        }
        Ok(Gallery {
            layout,
            matching,
            algorithm: openpalm_engine::template::ALGORITHM_ID,
            params: SearchParams::default(),
            code_words: layout.code_words(),
            sketch_words: sketch::geometry(&layout).1,
            codes: Vec::new(),
            sketches: Vec::new(),
            keys: Vec::new(),
            next: Vec::new(),
            heads: HashMap::new(),
            free: Vec::new(),
            len: 0,
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
    pub fn search_params(&self) -> &SearchParams {
        &self.params
    }
    pub fn set_search_params(&mut self, params: SearchParams) {
        self.params = params;
    }

    /// Enrolled templates.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Distinct enrolled persons.
    pub fn persons(&self) -> usize {
        self.heads.len()
    }
    pub fn contains(&self, key: &Key) -> bool {
        self.slot_of(key).is_some()
    }
    /// Every key, sorted.
    pub fn keys(&self) -> Vec<Key> {
        let mut k: Vec<Key> = self.keys.iter().flatten().copied().collect();
        k.sort_unstable();
        k
    }

    fn person_slots(&self, person: u64) -> impl Iterator<Item = u32> + '_ {
        let mut s = self.heads.get(&person).copied().unwrap_or(NIL);
        std::iter::from_fn(move || {
            if s == NIL {
                return None;
            }
            let cur = s;
            s = self.next[cur as usize];
            Some(cur)
        })
    }

    /// Every template slot of `persons`.
    fn all_slots(&self, persons: impl Iterator<Item = u64>) -> Vec<u32> {
        persons.flat_map(|p| self.person_slots(p)).collect()
    }

    fn slot_of(&self, key: &Key) -> Option<u32> {
        self.person_slots(key.person)
            .find(|&s| self.keys[s as usize] == Some(*key))
    }

    /// The stored code of an enrolled template: its primary code as the engine's matcher packs
    /// it (the template's poses are not stored; identification never uses them).
    pub fn get(&self, key: &Key) -> Option<PackedCode> {
        let slot = self.slot_of(key)? as usize;
        let w = self.slot_code(slot);
        let n = self.code_words / 2;
        Some(PackedCode {
            grid: self.layout.grid,
            lanes: self.layout.lanes(),
            bits: w[..n].to_vec(),
            mask: w[n..].to_vec(),
        })
    }

    /// Validate a template for enrolment and pack its primary code.
    pub(crate) fn prepare(&self, t: &Template) -> Result<PackedCode, GalleryError> {
        if t.algorithm != self.algorithm {
            return Err(GalleryError::Algorithm {
                expected: self.algorithm,
                found: t.algorithm,
            });
        }
        self.layout.check_template(t)?;
        self.layout.pack(&t.code)
    }

    /// Enrol a new template; refused if the key is taken.
    pub fn add(&mut self, key: Key, t: &Template) -> Result<(), GalleryError> {
        let code = self.check_add(&key, t)?;
        self.put(key, &code);
        Ok(())
    }

    /// Overwrite an enrolled template; refused if the key is not enrolled.
    pub fn replace(&mut self, key: Key, t: &Template) -> Result<(), GalleryError> {
        let code = self.check_replace(&key, t)?;
        self.put(key, &code);
        Ok(())
    }

    /// Remove an enrolled template; refused if the key is not enrolled.
    pub fn remove(&mut self, key: &Key) -> Result<(), GalleryError> {
        let slot = self.slot_of(key).ok_or(GalleryError::UnknownKey(*key))?;
        // Unlink from the person's list.
        let after = self.next[slot as usize];
        if self.heads.get(&key.person) == Some(&slot) {
            if after == NIL {
                self.heads.remove(&key.person);
            } else {
                self.heads.insert(key.person, after);
            }
        } else {
            let prev = self
                .person_slots(key.person)
                .find(|&s| self.next[s as usize] == slot);
            if let Some(prev) = prev {
                self.next[prev as usize] = after;
            }
        }
        let s = slot as usize;
        self.keys[s] = None;
        self.next[s] = NIL;
        self.slot_code_mut(s).fill(0);
        let sw = self.sketch_words;
        self.sketches[s / CHUNK_SLOTS][(s % CHUNK_SLOTS) * sw..(s % CHUNK_SLOTS + 1) * sw].fill(0);
        self.free.push(slot);
        self.len -= 1;
        self.epoch += 1;
        Ok(())
    }

    pub(crate) fn check_add(&self, key: &Key, t: &Template) -> Result<PackedCode, GalleryError> {
        if self.contains(key) {
            return Err(GalleryError::DuplicateKey(*key));
        }
        self.prepare(t)
    }

    pub(crate) fn check_replace(&self, key: &Key, t: &Template) -> Result<PackedCode, GalleryError> {
        if !self.contains(key) {
            return Err(GalleryError::UnknownKey(*key));
        }
        self.prepare(t)
    }

    /// Insert or overwrite a packed code already checked against the layout.
    pub(crate) fn put(&mut self, key: Key, code: &PackedCode) {
        let slot = match self.slot_of(&key) {
            Some(s) => s as usize,
            None => {
                let s = self.alloc_slot();
                self.keys[s] = Some(key);
                self.next[s] = self.heads.insert(key.person, s as u32).unwrap_or(NIL);
                self.len += 1;
                s
            }
        };
        code_words(code, self.slot_code_mut(slot));
        let sw = self.sketch_words;
        let dst =
            &mut self.sketches[slot / CHUNK_SLOTS][(slot % CHUNK_SLOTS) * sw..(slot % CHUNK_SLOTS + 1) * sw];
        sketch::reference_sketch(&self.layout, code, dst);
        self.epoch += 1;
    }

    fn alloc_slot(&mut self) -> usize {
        if let Some(s) = self.free.pop() {
            return s as usize;
        }
        let s = self.keys.len();
        if s == self.codes.len() * CHUNK_SLOTS {
            self.codes
                .push(vec![0u64; CHUNK_SLOTS * self.code_words].into_boxed_slice());
            self.sketches
                .push(vec![0u64; CHUNK_SLOTS * self.sketch_words].into_boxed_slice());
            self.keys.reserve_exact(CHUNK_SLOTS);
            self.next.reserve_exact(CHUNK_SLOTS);
        }
        self.keys.push(None);
        self.next.push(NIL);
        s
    }

    /// Words per stored sketch.
    pub(crate) fn sketch_words(&self) -> usize {
        self.sketch_words
    }

    /// Every live slot with its key, in key order.
    pub(crate) fn slots_by_key(&self) -> Vec<(Key, u32)> {
        let mut v: Vec<(Key, u32)> = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(s, k)| Some(((*k)?, s as u32)))
            .collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn slot_sketch(&self, slot: usize) -> &[u64] {
        let sw = self.sketch_words;
        let off = (slot % CHUNK_SLOTS) * sw;
        &self.sketches[slot / CHUNK_SLOTS][off..off + sw]
    }

    /// A gallery from whole storage chunks read back from a snapshot: chunk `i` holds slots
    /// `i * CHUNK_SLOTS ..`, `keys.len()` of them, every chunk but the last full. The caller
    /// has checked the codes against the layout, the keys (strictly ascending) and the
    /// sketches (made by this build's [`sketch::reference_sketch`]).
    pub(crate) fn from_chunks(
        layout: Layout,
        matching: MatchConfig,
        chunks: Vec<LoadedChunk>,
    ) -> Result<Gallery, GalleryError> {
        let mut g = Gallery::new(layout, matching)?;
        let total: usize = chunks.iter().map(|c| c.keys.len()).sum();
        g.keys.reserve_exact(chunks.len() * CHUNK_SLOTS);
        g.next.reserve_exact(chunks.len() * CHUNK_SLOTS);
        g.heads.reserve(total);
        for c in chunks {
            debug_assert_eq!(c.codes.len(), CHUNK_SLOTS * g.code_words);
            debug_assert_eq!(c.sketches.len(), CHUNK_SLOTS * g.sketch_words);
            for key in c.keys {
                let s = g.keys.len() as u32;
                g.keys.push(Some(key));
                g.next.push(g.heads.insert(key.person, s).unwrap_or(NIL));
            }
            g.codes.push(c.codes);
            g.sketches.push(c.sketches);
        }
        g.len = total;
        Ok(g)
    }

    /// Recompute every live slot's sketch from its code (a snapshot made by another sketch
    /// version).
    pub(crate) fn rebuild_sketches(&mut self) {
        let (layout, cw, sw, keys) = (self.layout, self.code_words, self.sketch_words, &self.keys);
        let n = cw / 2;
        self.sketches
            .par_iter_mut()
            .zip(self.codes.par_iter())
            .enumerate()
            .for_each(|(chunk, (sketches, codes))| {
                for i in 0..CHUNK_SLOTS {
                    let live = keys.get(chunk * CHUNK_SLOTS + i).is_some_and(|k| k.is_some());
                    let out = &mut sketches[i * sw..(i + 1) * sw];
                    if !live {
                        out.fill(0);
                        continue;
                    }
                    let w = &codes[i * cw..(i + 1) * cw];
                    let code = PackedCode {
                        grid: layout.grid,
                        lanes: layout.lanes(),
                        bits: w[..n].to_vec(),
                        mask: w[n..].to_vec(),
                    };
                    sketch::reference_sketch(&layout, &code, out);
                }
            });
    }

    pub(crate) fn slot_code(&self, slot: usize) -> &[u64] {
        let w = self.code_words;
        let off = (slot % CHUNK_SLOTS) * w;
        &self.codes[slot / CHUNK_SLOTS][off..off + w]
    }

    fn slot_code_mut(&mut self, slot: usize) -> &mut [u64] {
        let w = self.code_words;
        let off = (slot % CHUNK_SLOTS) * w;
        &mut self.codes[slot / CHUNK_SLOTS][off..off + w]
    }

    /// Bytes of the stored codes alone (`len * layout.raw_bytes()`).
    pub fn raw_template_bytes(&self) -> usize {
        self.len * self.layout.raw_bytes()
    }

    /// Heap bytes the gallery holds (codes, sketches, keys, person lists; the hash table
    /// estimated from its capacity).
    pub fn memory_bytes(&self) -> usize {
        let codes = self.codes.len() * CHUNK_SLOTS * self.code_words * 8;
        let sketches = self.sketches.len() * CHUNK_SLOTS * self.sketch_words * 8;
        let keys = self.keys.capacity() * std::mem::size_of::<Option<Key>>();
        let next = self.next.capacity() * 4;
        let heads = self.heads.capacity() * (std::mem::size_of::<(u64, u32)>() + 1);
        let free = self.free.capacity() * 4;
        codes + sketches + keys + next + heads + free
    }

    /// Resolve a subset of persons (unknown persons are kept: they count once enrolled).
    pub fn scope(&self, persons: impl IntoIterator<Item = u64>) -> Scope {
        self.resolve(persons, false)
    }

    /// A cheaper scope for searches whose miss costs only a reason, never an acceptance
    /// (who a refused person is): the first stage ranks one template per person (the latest
    /// added) with the probe's primary pose only, and the exact stage scores every
    /// template of the persons it keeps. A first-look search of it scans `persons`
    /// sketches with one pose instead of `templates x poses`: at a million members with
    /// three templates each, 15 times fewer sketch distances. A person whose latest template
    /// the sketch ranks low is missed; use [`Gallery::scope`] wherever a miss matters.
    pub fn scope_per_person(&self, persons: impl IntoIterator<Item = u64>) -> Scope {
        self.resolve(persons, true)
    }

    fn resolve(&self, persons: impl IntoIterator<Item = u64>, per_person: bool) -> Scope {
        let mut p: Vec<u64> = persons.into_iter().collect();
        p.sort_unstable();
        p.dedup();
        let mut s = Scope {
            persons: p,
            slots: Vec::new(),
            sketches: Vec::new(),
            gallery_id: self.id,
            epoch: u64::MAX,
            per_person,
        };
        self.refresh(&mut s);
        s
    }

    fn refresh(&self, scope: &mut Scope) {
        if scope.gallery_id == self.id && scope.epoch == self.epoch {
            return;
        }
        scope.slots.clear();
        for &p in &scope.persons {
            if scope.per_person {
                scope.slots.extend(self.person_slots(p).take(1));
            } else {
                scope.slots.extend(self.person_slots(p));
            }
        }
        scope.slots.sort_unstable();
        let sw = self.sketch_words;
        scope.sketches.clear();
        for &s in &scope.slots {
            let (chunk, off) = (s as usize / CHUNK_SLOTS, s as usize % CHUNK_SLOTS);
            scope
                .sketches
                .extend_from_slice(&self.sketches[chunk][off * sw..(off + 1) * sw]);
        }
        scope.gallery_id = self.id;
        scope.epoch = self.epoch;
    }

    /// The top `k` persons for `probe`, by the engine's exact score. Searches of more than
    /// `exhaustive_up_to` templates run two stages (see the crate docs): every score returned
    /// is exact, but which persons make the list is only as good as the first stage.
    pub fn identify(&self, probe: &Template, k: usize) -> Result<Vec<Candidate>, GalleryError> {
        self.search(probe, k, None, false)
    }

    /// Like [`Gallery::identify`], scoring every enrolled template exactly: always identical
    /// to brute-force `Engine::score(probe, enrolled)` over the gallery.
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
        self.search(probe, k, Some(scope), false)
    }

    /// Whether `scope` was resolved against the gallery as it is now (no change since).
    pub fn is_current(&self, scope: &Scope) -> bool {
        scope.gallery_id == self.id && scope.epoch == self.epoch
    }

    /// [`Gallery::identify_in`] on a shared scope: many searches of one scope run at once.
    /// A scope resolved before the gallery last changed is resolved again for this search
    /// only (keep it current with [`Gallery::is_current`] and [`Gallery::scope`]).
    pub fn identify_within(
        &self,
        scope: &Scope,
        probe: &Template,
        k: usize,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.within(scope, probe, k, true)
    }

    /// [`Gallery::identify_within`] with the first look only (no second look for a probe
    /// that does not match): for a search whose miss costs only the reason given (who a
    /// refused person is), never a wrong acceptance. A probe of nobody enrolled costs one
    /// scan instead of two.
    pub fn identify_within_first_look(
        &self,
        scope: &Scope,
        probe: &Template,
        k: usize,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.within(scope, probe, k, false)
    }

    fn within(
        &self,
        scope: &Scope,
        probe: &Template,
        k: usize,
        second_look: bool,
    ) -> Result<Vec<Candidate>, GalleryError> {
        if self.is_current(scope) {
            self.search_looks(probe, k, Some(scope), false, second_look)
        } else {
            let mut fresh = scope.clone();
            self.refresh(&mut fresh);
            self.search_looks(probe, k, Some(&fresh), false, second_look)
        }
    }

    /// [`Gallery::identify_exact`] within a scope.
    pub fn identify_in_exact(
        &self,
        scope: &mut Scope,
        probe: &Template,
        k: usize,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.refresh(scope);
        self.search(probe, k, Some(scope), true)
    }

    fn search(
        &self,
        probe: &Template,
        k: usize,
        scope: Option<&Scope>,
        exact: bool,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.search_looks(probe, k, scope, exact, true)
    }

    fn search_looks(
        &self,
        probe: &Template,
        k: usize,
        scope: Option<&Scope>,
        exact: bool,
        second_look: bool,
    ) -> Result<Vec<Candidate>, GalleryError> {
        self.layout.check_probe(probe)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let codes = std::iter::once(&probe.code)
            .chain(&probe.rotated)
            .map(|c| self.layout.pack(c))
            .collect::<Result<Vec<PackedCode>, GalleryError>>()?;
        // Prepared once for every reference scored below (`check_probe` vouched for the
        // geometry, so preparing cannot fail on a probe that got here).
        let codes = PreparedProbe::new(codes, &self.matching)
            .map_err(|_| GalleryError::UnsupportedLayout(self.layout))?;
        let n = scope.map_or(self.len, |s| s.slots.len());
        if let Some(s) = scope.filter(|s| s.per_person && !exact && n > self.params.exhaustive_up_to) {
            // One look: persons ranked by their latest template, primary pose; every template
            // of the persons kept scored exactly.
            let sk = ProbeSketch::new(&self.layout, &codes.codes()[..1]);
            let head = self.prefilter(&sk, Some(s), self.params.candidates(n, k));
            let slots = self.all_slots(
                head.iter()
                    .filter_map(|&h| self.keys[h as usize])
                    .map(|k| k.person),
            );
            let scored = self.score_slots(&codes, slots.par_iter().copied());
            return Ok(self.rank(scored, k));
        }
        let scored = if !exact && n > self.params.exhaustive_up_to {
            let second_look = second_look && self.params.extend_below.is_some();
            let sk = ProbeSketch::new(&self.layout, codes.codes());
            let first = self.params.candidates(n, k);
            let head = self.prefilter(&sk, scope, first);
            let mut scored = self.score_slots(&codes, head.par_iter().copied());
            if let Some(bar) = self.params.extend_below.filter(|_| second_look) {
                let extended = self.params.extended_candidates(n, k);
                if extended > head.len() && scored.iter().all(|&(_, s)| s < bar) {
                    // The second look scans again for more: the first stage's order is total
                    // (distance, then slot), so its first `head.len()` are `head` itself.
                    // Keeping 8192 in the first scan for every probe made the common case,
                    // a probe that matches in the first look, 1.5x slower and no faster on
                    // two threads (heaps of thousands to build and merge).
                    let slots = self.prefilter(&sk, scope, extended);
                    let rest = &slots[head.len().min(slots.len())..];
                    scored.extend(self.score_slots(&codes, rest.par_iter().copied()));
                }
            }
            scored
        } else {
            match scope {
                Some(s) if s.per_person => {
                    let slots = self.all_slots(s.persons.iter().copied());
                    self.score_slots(&codes, slots.par_iter().copied())
                }
                Some(s) => self.score_slots(&codes, s.slots.par_iter().copied()),
                None => self.score_slots(
                    &codes,
                    (0..self.keys.len() as u32)
                        .into_par_iter()
                        .filter(|&s| self.keys[s as usize].is_some()),
                ),
            }
        };
        Ok(self.rank(scored, k))
    }

    /// First stage: the `c` templates with the smallest sketch distance, closest first, ties
    /// by slot (deterministic whatever the threading).
    fn prefilter(&self, probe: &ProbeSketch, scope: Option<&Scope>, c: usize) -> Vec<u32> {
        let sw = self.sketch_words;
        let live = |s: u32| self.keys[s as usize].is_some();
        let merge = |a: BinaryHeap<(u32, u32)>, b: BinaryHeap<(u32, u32)>| {
            let (mut a, b) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            for item in b {
                if a.len() < c || a.peek().is_some_and(|top| item < *top) {
                    a.push(item);
                    if a.len() > c {
                        a.pop();
                    }
                }
            }
            a
        };
        let heap = match scope {
            None => (0..self.sketches.len())
                .into_par_iter()
                .fold(BinaryHeap::new, |mut heap, chunk| {
                    let base = chunk * CHUNK_SLOTS;
                    let end = CHUNK_SLOTS.min(self.keys.len() - base);
                    let items = self.sketches[chunk][..end * sw]
                        .chunks_exact(sw)
                        .enumerate()
                        .map(|(i, s)| ((base + i) as u32, s));
                    sketch::scan(probe, items, live, &mut heap, c);
                    heap
                })
                .reduce(BinaryHeap::new, merge),
            // The scope's own contiguous copy of its sketches: its slots are scattered over the
            // gallery, and reading them in place costs a cache and TLB miss each.
            Some(scope) => scope
                .slots
                .par_chunks(1024)
                .zip(scope.sketches.par_chunks(1024 * sw))
                .fold(BinaryHeap::new, |mut heap, (slots, sketches)| {
                    let items = slots.iter().copied().zip(sketches.chunks_exact(sw));
                    sketch::scan(probe, items, live, &mut heap, c);
                    heap
                })
                .reduce(BinaryHeap::new, merge),
        };
        heap.into_sorted_vec().into_iter().map(|(_, s)| s).collect()
    }

    /// Exact scores of `slots` with the engine's matcher (`matcher::search`: the same function
    /// `Engine::score` calls, on the same packed codes).
    fn score_slots(
        &self,
        probe: &PreparedProbe,
        slots: impl ParallelIterator<Item = u32>,
    ) -> Vec<(u32, f32)> {
        let n = self.code_words / 2;
        let (grid, lanes) = (self.layout.grid, self.layout.lanes());
        slots
            .map(|s| {
                // Searched in place in the arena: no copy per reference.
                let w = self.slot_code(s as usize);
                let reference = CodeView {
                    grid,
                    lanes,
                    bits: &w[..n],
                    mask: &w[n..2 * n],
                };
                (s, search_prepared(probe, reference).0.score)
            })
            .collect()
    }

    /// Best per person, top `k` (score desc, person asc; smallest key among a person's equal
    /// best scores).
    fn rank(&self, scored: Vec<(u32, f32)>, k: usize) -> Vec<Candidate> {
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
