-- Erasure of a customer's personal data (`subsave customers erase`). One row per erased
-- customer, never changed: when, and by whom. While it exists, the customer gets no new
-- subscription or address (triggers below, whatever the code does), and the orders' ship-to
-- snapshots of that customer may have their personal fields replaced, and nothing else.
CREATE TABLE erasures (
    customer_id  BIGINT PRIMARY KEY REFERENCES customers (id),
    erased_at    TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL
);
CREATE TRIGGER erasures_immutable BEFORE UPDATE OR DELETE ON erasures
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();

-- Orders stay immutable, but for one change: the erasure of an erased customer's name,
-- street lines and phone in the ship-to snapshot. Amounts, tax region, country, subdivision,
-- city and postal code (where the sale is taxed) never change.
CREATE FUNCTION subsave_orders_immutable_but_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    personal CONSTANT text[] := ARRAY['ship_name', 'ship_line1', 'ship_line2', 'ship_phone'];
BEGIN
    IF TG_OP = 'UPDATE'
       AND EXISTS (SELECT 1 FROM erasures e WHERE e.customer_id = OLD.customer_id)
       AND (to_jsonb(NEW) - personal) = (to_jsonb(OLD) - personal) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% rows are immutable; write a correction as a new row', TG_TABLE_NAME;
END;
$$;
DROP TRIGGER orders_immutable ON orders;
CREATE TRIGGER orders_immutable BEFORE UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION subsave_orders_immutable_but_erasure();

CREATE FUNCTION subsave_refuse_erased_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM erasures e WHERE e.customer_id = NEW.customer_id) THEN
        RAISE EXCEPTION 'customer % is erased: % rows cannot be added for them', NEW.customer_id, TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER subscriptions_not_for_erased BEFORE INSERT ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_erased_customer();
CREATE TRIGGER addresses_not_for_erased BEFORE INSERT ON addresses
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_erased_customer();
