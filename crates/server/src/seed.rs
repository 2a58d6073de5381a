//! Bulk seeding of a data folder for benches: persons written through the real store code
//! with the service's own encryption (a data key per person wrapped by the master key,
//! templates encrypted under it), consent and membership, in place of one HTTP enrollment
//! each. What the service loads at start is exactly what an enrollment would have written.

use openpalm_domain::ids::HandSide;
use openpalm_domain::keys::{DataKey, ServiceKeys};
use openpalm_domain::model::{ConsentRecord, EncryptedTemplate, Membership, Person};
use openpalm_engine::Template;
use openpalm_store::{EnrollmentWrite, IdempotencyRecord};

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
