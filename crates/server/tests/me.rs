//! The person's own side over HTTP (SQLite here; PostgreSQL with
//! `scripts/test-postgres.sh`): sign-in by a one-time code to the linked phone (nothing
//! revealed about unknown numbers, attempts limited, codes and sessions expiring by a moved
//! clock), everything held about the person, the export, leaving one business, offers, and
//! deletion with a receipt the `openpalm receipt verify` command checks offline.

mod common;

use common::*;
use openpalm_device::Client;
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_server::codes::FileSender;
use serde_json::json;

const ALICE: u64 = 41;
const BOB: u64 = 42;
const ALICE_PHONE: &str = "+33611111111";
const BOB_PHONE: &str = "+33622222222";

fn codes_sent(env: &Env) -> Vec<openpalm_server::codes::SentCode> {
    FileSender::read(
        &env.dir
            .path()
            .join("data")
            .join(openpalm_server::state::SIGN_IN_CODES),
    )
}

async fn enroll_with_phone(biz: &Biz, kiosk: &openpalm_device::Reader, identity: u64, phone: &str) -> String {
    let captures = palm(identity, 0, 3)
        .iter()
        .map(|i| kiosk.seal(Purpose::Enroll, i).unwrap())
        .collect();
    let a = biz
        .client
        .enroll(
            &format!("enr-{identity}"),
            1,
            "roi",
            &[(HandSide::Left, captures)],
            &[
                ("phone".into(), phone.into()),
                ("payment_token".into(), format!("tok_sandbox_visa_{identity}00")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.body["person"]["pseudonymous_id"].as_str().unwrap().to_string()
}

/// Sign in by phone: the challenge, then the code the sink received.
async fn sign_in(env: &Env, phone: &str) -> String {
    let anon = env.anonymous();
    let c = anon
        .post("/v1/me/sign-in", &json!({"phone": phone}), None)
        .await
        .unwrap();
    assert_eq!(c.status, 202, "{:?}", c.body);
    let code = codes_sent(env)
        .into_iter()
        .rev()
        .find(|s| s.phone == phone)
        .unwrap()
        .code;
    let s = anon
        .post(
            "/v1/me/sessions",
            &json!({"challenge_id": c.body["challenge_id"], "code": code}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s.status, 201, "{:?}", s.body);
    s.body["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_person_signs_in_sees_exports_leaves_and_deletes() {
    let env = Env::start().await;
    let shop = env.business("Corner shop").await;
    let kiosk = shop.reader(DeviceKind::Kiosk, "front").await;
    let till = shop.reader(DeviceKind::Checkout, "till").await;
    let alice_shop = enroll_with_phone(&shop, &kiosk, ALICE, ALICE_PHONE).await;
    enroll_with_phone(&shop, &kiosk, BOB, BOB_PHONE).await;
    // Alice joins a venue too, with her palm and consent there.
    let venue = env.business("Arena").await;
    let vkiosk = venue.reader(DeviceKind::Kiosk, "box office").await;
    let c = vkiosk.seal(Purpose::Enroll, &palm(ALICE, 3, 1)[0]).unwrap();
    let j = venue
        .client
        .post(
            "/v1/memberships",
            &json!({"consent": {"text_version": 1, "accepted": true}, "input": "roi", "capture": c,
                    "links": [{"kind": "member_id", "value": "APP-1"}]}),
            Some("join"),
        )
        .await
        .unwrap();
    assert_eq!(j.status, 201, "{:?}", j.body);
    let alice_venue = j.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    // A purchase at the shop.
    let p = shop
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": till.device_id, "amount_minor": 450, "currency": "EUR", "order_reference": "o1"}),
            Some("o1"),
        )
        .await
        .unwrap();
    let pay = p.body["id"].as_str().unwrap().to_string();
    let cap = till.seal(Purpose::Identify, &palm(ALICE, 4, 1)[0]).unwrap();
    assert_eq!(
        shop.client.pay(&pay, "roi", &cap).await.unwrap().body["outcome"],
        "approved"
    );

    // An unknown number gets the same answer, no code is sent, and no code completes it.
    let anon = env.anonymous();
    let before = codes_sent(&env).len();
    let u = anon
        .post("/v1/me/sign-in", &json!({"phone": "+33699999999"}), None)
        .await
        .unwrap();
    let k = anon
        .post("/v1/me/sign-in", &json!({"phone": ALICE_PHONE}), None)
        .await
        .unwrap();
    assert_eq!((u.status, k.status), (202, 202));
    assert_eq!(u.body["message"], k.body["message"]);
    assert_eq!(
        codes_sent(&env).len(),
        before + 1,
        "a code only for the linked number"
    );
    for code in ["000000", "123456"] {
        let s = anon
            .post(
                "/v1/me/sessions",
                &json!({"challenge_id": u.body["challenge_id"], "code": code}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(code_of(&s), "invalid_code");
    }
    assert_eq!(
        code_of(
            &anon
                .post("/v1/me/sign-in", &json!({"phone": "0611"}), None)
                .await
                .unwrap()
        ),
        "invalid_phone"
    );
    // Wrong codes are counted; the fifth spends the challenge, even for the right code after.
    let right = codes_sent(&env).last().unwrap().code.clone();
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let s = anon
            .post(
                "/v1/me/sessions",
                &json!({"challenge_id": k.body["challenge_id"], "code": wrong}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            (code_of(&s), s.body["attempts_left"].as_u64()),
            ("invalid_code", Some(left))
        );
    }
    let s = anon
        .post(
            "/v1/me/sessions",
            &json!({"challenge_id": k.body["challenge_id"], "code": right}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code_of(&s), "invalid_code");
    // A code expires with the clock (an hour later: the number has had its 5 codes of the
    // hour; past them the answer is the same and nothing is sent).
    for _ in 0..4 {
        anon.post("/v1/me/sign-in", &json!({"phone": BOB_PHONE}), None)
            .await
            .unwrap();
    }
    let sent = codes_sent(&env).len();
    let extra = anon
        .post("/v1/me/sign-in", &json!({"phone": BOB_PHONE}), None)
        .await
        .unwrap();
    let extra2 = anon
        .post("/v1/me/sign-in", &json!({"phone": BOB_PHONE}), None)
        .await
        .unwrap();
    assert_eq!((extra.status, &extra.body["message"]), (202, &u.body["message"]));
    assert_eq!(extra2.status, 202);
    assert_eq!(
        codes_sent(&env).len(),
        sent + 1,
        "the 5th code of the hour is sent, the 6th is not"
    );
    env.running.as_ref().unwrap().state.clock.advance(3601);
    let k = anon
        .post("/v1/me/sign-in", &json!({"phone": ALICE_PHONE}), None)
        .await
        .unwrap();
    let code = codes_sent(&env).last().unwrap().code.clone();
    let state = env.running.as_ref().unwrap().state.clone();
    state.clock.advance(11 * 60);
    let s = anon
        .post(
            "/v1/me/sessions",
            &json!({"challenge_id": k.body["challenge_id"], "code": code}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code_of(&s), "invalid_code");

    // Signed in: everything about Alice, nothing about Bob.
    let token = sign_in(&env, ALICE_PHONE).await;
    let me = Client::new(&env.base, Some(token.clone()));
    let v = me.get("/v1/me").await.unwrap();
    assert_eq!(v.status, 200, "{:?}", v.body);
    let b = &v.body;
    assert_eq!(
        b["enrollment"]["hands"],
        json!([{"hand": "left", "templates": 3}])
    );
    assert_eq!(b["consents"].as_array().unwrap().len(), 2);
    assert!(
        b["consents"][0]["text"].as_str().unwrap().len() > 20,
        "the exact text agreed to"
    );
    let names: Vec<&str> = b["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"Corner shop") && names.contains(&"Arena"));
    let shop_view = b["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Corner shop")
        .unwrap();
    assert_eq!(shop_view["pseudonymous_id"], alice_shop.as_str());
    let phone = shop_view["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "phone")
        .unwrap();
    assert!(phone["value"].is_null(), "a phone is never shown back");
    assert_eq!(b["purchases"].as_array().unwrap().len(), 1);
    assert_eq!(b["purchases"][0]["business_name"], "Corner shop");
    assert!(b["match_log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["business_name"] == "Corner shop"));
    assert!(
        !b.to_string().contains(BOB_PHONE) && !b.to_string().contains(&format!("{BOB}00")),
        "nothing of Bob"
    );
    // The export: all of it, or one business's part.
    let e = me.get("/v1/me/export").await.unwrap();
    assert_eq!(
        (
            e.body["format"].as_str(),
            e.body["businesses"].as_array().map(Vec::len)
        ),
        (Some("openpalm-export-v1"), Some(2))
    );
    let venue_id = venue.id.clone();
    let e = me
        .get(&format!("/v1/me/export?business={venue_id}"))
        .await
        .unwrap();
    assert_eq!(e.body["businesses"].as_array().unwrap().len(), 1);
    assert_eq!(
        e.body["purchases"],
        json!([]),
        "the shop's purchase is not the venue's"
    );
    // Her own payment limit at the shop, set from her side, holds at its till.
    let set = me
        .put(
            &format!("/v1/me/businesses/{}/payment-settings", shop.id),
            &json!({"currency": "EUR", "per_payment_limit_minor": 1000}),
        )
        .await
        .unwrap();
    assert_eq!(
        (set.status, &set.body["per_payment_limit_minor"]),
        (200, &json!(1000)),
        "{:?}",
        set.body
    );
    let p2 = shop
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": till.device_id, "amount_minor": 1500, "currency": "EUR", "order_reference": "o-big"}),
            Some("o-big"),
        )
        .await
        .unwrap();
    let cap = till.seal(Purpose::Identify, &palm(ALICE, 7, 1)[0]).unwrap();
    let big = shop
        .client
        .pay(p2.body["id"].as_str().unwrap(), "roi", &cap)
        .await
        .unwrap();
    assert_eq!(big.body["reason"], "over_payment_limit", "{:?}", big.body);
    // Offers, per business.
    let o = me
        .put(
            &format!("/v1/me/businesses/{}/offers", shop.id),
            &json!({"opted_in": true}),
        )
        .await
        .unwrap();
    assert_eq!(o.status, 200);
    assert!(me.get("/v1/me").await.unwrap().body["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "Corner shop" && x["offers_opted_in"] == true));

    // A business removing her takes her out of its own scope only: the venue may not erase
    // her everywhere, the shop still knows her (she is then re-added below by joining).
    let r = venue
        .client
        .post(&format!("/v1/people/{alice_venue}/erase"), &json!({}), None)
        .await
        .unwrap();
    assert_eq!(
        (r.status, &r.body["erased_everywhere"]),
        (200, &json!(false)),
        "{:?}",
        r.body
    );
    let shop_door = shop.reader(DeviceKind::Gate, "side door").await;
    assert_eq!(
        shop.identify(&shop_door, &palm(ALICE, 5, 1)[0]).await.body["decision"],
        "match"
    );
    let c = vkiosk.seal(Purpose::Enroll, &palm(ALICE, 6, 1)[0]).unwrap();
    let j = venue
        .client
        .post(
            "/v1/memberships",
            &json!({"consent": {"text_version": 1, "accepted": true}, "input": "roi", "capture": c}),
            Some("join-again"),
        )
        .await
        .unwrap();
    assert_eq!(j.status, 201, "{:?}", j.body);
    let alice_venue = j.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    // Leaving the venue: it loses her (and can no longer identify her); the shop still can.
    let l = me.delete(&format!("/v1/me/businesses/{venue_id}")).await.unwrap();
    assert_eq!(l.status, 204, "{:?}", l.body);
    assert_eq!(
        venue
            .client
            .get(&format!("/v1/people/{alice_venue}/links"))
            .await
            .unwrap()
            .status,
        404
    );
    let gate = venue.reader(DeviceKind::Gate, "gate").await;
    assert_eq!(
        venue.identify(&gate, &palm(ALICE, 5, 1)[0]).await.body["decision"],
        "no_match"
    );
    let shop_gate = shop.reader(DeviceKind::Gate, "door").await;
    assert_eq!(
        shop.identify(&shop_gate, &palm(ALICE, 5, 1)[0]).await.body["decision"],
        "match"
    );

    // The audit log shows her who did what with her data: her own reads, the venue removing
    // her, the shop's checkout recognising her; never another person's records.
    let a = me.get("/v1/me/audit").await.unwrap();
    assert_eq!(a.status, 200, "{:?}", a.body);
    let actions: Vec<(String, String)> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("person".into(), "GET /v1/me".into())),
        "{actions:?}"
    );
    assert!(actions
        .iter()
        .any(|(who, what)| who.starts_with(&format!("business:{}", venue.id))
            && what == "POST /v1/people/{pseudonymous_id}/erase"));
    assert!(actions
        .iter()
        .any(|(who, what)| who.starts_with(&format!("business:{}", shop.id))
            && what == "POST /v1/payments/{id}/palm"));
    assert!(a
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["request_id"].as_str().is_some_and(|s| !s.is_empty())));

    // Deleting waits for the open payment; once captured, it goes through with a receipt.
    assert_eq!(
        code_of(&me.post("/v1/me/delete", &json!({}), None).await.unwrap()),
        "outstanding_payments"
    );
    shop.client
        .post(&format!("/v1/payments/{pay}/capture"), &json!({}), None)
        .await
        .unwrap();
    let d = me.post("/v1/me/delete", &json!({}), None).await.unwrap();
    assert_eq!(d.status, 200, "{:?}", d.body);
    let r = &d.body["receipt"];
    assert_eq!(
        (
            r["destroyed"]["data_key"].as_bool(),
            r["destroyed"]["templates"].as_u64()
        ),
        (Some(true), Some(3))
    );
    assert_eq!(r["destroyed"]["businesses_notified"], 1);
    assert_eq!(
        me.get("/v1/me").await.unwrap().status,
        401,
        "the session ended with the data"
    );
    assert_eq!(
        shop.identify(&shop_gate, &palm(ALICE, 6, 1)[0]).await.body["decision"],
        "no_match"
    );
    // The receipt verifies offline against the published key; a changed one does not.
    let key = env.anonymous().get("/v1/service-key").await.unwrap().body["receipt_public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let signed: openpalm_domain::person::SignedReceipt = serde_json::from_value(d.body.clone()).unwrap();
    assert_eq!(openpalm_domain::person::verify_receipt(&signed, &key), Ok(()));
    let mut changed = signed.clone();
    changed.receipt.destroyed.templates = 2;
    assert!(openpalm_domain::person::verify_receipt(&changed, &key).is_err());
    // Sessions also lapse by themselves.
    let bob = Client::new(&env.base, Some(sign_in(&env, BOB_PHONE).await));
    assert_eq!(bob.get("/v1/me").await.unwrap().status, 200);
    state.clock.advance(16 * 60);
    assert_eq!(bob.get("/v1/me").await.unwrap().status, 401);
    // The published retention schedule.
    let p = env.anonymous().get("/v1/retention-policy").await.unwrap();
    assert!(p.body["items"].as_array().unwrap().len() >= 5);
    let url = env.database_url.clone();
    let _dir = env.stop().await;
    // The log the whole run left verifies.
    let store = openpalm_store::SqlStore::connect(&url).await.unwrap();
    let records = openpalm_store::AuditStore::audit_records(&store, 0, 100_000)
        .await
        .unwrap();
    assert!(records.len() > 30, "{} records", records.len());
    assert!(openpalm_domain::audit::verify(&records).is_ok());
}

fn code_of(a: &openpalm_device::Answer) -> &str {
    a.code().unwrap_or("")
}

#[tokio::test]
async fn cancellation_waits_for_payments_and_dormant_people_are_noticed_then_deleted() {
    let env = Env::start().await;
    let shop = env.business("Shop").await;
    let kiosk = shop.reader(DeviceKind::Kiosk, "front").await;
    let till = shop.reader(DeviceKind::Checkout, "till").await;
    let door = shop.reader(DeviceKind::Gate, "door").await;
    enroll_with_phone(&shop, &kiosk, ALICE, ALICE_PHONE).await;
    enroll_with_phone(&shop, &kiosk, BOB, BOB_PHONE).await;
    const CAROL: u64 = 43;
    enroll_with_phone(&shop, &kiosk, CAROL, "+33633333333").await;
    let p = shop
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": till.device_id, "amount_minor": 990, "currency": "EUR", "order_reference": "o-c"}),
            Some("o-c"),
        )
        .await
        .unwrap();
    let pay = p.body["id"].as_str().unwrap().to_string();
    let cap = till.seal(Purpose::Identify, &palm(ALICE, 3, 1)[0]).unwrap();
    assert_eq!(
        shop.client.pay(&pay, "roi", &cap).await.unwrap().body["outcome"],
        "approved"
    );

    // Cancelling: the palm stops working at once; deletion waits for the open payment.
    let me = Client::new(&env.base, Some(sign_in(&env, ALICE_PHONE).await));
    let c = me.post("/v1/me/cancel", &json!({}), None).await.unwrap();
    assert_eq!(
        (
            c.status,
            c.body["state"].as_str(),
            c.body["outstanding_payments"].as_u64()
        ),
        (200, Some("cancelling"), Some(1)),
        "{:?}",
        c.body
    );
    let receipt_id = c.body["receipt_id"].as_str().unwrap().to_string();
    assert_eq!(
        shop.identify(&door, &palm(ALICE, 4, 1)[0]).await.body["decision"],
        "no_match"
    );
    let v = me.get("/v1/me").await.unwrap();
    assert_eq!(v.body["cancellation"]["state"], "cancelling");
    let state = env.running.as_ref().unwrap().state.clone();
    let r = openpalm_server::lifecycle::run_once(&state).await.unwrap();
    assert_eq!((r.cancellations_waiting, r.cancellations_completed), (1, 0));
    drop(state);
    // A restart in the middle: she stays out of the gallery, the cancellation resumes.
    let dir = env.stop().await;
    let env = Env::start_in(dir, |_| {}).await;
    let shop = Biz {
        client: Client::new(&env.base, Some(shop.key.clone())),
        ..shop
    };
    assert_eq!(
        shop.identify(&door, &palm(ALICE, 5, 1)[0]).await.body["decision"],
        "no_match"
    );
    let cap = shop
        .client
        .post(&format!("/v1/payments/{pay}/capture"), &json!({}), None)
        .await
        .unwrap();
    assert_eq!(cap.status, 200, "{:?}", cap.body);
    let state = env.running.as_ref().unwrap().state.clone();
    let r = openpalm_server::lifecycle::run_once(&state).await.unwrap();
    assert_eq!(r.cancellations_completed, 1);
    let r = openpalm_server::lifecycle::run_once(&state).await.unwrap();
    assert_eq!(r.cancellations_completed, 0, "nothing deleted twice");
    let got = env
        .anonymous()
        .get(&format!("/v1/deletion-receipts/{receipt_id}"))
        .await
        .unwrap();
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["receipt"]["reason"], "cancellation");
    let key = env.anonymous().get("/v1/service-key").await.unwrap().body["receipt_public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let signed: openpalm_domain::person::SignedReceipt = serde_json::from_value(got.body.clone()).unwrap();
    assert_eq!(openpalm_domain::person::verify_receipt(&signed, &key), Ok(()));

    // Dormancy: two years without an identification bring a notice; Carol's palm is used
    // after it (the notice is lifted), Bob's is not (deleted once the notice period ends).
    state.clock.advance(730 * 86_400 + 60);
    let r = openpalm_server::lifecycle::run_once(&state).await.unwrap();
    assert_eq!(r.dormancy_notices, 2, "{r:?}");
    let bob = Client::new(&env.base, Some(sign_in(&env, BOB_PHONE).await));
    assert!(bob.get("/v1/me").await.unwrap().body["dormancy_notice_at"].is_i64());
    assert_eq!(
        shop.identify(&door, &palm(CAROL, 3, 1)[0]).await.body["decision"],
        "match"
    );
    let r = openpalm_server::lifecycle::run_once(&state).await.unwrap();
    assert_eq!(r.dormancy_notices_cleared, 1);
    state.clock.advance(30 * 86_400 + 60);
    let r = openpalm_server::lifecycle::run_once(&state).await.unwrap();
    assert_eq!((r.dormant_deleted, r.dormancy_notices), (1, 0), "{r:?}");
    assert_eq!(bob.get("/v1/me").await.unwrap().status, 401);
    assert_eq!(
        shop.identify(&door, &palm(BOB, 4, 1)[0]).await.body["decision"],
        "no_match"
    );
    assert_eq!(
        shop.identify(&door, &palm(CAROL, 4, 1)[0]).await.body["decision"],
        "match"
    );
    env.stop().await;
}
