-- A reminder's promise and the price check's last total are amounts, and an amount never loses
-- its currency: a country the catalog moves to another market (another currency) must not read
-- them in the new one. The store writes each currency with its amount. NULL: written before
-- markets existed, when the catalog had one currency; the core reads such an amount in the
-- catalog's currency (`core::model::kept_currency`).
ALTER TABLE subscriptions ADD COLUMN promise_currency TEXT
    CHECK (promise_currency IS NULL
        OR (length(promise_currency) = 3 AND promised_price_minor IS NOT NULL));
ALTER TABLE subscriptions ADD COLUMN last_total_currency TEXT
    CHECK (last_total_currency IS NULL
        OR (length(last_total_currency) = 3 AND last_total_minor IS NOT NULL));
