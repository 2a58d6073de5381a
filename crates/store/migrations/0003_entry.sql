-- Venue entry: events with the gates of their palm lanes, tickets held by a business's
-- members, and every lane decision (by palm, by an attendant's override, or the manual
-- fallback). A ticket moves by compare-and-set on `version`, so two gates racing on one
-- holder admit once.

CREATE TABLE events (
    id             TEXT PRIMARY KEY,
    business_id    TEXT NOT NULL REFERENCES businesses(id),
    name           TEXT NOT NULL,
    site           TEXT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    doors_open_at  BIGINT NOT NULL,
    doors_close_at BIGINT NOT NULL,
    max_reentries  BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX events_business ON events (business_id, created_at, id);

CREATE TABLE event_gates (
    event_id  TEXT NOT NULL REFERENCES events(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    -- entry or exit
    direction TEXT NOT NULL,
    PRIMARY KEY (event_id, device_id)
);

CREATE TABLE tickets (
    id               TEXT PRIMARY KEY,
    business_id      TEXT NOT NULL REFERENCES businesses(id),
    event_id         TEXT NOT NULL REFERENCES events(id),
    -- NULL once the holder was erased.
    person_id        TEXT,
    ticket_type      TEXT NOT NULL,
    -- Space separated entry gate IDs; '' = every entry gate of the event.
    gates            TEXT NOT NULL,
    external_ref     TEXT,
    -- issued, admitted, exited, cancelled, transferred
    state            TEXT NOT NULL,
    entries          BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    transferred_from TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX tickets_event ON tickets (event_id, created_at, id);
-- A holder's tickets for an event, in the order they are used: the index answers the gate's
-- query alone (with (event_id, person_id) only, SQLite walked tickets_event to avoid a sort,
-- reading every ticket of the event for each decision: 20,000 row lookups at a 20,000-holder
-- lane).
CREATE INDEX tickets_holder ON tickets (event_id, person_id, created_at, id);
CREATE INDEX tickets_person ON tickets (person_id);
-- The business's own ticket numbers are unique per event (NULLs are not compared).
CREATE UNIQUE INDEX tickets_external_ref ON tickets (event_id, external_ref);

CREATE TABLE passages (
    id             TEXT PRIMARY KEY,
    business_id    TEXT NOT NULL REFERENCES businesses(id),
    event_id       TEXT NOT NULL REFERENCES events(id),
    device_id      TEXT,
    ticket_id      TEXT,
    person_id      TEXT,
    -- entry or exit
    direction      TEXT NOT NULL,
    -- admit, deny or exit
    verdict        TEXT NOT NULL,
    reason         TEXT,
    -- palm, override or manual
    source         TEXT NOT NULL,
    attendant      TEXT,
    note           TEXT,
    overrides      TEXT,
    api_key_id     TEXT NOT NULL,
    decision_ms    DOUBLE PRECISION NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX passages_event ON passages (event_id, at, id);
CREATE INDEX passages_person ON passages (person_id);

-- A lane decision in the person's match log: the event and what the lane did.
ALTER TABLE match_log ADD COLUMN event_id TEXT;
ALTER TABLE match_log ADD COLUMN outcome TEXT;
