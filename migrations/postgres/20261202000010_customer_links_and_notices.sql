-- Customers act through signed links, and get the notices automatic-renewal law asks for.
--
-- New email kinds: a fresh link the customer asked for (`link_request`), the yearly reminder
-- of what they subscribe to (`annual_notice`), and the notice before a renewal at a higher
-- total (`price_change`); and `webhook`: an event for a storefront's endpoint, delivered from
-- the outbox by the same worker (the recipient is the endpoint's name).
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                    'skipped', 'paused', 'resumed', 'cancelled', 'changed', 'link_request',
                    'annual_notice', 'price_change', 'webhook'));

-- The consent given when a subscription was created: when, through what, the terms shown,
-- and by whom. Append-only.
CREATE TABLE consents (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id),
    given_at         TIMESTAMPTZ NOT NULL,
    channel          TEXT NOT NULL CHECK (length(channel) BETWEEN 1 AND 64),
    terms_version    TEXT NOT NULL CHECK (length(terms_version) BETWEEN 1 AND 64),
    actor            TEXT NOT NULL
);
CREATE INDEX consents_subscription ON consents (subscription_id, id);
CREATE TRIGGER consents_immutable BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION subsave_refuse_change();

-- The notices' state on each subscription: the total of its last order (what a price change
-- is measured against; none after the customer changed plan, quantity or interval, whose
-- email showed the new price), the cycle whose price was last checked, and when the next
-- annual notice is due.
ALTER TABLE subscriptions ADD COLUMN last_total_minor BIGINT CHECK (last_total_minor >= 0);
ALTER TABLE subscriptions ADD COLUMN price_checked_cycle BIGINT CHECK (price_checked_cycle >= 0);
ALTER TABLE subscriptions ADD COLUMN annual_notice_at TIMESTAMPTZ;
UPDATE subscriptions s SET
    last_total_minor = (SELECT o.total_minor FROM orders o WHERE o.subscription_id = s.id
                        ORDER BY o.cycle DESC LIMIT 1),
    annual_notice_at = CASE WHEN s.status <> 'cancelled' THEN s.created_at + interval '1 year' END;
CREATE INDEX subscriptions_annual_notice ON subscriptions (annual_notice_at, id)
    WHERE status <> 'cancelled';
