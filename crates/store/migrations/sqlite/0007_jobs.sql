-- Jobs: long work a client follows by id (a fit today; `kind` leaves room for
-- backtests). The outcome is read from the version the job produces, so the
-- row holds only what the version does not: the id, progress and times.
CREATE TABLE jobs (
    id            TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running')),
    done          INTEGER NOT NULL DEFAULT 0,
    total         INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    started_at_ms INTEGER
);

CREATE INDEX jobs_version ON jobs (model, version);

-- The newest version number of each deleted model: fitted again, a model
-- continues its numbering, so no cache (the workers' included) can mistake a
-- new version for a deleted one with the same number.
CREATE TABLE deleted_models (
    model  TEXT    PRIMARY KEY,
    latest INTEGER NOT NULL
);
