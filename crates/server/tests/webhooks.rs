//! Signed webhooks over real HTTP: a real receiver (axum on 127.0.0.1, ephemeral port)
//! verifies every Standard Webhooks signature, fails on purpose to make the service retry,
//! and deduplicates by event ID, as a business's integration would.

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use openpalm_domain::ids::DeviceKind;
use openpalm_domain::webhook;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: i64,
    body: Value,
    at: Instant,
    /// Whether the signature verified with the endpoint's secret.
    verified: bool,
}

#[derive(Default)]
struct Inbox {
    secret: Option<String>,
    /// Answer 503 to this many requests before acknowledging...
    fail_first: usize,
    /// ...and 500 to this many after processing the event (the acknowledgement is lost).
    lose_ack_of_first: usize,
    requests: Vec<Received>,
    /// Event IDs processed (each once: the receiver deduplicates).
    processed: Vec<String>,
    duplicates: usize,
}

type Shared = Arc<Mutex<Inbox>>;

async fn receive(State(inbox): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let mut inbox = inbox.lock().unwrap();
    let timestamp: i64 = ts.parse().unwrap_or(0);
    let verified = inbox.secret.as_deref().is_some_and(|secret| {
        webhook::verify(
            secret,
            &id,
            timestamp,
            &sig,
            &body,
            openpalm_domain::now_unix(),
            webhook::DEFAULT_TOLERANCE_S,
        )
        .is_ok()
    });
    let n = inbox.requests.len();
    inbox.requests.push(Received {
        id: id.clone(),
        timestamp,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
        verified,
    });
    if !verified {
        return StatusCode::UNAUTHORIZED;
    }
    if n < inbox.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if inbox.processed.contains(&id) {
        inbox.duplicates += 1;
    } else {
        inbox.processed.push(id);
    }
    if n < inbox.fail_first + inbox.lose_ack_of_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

/// A receiver on 127.0.0.1; its URL and its inbox.
async fn receiver(inbox: Inbox) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(inbox));
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hooks"), shared)
}

/// Wait (at most 60 s, so that a bug fails instead of hanging) until `done` holds.
async fn until(inbox: &Shared, what: &str, done: impl Fn(&Inbox) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if done(&inbox.lock().unwrap()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_retries(c: &mut openpalm_server::Config) {
    c.webhook_allow_http = true;
    // The receiver listens on loopback, which only an explicit operator range allows.
    c.webhook_allow_private = vec!["127.0.0.0/8".parse().unwrap()];
    c.webhook_retry_base_ms = 50;
    c.webhook_max_attempts = 4;
}

async fn start_fast() -> Env {
    Env::start_in(tempfile::tempdir().unwrap(), fast_retries).await
}

/// Register `url` for `biz` and give the receiver the secret.
async fn register(biz: &Biz, url: &str, events: Option<Value>, inbox: &Shared) -> Value {
    let mut body = json!({ "url": url });
    if let Some(e) = events {
        body["events"] = e;
    }
    let r = biz
        .client
        .post("/v1/webhook-endpoints", &body, Some(&format!("hook-{url}")))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    inbox.lock().unwrap().secret = Some(secret);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_unlinked_and_deleted_arrive_signed_retried_and_once_each() {
    // The first attempt is refused (503), the second one's acknowledgement is lost (500
    // after processing): the event must come again with the same ID and be processed once.
    let (url, inbox) = receiver(Inbox {
        fail_first: 1,
        lose_ack_of_first: 1,
        ..Inbox::default()
    })
    .await;
    let env = start_fast().await;
    let venue = env.business("Venue").await;
    let endpoint = register(&venue, &url, None, &inbox).await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let e = venue.enroll(&kiosk, &palm(61, 0, 3), "e").await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();

    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "member_id", "value": "M-61"}),
            Some("link-1"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201, "{:?}", l.body);
    let link_id = l.body["id"].as_str().unwrap().to_string();
    // Refused, acknowledgement lost, acknowledged: three attempts of the one event.
    until(&inbox, "person.linked, three times", |i| i.requests.len() == 3).await;

    let d = venue
        .client
        .delete(&format!("/v1/people/{pid}/links/{link_id}"))
        .await
        .unwrap();
    assert_eq!(
        (d.status, &d.body["deleted"]),
        (200, &json!(true)),
        "{:?}",
        d.body
    );
    let again = venue
        .client
        .delete(&format!("/v1/people/{pid}/links/{link_id}"))
        .await
        .unwrap();
    assert_eq!((again.status, code(&again)), (404, "not_found"));
    let gone = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": venue.id, "pseudonymous_id": pid, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(gone.status, 200, "{:?}", gone.body);
    until(&inbox, "three events", |i| i.processed.len() == 3).await;

    let inbox = inbox.lock().unwrap().clone_view();
    assert!(
        inbox.requests.iter().all(|r| r.verified),
        "every signature verifies"
    );
    assert_eq!(
        inbox.duplicates, 1,
        "the lost acknowledgement brought the event again"
    );
    // The first event came three times (503, lost ack, ack), always under one ID.
    let first = &inbox.requests[0];
    assert_eq!(inbox.requests.iter().filter(|r| r.id == first.id).count(), 3);
    assert_eq!(inbox.requests[1].id, first.id);
    assert_eq!(inbox.requests[2].id, first.id);
    assert_eq!(
        inbox.requests[1].body, first.body,
        "the same body on every attempt"
    );
    // The service backed off before retrying (a lower bound only: load can only add).
    assert!(inbox.requests[1].at - first.at >= Duration::from_millis(50));
    assert!(inbox.requests[2].at - inbox.requests[1].at >= Duration::from_millis(100));
    assert!(inbox.requests.iter().all(|r| r.timestamp > 0));
    let ids: HashSet<&String> = inbox.requests.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), 3, "three events, stable IDs");

    let by_type = |t: &str| {
        inbox
            .requests
            .iter()
            .find(|r| r.body["type"] == t)
            .unwrap_or_else(|| panic!("no {t}"))
            .body
            .clone()
    };
    let linked = by_type("person.linked");
    assert_eq!(linked["data"]["pseudonymous_id"], pid.as_str());
    assert_eq!(linked["data"]["link"]["id"], link_id.as_str());
    assert_eq!(linked["data"]["link"]["value"], "M-61");
    assert!(linked["timestamp"].as_str().unwrap().ends_with('Z'));
    let unlinked = by_type("person.unlinked");
    assert_eq!(unlinked["data"]["link"]["id"], link_id.as_str());
    assert_eq!(by_type("person.deleted")["data"]["pseudonymous_id"], pid.as_str());

    // The business can see what happened to each delivery.
    let ep = endpoint["id"].as_str().unwrap();
    let log = venue
        .client
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await
        .unwrap();
    assert_eq!(log.status, 200, "{:?}", log.body);
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|d| d["state"] == "delivered"));
    let first_log = items.iter().find(|d| d["event_type"] == "person.linked").unwrap();
    assert_eq!(first_log["attempts"], 3);
    assert_eq!(first_log["last_status"], 204);
    env.stop().await;
}

impl Inbox {
    fn clone_view(&self) -> Inbox {
        Inbox {
            secret: self.secret.clone(),
            fail_first: self.fail_first,
            lose_ack_of_first: self.lose_ack_of_first,
            requests: self.requests.clone(),
            processed: self.processed.clone(),
            duplicates: self.duplicates,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stays_down_gets_every_attempt_then_the_delivery_fails() {
    let (url, inbox) = receiver(Inbox {
        fail_first: usize::MAX,
        ..Inbox::default()
    })
    .await;
    let env = start_fast().await;
    let venue = env.business("Venue").await;
    let endpoint = register(&venue, &url, Some(json!(["person.deleted"])), &inbox).await;
    assert_eq!(endpoint["events"], json!(["person.deleted"]));
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let e = venue.enroll(&kiosk, &palm(62, 0, 3), "e").await;
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    // A link is not subscribed: nothing is sent for it.
    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "member_id", "value": "M-62"}),
            Some("l"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201);
    let r = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": venue.id, "pseudonymous_id": pid, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    until(&inbox, "four attempts", |i| i.requests.len() == 4).await;
    let ep = endpoint["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let log = venue
            .client
            .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
            .await
            .unwrap();
        let d = log.body["items"][0].clone();
        if d["state"] != "pending" || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(state["state"], "failed", "{state}");
    assert_eq!(state["attempts"], 4);
    assert_eq!(state["last_status"], 503);
    assert_eq!(state["event_type"], "person.deleted");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = inbox.lock().unwrap().clone_view();
    assert_eq!(got.requests.len(), 4, "no attempt after the last");
    assert!(got
        .requests
        .iter()
        .all(|r| r.verified && r.body["type"] == "person.deleted"));
    assert_eq!(
        got.requests.iter().map(|r| &r.id).collect::<HashSet<_>>().len(),
        1
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_a_restart_and_delivers_after_it() {
    let (url, inbox) = receiver(Inbox::default()).await;
    // A receiver that is not listening yet: the deliveries stay pending.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/hooks")
    };
    let env = Env::start_in(tempfile::tempdir().unwrap(), |c| {
        fast_retries(c);
        c.webhook_max_attempts = 100;
    })
    .await;
    let venue = env.business("Venue").await;
    let r = venue
        .client
        .post("/v1/webhook-endpoints", &json!({"url": down}), Some("h-down"))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    let down_id = r.body["id"].as_str().unwrap().to_string();
    register(&venue, &url, None, &inbox).await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let e = venue.enroll(&kiosk, &palm(63, 0, 3), "e").await;
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    // Stop the service while that endpoint's delivery is pending; the other one arrives.
    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "member_id", "value": "M-63"}),
            Some("l"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201);
    until(&inbox, "the live endpoint's delivery", |i| i.processed.len() == 1).await;
    let dir = env.stop().await;
    let counts_before = {
        let url = std::fs::read_to_string(dir.path().join("database-url"))
            .unwrap_or_else(|_| openpalm_store::SqlStore::sqlite_url(&dir.path().join("data/openpalm.db")));
        let s = openpalm_store::SqlStore::connect(&url).await.unwrap();
        use openpalm_store::Store;
        let pending = s.webhook_deliveries(&venue.id, &down_id, 10).await.unwrap();
        s.close().await;
        pending
    };
    assert_eq!(counts_before.len(), 1);
    assert_eq!(counts_before[0].state, "pending", "kept across the stop");

    // Restart: the pending delivery is still there; the endpoint is now deleted, so it is
    // cancelled rather than sent; the delivered one is not sent again.
    let env = Env::start_in(dir, fast_retries).await;
    let venue2 = Biz {
        client: openpalm_device::Client::new(&env.base, Some(venue.key.clone())),
        ..venue
    };
    let del = venue2
        .client
        .delete(&format!("/v1/webhook-endpoints/{down_id}"))
        .await
        .unwrap();
    assert_eq!(del.status, 200, "{:?}", del.body);
    let log = venue2
        .client
        .get(&format!("/v1/webhook-endpoints/{down_id}/deliveries"))
        .await
        .unwrap();
    assert_eq!(log.status, 404, "a deleted endpoint is gone for the business");
    let r = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": venue2.id, "pseudonymous_id": pid, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    until(&inbox, "person.deleted after the restart", |i| {
        i.processed.len() == 2
    })
    .await;
    let i = inbox.lock().unwrap().clone_view();
    assert_eq!(i.duplicates, 0);
    assert_eq!(i.requests.len(), 2);
    assert_eq!(i.requests[1].body["type"], "person.deleted");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_validated_tenant_scoped_and_never_show_their_secret_again() {
    let env = Env::start().await; // default configuration: https only
    let a = env.business("A").await;
    let b = env.business("B").await;
    for (i, (url, why)) in [
        ("http://example.test/hooks", "plain http"),
        ("ftp://example.test/hooks", "scheme"),
        ("https://user:pw@example.test/hooks", "credentials"),
        ("not a url", "syntax"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = a
            .client
            .post(
                "/v1/webhook-endpoints",
                &json!({"url": url}),
                Some(&format!("bad-url-{i}")),
            )
            .await
            .unwrap();
        assert_eq!((r.status, code(&r)), (422, "invalid_webhook_url"), "{why}");
    }
    let r = a
        .client
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.test/h", "events": []}),
            Some("none"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (422, "invalid_events"));
    let r = a
        .client
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.test/h", "events": ["person.created"]}),
            Some("bad"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (422, "invalid_body"), "{:?}", r.body);

    let body = json!({"url": "https://example.test/h"});
    let made = a
        .client
        .post("/v1/webhook-endpoints", &body, Some("h1"))
        .await
        .unwrap();
    assert_eq!(made.status, 201);
    let id = made.body["id"].as_str().unwrap().to_string();
    let secret = made.body["secret"].as_str().unwrap().to_string();
    // A retry of the same request gets the same endpoint and secret (not a second one).
    let again = a
        .client
        .post("/v1/webhook-endpoints", &body, Some("h1"))
        .await
        .unwrap();
    assert_eq!((again.status, &again.body), (201, &made.body));
    let listed = a.client.get("/v1/webhook-endpoints").await.unwrap();
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(listed.body["items"][0].get("secret").is_none());
    assert!(!listed.body.to_string().contains(&secret));
    // Neither the endpoint row nor the stored idempotent response holds the secret in clear.
    {
        use openpalm_store::Store;
        let s = openpalm_store::SqlStore::connect(&env.database_url)
            .await
            .unwrap();
        let rec = s.idempotency(&a.id, "h1").await.unwrap().unwrap();
        assert!(!rec.response.contains(&secret));
        let ep = s.webhook_endpoint(&a.id, &id).await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&ep.secret_sealed).contains(&secret));
        s.close().await;
    }
    // Another business sees nothing of it.
    assert_eq!(
        b.client.get("/v1/webhook-endpoints").await.unwrap().body["items"],
        json!([])
    );
    let r = b
        .client
        .delete(&format!("/v1/webhook-endpoints/{id}"))
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (404, "not_found"));
    let r = b
        .client
        .get(&format!("/v1/webhook-endpoints/{id}/deliveries"))
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (404, "not_found"));
    // A key without the webhooks scope is refused.
    let k = a
        .client
        .post(
            "/v1/api-keys",
            &json!({"environment": "test", "scopes": ["people"]}),
            Some("k"),
        )
        .await
        .unwrap();
    let narrow = openpalm_device::Client::new(&env.base, Some(k.body["secret"].as_str().unwrap().into()));
    let r = narrow.get("/v1/webhook-endpoints").await.unwrap();
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = a
        .client
        .delete(&format!("/v1/webhook-endpoints/{id}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        a.client.get("/v1/webhook-endpoints").await.unwrap().body["items"],
        json!([])
    );
    env.stop().await;
}

/// Every payment event of a payment's life arrives signed, once each, with the payment's
/// state and never its card token.
#[tokio::test]
async fn payment_events_arrive_signed_once_each() {
    use openpalm_domain::ids::Purpose;
    let env = start_fast().await;
    let shop = env.business("Shop").await;
    let (url, inbox) = receiver(Inbox::default()).await;
    register(&shop, &url, None, &inbox).await;
    let kiosk = shop.reader(DeviceKind::Kiosk, "desk").await;
    let till = shop.reader(DeviceKind::Checkout, "till").await;
    let pid = common::venue::enroll(&shop, &kiosk, 31, "L-31").await;
    let l = shop
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "payment_token", "value": "tok_sandbox_visa_4321"}),
            Some("card"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201);
    let open = |order: &'static str| {
        let (client, till) = (shop.client.clone(), till.device_id.clone());
        async move {
            let p = client
                .post(
                    "/v1/payments",
                    &json!({"device_id": till, "amount_minor": 1000, "currency": "EUR", "order_reference": order}),
                    Some(order),
                )
                .await
                .unwrap();
            p.body["id"].as_str().unwrap().to_string()
        }
    };
    let pay_with = |pay: String, k: usize| {
        let (client, c) = (
            shop.client.clone(),
            till.seal(Purpose::Identify, &palm(31, 3 + k, 1)[0]).unwrap(),
        );
        async move { client.pay(&pay, "roi", &c).await.unwrap() }
    };
    // Authorised, captured, refunded in part.
    let p1 = open("o1").await;
    assert_eq!(pay_with(p1.clone(), 0).await.body["outcome"], "approved");
    shop.client
        .post(&format!("/v1/payments/{p1}/capture"), &json!({}), None)
        .await
        .unwrap();
    let r = shop
        .client
        .post(
            &format!("/v1/payments/{p1}/refunds"),
            &json!({"amount_minor": 400}),
            Some("re"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Authorised, voided.
    let p2 = open("o2").await;
    pay_with(p2.clone(), 1).await;
    shop.client
        .post(&format!("/v1/payments/{p2}/void"), &json!({}), None)
        .await
        .unwrap();
    // Failed: a stranger three times.
    let p3 = open("o3").await;
    for k in 0..3 {
        let c = till.seal(Purpose::Identify, &palm(97, k, 1)[0]).unwrap();
        shop.client.pay(&p3, "roi", &c).await.unwrap();
    }
    // Expired: authorised, then the clock passes the authorisation's end.
    let p4 = open("o4").await;
    let a = pay_with(p4.clone(), 2).await;
    assert_eq!(a.body["outcome"], "approved", "{:?}", a.body);
    env.running.as_ref().unwrap().state.clock.advance(8 * 86_400);
    let g = shop.client.get(&format!("/v1/payments/{p4}")).await.unwrap();
    assert_eq!(g.body["status"], "expired", "{:?}", g.body);

    let want = [
        (p1.as_str(), "payment.authorized"),
        (p1.as_str(), "payment.captured"),
        (p1.as_str(), "payment.refunded"),
        (p2.as_str(), "payment.authorized"),
        (p2.as_str(), "payment.voided"),
        (p3.as_str(), "payment.failed"),
        (p4.as_str(), "payment.authorized"),
        (p4.as_str(), "payment.expired"),
    ];
    let payments = |i: &Inbox| {
        i.requests
            .iter()
            .filter(|r| r.body["type"].as_str().is_some_and(|t| t.starts_with("payment.")))
            .count()
    };
    until(&inbox, "the payment events", |i| payments(i) >= want.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let i = inbox.lock().unwrap().requests.clone();
    assert!(i.iter().all(|r| r.verified));
    let mut seen: Vec<(String, String)> = i
        .iter()
        .filter(|r| r.body["type"].as_str().is_some_and(|t| t.starts_with("payment.")))
        .map(|r| {
            (
                r.body["data"]["id"].as_str().unwrap_or("").to_string(),
                r.body["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    want.sort();
    assert_eq!(seen, want, "each event once");
    let refunded = i.iter().find(|r| r.body["type"] == "payment.refunded").unwrap();
    assert_eq!(refunded.body["data"]["refunded"]["minor"], 400);
    assert_eq!(refunded.body["data"]["customer"], pid.as_str());
    assert!(
        !i.iter().any(
            |r| r.body["type"].as_str().is_some_and(|t| t.starts_with("payment."))
                && r.body.to_string().contains("tok_sandbox")
        ),
        "no card token in a payment event"
    );
    env.stop().await;
}
