-- Wake mailers when outbox rows commit: NOTIFY is delivered at commit, never for a rollback.
CREATE FUNCTION subsave_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('subsave_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT OR UPDATE OF status, next_attempt_at ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION subsave_outbox_notify();
