-- API keys: each belongs to a tenant; only the SHA-256 of its secret is kept.
CREATE TABLE api_keys (
    id            TEXT    PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);

CREATE INDEX api_keys_tenant ON api_keys (tenant);
