//! The overview's metrics, kept: `app::finance::metrics` reads the whole history (seconds on a
//! shop of a million subscriptions), so a report is kept `admin.overview_refresh_secs` and
//! the default period's (the last 6 months) is recomputed in the background that often
//! ([`refresh`]), so that the overview renders from a kept report. One report is computed at a
//! time; a person who asks for one being computed waits for it instead of computing it again.
//! The page says when its numbers were computed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::Console;
use crate::app::{App, AppError};
use crate::finance::MetricsReport;

/// Periods kept at most (the default one and a few a person looked at).
const KEPT_MAX: usize = 16;

/// A report and when it was computed.
#[derive(Clone)]
pub struct Kept {
    pub report: Arc<MetricsReport>,
    pub computed_at: DateTime<Utc>,
}

pub struct Reports {
    kept: Mutex<HashMap<(NaiveDate, NaiveDate), Kept>>,
    computing: tokio::sync::Mutex<()>,
    max_age: TimeDelta,
}

impl Reports {
    pub fn new(max_age_secs: u32) -> Reports {
        Reports {
            kept: Mutex::new(HashMap::new()),
            computing: tokio::sync::Mutex::new(()),
            max_age: TimeDelta::seconds(i64::from(max_age_secs)),
        }
    }

    fn fresh(&self, period: (NaiveDate, NaiveDate), now: DateTime<Utc>) -> Option<Kept> {
        self.lock()
            .get(&period)
            .filter(|k| now - k.computed_at <= self.max_age)
            .cloned()
    }

    /// The report of `from..=to`: a kept one younger than `admin.overview_refresh_secs`, or
    /// computed now.
    pub async fn get(&self, app: &App, from: NaiveDate, to: NaiveDate) -> Result<Kept, AppError> {
        if let Some(kept) = self.fresh((from, to), app.now()) {
            return Ok(kept);
        }
        let _one_at_a_time = self.computing.lock().await;
        // Computed while this waited?
        if let Some(kept) = self.fresh((from, to), app.now()) {
            return Ok(kept);
        }
        self.compute(app, from, to).await
    }

    /// Computes the report of `from..=to` and keeps it (the caller holds `computing`).
    async fn compute(&self, app: &App, from: NaiveDate, to: NaiveDate) -> Result<Kept, AppError> {
        let computed_at = app.now();
        let started = std::time::Instant::now();
        let report = Arc::new(crate::app::finance::metrics(app, from, to).await?);
        tracing::info!(
            %from,
            %to,
            ms = started.elapsed().as_millis() as u64,
            "console metrics computed"
        );
        let kept = Kept {
            report,
            computed_at,
        };
        let mut all = self.lock();
        if all.len() >= KEPT_MAX
            && let Some(oldest) = all
                .iter()
                .min_by_key(|(_, k)| k.computed_at)
                .map(|(period, _)| *period)
        {
            all.remove(&oldest);
        }
        all.insert((from, to), kept.clone());
        Ok(kept)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(NaiveDate, NaiveDate), Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Recomputes the default period's report now and then every half of
/// `admin.overview_refresh_secs` (so a kept one never expires before its successor is
/// ready), until `stop`; a failure is logged and tried again next time.
pub async fn refresh(console: Arc<Console>, stop: CancellationToken) {
    let every = std::time::Duration::from_secs(
        u64::from(console.app.settings().admin.overview_refresh_secs).div_ceil(2),
    );
    loop {
        let work = async {
            let (from, to) = super::pages::default_period(&console);
            let _one_at_a_time = console.reports.computing.lock().await;
            console.reports.compute(&console.app, from, to).await
        };
        tokio::select! {
            () = stop.cancelled() => return,
            done = work => if let Err(error) = done {
                tracing::warn!(%error, "console metrics could not be computed; trying again later");
            },
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
