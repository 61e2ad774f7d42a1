-- Payments: each order's charge, separate from the order (which stays immutable), its
-- attempts, refunds as credit notes, and the provider's webhook events seen.
--
-- New email kinds: a charge that failed (with the next try, or what happens now that tries
-- are over), a charge that needs the customer (3-D Secure), and a charge that went through
-- after failing.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                    'skipped', 'paused', 'resumed', 'cancelled', 'changed', 'link_request',
                    'annual_notice', 'price_change', 'webhook', 'payment_failed',
                    'payment_action_required', 'payment_received'));

-- The provider's references for the customer and their saved payment method (Stripe's
-- `cus_…` and `pm_…`).
ALTER TABLE customers ADD COLUMN payment_customer_ref TEXT
    CHECK (length(payment_customer_ref) BETWEEN 1 AND 255);
ALTER TABLE customers ADD COLUMN payment_method_ref TEXT
    CHECK (length(payment_method_ref) BETWEEN 1 AND 255);

-- One payment per order. `attempt` is the attempt being made (or last made); the worker
-- claims rows whose `next_attempt_at` has come. `sent_at` is set when an attempt is handed to
-- the provider and cleared when its outcome is recorded: a row claimed with it set was sent
-- by a worker that died before recording, and the provider is asked what became of it first.
CREATE TABLE payments (
    id                    BIGSERIAL PRIMARY KEY,
    order_id              BIGINT NOT NULL UNIQUE REFERENCES orders (id),
    subscription_id       BIGINT NOT NULL REFERENCES subscriptions (id),
    customer_id           BIGINT NOT NULL REFERENCES customers (id),
    provider              TEXT NOT NULL CHECK (provider IN ('none', 'stripe', 'simulated')),
    status                TEXT NOT NULL CHECK (status IN ('external', 'pending', 'paid', 'requires_action',
                                                          'failed', 'refunded', 'partially_refunded')),
    amount_minor          BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    attempt               BIGINT NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    next_attempt_at       TIMESTAMPTZ,
    lease_until           TIMESTAMPTZ,
    sent_at               TIMESTAMPTZ,
    provider_payment_ref  TEXT,
    decline_code          TEXT,
    last_error            TEXT,
    paid_at               TIMESTAMPTZ,
    fee_minor             BIGINT CHECK (fee_minor >= 0),
    refunded_minor        BIGINT NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    CHECK (refunded_minor <= amount_minor),
    CHECK ((status = 'refunded') = (refunded_minor > 0 AND refunded_minor = amount_minor)),
    CHECK ((status = 'partially_refunded') = (refunded_minor > 0 AND refunded_minor < amount_minor)),
    CHECK (status <> 'paid' OR paid_at IS NOT NULL),
    CHECK (next_attempt_at IS NULL OR status IN ('pending', 'failed'))
);
CREATE INDEX payments_due ON payments (next_attempt_at, id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX payments_subscription ON payments (subscription_id, id);
CREATE INDEX payments_provider_ref ON payments (provider_payment_ref) WHERE provider_payment_ref IS NOT NULL;

-- Orders written before payments existed were collected by the storefront.
INSERT INTO payments (order_id, subscription_id, customer_id, provider, status, amount_minor,
                      currency, created_at, updated_at)
    SELECT id, subscription_id, customer_id, 'none', 'external', total_minor, currency,
           created_at, created_at
    FROM orders;

-- Every outcome of every attempt, append-only.
CREATE TABLE payment_attempts (
    id                    BIGSERIAL PRIMARY KEY,
    payment_id            BIGINT NOT NULL REFERENCES payments (id),
    attempt               BIGINT NOT NULL CHECK (attempt >= 1),
    idempotency_key       TEXT NOT NULL,
    outcome               TEXT NOT NULL CHECK (outcome IN ('succeeded', 'requires_action', 'declined')),
    provider_payment_ref  TEXT,
    decline_code          TEXT,
    message               TEXT,
    source                TEXT NOT NULL,
    at                    TIMESTAMPTZ NOT NULL,
    UNIQUE (payment_id, attempt, outcome)
);
CREATE TRIGGER payment_attempts_immutable BEFORE UPDATE OR DELETE ON payment_attempts
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();

-- While its order is unpaid (dunning), a subscription's next renewal is not billed.
ALTER TABLE subscriptions ADD COLUMN unpaid_order_id BIGINT REFERENCES orders (id);

-- A refund (or a correction of an order's amount) is a credit note with its own lines: the
-- refunded goods net of tax, and the tax refunded. Orders stay as they were.
CREATE TABLE credit_notes (
    id                   BIGSERIAL PRIMARY KEY,
    number               TEXT NOT NULL UNIQUE,
    order_id             BIGINT NOT NULL REFERENCES orders (id),
    payment_id           BIGINT NOT NULL REFERENCES payments (id),
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    amount_minor         BIGINT NOT NULL CHECK (amount_minor > 0),
    tax_minor            BIGINT NOT NULL CHECK (tax_minor >= 0 AND tax_minor <= amount_minor),
    reason               TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    provider_refund_ref  TEXT,
    actor                TEXT NOT NULL,
    billing_date         DATE NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX credit_notes_order ON credit_notes (order_id, id);
CREATE TABLE credit_note_lines (
    credit_note_id  BIGINT NOT NULL REFERENCES credit_notes (id),
    position        BIGINT NOT NULL CHECK (position >= 0),
    kind            TEXT NOT NULL CHECK (kind IN ('refund', 'tax')),
    label           TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (credit_note_id, position)
);
CREATE TRIGGER credit_notes_immutable BEFORE UPDATE OR DELETE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();
CREATE TRIGGER credit_note_lines_immutable BEFORE UPDATE OR DELETE ON credit_note_lines
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();

-- A provider's webhook events, each applied once.
CREATE TABLE provider_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- Finance: each order's payment, and the credit notes.
CREATE VIEW finance_payments AS
SELECT
    o.order_number,
    o.id AS order_id,
    o.billing_date,
    o.currency,
    o.total_minor,
    p.provider,
    p.status,
    p.provider_payment_ref,
    p.attempt,
    p.decline_code,
    (CASE WHEN p.status IN ('paid', 'refunded', 'partially_refunded') THEN p.amount_minor ELSE 0 END)::bigint AS paid_minor,
    p.paid_at,
    p.fee_minor,
    p.refunded_minor,
    (CASE WHEN p.status IN ('pending', 'requires_action', 'failed') THEN p.amount_minor ELSE 0 END)::bigint AS outstanding_minor
FROM payments p
JOIN orders o ON o.id = p.order_id;

CREATE VIEW finance_credit_notes AS
SELECT
    n.number,
    o.order_number,
    n.order_id,
    n.billing_date,
    n.created_at,
    n.currency,
    n.amount_minor,
    n.tax_minor,
    (n.amount_minor - n.tax_minor)::bigint AS net_of_tax_minor,
    n.reason,
    n.provider_refund_ref,
    n.actor
FROM credit_notes n
JOIN orders o ON o.id = n.order_id;
