//! Pay by palm on real whole-hand images (COEP): 50 people enroll at a store's kiosk from
//! three images each and link a sandbox card of their own; at the till each pays from their
//! fourth image (never enrolled), and once more from a fifth when the first try was not
//! approved and they have one; strangers (identities beyond the first 50) try to pay too.
//! Checked: no payment is authorised on anyone's card but the payer's own (the sandbox's
//! ledger names the token it charged); no stranger is approved; the share approved at the
//! first try is printed and must be at least 85%.
//!
//! Measured figures are in the note of issue #14 and in `crates/server/README.md`.
//!
//! Needs `../shared/data/coep-hands-dev`: skipped with a message when absent, a failure when
//! absent under `CI=true`.

mod common;

use common::*;
use openpalm_device::Reader;
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One payment at the till: the checkout's outcome (or `refused:<code>` when the capture was
/// refused), and the payment's ID.
async fn pay(biz: &Biz, till: &Reader, order: &str, image: &PathBuf, ms: &mut Vec<f64>) -> (String, String) {
    let p = biz
        .client
        .post(
            "/v1/payments",
            &json!({"device_id": till.device_id, "amount_minor": 1999, "currency": "EUR", "order_reference": order}),
            Some(order),
        )
        .await
        .unwrap();
    assert_eq!(p.status, 201, "{:?}", p.body);
    let id = p.body["id"].as_str().unwrap().to_string();
    let c = till
        .seal(Purpose::Identify, &std::fs::read(image).unwrap())
        .unwrap();
    let a = biz.client.pay(&id, "hand", &c).await.unwrap();
    if a.status != 200 {
        assert_eq!(a.status, 422, "{}: {:?}", image.display(), a.body);
        return (format!("refused:{}", code(&a)), id);
    }
    ms.push(a.body["decision_ms"].as_f64().unwrap());
    let mut outcome = a.body["outcome"].as_str().unwrap().to_string();
    if let Some(r) = a.body["reason"].as_str() {
        outcome = format!("{outcome}:{r}");
    }
    (outcome, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_by_palm_on_coep_whole_hands() {
    let Some(data) = openpalm_eval::dataset::shared_data_dir() else {
        return;
    };
    let all: Vec<(String, Vec<PathBuf>)> = openpalm_device::sim::read_folder(&data.join("coep-hands-dev"))
        .unwrap()
        .into_iter()
        .filter(|(_, v)| v.len() >= 4)
        .collect();
    assert!(
        all.len() > 50,
        "coep-hands-dev should hold more than 50 people with 4 images"
    );
    let (crowd, strangers) = all.split_at(50);

    let env = Env::start().await;
    let shop = env.business("Shop").await;
    let kiosk = shop.reader(DeviceKind::Kiosk, "service desk").await;
    let till = shop.reader(DeviceKind::Checkout, "till 1").await;

    // Enrollment, each with a card of their own: identity -> token.
    let mut card_of: BTreeMap<String, String> = BTreeMap::new();
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, (identity, images)) in crowd.iter().enumerate() {
        let captures = images[..3]
            .iter()
            .map(|p| kiosk.seal(Purpose::Enroll, &std::fs::read(p).unwrap()).unwrap())
            .collect();
        let a = shop
            .client
            .enroll(
                &format!("enroll-{identity}"),
                1,
                "hand",
                &[(HandSide::Left, captures)],
                &[],
            )
            .await
            .unwrap();
        if a.status != 201 {
            assert!(a.status == 409 || a.status == 422, "{identity}: {:?}", a.body);
            refused
                .entry(code(&a).to_string())
                .or_default()
                .push(identity.clone());
            continue;
        }
        let pid = a.body["person"]["pseudonymous_id"].as_str().unwrap();
        let token = format!("tok_sandbox_visa_p{n}");
        let l = shop
            .client
            .post(
                &format!("/v1/people/{pid}/links"),
                &json!({"kind": "payment_token", "value": token}),
                Some(&format!("card-{identity}")),
            )
            .await
            .unwrap();
        assert_eq!(l.status, 201, "{:?}", l.body);
        card_of.insert(identity.clone(), token);
    }

    let mut ms = Vec::new();
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let mut second: BTreeMap<String, usize> = BTreeMap::new();
    let mut approved_first = 0usize;
    let mut approved_in_two = 0usize;
    let mut payments: Vec<(String, String, String)> = Vec::new();
    for (identity, images) in crowd {
        let Some(_) = card_of.get(identity) else { continue };
        let (o, id) = pay(&shop, &till, &format!("order-{identity}-1"), &images[3], &mut ms).await;
        payments.push((identity.clone(), id, o.clone()));
        *first.entry(o.clone()).or_default() += 1;
        if o == "approved" {
            approved_first += 1;
            approved_in_two += 1;
        } else if images.len() > 4 {
            let (o2, id2) = pay(&shop, &till, &format!("order-{identity}-2"), &images[4], &mut ms).await;
            payments.push((identity.clone(), id2, o2.clone()));
            *second.entry(o2.clone()).or_default() += 1;
            approved_in_two += usize::from(o2 == "approved");
        }
    }
    let mut strangers_seen: BTreeMap<String, usize> = BTreeMap::new();
    for (identity, images) in strangers {
        let (o, id) = pay(&shop, &till, &format!("order-{identity}-s"), &images[3], &mut ms).await;
        payments.push((identity.clone(), id, o.clone()));
        *strangers_seen.entry(o).or_default() += 1;
    }

    // Who the sandbox charged for each payment.
    let ledger: BTreeMap<String, String> = env
        .running
        .as_ref()
        .unwrap()
        .state
        .sandbox
        .ledger()
        .into_iter()
        .map(|r| (r.reference, r.card_token))
        .collect();
    let mut wrong = Vec::new();
    for (identity, id, outcome) in &payments {
        if let Some(tok) = ledger.get(id) {
            if card_of.get(identity) != Some(tok) {
                wrong.push(format!("{identity} charged {tok} ({outcome})"));
            }
        }
        if outcome == "approved" {
            assert!(
                ledger.contains_key(id),
                "{identity}: approved without an authorisation"
            );
        }
    }
    ms.sort_by(f64::total_cmp);
    let n = card_of.len();
    eprintln!(
        "coep checkout: {n} of {} enrolled (refused {refused:?}); first tries {first:?}; second tries {second:?}; \
         approved at the first try {approved_first}/{n} ({:.1}%), within two {approved_in_two}/{n}; strangers {strangers_seen:?}; \
         median decision_ms {:.1}",
        crowd.len(),
        100.0 * approved_first as f64 / n as f64,
        ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN)
    );
    assert!(wrong.is_empty(), "payments on another person's card: {wrong:?}");
    assert_eq!(
        strangers_seen.get("approved"),
        None,
        "a stranger was approved: {strangers_seen:?}"
    );
    assert!(n >= 45, "only {n} of 50 enrolled: {refused:?}");
    assert!(
        approved_first * 100 >= n * 85,
        "approved at the first try {approved_first}/{n}: {first:?}"
    );
    env.stop().await;
}
