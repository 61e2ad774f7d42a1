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
-- A snapshot is whole or absent.
ALTER TABLE orders ADD CONSTRAINT orders_ship_to_whole
    CHECK ((ship_country IS NULL) = (ship_name IS NULL) AND (ship_country IS NULL) = (ship_line1 IS NULL)
           AND (ship_country IS NULL) = (ship_city IS NULL));

CREATE OR REPLACE VIEW finance_orders AS
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
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'subtotal'), 0)::bigint AS subtotal_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'subscribe_and_save'), 0))::bigint AS subscribe_and_save_discount_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'loyalty'), 0))::bigint AS loyalty_discount_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'coupon'), 0))::bigint AS coupon_discount_minor,
    o.coupon_code,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'shipping'), 0)::bigint AS shipping_minor,
    (COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0) + COALESCE(o.tax_included_minor, 0))::bigint AS tax_minor,
    (o.tax_included_minor IS NOT NULL) AS tax_inclusive,
    o.total_minor,
    (-COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'price_promise'), 0))::bigint AS price_promise_discount_minor,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0)::bigint AS tax_added_minor,
    COALESCE(o.tax_included_minor, 0)::bigint AS tax_included_minor,
    o.tax_rate_bp,
    (o.total_minor - COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0)
        - COALESCE(o.tax_included_minor, 0))::bigint AS net_of_tax_minor,
    o.ship_country,
    o.ship_subdivision
FROM orders o
JOIN customers c ON c.id = o.customer_id
LEFT JOIN order_lines l ON l.order_id = o.id
GROUP BY o.id, c.id;

-- Fulfillment: an order is unfulfilled until a shipment is recorded for it, then fulfilled
-- with its carrier, tracking number and URL and when it shipped; or it is cancelled before it
-- ships, with the reason. One row per order (a shipment sent again is recognised, not written
-- twice; a cancelled order never ships); a row is never changed.
CREATE TABLE fulfillments (
    id               BIGSERIAL PRIMARY KEY,
    order_id         BIGINT NOT NULL UNIQUE REFERENCES orders (id),
    status           TEXT NOT NULL CHECK (status IN ('fulfilled', 'cancelled')),
    carrier          TEXT CHECK (length(carrier) BETWEEN 1 AND 32),
    tracking_number  TEXT CHECK (length(tracking_number) BETWEEN 1 AND 64),
    tracking_url     TEXT CHECK (length(tracking_url) BETWEEN 1 AND 500),
    shipped_at       TIMESTAMPTZ,
    reason           TEXT CHECK (length(reason) BETWEEN 1 AND 500),
    actor            TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'fulfilled') = (carrier IS NOT NULL AND tracking_number IS NOT NULL AND shipped_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (reason IS NOT NULL))
);
CREATE TRIGGER fulfillments_immutable BEFORE UPDATE OR DELETE ON fulfillments
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();

-- The orders waiting for their shipment, so that the warehouse's export, the late-shipment
-- report and the metrics read what is waiting, not every order ever billed. Written with each
-- order by the renewal transaction, deleted by the one that records its shipment. Orders
-- billed before fulfillment was tracked are not in it: whether they shipped is not known here.
CREATE TABLE unfulfilled_orders (
    order_id    BIGINT PRIMARY KEY REFERENCES orders (id),
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX unfulfilled_orders_created_at ON unfulfilled_orders (created_at);

-- A new email kind: the customer's "your order has shipped", with the tracking link.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                    'skipped', 'paused', 'resumed', 'cancelled', 'changed', 'link_request',
                    'annual_notice', 'price_change', 'webhook', 'payment_failed',
                    'payment_action_required', 'payment_received', 'order_shipped'));
