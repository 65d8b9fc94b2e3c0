-- Jobs: long work a client follows by id (a fit today; `kind` leaves room for
-- backtests). The outcome is read from the version the job produces, so the
-- row holds only what the version does not: the id, progress and times.
-- A deleted model keeps its `models` row (and so its numbering).
CREATE TABLE jobs (
    id            TEXT   PRIMARY KEY,
    kind          TEXT   NOT NULL,
    model         TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    status        TEXT   NOT NULL CHECK (status IN ('queued', 'running')),
    done          BIGINT NOT NULL DEFAULT 0,
    total         BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT
);

CREATE INDEX jobs_version ON jobs (model, version);
