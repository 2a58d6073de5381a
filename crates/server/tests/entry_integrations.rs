//! Venue entry with what is around it, over real HTTP: lane decisions delivered as signed
//! webhooks to a receiver on 127.0.0.1, the reader simulator driving a lane at a set rate,
//! and a palm enrolled at another business joining at the venue's kiosk.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::venue::*;
use common::*;
use openpalm_domain::ids::{DeviceKind, Purpose};
use openpalm_domain::now_unix;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Inbox {
    bodies: Vec<Value>,
}

async fn receive(State(inbox): State<Arc<Mutex<Inbox>>>, _h: HeaderMap, body: Bytes) -> StatusCode {
    inbox
        .lock()
        .unwrap()
        .bodies
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lane_decisions_are_sent_as_webhooks() {
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_in(dir, |c| {
        c.webhook_allow_http = true;
        c.webhook_allow_private = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let v = venue(&env, "Hooks").await;
    let r = v
        .biz
        .client
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": hook, "events": ["entry.admitted", "entry.denied"]}),
            Some("wh"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let event = create_event(&v, now_unix() - 60, 0).await;
    issue(
        &v.biz,
        &event,
        json!([{"holder": {"member_id": "M-A"}, "ticket_type": "standard"}]),
        "t",
    )
    .await;
    assert_eq!(decision(&at_gate(&v.biz, &v.g1, &event, A, 3).await).0, "admit");
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, D, 3).await).1,
        "no_ticket_for_event"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = inbox.lock().unwrap().bodies.len();
        if n >= 2 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = inbox.lock().unwrap().bodies.clone();
    let mut kinds: Vec<(String, String)> = bodies
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap_or("").to_string(),
                b["data"]["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("entry.admitted".to_string(), String::new()),
            ("entry.denied".to_string(), "no_ticket_for_event".to_string())
        ]
    );
    let admitted = bodies.iter().find(|b| b["type"] == "entry.admitted").unwrap();
    assert_eq!(admitted["data"]["pseudonymous_id"], v.pids[0]);
    assert_eq!(admitted["data"]["ticket_type"], "standard");
    assert_eq!(admitted["data"]["event_id"], event.as_str());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_drives_a_lane_at_a_set_rate() {
    use openpalm_device::sim::{run, SimOptions};
    let env = Env::start().await;
    let biz = env.business("Sim venue").await;
    let images = env.dir.path().join("people");
    for id in 0..3u64 {
        let d = images.join(format!("person{id}"));
        std::fs::create_dir_all(&d).unwrap();
        for (k, png) in palm(70 + id, 0, 5).iter().enumerate() {
            std::fs::write(d.join(format!("{k}.png")), png).unwrap();
        }
    }
    // The lane's gate, registered first so that the event can name it.
    let gate_key = env.dir.path().join("gate.key");
    let g = biz
        .client
        .register_device(DeviceKind::Gate, "lane")
        .await
        .unwrap();
    g.write(&gate_key).unwrap();
    let opts = |kind, key: std::path::PathBuf, event: Option<String>| SimOptions {
        kind,
        server: env.base.clone(),
        api_key: biz.key.clone(),
        images: images.clone(),
        device_key: Some(key),
        site: "sim".into(),
        input: "roi".into(),
        enroll_captures: 3,
        amount_minor: 1250,
        currency: "EUR".into(),
        people: None,
        event,
        rate: Some(20.0),
        print_each: true,
    };
    let kiosk = run(&opts(DeviceKind::Kiosk, env.dir.path().join("kiosk.key"), None))
        .await
        .unwrap();
    assert_eq!(kiosk.outcomes.get("enrolled"), Some(&3), "{:?}", kiosk.outcomes);
    let now = now_unix();
    let ev = biz
        .client
        .post(
            "/v1/events",
            &json!({"name": "Sim", "site": "lane", "starts_at": now + 60, "ends_at": now + 3600,
                    "doors_open_at": now - 60, "gates": [g.device_id]}),
            Some("evt"),
        )
        .await
        .unwrap();
    let event = ev.body["id"].as_str().unwrap().to_string();
    let holders: Vec<Value> = kiosk.records[..2]
        .iter()
        .map(|r| json!({"holder": {"pseudonymous_id": r.pseudonymous_id}, "ticket_type": "standard"}))
        .collect();
    assert_eq!(issue(&biz, &event, json!(holders), "t").await.body["issued"], 2);
    // Two captures each after the enrolled three: the holders are admitted, then already in.
    let lane = run(&opts(DeviceKind::Gate, gate_key, Some(event))).await.unwrap();
    assert_eq!(lane.records.len(), 6);
    assert_eq!(lane.outcomes.get("admit"), Some(&2), "{:?}", lane.outcomes);
    assert_eq!(
        lane.outcomes.get("deny:already_admitted"),
        Some(&2),
        "{:?}",
        lane.outcomes
    );
    assert_eq!(
        lane.outcomes.get("deny:no_ticket_for_event"),
        Some(&2),
        "{:?}",
        lane.outcomes
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_palm_enrolled_elsewhere_joins_at_the_venue_kiosk_and_enters() {
    let env = Env::start().await;
    // Enrolled at a store first.
    let store = env.business("Corner store").await;
    let store_kiosk = store.reader(DeviceKind::Kiosk, "shop").await;
    enroll(&store, &store_kiosk, A, "LOYALTY-1").await;
    // At the venue's registration kiosk: one capture, consent, and the ticketing app's ID.
    let venue = env.business("Tickets").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "arena kiosk").await;
    let gate = venue.reader(DeviceKind::Gate, "arena gate").await;
    let c = kiosk.seal(Purpose::Enroll, &palm(A, 3, 1)[0]).unwrap();
    let j = venue
        .client
        .post(
            "/v1/memberships",
            &json!({"consent": {"text_version": 1, "accepted": true}, "input": "roi", "capture": c,
                    "links": [{"kind": "member_id", "value": "APP-77"}]}),
            Some("join-1"),
        )
        .await
        .unwrap();
    assert_eq!(j.status, 201, "{:?}", j.body);
    let now = now_unix();
    let ev = venue
        .client
        .post(
            "/v1/events",
            &json!({"name": "Show", "site": "arena", "starts_at": now + 60, "ends_at": now + 3600,
                    "doors_open_at": now - 60, "gates": [gate.device_id]}),
            Some("evt"),
        )
        .await
        .unwrap();
    let event = ev.body["id"].as_str().unwrap().to_string();
    let t = issue(
        &venue,
        &event,
        json!([{"holder": {"member_id": "APP-77"}, "ticket_type": "standard"}]),
        "t",
    )
    .await;
    assert_eq!(t.body["issued"], 1, "{:?}", t.body);
    let a = at_gate(&venue, &gate, &event, A, 4).await;
    assert_eq!(decision(&a), ("admit", ""));
    assert_eq!(
        a.body["person"]["pseudonymous_id"],
        j.body["person"]["pseudonymous_id"]
    );
    env.stop().await;
}
