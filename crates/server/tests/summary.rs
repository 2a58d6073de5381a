//! `GET /v1/summary` (the console's "today") over real HTTP: members and links, lane
//! decisions by event and reason, payments approved, declined and captured, after real
//! enrollments, gate decisions and palm payments; any live key of the business may read it;
//! another business's figures never show; a day later by the service's clock, today's
//! figures start again from zero.

mod common;

use common::venue::*;
use common::*;
use openpalm_device::Answer;
use openpalm_domain::ids::{DeviceKind, Purpose};
use openpalm_domain::now_unix;
use serde_json::{json, Value};

async fn summary(biz: &Biz) -> Value {
    let s = biz.client.get("/v1/summary").await.unwrap();
    assert_eq!(s.status, 200, "{:?}", s.body);
    s.body
}

async fn link(biz: &Biz, pid: &str, kind: &str, value: &str) {
    let l = biz
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": kind, "value": value}),
            Some(&format!("link-{pid}-{value}")),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201, "{:?}", l.body);
}

async fn open_payment(biz: &Biz, till: &str, minor: u64, order: &str) -> String {
    let a = biz
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": till, "amount_minor": minor, "currency": "EUR", "order_reference": order}),
            Some(order),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.body["id"].as_str().unwrap().to_string()
}

async fn pay(biz: &Biz, till: &openpalm_device::Reader, pay: &str, identity: u64, k: usize) -> Answer {
    let img = palm(identity, k, 1).remove(0);
    let c = till.seal(Purpose::Identify, &img).unwrap();
    biz.client.pay(pay, "roi", &c).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_figures_after_real_calls() {
    let env = Env::start().await;
    let v = venue(&env, "Arena & Shop").await;
    let till = v.biz.reader(DeviceKind::Checkout, "bar").await;

    // Nothing has happened yet but four enrollments with a member ID each.
    let s = summary(&v.biz).await;
    assert_eq!(s["business"], json!({"id": v.biz.id, "name": "Arena & Shop"}));
    assert_eq!(s["key"]["id"], v.biz.key_id.as_str());
    assert_eq!(s["key"]["environment"], "test");
    assert_eq!(s["key"]["scopes"].as_array().unwrap().len(), 8);
    assert_eq!(s["members"], json!({"total": 4, "joined_today": 4}));
    assert_eq!(
        s["links"],
        json!({"member_id": 4, "payment_token": 0, "phone": 0})
    );
    assert_eq!(s["entries"]["admitted"], 0);
    assert_eq!(s["entries"]["events"], json!([]));
    assert_eq!(s["payments"]["opened"], 0);
    assert_eq!(s["payments"]["amounts"], json!([]));
    let at = s["at"].as_i64().unwrap();
    assert_eq!(s["day_start"].as_i64().unwrap(), at - at % 86_400);

    // Links: a phone and two cards.
    link(&v.biz, &v.pids[0], "phone", "+447700900123").await;
    link(&v.biz, &v.pids[0], "payment_token", "tok_sandbox_visa_1111").await;
    link(&v.biz, &v.pids[1], "payment_token", "tok_sandbox_decline").await;

    // The lane: A holds a ticket and enters, then is turned back as already inside; D has no
    // ticket; a stranger is not recognised.
    let event = create_event(&v, now_unix() - 60, 0).await;
    let t = issue(
        &v.biz,
        &event,
        json!([{"holder": {"member_id": "M-A"}, "ticket_type": "standard"}]),
        "tickets-a",
    )
    .await;
    assert_eq!(t.status, 201, "{:?}", t.body);
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, A, 3).await),
        ("admit", "")
    );
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g2, &event, A, 4).await),
        ("deny", "already_admitted")
    );
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, D, 3).await),
        ("deny", "no_ticket_for_event")
    );
    assert_eq!(
        decision(&at_gate(&v.biz, &v.g1, &event, STRANGER, 3).await),
        ("deny", "not_recognised")
    );

    // Checkout: A's card approves (captured in part), B's declines, one waits for a palm.
    let p1 = open_payment(&v.biz, &till.device_id, 2599, "order-1").await;
    let a = pay(&v.biz, &till, &p1, A, 5).await;
    assert_eq!(a.body["outcome"], "approved", "{:?}", a.body);
    let c = v
        .biz
        .client
        .post(
            &format!("/v1/payments/{p1}/capture"),
            &json!({"amount_minor": 2000}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(c.body["status"], "captured", "{:?}", c.body);
    let p2 = open_payment(&v.biz, &till.device_id, 1000, "order-2").await;
    let b = pay(&v.biz, &till, &p2, B, 5).await;
    assert_eq!(b.body["outcome"], "declined", "{:?}", b.body);
    open_payment(&v.biz, &till.device_id, 500, "order-3").await;

    // Another business with a member of its own and a payment: none of it shows.
    let other = env.business("Elsewhere").await;
    let okiosk = other.reader(DeviceKind::Kiosk, "door").await;
    let otill = other.reader(DeviceKind::Checkout, "till").await;
    enroll(&other, &okiosk, 15, "O-1").await;
    open_payment(&other, &otill.device_id, 700, "o-order").await;

    let s = summary(&v.biz).await;
    assert_eq!(s["members"], json!({"total": 4, "joined_today": 4}));
    assert_eq!(
        s["links"],
        json!({"member_id": 4, "payment_token": 2, "phone": 1})
    );
    let e = &s["entries"];
    assert_eq!(
        (e["admitted"].as_i64(), e["denied"].as_i64(), e["exited"].as_i64()),
        (Some(1), Some(3), Some(0))
    );
    assert_eq!(
        e["denied_by_reason"],
        json!({"already_admitted": 1, "no_ticket_for_event": 1, "not_recognised": 1})
    );
    assert_eq!(
        e["events"],
        json!([{
            "event_id": event, "name": "Concert", "admitted": 1, "denied": 3, "exited": 0,
            "denied_by_reason": {"already_admitted": 1, "no_ticket_for_event": 1, "not_recognised": 1},
        }])
    );
    let p = &s["payments"];
    assert_eq!(
        (
            p["opened"].as_i64(),
            p["approved"].as_i64(),
            p["declined"].as_i64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(p["declined_by_reason"], json!({"generic_decline": 1}));
    assert_eq!(
        p["by_status"],
        json!({"awaiting_palm": 1, "captured": 1, "declined": 1})
    );
    assert_eq!(
        p["amounts"],
        json!([{
            "currency": "EUR",
            "approved": {"minor": 2599, "currency": "EUR", "decimal": "25.99"},
            "captured": {"minor": 2000, "currency": "EUR", "decimal": "20.00"},
            "refunded": {"minor": 0, "currency": "EUR", "decimal": "0.00"},
        }])
    );

    // The other business sees its own figures only.
    let o = summary(&other).await;
    assert_eq!(o["members"], json!({"total": 1, "joined_today": 1}));
    assert_eq!(o["entries"]["events"], json!([]));
    assert_eq!(o["payments"]["opened"], 1);
    assert_eq!(o["payments"]["approved"], 0);

    // Any key of the business's environment may read it, whatever its scopes; it names that key.
    let k = v
        .biz
        .client
        .post(
            "/v1/api-keys",
            &json!({"environment": "test", "scopes": ["identify"]}),
            Some("key-identify"),
        )
        .await
        .unwrap();
    assert_eq!(k.status, 201, "{:?}", k.body);
    let narrow = Biz {
        id: v.biz.id.clone(),
        key_id: k.body["id"].as_str().unwrap().to_string(),
        key: k.body["secret"].as_str().unwrap().to_string(),
        client: openpalm_device::Client::new(&env.base, k.body["secret"].as_str().map(String::from)),
    };
    let n = summary(&narrow).await;
    assert_eq!(n["key"]["id"], narrow.key_id.as_str());
    assert_eq!(n["key"]["environment"], "test");
    assert_eq!(n["key"]["scopes"], json!(["identify"]));
    assert_eq!(n["payments"]["opened"], 3);
    let r = v
        .biz
        .client
        .post(
            &format!("/v1/api-keys/{}/revoke", narrow.key_id),
            &json!({}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let refused = narrow.client.get("/v1/summary").await.unwrap();
    assert_eq!((refused.status, code(&refused)), (401, "invalid_api_key"));
    let anonymous = env.anonymous().get("/v1/summary").await.unwrap();
    assert_eq!(anonymous.status, 401);

    // A day later by the service's clock, today starts from zero; members and links stay.
    let state = &env.running.as_ref().unwrap().state;
    state.clock.advance(86_400);
    let s = summary(&v.biz).await;
    assert_eq!(s["day_start"].as_i64().unwrap(), at - at % 86_400 + 86_400);
    assert_eq!(s["members"], json!({"total": 4, "joined_today": 0}));
    assert_eq!(s["links"]["payment_token"], 2);
    assert_eq!(s["entries"]["admitted"], 0);
    assert_eq!(s["entries"]["events"], json!([]));
    assert_eq!(s["payments"]["opened"], 0);
    env.stop().await;
}
