-- A person's account lifecycle: a cancellation requested (the palm stops working at once;
-- deletion follows once outstanding payments are settled) and the dormancy notice sent
-- before an inactive person is deleted.

ALTER TABLE people ADD COLUMN cancel_requested_at BIGINT;
ALTER TABLE people ADD COLUMN cancel_receipt_id TEXT;
ALTER TABLE people ADD COLUMN dormancy_notice_at BIGINT;
