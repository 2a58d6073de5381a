//! After a person's deletion nothing recoverable remains on disk: the SQLite database files
//! (the write-ahead log included; secure deletion on) are scanned for the person's wrapped
//! data key and sealed template bytes, as stored (hex) and raw, and neither is found. The
//! gallery is in memory only (rebuilt from the database at start), so it leaves no file.
//!
//! On PostgreSQL a deleted row stays in its page until VACUUM reclaims it, and in the WAL
//! until it is recycled: the test is skipped there (see `crates/server/README.md`).

mod common;

use common::*;
use openpalm_domain::ids::DeviceKind;
use openpalm_store::Store;
use serde_json::json;

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn nothing_of_a_deleted_person_remains_in_the_database_files() {
    if on_postgres() {
        eprintln!("skipping: the file scan is for SQLite (PostgreSQL keeps dead rows until VACUUM)");
        return;
    }
    let env = Env::start().await;
    let shop = env.business("Shop").await;
    let kiosk = shop.reader(DeviceKind::Kiosk, "front").await;
    let a = shop.enroll(&kiosk, &palm(51, 0, 3), "enr").await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let pid = a.body["person"]["pseudonymous_id"].as_str().unwrap().to_string();
    shop.enroll(&kiosk, &palm(52, 0, 3), "enr-2").await;

    // What is stored for the person: the wrapped key and the sealed templates.
    let store = openpalm_store::SqlStore::connect(&env.database_url)
        .await
        .unwrap();
    let people = store.people().await.unwrap();
    store.close().await;
    let person = people.iter().find(|p| p.templates.len() == 3).unwrap().clone();
    let mut secrets: Vec<Vec<u8>> = vec![person.person.wrapped_key.clone()];
    secrets.extend(person.templates.iter().map(|t| t.sealed.clone()));
    let data = env.dir.path().join("data");
    for s in &secrets {
        let hex = hex::encode(s);
        // A 32-byte window is plenty to name the value.
        let probe = &hex.as_bytes()[..64.min(hex.len())];
        assert!(
            !files_contain(&data, probe).is_empty(),
            "the scan must find it before deletion"
        );
    }

    let r = env
        .admin()
        .post(
            "/v1/operator/erasures",
            &json!({"business_id": shop.id, "pseudonymous_id": pid, "verification": "test"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    for s in &secrets {
        let hex = hex::encode(s);
        let probe = &hex.as_bytes()[..64.min(hex.len())];
        assert_eq!(
            files_contain(&data, probe),
            Vec::<String>::new(),
            "stored form left behind"
        );
        let raw = &s[..32.min(s.len())];
        assert_eq!(
            files_contain(&data, raw),
            Vec::<String>::new(),
            "raw bytes left behind"
        );
    }
    env.stop().await;
}
