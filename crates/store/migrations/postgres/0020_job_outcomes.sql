-- Jobs whose work produces no version (backtests) keep their own outcome:
-- `finished_at_ms` set means finished, with `error` (NULL: succeeded;
-- 'cancelled': cancelled) and, on success, `result` (the answer as JSON).
-- Fit jobs leave these NULL and still read their outcome from their version,
-- so existing rows keep their meaning. Numbered 0020 to stay clear of the
-- numbers other branches may take.
ALTER TABLE jobs ADD COLUMN result TEXT;
ALTER TABLE jobs ADD COLUMN error TEXT;
ALTER TABLE jobs ADD COLUMN finished_at_ms BIGINT;
