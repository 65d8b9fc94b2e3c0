-- Sharded fits: a large version's fitted state is stored one row per shard
-- (`versions.state` stays NULL), and the version becomes ready when its last
-- shard is stored. `n_shards` NULL: the version is stored whole (one shard).
ALTER TABLE versions ADD COLUMN n_shards INTEGER;

CREATE TABLE shards (
    model    TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    shard    INTEGER NOT NULL,
    n_series INTEGER NOT NULL,
    summary  TEXT    NOT NULL,
    state    BLOB    NOT NULL,
    PRIMARY KEY (model, version, shard),
    FOREIGN KEY (model, version) REFERENCES versions (model, version) ON DELETE CASCADE
);
