-- Erasure of a customer's personal data (`subsave customers erase`). One row per erased
-- customer, never changed: when, and by whom. While it exists, the customer gets no new
-- subscription or address (triggers below, whatever the code does), and the orders' ship-to
-- snapshots of that customer may have their personal fields replaced, and nothing else.
CREATE TABLE erasures (
    customer_id  INTEGER PRIMARY KEY REFERENCES customers (id),
    erased_at    TEXT NOT NULL,
    actor        TEXT NOT NULL
);
CREATE TRIGGER erasures_no_update BEFORE UPDATE ON erasures
BEGIN SELECT RAISE(ABORT, 'erasures rows are immutable; write a correction as a new row'); END;
CREATE TRIGGER erasures_no_delete BEFORE DELETE ON erasures
BEGIN SELECT RAISE(ABORT, 'erasures rows are immutable; write a correction as a new row'); END;

-- Orders stay immutable, but for one change: the erasure of an erased customer's name,
-- street lines and phone in the ship-to snapshot. Amounts, tax region, country, subdivision,
-- city and postal code (where the sale is taxed) never change.
DROP TRIGGER orders_no_update;
CREATE TRIGGER orders_no_update BEFORE UPDATE ON orders
    WHEN NOT (
        EXISTS (SELECT 1 FROM erasures e WHERE e.customer_id = OLD.customer_id)
        AND NEW.id IS OLD.id AND NEW.order_number IS OLD.order_number
        AND NEW.subscription_id IS OLD.subscription_id AND NEW.customer_id IS OLD.customer_id
        AND NEW.cycle IS OLD.cycle AND NEW.plan_id IS OLD.plan_id AND NEW.packs IS OLD.packs
        AND NEW.quantity IS OLD.quantity AND NEW.currency IS OLD.currency
        AND NEW.total_minor IS OLD.total_minor AND NEW.tax_included_minor IS OLD.tax_included_minor
        AND NEW.tax_included_bp IS OLD.tax_included_bp AND NEW.tax_region IS OLD.tax_region
        AND NEW.coupon_code IS OLD.coupon_code AND NEW.scheduled_for IS OLD.scheduled_for
        AND NEW.created_at IS OLD.created_at AND NEW.billing_date IS OLD.billing_date
        AND NEW.tax_rate_bp IS OLD.tax_rate_bp AND NEW.ship_city IS OLD.ship_city
        AND NEW.ship_subdivision IS OLD.ship_subdivision
        AND NEW.ship_postal_code IS OLD.ship_postal_code AND NEW.ship_country IS OLD.ship_country
    )
BEGIN SELECT RAISE(ABORT, 'orders rows are immutable; write a correction as a new row'); END;

CREATE TRIGGER subscriptions_not_for_erased BEFORE INSERT ON subscriptions
    WHEN EXISTS (SELECT 1 FROM erasures e WHERE e.customer_id = NEW.customer_id)
BEGIN SELECT RAISE(ABORT, 'the customer is erased: no subscription can be added for them'); END;
CREATE TRIGGER addresses_not_for_erased BEFORE INSERT ON addresses
    WHEN EXISTS (SELECT 1 FROM erasures e WHERE e.customer_id = NEW.customer_id)
BEGIN SELECT RAISE(ABORT, 'the customer is erased: no address can be added for them'); END;
