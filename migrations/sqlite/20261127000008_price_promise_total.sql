-- A reminder's total is a promise: the renewal of that cycle charges at most that total. The
-- difference is an order line of its own kind, `price_promise` (negative), and a column of
-- the finance views (appended: a view's columns only grow). SQLite cannot change a CHECK:
-- order_lines is rebuilt with its triggers, and the views over it recreated.
ALTER TABLE subscriptions ADD COLUMN promised_total_minor INTEGER CHECK (promised_total_minor >= 0);

DROP VIEW finance_revenue_monthly;
DROP VIEW finance_order_adjustments;
DROP VIEW finance_orders;

CREATE TABLE order_lines_new (
    order_id      INTEGER NOT NULL REFERENCES orders (id),
    position      INTEGER NOT NULL CHECK (position >= 0),
    kind          TEXT NOT NULL CHECK (kind IN ('subtotal', 'subscribe_and_save', 'loyalty', 'coupon', 'shipping', 'tax', 'price_promise')),
    label         TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL,
    PRIMARY KEY (order_id, position),
    CHECK ((kind IN ('subscribe_and_save', 'loyalty', 'coupon', 'price_promise')) = (amount_minor < 0) OR amount_minor = 0)
);
INSERT INTO order_lines_new (order_id, position, kind, label, amount_minor)
    SELECT order_id, position, kind, label, amount_minor FROM order_lines;
DROP TABLE order_lines;
ALTER TABLE order_lines_new RENAME TO order_lines;
CREATE TRIGGER order_lines_no_update BEFORE UPDATE ON order_lines
BEGIN SELECT RAISE(ABORT, 'order_lines rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER order_lines_no_delete BEFORE DELETE ON order_lines
BEGIN SELECT RAISE(ABORT, 'order_lines rows are immutable; write a correction as a new row'); END;

CREATE VIEW finance_orders AS
SELECT
    o.order_number,
    o.id AS order_id,
    o.created_at,
    date(o.scheduled_for) AS billing_date,
    c.id AS customer_id,
    c.email AS customer_email,
    o.tax_region,
    o.plan_id AS plan,
    o.packs,
    o.quantity,
    o.currency,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'subtotal'), 0) AS subtotal_minor,
    -COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'subscribe_and_save'), 0) AS subscribe_and_save_discount_minor,
    -COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'loyalty'), 0) AS loyalty_discount_minor,
    -COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'coupon'), 0) AS coupon_discount_minor,
    o.coupon_code,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'shipping'), 0) AS shipping_minor,
    COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'tax'), 0) + COALESCE(o.tax_included_minor, 0) AS tax_minor,
    (o.tax_included_minor IS NOT NULL) AS tax_inclusive,
    o.total_minor,
    -COALESCE(SUM(l.amount_minor) FILTER (WHERE l.kind = 'price_promise'), 0) AS price_promise_discount_minor
FROM orders o
JOIN customers c ON c.id = o.customer_id
LEFT JOIN order_lines l ON l.order_id = o.id
GROUP BY o.id, c.id;

CREATE VIEW finance_order_adjustments AS
SELECT
    o.order_number,
    o.id AS order_id,
    l.position,
    l.kind,
    l.label,
    l.amount_minor,
    o.currency,
    o.created_at
FROM order_lines l
JOIN orders o ON o.id = l.order_id;

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
    SUM(price_promise_discount_minor) AS price_promise_discount_minor
FROM finance_orders
GROUP BY 1, 2, 3;
