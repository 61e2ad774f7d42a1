//! The overview's metrics, kept: `app::finance::metrics` reads the whole history (tens of
//! seconds on a shop of a million subscriptions), so a request never computes a report
//! itself. Reports are computed in the background, one at a time, and kept
//! `admin.overview_refresh_secs`; the default period's (the last 6 months) is recomputed that
//! often from the start ([`refresh`]). A request gets the kept report (an expired one is
//! shown while its successor is computed), or waits up to [`WAIT`] for a report being
//! computed, or hears that it is being computed (the page reloads itself). The page says when
//! its numbers were computed.
//!
//! Every computed report is also kept in the database (the store's `metrics_reports`, the
//! [`KEPT_MAX`] latest): a console that starts, or another replica's, shows the last one at
//! once, and computes again only once it has expired. A kept report this build cannot read
//! is computed again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use tokio::sync::Notify;

use super::Console;
use crate::app::AppError;
use crate::finance::MetricsReport;

/// Periods kept at most, in memory and in the database (the default one and a few a person
/// looked at).
const KEPT_MAX: usize = 16;

/// How long a request waits for a report being computed (under `http.request_timeout_secs`'
/// default of 10 s).
pub const WAIT: Duration = Duration::from_secs(5);

type Period = (NaiveDate, NaiveDate);

/// A report and when it was computed.
#[derive(Clone)]
pub struct Kept {
    pub report: Arc<MetricsReport>,
    pub computed_at: DateTime<Utc>,
}

/// What a request finds.
pub enum Found {
    Ready(Kept),
    /// Being computed: ask again shortly.
    Computing,
}

#[derive(Default)]
struct State {
    kept: HashMap<Period, Kept>,
    /// Periods being computed or waiting to be.
    pending: HashSet<Period>,
    /// The last failure of a period's computation, until it is tried again.
    failed: HashMap<Period, String>,
}

pub struct Reports {
    state: Mutex<State>,
    /// One computation at a time (each reads the whole history).
    computing: tokio::sync::Mutex<()>,
    /// Woken when a computation ends.
    done: Notify,
    max_age: TimeDelta,
}

impl Reports {
    pub fn new(max_age_secs: u32) -> Reports {
        Reports {
            state: Mutex::new(State::default()),
            computing: tokio::sync::Mutex::new(()),
            done: Notify::new(),
            max_age: TimeDelta::seconds(i64::from(max_age_secs)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The report of `from..=to` for a request: kept (an expired one while its successor is
/// computed), or computed within [`WAIT`], or [`Found::Computing`]. A failed computation is
/// the request's failure (and is tried again at the next request).
pub async fn get(
    console: &Arc<Console>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Found, AppError> {
    let period = (from, to);
    let reports = &console.reports;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Registered before looking, so that an end in between is not missed.
        let done = reports.done.notified();
        {
            let mut state = reports.lock();
            if let Some(kept) = state.kept.get(&period).cloned() {
                if console.app.now() - kept.computed_at > reports.max_age {
                    start(console, period, &mut state);
                }
                return Ok(Found::Ready(kept));
            }
            if !state.pending.contains(&period) {
                if let Some(error) = state.failed.remove(&period) {
                    return Err(AppError::Unavailable(error));
                }
                start(console, period, &mut state);
            }
        }
        if tokio::time::timeout_at(deadline, done).await.is_err() {
            return Ok(Found::Computing);
        }
    }
}

/// Starts finding `period`'s report in the background (kept in the database, or computed)
/// unless it is already pending.
fn start(console: &Arc<Console>, period: Period, state: &mut State) {
    if state.pending.insert(period) {
        let console = console.clone();
        tokio::spawn(async move {
            compute(&console, period).await;
        });
    }
}

/// Finds `period`'s report and keeps it, or its failure: the one the database keeps, when it
/// is younger than half its life (so that it does not expire before [`refresh`] comes
/// again); otherwise computed (after any computation under way; an older one from the
/// database is shown meanwhile) and written to the database.
async fn compute(console: &Console, period: Period) {
    let reports = &console.reports;
    if let Some(kept) = load(console, period).await {
        let fresh = console.app.now() - kept.computed_at < reports.max_age / 2;
        let mut state = reports.lock();
        keep(&mut state, period, kept);
        if fresh {
            state.pending.remove(&period);
        }
        drop(state);
        reports.done.notify_waiters();
        if fresh {
            return;
        }
    }
    let (from, to) = period;
    let one_at_a_time = reports.computing.lock().await;
    let computed_at = console.app.now();
    let started = std::time::Instant::now();
    let computed = crate::app::finance::metrics(&console.app, from, to).await;
    drop(one_at_a_time);
    if let Ok(report) = &computed {
        save(console, computed_at, report).await;
    }
    let mut state = reports.lock();
    state.pending.remove(&period);
    match computed {
        Ok(report) => {
            tracing::info!(
                %from,
                %to,
                ms = started.elapsed().as_millis() as u64,
                "console metrics computed"
            );
            let report = Arc::new(report);
            keep(
                &mut state,
                period,
                Kept {
                    report,
                    computed_at,
                },
            );
        }
        Err(error) => {
            tracing::warn!(%error, %from, %to, "console metrics could not be computed");
            state.failed.insert(period, error.to_string());
        }
    }
    drop(state);
    reports.done.notify_waiters();
}

/// Keeps `kept` as `period`'s report in memory, unless a later one is kept already; forgets
/// the oldest report beyond [`KEPT_MAX`].
fn keep(state: &mut State, period: Period, kept: Kept) {
    if state
        .kept
        .get(&period)
        .is_some_and(|k| k.computed_at >= kept.computed_at)
    {
        return;
    }
    if !state.kept.contains_key(&period)
        && state.kept.len() >= KEPT_MAX
        && let Some(oldest) = state
            .kept
            .iter()
            .min_by_key(|(_, k)| k.computed_at)
            .map(|(period, _)| *period)
    {
        state.kept.remove(&oldest);
    }
    state.kept.insert(period, kept);
}

/// The report the database keeps for `period`, if any that this build can read. A failure
/// to read it is logged and treated as none (the report is computed instead).
async fn load(console: &Console, (from, to): Period) -> Option<Kept> {
    match crate::app::finance::kept_metrics(&console.app, from, to).await {
        Ok(found) => found.map(|(computed_at, report)| Kept {
            report: Arc::new(report),
            computed_at,
        }),
        Err(error) => {
            tracing::warn!(%error, %from, %to, "the kept console metrics could not be read");
            None
        }
    }
}

/// Writes a computed report to the database for the next console; a failure only costs
/// that console a computation, so it is logged and not returned.
async fn save(console: &Console, computed_at: DateTime<Utc>, report: &MetricsReport) {
    let kept_max = u32::try_from(KEPT_MAX).unwrap_or(u32::MAX);
    if let Err(error) =
        crate::app::finance::keep_metrics(&console.app, computed_at, report, kept_max).await
    {
        let (from, to) = (report.from, report.to);
        tracing::warn!(%error, %from, %to, "console metrics could not be kept in the database");
    }
}

/// How often the default period's report is to be found again ([`refresh`]): every half of
/// `admin.overview_refresh_secs`, so that a kept one never expires before its successor is
/// ready.
pub fn refresh_every(console: &Console) -> Duration {
    Duration::from_secs(u64::from(console.app.settings().admin.overview_refresh_secs).div_ceil(2))
}

/// Finds the default period's report once (kept in the database, or computed), unless a
/// request started it already. The daemon calls it from the start and then every
/// [`refresh_every`] (`daemon::overview_refresher`).
pub async fn refresh(console: &Console) {
    let period = super::pages::default_period(console);
    let started_here = console.reports.lock().pending.insert(period);
    if started_here {
        compute(console, period).await;
    }
}
