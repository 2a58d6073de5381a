//! Bulk seeding of a data folder for benches: persons written through the real store code
//! with the service's own encryption (a data key per person wrapped by the master key,
//! templates encrypted under it), consent and membership, in place of one HTTP enrollment
//! each. What the service loads at start is exactly what an enrollment would have written.

use openpalm_domain::apikey::{self, Environment, Scope};
use openpalm_domain::ids::HandSide;
use openpalm_domain::keys::{DataKey, ServiceKeys};
use openpalm_domain::model::{ApiKeyRecord, Business, ConsentRecord, EncryptedTemplate, Membership, Person};
use openpalm_engine::Template;
use openpalm_store::{EnrollmentWrite, IdempotencyRecord, SqlStore, Store, StoreError};

/// The person ID a seeded person `seq` gets.
pub fn person_id(prefix: &str, seq: u64) -> String {
    format!("per_{prefix}_{seq:09}")
}

/// One person's enrollment at `business_id` (left hand, `templates` in order), encrypted as
/// the service encrypts.
pub fn enrollment_write(
    keys: &ServiceKeys,
    business_id: &str,
    person_id: &str,
    seq: u64,
    templates: &[Template],
    now: i64,
) -> EnrollmentWrite {
    let id = person_id.to_string();
    let dk = DataKey::generate();
    let sealed = templates
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let bytes = zeroize::Zeroizing::new(t.to_bytes());
            EncryptedTemplate {
                person_id: id.clone(),
                hand: HandSide::Left,
                index: i as i64,
                sealed: dk.encrypt(&EncryptedTemplate::aad(&id, HandSide::Left, i as i64), &bytes),
            }
        })
        .collect();
    EnrollmentWrite {
        person: Person {
            id: id.clone(),
            seq: seq as i64,
            wrapped_key: keys.wrap_data_key(&id, &dk),
            created_at: now,
            // Seeded for test keys (see `api_key` below).
            environment: Environment::Test,
        },
        templates: sealed,
        consent: ConsentRecord {
            person_id: id.clone(),
            business_id: business_id.into(),
            text_version: 1,
            given_at: now,
            device_id: "dev_seed".into(),
            site: "seed".into(),
        },
        membership: Membership {
            person_id: id.clone(),
            business_id: business_id.into(),
            pseudonymous_id: keys.pseudonymous_id(business_id, &id),
            created_at: now,
        },
        links: vec![],
        idempotency_key: format!("seed-{seq}"),
        idempotency: IdempotencyRecord {
            request_hash: String::new(),
            status: 201,
            response: "{}".into(),
        },
        events: vec![],
    }
}

/// A business for a seeded folder, with a key that is never shown (scope `keys` only: the
/// bench makes its own with [`api_key`]).
pub async fn business(store: &SqlStore, id: &str, name: &str, now: i64) -> Result<(), StoreError> {
    let k = apikey::generate(Environment::Test);
    store
        .create_business(
            &Business {
                id: id.into(),
                name: name.into(),
                created_at: now,
            },
            &ApiKeyRecord {
                id: format!("key_seed_{id}"),
                business_id: id.into(),
                environment: Environment::Test,
                scopes: vec![Scope::Keys],
                hash: k.hash,
                display_prefix: k.display_prefix,
                created_at: now,
                revoked_at: None,
            },
        )
        .await
}

/// A fresh API key of `business_id` with every scope, written straight to the store; its
/// secret.
pub async fn api_key(store: &SqlStore, business_id: &str) -> Result<String, StoreError> {
    let k = apikey::generate(Environment::Test);
    store
        .insert_api_key(
            &ApiKeyRecord {
                id: openpalm_domain::ids::new_id("key"),
                business_id: business_id.into(),
                environment: Environment::Test,
                scopes: Scope::ALL.to_vec(),
                hash: k.hash,
                display_prefix: k.display_prefix,
                created_at: openpalm_domain::now_unix(),
                revoked_at: None,
            },
            None,
        )
        .await?;
    Ok(k.secret)
}

/// Enroll persons `1..=count` at `business_id` (IDs from [`person_id`] with `prefix`),
/// `batch` per transaction (`Store::enroll_many`), each person's templates from
/// `templates_of(seq)`, made and encrypted on every core; `progress` hears each batch's size.
#[allow(clippy::too_many_arguments)]
pub async fn persons(
    store: &SqlStore,
    keys: &ServiceKeys,
    business_id: &str,
    prefix: &str,
    count: u64,
    batch: u64,
    templates_of: impl Fn(u64) -> Vec<Template> + Sync,
    mut progress: impl FnMut(u64),
) -> Result<(), StoreError> {
    use rayon::prelude::*;
    let now = openpalm_domain::now_unix();
    let mut start = 1u64;
    while start <= count {
        let end = (start + batch.max(1) - 1).min(count);
        let writes: Vec<EnrollmentWrite> = (start..=end)
            .into_par_iter()
            .map(|seq| {
                enrollment_write(
                    keys,
                    business_id,
                    &person_id(prefix, seq),
                    seq,
                    &templates_of(seq),
                    now,
                )
            })
            .collect();
        store.enroll_many(&writes).await?;
        progress(end - start + 1);
        start = end + 1;
    }
    Ok(())
}
