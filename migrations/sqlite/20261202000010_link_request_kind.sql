-- A customer whose link expired (or who lost it) asks for a fresh one: a `link_request`
-- email, through the outbox like every email. SQLite cannot change a CHECK constraint, so the
-- table is rebuilt with the same columns, constraints and indexes, and the new kind.
CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                                                   'skipped', 'paused', 'resumed', 'cancelled', 'changed',
                                                   'link_request')),
    recipient        TEXT NOT NULL,
    subscription_id  INTEGER REFERENCES subscriptions (id),
    order_id         INTEGER REFERENCES orders (id),
    cycle            INTEGER,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TEXT NOT NULL,
    lease_until      TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    lead_days        INTEGER CHECK (lead_days >= 0),
    claims           INTEGER NOT NULL DEFAULT 0 CHECK (claims >= 0),
    CHECK ((kind = 'order_confirmation') = (order_id IS NOT NULL))
);
INSERT INTO outbox_new (id, kind, recipient, subscription_id, order_id, cycle, payload, status, attempts,
                        next_attempt_at, lease_until, last_error, created_at, sent_at, lead_days, claims)
    SELECT id, kind, recipient, subscription_id, order_id, cycle, payload, status, attempts,
           next_attempt_at, lease_until, last_error, created_at, sent_at, lead_days, claims
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE UNIQUE INDEX outbox_one_confirmation ON outbox (order_id) WHERE kind = 'order_confirmation';
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_one_reminder ON outbox (subscription_id, cycle, lead_days)
    WHERE kind = 'renewal_reminder';
