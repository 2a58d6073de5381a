//! The service end to end over real HTTP, real cryptography and SQLite.

mod common;

use common::*;
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_link_identify_happy_path() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall A").await;
    let gate = venue.reader(DeviceKind::Gate, "north gate").await;

    let consent = env.anonymous().get("/v1/consent-texts/current").await.unwrap();
    assert_eq!(consent.status, 200);
    assert_eq!(consent.body["version"], 1);

    let alice = palm(1, 0, 4);
    let bob = palm(2, 0, 4);
    let a = venue.enroll(&kiosk, &alice[..3], "enroll-alice").await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let pid = a.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    assert!(pid.starts_with("pp_"));
    assert_eq!(a.body["consent"]["site"], "hall A");
    assert_eq!(a.body["consent"]["device_id"], kiosk.device_id.as_str());
    assert_eq!(a.body["hands"][0]["templates"], 3);
    let b = venue.enroll(&kiosk, &bob[..3], "enroll-bob").await;
    assert_eq!(b.status, 201, "{:?}", b.body);
    assert_ne!(b.body["person"]["pseudonymous_id"], pid.as_str());

    // Link a member ID and a phone; a card number is refused.
    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "member_id", "value": "M-0001"}),
            Some("link-1"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201, "{:?}", l.body);
    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "phone", "value": "+33 6 12 34 56 78"}),
            Some("link-2"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201);
    assert!(l.body["value"].is_null(), "a phone is never shown back");
    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "payment_token", "value": "4111111111111111"}),
            Some("link-3"),
        )
        .await
        .unwrap();
    assert_eq!((l.status, code(&l)), (422, "invalid_link"));

    // Alice's fourth capture at the gate: her pseudonymous ID and the venue's links.
    let id = venue.identify(&gate, &alice[3]).await;
    assert_eq!(id.status, 200, "{:?}", id.body);
    assert_eq!(id.body["decision"], "match");
    assert_eq!(id.body["person"]["pseudonymous_id"], pid.as_str());
    assert_eq!(id.body["site"], "north gate");
    let links = id.body["person"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    let member = links.iter().find(|l| l["kind"] == "member_id").unwrap();
    assert_eq!(member["value"], "M-0001");
    let phone = links.iter().find(|l| l["kind"] == "phone").unwrap();
    assert!(phone["value"].is_null());
    let id = venue.identify(&gate, &bob[3]).await;
    assert_eq!(id.body["decision"], "match");
    assert_eq!(
        id.body["person"]["pseudonymous_id"],
        b.body["person"]["pseudonymous_id"]
    );

    // Someone never enrolled: no match.
    let stranger = palm(3, 0, 1);
    let id = venue.identify(&gate, &stranger[0]).await;
    assert_eq!(id.status, 200);
    assert_eq!(id.body["decision"], "no_match");
    assert!(id.body["person"].is_null());

    // The match log has Alice's identification, with business, device, site, time.
    let log = venue
        .client
        .get(&format!("/v1/people/{pid}/match-log"))
        .await
        .unwrap();
    assert_eq!(log.status, 200);
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["decision"], "match");
    assert_eq!(items[0]["device_id"], gate.device_id.as_str());
    assert_eq!(items[0]["site"], "north gate");

    // Another business's gate finds nobody: Alice is not in its scope.
    let shop = env.business("Shop").await;
    let shop_gate = shop.reader(DeviceKind::Checkout, "till 1").await;
    let id = shop.identify(&shop_gate, &alice[3]).await;
    assert_eq!(id.status, 200);
    assert_eq!(id.body["decision"], "no_match");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_is_idempotent_and_refuses_duplicates() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let alice = palm(11, 0, 6);
    let captures: Vec<_> = alice[..3]
        .iter()
        .map(|i| kiosk.seal(Purpose::Enroll, i).unwrap())
        .collect();
    let hands = [(HandSide::Right, captures)];
    let first = venue.client.enroll("k-1", 1, "roi", &hands, &[]).await.unwrap();
    assert_eq!(first.status, 201, "{:?}", first.body);
    let before = env.counts().await;
    // Same key, same body (same sealed captures): the same response, nothing new written.
    let again = venue.client.enroll("k-1", 1, "roi", &hands, &[]).await.unwrap();
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(env.counts().await, before);
    // Same key, different body: refused.
    let other = venue
        .client
        .enroll("k-1", 1, "roi", &hands, &[("member_id".into(), "X".into())])
        .await
        .unwrap();
    assert_eq!((other.status, code(&other)), (422, "idempotency_key_reused"));
    // No key: refused.
    let none = venue
        .client
        .post(
            "/v1/enrollments",
            &json!({"consent": {"text_version": 1, "accepted": true}, "input": "roi", "hands": []}),
            None,
        )
        .await
        .unwrap();
    assert_eq!((none.status, code(&none)), (400, "idempotency_key_required"));
    // The same palm from other captures, under a new key: already enrolled; nothing written
    // but the nonces of the captures.
    let dup = venue.enroll(&kiosk, &alice[3..6], "k-2").await;
    assert_eq!(
        (dup.status, code(&dup)),
        (409, "already_enrolled"),
        "{:?}",
        dup.body
    );
    let after = env.counts().await;
    for ((t, a), (_, b)) in after.iter().zip(before.iter()) {
        if *t != "device_nonces" {
            assert_eq!(a, b, "{t} changed");
        }
    }
    // Refused without consent, with an old text version, with too few captures.
    let c: Vec<_> = palm(12, 0, 3)
        .iter()
        .map(|i| kiosk.seal(Purpose::Enroll, i).unwrap())
        .collect();
    let mut body = json!({"consent": {"text_version": 1, "accepted": false}, "input": "roi",
        "hands": [{"hand": "left", "captures": c}]});
    let a = venue
        .client
        .post("/v1/enrollments", &body, Some("k-3"))
        .await
        .unwrap();
    assert_eq!((a.status, code(&a)), (422, "consent_required"));
    body["consent"] = json!({"text_version": 0, "accepted": true});
    let a = venue
        .client
        .post("/v1/enrollments", &body, Some("k-3"))
        .await
        .unwrap();
    assert_eq!((a.status, code(&a)), (422, "consent_text_outdated"));
    body["consent"] = json!({"text_version": 1, "accepted": true});
    body["hands"][0]["captures"].as_array_mut().unwrap().pop();
    let a = venue
        .client
        .post("/v1/enrollments", &body, Some("k-3"))
        .await
        .unwrap();
    assert_eq!((a.status, code(&a)), (422, "not_enough_captures"));
    // Captures of two different palms for one hand.
    let mixed: Vec<_> = [palm(13, 0, 2), palm(14, 0, 1)].concat();
    let a = venue.enroll(&kiosk, &mixed, "k-4").await;
    assert_eq!(
        (a.status, code(&a)),
        (422, "inconsistent_captures"),
        "{:?}",
        a.body
    );
    assert_eq!(a.body["capture_index"], 2);
    // A gate cannot enroll.
    let gate = venue.reader(DeviceKind::Gate, "g").await;
    let a = venue.enroll(&gate, &palm(15, 0, 3), "k-5").await;
    assert_eq!((a.status, code(&a)), (403, "wrong_purpose"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_protocol_violation_has_its_own_error_and_writes_nothing() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let gate = venue.reader(DeviceKind::Gate, "gate").await;
    let alice = palm(21, 0, 4);
    assert_eq!(venue.enroll(&kiosk, &alice[..3], "e").await.status, 201);
    let probe = &alice[3];
    let baseline = env.counts().await;

    // Unknown device: a made-up ID, and another business's device.
    let mut c = gate.seal(Purpose::Identify, probe).unwrap();
    c.device_id = "dev_00000000000000000000000000000000".into();
    let a = venue.client.identify("roi", &c).await.unwrap();
    assert_eq!((a.status, code(&a)), (403, "unknown_device"));
    let other = env.business("Other").await;
    let foreign = other.reader(DeviceKind::Gate, "x").await;
    let a = venue.identify(&foreign, probe).await;
    assert_eq!((a.status, code(&a)), (403, "unknown_device"));
    let baseline = {
        // Registering the other business and its device wrote rows; re-take the baseline.
        let now = env.counts().await;
        assert_eq!(
            now.iter().find(|(t, _)| *t == "device_nonces"),
            baseline.iter().find(|(t, _)| *t == "device_nonces")
        );
        now
    };

    // Bad signature: a field changed after signing.
    let mut c = gate.seal(Purpose::Identify, probe).unwrap();
    c.timestamp += 1;
    let a = venue.client.identify("roi", &c).await.unwrap();
    assert_eq!((a.status, code(&a)), (403, "bad_signature"));

    // Stale timestamp, both ways, correctly signed.
    let now = openpalm_domain::now_unix();
    for t in [now - 120, now + 120] {
        let c = gate.seal_at(Purpose::Identify, probe, t).unwrap();
        let a = venue.client.identify("roi", &c).await.unwrap();
        assert_eq!((a.status, code(&a)), (400, "stale_timestamp"));
    }

    // Wrong purpose: an enrollment capture sent for identification.
    let c = gate.seal(Purpose::Enroll, probe).unwrap();
    let a = venue.client.identify("roi", &c).await.unwrap();
    assert_eq!((a.status, code(&a)), (403, "wrong_purpose"));
    assert_eq!(env.counts().await, baseline, "refused captures wrote something");

    // Replayed nonce: the first use is answered and logged, the replay is refused and
    // writes nothing.
    let c = gate.seal(Purpose::Identify, probe).unwrap();
    let a = venue.client.identify("roi", &c).await.unwrap();
    assert_eq!(a.body["decision"], "match", "{:?}", a.body);
    let after_first = env.counts().await;
    let a = venue.client.identify("roi", &c).await.unwrap();
    assert_eq!((a.status, code(&a)), (409, "replayed_nonce"));
    assert_eq!(env.counts().await, after_first);

    // Revoked device.
    let r = venue
        .client
        .post(
            &format!("/v1/devices/{}/revoke", gate.device_id),
            &json!({}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["revoked_at"].is_i64());
    let before = env.counts().await;
    let a = venue.identify(&gate, probe).await;
    assert_eq!((a.status, code(&a)), (403, "device_revoked"));
    assert_eq!(env.counts().await, before);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_typed_problem() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_in(dir, |c| c.max_body_bytes = 512 * 1024).await;
    let venue = env.business("Venue").await;
    let gate = venue.reader(DeviceKind::Gate, "g").await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/identifications", env.base);

    // Malformed JSON.
    let r = http
        .post(&url)
        .bearer_auth(&venue.key)
        .header("content-type", "application/json")
        .body("{\"input\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("x-request-id"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "malformed_json");
    assert_eq!(v["type"], "https://openpalm.dev/problems/malformed_json");
    assert_eq!(v["status"], 400);

    // JSON of the wrong shape.
    let a = venue
        .client
        .post("/v1/identifications", &json!({"input": "roi"}), None)
        .await
        .unwrap();
    assert_eq!((a.status, code(&a)), (422, "invalid_body"));

    // Oversize body.
    let big = vec![b'a'; 600 * 1024];
    let r = http
        .post(&url)
        .bearer_auth(&venue.key)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "payload_too_large");

    // Not JSON at all.
    let r = http
        .post(&url)
        .bearer_auth(&venue.key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // A capture that is not a palm, and one that is not an image. (A whole-hand capture:
    // the engine's ROI path currently accepts a flat or noise crop; reported to the engine.)
    let c = gate.seal(Purpose::Identify, &flat_grey_png()).unwrap();
    let a = venue.client.identify("hand", &c).await.unwrap();
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert_eq!(a.body["capture_refused"], true);
    assert!(
        openpalm_engine::AcquireFailure::ALL
            .iter()
            .any(|f| f.code() == code(&a)),
        "engine reason expected, got {:?}",
        a.body
    );
    assert_eq!(code(&a), "no_hand");
    let a = venue.identify(&gate, b"definitely not an image").await;
    assert_eq!((a.status, code(&a)), (422, "unsupported_format"));

    // Unknown, malformed and missing API keys.
    for key in [
        Some("op_test_0000000000000000000000000000000000000000000000000000000000000000"),
        Some("nonsense"),
        None,
    ] {
        let c = openpalm_device::Client::new(&env.base, key.map(str::to_string));
        let a = c.get("/v1/devices").await.unwrap();
        assert_eq!(a.status, 401, "{key:?}");
        assert!(matches!(code(&a), "invalid_api_key" | "missing_credentials"));
    }
    // A wrong admin token.
    let c = openpalm_device::Client::new(&env.base, Some("wrong-admin-token-wrong-admin-token-xx".into()));
    let a = c
        .post("/v1/businesses", &json!({"name": "x"}), None)
        .await
        .unwrap();
    assert_eq!((a.status, code(&a)), (401, "invalid_admin_token"));

    // Unknown route and wrong method are problems too, with a request ID.
    let r = http.get(format!("{}/v1/nothing", env.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = http
        .delete(format!("{}/v1/devices", env.base))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["x-request-id"], "trace-123");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_are_not_found() {
    let env = Env::start().await;
    let a = env.business("A").await;
    let b = env.business("B").await;
    let kiosk = a.reader(DeviceKind::Kiosk, "a").await;
    let e = a.enroll(&kiosk, &palm(31, 0, 3), "e").await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    let dev = kiosk.device_id.clone();
    let key = a.key_id.clone();
    let gets = [
        format!("/v1/devices/{dev}"),
        format!("/v1/people/{pid}/links"),
        format!("/v1/people/{pid}/match-log"),
    ];
    let posts = [
        (format!("/v1/devices/{dev}/revoke"), json!({})),
        (
            format!("/v1/people/{pid}/links"),
            json!({"kind": "member_id", "value": "B-1"}),
        ),
        (format!("/v1/api-keys/{key}/rotate"), json!({})),
        (format!("/v1/api-keys/{key}/revoke"), json!({})),
    ];
    let before = env.counts().await;
    for p in &gets {
        let r = b.client.get(p).await.unwrap();
        assert_eq!((r.status, code(&r)), (404, "not_found"), "GET {p}");
        // The owner sees it.
        assert_eq!(a.client.get(p).await.unwrap().status, 200, "GET {p} as owner");
    }
    for (p, body) in &posts {
        let r = b.client.post(p, body, Some("tenancy")).await.unwrap();
        assert_eq!((r.status, code(&r)), (404, "not_found"), "POST {p}");
    }
    assert_eq!(env.counts().await, before);
    // B's listings show nothing of A.
    let r = b.client.get("/v1/devices").await.unwrap();
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
    let r = b.client.get("/v1/api-keys").await.unwrap();
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    // A's kiosk used with B's key is an unknown device.
    let r = b.enroll(&kiosk, &palm(32, 0, 3), "e").await;
    assert_eq!((r.status, code(&r)), (403, "unknown_device"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_and_revoke_and_devices_page() {
    let env = Env::start().await;
    let a = env.business("A").await;
    // A narrow key cannot manage devices.
    let k = a
        .client
        .post(
            "/v1/api-keys",
            &json!({"environment": "test", "scopes": ["identify"]}),
            Some("narrow-key"),
        )
        .await
        .unwrap();
    assert_eq!(k.status, 201);
    let secret = k.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("op_test_"));
    let narrow = openpalm_device::Client::new(&env.base, Some(secret));
    let r = narrow.get("/v1/devices").await.unwrap();
    assert_eq!((r.status, code(&r)), (403, "insufficient_scope"));
    // Rotation: the new key works, the old one does not.
    let r = a
        .client
        .post(
            &format!("/v1/api-keys/{}/rotate", a.key_id),
            &json!({}),
            Some("rotate-1"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Rotation is a create: without an Idempotency-Key it is refused.
    let no_key = a
        .client
        .post(&format!("/v1/api-keys/{}/rotate", a.key_id), &json!({}), None)
        .await
        .unwrap();
    assert_eq!(no_key.status, 401, "the old key is already revoked");
    let new = openpalm_device::Client::new(&env.base, Some(r.body["secret"].as_str().unwrap().to_string()));
    assert_eq!(a.client.get("/v1/devices").await.unwrap().status, 401);
    assert_eq!(new.get("/v1/devices").await.unwrap().status, 200);
    // Revocation.
    let id = r.body["id"].as_str().unwrap();
    let r = new
        .post(&format!("/v1/api-keys/{id}/revoke"), &json!({}), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(new.get("/v1/devices").await.unwrap().status, 401);

    // Cursor pages over devices.
    let b = env.business("B").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            b.client
                .register_device(DeviceKind::Gate, &format!("s{i}"))
                .await
                .unwrap()
                .device_id,
        );
    }
    let mut seen = Vec::new();
    let mut path = "/v1/devices?limit=2".to_string();
    loop {
        let r = b.client.get(&path).await.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/devices?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    seen.sort();
    assert_eq!(seen, sorted);
    let r = b.client.get("/v1/devices?limit=0").await.unwrap();
    assert_eq!((r.status, code(&r)), (400, "invalid_limit"));
    let r = b.client.get("/v1/devices?cursor=zzz").await.unwrap();
    assert_eq!((r.status, code(&r)), (400, "invalid_cursor"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_keys_people_and_their_matches() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let gate = venue.reader(DeviceKind::Gate, "gate").await;
    let alice = palm(41, 0, 4);
    let e = venue.enroll(&kiosk, &alice[..3], "e").await;
    assert_eq!(e.status, 201);
    let key_before = env.anonymous().get("/v1/service-key").await.unwrap().body["public_key"].clone();
    let dir = env.stop().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/service-keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The database holds no template in the clear: the template magic never appears.
        if !on_postgres() {
            let mut db = std::fs::read(dir.path().join("data/openpalm.db")).unwrap();
            // Whatever the write-ahead log still holds too.
            db.extend(std::fs::read(dir.path().join("data/openpalm.db-wal")).unwrap_or_default());
            assert!(!db.windows(4).any(|w| w == b"OPTM"));
            let hex_magic = b"4f50544d";
            assert!(!db.windows(8).any(|w| w == hex_magic));
        }
    }

    let env = Env::start_in(dir, |_| {}).await;
    let venue2 = openpalm_device::Client::new(&env.base, Some(venue.key.clone()));
    assert_eq!(
        env.anonymous().get("/v1/service-key").await.unwrap().body["public_key"],
        key_before
    );
    let h = env.anonymous().get("/v1/health").await.unwrap();
    assert_eq!(h.body["templates"], 3);
    let c = gate.seal(Purpose::Identify, &alice[3]).unwrap();
    let a = venue2.identify("roi", &c).await.unwrap();
    assert_eq!(a.body["decision"], "match", "{:?}", a.body);
    assert_eq!(
        a.body["person"]["pseudonymous_id"],
        e.body["person"]["pseudonymous_id"]
    );

    // A key file others can read is refused at start, with the reason.
    let dir = env.stop().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join("data/service-keys");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = config(dir.path());
        c.database_url = std::fs::read_to_string(dir.path().join("database-url")).ok();
        let err = openpalm_server::start(c).await.err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_every_listed_route_exists() {
    let env = Env::start().await;
    let doc = env.anonymous().get("/openapi.json").await.unwrap();
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let routes = openpalm_server::api::routes();
    assert!(routes.len() >= 18);
    let http = reqwest::Client::new();
    for r in &routes {
        let op = &doc.body["paths"][r.path][r.method];
        assert_eq!(
            op["operationId"], r.operation_id,
            "{} {} missing from /openapi.json",
            r.method, r.path
        );
        // The router answers this method and path (anything but "no such route" or 405).
        let path = r
            .path
            .replace("{id}", "x")
            .replace("{pseudonymous_id}", "x")
            .replace("{link_id}", "x");
        let req = match r.method {
            "get" => http.get(format!("{}{path}", env.base)),
            "post" => http.post(format!("{}{path}", env.base)).json(&json!({})),
            "delete" => http.delete(format!("{}{path}", env.base)),
            "put" => http.put(format!("{}{path}", env.base)).json(&json!({})),
            m => panic!("unexpected method {m}"),
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let v: serde_json::Value = res.json().await.unwrap_or_default();
        assert!(
            status != 405 && v["code"] != "no_such_route",
            "{} {}: {status} {v}",
            r.method,
            r.path
        );
    }
    // And nothing is documented twice or left undocumented by method.
    let n: usize = doc.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(n, routes.len());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_honours_its_idempotency_key() {
    let env = Env::start().await;
    let a = env.business("A").await;
    let key = base64_key();
    let body = json!({"kind": "gate", "site": "north", "public_key": key});
    let first = a.client.post("/v1/devices", &body, Some("dev-1")).await.unwrap();
    assert_eq!(first.status, 201, "{:?}", first.body);
    let before = env.counts().await;
    let again = a.client.post("/v1/devices", &body, Some("dev-1")).await.unwrap();
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(env.counts().await, before, "a replay creates nothing");
    let other = json!({"kind": "gate", "site": "south", "public_key": key});
    let r = a.client.post("/v1/devices", &other, Some("dev-1")).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, "idempotency_key_reused"));
    // The same key on another endpoint is another request.
    let r = a
        .client
        .post(
            "/v1/api-keys",
            &json!({"environment": "test", "scopes": ["people"]}),
            Some("dev-1"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (422, "idempotency_key_reused"));
    let key_body = json!({"environment": "test", "scopes": ["people"]});
    for (path, b) in [("/v1/devices", &body), ("/v1/api-keys", &key_body)] {
        let r = a.client.post(path, b, None).await.unwrap();
        assert_eq!((r.status, code(&r)), (400, "idempotency_key_required"), "{path}");
    }
    // Keys are per business: B may use "dev-1" for its own device.
    let b = env.business("B").await;
    let r = b.client.post("/v1/devices", &body, Some("dev-1")).await.unwrap();
    assert_eq!(r.status, 201);
    assert_ne!(r.body["id"], first.body["id"]);
    env.stop().await;
}

fn base64_key() -> String {
    use base64::Engine as _;
    let k = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    base64::engine::general_purpose::STANDARD.encode(k.verifying_key().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_shreds_the_person_everywhere() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall").await;
    let gate = venue.reader(DeviceKind::Gate, "gate").await;
    let alice = palm(51, 0, 5);
    let e = venue.enroll(&kiosk, &alice[..3], "e").await;
    assert_eq!(e.status, 201);
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    let l = venue
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "member_id", "value": "M"}),
            Some("l"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201);
    let id = venue.identify(&gate, &alice[3]).await;
    assert_eq!(id.body["decision"], "match", "{:?}", id.body);

    // Another business cannot erase the venue's member.
    let other = env.business("Other").await;
    let r = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": other.id, "pseudonymous_id": pid, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (404, "not_found"));

    let r = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": venue.id, "pseudonymous_id": pid, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        venue.identify(&gate, &alice[4]).await.body["decision"],
        "no_match"
    );
    let r = venue
        .client
        .get(&format!("/v1/people/{pid}/links"))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = env.admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": venue.id, "pseudonymous_id": pid, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 404, "erasing twice finds nobody");
    let counts: std::collections::HashMap<_, _> = env.counts().await.into_iter().collect();
    assert_eq!(counts["templates"], 0);
    assert_eq!(counts["links"], 0);
    assert_eq!(counts["memberships"], 0);
    assert_eq!(counts["consents"], 1, "the record of consent stays");

    // After a restart the person is still gone, and the palm may enroll afresh.
    let dir = env.stop().await;
    let env = Env::start_in(dir, |_| {}).await;
    assert_eq!(
        env.anonymous().get("/v1/health").await.unwrap().body["templates"],
        0
    );
    let venue2 = Biz {
        id: venue.id.clone(),
        key_id: venue.key_id.clone(),
        key: venue.key.clone(),
        client: openpalm_device::Client::new(&env.base, Some(venue.key.clone())),
    };
    let again = venue2.enroll(&kiosk, &alice[1..4], "e2").await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_ne!(again.body["person"]["pseudonymous_id"], pid.as_str());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_enrolls_and_identifies_a_folder() {
    use openpalm_device::sim::{run, SimOptions};
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let images = env.dir.path().join("people");
    for id in 0..3u64 {
        let d = images.join(format!("person{id}"));
        std::fs::create_dir_all(&d).unwrap();
        for (k, png) in palm(60 + id, 0, 4).iter().enumerate() {
            std::fs::write(d.join(format!("{k}.png")), png).unwrap();
        }
    }
    let opts = |kind, key: &str| SimOptions {
        kind,
        server: env.base.clone(),
        api_key: venue.key.clone(),
        images: images.clone(),
        device_key: Some(env.dir.path().join(key)),
        site: "sim".into(),
        input: "roi".into(),
        enroll_captures: 3,
        amount_minor: 1250,
        currency: "EUR".into(),
        people: None,
        event: None,
        rate: None,
        print_each: false,
    };
    let kiosk = run(&opts(DeviceKind::Kiosk, "kiosk.key")).await.unwrap();
    assert_eq!(kiosk.outcomes.get("enrolled"), Some(&3), "{:?}", kiosk.outcomes);
    let gate = run(&opts(DeviceKind::Gate, "gate.key")).await.unwrap();
    assert_eq!(gate.outcomes.get("match"), Some(&3), "{:?}", gate.outcomes);
    for (k, g) in kiosk.records.iter().zip(&gate.records) {
        assert_eq!(k.identity, g.identity);
        assert_eq!(
            k.pseudonymous_id, g.pseudonymous_id,
            "{} identified as someone else",
            g.identity
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.path().join("gate.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second run reuses the key file: same device, nothing registered.
    let devices = venue.client.get("/v1/devices").await.unwrap().body["items"]
        .as_array()
        .unwrap()
        .len();
    let again = run(&opts(DeviceKind::Gate, "gate.key")).await.unwrap();
    assert_eq!(again.device_id, gate.device_id);
    let after = venue.client.get("/v1/devices").await.unwrap().body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!((devices, after), (2, 2));
    // A checkout: each person pays with the card linked to them, captured when approved.
    for k in &kiosk.records {
        let pid = k.pseudonymous_id.as_deref().unwrap();
        let l = venue
            .client
            .post(
                &format!("/v1/people/{pid}/links"),
                &json!({"kind": "payment_token", "value": format!("tok_sandbox_visa_{}", &pid[3..9])}),
                Some(&format!("card-{pid}")),
            )
            .await
            .unwrap();
        assert_eq!(l.status, 201, "{:?}", l.body);
    }
    let till = run(&opts(DeviceKind::Checkout, "till.key")).await.unwrap();
    assert_eq!(till.outcomes.get("approved"), Some(&3), "{:?}", till.outcomes);
    for (k, t) in kiosk.records.iter().zip(&till.records) {
        assert_eq!(
            k.pseudonymous_id, t.pseudonymous_id,
            "{} paid as someone else",
            t.identity
        );
    }
    let captured = venue.client.get("/v1/payments?status=captured").await.unwrap();
    assert_eq!(
        captured.body["items"].as_array().unwrap().len(),
        3,
        "{:?}",
        captured.body
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_person_joins_a_second_business_at_its_kiosk() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let venue_kiosk = venue.reader(DeviceKind::Kiosk, "venue hall").await;
    let alice = palm(71, 0, 6);
    let e = venue.enroll(&venue_kiosk, &alice[..3], "e").await;
    assert_eq!(e.status, 201);
    let venue_pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    let l = venue
        .client
        .post(
            &format!("/v1/people/{venue_pid}/links"),
            &json!({"kind": "member_id", "value": "V-1"}),
            Some("l"),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201);

    let shop = env.business("Shop").await;
    let shop_kiosk = shop.reader(DeviceKind::Kiosk, "shop desk").await;
    let shop_till = shop.reader(DeviceKind::Checkout, "till").await;
    // Before joining, the shop does not find her.
    assert_eq!(
        shop.identify(&shop_till, &alice[3]).await.body["decision"],
        "no_match"
    );
    let join = |capture, idem: &'static str| {
        let body = json!({
            "consent": {"text_version": 1, "accepted": true},
            "input": "roi",
            "capture": capture,
            "links": [{"kind": "payment_token", "value": "tok_shop_alice"}],
        });
        let client = shop.client.clone();
        async move { client.post("/v1/memberships", &body, Some(idem)).await.unwrap() }
    };
    let j = join(shop_kiosk.seal(Purpose::Enroll, &alice[4]).unwrap(), "j1").await;
    assert_eq!(j.status, 201, "{:?}", j.body);
    let shop_pid = j.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    assert_ne!(shop_pid, venue_pid, "each business has its own pseudonymous ID");
    assert_eq!(j.body["consent"]["site"], "shop desk");

    // The shop now identifies her under its own ID, with its own links only.
    let id = shop.identify(&shop_till, &alice[5]).await;
    assert_eq!(id.body["decision"], "match", "{:?}", id.body);
    assert_eq!(id.body["person"]["pseudonymous_id"], shop_pid.as_str());
    let links = id.body["person"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["value"], "tok_shop_alice");
    // The venue's view is unchanged.
    let r = venue
        .client
        .get(&format!("/v1/people/{venue_pid}/links"))
        .await
        .unwrap();
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["value"], "V-1");

    // Joining twice, and a palm nobody enrolled.
    let again = join(shop_kiosk.seal(Purpose::Enroll, &alice[3]).unwrap(), "j2").await;
    assert_eq!((again.status, code(&again)), (409, "already_member"));
    let stranger = palm(72, 0, 1);
    let r = join(shop_kiosk.seal(Purpose::Enroll, &stranger[0]).unwrap(), "j3").await;
    assert_eq!((r.status, code(&r)), (404, "not_enrolled"));
    // A checkout cannot be used to join.
    let r = join(shop_till.seal(Purpose::Enroll, &alice[3]).unwrap(), "j4").await;
    assert_eq!((r.status, code(&r)), (403, "wrong_purpose"));
    env.stop().await;
}

/// Concurrent retries of one create under one `Idempotency-Key` (a client that timed out and
/// retried while the first request was still running) create exactly one thing, and every
/// answer is the same: the response is stored in the transaction that creates, so the
/// requests that lose the race write nothing and replay the winner's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_key_create_exactly_one_thing() {
    let env = Env::start().await;
    let a = env.business("A").await;
    let kiosk = a.reader(DeviceKind::Kiosk, "hall").await;
    let e = a.enroll(&kiosk, &palm(71, 0, 3), "e").await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let pid = e.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    let link_path = format!("/v1/people/{pid}/links");
    let device_key = base64_key();
    let cases = [
        (
            "/v1/devices",
            json!({"kind": "gate", "site": "north", "public_key": device_key}),
            json!({"kind": "gate", "site": "south", "public_key": device_key}),
            "devices",
        ),
        (
            "/v1/api-keys",
            json!({"environment": "test", "scopes": ["identify"]}),
            json!({"environment": "test", "scopes": ["people"]}),
            "api_keys",
        ),
        (
            link_path.as_str(),
            json!({"kind": "member_id", "value": "M-71"}),
            json!({"kind": "member_id", "value": "other"}),
            "links",
        ),
        (
            "/v1/webhook-endpoints",
            json!({"url": "https://example.test/h"}),
            json!({"url": "https://example.test/other"}),
            "webhook_endpoints",
        ),
    ];
    for (path, body, other, table) in cases {
        let key = format!("same-key-{table}");
        let count = |c: &[(&str, i64)], t: &str| c.iter().find(|(n, _)| *n == t).unwrap().1;
        let before = env.counts().await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (client, path, body) = (a.client.clone(), path.to_string(), body.clone());
            let key = key.clone();
            tasks.spawn(async move { client.post(&path, &body, Some(&key)).await.unwrap() });
        }
        let mut answers = Vec::new();
        while let Some(r) = tasks.join_next().await {
            answers.push(r.unwrap());
        }
        let after = env.counts().await;
        assert_eq!(
            count(&after, table),
            count(&before, table) + 1,
            "{path}: one {table} row"
        );
        assert_eq!(
            count(&after, "idempotency"),
            count(&before, "idempotency") + 1,
            "{path}"
        );
        assert!(answers.iter().all(|r| r.status == 201), "{path}: {answers:?}");
        assert!(
            answers.iter().all(|r| r.body == answers[0].body),
            "{path}: every retry gets the same answer"
        );
        // Another body under the key now in use is refused and writes nothing.
        let r = a.client.post(path, &other, Some(&key)).await.unwrap();
        assert_eq!((r.status, code(&r)), (422, "idempotency_key_reused"), "{path}");
        assert_eq!(env.counts().await, after);
        // A secret shown once (API key, webhook secret) is replayed to a retry, but the
        // stored response does not hold it in clear.
        if let Some(secret) = answers[0].body["secret"].as_str() {
            use openpalm_store::Store;
            let s = openpalm_store::SqlStore::connect(&env.database_url)
                .await
                .unwrap();
            let rec = s.idempotency(&a.id, &key).await.unwrap().unwrap();
            assert!(!rec.response.contains(secret), "{path}");
            s.close().await;
        }
        // A later retry still gets the same answer.
        let r = a.client.post(path, &body, Some(&key)).await.unwrap();
        assert_eq!((r.status, &r.body), (201, &answers[0].body), "{path}");
    }
    env.stop().await;
}
