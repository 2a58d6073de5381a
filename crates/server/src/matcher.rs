//! The 1:N matcher behind identification, joining and the enrollment duplicate check.
//!
//! [`Matcher`] is deliberately narrow: add and remove a person's templates, admit a person to
//! a scope (a business: the persons it may identify), identify in a scope or among everyone.
//! [`GalleryMatcher`] implements it over `openpalm_gallery::Gallery` (packed primary codes,
//! two-stage search whose returned scores are exactly `Engine::score`), keeping one resolved
//! `gallery::Scope` per business so that a search costs in proportion to that business's
//! members. The brute-force reference (every template scored with `Engine::score`) lives in
//! this module's tests, which check the gallery against it.

use openpalm_domain::ids::HandSide;
use openpalm_engine::{MatchConfig, Template};
use openpalm_gallery::{Gallery, GalleryError, Hand, Key, Layout};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// A person's best score against a probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub person: u64,
    pub score: f32,
}

/// Why the matcher refused a template or a probe (another algorithm or code geometry).
#[derive(Debug, thiserror::Error)]
#[error("matcher: {0}")]
pub struct MatcherError(#[from] GalleryError);

/// The `k` best candidates for `probe` (in `scope`, or the whole gallery), searched on the
/// blocking pool: a scan of a large gallery must not hold an async thread, where it would
/// stall every other request on it.
pub async fn search(
    state: &crate::state::AppState,
    probe: Template,
    scope: Option<String>,
    k: usize,
) -> Result<Vec<Candidate>, crate::problem::ApiError> {
    use crate::problem::ApiError;
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        st.matcher
            .read()
            .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?
            .identify(&probe, scope.as_deref(), k)
            .map_err(|e| ApiError::internal("matcher", e))
    })
    .await
    .map_err(|e| ApiError::internal("search task", e))?
}

/// In-memory 1:N search over decrypted templates, keyed by the person's sequence number.
pub trait Matcher: Send + Sync {
    /// Add templates of `person` (appending to any they already have).
    fn add(&mut self, person: u64, templates: Vec<(HandSide, Template)>) -> Result<(), MatcherError>;
    /// Drop every template of `person`, and the person from every scope.
    fn remove(&mut self, person: u64);
    /// Let `scope` (a business ID) identify `person`.
    fn admit(&mut self, scope: &str, person: u64);
    /// Take a person out of one scope (a business they left); their templates stay.
    fn dismiss(&mut self, scope: &str, person: u64);
    /// The `k` best persons by their best template score, descending; only persons admitted
    /// to `scope` when given (none for a scope nobody was admitted to).
    fn identify(
        &self,
        probe: &Template,
        scope: Option<&str>,
        k: usize,
    ) -> Result<Vec<Candidate>, MatcherError>;
    /// Like [`Matcher::identify`] in `scope`, cheaper and less thorough: for a search whose
    /// miss costs only the reason given to a refused person (never an acceptance). One look
    /// of the gallery's per-person scope (`Gallery::scope_per_person`: one sketch per
    /// person, the probe's primary pose; every template of the persons kept scored
    /// exactly), so that a palm nobody enrolled costs one scan of `persons` sketches instead
    /// of two scans of `templates x poses`.
    fn identify_coarse(
        &self,
        probe: &Template,
        scope: &str,
        k: usize,
    ) -> Result<Vec<Candidate>, MatcherError>;
    /// Number of templates held.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hand(side: HandSide) -> Hand {
    match side {
        HandSide::Left => Hand::Left,
        HandSide::Right => Hand::Right,
    }
}

/// One business's persons and, once searched, their resolved gallery scope.
#[derive(Default)]
struct ScopeEntry {
    persons: HashSet<u64>,
    /// Resolved on the first search after a change of members or of the gallery, then
    /// shared: searches of one scope (every gate of an event) run side by side, holding the
    /// lock only to clone the `Arc`.
    resolved: RwLock<Option<Arc<openpalm_gallery::Scope>>>,
    /// The same persons as a per-person scope ([`Matcher::identify_coarse`]), resolved on
    /// its first use the same way (one sketch and one slot per person: 52 bytes each).
    per_person: RwLock<Option<Arc<openpalm_gallery::Scope>>>,
}

impl ScopeEntry {
    /// Forget both resolved scopes (members changed).
    fn invalidate(&mut self) {
        *self.resolved.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        *self.per_person.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// [`Matcher`] over `openpalm_gallery::Gallery`.
pub struct GalleryMatcher {
    gallery: Gallery,
    /// Each person's keys (hand, sample number).
    keys: HashMap<u64, Vec<Key>>,
    scopes: HashMap<String, ScopeEntry>,
}

impl std::fmt::Debug for GalleryMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GalleryMatcher")
            .field("templates", &self.gallery.len())
            .field("persons", &self.keys.len())
            .field("scopes", &self.scopes.len())
            .finish()
    }
}

impl GalleryMatcher {
    /// An empty matcher for the codes of `Engine::default()`, scored with `matching`.
    pub fn new(matching: MatchConfig) -> Result<GalleryMatcher, MatcherError> {
        Ok(GalleryMatcher {
            gallery: Gallery::new(Layout::ENGINE_DEFAULT, matching)?,
            keys: HashMap::new(),
            scopes: HashMap::new(),
        })
    }

    /// The gallery (for sizes and memory figures).
    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// Persons admitted to `scope`.
    pub fn scope_len(&self, scope: &str) -> usize {
        self.scopes.get(scope).map_or(0, |s| s.persons.len())
    }
}

impl Matcher for GalleryMatcher {
    fn add(&mut self, person: u64, templates: Vec<(HandSide, Template)>) -> Result<(), MatcherError> {
        let mut added = Vec::with_capacity(templates.len());
        let first = self
            .keys
            .get(&person)
            .map_or(0, |k| k.iter().map(|k| k.sample + 1).max().unwrap_or(0));
        for (sample, (side, t)) in (first..).zip(&templates) {
            let key = Key::new(person, hand(*side), sample);
            if let Err(e) = self.gallery.add(key, t) {
                // All or none: take back what this call added.
                for k in &added {
                    let _ = self.gallery.remove(k);
                }
                return Err(e.into());
            }
            added.push(key);
        }
        self.keys.entry(person).or_default().extend(added);
        Ok(())
    }

    fn remove(&mut self, person: u64) {
        for k in self.keys.remove(&person).unwrap_or_default() {
            let _ = self.gallery.remove(&k);
        }
        for s in self.scopes.values_mut() {
            if s.persons.remove(&person) {
                s.invalidate();
            }
        }
    }

    fn admit(&mut self, scope: &str, person: u64) {
        let s = self.scopes.entry(scope.to_string()).or_default();
        if s.persons.insert(person) {
            s.invalidate();
        }
    }

    fn dismiss(&mut self, scope: &str, person: u64) {
        if let Some(s) = self.scopes.get_mut(scope) {
            if s.persons.remove(&person) {
                s.invalidate();
            }
        }
    }

    fn identify(
        &self,
        probe: &Template,
        scope: Option<&str>,
        k: usize,
    ) -> Result<Vec<Candidate>, MatcherError> {
        let found = match scope {
            None => self.gallery.identify(probe, k)?,
            Some(name) => match self.resolved(name) {
                Some(s) => self.gallery.identify_within(&s, probe, k)?,
                None => return Ok(Vec::new()),
            },
        };
        Ok(candidates(found))
    }

    fn identify_coarse(
        &self,
        probe: &Template,
        scope: &str,
        k: usize,
    ) -> Result<Vec<Candidate>, MatcherError> {
        let found = match self.resolved_as(scope, true) {
            Some(s) => self.gallery.identify_within_first_look(&s, probe, k)?,
            None => return Ok(Vec::new()),
        };
        Ok(candidates(found))
    }

    fn len(&self) -> usize {
        self.gallery.len()
    }
}

/// The gallery's candidates as the matcher answers them.
fn candidates(found: Vec<openpalm_gallery::Candidate>) -> Vec<Candidate> {
    found
        .into_iter()
        .map(|c| Candidate {
            person: c.person,
            score: c.score,
        })
        .collect()
}

impl GalleryMatcher {
    /// The resolved gallery scope of `name`, current with the gallery (resolved again under
    /// the scope's write lock only after a change); `None` for a scope nobody was admitted to.
    fn resolved(&self, name: &str) -> Option<Arc<openpalm_gallery::Scope>> {
        self.resolved_as(name, false)
    }

    /// [`GalleryMatcher::resolved`], or its per-person form.
    fn resolved_as(&self, name: &str, per_person: bool) -> Option<Arc<openpalm_gallery::Scope>> {
        let entry = self.scopes.get(name)?;
        let slot = if per_person {
            &entry.per_person
        } else {
            &entry.resolved
        };
        let current = slot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|s| self.gallery.is_current(s))
            .cloned();
        if let Some(s) = current {
            return Some(s);
        }
        let mut w = slot.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = w.as_ref().filter(|s| self.gallery.is_current(s)) {
            // Another search resolved it meanwhile.
            return Some(s.clone());
        }
        let persons = entry.persons.iter().copied();
        let s = Arc::new(if per_person {
            self.gallery.scope_per_person(persons)
        } else {
            self.gallery.scope(persons)
        });
        *w = Some(s.clone());
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpalm_engine::Engine;
    use openpalm_gallery::synthetic::{genuine_probe, indexed_template};
    use rand::SeedableRng;

    /// The exact reference: every template of the scope scored with `Engine::score`.
    fn brute_force(
        engine: &Engine,
        enrolled: &[(u64, Template)],
        probe: &Template,
        scope: Option<&HashSet<u64>>,
        k: usize,
    ) -> Vec<Candidate> {
        let mut best: HashMap<u64, f32> = HashMap::new();
        for (p, t) in enrolled {
            if scope.is_some_and(|s| !s.contains(p)) {
                continue;
            }
            let s = engine.score(probe, t);
            let e = best.entry(*p).or_insert(f32::NEG_INFINITY);
            *e = e.max(s);
        }
        let mut v: Vec<Candidate> = best
            .into_iter()
            .map(|(person, score)| Candidate { person, score })
            .collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.person.cmp(&b.person)));
        v.truncate(k);
        v
    }

    #[test]
    fn gallery_matcher_equals_brute_force_in_and_out_of_scopes() {
        let engine = Engine::default();
        let layout = Layout::ENGINE_DEFAULT;
        let mut m = GalleryMatcher::new(engine.config().matching.clone()).unwrap();
        let mut enrolled = Vec::new();
        // 60 persons, 3 templates each (under the gallery's exhaustive-search size, so the
        // gallery's answer must be exactly the brute-force one).
        for p in 0..60u64 {
            let ts: Vec<Template> = (0..3).map(|i| indexed_template(7, p * 3 + i, &layout)).collect();
            enrolled.extend(ts.iter().map(|t| (p, t.clone())));
            m.add(p, ts.into_iter().map(|t| (HandSide::Left, t)).collect())
                .unwrap();
            m.admit(if p % 2 == 0 { "biz_even" } else { "biz_odd" }, p);
        }
        assert_eq!(m.len(), 180);
        let even: HashSet<u64> = (0..60).filter(|p| p % 2 == 0).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for target in [0u64, 7, 31, 58] {
            let probe = genuine_probe(&mut rng, &enrolled[(target * 3 + 1) as usize].1);
            let all = m.identify(&probe, None, 5).unwrap();
            assert_eq!(all, brute_force(&engine, &enrolled, &probe, None, 5));
            assert_eq!(all[0].person, target);
            let scoped = m.identify(&probe, Some("biz_even"), 5).unwrap();
            assert_eq!(scoped, brute_force(&engine, &enrolled, &probe, Some(&even), 5));
            assert!(scoped.iter().all(|c| c.person % 2 == 0));
            assert_eq!(m.identify_coarse(&probe, "biz_even", 5).unwrap(), scoped);
            assert_eq!(scoped[0].person == target, target % 2 == 0);
        }
        assert!(m
            .identify(&enrolled[0].1, Some("biz_nobody"), 5)
            .unwrap()
            .is_empty());

        // Removal drops the person everywhere; a second add appends new samples.
        m.remove(0);
        assert_eq!(m.len(), 177);
        let probe = genuine_probe(&mut rng, &enrolled[0].1);
        assert!(m
            .identify(&probe, None, 60)
            .unwrap()
            .iter()
            .all(|c| c.person != 0));
        assert!(m
            .identify(&probe, Some("biz_even"), 60)
            .unwrap()
            .iter()
            .all(|c| c.person != 0));
        m.add(2, vec![(HandSide::Right, indexed_template(7, 999, &layout))])
            .unwrap();
        assert_eq!(m.len(), 178);
        assert_eq!(m.scope_len("biz_even"), 29);
    }

    #[test]
    fn a_foreign_template_is_refused_whole() {
        let mut m = GalleryMatcher::new(MatchConfig::default()).unwrap();
        let good = indexed_template(1, 0, &Layout::ENGINE_DEFAULT);
        let mut bad = good.clone();
        bad.algorithm = good.algorithm.wrapping_add(1);
        assert!(m
            .add(1, vec![(HandSide::Left, good.clone()), (HandSide::Left, bad)])
            .is_err());
        assert_eq!(m.len(), 0, "nothing of the refused call stays");
        m.add(1, vec![(HandSide::Left, good)]).unwrap();
        assert_eq!(m.len(), 1);
    }
}
