-- Payments: each order's charge, separate from the order (which stays immutable), its
-- attempts, refunds as credit notes, and the provider's webhook events seen.
--
-- New email kinds: a charge that failed (with the next try, or what happens now that tries
-- are over), a charge that needs the customer (3-D Secure), and a charge that went through
-- after failing.
-- SQLite cannot change a CHECK constraint: the outbox is rebuilt with the same columns,
-- constraints and indexes, and the new kinds.
CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                                                   'skipped', 'paused', 'resumed', 'cancelled', 'changed',
                                                   'link_request', 'annual_notice', 'price_change', 'webhook',
                                                   'payment_failed', 'payment_action_required', 'payment_received')),
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

-- The provider's references for the customer and their saved payment method (Stripe's
-- `cus_…` and `pm_…`).
ALTER TABLE customers ADD COLUMN payment_customer_ref TEXT
    CHECK (length(payment_customer_ref) BETWEEN 1 AND 255);
ALTER TABLE customers ADD COLUMN payment_method_ref TEXT
    CHECK (length(payment_method_ref) BETWEEN 1 AND 255);

-- One payment per order. `attempt` is the attempt being made (or last made); the worker
-- claims rows whose `next_attempt_at` has come. `sent_at` is set when an attempt is handed to
-- the provider and cleared when its outcome is recorded: a row claimed with it set was sent
-- by a worker that died before recording, and the provider is asked what became of it first.
CREATE TABLE payments (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id              INTEGER NOT NULL UNIQUE REFERENCES orders (id),
    subscription_id       INTEGER NOT NULL REFERENCES subscriptions (id),
    customer_id           INTEGER NOT NULL REFERENCES customers (id),
    provider              TEXT NOT NULL CHECK (provider IN ('none', 'stripe', 'simulated')),
    status                TEXT NOT NULL CHECK (status IN ('external', 'pending', 'paid', 'requires_action',
                                                          'failed', 'refunded', 'partially_refunded')),
    amount_minor          INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    attempt               INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    next_attempt_at       TEXT,
    lease_until           TEXT,
    sent_at               TEXT,
    provider_payment_ref  TEXT,
    decline_code          TEXT,
    last_error            TEXT,
    paid_at               TEXT,
    fee_minor             INTEGER CHECK (fee_minor >= 0),
    refunded_minor        INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    CHECK (refunded_minor <= amount_minor),
    CHECK ((status = 'refunded') = (refunded_minor > 0 AND refunded_minor = amount_minor)),
    CHECK ((status = 'partially_refunded') = (refunded_minor > 0 AND refunded_minor < amount_minor)),
    CHECK (status <> 'paid' OR paid_at IS NOT NULL),
    CHECK (next_attempt_at IS NULL OR status IN ('pending', 'failed'))
);
CREATE INDEX payments_due ON payments (next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX payments_subscription ON payments (subscription_id, id);
CREATE INDEX payments_provider_ref ON payments (provider_payment_ref) WHERE provider_payment_ref IS NOT NULL;

-- Orders written before payments existed were collected by the storefront.
INSERT INTO payments (order_id, subscription_id, customer_id, provider, status, amount_minor,
                      currency, created_at, updated_at)
    SELECT id, subscription_id, customer_id, 'none', 'external', total_minor, currency,
           created_at, created_at
    FROM orders;

-- Every outcome of every attempt, append-only.
CREATE TABLE payment_attempts (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id            INTEGER NOT NULL REFERENCES payments (id),
    attempt               INTEGER NOT NULL CHECK (attempt >= 1),
    idempotency_key       TEXT NOT NULL,
    outcome               TEXT NOT NULL CHECK (outcome IN ('succeeded', 'requires_action', 'declined')),
    provider_payment_ref  TEXT,
    decline_code          TEXT,
    message               TEXT,
    source                TEXT NOT NULL,
    at                    TEXT NOT NULL,
    UNIQUE (payment_id, attempt, outcome)
);
CREATE TRIGGER payment_attempts_no_update BEFORE UPDATE ON payment_attempts
BEGIN SELECT RAISE(ABORT, 'payment_attempts rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER payment_attempts_no_delete BEFORE DELETE ON payment_attempts
BEGIN SELECT RAISE(ABORT, 'payment_attempts rows are immutable; write a correction as a new row'); END;

-- While its order is unpaid (dunning), a subscription's next renewal is not billed.
ALTER TABLE subscriptions ADD COLUMN unpaid_order_id INTEGER REFERENCES orders (id);

-- A refund (or a correction of an order's amount) is a credit note with its own lines: the
-- refunded goods net of tax, and the tax refunded. Orders stay as they were.
CREATE TABLE credit_notes (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    number               TEXT NOT NULL UNIQUE,
    order_id             INTEGER NOT NULL REFERENCES orders (id),
    payment_id           INTEGER NOT NULL REFERENCES payments (id),
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    amount_minor         INTEGER NOT NULL CHECK (amount_minor > 0),
    tax_minor            INTEGER NOT NULL CHECK (tax_minor >= 0 AND tax_minor <= amount_minor),
    reason               TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    provider_refund_ref  TEXT,
    actor                TEXT NOT NULL,
    billing_date         TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE INDEX credit_notes_order ON credit_notes (order_id, id);
CREATE TABLE credit_note_lines (
    credit_note_id  INTEGER NOT NULL REFERENCES credit_notes (id),
    position        INTEGER NOT NULL CHECK (position >= 0),
    kind            TEXT NOT NULL CHECK (kind IN ('refund', 'tax')),
    label           TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (credit_note_id, position)
);
CREATE TRIGGER credit_notes_no_update BEFORE UPDATE ON credit_notes
BEGIN SELECT RAISE(ABORT, 'credit_notes rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER credit_notes_no_delete BEFORE DELETE ON credit_notes
BEGIN SELECT RAISE(ABORT, 'credit_notes rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER credit_note_lines_no_update BEFORE UPDATE ON credit_note_lines
BEGIN SELECT RAISE(ABORT, 'credit_note_lines rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER credit_note_lines_no_delete BEFORE DELETE ON credit_note_lines
BEGIN SELECT RAISE(ABORT, 'credit_note_lines rows are immutable; write a correction as a new row'); END;

-- A provider's webhook events, each applied once.
CREATE TABLE provider_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- Finance: each order's payment, and the credit notes.
CREATE VIEW finance_payments AS
SELECT
    o.order_number,
    o.id AS order_id,
    o.billing_date,
    o.currency,
    o.total_minor,
    p.provider,
    p.status,
    p.provider_payment_ref,
    p.attempt,
    p.decline_code,
    (CASE WHEN p.status IN ('paid', 'refunded', 'partially_refunded') THEN p.amount_minor ELSE 0 END) AS paid_minor,
    p.paid_at,
    p.fee_minor,
    p.refunded_minor,
    (CASE WHEN p.status IN ('pending', 'requires_action', 'failed') THEN p.amount_minor ELSE 0 END) AS outstanding_minor
FROM payments p
JOIN orders o ON o.id = p.order_id;

CREATE VIEW finance_credit_notes AS
SELECT
    n.number,
    o.order_number,
    n.order_id,
    n.billing_date,
    n.created_at,
    n.currency,
    n.amount_minor,
    n.tax_minor,
    (n.amount_minor - n.tax_minor) AS net_of_tax_minor,
    n.reason,
    n.provider_refund_ref,
    n.actor
FROM credit_notes n
JOIN orders o ON o.id = n.order_id;
