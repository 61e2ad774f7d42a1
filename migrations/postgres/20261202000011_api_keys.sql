-- Keys for the HTTP API: stored as the SHA-256 of the key (the key itself is shown once, when
-- it is created), with a name, a scope, and when it was created, last used and revoked.
CREATE TABLE api_keys (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    scope         TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    key_hash      BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
