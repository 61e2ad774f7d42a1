-- attempts now counts sends (recorded with their outcome); claims counts leases taken, so a
-- mailer that crashed holding a message no longer uses up its attempts.
ALTER TABLE outbox ADD COLUMN claims BIGINT NOT NULL DEFAULT 0 CHECK (claims >= 0);
UPDATE outbox SET claims = attempts;
