-- A digest of the request body that used an idempotency key, so that the key
-- reused with another body is refused instead of replaying the first version.
-- NULL for versions registered before this column existed (never compared).
ALTER TABLE versions ADD COLUMN body_hash TEXT;
