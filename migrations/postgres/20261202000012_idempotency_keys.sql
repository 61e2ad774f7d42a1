-- The API's idempotency keys: per API key, the request a key was first used with (its route and
-- the SHA-256 of its body) and the response it got. The response is written in the same
-- transaction as the change it reports; a row without one is a request in flight (or one whose
-- process died: taken over once `locked_at` is old). Kept at least 24 hours.
CREATE TABLE idempotency_keys (
    api_key_id    BIGINT NOT NULL REFERENCES api_keys (id),
    key           TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    route         TEXT NOT NULL,
    fingerprint   BYTEA NOT NULL CHECK (length(fingerprint) = 32),
    status        INTEGER CHECK (status BETWEEN 100 AND 599),
    response      TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    locked_at     TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ,
    PRIMARY KEY (api_key_id, key),
    CHECK ((status IS NULL) = (response IS NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
