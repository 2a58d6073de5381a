-- Webhooks (Standard Webhooks scheme) with a transactional outbox: an event row and one
-- delivery row per subscribed endpoint are written in the same transaction as the change they
-- report; a background deliverer sends due deliveries and records each attempt.

CREATE TABLE webhook_endpoints (
    id            TEXT PRIMARY KEY,
    business_id   TEXT NOT NULL REFERENCES businesses(id),
    url           TEXT NOT NULL,
    -- Space separated, sorted: 'person.deleted person.linked person.unlinked'.
    event_types   TEXT NOT NULL,
    -- The signing secret, encrypted under the service's master key (hex).
    secret_sealed TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX webhook_endpoints_business ON webhook_endpoints (business_id, created_at, id);

CREATE TABLE webhook_events (
    -- msg_...: the webhook-id header, the same on every attempt.
    id          TEXT PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    event_type  TEXT NOT NULL,
    -- The exact JSON body sent and signed.
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    event_id        TEXT NOT NULL REFERENCES webhook_events(id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id),
    -- pending, delivered, failed (gave up after the last attempt), cancelled (endpoint deleted).
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    -- Unix milliseconds: when the next attempt is due (or, while one runs, when its lease ends).
    next_attempt_ms BIGINT NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    finished_at     BIGINT,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_ms);
