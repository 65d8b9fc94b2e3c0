-- A sharded version's row no longer holds the summary of every series: each
-- shard keeps its own (assembled when read), and the count of its series that
-- fell back, summed into the version's `n_fallbacks` when the last shard is
-- stored. NULL in rows stored before: counted from their summary then.
ALTER TABLE shards ADD COLUMN n_fallbacks BIGINT;
