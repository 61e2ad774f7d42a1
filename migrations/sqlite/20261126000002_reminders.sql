-- Reminders: at most one per (subscription, cycle, lead time), and the price a reminder
-- promised, which the renewal of that cycle will not exceed. (SQLite cannot add a CHECK that
-- spans columns to an existing table; the code keeps the pair complete.)
ALTER TABLE outbox ADD COLUMN lead_days INTEGER CHECK (lead_days >= 0);
CREATE UNIQUE INDEX outbox_one_reminder ON outbox (subscription_id, cycle, lead_days)
    WHERE kind = 'renewal_reminder';
ALTER TABLE subscriptions ADD COLUMN promised_cycle INTEGER;
ALTER TABLE subscriptions ADD COLUMN promised_price_minor INTEGER CHECK (promised_price_minor > 0);
