//! Pay by palm over HTTP against the sandbox processor (SQLite here; PostgreSQL with
//! `scripts/test-postgres.sh`): every checkout answer, every decline code, step-up with its
//! attempt limit, limits, capture, void, refunds, receipts, expiry with a moved clock,
//! retries, races, a crash between the processor call and its commit, and another store's
//! payments invisible.

mod common;

use common::venue::enroll;
use common::*;
use openpalm_device::{Answer, Reader};
use openpalm_domain::ids::{DeviceKind, Purpose};
use openpalm_domain::payment::PaymentStatus;
use openpalm_domain::Clock;
use serde_json::{json, Value};

const ALICE: u64 = 21;
const BOB: u64 = 22;
const STRANGER: u64 = 98;

struct Store {
    biz: Biz,
    till: Reader,
    alice: String,
    bob: String,
}

/// Link a card and return the link's ID.
async fn link_card(biz: &Biz, pid: &str, token: &str) -> String {
    let l = biz
        .client
        .post(
            &format!("/v1/people/{pid}/links"),
            &json!({"kind": "payment_token", "value": token}),
            Some(&format!("link-{pid}-{token}")),
        )
        .await
        .unwrap();
    assert_eq!(l.status, 201, "{:?}", l.body);
    l.body["id"].as_str().unwrap().to_string()
}

/// The person's only card at the store becomes `token`.
async fn replace_cards(biz: &Biz, pid: &str, token: &str) {
    let links = biz.client.get(&format!("/v1/people/{pid}/links")).await.unwrap();
    for l in links.body["items"].as_array().cloned().unwrap_or_default() {
        if l["kind"] == "payment_token" {
            let id = l["id"].as_str().unwrap();
            let d = biz
                .client
                .delete(&format!("/v1/people/{pid}/links/{id}"))
                .await
                .unwrap();
            assert!(d.status < 300, "{:?}", d.body);
        }
    }
    link_card(biz, pid, token).await;
}

async fn store(env: &Env, name: &str) -> Store {
    let biz = env.business(name).await;
    let kiosk = biz.reader(DeviceKind::Kiosk, "front").await;
    let till = biz.reader(DeviceKind::Checkout, "till 1").await;
    let alice = enroll(&biz, &kiosk, ALICE, "L-ALICE").await;
    let bob = enroll(&biz, &kiosk, BOB, "L-BOB").await;
    link_card(&biz, &alice, "tok_sandbox_visa_1111").await;
    link_card(&biz, &bob, "tok_sandbox_mastercard_2222").await;
    Store {
        biz,
        till,
        alice,
        bob,
    }
}

impl Store {
    async fn open(&self, minor: u64, order: &str) -> String {
        let a = self.open_raw(minor, "EUR", order, order).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        assert_eq!(a.body["status"], "awaiting_palm");
        a.body["id"].as_str().unwrap().to_string()
    }

    async fn open_raw(&self, minor: u64, currency: &str, order: &str, key: &str) -> Answer {
        self.biz
            .client
            .post(
                "/v1/payments",
                &json!({"device_id": self.till.device_id, "amount_minor": minor, "currency": currency, "order_reference": order}),
                Some(key),
            )
            .await
            .unwrap()
    }

    /// The palm of `identity` (capture `k`, never one used to enroll) at the till.
    async fn palm(&self, pay: &str, identity: u64, k: usize) -> Answer {
        let img = palm(identity, 3 + k, 1).remove(0);
        let c = self.till.seal(Purpose::Identify, &img).unwrap();
        self.biz.client.pay(pay, "roi", &c).await.unwrap()
    }

    async fn post(&self, path: &str, body: Value, key: Option<&str>) -> Answer {
        self.biz.client.post(path, &body, key).await.unwrap()
    }

    async fn get(&self, path: &str) -> Answer {
        self.biz.client.get(path).await.unwrap()
    }

    async fn settings(&self, pid: &str, body: Value) {
        let a = self
            .biz
            .client
            .put(&format!("/v1/people/{pid}/payment-settings"), &body)
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert!(a.body.get("code").is_none() && !a.body.to_string().contains("step_up_hash"));
    }
}

fn outcome(a: &Answer) -> &str {
    a.body["outcome"].as_str().unwrap_or("")
}

/// Tokens charged for a payment in the sandbox's ledger.
fn charged(env: &Env, pay: &str) -> Vec<String> {
    env.running
        .as_ref()
        .unwrap()
        .state
        .sandbox
        .ledger()
        .into_iter()
        .filter(|r| r.reference == pay)
        .map(|r| r.card_token)
        .collect()
}

#[tokio::test]
async fn approve_capture_refund_and_receipt_on_the_right_card() {
    let env = Env::start().await;
    let s = store(&env, "Corner shop").await;
    let pay = s.open(2599, "order-1").await;
    // A replay answers the same payment; the same key with another body is refused; the
    // same order reference under a new key is a conflict.
    let again = s.open_raw(2599, "EUR", "order-1", "order-1").await;
    assert_eq!(
        (again.status, again.body["id"].as_str()),
        (201, Some(pay.as_str()))
    );
    assert_eq!(s.open_raw(2600, "EUR", "order-1", "order-1").await.status, 422);
    assert_eq!(
        code(&s.open_raw(2599, "EUR", "order-1", "other-key").await),
        "order_reference_taken"
    );
    assert_eq!(
        code(&s.open_raw(100, "XAU", "o-x", "k-x").await),
        "invalid_currency"
    );
    assert_eq!(code(&s.open_raw(0, "EUR", "o-y", "k-y").await), "invalid_amount");

    let a = s.palm(&pay, ALICE, 0).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(outcome(&a), "approved", "{:?}", a.body);
    assert_eq!(a.body["card_last4"], "1111");
    assert_eq!(
        a.body["amount"],
        json!({"minor": 2599, "currency": "EUR", "decimal": "25.99"})
    );
    assert_eq!(a.body["payment"]["customer"], s.alice.as_str());
    assert_eq!(charged(&env, &pay), ["tok_sandbox_visa_1111"]);
    // A second palm on the same payment is refused: it is no longer waiting for one.
    assert_eq!(code(&s.palm(&pay, ALICE, 1).await), "payment_not_awaiting_palm");

    // Partial capture releases the rest; the same capture again answers it unchanged.
    let c = s
        .post(
            &format!("/v1/payments/{pay}/capture"),
            json!({"amount_minor": 2000}),
            None,
        )
        .await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    assert_eq!(
        (c.body["status"].as_str(), c.body["captured"]["minor"].as_u64()),
        (Some("captured"), Some(2000))
    );
    let c2 = s
        .post(
            &format!("/v1/payments/{pay}/capture"),
            json!({"amount_minor": 2000}),
            None,
        )
        .await;
    assert_eq!(c2.status, 200);
    let c3 = s
        .post(
            &format!("/v1/payments/{pay}/capture"),
            json!({"amount_minor": 100}),
            None,
        )
        .await;
    assert_eq!(code(&c3), "payment_wrong_state");

    // Refunds: several, never above what was captured; a replayed key is the same refund.
    let r1 = s
        .post(
            &format!("/v1/payments/{pay}/refunds"),
            json!({"amount_minor": 500, "reason": "damaged"}),
            Some("re-1"),
        )
        .await;
    assert_eq!(r1.status, 201, "{:?}", r1.body);
    assert_eq!(r1.body["refund"]["status"], "succeeded");
    let r1b = s
        .post(
            &format!("/v1/payments/{pay}/refunds"),
            json!({"amount_minor": 500, "reason": "damaged"}),
            Some("re-1"),
        )
        .await;
    assert_eq!(
        (r1b.status, &r1b.body["refund"]["id"]),
        (201, &r1.body["refund"]["id"])
    );
    let over = s
        .post(
            &format!("/v1/payments/{pay}/refunds"),
            json!({"amount_minor": 1501}),
            Some("re-2"),
        )
        .await;
    assert_eq!(code(&over), "amount_above_refundable");
    let r3 = s
        .post(
            &format!("/v1/payments/{pay}/refunds"),
            json!({"amount_minor": 1500}),
            Some("re-3"),
        )
        .await;
    assert_eq!(r3.status, 201, "{:?}", r3.body);
    assert_eq!(r3.body["payment"]["status"], "refunded");
    let receipt = s.get(&format!("/v1/payments/{pay}/receipt")).await;
    assert_eq!(receipt.status, 200);
    let b = &receipt.body;
    assert_eq!(
        (b["store"].as_str(), b["site"].as_str()),
        (Some("Corner shop"), Some("till 1"))
    );
    assert_eq!(
        (
            b["captured"]["minor"].as_u64(),
            b["refunded"]["minor"].as_u64(),
            b["net"]["minor"].as_u64()
        ),
        (Some(2000), Some(2000), Some(0))
    );
    assert_eq!(b["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(
        (b["card_last4"].as_str(), b["processor"].as_str()),
        (Some("1111"), Some("sandbox"))
    );
    let ledger = env.running.as_ref().unwrap().state.sandbox.ledger();
    let rec = ledger.iter().find(|r| r.reference == pay).unwrap();
    assert_eq!(
        (rec.captures, rec.intent.captured_minor, rec.intent.refunded_minor),
        (1, 2000, 2000)
    );

    // The store's history with Alice, and the match log line she can see.
    let h = s.get(&format!("/v1/people/{}/payments", s.alice)).await;
    assert_eq!(h.body["items"].as_array().unwrap().len(), 1);
    let log = s.get(&format!("/v1/people/{}/match-log", s.alice)).await;
    assert!(
        log.body.to_string().contains(&format!("payment:{pay}")),
        "{:?}",
        log.body
    );

    // Another store sees none of it.
    let other = env.business("Other shop").await;
    assert_eq!(
        other
            .client
            .get(&format!("/v1/payments/{pay}"))
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        other
            .client
            .get(&format!("/v1/payments/{pay}/receipt"))
            .await
            .unwrap()
            .status,
        404
    );
    let list = other.client.get("/v1/payments").await.unwrap();
    assert_eq!(list.body["items"], json!([]));
    let other_till = other.reader(DeviceKind::Checkout, "x").await;
    let c = other_till.seal(Purpose::Identify, &palm(ALICE, 5, 1)[0]).unwrap();
    assert_eq!(other.client.pay(&pay, "roi", &c).await.unwrap().status, 404);
    env.stop().await;
}

#[tokio::test]
async fn strangers_declines_and_the_processor_s_failures() {
    let env = Env::start().await;
    let s = store(&env, "Grocer").await;
    // A stranger: not recognised, attempts counted, the last one fails the payment.
    let pay = s.open(1000, "o-stranger").await;
    for (k, left) in [(0, 2), (1, 1)] {
        let a = s.palm(&pay, STRANGER, k).await;
        assert_eq!(
            (outcome(&a), a.body["palm_attempts_left"].as_u64()),
            ("not_recognised", Some(left)),
            "{:?}",
            a.body
        );
    }
    let a = s.palm(&pay, STRANGER, 2).await;
    assert_eq!(
        (outcome(&a), a.body["reason"].as_str()),
        ("declined", Some("palm_attempts_exhausted"))
    );
    assert!(charged(&env, &pay).is_empty());

    // Each documented decline token declines with its code; nothing is held.
    for (i, code) in [
        "decline",
        "insufficient_funds",
        "expired_card",
        "processing_error",
    ]
    .iter()
    .enumerate()
    {
        replace_cards(&s.biz, &s.bob, &format!("tok_sandbox_{code}_{i}")).await;
        let pay = s.open(1500, &format!("o-decline-{i}")).await;
        let a = s.palm(&pay, BOB, i).await;
        let want = if *code == "decline" {
            "generic_decline"
        } else {
            code
        };
        assert_eq!(
            (outcome(&a), a.body["reason"].as_str()),
            ("declined", Some(want)),
            "{:?}",
            a.body
        );
        assert_eq!(a.body["payment"]["status"], "declined");
        assert!(a.body["card_last4"].is_null());
    }
    // A processor that never answers: declined as unavailable, no intent anywhere.
    replace_cards(&s.biz, &s.bob, "tok_sandbox_timeout").await;
    let pay = s.open(1500, "o-timeout").await;
    let a = s.palm(&pay, BOB, 0).await;
    assert_eq!(
        (outcome(&a), a.body["reason"].as_str()),
        ("declined", Some("processor_unavailable"))
    );
    assert!(charged(&env, &pay).is_empty());
    // A timeout after the processor acted: the retry with the same key finds the
    // authorisation; one intent, approved.
    replace_cards(&s.biz, &s.bob, "tok_sandbox_timeout_after_auth").await;
    let pay = s.open(1500, "o-timeout-after").await;
    let a = s.palm(&pay, BOB, 1).await;
    assert_eq!(outcome(&a), "approved", "{:?}", a.body);
    assert_eq!(charged(&env, &pay).len(), 1);
    // A card that needs verification, and no step-up code set: declined.
    replace_cards(&s.biz, &s.bob, "tok_sandbox_requires_verification").await;
    let pay = s.open(1500, "o-verify").await;
    let a = s.palm(&pay, BOB, 2).await;
    assert_eq!(
        (outcome(&a), a.body["reason"].as_str()),
        ("declined", Some("authentication_required"))
    );
    // With a step-up code: the checkout asks for it, a wrong one spends an attempt, the
    // right one authorises.
    s.settings(
        &s.bob,
        json!({"currency": "EUR", "step_up": {"method": "phone_last4", "code": "5678"}}),
    )
    .await;
    let pay = s.open(1500, "o-verify-2").await;
    let a = s.palm(&pay, BOB, 3).await;
    assert_eq!(outcome(&a), "step_up_required", "{:?}", a.body);
    assert_eq!(
        a.body["step_up"],
        json!({"method": "phone_last4", "attempts_left": 3})
    );
    let w = s
        .post(
            &format!("/v1/payments/{pay}/step-up"),
            json!({"code": "0000"}),
            None,
        )
        .await;
    assert_eq!(
        (outcome(&w), w.body["step_up"]["attempts_left"].as_u64()),
        ("step_up_required", Some(2))
    );
    let ok = s
        .post(
            &format!("/v1/payments/{pay}/step-up"),
            json!({"code": "5678"}),
            None,
        )
        .await;
    assert_eq!(outcome(&ok), "approved", "{:?}", ok.body);
    assert_eq!(ok.body["card_last4"], "3184");
    assert_eq!(
        charged(&env, &pay).len(),
        1,
        "verification continued the same intent"
    );
    env.stop().await;
}

#[tokio::test]
async fn safeguards_step_up_limits_expiry_void_and_erasure_waits() {
    let env = Env::start().await;
    let s = store(&env, "Outfitter").await;
    s.settings(
        &s.alice,
        json!({"currency": "EUR", "per_payment_limit_minor": 20000, "daily_limit_minor": 30000,
               "step_up_above_minor": 5000, "step_up": {"method": "pin", "code": "2468"}}),
    )
    .await;
    let g = s.get(&format!("/v1/people/{}/payment-settings", s.alice)).await;
    assert_eq!(g.body["step_up_method"], "pin");
    // Above the per-payment limit: declined without asking the processor.
    let pay = s.open(20001, "o-limit").await;
    let a = s.palm(&pay, ALICE, 0).await;
    assert_eq!(
        (outcome(&a), a.body["reason"].as_str()),
        ("declined", Some("over_payment_limit"))
    );
    assert!(charged(&env, &pay).is_empty());
    // Another currency while limits are set: refused.
    let a = s.open_raw(100, "USD", "o-usd", "o-usd").await;
    let pay_usd = a.body["id"].as_str().unwrap().to_string();
    let a = s.palm(&pay_usd, ALICE, 1).await;
    assert_eq!(a.body["reason"], "currency_not_allowed");
    // Above the step-up amount: three wrong PINs fail the payment.
    let pay = s.open(6000, "o-stepup").await;
    assert_eq!(outcome(&s.palm(&pay, ALICE, 2).await), "step_up_required");
    for _ in 0..2 {
        let w = s
            .post(
                &format!("/v1/payments/{pay}/step-up"),
                json!({"code": "1111"}),
                None,
            )
            .await;
        assert_eq!(outcome(&w), "step_up_required");
    }
    let w = s
        .post(
            &format!("/v1/payments/{pay}/step-up"),
            json!({"code": "1111"}),
            None,
        )
        .await;
    assert_eq!(
        (outcome(&w), w.body["reason"].as_str()),
        ("declined", Some("step_up_failed"))
    );
    let late = s
        .post(
            &format!("/v1/payments/{pay}/step-up"),
            json!({"code": "2468"}),
            None,
        )
        .await;
    assert_eq!(code(&late), "payment_not_awaiting_step_up");
    assert!(charged(&env, &pay).is_empty());
    // The daily limit counts what is held and taken today: 20,000 + 4,000 + 4,000 pass,
    // another 4,001 would make 32,001 > 30,000.
    let p1 = s.open(20000, "o-day-1").await;
    assert_eq!(outcome(&s.palm(&p1, ALICE, 3).await), "step_up_required");
    let ok = s
        .post(
            &format!("/v1/payments/{p1}/step-up"),
            json!({"code": "2468"}),
            None,
        )
        .await;
    assert_eq!(outcome(&ok), "approved", "{:?}", ok.body);
    let p2 = s.open(4000, "o-day-2").await;
    assert_eq!(outcome(&s.palm(&p2, ALICE, 4).await), "approved");
    let p3 = s.open(4000, "o-day-3").await;
    let a = s.palm(&p3, ALICE, 5).await;
    assert_eq!(
        (outcome(&a), a.body["reason"].as_str()),
        ("approved", None),
        "28,000 fits"
    );
    let p4 = s.open(4001, "o-day-4").await;
    let a = s.palm(&p4, ALICE, 6).await;
    assert_eq!(
        (outcome(&a), a.body["reason"].as_str()),
        ("declined", Some("over_daily_limit"))
    );

    // Outstanding payments are listed, and erasing Alice waits for them.
    let out = s.get("/v1/payments?status=outstanding").await;
    assert_eq!(out.body["items"].as_array().unwrap().len(), 3, "{:?}", out.body);
    let e = env
        .admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": s.biz.id, "pseudonymous_id": s.alice, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code(&e), "outstanding_payments");

    // Void one; the others lapse when the clock passes their expiry (7 days).
    let v = s.post(&format!("/v1/payments/{p1}/void"), json!({}), None).await;
    assert_eq!(v.body["status"], "voided", "{:?}", v.body);
    assert_eq!(
        s.post(&format!("/v1/payments/{p1}/void"), json!({}), None)
            .await
            .status,
        200
    );
    let state = &env.running.as_ref().unwrap().state;
    let before = state.clock.now();
    state.clock.advance(7 * 86_400 + 1);
    assert!(state.clock.now() > before);
    let c = s
        .post(&format!("/v1/payments/{p2}/capture"), json!({}), None)
        .await;
    assert_eq!(code(&c), "authorization_expired", "{:?}", c.body);
    assert_eq!(
        s.get(&format!("/v1/payments/{p3}")).await.body["status"],
        "expired"
    );
    let ledger = state.sandbox.ledger();
    assert!(ledger.iter().all(|r| r.captures == 0));
    // Nothing outstanding now: the erasure goes through, the store keeps its records.
    let e = env
        .admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": s.biz.id, "pseudonymous_id": s.alice, "verification": "request checked in person"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(e.status, 200, "{:?}", e.body);
    let kept = s.get(&format!("/v1/payments/{p1}")).await;
    assert_eq!((kept.status, kept.body["customer"].is_null()), (200, true));
    env.stop().await;
}

#[tokio::test]
async fn races_retries_and_a_crash_between_processor_and_commit_charge_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_in(dir, |c| {
        c.sandbox_faults.duplicate_callbacks = true;
        c.sandbox_faults.reorder_callbacks = true;
        c.sandbox_faults.timeout_after_act_every = Some(2);
    })
    .await;
    let s = store(&env, "Bakery").await;
    // Two palms on one payment at once: one decides, the other is refused; one intent.
    let pay = s.open(800, "o-race").await;
    let (a, b) = tokio::join!(s.palm(&pay, ALICE, 0), s.palm(&pay, ALICE, 1));
    let outcomes = [a.body["outcome"].clone(), b.body["outcome"].clone()];
    assert!(outcomes.contains(&json!("approved")), "{a:?} {b:?}");
    assert!([a.status, b.status].contains(&409), "{a:?} {b:?}");
    assert_eq!(charged(&env, &pay).len(), 1);
    // Captures raced and retried through injected timeouts: captured once.
    let path = format!("/v1/payments/{pay}/capture");
    let (c1, c2) = tokio::join!(s.post(&path, json!({}), None), s.post(&path, json!({}), None));
    assert!([c1.status, c2.status].contains(&200), "{c1:?} {c2:?}");
    let state = env.running.as_ref().unwrap().state.clone();
    let rec = state
        .sandbox
        .ledger()
        .into_iter()
        .find(|r| r.reference == pay)
        .unwrap();
    assert_eq!((rec.captures, rec.intent.captured_minor), (1, 800));

    // A crash after the processor authorised but before the answer was committed: the
    // payment is stored as authorising with its pending call, the sandbox acted.
    let pay = s.open(900, "o-crash").await;
    let p = state.store.payment(&s.biz.id, &pay).await.unwrap().unwrap();
    let alice_person = state
        .store
        .membership_by_pseudonym(&s.biz.id, &s.alice)
        .await
        .unwrap()
        .unwrap()
        .person_id;
    let now = state.clock.now();
    let pending = p
        .recognised(&alice_person, Some("tok_sandbox_visa_1111"), now)
        .unwrap()
        .start_authorize(false, now)
        .unwrap();
    let w = openpalm_store::PaymentWrite::moving(pending.clone(), p.version);
    assert_eq!(
        state.store.write_payment(&w).await.unwrap(),
        openpalm_store::PaymentWritten::Written
    );
    let _ = openpalm_processor::settle::settle(state.processor.as_ref(), &pending, now).await;
    drop(state);
    let dir = env.stop().await;
    // Restart: reconciliation asks the processor by the same key and commits what it did.
    let env = Env::start_in(dir, |_| {}).await;
    let state = env.running.as_ref().unwrap().state.clone();
    openpalm_server::payments::reconcile(&state).await.unwrap();
    let p = state.store.payment(&s.biz.id, &pay).await.unwrap().unwrap();
    assert_eq!((p.status, p.pending.clone()), (PaymentStatus::Authorized, None));
    assert_eq!(charged(&env, &pay).len(), 1);
    env.stop().await;
}

#[tokio::test]
async fn offers_only_after_opt_in_and_only_from_the_store_s_own_history() {
    let env = Env::start().await;
    let s = store(&env, "Cafe").await;
    let o = s
        .post(
            "/v1/offers",
            json!({"title": "Free coffee after 2 visits", "currency": "EUR", "min_payments": 2, "window_days": 30}),
            Some("offer-1"),
        )
        .await;
    assert_eq!(o.status, 201, "{:?}", o.body);
    let path = format!("/v1/people/{}/offers", s.alice);
    assert_eq!(code(&s.get(&path).await), "offers_not_opted_in");
    // Two captured payments at this store; Alice joins another store (with her palm and her
    // consent there) and pays there too: that payment never counts here.
    for (k, order) in ["o-cafe-1", "o-cafe-2"].iter().enumerate() {
        let pay = s.open(300, order).await;
        assert_eq!(outcome(&s.palm(&pay, ALICE, k).await), "approved");
        let c = s
            .post(&format!("/v1/payments/{pay}/capture"), json!({}), None)
            .await;
        assert_eq!(c.status, 200);
    }
    let bar = env.business("Bar").await;
    let bar_kiosk = bar.reader(DeviceKind::Kiosk, "bar kiosk").await;
    let bar_till = bar.reader(DeviceKind::Checkout, "bar till").await;
    let c = bar_kiosk.seal(Purpose::Enroll, &palm(ALICE, 3, 1)[0]).unwrap();
    let j = bar
        .client
        .post(
            "/v1/memberships",
            &json!({"consent": {"text_version": 1, "accepted": true}, "input": "roi", "capture": c,
                    "links": [{"kind": "payment_token", "value": "tok_sandbox_visa_9999"}]}),
            Some("join-bar"),
        )
        .await
        .unwrap();
    assert_eq!(j.status, 201, "{:?}", j.body);
    let p = bar
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": bar_till.device_id, "amount_minor": 900, "currency": "EUR", "order_reference": "o-bar"}),
            Some("o-bar"),
        )
        .await
        .unwrap();
    let bar_pay = p.body["id"].as_str().unwrap().to_string();
    let cap = bar_till.seal(Purpose::Identify, &palm(ALICE, 6, 1)[0]).unwrap();
    let a = bar.client.pay(&bar_pay, "roi", &cap).await.unwrap();
    assert_eq!(
        (outcome(&a), a.body["card_last4"].as_str()),
        ("approved", Some("9999")),
        "{:?}",
        a.body
    );
    bar.client
        .post(&format!("/v1/payments/{bar_pay}/capture"), &json!({}), None)
        .await
        .unwrap();
    // Across stores the person's own history holds both (for their own side, #15).
    let state = &env.running.as_ref().unwrap().state;
    let person = state
        .store
        .membership_by_pseudonym(&s.biz.id, &s.alice)
        .await
        .unwrap()
        .unwrap()
        .person_id;
    let all = state.store.payments_of_person(&person, None, 50).await.unwrap();
    assert_eq!(all.items.len(), 3);
    let c = s
        .biz
        .client
        .put(
            &format!("/v1/people/{}/offers-consent", s.alice),
            &json!({"opted_in": true}),
        )
        .await
        .unwrap();
    assert_eq!((c.status, &c.body["opted_in"]), (200, &json!(true)));
    let got = s.get(&path).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    let item = &got.body["items"][0];
    assert_eq!(
        (item["eligible"].as_bool(), item["payments"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(item["spent"]["minor"], 600, "only this store's payments count");
    // Bob never opted in: nothing is computed for him.
    assert_eq!(
        code(&s.get(&format!("/v1/people/{}/offers", s.bob)).await),
        "offers_not_opted_in"
    );
    // Opting out stops it again.
    s.biz
        .client
        .put(
            &format!("/v1/people/{}/offers-consent", s.alice),
            &json!({"opted_in": false}),
        )
        .await
        .unwrap();
    assert_eq!(code(&s.get(&path).await), "offers_not_opted_in");
    env.stop().await;
}
