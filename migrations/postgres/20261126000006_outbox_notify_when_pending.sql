-- Wake mailers only for mail they can send: new rows, and rows put back to pending (an
-- operator's retry). Recording an outcome (sent, failed, a later retry) no longer notifies:
-- it woke every mailer for nothing, and each NOTIFY serialises its commit on the notify queue.
DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION subsave_outbox_notify();
CREATE TRIGGER outbox_notify_pending AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION subsave_outbox_notify();
