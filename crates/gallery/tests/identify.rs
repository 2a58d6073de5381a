//! identify == brute-force Engine::score (directional: probe poses against the enrolled primary
//! code), on random and synthetic galleries, exhaustive and two-stage.

use openpalm_engine::code::PalmCode;
use openpalm_engine::matcher::PackedCode;
use openpalm_engine::{Engine, MatchConfig, Template};
use openpalm_gallery::synthetic::{genuine_probe, random_template};
use openpalm_gallery::GalleryError;
use openpalm_gallery::{Candidate, Gallery, Hand, Key, Layout, SearchParams};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Brute force with the engine: best per person, score desc then person asc, smallest key
/// among a person's equal best scores.
fn brute(engine: &Engine, gallery: &[(Key, Template)], probe: &Template, k: usize) -> Vec<Candidate> {
    let mut best: HashMap<u64, (f32, Key)> = HashMap::new();
    for (key, t) in gallery {
        let s = engine.score(probe, t);
        let e = best.entry(key.person).or_insert((s, *key));
        if s > e.0 || (s == e.0 && *key < e.1) {
            *e = (s, *key);
        }
    }
    let mut v: Vec<Candidate> = best
        .into_iter()
        .map(|(person, (score, key))| Candidate { person, score, key })
        .collect();
    v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.person.cmp(&b.person)));
    v.truncate(k);
    v
}

fn same(a: &[Candidate], b: &[Candidate]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.person == y.person && x.key == y.key && x.score.to_bits() == y.score.to_bits())
}

/// A random code with mask density `density` (in 1/8ths), to reach small overlaps too.
fn code_with_density(rng: &mut ChaCha8Rng, layout: &Layout, density: u32) -> PalmCode {
    let rows = layout.rows();
    let full = (1u64 << layout.grid) - 1;
    PalmCode {
        grid: layout.grid,
        planes: layout.planes,
        bits: (0..rows).map(|_| rng.gen::<u64>() & full).collect(),
        mask: (0..rows)
            .map(|_| {
                (0..layout.grid)
                    .filter(|_| rng.gen_range(0..8) < density)
                    .fold(0u64, |m, x| m | (1 << x))
            })
            .collect(),
    }
}

fn random_gallery(seed: u64, n: usize, persons: u64, density: u32) -> (Vec<(Key, Template)>, Template) {
    let layout = Layout::ENGINE_DEFAULT;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut items = Vec::new();
    for i in 0..n {
        let mut t = random_template(&mut rng, &layout);
        t.code = code_with_density(&mut rng, &layout, density);
        let key = Key::new(
            rng.gen_range(0..persons),
            if i % 2 == 0 { Hand::Left } else { Hand::Right },
            i as u32,
        );
        items.push((key, t));
    }
    // Half the time a genuine probe of a member, otherwise an unrelated template.
    let probe = if seed & 1 == 0 && !items.is_empty() {
        let i = rng.gen_range(0..items.len());
        genuine_probe(&mut rng, &items[i].1)
    } else {
        random_template(&mut rng, &layout)
    };
    (items, probe)
}

fn build(items: &[(Key, Template)]) -> Gallery {
    let mut g = Gallery::new(Layout::ENGINE_DEFAULT, MatchConfig::default()).unwrap();
    for (k, t) in items {
        g.add(*k, t).unwrap();
    }
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn identify_equals_brute_force(seed in any::<u64>(), n in 0usize..20, persons in 1u64..8, density in 1u32..=8, k in 1usize..6) {
        let engine = Engine::default();
        let (items, probe) = random_gallery(seed, n, persons, density);
        // Keys drawn at random can repeat: keep the first.
        let mut seen = std::collections::HashSet::new();
        let items: Vec<_> = items.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
        let want = brute(&engine, &items, &probe, k);
        let mut g = build(&items);
        prop_assert!(same(&g.identify(&probe, k).unwrap(), &want), "identify");
        prop_assert!(same(&g.identify_exact(&probe, k).unwrap(), &want), "exact");
        // Two stages forced, first stage keeping everyone: still identical.
        g.set_search_params(SearchParams { min_candidates: 64, candidates_per_million: 0, exhaustive_up_to: 0, extend_below: None, extended_per_million: 0 });
        prop_assert!(same(&g.identify(&probe, k).unwrap(), &want), "staged");
        // Two stages keeping only 4k: every score returned is still the engine's.
        g.set_search_params(SearchParams { min_candidates: 0, candidates_per_million: 0, exhaustive_up_to: 0, extend_below: None, extended_per_million: 0 });
        for c in g.identify(&probe, k).unwrap() {
            let t = &items.iter().find(|(key, _)| *key == c.key).unwrap().1;
            prop_assert_eq!(engine.score(&probe, t).to_bits(), c.score.to_bits());
        }
        // A first look of 4k, a second look that always happens and reaches everyone:
        // identical again.
        g.set_search_params(SearchParams { min_candidates: 0, candidates_per_million: 0, exhaustive_up_to: 0, extend_below: Some(f32::INFINITY), extended_per_million: 1_000_000 });
        prop_assert!(same(&g.identify(&probe, k).unwrap(), &want), "second look");
        for (key, t) in &items {
            prop_assert_eq!(g.get(key), PackedCode::new(&t.code));
        }
    }
}

#[test]
fn removals_and_replacements_are_searched_as_brute_force_over_what_remains() {
    let engine = Engine::default();
    let (items, probe) = random_gallery(4, 40, 12, 7);
    let mut seen = std::collections::HashSet::new();
    let mut items: Vec<_> = items.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
    let mut g = build(&items);
    g.set_search_params(SearchParams {
        min_candidates: 1000,
        candidates_per_million: 0,
        exhaustive_up_to: 0,
        extend_below: None,
        extended_per_million: 0,
    });
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for step in 0..20 {
        let i = rng.gen_range(0..items.len());
        if step % 3 == 0 {
            let t = genuine_probe(&mut rng, &probe);
            let t = Template {
                rotated: t.rotated.clone(),
                ..t
            };
            g.replace(items[i].0, &t).unwrap();
            assert_eq!(g.get(&items[i].0), PackedCode::new(&t.code));
            items[i].1 = t;
        } else {
            let (k, _) = items.swap_remove(i);
            g.remove(&k).unwrap();
            assert!(g.remove(&k).is_err());
        }
        assert_eq!(g.len(), items.len());
        let want = brute(&engine, &items, &probe, 5);
        assert!(same(&g.identify(&probe, 5).unwrap(), &want), "step {step}");
        assert!(same(&g.identify_exact(&probe, 5).unwrap(), &want), "step {step}");
        if items.len() < 3 {
            break;
        }
    }
    // Freed slots are reused.
    let (k0, t0) = (Key::new(999, Hand::Left, 0), probe.clone());
    g.add(k0, &t0).unwrap();
    assert!(g.add(k0, &t0).is_err());
    assert_eq!(g.identify(&probe, 1).unwrap()[0].person, 999);
}

#[test]
fn two_stage_top1_equals_brute_force_on_a_synthetic_gallery() {
    // 3000 templates, 40 genuine probes and 10 impostors, default search parameters (staged).
    let layout = Layout::ENGINE_DEFAULT;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut g = Gallery::new(layout, MatchConfig::default()).unwrap();
    let mut items = Vec::new();
    for i in 0..3000u64 {
        let t = random_template(&mut rng, &layout);
        let key = Key::new(i / 2, Hand::Right, (i % 2) as u32);
        g.add(key, &t).unwrap();
        items.push((key, t));
    }
    let engine = Engine::default();
    for q in 0..50 {
        let (probe, truth) = if q < 40 {
            let (key, t) = &items[rng.gen_range(0..items.len())];
            (genuine_probe(&mut rng, t), Some(key.person))
        } else {
            (random_template(&mut rng, &layout), None)
        };
        let fast = g.identify(&probe, 3).unwrap();
        let exact = g.identify_exact(&probe, 3).unwrap();
        let policy = openpalm_gallery::DecisionPolicy::default();
        if truth.is_none() {
            // Impostors: the first stage does not rank them like the exact score (documented),
            // but the decision is the same: nobody reaches the threshold either way.
            assert!(matches!(
                policy.decide(&fast),
                openpalm_gallery::Decision::NoMatch { .. }
            ));
            assert!(matches!(
                policy.decide(&exact),
                openpalm_gallery::Decision::NoMatch { .. }
            ));
            continue;
        }
        assert_eq!(fast[0].person, exact[0].person, "probe {q}");
        assert_eq!(fast[0].score.to_bits(), exact[0].score.to_bits(), "probe {q}");
        assert!(matches!(
            policy.decide(&fast),
            openpalm_gallery::Decision::Match { .. }
        ));
        if let Some(p) = truth {
            assert_eq!(fast[0].person, p);
            let t = &items.iter().find(|(k, _)| *k == fast[0].key).unwrap().1;
            assert_eq!(engine.score(&probe, t).to_bits(), fast[0].score.to_bits());
        }
    }
}

#[test]
fn scoped_search_equals_brute_force_over_the_scope_and_follows_changes() {
    let engine = Engine::default();
    let (items, probe) = random_gallery(6, 400, 100, 7);
    let mut seen = std::collections::HashSet::new();
    let items: Vec<_> = items.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
    let mut g = build(&items);
    let members: Vec<u64> = (0..100).filter(|p| p % 3 == 0).collect();
    let mut scope = g.scope(members.iter().copied().chain([5000]));
    let inside: Vec<_> = items.iter().filter(|(k, _)| k.person % 3 == 0).cloned().collect();
    assert_eq!(scope.templates(), inside.len());
    let want = brute(&engine, &inside, &probe, 4);
    assert!(same(&g.identify_in_exact(&mut scope, &probe, 4).unwrap(), &want));
    g.set_search_params(SearchParams {
        min_candidates: 10_000,
        candidates_per_million: 0,
        exhaustive_up_to: 0,
        extend_below: None,
        extended_per_million: 0,
    });
    assert!(same(&g.identify_in(&mut scope, &probe, 4).unwrap(), &want));
    // A person enrolled later into the scope is found.
    let key = Key::new(5000, Hand::Left, 0);
    g.add(key, &probe).unwrap();
    let got = g.identify_in(&mut scope, &probe, 1).unwrap();
    assert_eq!(got[0].person, 5000);
    assert_eq!(scope.templates(), inside.len() + 1);
}

#[test]
fn a_per_person_scope_ranks_first_templates_and_scores_every_template_of_those_it_keeps() {
    // 2000 persons with three templates each; probes are genuine captures of a person's
    // *first* template: the per-person first stage sees only their latest template (an
    // unrelated random code here), so a person is found only through the exact stage's
    // scores of all their templates when the sketch keeps them; with every person kept
    // (min_candidates >= persons) that is always, and the scores are the exact ones.
    let layout = Layout::ENGINE_DEFAULT;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut g = Gallery::new(layout, MatchConfig::default()).unwrap();
    let mut items = Vec::new();
    for p in 0..2000u64 {
        for i in 0..3u32 {
            let t = random_template(&mut rng, &layout);
            let key = Key::new(p, Hand::Right, i);
            g.add(key, &t).unwrap();
            items.push((key, t));
        }
    }
    let persons: Vec<u64> = (0..2000).collect();
    let per_person = g.scope_per_person(persons.iter().copied());
    assert!(per_person.is_per_person());
    assert_eq!(
        per_person.templates(),
        2000,
        "one first-stage template per person"
    );
    let engine = Engine::default();
    g.set_search_params(SearchParams {
        min_candidates: 2000,
        candidates_per_million: 0,
        exhaustive_up_to: 0,
        extend_below: None,
        extended_per_million: 0,
    });
    for q in 0..5 {
        let (key, t) = &items[(q * 397 % 2000) * 3];
        let probe = genuine_probe(&mut rng, t);
        let got = g.identify_within_first_look(&per_person, &probe, 2).unwrap();
        assert_eq!(got[0].person, key.person, "probe {q}");
        assert_eq!(got[0].key, *key, "the best template is the first one");
        assert_eq!(engine.score(&probe, t).to_bits(), got[0].score.to_bits());
    }
    // With the default parameters the first stage keeps a handful of persons by their
    // latest template: a probe of the latest template is found...
    g.set_search_params(SearchParams::default());
    let (key, t) = &items[3 * 1234 + 2];
    let probe = genuine_probe(&mut rng, t);
    let got = g.identify_within_first_look(&per_person, &probe, 2).unwrap();
    assert_eq!(got[0].person, key.person);
    // ...and a small per-person scope (exhaustive) scores every template of every person.
    let small = g.scope_per_person([7u64, 8, 9]);
    let (key, t) = &items[3 * 8 + 1];
    let probe = genuine_probe(&mut rng, t);
    let got = g.identify_within(&small, &probe, 3).unwrap();
    let inside: Vec<_> = items
        .iter()
        .filter(|(k, _)| (7..=9).contains(&k.person))
        .cloned()
        .collect();
    assert!(same(&got, &brute(&engine, &inside, &probe, 3)));
    assert_eq!(got[0].key, *key);
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    let mut g = Gallery::new(Layout::ENGINE_DEFAULT, MatchConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut t = random_template(&mut rng, &Layout::ENGINE_DEFAULT);
    let key = Key::new(1, Hand::Left, 0);
    assert!(g.replace(key, &t).is_err());
    assert!(g.remove(&key).is_err());
    t.code.bits.pop();
    assert!(matches!(g.add(key, &t), Err(GalleryError::Geometry { .. })));
    assert!(g.identify(&t, 3).is_err());
    // A probe pose of the wrong geometry.
    let mut t3 = random_template(&mut rng, &Layout::ENGINE_DEFAULT);
    t3.rotated[1].planes = 5;
    assert!(matches!(g.identify(&t3, 3), Err(GalleryError::Geometry { .. })));
    // Bits outside the grid are refused at enrolment.
    let mut t4 = random_template(&mut rng, &Layout { grid: 20, planes: 6 });
    t4.code.bits[3] |= 1 << 25;
    let mut g20 = Gallery::new(Layout { grid: 20, planes: 6 }, MatchConfig::default()).unwrap();
    assert!(matches!(g20.add(key, &t4), Err(GalleryError::StoredCode(_))));
    let mut t2 = random_template(&mut rng, &Layout::ENGINE_DEFAULT);
    t2.algorithm = 99;
    assert!(matches!(g.add(key, &t2), Err(GalleryError::Algorithm { .. })));
    assert!(Gallery::new(Layout { grid: 33, planes: 6 }, MatchConfig::default()).is_err());
    assert!(Gallery::new(Layout { grid: 2, planes: 6 }, MatchConfig::default()).is_err());
    assert!(g.is_empty());
    assert!(g
        .identify(&random_template(&mut rng, &Layout::ENGINE_DEFAULT), 3)
        .unwrap()
        .is_empty());
}

#[test]
fn memory_stays_within_ten_percent_of_the_raw_template_bytes_once_a_chunk_is_full() {
    let layout = Layout::ENGINE_DEFAULT;
    let mut g = Gallery::new(layout, MatchConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let t = random_template(&mut rng, &layout);
    for i in 0..openpalm_gallery::gallery::CHUNK_SLOTS as u64 {
        g.add(Key::new(i, Hand::Left, 0), &t).unwrap();
    }
    let ratio = g.memory_bytes() as f64 / g.raw_template_bytes() as f64;
    assert!(ratio <= 1.10, "memory {ratio}x raw");
}
