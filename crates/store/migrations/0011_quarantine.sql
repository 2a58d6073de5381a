-- People whose stored data could not be read at the last start (a template that fails to
-- decrypt or parse): kept, left out of the gallery, reported; replaced at every start.
CREATE TABLE quarantine (
    person_id    TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    detected_at  BIGINT NOT NULL
);
