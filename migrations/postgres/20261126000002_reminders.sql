-- Reminders: at most one per (subscription, cycle, lead time), and the price a reminder
-- promised, which the renewal of that cycle will not exceed.
ALTER TABLE outbox ADD COLUMN lead_days BIGINT CHECK (lead_days >= 0);
ALTER TABLE outbox ADD CONSTRAINT outbox_reminder_has_lead CHECK ((kind = 'renewal_reminder') = (lead_days IS NOT NULL));
CREATE UNIQUE INDEX outbox_one_reminder ON outbox (subscription_id, cycle, lead_days)
    WHERE kind = 'renewal_reminder';
ALTER TABLE subscriptions ADD COLUMN promised_cycle BIGINT;
ALTER TABLE subscriptions ADD COLUMN promised_price_minor BIGINT CHECK (promised_price_minor > 0);
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_promise_complete
    CHECK ((promised_cycle IS NULL) = (promised_price_minor IS NULL));
