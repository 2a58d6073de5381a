-- Test and live data apart: a business's live data is filed under a business row of its own,
-- `<id>_live` (its test data stays under `<id>`), and every person records the environment
-- of the key whose kiosk enrolled them. Data from before this migration came from test keys
-- (the default), so it stays where it is, as test data.
INSERT INTO businesses (id, name, created_at)
    SELECT id || '_live', name, created_at FROM businesses
    WHERE id NOT LIKE '%\_live' ESCAPE '\';
ALTER TABLE people ADD COLUMN environment TEXT NOT NULL DEFAULT 'test';
