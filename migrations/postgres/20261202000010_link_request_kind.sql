-- A customer whose link expired (or who lost it) asks for a fresh one: a `link_request`
-- email, through the outbox like every email.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('renewal_reminder', 'order_confirmation', 'subscription_created',
                    'skipped', 'paused', 'resumed', 'cancelled', 'changed', 'link_request'));
