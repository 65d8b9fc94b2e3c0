-- When a worker last said it is working on a pending version (its claim,
-- then a heartbeat every few seconds while it fits). The pending-TTL sweep
-- judges a version by this, not by its age, so a long fit on a live worker
-- is never taken for an abandoned one. NULL: no worker has claimed it.
ALTER TABLE versions ADD COLUMN heartbeat_at_ms BIGINT;
