-- When the gateway knew the fit of a pending version to be in the broker's
-- safe keeping (a publisher confirm). NULL while pending: the fit may never
-- have been sent (its gateway died right after registering it), so a retry
-- with the same Idempotency-Key, which carries the fit, sends it again.
ALTER TABLE versions ADD COLUMN dispatched_at_ms BIGINT;
