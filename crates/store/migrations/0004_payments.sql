-- Pay by palm: payments opened by a point of sale for a checkout device, their refunds, and
-- the safeguards each person set at each store. A payment moves by compare-and-set on
-- `version`; a processor call is committed as `pending` (JSON) before it is made, so a crash
-- between the call and its answer is reconciled on start.

CREATE TABLE payments (
    id               TEXT PRIMARY KEY,
    business_id      TEXT NOT NULL REFERENCES businesses(id),
    device_id        TEXT NOT NULL REFERENCES devices(id),
    order_reference  TEXT NOT NULL,
    amount_minor     BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    -- awaiting_palm, step_up_required, authorizing, authorized, captured, refunded, voided,
    -- expired, declined, failed
    status           TEXT NOT NULL,
    -- NULL until a palm matched, and again once the person was erased.
    person_id        TEXT,
    card_token       TEXT,
    card_last4       TEXT,
    decline          TEXT,
    intent_id        TEXT,
    intent_version   BIGINT NOT NULL,
    authorized_minor BIGINT NOT NULL,
    captured_minor   BIGINT NOT NULL,
    refunded_minor   BIGINT NOT NULL,
    expires_at       BIGINT,
    pending          TEXT,
    palm_attempts    BIGINT NOT NULL,
    step_up_attempts BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX payments_order ON payments (business_id, order_reference);
CREATE INDEX payments_business ON payments (business_id, created_at, id);
CREATE INDEX payments_person ON payments (person_id, created_at, id);
CREATE INDEX payments_intent ON payments (intent_id);
CREATE INDEX payments_pending ON payments (pending);

CREATE TABLE payment_refunds (
    id           TEXT PRIMARY KEY,
    payment_id   TEXT NOT NULL REFERENCES payments(id),
    amount_minor BIGINT NOT NULL,
    reason       TEXT,
    -- pending, succeeded, failed
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX payment_refunds_payment ON payment_refunds (payment_id, created_at, id);

CREATE TABLE payment_settings (
    person_id               TEXT NOT NULL,
    business_id             TEXT NOT NULL REFERENCES businesses(id),
    currency                TEXT NOT NULL,
    per_payment_limit_minor BIGINT,
    daily_limit_minor       BIGINT,
    step_up_above_minor     BIGINT,
    step_up_method          TEXT,
    step_up_hash            TEXT,
    -- Bumped by every payment decision of the person at the store: it serialises the daily
    -- limit's check-and-write.
    version                 BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    PRIMARY KEY (person_id, business_id)
);
