//! A stored template that no longer decrypts quarantines its person at start (kept, left out
//! of the gallery, reported with the reason) instead of stopping the service for everyone.

mod common;

use common::*;
use openpalm_domain::ids::DeviceKind;
use openpalm_store::QuarantineStore;

#[tokio::test]
async fn an_unreadable_person_is_quarantined_and_everyone_else_is_served() {
    let env = Env::start().await;
    let biz = env.business("Venue").await;
    let kiosk = biz.reader(DeviceKind::Kiosk, "hall").await;
    for (i, who) in [41u64, 42].iter().enumerate() {
        let e = biz.enroll(&kiosk, &palm(*who, 0, 3), &format!("e{i}")).await;
        assert_eq!(e.status, 201, "{:?}", e.body);
    }
    let url = env.database_url.clone();
    let dir = env.stop().await;

    // The first person's first template is damaged on disk (its AEAD tag no longer fits).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let damaged: String = sqlx::query_scalar("SELECT id FROM people ORDER BY seq LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let n = sqlx::query(
        "UPDATE templates SET sealed = CASE WHEN substr(sealed, 1, 2) = '00' THEN 'ff' ELSE '00' END || substr(sealed, 3) WHERE person_id = $1 AND idx = 0",
    )
    .bind(&damaged)
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1);
    pool.close().await;

    let env = Env::start_in(dir, |_| {}).await;
    let health = env.anonymous().get("/v1/health").await.unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.body["quarantined"], 1);
    assert_eq!(health.body["templates"], 3, "the other person's three templates");
    let store = openpalm_store::SqlStore::connect(&url).await.unwrap();
    let q = store.quarantined().await.unwrap();
    store.close().await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].person_id, damaged);
    assert!(!q[0].reason.is_empty());

    // The healthy person is still identified; the quarantined one is not matched to anyone.
    let biz = Biz {
        client: openpalm_device::Client::new(&env.base, Some(biz.key.clone())),
        ..biz
    };
    let gate = biz.reader(DeviceKind::Gate, "north").await;
    let ok = biz.identify(&gate, &palm(42, 5, 1)[0]).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["decision"], "match", "{:?}", ok.body);
    let gone = biz.identify(&gate, &palm(41, 5, 1)[0]).await;
    assert_eq!(gone.body["decision"], "no_match", "{:?}", gone.body);
    env.stop().await;
}
