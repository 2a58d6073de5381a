use super::*;
use openpalm_domain::apikey::{generate, Environment, Scope};
use openpalm_domain::ids::DeviceKind;

async fn store(dir: &tempfile::TempDir) -> SqlStore {
    SqlStore::connect(&SqlStore::sqlite_url(&dir.path().join("openpalm.db")))
        .await
        .unwrap()
}

fn business(id: &str) -> (Business, ApiKeyRecord) {
    let k = generate(Environment::Test);
    (
        Business {
            id: id.into(),
            name: format!("{id} name"),
            created_at: 1,
        },
        ApiKeyRecord {
            id: format!("key_{id}"),
            business_id: id.into(),
            environment: Environment::Test,
            scopes: Scope::ALL.to_vec(),
            hash: k.hash,
            display_prefix: k.display_prefix,
            created_at: 1,
            revoked_at: None,
        },
    )
}

fn device(id: &str, biz: &str, at: i64) -> Device {
    Device {
        id: id.into(),
        business_id: biz.into(),
        kind: DeviceKind::Gate,
        site: "north".into(),
        public_key: [7u8; 32],
        created_at: at,
        revoked_at: None,
    }
}

#[tokio::test]
async fn migrations_create_the_file_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    assert!(dir.path().join("openpalm.db").is_file());
    let text = s.current_consent_text().await.unwrap().unwrap();
    assert_eq!(text.version, 1);
    s.close().await;
    // A second start finds the migrations applied and the data kept.
    let s = store(&dir).await;
    assert_eq!(s.consent_text(1).await.unwrap().unwrap(), text);
}

#[tokio::test]
async fn keys_are_found_by_hash_and_revoked_only_by_their_business() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    let (b, _) = business("biz_b");
    s.create_business(&a, &ka).await.unwrap();
    s.create_business(&b, &business("biz_b").1).await.unwrap();
    assert_eq!(s.api_key_by_hash(&ka.hash).await.unwrap().unwrap(), ka);
    assert!(!s.revoke_api_key(&b.id, &ka.id, 5).await.unwrap(), "other tenant");
    assert!(s.revoke_api_key(&a.id, &ka.id, 5).await.unwrap());
    assert!(
        !s.revoke_api_key(&a.id, &ka.id, 6).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        s.api_key_by_hash(&ka.hash).await.unwrap().unwrap().revoked_at,
        Some(5)
    );
}

#[tokio::test]
async fn rotation_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    s.create_business(&a, &ka).await.unwrap();
    let mut new = business("biz_a").1;
    new.id = "key_new".into();
    assert!(s.rotate_api_key(&a.id, &ka.id, &new, 9).await.unwrap());
    let keys = s.list_api_keys(&a.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_none()).count(), 1);
    // Rotating a revoked key does nothing, and inserts nothing.
    let mut again = business("biz_a").1;
    again.id = "key_again".into();
    assert!(!s.rotate_api_key(&a.id, &ka.id, &again, 10).await.unwrap());
    assert_eq!(s.list_api_keys(&a.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn nonces_are_single_use_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    s.create_business(&a, &ka).await.unwrap();
    s.insert_device(&device("dev_1", "biz_a", 1)).await.unwrap();
    s.insert_device(&device("dev_2", "biz_a", 1)).await.unwrap();
    let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(s.record_nonces("dev_1", &n(&["00ff", "0100"]), 1).await.unwrap());
    assert!(!s.record_nonces("dev_1", &n(&["00ff"]), 2).await.unwrap());
    // All or none: a batch with one replayed nonce records none of the others.
    assert!(!s.record_nonces("dev_1", &n(&["aaaa", "0100"]), 2).await.unwrap());
    assert!(s.record_nonces("dev_1", &n(&["aaaa"]), 3).await.unwrap());
    assert!(s.record_nonces("dev_2", &n(&["00ff"]), 2).await.unwrap());
}

#[tokio::test]
async fn device_pages_cover_everything_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    let (b, kb) = business("biz_b");
    s.create_business(&a, &ka).await.unwrap();
    s.create_business(&b, &kb).await.unwrap();
    for i in 0..7 {
        // Two devices share each timestamp, to exercise the id tie-break.
        s.insert_device(&device(&format!("dev_{i}"), "biz_a", i / 2))
            .await
            .unwrap();
    }
    s.insert_device(&device("dev_other", "biz_b", 0)).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list_devices("biz_a", cursor.as_ref(), 3).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|d| d.id.clone()));
        match page.next {
            Some(c) => cursor = Some(Cursor::decode(&c.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("dev_{i}")).collect::<Vec<_>>());
    let dev = s.device("dev_3").await.unwrap().unwrap();
    assert_eq!(dev.public_key, [7u8; 32]);
}

#[test]
fn cursors_parse_strictly() {
    assert_eq!(
        Cursor::decode("12.dev_a").unwrap(),
        Cursor {
            at: 12,
            id: "dev_a".into()
        }
    );
    assert!(Cursor::decode("x.dev").is_none());
    assert!(Cursor::decode("12.").is_none());
    assert!(Cursor::decode("nodot").is_none());
    assert_eq!(
        hex_decode(&hex_encode(&[0, 1, 254, 255])).unwrap(),
        vec![0, 1, 254, 255]
    );
    assert!(hex_decode("0g").is_none());
}
