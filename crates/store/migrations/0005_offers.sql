-- Offers, opt-in only: a store's offer rules, and the people who opted in to that store's
-- offers. Eligibility is computed from that store's own payments with the person, never
-- from anything another business holds.

CREATE TABLE offer_optins (
    person_id   TEXT NOT NULL,
    business_id TEXT NOT NULL REFERENCES businesses(id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (person_id, business_id)
);

CREATE TABLE offers (
    id              TEXT PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses(id),
    title           TEXT NOT NULL,
    currency        TEXT NOT NULL,
    -- Captured payments (net of refunds) in the window that make a person eligible.
    min_payments    BIGINT NOT NULL,
    min_spent_minor BIGINT NOT NULL,
    window_days     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX offers_business ON offers (business_id, created_at, id);
