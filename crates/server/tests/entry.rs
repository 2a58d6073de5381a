//! Venue entry over real HTTP with real cryptography (SQLite here; the same suite runs on
//! PostgreSQL through `crates/store/scripts/test-postgres.sh`): events with palm lanes,
//! tickets issued in bulk, every deny reason provoked, two gates racing on one ticket,
//! transfers, cancellations, re-entry, attendant overrides and the manual fallback,
//! counts, the person's match log, a restart, erasure, and another business seeing nothing
//! (webhooks, the simulator and joining at the kiosk: `entry_integrations.rs`).

mod common;

use common::venue::*;
use common::*;
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_domain::now_unix;
use openpalm_engine::{Engine, InputKind};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lane_decision_and_its_reason() {
    let env = Env::start().await;
    let v = venue(&env, "Tickets Inc").await;
    let now = now_unix();
    let event = create_event(&v, now - 60, 1).await;
    let t = issue(
        &v.biz,
        &event,
        json!([
            {"holder": {"pseudonymous_id": v.pids[0]}, "ticket_type": "standard", "external_ref": "T-1"},
            {"holder": {"member_id": "M-B"}, "ticket_type": "vip", "gates": [v.g2.device_id], "external_ref": "T-2"},
            {"holder": {"member_id": "M-C"}, "ticket_type": "standard", "external_ref": "T-3"},
            {"holder": {"member_id": "M-nobody"}, "ticket_type": "standard"},
            {"holder": {"member_id": "M-A"}, "ticket_type": "standard", "external_ref": "T-1"},
            {"holder": {"member_id": "M-A", "pseudonymous_id": v.pids[0]}, "ticket_type": "standard"},
            {"holder": {"member_id": "M-A"}, "ticket_type": "standard", "gates": [v.exit.device_id]},
        ]),
        "tickets-1",
    )
    .await;
    assert_eq!(t.status, 201, "{:?}", t.body);
    assert_eq!(t.body["issued"], 3);
    let rejected: Vec<(u64, &str)> = t.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (3, "unknown_holder"),
            (4, "duplicate_external_ref"),
            (5, "invalid_holder"),
            (6, "unknown_gate")
        ]
    );
    assert_eq!(t.body["tickets"][1]["holder"]["pseudonymous_id"], v.pids[1]);
    let c_ticket = t.body["tickets"][2]["id"].as_str().unwrap().to_string();
    // A replay issues nothing more.
    let before = env.counts().await;
    let again = issue(
        &v.biz,
        &event,
        json!([{"holder": {"member_id": "M-D"}, "ticket_type": "standard"}]),
        "tickets-1",
    )
    .await;
    assert_eq!((again.status, code(&again)), (422, "idempotency_key_reused"));
    assert_eq!(env.counts().await, before);

    let r = v
        .biz
        .client
        .post(&format!("/v1/tickets/{c_ticket}/cancel"), &json!({}), None)
        .await
        .unwrap();
    assert_eq!((r.status, r.body["state"].as_str()), (200, Some("cancelled")));

    // A: admitted at the first try, once.
    let a = at_gate(&v.biz, &v.g1, &event, A, 3).await;
    assert_eq!(decision(&a), ("admit", ""));
    assert_eq!(a.body["ticket"]["ticket_type"], "standard");
    assert_eq!(a.body["ticket"]["state"], "admitted");
    assert_eq!(a.body["person"]["pseudonymous_id"], v.pids[0]);
    assert!(a.body["decision_ms"].as_f64().unwrap() > 0.0);
    let admitted_a = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g2, &event, A, 4).await),
        ("deny", "already_admitted")
    );
    // B holds a VIP ticket for the south gate only.
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, B, 3).await),
        ("deny", "wrong_gate")
    );
    assert_eq!(decision(&at_gate(&v.biz, &v.g2, &event, B, 4).await).0, "admit");
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, C, 3).await),
        ("deny", "ticket_cancelled")
    );
    let d = at_gate(&v.biz, &v.g1, &event, D, 3).await;
    assert_eq!(decision(&d), ("deny", "no_ticket_for_event"));
    assert_eq!(
        d.body["person"]["pseudonymous_id"], v.pids[3],
        "recognised, but no ticket"
    );
    let s = at_gate(&v.biz, &v.g1, &event, STRANGER, 3).await;
    assert_eq!(decision(&s), ("deny", "not_recognised"));
    assert!(s.body["person"].is_null() && s.body["ticket"].is_null());

    // Re-entry: one allowed after leaving through the exit gate.
    let x = leave(&v.biz, &v.exit, &event, A, 5).await;
    assert_eq!(decision(&x).0, "exit");
    assert_eq!(
        decision(&leave(&v.biz, &v.exit, &event, A, 6).await),
        ("deny", "not_inside")
    );
    assert_eq!(decision(&at_gate(&v.biz, &v.g1, &event, A, 6).await).0, "admit");
    assert_eq!(decision(&leave(&v.biz, &v.exit, &event, A, 7).await).0, "exit");
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, A, 7).await),
        ("deny", "already_admitted")
    );

    // Gates facing the wrong way, or not at the event, are integration errors.
    let r = at_gate(&v.biz, &v.exit, &event, A, 3).await;
    assert_eq!((r.status, code(&r)), (409, "wrong_direction"));
    let other_gate = v.biz.reader(DeviceKind::Gate, "car park").await;
    let r = at_gate(&v.biz, &other_gate, &event, A, 3).await;
    assert_eq!((r.status, code(&r)), (409, "gate_not_at_event"));
    // The kiosk is no gate.
    let r = v
        .biz
        .client
        .post(
            "/v1/events",
            &json!({"name": "X", "site": "arena", "starts_at": now + 10, "ends_at": now + 20,
                    "doors_open_at": now, "gates": [v.kiosk.device_id]}),
            Some("evt-kiosk"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (422, "not_a_gate"));

    // Before the doors open: no search at all.
    let later = create_event(&v, now + 1800, 0).await;
    let r = issue(
        &v.biz,
        &later,
        json!([{"holder": {"member_id": "M-A"}, "ticket_type": "standard"}]),
        "tickets-later",
    )
    .await;
    assert_eq!(r.body["issued"], 1);
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &later, A, 3).await),
        ("deny", "event_not_open")
    );

    // The attendant turns back A's first admission: the entry is taken back...
    let o = v
        .biz
        .client
        .post(
            &format!("/v1/entries/{admitted_a}/override"),
            &json!({"decision": "deny", "attendant": "Sam (staff 12)", "note": "face does not match the ID"}),
            Some("ovr-1"),
        )
        .await
        .unwrap();
    assert_eq!(o.status, 201, "{:?}", o.body);
    assert_eq!(o.body["source"], "override");
    assert_eq!(o.body["overrides"], admitted_a.as_str());
    assert_eq!(o.body["attendant"], "Sam (staff 12)");
    assert_eq!(o.body["ticket"]["state"], "exited");
    // ...and D, denied for want of a ticket, is admitted by hand.
    let d_entry = d.body["id"].as_str().unwrap();
    let o = v
        .biz
        .client
        .post(
            &format!("/v1/entries/{d_entry}/override"),
            &json!({"decision": "admit", "attendant": "Sam", "note": "paper ticket from the box office"}),
            Some("ovr-2"),
        )
        .await
        .unwrap();
    assert_eq!((o.status, o.body["decision"].as_str()), (201, Some("admit")));
    let r = v
        .biz
        .client
        .post(
            &format!("/v1/entries/{d_entry}/override"),
            &json!({"decision": "deny", "attendant": "Sam", "note": ""}),
            Some("ovr-3"),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (422, "invalid_attendant"),
        "an override says why"
    );

    // Manual fallback on the ordinary ticket, under the palm lane's rules: B's ticket was
    // used by palm already; D's new one admits once, by hand, and then not by palm.
    let manual = |body: Value, idem: &'static str| {
        let (client, path) = (v.biz.client.clone(), format!("/v1/events/{event}/manual-entries"));
        async move { client.post(&path, &body, Some(idem)).await.unwrap() }
    };
    let m = manual(
        json!({"external_ref": "T-2", "gate": v.g2.device_id, "attendant": "Kim", "note": "reader down"}),
        "man-1",
    )
    .await;
    assert_eq!((m.status, code(&m)), (409, "already_admitted"));
    let r = issue(
        &v.biz,
        &event,
        json!([{"holder": {"member_id": "M-D"}, "ticket_type": "standard", "external_ref": "T-9"}]),
        "tickets-d",
    )
    .await;
    assert_eq!(r.body["issued"], 1);
    let m = manual(
        json!({"external_ref": "T-9", "attendant": "Kim", "note": "reader down"}),
        "man-2",
    )
    .await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    assert_eq!(
        (m.body["decision"].as_str(), m.body["source"].as_str()),
        (Some("admit"), Some("manual"))
    );
    let m = manual(
        json!({"external_ref": "T-9", "attendant": "Kim", "note": "again"}),
        "man-3",
    )
    .await;
    assert_eq!((m.status, code(&m)), (409, "already_admitted"));
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, D, 4).await),
        ("deny", "already_admitted")
    );
    let m = manual(
        json!({"external_ref": "T-404", "attendant": "Kim", "note": "x"}),
        "man-4",
    )
    .await;
    assert_eq!((m.status, code(&m)), (404, "not_found"));

    // Live counts and the list of decisions.
    let c = v
        .biz
        .client
        .get(&format!("/v1/events/{event}/counts"))
        .await
        .unwrap();
    assert_eq!(c.status, 200, "{:?}", c.body);
    assert_eq!(c.body["tickets"]["cancelled"], 1);
    assert_eq!(
        c.body["inside"], 2,
        "B, and D on the ticket admitted by hand; A left"
    );
    assert_eq!(c.body["denied_by_reason"]["already_admitted"], 3);
    assert_eq!(c.body["denied_by_reason"]["wrong_gate"], 1);
    assert_eq!(c.body["denied_by_reason"]["not_recognised"], 1);
    assert_eq!(c.body["by_source"]["override:deny"], 1);
    assert_eq!(c.body["by_source"]["override:admit"], 1);
    assert_eq!(c.body["by_source"]["manual:admit"], 1);
    assert_eq!(c.body["by_source"]["palm:admit"], 3);
    assert_eq!(c.body["by_source"]["palm:exit"], 2);
    let g1_counts = c.body["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == v.g1.device_id.as_str())
        .unwrap()
        .clone();
    // A twice by palm, and D by the attendant's override of a decision there.
    assert_eq!(g1_counts["admitted"], 3, "{g1_counts}");
    let l = v
        .biz
        .client
        .get(&format!("/v1/events/{event}/entries?limit=200"))
        .await
        .unwrap();
    assert_eq!(l.status, 200);
    let items = l.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 16);
    assert!(items.iter().all(|p| p["event_id"] == event.as_str()));

    // Every decision about A is in A's match log, with what the lane did.
    let log = v
        .biz
        .client
        .get(&format!("/v1/people/{}/match-log?limit=200", v.pids[0]))
        .await
        .unwrap();
    assert_eq!(log.status, 200, "{:?}", log.body);
    let outcomes: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert!(
        outcomes.contains(&"admit")
            && outcomes.contains(&"deny:already_admitted")
            && outcomes.contains(&"exit"),
        "{outcomes:?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gates_racing_on_one_ticket_admit_once() {
    let env = Env::start().await;
    let v = venue(&env, "Race").await;
    let event = create_event(&v, now_unix() - 60, 0).await;
    let r = issue(
        &v.biz,
        &event,
        json!([{"holder": {"member_id": "M-A"}, "ticket_type": "standard"}]),
        "t",
    )
    .await;
    assert_eq!(r.body["issued"], 1);
    for round in 0..3 {
        // Both captures sealed first, then sent at once.
        let c1 = v.g1.seal(Purpose::Identify, &palm(A, 3 + round, 1)[0]).unwrap();
        let c2 = v.g2.seal(Purpose::Identify, &palm(A, 4 + round, 1)[0]).unwrap();
        let (x, y) = tokio::join!(
            v.biz.client.enter(&event, "roi", &c1),
            v.biz.client.enter(&event, "roi", &c2)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let mut got = vec![decision(&x), decision(&y)];
        got.sort();
        if round == 0 {
            assert_eq!(got, vec![("admit", ""), ("deny", "already_admitted")]);
        } else {
            assert_eq!(
                got,
                vec![("deny", "already_admitted"), ("deny", "already_admitted")]
            );
        }
    }
    let c = v
        .biz
        .client
        .get(&format!("/v1/events/{event}/counts"))
        .await
        .unwrap();
    assert_eq!(c.body["by_source"]["palm:admit"], 1);
    assert_eq!(c.body["tickets"]["admitted"], 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_move_the_right_to_enter() {
    let env = Env::start().await;
    let v = venue(&env, "Transfers").await;
    let event = create_event(&v, now_unix() - 60, 0).await;
    let r = issue(
        &v.biz,
        &event,
        json!([
            {"holder": {"member_id": "M-A"}, "ticket_type": "standard"},
            {"holder": {"member_id": "M-B"}, "ticket_type": "standard"},
        ]),
        "t",
    )
    .await;
    let (ta, tb) = (
        r.body["tickets"][0]["id"].as_str().unwrap().to_string(),
        r.body["tickets"][1]["id"].as_str().unwrap().to_string(),
    );
    // A gives the ticket to D.
    let tr = v
        .biz
        .client
        .post(
            &format!("/v1/tickets/{ta}/transfer"),
            &json!({"to": {"member_id": "M-D"}}),
            Some("tr-1"),
        )
        .await
        .unwrap();
    assert_eq!(tr.status, 201, "{:?}", tr.body);
    assert_eq!(tr.body["transferred_from"], ta.as_str());
    assert_eq!(tr.body["holder"]["pseudonymous_id"], v.pids[3]);
    let old = v.biz.client.get(&format!("/v1/tickets/{ta}")).await.unwrap();
    assert_eq!(old.body["state"], "transferred");
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, A, 3).await),
        ("deny", "no_ticket_for_event")
    );
    assert_eq!(decision(&at_gate(&v.biz, &v.g1, &event, D, 3).await).0, "admit");
    // A used ticket cannot be transferred; a transferred one cannot be cancelled.
    assert_eq!(decision(&at_gate(&v.biz, &v.g1, &event, B, 3).await).0, "admit");
    let r = v
        .biz
        .client
        .post(
            &format!("/v1/tickets/{tb}/transfer"),
            &json!({"to": {"member_id": "M-C"}}),
            Some("tr-2"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (409, "ticket_not_transferable"));
    let r = v
        .biz
        .client
        .post(&format!("/v1/tickets/{ta}/cancel"), &json!({}), None)
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (409, "ticket_transferred"));
    // Paging through the tickets shows all three.
    let p1 = v
        .biz
        .client
        .get(&format!("/v1/events/{event}/tickets?limit=2"))
        .await
        .unwrap();
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 2);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = v
        .biz
        .client
        .get(&format!("/v1/events/{event}/tickets?limit=2&cursor={cursor}"))
        .await
        .unwrap();
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 1);
    assert!(p2.body["next_cursor"].is_null());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_business_sees_none_of_it() {
    let env = Env::start().await;
    let v = venue(&env, "Owner").await;
    let event = create_event(&v, now_unix() - 60, 0).await;
    let r = issue(
        &v.biz,
        &event,
        json!([{"holder": {"member_id": "M-A"}, "ticket_type": "standard"}]),
        "t",
    )
    .await;
    let ticket = r.body["tickets"][0]["id"].as_str().unwrap().to_string();
    let at_gate_a = at_gate(&v.biz, &v.g1, &event, A, 3).await;
    let entry = at_gate_a.body["id"].as_str().unwrap().to_string();

    let other = env.business("Other").await;
    let og = other.reader(DeviceKind::Gate, "elsewhere").await;
    for path in [
        format!("/v1/events/{event}"),
        format!("/v1/events/{event}/tickets"),
        format!("/v1/events/{event}/counts"),
        format!("/v1/events/{event}/entries"),
        format!("/v1/tickets/{ticket}"),
    ] {
        let r = other.client.get(&path).await.unwrap();
        assert_eq!((r.status, code(&r)), (404, "not_found"), "{path}");
    }
    let l = other.client.get("/v1/events").await.unwrap();
    assert_eq!(l.body["items"].as_array().unwrap().len(), 0);
    for (path, body) in [
        (format!("/v1/tickets/{ticket}/cancel"), json!({})),
        (
            format!("/v1/tickets/{ticket}/transfer"),
            json!({"to": {"member_id": "M-A"}}),
        ),
        (
            format!("/v1/entries/{entry}/override"),
            json!({"decision": "deny", "attendant": "x", "note": "y"}),
        ),
        (
            format!("/v1/events/{event}/tickets"),
            json!({"tickets": [{"holder": {"pseudonymous_id": v.pids[0]}, "ticket_type": "x"}]}),
        ),
    ] {
        let r = other.client.post(&path, &body, Some("other-1")).await.unwrap();
        assert_eq!((r.status, code(&r)), (404, "not_found"), "{path}");
    }
    // Its gate cannot be used at the owner's event, nor the owner's gate by it.
    let c = og.seal(Purpose::Identify, &palm(A, 4, 1)[0]).unwrap();
    let r = other.client.enter(&event, "roi", &c).await.unwrap();
    assert_eq!((r.status, code(&r)), (404, "not_found"));
    let c = v.g1.seal(Purpose::Identify, &palm(A, 4, 1)[0]).unwrap();
    let own_event = other
        .client
        .post(
            "/v1/events",
            &json!({"name": "X", "site": "s", "starts_at": now_unix() + 100, "ends_at": now_unix() + 200,
                    "doors_open_at": now_unix() - 10, "gates": [v.g1.device_id]}),
            Some("other-evt"),
        )
        .await
        .unwrap();
    assert_eq!((own_event.status, code(&own_event)), (422, "unknown_gate"));
    let r = other.client.enter(&event, "roi", &c).await.unwrap();
    assert_eq!(r.status, 404);
    // Its own members' pseudonyms are not the owner's, and tickets to the owner's members are refused.
    let ok = other
        .client
        .post(
            "/v1/events",
            &json!({"name": "X", "site": "s", "starts_at": now_unix() + 100, "ends_at": now_unix() + 200,
                    "doors_open_at": now_unix() - 10, "gates": [og.device_id]}),
            Some("other-evt-2"),
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let oe = ok.body["id"].as_str().unwrap();
    let r = issue(
        &other,
        oe,
        json!([{"holder": {"pseudonymous_id": v.pids[0]}, "ticket_type": "x"}, {"holder": {"member_id": "M-A"}, "ticket_type": "x"}]),
        "other-t",
    )
    .await;
    assert_eq!(r.body["issued"], 0);
    assert_eq!(r.body["rejected"][0]["code"], "unknown_holder");
    assert_eq!(r.body["rejected"][1]["code"], "unknown_holder");
    // A, enrolled at the owner only, is a stranger at the other business's lane.
    let c = og.seal(Purpose::Identify, &palm(A, 5, 1)[0]).unwrap();
    let r = other.client.enter(oe, "roi", &c).await.unwrap();
    assert_eq!(decision(&r), ("deny", "not_recognised"));
    env.stop().await;
}

/// Two people the engine cannot tell apart: the second is the first one's templates added to
/// the running gallery under another person number (enrollment's duplicate check keeps such
/// pairs out of the database; this stands for a twin, or an impostor scoring at genuine
/// level). Returns nothing: the twin is known to the matcher only.
fn add_twin(env: &Env, identity: u64, scopes: &[&str]) {
    let engine = Engine::default();
    let templates = palm(identity, 0, 3)
        .iter()
        .map(|i| {
            (
                HandSide::Left,
                engine.extract(i, InputKind::Roi).unwrap().template,
            )
        })
        .collect();
    let state = &env.running.as_ref().unwrap().state;
    let mut m = state.matcher.write().unwrap();
    let seq = 1_000_000 + identity;
    m.add(seq, templates).unwrap();
    for s in scopes {
        m.admit(s, seq);
    }
    state
        .directory
        .write()
        .unwrap()
        .insert(seq, format!("per_twin_{identity}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alikes_are_ambiguous_never_admitted_on_anothers_ticket() {
    // Every holder match is checked against the business's other members here.
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_in(dir, |c| c.lane_confirm_below = 1.0).await;
    let v = venue(&env, "Twins").await;
    let event = create_event(&v, now_unix() - 60, 0).await;
    issue(
        &v.biz,
        &event,
        json!([
            {"holder": {"member_id": "M-A"}, "ticket_type": "standard"},
            {"holder": {"member_id": "M-B"}, "ticket_type": "standard"},
        ]),
        "t",
    )
    .await;
    // A's twin holds no ticket but is a member: A's palm is no longer enough to admit.
    add_twin(&env, A, &[&v.biz.id]);
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, A, 3).await),
        ("deny", "ambiguous")
    );
    // B's twin is among the ticket holders: ambiguous within the event's own scope.
    add_twin(&env, B, &[&v.biz.id, &event]);
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, B, 3).await),
        ("deny", "ambiguous")
    );
    // Both tickets are still unused.
    let c = v
        .biz
        .client
        .get(&format!("/v1/events/{event}/counts"))
        .await
        .unwrap();
    assert_eq!(c.body["tickets"]["issued"], 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_are_scoped_after_a_restart_and_erasure_cancels_their_tickets() {
    let env = Env::start().await;
    let v = venue(&env, "Restart").await;
    let event = create_event(&v, now_unix() - 60, 0).await;
    issue(
        &v.biz,
        &event,
        json!([
            {"holder": {"member_id": "M-A"}, "ticket_type": "standard"},
            {"holder": {"member_id": "M-B"}, "ticket_type": "standard"},
        ]),
        "t",
    )
    .await;
    let key = v.biz.key.clone();
    let (g1, pid_b) = (v.g1, v.pids[1].clone());
    let dir = env.stop().await;
    let env = Env::start_in(dir, |_| {}).await;
    let biz = Biz {
        client: openpalm_device::Client::new(&env.base, Some(key.clone())),
        id: v.biz.id.clone(),
        key_id: v.biz.key_id.clone(),
        key,
    };
    assert_eq!(decision(&at_gate(&biz, &g1, &event, A, 3).await).0, "admit");
    // B is erased at their request: their ticket is cancelled and names nobody.
    let r = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": biz.id, "pseudonymous_id": pid_b, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        decision(&at_gate(&biz, &g1, &event, B, 3).await),
        ("deny", "not_recognised")
    );
    let t = biz
        .client
        .get(&format!("/v1/events/{event}/tickets"))
        .await
        .unwrap();
    let mut states: Vec<(&str, bool)> = t.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["state"].as_str().unwrap(), t["holder"].is_null()))
        .collect();
    states.sort();
    assert_eq!(states, vec![("admitted", false), ("cancelled", true)]);
    env.stop().await;
}
