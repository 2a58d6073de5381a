-- The audit log: append-only, one row per administrative or data-access action, each
-- chained to the previous by SHA-256 (openpalm_domain::audit). Nothing updates or deletes
-- these rows; `openpalm audit verify` finds any row that was.

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT,
    request_id TEXT NOT NULL,
    status     BIGINT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
