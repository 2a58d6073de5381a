-- The person's own access: sign-in challenges (a one-time code sent to a linked phone),
-- sessions, and the signed receipts deletions leave. Codes and tokens are kept as keyed
-- hashes only.

CREATE TABLE person_challenges (
    id         TEXT PRIMARY KEY,
    -- NULL when the number is linked to nobody (the challenge can never be completed).
    person_id  TEXT,
    code_hash  TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE person_sessions (
    token_hash TEXT PRIMARY KEY,
    person_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX person_sessions_person ON person_sessions (person_id);

CREATE TABLE deletion_receipts (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    receipt    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
