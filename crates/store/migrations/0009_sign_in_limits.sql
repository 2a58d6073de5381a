-- Sign-in requests are limited per phone number: the challenge keeps the number's keyed hash.
ALTER TABLE person_challenges ADD COLUMN phone_hash TEXT;
CREATE INDEX person_challenges_phone ON person_challenges (phone_hash, created_at);
