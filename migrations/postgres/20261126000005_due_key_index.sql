-- Claims order by (next_renewal_at, id) and reminder claims continue from such a cursor: an
-- index on both columns lets the cursor seek instead of re-reading every row at one instant.
CREATE INDEX subscriptions_due_key ON subscriptions (next_renewal_at, id)
    WHERE status = 'active' AND hold_reason IS NULL;
DROP INDEX subscriptions_due;
