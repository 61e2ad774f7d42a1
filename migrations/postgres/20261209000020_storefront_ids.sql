-- A storefront's own ids and metadata on customers and subscriptions (docs/api.md). The
-- external id is unique per kind where set (NULLs do not collide); metadata is a JSON object of
-- strings kept as text, never read by subsave's rules, bounded by the application.
ALTER TABLE customers ADD COLUMN external_id TEXT CHECK (external_id <> '');
ALTER TABLE customers ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX customers_external_id_key ON customers (external_id);
ALTER TABLE subscriptions ADD COLUMN external_id TEXT CHECK (external_id <> '');
ALTER TABLE subscriptions ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX subscriptions_external_id_key ON subscriptions (external_id);

-- When a customer last changed, for the lists' `updated` filter; the store writes it with each
-- change. A row inserted without it (a fixture, a bulk load) starts at its creation.
ALTER TABLE customers ADD COLUMN updated_at TIMESTAMPTZ;
UPDATE customers SET updated_at = created_at;
ALTER TABLE customers ALTER COLUMN updated_at SET NOT NULL;
CREATE FUNCTION customers_updated_at_default() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := COALESCE(NEW.updated_at, NEW.created_at);
    RETURN NEW;
END $$;
CREATE TRIGGER customers_updated_at_default BEFORE INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION customers_updated_at_default();

-- The lists' `created` ranges read these. `updated` ranges have none: an index on a
-- subscription's updated_at would be rewritten by every renewal the engine writes.
CREATE INDEX customers_created ON customers (created_at);
CREATE INDEX subscriptions_created ON subscriptions (created_at);
