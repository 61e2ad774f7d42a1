-- subsave schema, PostgreSQL. Append-only: later changes go in new migrations.

CREATE TABLE customers (
    id          BIGSERIAL PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%._%'),
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    locale      TEXT NOT NULL DEFAULT 'en-US',
    tax_region  TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE coupons (
    id               BIGSERIAL PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE CHECK (code <> ''),
    percent_bp       BIGINT CHECK (percent_bp BETWEEN 1 AND 10000),
    amount_minor     BIGINT CHECK (amount_minor > 0),
    currency         TEXT NOT NULL,
    duration         TEXT NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
    duration_orders  BIGINT CHECK (duration_orders > 0),
    plan_id          TEXT,
    expires_at       TIMESTAMPTZ,
    max_redemptions  BIGINT CHECK (max_redemptions > 0),
    redemptions      BIGINT NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
    disabled_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    CHECK ((percent_bp IS NULL) <> (amount_minor IS NULL)),
    CHECK ((duration = 'repeating') = (duration_orders IS NOT NULL)),
    CHECK (max_redemptions IS NULL OR redemptions <= max_redemptions)
);

CREATE TABLE subscriptions (
    id                  BIGSERIAL PRIMARY KEY,
    customer_id         BIGINT NOT NULL REFERENCES customers (id),
    plan_id             TEXT NOT NULL,
    quantity            BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    interval_count      BIGINT NOT NULL CHECK (interval_count > 0),
    interval_unit       TEXT NOT NULL CHECK (interval_unit IN ('day', 'week', 'month')),
    anchor_local        TIMESTAMP NOT NULL,
    anchor_cycle        BIGINT NOT NULL CHECK (anchor_cycle >= 0),
    time_zone           TEXT NOT NULL,
    next_cycle          BIGINT NOT NULL CHECK (next_cycle >= anchor_cycle),
    next_renewal_at     TIMESTAMPTZ,
    status              TEXT NOT NULL CHECK (status IN ('active', 'paused', 'cancelled')),
    paused_until        TIMESTAMPTZ,
    orders_count        BIGINT NOT NULL DEFAULT 0 CHECK (orders_count >= 0),
    coupon_id           BIGINT REFERENCES coupons (id),
    coupon_orders_used  BIGINT NOT NULL DEFAULT 0 CHECK (coupon_orders_used >= 0),
    cancel_reason       TEXT,
    hold_reason         TEXT,
    error_count         BIGINT NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'cancelled') = (next_renewal_at IS NULL)),
    CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL)),
    CHECK (paused_until IS NULL OR status = 'paused')
);
-- "What is due" reads only due rows: cost proportional to what is due.
CREATE INDEX subscriptions_due ON subscriptions (next_renewal_at)
    WHERE status = 'active' AND hold_reason IS NULL;
CREATE INDEX subscriptions_pause_ends ON subscriptions (paused_until)
    WHERE status = 'paused' AND paused_until IS NOT NULL;
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);

CREATE TABLE coupon_redemptions (
    coupon_id        BIGINT NOT NULL REFERENCES coupons (id),
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id),
    redeemed_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (coupon_id, subscription_id)
);

CREATE TABLE orders (
    id                  BIGSERIAL PRIMARY KEY,
    order_number        TEXT NOT NULL UNIQUE,
    subscription_id     BIGINT NOT NULL REFERENCES subscriptions (id),
    customer_id         BIGINT NOT NULL REFERENCES customers (id),
    cycle               BIGINT NOT NULL CHECK (cycle >= 0),
    plan_id             TEXT NOT NULL,
    packs               BIGINT NOT NULL CHECK (packs > 0),
    quantity            BIGINT NOT NULL CHECK (quantity > 0),
    currency            TEXT NOT NULL CHECK (length(currency) = 3),
    total_minor         BIGINT NOT NULL CHECK (total_minor >= 0),
    tax_included_minor  BIGINT CHECK (tax_included_minor >= 0),
    tax_included_bp     BIGINT CHECK (tax_included_bp BETWEEN 0 AND 10000),
    tax_region          TEXT,
    coupon_code         TEXT,
    scheduled_for       TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    -- At most one order per (subscription, cycle), whatever the code does.
    CONSTRAINT orders_one_per_cycle UNIQUE (subscription_id, cycle)
);
CREATE INDEX orders_created_at ON orders (created_at);

CREATE TABLE order_lines (
    order_id      BIGINT NOT NULL REFERENCES orders (id),
    position      BIGINT NOT NULL CHECK (position >= 0),
    kind          TEXT NOT NULL CHECK (kind IN ('subtotal', 'subscribe_and_save', 'loyalty', 'coupon', 'shipping', 'tax')),
    label         TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    PRIMARY KEY (order_id, position),
    CHECK ((kind IN ('subscribe_and_save', 'loyalty', 'coupon')) = (amount_minor < 0) OR amount_minor = 0)
);

CREATE TABLE subscription_events (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id),
    kind             TEXT NOT NULL,
    actor            TEXT NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    cycle            BIGINT,
    detail           JSONB NOT NULL
);
CREATE INDEX subscription_events_subscription ON subscription_events (subscription_id, id);

CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                                                   'skipped', 'paused', 'resumed', 'cancelled', 'changed')),
    recipient        TEXT NOT NULL,
    subscription_id  BIGINT REFERENCES subscriptions (id),
    order_id         BIGINT REFERENCES orders (id),
    cycle            BIGINT,
    payload          JSONB NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts         BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    CHECK ((kind = 'order_confirmation') = (order_id IS NOT NULL))
);
-- One confirmation per order.
CREATE UNIQUE INDEX outbox_one_confirmation ON outbox (order_id) WHERE kind = 'order_confirmation';
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';

-- Orders, their lines and events are immutable: corrections are new rows.
CREATE FUNCTION subsave_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable; write a correction as a new row', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER orders_immutable BEFORE UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();
CREATE TRIGGER order_lines_immutable BEFORE UPDATE OR DELETE ON order_lines
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();
CREATE TRIGGER subscription_events_immutable BEFORE UPDATE OR DELETE ON subscription_events
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();
