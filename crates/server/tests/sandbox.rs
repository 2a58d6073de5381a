//! Test and live keys of one business live in separate worlds: every business endpoint, called
//! with a live key on what a test key made, finds nothing (and the reverse); a test kiosk's
//! duplicate check never sees a live person; a test key never mints a live key; live keys do
//! not reach the sandbox processor.

mod common;

use common::venue::enroll;
use common::*;
use openpalm_domain::ids::{DeviceKind, Purpose};
use openpalm_domain::now_unix;
use openpalm_server::api::{routes, Access};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn client_for(env: &Env, key: &str) -> openpalm_device::Client {
    openpalm_device::Client::new(&env.base, Some(key.to_string()))
}

/// A raw call with `key`: (status, body).
async fn call(env: &Env, key: &str, method: &str, path: &str, n: usize) -> (u16, Value) {
    let c = reqwest::Client::new();
    let url = format!("{}{path}", env.base);
    let req = match method {
        "get" => c.get(url),
        "delete" => c.delete(url),
        "put" => c.put(url).json(&json!({})),
        _ => c.post(url).json(&json!({})),
    };
    let r = req
        .bearer_auth(key)
        .header("idempotency-key", format!("sandbox-probe-{n}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_keys_never_see_test_data_and_the_reverse_on_every_endpoint() {
    let env = Env::start().await;
    // A business whose first key is live; it makes a test key for its integration tests.
    let created = env
        .admin()
        .post(
            "/v1/businesses",
            &json!({"name": "Arena", "environment": "live"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{:?}", created.body);
    let live_key = created.body["api_key"]["secret"].as_str().unwrap().to_string();
    assert!(live_key.starts_with("op_live_"));
    let live = client_for(&env, &live_key);
    let all = json!(["keys", "devices", "enroll", "identify", "people", "webhooks", "events", "payments"]);
    let k = live
        .post(
            "/v1/api-keys",
            &json!({"environment": "test", "scopes": all}),
            Some("tk"),
        )
        .await
        .unwrap();
    assert_eq!(k.status, 201, "{:?}", k.body);
    let test_key = k.body["secret"].as_str().unwrap().to_string();
    let test_key_id = k.body["id"].as_str().unwrap().to_string();
    let test = Biz {
        id: created.body["business"]["id"].as_str().unwrap().to_string(),
        key_id: test_key_id.clone(),
        key: test_key.clone(),
        client: client_for(&env, &test_key),
    };

    // A test key never mints a live key, nor sees the live ones.
    let r = test
        .client
        .post(
            "/v1/api-keys",
            &json!({"environment": "live", "scopes": ["identify"]}),
            Some("x"),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (403, "environment_not_allowed"),
        "{:?}",
        r.body
    );
    let keys = test.client.get("/v1/api-keys").await.unwrap();
    assert!(keys.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["environment"] == "test"));

    // Test data: devices, two people with links, an event with a ticket, a payment, a hook.
    let kiosk = test.reader(DeviceKind::Kiosk, "hall").await;
    let gate = test.reader(DeviceKind::Gate, "north").await;
    let till = test.reader(DeviceKind::Checkout, "bar").await;
    let pid = enroll(&test, &kiosk, 501, "M-501").await;
    enroll(&test, &kiosk, 502, "M-502").await;
    let links = test.client.get(&format!("/v1/people/{pid}/links")).await.unwrap();
    let link_id = links.body["items"][0]["id"].as_str().unwrap().to_string();
    let now = now_unix();
    let ev = test
        .client
        .post(
            "/v1/events",
            &json!({"name": "Concert", "site": "arena", "starts_at": now + 3600, "ends_at": now + 7200,
                    "doors_open_at": now - 60, "gates": [gate.device_id]}),
            Some("ev"),
        )
        .await
        .unwrap();
    assert_eq!(ev.status, 201, "{:?}", ev.body);
    let event_id = ev.body["id"].as_str().unwrap().to_string();
    let t = test
        .client
        .post(
            &format!("/v1/events/{event_id}/tickets"),
            &json!({"tickets": [{"holder": {"pseudonymous_id": pid}, "ticket_type": "standing"}]}),
            Some("tix"),
        )
        .await
        .unwrap();
    assert_eq!(t.status, 201, "{:?}", t.body);
    let ticket_id = t.body["items"][0]["id"]
        .as_str()
        .or_else(|| t.body["tickets"][0]["id"].as_str())
        .unwrap_or("tkt_missing")
        .to_string();
    let pay = test
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": till.device_id, "amount_minor": 450, "currency": "EUR", "order_reference": "o-1"}),
            Some("pay"),
        )
        .await
        .unwrap();
    assert_eq!(pay.status, 201, "{:?}", pay.body);
    let payment_id = pay.body["id"].as_str().unwrap().to_string();
    let hook = test
        .client
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://93.184.216.34/h"}),
            Some("wh"),
        )
        .await
        .unwrap();
    assert_eq!(hook.status, 201, "{:?}", hook.body);
    let hook_id = hook.body["id"].as_str().unwrap().to_string();
    let test_ids = [
        kiosk.device_id.clone(),
        gate.device_id.clone(),
        till.device_id.clone(),
        pid.clone(),
        link_id.clone(),
        event_id.clone(),
        ticket_id.clone(),
        payment_id.clone(),
        hook_id.clone(),
    ];

    // Every business route, called with the live key on the test objects.
    let ids: BTreeMap<&str, &str> = [
        ("/v1/devices/", kiosk.device_id.as_str()),
        ("/v1/events/", event_id.as_str()),
        ("/v1/tickets/", ticket_id.as_str()),
        ("/v1/payments/", payment_id.as_str()),
        ("/v1/webhook-endpoints/", hook_id.as_str()),
        ("/v1/entries/", "ent_none"),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for (n, d) in routes().into_iter().enumerate() {
        if d.access != Access::ApiKey || d.path.starts_with("/v1/api-keys") {
            continue;
        }
        let mut path = d
            .path
            .replace("{pseudonymous_id}", &pid)
            .replace("{link_id}", &link_id);
        if let Some((_, id)) = ids.iter().find(|(p, _)| path.starts_with(**p)) {
            path = path.replace("{id}", id);
        }
        let (status, body) = call(&env, &live_key, d.method, &path, n).await;
        let text = body.to_string();
        if d.path.contains('{') {
            assert!(
                !(200..300).contains(&status),
                "{} {path} with the live key answered {status}: {text}",
                d.method
            );
        }
        for id in &test_ids {
            assert!(
                !text.contains(id.as_str()),
                "{} {path} (live) shows test {id}: {text}",
                d.method
            );
        }
        assert_ne!(status, 500, "{} {path}: {text}", d.method);
        checked += 1;
    }
    assert!(checked >= 40, "{checked} routes checked");

    // Captures of test devices are unknown to live keys.
    let probe = palm(501, 5, 1).remove(0);
    let c = gate.seal(Purpose::Identify, &probe).unwrap();
    let r = live.identify("roi", &c).await.unwrap();
    assert_eq!((r.status, code(&r)), (403, "unknown_device"), "{:?}", r.body);

    // The live world has its own devices and people: the same palm enrolls there (the test
    // person is not a duplicate of anyone live), and its gate identifies nobody from test.
    let live_biz = Biz {
        id: test.id.clone(),
        key_id: String::new(),
        key: live_key.clone(),
        client: live.clone(),
    };
    let live_gate = live_biz.reader(DeviceKind::Gate, "north").await;
    let r = live_biz.identify(&live_gate, &probe).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["decision"], "no_match", "{:?}", r.body);
    let live_kiosk = live_biz.reader(DeviceKind::Kiosk, "hall").await;
    let live_pid = enroll(&live_biz, &live_kiosk, 501, "L-501").await;
    assert_ne!(live_pid, pid);
    // ...and a test kiosk still finds its own duplicate, not the live one.
    let again = palm(502, 0, 3)
        .iter()
        .map(|i| kiosk.seal(Purpose::Enroll, i).unwrap())
        .collect();
    let r = test
        .client
        .enroll(
            "dup",
            1,
            "roi",
            &[(openpalm_domain::ids::HandSide::Left, again)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (409, "already_enrolled"), "{:?}", r.body);

    // The reverse: the test key does not see the live device or person.
    let devices = test.client.get("/v1/devices").await.unwrap();
    assert!(!devices.body.to_string().contains(&live_gate.device_id));
    let r = test
        .client
        .get(&format!("/v1/devices/{}", live_gate.device_id))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    let r = test
        .client
        .get(&format!("/v1/people/{live_pid}/links"))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{:?}", r.body);
    let s = test.client.get("/v1/summary").await.unwrap();
    assert_eq!(s.body["members"]["total"], 2, "{:?}", s.body);
    let s = live.get("/v1/summary").await.unwrap();
    assert_eq!(s.body["members"]["total"], 1, "{:?}", s.body);

    // Live keys do not reach the sandbox processor.
    let live_till = live_biz.reader(DeviceKind::Checkout, "bar").await;
    let r = live
        .post(
            "/v1/payments",
            &json!({"device_id": live_till.device_id, "amount_minor": 450, "currency": "EUR", "order_reference": "o-2"}),
            Some("lp"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (403, "no_live_processor"), "{:?}", r.body);
    env.stop().await;
}
