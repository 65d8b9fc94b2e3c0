-- When a worker last said it is working on a pending version (its claim,
-- then a heartbeat every few seconds while it fits). NULL: no worker has
-- claimed it.
ALTER TABLE versions ADD COLUMN heartbeat_at_ms INTEGER;
