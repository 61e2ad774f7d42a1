-- subsave schema, SQLite. Append-only: later changes go in new migrations.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%._%'),
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    locale      TEXT NOT NULL DEFAULT 'en-US',
    tax_region  TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE coupons (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    code             TEXT NOT NULL UNIQUE CHECK (code <> ''),
    percent_bp       INTEGER CHECK (percent_bp BETWEEN 1 AND 10000),
    amount_minor     INTEGER CHECK (amount_minor > 0),
    currency         TEXT NOT NULL,
    duration         TEXT NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
    duration_orders  INTEGER CHECK (duration_orders > 0),
    plan_id          TEXT,
    expires_at       TEXT,
    max_redemptions  INTEGER CHECK (max_redemptions > 0),
    redemptions      INTEGER NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
    disabled_at      TEXT,
    created_at       TEXT NOT NULL,
    CHECK ((percent_bp IS NULL) <> (amount_minor IS NULL)),
    CHECK ((duration = 'repeating') = (duration_orders IS NOT NULL)),
    CHECK (max_redemptions IS NULL OR redemptions <= max_redemptions)
);

CREATE TABLE subscriptions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id         INTEGER NOT NULL REFERENCES customers (id),
    plan_id             TEXT NOT NULL,
    quantity            INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    interval_count      INTEGER NOT NULL CHECK (interval_count > 0),
    interval_unit       TEXT NOT NULL CHECK (interval_unit IN ('day', 'week', 'month')),
    anchor_local        TEXT NOT NULL,
    anchor_cycle        INTEGER NOT NULL CHECK (anchor_cycle >= 0),
    time_zone           TEXT NOT NULL,
    next_cycle          INTEGER NOT NULL CHECK (next_cycle >= anchor_cycle),
    next_renewal_at     TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active', 'paused', 'cancelled')),
    paused_until        TEXT,
    orders_count        INTEGER NOT NULL DEFAULT 0 CHECK (orders_count >= 0),
    coupon_id           INTEGER REFERENCES coupons (id),
    coupon_orders_used  INTEGER NOT NULL DEFAULT 0 CHECK (coupon_orders_used >= 0),
    cancel_reason       TEXT,
    hold_reason         TEXT,
    error_count         INTEGER NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((status = 'cancelled') = (next_renewal_at IS NULL)),
    CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL)),
    CHECK (paused_until IS NULL OR status = 'paused')
);
-- "What is due" reads only due rows: cost proportional to what is due.
CREATE INDEX subscriptions_due ON subscriptions (next_renewal_at)
    WHERE status = 'active' AND hold_reason IS NULL;
CREATE INDEX subscriptions_pause_ends ON subscriptions (paused_until)
    WHERE status = 'paused' AND paused_until IS NOT NULL;
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);

CREATE TABLE coupon_redemptions (
    coupon_id        INTEGER NOT NULL REFERENCES coupons (id),
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id),
    redeemed_at      TEXT NOT NULL,
    PRIMARY KEY (coupon_id, subscription_id)
);

CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    order_number        TEXT NOT NULL UNIQUE,
    subscription_id     INTEGER NOT NULL REFERENCES subscriptions (id),
    customer_id         INTEGER NOT NULL REFERENCES customers (id),
    cycle               INTEGER NOT NULL CHECK (cycle >= 0),
    plan_id             TEXT NOT NULL,
    packs               INTEGER NOT NULL CHECK (packs > 0),
    quantity            INTEGER NOT NULL CHECK (quantity > 0),
    currency            TEXT NOT NULL CHECK (length(currency) = 3),
    total_minor         INTEGER NOT NULL CHECK (total_minor >= 0),
    tax_included_minor  INTEGER CHECK (tax_included_minor >= 0),
    tax_included_bp     INTEGER CHECK (tax_included_bp BETWEEN 0 AND 10000),
    tax_region          TEXT,
    coupon_code         TEXT,
    scheduled_for       TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    -- At most one order per (subscription, cycle), whatever the code does.
    CONSTRAINT orders_one_per_cycle UNIQUE (subscription_id, cycle)
);
CREATE INDEX orders_created_at ON orders (created_at);

CREATE TABLE order_lines (
    order_id      INTEGER NOT NULL REFERENCES orders (id),
    position      INTEGER NOT NULL CHECK (position >= 0),
    kind          TEXT NOT NULL CHECK (kind IN ('subtotal', 'subscribe_and_save', 'loyalty', 'coupon', 'shipping', 'tax')),
    label         TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL,
    PRIMARY KEY (order_id, position),
    CHECK ((kind IN ('subscribe_and_save', 'loyalty', 'coupon')) = (amount_minor < 0) OR amount_minor = 0)
);

CREATE TABLE subscription_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id),
    kind             TEXT NOT NULL,
    actor            TEXT NOT NULL,
    at               TEXT NOT NULL,
    cycle            INTEGER,
    detail           TEXT NOT NULL
);
CREATE INDEX subscription_events_subscription ON subscription_events (subscription_id, id);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                                                   'skipped', 'paused', 'resumed', 'cancelled', 'changed')),
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
    CHECK ((kind = 'order_confirmation') = (order_id IS NOT NULL))
);
-- One confirmation per order.
CREATE UNIQUE INDEX outbox_one_confirmation ON outbox (order_id) WHERE kind = 'order_confirmation';
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';

-- Orders, their lines and events are immutable: corrections are new rows.
CREATE TRIGGER orders_no_update BEFORE UPDATE ON orders
BEGIN SELECT RAISE(ABORT, 'orders rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER orders_no_delete BEFORE DELETE ON orders
BEGIN SELECT RAISE(ABORT, 'orders rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER order_lines_no_update BEFORE UPDATE ON order_lines
BEGIN SELECT RAISE(ABORT, 'order_lines rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER order_lines_no_delete BEFORE DELETE ON order_lines
BEGIN SELECT RAISE(ABORT, 'order_lines rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER subscription_events_no_update BEFORE UPDATE ON subscription_events
BEGIN SELECT RAISE(ABORT, 'subscription_events rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER subscription_events_no_delete BEFORE DELETE ON subscription_events
BEGIN SELECT RAISE(ABORT, 'subscription_events rows are immutable; write a correction as a new row'); END;
