-- One row per version of a model. A model exists once it has a version.
CREATE TABLE versions (
    model           TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    reason          TEXT,
    created_at_ms   INTEGER NOT NULL,
    settled_at_ms   INTEGER,
    n_series        INTEGER NOT NULL,
    idempotency_key TEXT,
    summary         TEXT,
    state           BLOB,
    PRIMARY KEY (model, version)
);

CREATE UNIQUE INDEX versions_idempotency_key
    ON versions (model, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE INDEX versions_pending ON versions (status) WHERE status = 'pending';
