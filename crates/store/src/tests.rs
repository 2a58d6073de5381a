use super::*;
use openpalm_domain::apikey::{generate, Environment, Scope};
use openpalm_domain::ids::{DeviceKind, HandSide};
use openpalm_domain::model::LinkKind;
use openpalm_domain::webhook::EventType;

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
    assert!(s.rotate_api_key(&a.id, &ka.id, &new, 9, None).await.unwrap());
    let keys = s.list_api_keys(&a.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_none()).count(), 1);
    // Rotating a revoked key does nothing, and inserts nothing.
    let mut again = business("biz_a").1;
    again.id = "key_again".into();
    assert!(!s.rotate_api_key(&a.id, &ka.id, &again, 10, None).await.unwrap());
    assert_eq!(s.list_api_keys(&a.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn nonces_are_single_use_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    s.create_business(&a, &ka).await.unwrap();
    s.insert_device(&device("dev_1", "biz_a", 1), None).await.unwrap();
    s.insert_device(&device("dev_2", "biz_a", 1), None).await.unwrap();
    let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(s.record_nonces("dev_1", &n(&["00ff", "0100"]), 1).await.unwrap());
    assert!(!s.record_nonces("dev_1", &n(&["00ff"]), 2).await.unwrap());
    // All or none: a batch with one replayed nonce records none of the others.
    assert!(!s.record_nonces("dev_1", &n(&["aaaa", "0100"]), 2).await.unwrap());
    assert!(s.record_nonces("dev_1", &n(&["aaaa"]), 3).await.unwrap());
    assert!(s.record_nonces("dev_2", &n(&["00ff"]), 2).await.unwrap());
    // Pruning forgets nonces seen before the horizon and keeps the rest.
    assert_eq!(s.prune_nonces(2).await.unwrap(), 2);
    assert!(s.record_nonces("dev_1", &n(&["00ff"]), 4).await.unwrap());
    assert!(!s.record_nonces("dev_1", &n(&["aaaa"]), 4).await.unwrap());
    assert_eq!(s.prune_nonces(0).await.unwrap(), 0);
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
        s.insert_device(&device(&format!("dev_{i}"), "biz_a", i / 2), None)
            .await
            .unwrap();
    }
    s.insert_device(&device("dev_other", "biz_b", 0), None)
        .await
        .unwrap();
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

fn idem(biz: &str, key: &str, response: &str) -> IdempotencyWrite {
    IdempotencyWrite {
        business_id: biz.into(),
        key: key.into(),
        record: IdempotencyRecord {
            request_hash: format!("hash of {response}"),
            status: 201,
            response: response.into(),
        },
        at: 1,
    }
}

/// A person enrolled at `biz` (with one encrypted template), written through `enroll`.
async fn person(s: &SqlStore, biz: &str, id: &str, seq: i64) {
    s.enroll(&EnrollmentWrite {
        person: Person {
            id: id.into(),
            seq,
            wrapped_key: vec![1, 2, 3],
            created_at: 1,
            environment: Environment::Test,
        },
        templates: vec![EncryptedTemplate {
            person_id: id.into(),
            hand: HandSide::Left,
            index: 0,
            sealed: vec![9; 40],
        }],
        consent: ConsentRecord {
            person_id: id.into(),
            business_id: biz.into(),
            text_version: 1,
            given_at: 1,
            device_id: "dev_k".into(),
            site: "north".into(),
        },
        membership: Membership {
            person_id: id.into(),
            business_id: biz.into(),
            pseudonymous_id: format!("pp_{biz}_{id}"),
            created_at: 1,
        },
        links: vec![],
        idempotency_key: format!("enroll-{id}"),
        idempotency: IdempotencyRecord {
            request_hash: "h".into(),
            status: 201,
            response: "{}".into(),
        },
        events: vec![],
    })
    .await
    .unwrap();
}

fn link(id: &str, biz: &str, person: &str, value: &str) -> Link {
    Link {
        id: id.into(),
        person_id: person.into(),
        business_id: biz.into(),
        kind: LinkKind::MemberId,
        value: value.into(),
        created_at: 2,
    }
}

fn endpoint(id: &str, biz: &str, types: &[EventType]) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id.into(),
        business_id: biz.into(),
        url: format!("https://example.test/{id}"),
        event_types: types.to_vec(),
        secret_sealed: vec![5; 44],
        created_at: 1,
        deleted_at: None,
    }
}

async fn count(s: &SqlStore, table: &str) -> i64 {
    s.table_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == table)
        .unwrap()
        .1
}

#[tokio::test]
async fn a_create_and_its_idempotency_record_commit_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    s.create_business(&a, &ka).await.unwrap();
    s.insert_device(&device("dev_1", "biz_a", 1), Some(&idem("biz_a", "k1", "dev_1")))
        .await
        .unwrap();
    assert_eq!(
        s.idempotency("biz_a", "k1").await.unwrap().unwrap().response,
        "dev_1"
    );
    // A second create under the same key (a concurrent retry that lost the race, or a
    // crash-restart replaying it) writes nothing: no second device.
    let r = s
        .insert_device(&device("dev_2", "biz_a", 1), Some(&idem("biz_a", "k1", "dev_2")))
        .await;
    assert!(matches!(r, Err(StoreError::IdempotencyKeyTaken)), "{r:?}");
    assert!(s.device("dev_2").await.unwrap().is_none());
    assert_eq!(
        s.idempotency("biz_a", "k1").await.unwrap().unwrap().response,
        "dev_1"
    );
    // The other way round: when the create fails, its idempotency record is not kept, so a
    // retry with the same key runs again instead of replaying a response for nothing.
    let r = s
        .insert_device(&device("dev_1", "biz_a", 1), Some(&idem("biz_a", "k2", "dup")))
        .await;
    assert!(r.is_err());
    assert!(s.idempotency("biz_a", "k2").await.unwrap().is_none());

    // Same for API keys, rotations and links.
    let mut k = business("biz_a").1;
    k.id = "key_2".into();
    s.insert_api_key(&k, Some(&idem("biz_a", "k3", "key_2")))
        .await
        .unwrap();
    let mut k3 = business("biz_a").1;
    k3.id = "key_3".into();
    assert!(matches!(
        s.insert_api_key(&k3, Some(&idem("biz_a", "k3", "key_3"))).await,
        Err(StoreError::IdempotencyKeyTaken)
    ));
    assert!(s.api_key("biz_a", "key_3").await.unwrap().is_none());
    assert!(matches!(
        s.rotate_api_key("biz_a", "key_2", &k3, 5, Some(&idem("biz_a", "k3", "x")))
            .await,
        Err(StoreError::IdempotencyKeyTaken)
    ));
    assert!(s
        .api_key("biz_a", "key_2")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());

    person(&s, "biz_a", "per_1", 1).await;
    s.insert_link(
        &link("lnk_1", "biz_a", "per_1", "M1"),
        Some(&idem("biz_a", "k4", "lnk_1")),
        &[],
    )
    .await
    .unwrap();
    assert!(matches!(
        s.insert_link(
            &link("lnk_2", "biz_a", "per_1", "M2"),
            Some(&idem("biz_a", "k4", "lnk_2")),
            &[]
        )
        .await,
        Err(StoreError::IdempotencyKeyTaken)
    ));
    assert_eq!(s.links("biz_a", "per_1").await.unwrap().len(), 1);
    // The idempotency record is written first: when the link then fails (value taken),
    // the record goes with it.
    let r = s
        .insert_link(
            &link("lnk_3", "biz_a", "per_1", "M1"),
            Some(&idem("biz_a", "k5", "lnk_3")),
            &[],
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(s.idempotency("biz_a", "k5").await.unwrap().is_none());
    assert_eq!(s.links("biz_a", "per_1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn events_fan_out_to_subscribed_endpoints_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    let (b, kb) = business("biz_b");
    s.create_business(&a, &ka).await.unwrap();
    s.create_business(&b, &kb).await.unwrap();
    s.create_webhook_endpoint(&endpoint("whe_all", "biz_a", &EventType::ALL), None)
        .await
        .unwrap();
    s.create_webhook_endpoint(&endpoint("whe_del", "biz_a", &[EventType::PersonDeleted]), None)
        .await
        .unwrap();
    s.create_webhook_endpoint(&endpoint("whe_b", "biz_b", &EventType::ALL), None)
        .await
        .unwrap();
    s.create_webhook_endpoint(&endpoint("whe_gone", "biz_a", &EventType::ALL), None)
        .await
        .unwrap();
    assert!(s.delete_webhook_endpoint("biz_a", "whe_gone", 3).await.unwrap());
    assert!(
        !s.delete_webhook_endpoint("biz_b", "whe_all", 3).await.unwrap(),
        "other tenant"
    );
    assert_eq!(
        s.list_webhook_endpoints("biz_a")
            .await
            .unwrap()
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["whe_all", "whe_del"]
    );

    person(&s, "biz_a", "per_1", 1).await;
    let ev = OutboxEvent::new("biz_a", EventType::PersonLinked, 10, &serde_json::json!({"x": 1}));
    s.insert_link(
        &link("lnk_1", "biz_a", "per_1", "M1"),
        None,
        std::slice::from_ref(&ev),
    )
    .await
    .unwrap();
    // Only biz_a's live endpoint that takes person.linked gets a delivery.
    let due = s.due_webhook_deliveries(i64::MAX, 100).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].event_id.as_str(), due[0].endpoint_id.as_str()),
        (ev.id.as_str(), "whe_all")
    );
    assert_eq!(due[0].payload, ev.payload);
    assert_eq!(due[0].next_attempt_ms, 10_000);
    assert!(
        s.due_webhook_deliveries(9_999, 100).await.unwrap().is_empty(),
        "not due yet"
    );

    // A failed change writes no event.
    let lost = OutboxEvent::new("biz_a", EventType::PersonLinked, 11, &serde_json::json!({}));
    assert!(s
        .insert_link(
            &link("lnk_2", "biz_a", "per_1", "M1"),
            None,
            std::slice::from_ref(&lost)
        )
        .await
        .is_err());
    let unlinked = OutboxEvent::new("biz_a", EventType::PersonUnlinked, 12, &serde_json::json!({}));
    assert!(!s
        .delete_link("biz_a", "per_1", "lnk_nope", std::slice::from_ref(&unlinked))
        .await
        .unwrap());
    assert_eq!(count(&s, "webhook_events").await, 1);

    // Unlink and erase write their events.
    assert!(s
        .delete_link("biz_a", "per_1", "lnk_1", std::slice::from_ref(&unlinked))
        .await
        .unwrap());
    let deleted = OutboxEvent::new("biz_a", EventType::PersonDeleted, 13, &serde_json::json!({}));
    assert!(s
        .erase_person("per_1", std::slice::from_ref(&deleted))
        .await
        .unwrap());
    assert!(!s
        .erase_person("per_1", std::slice::from_ref(&deleted))
        .await
        .unwrap());
    assert_eq!(count(&s, "webhook_events").await, 3);
    assert_eq!(
        count(&s, "webhook_deliveries").await,
        4,
        "linked 1, unlinked 1, deleted 2"
    );
    assert!(s.memberships_of("per_1").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_delivery_is_claimed_once_retried_and_finished() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    s.create_business(&a, &ka).await.unwrap();
    s.create_webhook_endpoint(&endpoint("whe_1", "biz_a", &EventType::ALL), None)
        .await
        .unwrap();
    person(&s, "biz_a", "per_1", 1).await;
    let ev = OutboxEvent::new("biz_a", EventType::PersonDeleted, 1, &serde_json::json!({}));
    assert!(s.erase_person("per_1", std::slice::from_ref(&ev)).await.unwrap());
    let d = s.due_webhook_deliveries(5_000, 10).await.unwrap().remove(0);
    assert!(s
        .claim_webhook_delivery(&d.event_id, &d.endpoint_id, d.next_attempt_ms, 65_000)
        .await
        .unwrap());
    assert!(
        !s.claim_webhook_delivery(&d.event_id, &d.endpoint_id, d.next_attempt_ms, 65_000)
            .await
            .unwrap(),
        "a second worker does not get it"
    );
    assert!(
        s.due_webhook_deliveries(5_000, 10).await.unwrap().is_empty(),
        "leased"
    );
    s.finish_webhook_delivery(
        &d.event_id,
        &d.endpoint_id,
        &DeliveryOutcome::Retry {
            status: Some(503),
            error: "HTTP 503".into(),
            next_attempt_ms: 7_000,
        },
        6,
    )
    .await
    .unwrap();
    let again = s.due_webhook_deliveries(7_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    s.finish_webhook_delivery(
        &d.event_id,
        &d.endpoint_id,
        &DeliveryOutcome::Delivered { status: 204 },
        8,
    )
    .await
    .unwrap();
    assert!(s.due_webhook_deliveries(i64::MAX, 10).await.unwrap().is_empty());
    let log = s.webhook_deliveries("biz_a", "whe_1", 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].state.as_str(), log[0].attempts, log[0].last_status),
        ("delivered", 2, Some(204))
    );
    assert!(
        s.webhook_deliveries("biz_b", "whe_1", 10)
            .await
            .unwrap()
            .is_empty(),
        "tenant"
    );
}

#[tokio::test]
async fn bulk_enrollments_are_all_or_none_and_load_by_pages() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (a, ka) = business("biz_a");
    s.create_business(&a, &ka).await.unwrap();
    let write = |seq: i64| {
        let id = format!("per_{seq}");
        EnrollmentWrite {
            person: Person {
                id: id.clone(),
                seq,
                wrapped_key: vec![seq as u8],
                created_at: 1,
                environment: Environment::Test,
            },
            templates: (0..2)
                .map(|i| EncryptedTemplate {
                    person_id: id.clone(),
                    hand: HandSide::Right,
                    index: i,
                    sealed: vec![i as u8; 30],
                })
                .collect(),
            consent: ConsentRecord {
                person_id: id.clone(),
                business_id: "biz_a".into(),
                text_version: 1,
                given_at: 1,
                device_id: "dev_k".into(),
                site: "north".into(),
            },
            membership: Membership {
                person_id: id.clone(),
                business_id: "biz_a".into(),
                pseudonymous_id: format!("pp_{id}"),
                created_at: 1,
            },
            links: vec![],
            idempotency_key: format!("bulk-{seq}"),
            idempotency: IdempotencyRecord {
                request_hash: "h".into(),
                status: 201,
                response: "{}".into(),
            },
            events: vec![],
        }
    };
    s.enroll_many(&(1..=5).map(write).collect::<Vec<_>>())
        .await
        .unwrap();
    // A batch with one bad write (a sequence number taken) writes none of the others.
    let r = s.enroll_many(&[write(6), write(7), write(3)]).await;
    assert!(r.is_err());
    assert_eq!(count(&s, "people").await, 5);
    assert_eq!(count(&s, "templates").await, 10);
    assert_eq!(s.next_person_seq().await.unwrap(), 6);
    // Pages cover everyone once, in order; erased persons are skipped.
    assert!(s.erase_person("per_2", &[]).await.unwrap());
    let mut seen = Vec::new();
    for from in (0..6).step_by(2) {
        for p in s.people_in(from, from + 2).await.unwrap() {
            assert_eq!(p.templates.len(), 2);
            assert_eq!(p.templates[1].index, 1);
            seen.push(p.person.seq);
        }
    }
    assert_eq!(seen, vec![1, 3, 4, 5]);
    assert_eq!(
        s.people()
            .await
            .unwrap()
            .iter()
            .map(|p| p.person.seq)
            .collect::<Vec<_>>(),
        seen
    );
}

#[tokio::test]
async fn payments_move_by_compare_and_set_and_keep_the_daily_limit() {
    use openpalm_domain::money::Money;
    use openpalm_domain::payment::{Payment, PaymentSettings, PaymentStatus, StepUpMethod};
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let (b, k) = business("biz_p");
    s.create_business(&b, &k).await.unwrap();
    s.insert_device(&device("dev_p", "biz_p", 1), None).await.unwrap();
    person(&s, "biz_p", "per_p", 1).await;
    let settings = PaymentSettings {
        person_id: "per_p".into(),
        business_id: "biz_p".into(),
        currency: "EUR".into(),
        per_payment_limit_minor: None,
        daily_limit_minor: Some(10_000),
        step_up_above_minor: Some(5_000),
        step_up_method: Some(StepUpMethod::Pin),
        step_up_hash: Some("abc".into()),
        updated_at: 5,
    };
    s.put_payment_settings(&settings).await.unwrap();
    assert_eq!(
        s.payment_settings("per_p", "biz_p").await.unwrap().unwrap(),
        settings
    );
    let day = 86_400 * 100;
    let open = |id: &str, order: &str, minor: u64| {
        Payment::open(
            id.into(),
            "biz_p".into(),
            "dev_p".into(),
            order.into(),
            Money::new(minor, "EUR").unwrap(),
            day + 10,
        )
    };
    let new = |p: Payment| PaymentWrite {
        expected_version: None,
        ..PaymentWrite::moving(p, 0)
    };
    s.write_payment(&new(open("pay_a", "o-1", 6_000))).await.unwrap();
    assert!(matches!(
        s.write_payment(&new(open("pay_b", "o-1", 1))).await,
        Err(StoreError::Conflict(_))
    ));
    let a = s.payment("biz_p", "pay_a").await.unwrap().unwrap();
    assert_eq!(a, open("pay_a", "o-1", 6_000));
    assert!(s.payment("biz_other", "pay_a").await.unwrap().is_none());
    let limit = DailyLimit {
        person_id: "per_p".into(),
        business_id: "biz_p".into(),
        day_start: day,
        limit_minor: 10_000,
        currency: "EUR".into(),
    };
    let authorizing = |p: &Payment| {
        let r = p.recognised("per_p", Some("tok"), day + 11).unwrap();
        let next = r.start_authorize(false, day + 11).unwrap();
        let mut w = PaymentWrite::moving(next, p.version);
        w.daily_limit = Some(limit.clone());
        w
    };
    let wa = authorizing(&a);
    assert_eq!(s.write_payment(&wa).await.unwrap(), PaymentWritten::Written);
    // The same move again finds the payment moved.
    assert_eq!(s.write_payment(&wa).await.unwrap(), PaymentWritten::Stale);
    let got = s.payment("biz_p", "pay_a").await.unwrap().unwrap();
    assert_eq!(got, wa.payment);
    assert_eq!(s.pending_payments(10).await.unwrap().len(), 1);
    assert_eq!(s.outstanding_payments("per_p").await.unwrap().len(), 1);
    // 6,000 held today: another 5,000 passes the 10,000 limit and writes nothing.
    s.write_payment(&new(open("pay_c", "o-2", 5_000))).await.unwrap();
    let c = s.payment("biz_p", "pay_c").await.unwrap().unwrap();
    assert_eq!(
        s.write_payment(&authorizing(&c)).await.unwrap(),
        PaymentWritten::OverDailyLimit
    );
    assert_eq!(s.payment("biz_p", "pay_c").await.unwrap().unwrap(), c);
    let f = PaymentFilter {
        statuses: vec![PaymentStatus::AwaitingPalm.as_str().into()],
        person_id: None,
    };
    let page = s.list_payments("biz_p", &f, None, 10).await.unwrap();
    assert_eq!(
        page.items.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["pay_c"]
    );
    let all = s
        .list_payments("biz_p", &PaymentFilter::default(), None, 1)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert!(all.next.is_some());
    assert_eq!(
        s.payments_of_person("per_p", None, 10).await.unwrap().items.len(),
        1
    );
    // Erasure keeps the store's records without the person.
    assert!(s.erase_person("per_p", &[]).await.unwrap());
    assert!(s
        .payment("biz_p", "pay_a")
        .await
        .unwrap()
        .unwrap()
        .person_id
        .is_none());
    assert!(s.payment_settings("per_p", "biz_p").await.unwrap().is_none());
}
