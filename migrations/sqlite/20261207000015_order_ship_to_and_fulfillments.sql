-- Where each order ships, and whether it has shipped. First, the address: a snapshot of its
-- subscription's address, written by the renewal transaction with the order and, like the
-- order, never changed (the orders' immutability trigger covers these columns). Orders written
-- before addresses existed have none. The finance view gains the ship-to country and
-- subdivision, for tax by destination; its other columns stay as they were.
ALTER TABLE orders ADD COLUMN ship_name TEXT;
ALTER TABLE orders ADD COLUMN ship_line1 TEXT;
ALTER TABLE orders ADD COLUMN ship_line2 TEXT;
ALTER TABLE orders ADD COLUMN ship_city TEXT;
ALTER TABLE orders ADD COLUMN ship_subdivision TEXT;
ALTER TABLE orders ADD COLUMN ship_postal_code TEXT;
ALTER TABLE orders ADD COLUMN ship_country TEXT CHECK (length(ship_country) = 2);
ALTER TABLE orders ADD COLUMN ship_phone TEXT;
-- (SQLite cannot add a table CHECK to an existing table: the application writes a snapshot
-- whole, from one parsed address.)

-- SQLite cannot replace a view: drop and create, the monthly view over it too.
DROP VIEW finance_revenue_monthly;
DROP VIEW finance_orders;

CREATE VIEW finance_orders AS
SELECT
    o.order_number,
    o.id AS order_id,
    o.created_at,
    o.billing_date,
    c.id AS customer_id,
    c.email AS customer_email,
    o.tax_region,
    o.plan_id AS plan,
    o.packs,
    o.quantity,
    o.currency,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'subtotal'), 0) AS subtotal_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'subscribe_and_save'), 0)) AS subscribe_and_save_discount_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'loyalty'), 0)) AS loyalty_discount_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'coupon'), 0)) AS coupon_discount_minor,
    o.coupon_code,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'shipping'), 0) AS shipping_minor,
    (COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0) + COALESCE(o.tax_included_minor, 0)) AS tax_minor,
    (o.tax_included_minor IS NOT NULL) AS tax_inclusive,
    o.total_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'price_promise'), 0)) AS price_promise_discount_minor,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0) AS tax_added_minor,
    COALESCE(o.tax_included_minor, 0) AS tax_included_minor,
    o.tax_rate_bp,
    (o.total_minor - COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0)
        - COALESCE(o.tax_included_minor, 0)) AS net_of_tax_minor,
    o.ship_country,
    o.ship_subdivision
FROM orders o
JOIN customers c ON c.id = o.customer_id
LEFT JOIN order_lines l ON l.order_id = o.id
GROUP BY o.id, c.id;

CREATE VIEW finance_revenue_monthly AS
SELECT
    substr(billing_date, 1, 7) AS month,
    plan,
    currency,
    COUNT(*) AS orders,
    SUM(packs * quantity) AS packs,
    SUM(subtotal_minor) AS gross_minor,
    SUM(subscribe_and_save_discount_minor) AS subscribe_and_save_discount_minor,
    SUM(loyalty_discount_minor) AS loyalty_discount_minor,
    SUM(coupon_discount_minor) AS coupon_discount_minor,
    SUM(shipping_minor) AS shipping_minor,
    SUM(CASE WHEN tax_inclusive THEN 0 ELSE tax_minor END) AS tax_added_minor,
    SUM(CASE WHEN tax_inclusive THEN tax_minor ELSE 0 END) AS tax_included_minor,
    SUM(total_minor) AS net_minor,
    SUM(price_promise_discount_minor) AS price_promise_discount_minor,
    SUM(net_of_tax_minor) AS net_of_tax_minor
FROM finance_orders
GROUP BY 1, 2, 3;

-- Fulfillment: an order is unfulfilled until a shipment is recorded for it, then fulfilled
-- with its carrier, tracking number and URL and when it shipped; or it is cancelled before it
-- ships, with the reason. One row per order (a shipment sent again is recognised, not written
-- twice; a cancelled order never ships); a row is never changed.
CREATE TABLE fulfillments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         INTEGER NOT NULL UNIQUE REFERENCES orders (id),
    status           TEXT NOT NULL CHECK (status IN ('fulfilled', 'cancelled')),
    carrier          TEXT CHECK (length(carrier) BETWEEN 1 AND 32),
    tracking_number  TEXT CHECK (length(tracking_number) BETWEEN 1 AND 64),
    tracking_url     TEXT CHECK (length(tracking_url) BETWEEN 1 AND 500),
    shipped_at       TEXT,
    reason           TEXT CHECK (length(reason) BETWEEN 1 AND 500),
    actor            TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    CHECK ((status = 'fulfilled') = (carrier IS NOT NULL AND tracking_number IS NOT NULL AND shipped_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (reason IS NOT NULL))
);
CREATE TRIGGER fulfillments_no_update BEFORE UPDATE ON fulfillments
BEGIN SELECT RAISE(ABORT, 'fulfillments rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER fulfillments_no_delete BEFORE DELETE ON fulfillments
BEGIN SELECT RAISE(ABORT, 'fulfillments rows are immutable; write a correction as a new row'); END;

-- The orders waiting for their shipment, so that the warehouse's export, the late-shipment
-- report and the metrics read what is waiting, not every order ever billed. Written with each
-- order by the renewal transaction, deleted by the one that records its shipment. Orders
-- billed before fulfillment was tracked are not in it: whether they shipped is not known here.
CREATE TABLE unfulfilled_orders (
    order_id    INTEGER PRIMARY KEY REFERENCES orders (id),
    created_at  TEXT NOT NULL
);
CREATE INDEX unfulfilled_orders_created_at ON unfulfilled_orders (created_at);

-- A new email kind: the customer's "your order has shipped", with the tracking link. SQLite
-- cannot change a CHECK constraint: the outbox is rebuilt with the same columns, constraints
-- and indexes, and the new kind.
CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                                                   'skipped', 'paused', 'resumed', 'cancelled', 'changed',
                                                   'link_request', 'annual_notice', 'price_change', 'webhook',
                                                   'payment_failed', 'payment_action_required', 'payment_received',
                                                   'order_shipped')),
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
