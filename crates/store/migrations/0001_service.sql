-- OpenPalm service schema, portable between SQLite and PostgreSQL: TEXT, BIGINT and
-- DOUBLE PRECISION only; binary values are stored as lower-case hex; times are Unix seconds.

CREATE TABLE businesses (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses(id),
    environment     TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    display_prefix  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX api_keys_business ON api_keys (business_id, created_at, id);

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    kind        TEXT NOT NULL,
    site        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX devices_business ON devices (business_id, created_at, id);

CREATE TABLE device_nonces (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    nonce       TEXT NOT NULL,
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

CREATE TABLE consent_texts (
    version      BIGINT PRIMARY KEY,
    language     TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
INSERT INTO consent_texts (version, language, body, published_at) VALUES (1, 'en',
'I agree that OpenPalm makes a template of my palm (a code computed from the palm''s lines; no picture of my hand is kept) so that businesses I choose can recognise me. Each business sees me only under its own identifier and only the accounts I link to it. I can withdraw this consent and have my templates destroyed at any time.',
0);

CREATE TABLE people (
    id          TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL UNIQUE,
    wrapped_key TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE templates (
    person_id   TEXT NOT NULL REFERENCES people(id),
    hand        TEXT NOT NULL,
    idx         BIGINT NOT NULL,
    sealed      TEXT NOT NULL,
    PRIMARY KEY (person_id, hand, idx)
);

CREATE TABLE consents (
    person_id    TEXT NOT NULL REFERENCES people(id),
    business_id  TEXT NOT NULL REFERENCES businesses(id),
    text_version BIGINT NOT NULL REFERENCES consent_texts(version),
    given_at     BIGINT NOT NULL,
    device_id    TEXT NOT NULL,
    site         TEXT NOT NULL
);
CREATE INDEX consents_person ON consents (person_id);

CREATE TABLE memberships (
    business_id     TEXT NOT NULL REFERENCES businesses(id),
    pseudonymous_id TEXT NOT NULL,
    person_id       TEXT NOT NULL REFERENCES people(id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (business_id, pseudonymous_id)
);
CREATE UNIQUE INDEX memberships_person ON memberships (person_id, business_id);

CREATE TABLE links (
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    person_id   TEXT NOT NULL REFERENCES people(id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX links_value ON links (business_id, kind, value);
CREATE INDEX links_person ON links (business_id, person_id);

CREATE TABLE match_log (
    id          TEXT PRIMARY KEY,
    person_id   TEXT,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    device_id   TEXT NOT NULL,
    site        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    decision    TEXT NOT NULL,
    score       DOUBLE PRECISION NOT NULL
);
CREATE INDEX match_log_person ON match_log (business_id, person_id, at, id);

CREATE TABLE idempotency (
    business_id  TEXT NOT NULL REFERENCES businesses(id),
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (business_id, idem_key)
);
