-- Finance facts fixed when the order is written: its billing date, in the shop's finance time
-- zone (finance.time_zone), and its tax rate (added or included). Existing orders keep the
-- billing date this view showed for them (the customer's local date); their tax rate is known
-- only where it was included in the price.
ALTER TABLE orders ADD COLUMN billing_date DATE;
ALTER TABLE orders ADD COLUMN tax_rate_bp BIGINT CHECK (tax_rate_bp BETWEEN 0 AND 10000);
ALTER TABLE orders DISABLE TRIGGER orders_immutable;
UPDATE orders o SET billing_date = (o.scheduled_for AT TIME ZONE c.time_zone)::date,
                    tax_rate_bp = o.tax_included_bp
FROM customers c WHERE c.id = o.customer_id;
ALTER TABLE orders ENABLE TRIGGER orders_immutable;

-- Columns only grow: the billing date now comes from the order; tax added and included, the
-- rate, and revenue net of tax are appended.
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
        - COALESCE(o.tax_included_minor, 0))::bigint AS net_of_tax_minor
FROM orders o
JOIN customers c ON c.id = o.customer_id
LEFT JOIN order_lines l ON l.order_id = o.id
GROUP BY o.id, c.id;

CREATE OR REPLACE VIEW finance_revenue_monthly AS
SELECT
    to_char(billing_date, 'YYYY-MM') AS month,
    plan,
    currency,
    COUNT(*)::bigint AS orders,
    SUM(packs * quantity)::bigint AS packs,
    SUM(subtotal_minor)::bigint AS gross_minor,
    SUM(subscribe_and_save_discount_minor)::bigint AS subscribe_and_save_discount_minor,
    SUM(loyalty_discount_minor)::bigint AS loyalty_discount_minor,
    SUM(coupon_discount_minor)::bigint AS coupon_discount_minor,
    SUM(shipping_minor)::bigint AS shipping_minor,
    SUM(CASE WHEN tax_inclusive THEN 0 ELSE tax_minor END)::bigint AS tax_added_minor,
    SUM(CASE WHEN tax_inclusive THEN tax_minor ELSE 0 END)::bigint AS tax_included_minor,
    SUM(total_minor)::bigint AS net_minor,
    SUM(price_promise_discount_minor)::bigint AS price_promise_discount_minor,
    SUM(net_of_tax_minor)::bigint AS net_of_tax_minor
FROM finance_orders
GROUP BY 1, 2, 3;
