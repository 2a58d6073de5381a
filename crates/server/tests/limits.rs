//! Abuse limits over real HTTP: each limit answers a typed `429 rate_limited` problem with
//! `Retry-After` once its allowance is spent, and only for the key, device or address that
//! spent it; and webhook targets that point inside the network are refused, at registration
//! and again at delivery.

mod common;

use common::*;
use openpalm_domain::ids::DeviceKind;
use openpalm_server::limits::{LimitSettings, Rate};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A raw GET with `key`, so the headers can be read.
async fn raw_get(base: &str, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn assert_limited(r: reqwest::Response, limit: &str) {
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "rate_limited");
    assert_eq!(b["limit"], limit);
    assert_eq!(b["retry_after_seconds"], retry);
}

fn with_limits(f: impl FnOnce(&mut LimitSettings)) -> impl FnOnce(&mut openpalm_server::Config) {
    move |c| {
        let mut l = LimitSettings::default();
        f(&mut l);
        c.limits = l;
    }
}

#[tokio::test]
async fn each_api_key_has_its_own_allowance() {
    let env = Env::start_in(
        tempfile::tempdir().unwrap(),
        with_limits(|l| l.api_key = Rate::new(60, 5)),
    )
    .await;
    let a = env.business("A").await;
    let b = env.business("B").await;
    for _ in 0..5 {
        assert_eq!(raw_get(&env.base, "/v1/devices", &a.key).await.status(), 200);
    }
    assert_limited(raw_get(&env.base, "/v1/devices", &a.key).await, "api_key").await;
    // Another business's key is not slowed down by it.
    assert_eq!(raw_get(&env.base, "/v1/devices", &b.key).await.status(), 200);
    // The allowance refills at one a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(raw_get(&env.base, "/v1/devices", &a.key).await.status(), 200);
    env.stop().await;
}

#[tokio::test]
async fn failed_authentications_block_the_source_address() {
    let env = Env::start_in(
        tempfile::tempdir().unwrap(),
        with_limits(|l| l.failed_auth_per_address = Rate::new(1, 3)),
    )
    .await;
    let a = env.business("A").await;
    let wrong = "op_test_0000000000000000000000000000000000000000000000000000000000000000";
    for _ in 0..3 {
        assert_eq!(raw_get(&env.base, "/v1/devices", wrong).await.status(), 401);
    }
    assert_limited(
        raw_get(&env.base, "/v1/devices", wrong).await,
        "failed_auth_per_address",
    )
    .await;
    // While blocked, even the right key from that address waits: guessing gains nothing.
    assert_limited(
        raw_get(&env.base, "/v1/devices", &a.key).await,
        "failed_auth_per_address",
    )
    .await;
    // Person sessions and the admin token are behind the same limit.
    assert_limited(
        raw_get(&env.base, "/v1/me", "ops_guess").await,
        "failed_auth_per_address",
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn identification_attempts_are_limited_per_device_and_only_once_proven() {
    let env = Env::start_in(
        tempfile::tempdir().unwrap(),
        with_limits(|l| l.identify_per_device = Rate::new(1, 2)),
    )
    .await;
    let biz = env.business("Venue").await;
    let gate = biz.reader(DeviceKind::Gate, "north").await;
    let other = biz.reader(DeviceKind::Gate, "south").await;
    let probe = palm(7, 0, 1).remove(0);
    // A capture under the gate's name that the gate did not sign spends nothing.
    let mut forged = gate
        .seal(openpalm_domain::ids::Purpose::Identify, &probe)
        .unwrap();
    forged.signature = "A".repeat(86) + "==";
    let r = biz.client.identify("roi", &forged).await.unwrap();
    assert_eq!(r.status, 403, "{:?}", r.body);
    for _ in 0..2 {
        let r = biz.identify(&gate, &probe).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = biz.identify(&gate, &probe).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(code(&r), "rate_limited");
    assert_eq!(r.body["limit"], "identify_per_device");
    assert!(r.body["retry_after_seconds"].as_u64().unwrap() >= 50);
    // The other gate of the same business is unaffected.
    assert_eq!(biz.identify(&other, &probe).await.status, 200);
    env.stop().await;
}

#[tokio::test]
async fn enrollment_attempts_are_limited_per_kiosk_and_a_refused_one_writes_nothing() {
    let env = Env::start_in(
        tempfile::tempdir().unwrap(),
        with_limits(|l| l.enroll_per_kiosk = Rate::new(1, 1)),
    )
    .await;
    let biz = env.business("Venue").await;
    let kiosk = biz.reader(DeviceKind::Kiosk, "hall").await;
    let e = biz.enroll(&kiosk, &palm(11, 0, 3), "e1").await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let before = env.counts().await;
    let e = biz.enroll(&kiosk, &palm(12, 0, 3), "e2").await;
    assert_eq!(e.status, 429, "{:?}", e.body);
    assert_eq!(e.body["limit"], "enroll_per_kiosk");
    assert_eq!(env.counts().await, before, "nothing written, not even the nonces");
    env.stop().await;
}

#[tokio::test]
async fn the_device_limit_covers_every_capture_request() {
    let env = Env::start_in(
        tempfile::tempdir().unwrap(),
        with_limits(|l| l.device = Rate::new(1, 1)),
    )
    .await;
    let biz = env.business("Venue").await;
    let gate = biz.reader(DeviceKind::Gate, "north").await;
    let probe = palm(7, 0, 1).remove(0);
    assert_eq!(biz.identify(&gate, &probe).await.status, 200);
    let r = biz.identify(&gate, &probe).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["limit"], "device");
    env.stop().await;
}

#[tokio::test]
async fn webhook_targets_inside_the_network_are_refused_at_registration() {
    let env = Env::start().await;
    let biz = env.business("Hooks").await;
    for (i, url) in [
        "https://127.0.0.1/h",
        "https://127.1.2.3:8443/h",
        "https://[::1]/h",
        "https://10.0.0.5/h",
        "https://172.16.9.9/h",
        "https://192.168.1.1/h",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/h",
        "https://[fe80::1]/h",
        "https://[::ffff:127.0.0.1]/h",
        "https://100.64.1.1/h",
        "https://0.0.0.0/h",
        "https://localhost/h",
        "https://hooks.localhost/h",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://intranet/h",
    ]
    .iter()
    .enumerate()
    {
        let r = biz
            .client
            .post(
                "/v1/webhook-endpoints",
                &json!({ "url": url }),
                Some(&format!("w{i}")),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 422, "{url}: {:?}", r.body);
        assert_eq!(code(&r), "webhook_target_refused", "{url}");
    }
    let r = biz.client.get("/v1/webhook-endpoints").await.unwrap();
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0), "{:?}", r.body);
    // A public address is accepted (nothing is sent until an event happens).
    let r = biz
        .client
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://93.184.216.34/hooks"}),
            Some("public"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    env.stop().await;
}

#[tokio::test]
async fn an_allowed_private_range_is_accepted_and_checked_again_at_delivery() {
    // A receiver on loopback, registered while the operator allowed loopback...
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let allow = |c: &mut openpalm_server::Config| {
        c.webhook_allow_http = true;
        c.webhook_retry_base_ms = 50;
        c.webhook_max_attempts = 2;
        c.webhook_allow_private = vec!["127.0.0.0/8".parse().unwrap()];
    };
    let env = Env::start_in(tempfile::tempdir().unwrap(), allow).await;
    let biz = env.business("Hooks").await;
    let url = format!("http://{addr}/hooks");
    let r = biz
        .client
        .post("/v1/webhook-endpoints", &json!({ "url": url }), Some("w"))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let endpoint = r.body["id"].as_str().unwrap().to_string();
    // ...and the operator takes the allowance back: the stored endpoint is refused at
    // delivery, and the receiver never hears a thing.
    let dir = env.stop().await;
    let env = Env::start_in(dir, |c| {
        c.webhook_allow_http = true;
        c.webhook_retry_base_ms = 50;
        c.webhook_max_attempts = 2;
    })
    .await;
    let biz = Biz {
        client: openpalm_device::Client::new(&env.base, Some(biz.key.clone())),
        ..biz
    };
    let kiosk = biz.reader(DeviceKind::Kiosk, "hall").await;
    let e = biz.enroll(&kiosk, &palm(31, 0, 3), "e").await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    let l = biz
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "member_id", "value": "M-31"}),
            Some("l"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201, "{:?}", l.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    let item = loop {
        let log = biz
            .client
            .get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"))
            .await
            .unwrap();
        let item = log.body["items"][0].clone();
        if item["state"] == "failed" {
            break item;
        }
        assert!(Instant::now() < deadline, "no failed delivery: {:?}", log.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let err = item["last_error"].as_str().unwrap_or("");
    assert!(err.contains("loopback"), "{err}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    env.stop().await;
}

/// A router with one slow route behind the service's admission layer.
fn slow_router(state: openpalm_server::AppState, ms: u64) -> axum::Router {
    axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(move || async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "done"
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            openpalm_server::admission::admit,
        ))
}

async fn call(r: axum::Router) -> (u16, Option<String>, Value) {
    use tower::ServiceExt;
    let res = r
        .oneshot(
            axum::http::Request::get("/slow")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (
        status,
        retry,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_request_past_the_time_limit_is_answered_503_and_more_than_the_slots_wait_then_503() {
    let env = Env::start_in(
        tempfile::tempdir().unwrap(),
        with_limits(|l| {
            l.request_timeout_ms = 200;
            l.max_concurrent_requests = 1;
            l.queue_wait_ms = 100;
        }),
    )
    .await;
    let state = env.running.as_ref().unwrap().state.clone();
    let (status, retry, b) = call(slow_router(state.clone(), 1_000)).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")));
    assert_eq!(b["code"], "request_timeout");
    // One slot: while a request holds it, a second waits 100 ms, then is turned away...
    let first = tokio::spawn(call(slow_router(state.clone(), 150)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, _, b) = call(slow_router(state.clone(), 0)).await;
    assert_eq!(status, 503);
    assert_eq!(b["code"], "overloaded");
    assert_eq!(first.await.unwrap().0, 200);
    // ...and one that finds the slot free within its wait is served.
    let first = tokio::spawn(call(slow_router(state.clone(), 50)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(call(slow_router(state, 0)).await.0, 200);
    assert_eq!(first.await.unwrap().0, 200);
    env.stop().await;
}

#[tokio::test]
async fn stopping_drains_the_requests_in_flight() {
    let env = Env::start().await;
    let biz = env.business("Venue").await;
    let kiosk = biz.reader(DeviceKind::Kiosk, "hall").await;
    // Enrollments in flight when the stop begins are answered, and are there afterwards.
    let mut inflight = Vec::new();
    for i in 0..4u64 {
        let captures: Vec<_> = palm(200 + i, 0, 3)
            .iter()
            .map(|img| kiosk.seal(openpalm_domain::ids::Purpose::Enroll, img).unwrap())
            .collect();
        let client = biz.client.clone();
        inflight.push(tokio::spawn(async move {
            client
                .enroll(
                    &format!("drain-{i}"),
                    1,
                    "roi",
                    &[(openpalm_domain::ids::HandSide::Left, captures)],
                    &[],
                )
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let url = env.database_url.clone();
    let dir = env.stop().await;
    let mut answered = 0;
    for t in inflight {
        // One not yet accepted when the listener closed is refused, never half-done.
        if let Ok(a) = t.await.unwrap() {
            assert_eq!(a.status, 201, "{:?}", a.body);
            answered += 1;
        }
    }
    let store = openpalm_store::SqlStore::connect(&url).await.unwrap();
    let people = store
        .table_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == "people")
        .unwrap()
        .1;
    store.close().await;
    assert!(answered > 0, "the enrollments were in flight when the stop began");
    assert_eq!(
        people as usize, answered,
        "every answered enrollment is stored, no other"
    );
    drop(dir);
}
