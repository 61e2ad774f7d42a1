//! Finance's use cases: revenue between billing dates, the business metrics, the coming
//! weeks' renewals and pack demand, and the ledger audit. The sums themselves are `crate::finance`'s.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{App, AppError};
use crate::finance::{self, Finding, MetricsReport, RevenueBy, RevenueTotals, WeekForecast};

/// Offending keys named per audit check.
const AUDIT_OFFENDERS: u32 = 100;

/// Revenue billed in `from..=to`, grouped, per currency: (group, currency) → totals.
pub async fn revenue(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
    by: RevenueBy,
) -> Result<BTreeMap<(String, String), RevenueTotals>, AppError> {
    Ok(finance::revenue(app.store().as_ref(), from, to, by).await?)
}

/// The business metrics of `from..=to` (docs/finance.md, "Business metrics"), months in the
/// shop's finance time zone, with the units forecast from now.
pub async fn metrics(app: &App, from: NaiveDate, to: NaiveDate) -> Result<MetricsReport, AppError> {
    super::orders::check_range(from, to)?;
    let settings = app.settings();
    Ok(finance::metrics(
        app.store().as_ref(),
        &settings.catalog,
        settings.engine.catch_up,
        settings.finance.time_zone,
        app.now(),
        from,
        to,
    )
    .await?)
}

/// The metrics report of `from..=to` kept by [`keep_metrics`], and when it was computed;
/// `None` if none is kept, or if the one kept has a shape this build cannot read (a report
/// is derived data: it is computed again).
pub async fn kept_metrics(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<(DateTime<Utc>, MetricsReport)>, AppError> {
    let Some((computed_at, text)) = app.store().kept_metrics_report(from, to).await? else {
        return Ok(None);
    };
    match serde_json::from_str::<MetricsReport>(&text) {
        Ok(report) => Ok(Some((computed_at, report))),
        Err(error) => {
            tracing::info!(%error, %from, %to, "a kept metrics report is computed again");
            Ok(None)
        }
    }
}

/// Keeps `report`, computed at `computed_at`, as `from..=to`'s (see [`kept_metrics`]), with
/// the `kept_max` most recent others.
pub async fn keep_metrics(
    app: &App,
    computed_at: DateTime<Utc>,
    report: &MetricsReport,
    kept_max: u32,
) -> Result<(), AppError> {
    let text = serde_json::to_string(report)
        .map_err(|e| AppError::Unavailable(format!("the metrics report cannot be written: {e}")))?;
    app.store()
        .keep_metrics_report(report.from, report.to, computed_at, &text, kept_max)
        .await?;
    Ok(())
}

/// The double-entry journal of `from..=to` into `sink` (see `finance::journal`), with the
/// configured chart of accounts; returns the number of lines.
pub async fn journal(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut (dyn FnMut(finance::JournalLine) -> std::io::Result<()> + Send),
) -> Result<u64, AppError> {
    super::orders::check_range(from, to)?;
    let settings = app.settings();
    Ok(finance::journal(
        app.store().as_ref(),
        &settings.finance.accounts,
        settings.finance.time_zone,
        from,
        to,
        sink,
    )
    .await?)
}

/// The credit notes booked in `from..=to`, by billing date and number.
pub async fn credit_notes(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<crate::store::FinanceCreditNote>, AppError> {
    super::orders::check_range(from, to)?;
    Ok(app.store().credit_note_rows(from, to).await?)
}

/// The payments reconciliation by billing date in `from..=to` (see `PaymentDay`).
pub async fn payments(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<crate::store::PaymentDay>, AppError> {
    super::orders::check_range(from, to)?;
    Ok(app.store().payment_days(from, to).await?)
}

/// The renewals the engine will bill in the next `days` days, week by week.
pub async fn upcoming(app: &App, days: u32) -> Result<Vec<WeekForecast>, AppError> {
    let settings = app.settings();
    Ok(finance::forecast(
        app.store().as_ref(),
        &settings.catalog,
        settings.engine.catch_up,
        app.now(),
        days,
    )
    .await?)
}

/// The ledger's broken invariants; empty when it is sound. Confirmations are checked as far
/// back as the outbox keeps them.
pub async fn audit(app: &App) -> Result<Vec<Finding>, AppError> {
    let since = app.settings().outbox.cutoff(app.now());
    Ok(finance::audit(app.store().as_ref(), app.catalog(), AUDIT_OFFENDERS, since).await?)
}

/// How the queues stand: the same reads as the `/metrics` gauges, and the latest failures with
/// their reasons.
#[derive(Debug, Clone)]
pub struct Health {
    /// Messages waiting to be sent, and the oldest one due.
    pub mail_pending: i64,
    pub mail_oldest: Option<chrono::DateTime<chrono::Utc>>,
    /// Payments due for a charge, and the longest due.
    pub payments_due: i64,
    pub payments_oldest: Option<chrono::DateTime<chrono::Utc>>,
    /// Failed messages and payments, oldest first (a page: `has_more` says more follow).
    pub failed_messages: super::Page<super::views::MessageView>,
    pub failed_payments: super::Page<super::views::PaymentView>,
}

/// The queues' health: `shown` failures of each kind at most.
pub async fn health(app: &App, shown: u32) -> Result<Health, AppError> {
    let now = app.now();
    let (mail_pending, mail_oldest) = app.store().outbox_backlog(now).await?;
    let (payments_due, payments_oldest) = app.store().payment_backlog(now).await?;
    let failed_messages = super::outbox::list(
        app,
        &super::outbox::MessageQuery {
            status: Some(crate::core::model::MessageStatus::Failed),
            ..Default::default()
        },
        super::PageRequest::first(shown),
    )
    .await?;
    let failed_payments = super::payments::list(
        app,
        &super::payments::PaymentQuery {
            status: Some(crate::core::model::PaymentStatus::Failed),
            subscription_id: None,
        },
        super::PageRequest::first(shown),
    )
    .await?;
    Ok(Health {
        mail_pending,
        mail_oldest,
        payments_due,
        payments_oldest,
        failed_messages,
        failed_payments,
    })
}
