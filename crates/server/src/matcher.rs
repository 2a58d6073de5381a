//! The 1:N matcher behind identification and the enrollment duplicate check.
//!
//! [`Matcher`] is deliberately narrow (add, remove, identify in a scope) so that the
//! `openpalm-gallery` crate (packed arena, SIMD two-stage search; in progress) can replace
//! [`BruteForceMatcher`], which scores every enrolled template with `Engine::score`. Brute
//! force is exact and fine for small galleries; it is not the 100,000-person path.

use openpalm_engine::{Engine, Template};
use std::collections::{HashMap, HashSet};

/// A person's best score against a probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub person: u64,
    pub score: f32,
}

/// In-memory 1:N search over decrypted templates, keyed by the person's sequence number.
pub trait Matcher: Send + Sync {
    /// Add templates of `person` (appending to any they already have).
    fn add(&mut self, person: u64, templates: Vec<Template>);
    /// Drop every template of `person`.
    fn remove(&mut self, person: u64);
    /// The `k` best persons by their best template score, descending; only persons in
    /// `scope` when given.
    fn identify(&self, probe: &Template, scope: Option<&HashSet<u64>>, k: usize) -> Vec<Candidate>;
    /// Number of templates held.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Exact search: every template scored with [`Engine::score`].
#[derive(Debug, Default)]
pub struct BruteForceMatcher {
    engine: Engine,
    entries: Vec<(u64, Template)>,
}

impl BruteForceMatcher {
    pub fn new(engine: Engine) -> Self {
        BruteForceMatcher {
            engine,
            entries: Vec::new(),
        }
    }
}

impl Matcher for BruteForceMatcher {
    fn add(&mut self, person: u64, templates: Vec<Template>) {
        self.entries.extend(templates.into_iter().map(|t| (person, t)));
    }

    fn remove(&mut self, person: u64) {
        self.entries.retain(|(p, _)| *p != person);
    }

    fn identify(&self, probe: &Template, scope: Option<&HashSet<u64>>, k: usize) -> Vec<Candidate> {
        let mut best: HashMap<u64, f32> = HashMap::new();
        for (p, t) in &self.entries {
            if scope.is_some_and(|s| !s.contains(p)) {
                continue;
            }
            let s = self.engine.score(probe, t);
            let e = best.entry(*p).or_insert(f32::NEG_INFINITY);
            if s > *e {
                *e = s;
            }
        }
        let mut v: Vec<Candidate> = best
            .into_iter()
            .map(|(person, score)| Candidate { person, score })
            .collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.person.cmp(&b.person)));
        v.truncate(k);
        v
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}
