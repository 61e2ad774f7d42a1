//! The renewal engine's use cases for operators: one sweep at the clock's "now" (`tick`), or
//! what that sweep would bill without writing anything (`tick --dry-run`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::Instrument;

use super::{App, AppError};
use crate::core::money::Money;
use crate::engine::{Engine, PlanCheckError, SweepReport, check_plans};

/// The most renewals a dry run lists.
const DRY_RUN_LIMIT: u32 = 10_000;

/// An order a sweep would write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOrder {
    pub subscription_id: i64,
    pub order_number: String,
    pub cycle: u32,
    pub plan: String,
    pub total: Money,
    pub scheduled_for: DateTime<Utc>,
}

/// The engine as the settings describe it, after checking that every plan in use is still
/// in the catalog (a deploy that dropped one is refused before anything is billed).
async fn engine(app: &App) -> Result<Engine, AppError> {
    let settings = app.settings();
    check_plans(app.store().as_ref(), &settings.catalog)
        .await
        .map_err(|error| match error {
            PlanCheckError::Store(e) => AppError::Store(e),
            PlanCheckError::Missing(m) => AppError::InvalidState(m),
        })?;
    Ok(Engine::from_settings(app.store().clone(), settings))
}

/// One sweep: resume ended pauses, bill every due renewal, queue reminders.
pub async fn sweep(app: &App) -> Result<SweepReport, AppError> {
    let engine = engine(app).await?;
    let now = app.now();
    let span = tracing::info_span!(
        "sweep",
        now = %now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let started = std::time::Instant::now();
    let report = engine.sweep(now).instrument(span).await?;
    tracing::info!(
        orders = report.orders,
        resumed = report.resumed,
        held = report.held,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep finished"
    );
    Ok(report)
}

/// The orders a sweep now would write; nothing is changed.
pub async fn dry_run(app: &App) -> Result<Vec<PlannedOrder>, AppError> {
    let engine = engine(app).await?;
    let changes = engine.dry_run(app.now(), DRY_RUN_LIMIT).await?;
    Ok(changes
        .iter()
        .flat_map(|c| &c.orders)
        .map(|o| PlannedOrder {
            subscription_id: o.subscription_id,
            order_number: o.order_number.clone(),
            cycle: o.cycle,
            plan: o.plan.to_string(),
            total: o.total,
            scheduled_for: o.scheduled_for,
        })
        .collect())
}
