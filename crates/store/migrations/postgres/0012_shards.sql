-- Sharded fits: a large version's fitted state is stored one row per shard
-- (`versions.state` stays NULL), and the version becomes ready when its last
-- shard is stored. `n_shards` NULL: the version is stored whole (one shard).
ALTER TABLE versions ADD COLUMN n_shards BIGINT;

CREATE TABLE shards (
    model    TEXT    NOT NULL,
    version  BIGINT  NOT NULL,
    shard    BIGINT  NOT NULL,
    n_series BIGINT  NOT NULL,
    summary  TEXT    NOT NULL,
    state    BYTEA   NOT NULL,
    PRIMARY KEY (model, version, shard),
    FOREIGN KEY (model, version) REFERENCES versions (model, version) ON DELETE CASCADE
);
