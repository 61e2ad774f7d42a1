-- Customers act through signed links, and get the notices automatic-renewal law asks for.
--
-- New email kinds: a fresh link the customer asked for (`link_request`), the yearly reminder
-- of what they subscribe to (`annual_notice`), and the notice before a renewal at a higher
-- total (`price_change`); and `webhook`: an event for a storefront's endpoint, delivered from
-- the outbox by the same worker (the recipient is the endpoint's name). SQLite cannot change a CHECK constraint, so the outbox is rebuilt
-- with the same columns, constraints and indexes, and the new kinds.
CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                                                   'skipped', 'paused', 'resumed', 'cancelled', 'changed',
                                                   'link_request', 'annual_notice', 'price_change', 'webhook')),
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

-- The consent given when a subscription was created: when, through what, the terms shown,
-- and by whom. Append-only.
CREATE TABLE consents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id),
    given_at         TEXT NOT NULL,
    channel          TEXT NOT NULL CHECK (length(channel) BETWEEN 1 AND 64),
    terms_version    TEXT NOT NULL CHECK (length(terms_version) BETWEEN 1 AND 64),
    actor            TEXT NOT NULL
);
CREATE INDEX consents_subscription ON consents (subscription_id, id);
CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
BEGIN SELECT RAISE(ABORT, 'consents rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
BEGIN SELECT RAISE(ABORT, 'consents rows are immutable; write a correction as a new row'); END;

-- The notices' state on each subscription: the total of its last order (what a price change
-- is measured against; none after the customer changed plan, quantity or interval, whose
-- email showed the new price), the cycle whose price was last checked, and when the next
-- annual notice is due.
ALTER TABLE subscriptions ADD COLUMN last_total_minor INTEGER CHECK (last_total_minor >= 0);
ALTER TABLE subscriptions ADD COLUMN price_checked_cycle INTEGER CHECK (price_checked_cycle >= 0);
ALTER TABLE subscriptions ADD COLUMN annual_notice_at TEXT;
UPDATE subscriptions SET
    last_total_minor = (SELECT o.total_minor FROM orders o WHERE o.subscription_id = subscriptions.id
                        ORDER BY o.cycle DESC LIMIT 1),
    annual_notice_at = CASE WHEN status <> 'cancelled'
                            THEN strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, '+1 year') END;
CREATE INDEX subscriptions_annual_notice ON subscriptions (annual_notice_at, id)
    WHERE status <> 'cancelled';
