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
-- change. A row inserted without it (a fixture, a bulk load) starts at its creation. (SQLite
-- cannot add a NOT NULL column without a constant default: the trigger fills it instead.)
ALTER TABLE customers ADD COLUMN updated_at TEXT;
UPDATE customers SET updated_at = created_at;
CREATE TRIGGER customers_updated_at_default AFTER INSERT ON customers
    WHEN NEW.updated_at IS NULL
BEGIN
    UPDATE customers SET updated_at = NEW.created_at WHERE id = NEW.id;
END;

-- The lists' `created` ranges read these. `updated` ranges have none: an index on a
-- subscription's updated_at would be rewritten by every renewal the engine writes.
CREATE INDEX customers_created ON customers (created_at);
CREATE INDEX subscriptions_created ON subscriptions (created_at);
