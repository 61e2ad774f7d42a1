-- Ship-to addresses: a customer has addresses, one of them the default; each subscription
-- ships to one address of its own customer.
--
-- The fields are parsed by the application (ISO 3166 country and subdivision, the country's
-- postal code format, no control characters); the database bounds them again and keeps the
-- rules that span rows: at most one default per customer, and a subscription's address
-- belongs to the subscription's customer (a foreign key over both columns).
CREATE TABLE addresses (
    id           BIGSERIAL PRIMARY KEY,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    line1        TEXT NOT NULL CHECK (length(line1) BETWEEN 1 AND 100),
    line2        TEXT CHECK (length(line2) BETWEEN 1 AND 100),
    city         TEXT NOT NULL CHECK (length(city) BETWEEN 1 AND 80),
    country      TEXT NOT NULL CHECK (length(country) = 2 AND country = upper(country)),
    subdivision  TEXT CHECK (length(subdivision) BETWEEN 4 AND 6 AND substr(subdivision, 1, 3) = country || '-'),
    postal_code  TEXT CHECK (length(postal_code) BETWEEN 1 AND 12),
    phone        TEXT CHECK (length(phone) BETWEEN 4 AND 32),
    is_default   BOOLEAN NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ NOT NULL,
    -- The target of the subscriptions' two-column foreign key.
    CONSTRAINT addresses_of_customer UNIQUE (id, customer_id)
);
CREATE UNIQUE INDEX addresses_one_default ON addresses (customer_id) WHERE is_default;
CREATE INDEX addresses_customer ON addresses (customer_id, id);

-- Subscriptions written before addresses existed have none: nothing in the schema held a
-- street address to derive one from, so they stay NULL (tax falls back to the customer's
-- region, and `subsave audit` lists them) until an operator or the customer sets one.
ALTER TABLE subscriptions ADD COLUMN address_id BIGINT;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_address_of_customer
    FOREIGN KEY (address_id, customer_id) REFERENCES addresses (id, customer_id);
