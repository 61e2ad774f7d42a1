-- Partitioned history: orders, their lines, subscription events, the outbox and payments become
-- tables partitioned by ranges of their ids (order lines by their order's id). New rows and their
-- indexes live in a small, recent partition, and old outbox rows leave by dropping a whole
-- partition (docs/scaling.md).
--
-- Each existing table becomes the first partition of its new parent as it is: attached, not
-- copied (one scan to check its bound, no rewrite). The application is unchanged: it inserts,
-- updates and reads the parents under the old names.
--
-- A unique index on a partitioned table must contain the partition key, and the exactly-once keys
-- do not ("one order per subscription and cycle", unique order numbers, "one payment per order",
-- "one confirmation per order", "one reminder per subscription, cycle and lead"). Each of those
-- moves to a narrow unpartitioned keys table under its old constraint name, written by a trigger
-- of the statement that inserts the row: the database still refuses a second order for a cycle,
-- whichever partition holds the first.

CREATE TABLE partition_plans (
    table_name          TEXT PRIMARY KEY,
    column_name         TEXT NOT NULL,
    sequence_name       TEXT NOT NULL,
    rows_per_partition  BIGINT NOT NULL CHECK (rows_per_partition > 0),
    -- Where the highest range partition ends (exclusive).
    upper_bound         BIGINT NOT NULL
);

-- Turns `tbl` into a table partitioned by ranges of `col` whose first partition, `<tbl>_p0`, is
-- the table itself. Its triggers, foreign keys to other tables, checks and indexes move to the
-- parent, except unique indexes without `col`. Foreign keys that point AT `tbl` are the caller's.
CREATE FUNCTION subsave_partition_table(tbl TEXT, col TEXT, seq TEXT, width BIGINT)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    legacy TEXT := tbl || '_p0';
    bound BIGINT;
    r RECORD;
    triggers TEXT[] := ARRAY[]::TEXT[];
    statement TEXT;
BEGIN
    FOR r IN SELECT t.tgname, pg_get_triggerdef(t.oid) AS def FROM pg_trigger t
             WHERE t.tgrelid = tbl::regclass AND NOT t.tgisinternal LOOP
        triggers := triggers || r.def;
        EXECUTE format('DROP TRIGGER %I ON %I', r.tgname, tbl);
    END LOOP;
    FOR r IN SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indrelid = tbl::regclass LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, r.relname || '_p0');
    END LOOP;
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, legacy);

    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                   'INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (%I)', tbl, legacy, col);
    IF col = 'id' THEN
        EXECUTE format('ALTER SEQUENCE %I OWNED BY %I.id', seq, tbl);
    END IF;

    -- The parent's indexes are the legacy table's; ATTACH adopts the legacy ones, built already.
    -- A unique index without the partition key cannot be the parent's (its rule moves to a keys
    -- table); its columns still serve lookups (an order by number, a payment by order), so the
    -- parent gets a plain index on them, `<name>_lookup`, which ATTACH builds on the legacy table.
    FOR r IN SELECT i.relname, x.indisprimary, x.indisunique,
                    pg_get_indexdef(x.indexrelid) AS def,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid
                            AND a.attnum = ANY (x.indkey) AND a.attname = col) AS has_key
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indrelid = legacy::regclass LOOP
        IF r.indisunique AND NOT r.has_key THEN
            EXECUTE regexp_replace(r.def, '^CREATE UNIQUE INDEX \S+ ON \S+ ',
                                   format('CREATE INDEX %I ON %I ', left(r.relname, -3) || '_lookup', tbl));
        ELSIF r.indisprimary THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%s)', tbl, tbl || '_pkey',
                           substring(r.def FROM '\((.*)\)$'));
        ELSE
            EXECUTE regexp_replace(r.def, ' INDEX \S+ ON \S+ ',
                                   format(' INDEX %I ON %I ', left(r.relname, -3), tbl));
        END IF;
    END LOOP;

    -- Foreign keys to other tables, on the parent before ATTACH, which then adopts the legacy
    -- table's matching (and already valid) ones rather than checking every row again.
    FOR r IN SELECT c.conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
             WHERE c.conrelid = legacy::regclass AND c.contype = 'f' LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', tbl, r.conname, r.def);
    END LOOP;

    -- The legacy partition holds every id below the first multiple of `width` past the sequence.
    EXECUTE format('SELECT GREATEST((SELECT COALESCE(MAX(%I), 0) FROM %I), (SELECT last_value FROM %I))',
                   col, legacy, seq) INTO bound;
    bound := (bound / width + 1) * width;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%s)',
                   tbl, legacy, bound);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                   tbl || '_p' || bound, tbl, bound, bound + width);
    -- Rows past the last partition land here rather than fail; see subsave_ensure_partitions.
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);

    -- The legacy partition's unique indexes without the partition key now duplicate a keys
    -- table's rule and the parent's lookup index; a new database writes its first rows here, so
    -- they would cost every insert an index more.
    FOR r IN SELECT i.relname, c.conname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
             WHERE x.indrelid = legacy::regclass AND x.indisunique AND NOT x.indisprimary
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid
                               AND a.attnum = ANY (x.indkey) AND a.attname = col) LOOP
        IF r.conname IS NULL THEN
            EXECUTE format('DROP INDEX %I', r.relname);
        ELSE
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', legacy, r.conname);
        END IF;
    END LOOP;
    INSERT INTO partition_plans VALUES (tbl, col, seq, width, bound + width);

    FOREACH statement IN ARRAY triggers LOOP
        EXECUTE statement;
    END LOOP;
END;
$$;

-- The exactly-once keys, copied from the rows that exist, then kept by triggers.
CREATE TABLE order_keys (
    order_id         BIGINT PRIMARY KEY,
    subscription_id  BIGINT NOT NULL,
    cycle            BIGINT NOT NULL,
    order_number     TEXT NOT NULL
);
INSERT INTO order_keys (order_id, subscription_id, cycle, order_number)
    SELECT id, subscription_id, cycle, order_number FROM orders;
-- One statement-level trigger per INSERT statement (the renewal writes its orders in multi-row
-- statements): the keys of every row it inserted, in one set-based insert.
CREATE FUNCTION subsave_order_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_keys (order_id, subscription_id, cycle, order_number)
        SELECT id, subscription_id, cycle, order_number FROM inserted;
    RETURN NULL;
END;
$$;
CREATE TRIGGER orders_keys AFTER INSERT ON orders REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION subsave_order_keys();

CREATE TABLE payment_keys (
    order_id    BIGINT NOT NULL,
    payment_id  BIGINT PRIMARY KEY
);
INSERT INTO payment_keys (order_id, payment_id) SELECT order_id, id FROM payments;
CREATE FUNCTION subsave_payment_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO payment_keys (order_id, payment_id) SELECT order_id, id FROM inserted;
    RETURN NULL;
END;
$$;
CREATE TRIGGER payments_keys AFTER INSERT ON payments REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION subsave_payment_keys();

-- Views over these tables follow the renamed legacy tables: keep their text, drop them, and
-- define them again over the new parents. Foreign keys pointing at these tables likewise.
CREATE TEMPORARY TABLE saved_views ON COMMIT DROP AS
    SELECT c.oid, c.relname, pg_get_viewdef(c.oid) AS def FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'v' AND n.nspname = current_schema();
CREATE TEMPORARY TABLE saved_foreign_keys ON COMMIT DROP AS
    SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def
    FROM pg_constraint c
    WHERE c.contype = 'f'
      AND c.confrelid IN ('orders'::regclass, 'payments'::regclass, 'outbox'::regclass,
                          'subscription_events'::regclass, 'order_lines'::regclass);

DO $$
DECLARE r RECORD;
BEGIN
    FOR r IN SELECT relname FROM saved_views ORDER BY oid DESC LOOP
        EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', r.relname);
    END LOOP;
    FOR r IN SELECT * FROM saved_foreign_keys LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;

    -- Widths: about a month of a million monthly subscriptions per partition.
    PERFORM subsave_partition_table('orders', 'id', 'orders_id_seq', 1000000);
    PERFORM subsave_partition_table('order_lines', 'order_id', 'orders_id_seq', 1000000);
    PERFORM subsave_partition_table('payments', 'id', 'payments_id_seq', 1000000);
    PERFORM subsave_partition_table('subscription_events', 'id', 'subscription_events_id_seq', 5000000);
    PERFORM subsave_partition_table('outbox', 'id', 'outbox_id_seq', 2000000);

    -- Each points at the keys table now: the order's (or payment's) id is there, written by the
    -- statement that wrote the row, and a foreign key checks it with one lookup in a plain
    -- index; checking through a partitioned parent made writing lines, payments and mail
    -- several times slower (bench/partition.sh). Checked at commit: a key is written when its
    -- statement ends, and one statement may write an order and its lines (`WITH` clauses).
    FOR r IN SELECT * FROM saved_foreign_keys LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s DEFERRABLE INITIALLY DEFERRED', r.tbl, r.conname,
                       replace(replace(r.def, 'REFERENCES orders(id)', 'REFERENCES order_keys(order_id)'),
                               'REFERENCES payments(id)', 'REFERENCES payment_keys(payment_id)'));
    END LOOP;
    FOR r IN SELECT relname, def FROM saved_views ORDER BY oid LOOP
        EXECUTE format('CREATE VIEW %I AS %s', r.relname, r.def);
    END LOOP;
END;
$$;
DROP FUNCTION subsave_partition_table(TEXT, TEXT, TEXT, BIGINT);

-- The old tables' unique constraints keep their names as the legacy partitions' (`…_p0`); the
-- keys tables take the original names, so a refusal reads as it did.
ALTER TABLE order_keys ADD CONSTRAINT orders_one_per_cycle UNIQUE (subscription_id, cycle),
    ADD CONSTRAINT orders_order_number_key UNIQUE (order_number);
ALTER TABLE payment_keys ADD CONSTRAINT payments_order_id_key UNIQUE (order_id);

-- Outbox keys. A confirmation is written with its order, so a second one could only come with a
-- second order, which the order's key refuses: its key is written like the order's, per
-- statement. A reminder may be queued twice by two engines at once (each claim's NOT EXISTS ran
-- on its own snapshot), and the outbox's `INSERT ... ON CONFLICT DO NOTHING` keeps the first:
-- its key is written by a row-level BEFORE trigger that drops the second row the same way.
CREATE TABLE outbox_keys (
    outbox_id        BIGINT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('order_confirmation', 'renewal_reminder')),
    order_id         BIGINT,
    subscription_id  BIGINT,
    cycle            BIGINT,
    lead_days        BIGINT
);
INSERT INTO outbox_keys (outbox_id, kind, order_id, subscription_id, cycle, lead_days)
    SELECT id, kind, order_id, subscription_id, cycle, lead_days FROM outbox
    WHERE kind IN ('order_confirmation', 'renewal_reminder');
CREATE UNIQUE INDEX outbox_one_confirmation ON outbox_keys (order_id) WHERE kind = 'order_confirmation';
CREATE UNIQUE INDEX outbox_one_reminder ON outbox_keys (subscription_id, cycle, lead_days)
    WHERE kind = 'renewal_reminder';
CREATE FUNCTION subsave_confirmation_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_keys (outbox_id, kind, order_id)
        SELECT id, kind, order_id FROM inserted WHERE kind = 'order_confirmation';
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_confirmation_keys AFTER INSERT ON outbox REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION subsave_confirmation_keys();
CREATE FUNCTION subsave_reminder_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_keys (outbox_id, kind, subscription_id, cycle, lead_days)
        VALUES (NEW.id, NEW.kind, NEW.subscription_id, NEW.cycle, NEW.lead_days)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER outbox_reminder_key BEFORE INSERT ON outbox
    FOR EACH ROW WHEN (NEW.kind = 'renewal_reminder') EXECUTE FUNCTION subsave_reminder_key();

-- Keeps at least one empty partition ahead of each table's sequence; the daemon calls it every
-- purge round. Partitions are made apart and attached, which locks the parent only briefly
-- (SHARE UPDATE EXCLUSIVE). Rows that already went to the default partition stay there: the
-- next partition starts just above them. Returns how many partitions it made.
CREATE FUNCTION subsave_ensure_partitions() RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    plan RECORD;
    last BIGINT;
    stray BIGINT;
    lower BIGINT;
    part TEXT;
    made INTEGER := 0;
BEGIN
    FOR plan IN SELECT * FROM partition_plans ORDER BY table_name FOR UPDATE LOOP
        EXECUTE format('SELECT last_value FROM %I', plan.sequence_name) INTO last;
        lower := plan.upper_bound;
        WHILE lower - last < plan.rows_per_partition LOOP
            EXECUTE format('SELECT MAX(%I) FROM %I', plan.column_name, plan.table_name || '_default')
                INTO stray;
            IF stray >= lower THEN
                lower := stray + 1;
            END IF;
            part := plan.table_name || '_p' || lower;
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                           part, plan.table_name);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                           plan.table_name, part, lower, lower + plan.rows_per_partition);
            lower := lower + plan.rows_per_partition;
            made := made + 1;
        END LOOP;
        UPDATE partition_plans SET upper_bound = lower WHERE table_name = plan.table_name;
    END LOOP;
    RETURN made;
END;
$$;

-- Drops the outbox partitions whose every message is finished (not pending, not leased) and
-- was queued before `before`: retention by partition, without deleting rows one by one. Only
-- partitions every id of which has been handed out are considered; the outbox is locked while
-- a candidate is checked again and dropped, so no message can slip in. Returns the rows dropped.
CREATE FUNCTION subsave_drop_finished_outbox_partitions(before TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    part RECORD;
    last BIGINT;
    rows BIGINT;
    dropped BIGINT := 0;
    live CONSTANT TEXT := 'SELECT EXISTS (SELECT 1 FROM %I WHERE status = ''pending'' '
                          'OR lease_until IS NOT NULL OR created_at >= $1)';
    busy BOOLEAN;
BEGIN
    SELECT last_value INTO last FROM outbox_id_seq;
    FOR part IN SELECT c.relname,
                       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''?(-?[0-9]+)''?\)')::BIGINT AS upper
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'outbox'::regclass LOOP
        CONTINUE WHEN part.upper IS NULL OR part.upper > last + 1;
        -- Cheap first: the newest message (by id) queued since `before` keeps the partition;
        -- only one that looks past retention is read through.
        EXECUTE format('SELECT COALESCE((SELECT created_at >= $1 FROM %I ORDER BY id DESC LIMIT 1), false)',
                       part.relname) USING before INTO busy;
        CONTINUE WHEN busy;
        EXECUTE format(live, part.relname) USING before INTO busy;
        CONTINUE WHEN busy;
        LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE;
        EXECUTE format(live, part.relname) USING before INTO busy;
        CONTINUE WHEN busy;
        EXECUTE format('SELECT COUNT(*) FROM %I', part.relname) INTO rows;
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + rows;
    END LOOP;
    RETURN dropped;
END;
$$;
