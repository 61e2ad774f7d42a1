-- The console's queues and overview list failed messages and declined or waiting payments, by
-- id, on every view: without these a list of the few failed rows scans every message or payment
-- ever written (millions on a large shop).
CREATE INDEX outbox_failed ON outbox (id) WHERE status = 'failed';
CREATE INDEX payments_unpaid ON payments (id) WHERE status IN ('failed', 'requires_action');
