-- Device nonces are only needed while a capture carrying them could still pass the clock
-- check; the lifecycle prunes older ones by the time they were seen.
CREATE INDEX device_nonces_seen ON device_nonces (seen_at);
