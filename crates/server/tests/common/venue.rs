//! A venue for the entry tests: a ticketing business with a kiosk, two entry gates and an
//! exit gate, four enrolled people with member IDs; helpers to make events, issue tickets
//! and present palms at gates.

use super::*;
use openpalm_device::{Answer, Reader};
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_domain::now_unix;
use serde_json::{json, Value};

/// Synthetic identities used below (distinct palms).
pub const A: u64 = 11;
pub const B: u64 = 12;
pub const C: u64 = 13;
pub const D: u64 = 14;
pub const STRANGER: u64 = 99;

pub struct Venue {
    pub biz: Biz,
    pub kiosk: Reader,
    pub g1: Reader,
    pub g2: Reader,
    pub exit: Reader,
    /// Pseudonymous IDs of A, B, C, D.
    pub pids: Vec<String>,
}

pub async fn enroll(biz: &Biz, kiosk: &Reader, identity: u64, member_id: &str) -> String {
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
            &[("member_id".into(), member_id.into())],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.body["person"]["pseudonymous_id"].as_str().unwrap().to_string()
}

pub async fn venue(env: &Env, name: &str) -> Venue {
    let biz = env.business(name).await;
    let kiosk = biz.reader(DeviceKind::Kiosk, "arena").await;
    let g1 = biz.reader(DeviceKind::Gate, "arena north").await;
    let g2 = biz.reader(DeviceKind::Gate, "arena south").await;
    let exit = biz.reader(DeviceKind::Gate, "arena exit").await;
    let mut pids = Vec::new();
    for (id, m) in [(A, "M-A"), (B, "M-B"), (C, "M-C"), (D, "M-D")] {
        pids.push(enroll(&biz, &kiosk, id, m).await);
    }
    Venue {
        biz,
        kiosk,
        g1,
        g2,
        exit,
        pids,
    }
}

pub async fn create_event(v: &Venue, doors_open_at: i64, max_reentries: u32) -> String {
    let now = now_unix();
    let r = v
        .biz
        .client
        .post(
            "/v1/events",
            &json!({
                "name": "Concert", "site": "arena",
                "starts_at": now + 3600, "ends_at": now + 4 * 3600,
                "doors_open_at": doors_open_at,
                "gates": [v.g1.device_id, v.g2.device_id],
                "exit_gates": [v.exit.device_id],
                "reentry": {"max_reentries": max_reentries},
            }),
            Some(&format!("evt-{doors_open_at}-{max_reentries}")),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

pub async fn issue(biz: &Biz, event: &str, tickets: Value, idem: &str) -> Answer {
    biz.client
        .post(
            &format!("/v1/events/{event}/tickets"),
            &json!({ "tickets": tickets }),
            Some(idem),
        )
        .await
        .unwrap()
}

/// A palm at a gate: capture `k` (never enrolled: captures 0..3 were) of `identity`.
pub async fn at_gate(biz: &Biz, gate: &Reader, event: &str, identity: u64, k: usize) -> Answer {
    let image = palm(identity, k, 1).remove(0);
    let c = gate.seal(Purpose::Identify, &image).unwrap();
    biz.client.enter(event, "roi", &c).await.unwrap()
}

pub async fn leave(biz: &Biz, gate: &Reader, event: &str, identity: u64, k: usize) -> Answer {
    let image = palm(identity, k, 1).remove(0);
    let c = gate.seal(Purpose::Identify, &image).unwrap();
    biz.client.exit(event, "roi", &c).await.unwrap()
}

pub fn decision(a: &Answer) -> (&str, &str) {
    assert_eq!(a.status, 200, "{:?}", a.body);
    (
        a.body["decision"].as_str().unwrap_or(""),
        a.body["reason"].as_str().unwrap_or(""),
    )
}
