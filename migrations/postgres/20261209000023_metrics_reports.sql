-- The console's overview reads a business-metrics report that takes tens of seconds to compute
-- on a large shop (every order is folded through the ledger). The last reports computed are
-- kept here, so that a daemon that starts (or a second replica) shows the last one at once
-- instead of computing it again, and says when it was computed. A report is derived data:
-- deleting a row only costs its recomputation.
CREATE TABLE metrics_reports (
    period_from  DATE NOT NULL,
    period_to    DATE NOT NULL CHECK (period_to >= period_from),
    computed_at  TIMESTAMPTZ NOT NULL,
    -- The report as the daemon serializes it (JSON); a daemon that cannot read it recomputes.
    report       TEXT NOT NULL,
    PRIMARY KEY (period_from, period_to)
);
CREATE INDEX metrics_reports_computed_at ON metrics_reports (computed_at);
