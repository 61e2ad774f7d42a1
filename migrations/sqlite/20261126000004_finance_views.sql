-- Finance views: stable, documented columns (docs/finance.md). Once released, a view's
-- columns only grow. Amounts are integers in minor units of `currency`. SQLite has no time
-- zone database: billing_date is the UTC date here (PostgreSQL uses the customer's zone).
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
    o.total_minor
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
    SUM(total_minor) AS net_minor
FROM finance_orders
GROUP BY 1, 2, 3;
