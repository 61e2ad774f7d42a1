-- Ship-to addresses: a customer has addresses, one of them the default; each subscription
-- ships to one address of its own customer.
--
-- The fields are parsed by the application (ISO 3166 country and subdivision, the country's
-- postal code format, no control characters); the database bounds them again and keeps the
-- rules that span rows: at most one default per customer, and a subscription's address
-- belongs to the subscription's customer (SQLite cannot add a two-column foreign key to an
-- existing table, so triggers refuse any other).
CREATE TABLE addresses (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    line1        TEXT NOT NULL CHECK (length(line1) BETWEEN 1 AND 100),
    line2        TEXT CHECK (length(line2) BETWEEN 1 AND 100),
    city         TEXT NOT NULL CHECK (length(city) BETWEEN 1 AND 80),
    country      TEXT NOT NULL CHECK (length(country) = 2 AND country = upper(country)),
    subdivision  TEXT CHECK (length(subdivision) BETWEEN 4 AND 6 AND substr(subdivision, 1, 3) = country || '-'),
    postal_code  TEXT CHECK (length(postal_code) BETWEEN 1 AND 12),
    phone        TEXT CHECK (length(phone) BETWEEN 4 AND 32),
    is_default   INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX addresses_one_default ON addresses (customer_id) WHERE is_default = 1;
CREATE INDEX addresses_customer ON addresses (customer_id, id);

-- Subscriptions written before addresses existed have none: nothing in the schema held a
-- street address to derive one from, so they stay NULL (tax falls back to the customer's
-- region, and `subsave audit` lists them) until an operator or the customer sets one.
ALTER TABLE subscriptions ADD COLUMN address_id INTEGER REFERENCES addresses (id);
CREATE TRIGGER subscriptions_address_of_customer_insert BEFORE INSERT ON subscriptions
    WHEN NEW.address_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM addresses WHERE id = NEW.address_id AND customer_id = NEW.customer_id)
BEGIN
    SELECT RAISE(ABORT, 'a subscription ships to an address of its own customer');
END;
CREATE TRIGGER subscriptions_address_of_customer_update BEFORE UPDATE OF address_id, customer_id ON subscriptions
    WHEN NEW.address_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM addresses WHERE id = NEW.address_id AND customer_id = NEW.customer_id)
BEGIN
    SELECT RAISE(ABORT, 'a subscription ships to an address of its own customer');
END;
