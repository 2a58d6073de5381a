//! Venue entry on real whole-hand images (COEP): 60 people enroll at a kiosk from three
//! images each and link a member ID; the first 40 enrolled get a ticket (one bulk call, by
//! member ID); at the gates of an open event everyone presents their fourth image (never
//! enrolled), strangers (identities beyond the first 60) too, and every admitted holder
//! tries again at the second gate. Checked: no one without a ticket is admitted (enrolled
//! people without one, refused enrollments, strangers); an admission is always on the
//! person's own ticket (pseudonymous ID and ticket ID); a second try is `already_admitted`;
//! the event's counts agree with the admissions seen; holders are admitted at the first try
//! at least 85% of the time.
//!
//! Measured with the engine of 2026-12-01 (release build): 57 of 60 enrolled (coep003 and
//! coep050 refused as `fingers_not_spread`, coep036 as `already_enrolled`: it collides with
//! coep028, see `coep.rs`); 40 of 40 holders admitted at the first try (100%), all 40 second
//! tries `already_admitted`; the 17 enrolled without a ticket `no_ticket_for_event`, the 3
//! refused and the 7 strangers `not_recognised`; no one recognised as someone else; median
//! `decision_ms` 17.9 ms in one run (CPU, varies run to run).
//!
//! Needs `../shared/data/coep-hands-dev`: skipped with a message when absent, a failure when
//! absent under `CI=true`.

mod common;

use common::venue::issue;
use common::*;
use openpalm_device::{Answer, Reader};
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_domain::now_unix;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// One presentation at a gate: `decision:reason`, or `refused:code` when the capture was
/// refused (quality gate); the recognised pseudonymous ID and the ticket ID, if any.
struct Seen {
    outcome: String,
    person: Option<String>,
    ticket: Option<String>,
}

async fn present(biz: &Biz, gate: &Reader, event: &str, image: &PathBuf, ms: &mut Vec<f64>) -> Seen {
    let c = gate
        .seal(Purpose::Identify, &std::fs::read(image).unwrap())
        .unwrap();
    let a: Answer = biz.client.enter(event, "hand", &c).await.unwrap();
    if a.status != 200 {
        assert_eq!(a.status, 422, "{}: {:?}", image.display(), a.body);
        return Seen {
            outcome: format!("refused:{}", code(&a)),
            person: None,
            ticket: None,
        };
    }
    ms.push(a.body["decision_ms"].as_f64().unwrap());
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    Seen {
        outcome: format!(
            "{}:{}",
            a.body["decision"].as_str().unwrap(),
            a.body["reason"].as_str().unwrap_or("")
        ),
        person: s(&a.body["person"]["pseudonymous_id"]),
        ticket: s(&a.body["ticket"]["id"]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venue_entry_on_coep_whole_hands() {
    let Some(data) = openpalm_eval::dataset::shared_data_dir() else {
        return;
    };
    let all: Vec<(String, Vec<PathBuf>)> = openpalm_device::sim::read_folder(&data.join("coep-hands-dev"))
        .unwrap()
        .into_iter()
        .filter(|(_, v)| v.len() >= 4)
        .collect();
    assert!(
        all.len() > 60,
        "coep-hands-dev should hold more than 60 people with 4 images"
    );
    let (crowd, strangers) = all.split_at(60);

    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "box office").await;
    let g1 = venue.reader(DeviceKind::Gate, "north gate").await;
    let g2 = venue.reader(DeviceKind::Gate, "south gate").await;

    // Enrollment at the kiosk: identity -> pseudonymous ID, in path order.
    let mut enrolled: Vec<(String, String)> = Vec::new();
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (identity, images) in crowd {
        let captures = images[..3]
            .iter()
            .map(|p| kiosk.seal(Purpose::Enroll, &std::fs::read(p).unwrap()).unwrap())
            .collect();
        let a = venue
            .client
            .enroll(
                &format!("enroll-{identity}"),
                1,
                "hand",
                &[(HandSide::Left, captures)],
                &[("member_id".into(), format!("member-{identity}"))],
            )
            .await
            .unwrap();
        if a.status == 201 {
            let pid = a.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
            enrolled.push((identity.clone(), pid));
        } else {
            assert!(a.status == 409 || a.status == 422, "{identity}: {:?}", a.body);
            refused
                .entry(code(&a).to_string())
                .or_default()
                .push(identity.clone());
        }
    }
    let pid_of: BTreeMap<&str, &str> = enrolled.iter().map(|(i, p)| (i.as_str(), p.as_str())).collect();

    // An open event (doors opened a minute ago) with two entry gates; tickets for the first 40.
    let now = now_unix();
    let e = venue
        .client
        .post(
            "/v1/events",
            &json!({"name": "Concert", "site": "arena", "starts_at": now + 3600,
                    "ends_at": now + 4 * 3600, "doors_open_at": now - 60,
                    "gates": [g1.device_id, g2.device_id], "exit_gates": [],
                    "reentry": {"max_reentries": 0}}),
            Some("event-1"),
        )
        .await
        .unwrap();
    assert_eq!(e.status, 201, "{:?}", e.body);
    let event = e.body["id"].as_str().unwrap().to_string();
    let holders: Vec<&(String, String)> = enrolled.iter().take(40).collect();
    let wanted: Vec<_> = holders
        .iter()
        .map(|(i, _)| json!({"holder": {"member_id": format!("member-{i}")}, "ticket_type": "standard"}))
        .collect();
    let t = issue(&venue, &event, json!(wanted), "tickets-1").await;
    assert_eq!(t.status, 201, "{:?}", t.body);
    assert_eq!(t.body["issued"], holders.len(), "{:?}", t.body["rejected"]);
    // Pseudonymous ID -> ticket ID.
    let ticket_of: BTreeMap<String, String> = t.body["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let pid = t["holder"]["pseudonymous_id"].as_str().unwrap().to_string();
            (pid, t["id"].as_str().unwrap().to_string())
        })
        .collect();
    let holder_ids: BTreeSet<&str> = holders.iter().map(|(i, _)| i.as_str()).collect();
    assert!(holders.iter().all(|(_, p)| ticket_of.contains_key(p)));

    // First tries at the north gate: the crowd, then the strangers.
    let mut ms = Vec::new();
    let (mut admits, mut admitted) = (0usize, Vec::new());
    let mut holder_denied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut no_ticket: BTreeMap<String, usize> = BTreeMap::new();
    let mut refused_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut stranger_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut someone_else = Vec::new();
    for (n, (identity, images)) in crowd.iter().chain(strangers).enumerate() {
        let seen = present(&venue, &g1, &event, &images[3], &mut ms).await;
        let own = pid_of.get(identity.as_str()).copied();
        if seen.person.is_some() && seen.person.as_deref() != own {
            someone_else.push(format!("{identity} ({})", seen.outcome));
        }
        if seen.outcome.starts_with("admit") {
            admits += 1;
            assert!(
                holder_ids.contains(identity.as_str()),
                "{identity}, without a ticket, was admitted"
            );
            assert_eq!(seen.person.as_deref(), own, "{identity} admitted as someone else");
            assert_eq!(
                seen.ticket.as_ref(),
                ticket_of.get(own.unwrap()),
                "{identity}: another's ticket"
            );
            admitted.push(identity.clone());
        } else if holder_ids.contains(identity.as_str()) {
            holder_denied
                .entry(seen.outcome)
                .or_default()
                .push(identity.clone());
        } else if own.is_some() {
            *no_ticket.entry(seen.outcome).or_default() += 1;
        } else if n < crowd.len() {
            *refused_seen.entry(seen.outcome).or_default() += 1;
        } else {
            *stranger_seen.entry(seen.outcome).or_default() += 1;
        }
    }

    // Second tries, at the south gate: every admitted holder is turned back.
    let mut second: BTreeMap<String, usize> = BTreeMap::new();
    for identity in &admitted {
        let images = &crowd.iter().find(|(i, _)| i == identity).unwrap().1;
        let seen = present(&venue, &g2, &event, &images[3], &mut ms).await;
        assert_eq!(
            seen.outcome, "deny:already_admitted",
            "{identity} at the second try"
        );
        assert_eq!(seen.person.as_deref(), pid_of.get(identity.as_str()).copied());
        *second.entry(seen.outcome).or_default() += 1;
    }

    let c = venue
        .client
        .get(&format!("/v1/events/{event}/counts"))
        .await
        .unwrap();
    assert_eq!(c.status, 200, "{:?}", c.body);
    assert_eq!(c.body["by_source"]["palm:admit"], admits, "{:?}", c.body);
    assert_eq!(c.body["tickets"]["admitted"], admits, "{:?}", c.body);

    ms.sort_by(|a, b| a.total_cmp(b));
    let median = ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN);
    let rate = 100.0 * admitted.len() as f64 / holders.len().max(1) as f64;
    eprintln!(
        "coep venue entry: {} of 60 enrolled, refused: {refused:?}\n  \
         ticket holders: {} admitted at the first try of {} ({rate:.1}%); not admitted: {holder_denied:?}\n  \
         second tries: {second:?}\n  \
         enrolled without a ticket ({}): {no_ticket:?}; refused at enrollment: {refused_seen:?}\n  \
         strangers ({}): {stranger_seen:?}\n  \
         recognised as someone else (any outcome): {someone_else:?}\n  \
         counts: palm:admit {}, tickets admitted {}; median decision_ms {median:.1} over {} answers",
        enrolled.len(),
        admitted.len(),
        holders.len(),
        enrolled.len() - holders.len(),
        strangers.len(),
        c.body["by_source"]["palm:admit"],
        c.body["tickets"]["admitted"],
        ms.len(),
    );
    assert!(
        rate >= 85.0,
        "first-try admit rate of ticket holders {rate:.1}% < 85%"
    );
    env.stop().await;
}
