-- Finance facts fixed when the order is written: its billing date, in the shop's finance time
-- zone (finance.time_zone), and its tax rate (added or included). Existing orders keep the
-- billing date this view showed for them (the UTC date here); their tax rate is known only
-- where it was included in the price.
ALTER TABLE orders ADD COLUMN billing_date TEXT;
ALTER TABLE orders ADD COLUMN tax_rate_bp INTEGER CHECK (tax_rate_bp BETWEEN 0 AND 10000);
DROP TRIGGER orders_no_update;
UPDATE orders SET billing_date = date(scheduled_for), tax_rate_bp = tax_included_bp;
CREATE TRIGGER orders_no_update BEFORE UPDATE ON orders
BEGIN SELECT RAISE(ABORT, 'orders rows are immutable; write a correction as a new row'); END;

-- Columns only grow: the billing date now comes from the order; tax added and included, the
-- rate, and revenue net of tax are appended. (SQLite cannot replace a view: drop, create.)
DROP VIEW finance_revenue_monthly;
DROP VIEW finance_order_adjustments;
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
        - COALESCE(o.tax_included_minor, 0)) AS net_of_tax_minor
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
    SUM(price_promise_discount_minor) AS price_promise_discount_minor,
    SUM(net_of_tax_minor) AS net_of_tax_minor
FROM finance_orders
GROUP BY 1, 2, 3;
