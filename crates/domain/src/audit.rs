//! The audit log: an append-only record of every administrative and data-access action
//! (who, what, when, the request ID), each record chained to the one before by SHA-256, so
//! that an edited, removed, inserted or reordered record breaks the chain where it happened.
//!
//! `hash = SHA-256(prev_hash || len-prefixed fields)`; the first record's `prev_hash` is 64
//! zeros. Cutting records off the end leaves a valid shorter chain: [`verify`] reports the
//! head (`seq`, `hash`) so that it can be compared with one kept elsewhere.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is recorded of one action, before it is chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    /// `business:<id> key:<key id>`, `person`, `admin`, or `anonymous`.
    pub actor: String,
    /// Method and route, e.g. `GET /v1/people/{pseudonymous_id}/links`.
    pub action: String,
    /// The person the action concerned, if one did (internal ID; shown to that person only).
    pub subject: Option<String>,
    pub request_id: String,
    /// The answer's HTTP status.
    pub status: u16,
}

/// A chained record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

fn digest(seq: i64, e: &AuditEntry, prev: &str) -> String {
    let mut h = Sha256::new();
    let mut part = |b: &[u8]| {
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    };
    part(prev.as_bytes());
    part(&seq.to_be_bytes());
    part(&e.at.to_be_bytes());
    part(e.actor.as_bytes());
    part(e.action.as_bytes());
    part(e.subject.as_deref().unwrap_or("").as_bytes());
    part(&[u8::from(e.subject.is_some())]);
    part(e.request_id.as_bytes());
    part(&e.status.to_be_bytes());
    hex::encode(h.finalize())
}

/// Chain `entry` after the record (`seq`, `hash`) that is the head now.
pub fn chain(head: Option<(i64, &str)>, entry: AuditEntry) -> AuditRecord {
    let (seq, prev) = match head {
        Some((s, h)) => (s + 1, h.to_string()),
        None => (1, GENESIS.to_string()),
    };
    let hash = digest(seq, &entry, &prev);
    AuditRecord {
        seq,
        entry,
        prev_hash: prev,
        hash,
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("record {seq}: expected sequence number {expected} (a record was removed, inserted or moved)")]
    Sequence { seq: i64, expected: i64 },
    #[error(
        "record {seq}: its prev_hash is not the hash of the record before (removed or reordered records)"
    )]
    Link { seq: i64 },
    #[error("record {seq}: its content does not match its hash (the record was edited)")]
    Content { seq: i64 },
}

/// The head of a verified chain: how many records, and the last hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub records: i64,
    pub hash: String,
}

/// Verify records in `seq` order.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Result<Head, AuditError> {
    let mut prev = GENESIS.to_string();
    let mut expected = 1;
    for r in records {
        if r.seq != expected {
            return Err(AuditError::Sequence { seq: r.seq, expected });
        }
        if r.prev_hash != prev {
            return Err(AuditError::Link { seq: r.seq });
        }
        if digest(r.seq, &r.entry, &r.prev_hash) != r.hash {
            return Err(AuditError::Content { seq: r.seq });
        }
        prev = r.hash.clone();
        expected += 1;
    }
    Ok(Head {
        records: expected - 1,
        hash: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let e = AuditEntry {
                at: 100 + i as i64,
                actor: "admin".into(),
                action: format!("POST /v1/x/{i}"),
                subject: (i % 2 == 0).then(|| "per_1".into()),
                request_id: format!("req_{i}"),
                status: 200,
            };
            let head = out.last().map(|r| (r.seq, r.hash.as_str()));
            let r = chain(head, e);
            out.push(r);
        }
        out
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let log = entries(5);
        assert_eq!(verify(&log).unwrap().records, 5);
        let mut edited = log.clone();
        edited[2].entry.actor = "someone else".into();
        assert_eq!(verify(&edited), Err(AuditError::Content { seq: 3 }));
        let mut removed = log.clone();
        removed.remove(1);
        assert_eq!(
            verify(&removed),
            Err(AuditError::Sequence { seq: 3, expected: 2 })
        );
        let mut renumbered = removed.clone();
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert!(verify(&renumbered).is_err());
        let mut swapped = log.clone();
        swapped.swap(1, 2);
        assert!(verify(&swapped).is_err());
        let mut subject = log.clone();
        subject[0].entry.subject = None;
        assert_eq!(verify(&subject), Err(AuditError::Content { seq: 1 }));
        // Cut off at the end: still a valid chain, with a shorter head to compare.
        assert_eq!(verify(&log[..3]).unwrap().hash, log[2].hash);
    }
}
