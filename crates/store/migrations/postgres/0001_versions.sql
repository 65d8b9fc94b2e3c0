-- The model registry in PostgreSQL. Each deployment (namespace) has its own
-- schema; the binary sets search_path to it before running this file.

-- One row per model: the lock that serializes version numbers of a model
-- and the newest version number handed out.
CREATE TABLE models (
    name   TEXT   PRIMARY KEY,
    latest BIGINT NOT NULL
);

-- One row per version of a model.
CREATE TABLE versions (
    model           TEXT   NOT NULL REFERENCES models (name),
    version         BIGINT NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    reason          TEXT,
    created_at_ms   BIGINT NOT NULL,
    settled_at_ms   BIGINT,
    n_series        BIGINT NOT NULL,
    idempotency_key TEXT,
    summary         TEXT,
    state           BYTEA,
    PRIMARY KEY (model, version)
);

-- The (model, Idempotency-Key) -> version mapping.
CREATE UNIQUE INDEX versions_idempotency_key
    ON versions (model, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE INDEX versions_pending ON versions (created_at_ms) WHERE status = 'pending';
