//! The renewal engine: one sweep at a given instant.
//!
//! Owns the order of work in a sweep and its batching: first subscriptions whose pause has
//! ended are resumed, then due renewals are claimed in batches of `batch_size` and each batch
//! is planned ([`crate::core::renewal::plan`]) and written in one transaction by the store. Several
//! engines may sweep one PostgreSQL at once: claims skip locked rows and the unique
//! `(subscription_id, cycle)` key backs it up. Memory is bounded by the batch size; work is
//! proportional to what is due. The engine reads no clock: `now` is a parameter.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::ReminderSettings;
use crate::core::catalog::Catalog;
use crate::core::lifecycle::{change_with_notice, resumed};
use crate::core::model::{Actor, Change, Customer, MessageKind, ProviderKind, Subscription};
use crate::core::renewal::CatchUp;
use crate::core::schedule::DeliveryWindow;
use crate::core::{notices, reminders, renewal, webhooks};
use crate::store::Backend;
use crate::store::{BatchOutcome, Claim, PlanTally, Store, StoreError};

/// Batches in flight at once by default: two keep both the planner and the database busy.
const DEFAULT_WORKERS: usize = 2;

#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    catch_up: CatchUp,
    batch_size: u32,
    reminders: Option<ReminderSettings>,
    notices: Option<Notices>,
    webhooks: Vec<webhooks::Endpoint>,
    stop: Option<CancellationToken>,
    workers: usize,
    billing_tz: Tz,
    collection: ProviderKind,
}

/// When the customer notices are planned: the price check's lead time and the window they
/// are delivered in.
#[derive(Debug, Clone, Copy)]
pub struct Notices {
    pub price_change_days: u32,
    pub window: DeliveryWindow,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub resumed: usize,
    pub renewed: usize,
    pub reminders: usize,
    /// Annual and price-change notices queued.
    pub notices: usize,
    pub orders: usize,
    pub messages: usize,
    pub held: usize,
    pub missed: usize,
    pub batches: usize,
    /// Orders and amounts (minor units, per currency) per plan.
    pub by_plan: BTreeMap<String, PlanTally>,
    /// True when a stop was requested and batches were left for the next sweep.
    pub stopped_early: bool,
}

impl SweepReport {
    fn merge(&mut self, other: SweepReport) {
        self.resumed += other.resumed;
        self.renewed += other.renewed;
        self.reminders += other.reminders;
        self.notices += other.notices;
        self.orders += other.orders;
        self.messages += other.messages;
        self.held += other.held;
        self.missed += other.missed;
        self.batches += other.batches;
        for (plan, tally) in other.by_plan {
            self.by_plan.entry(plan).or_default().add(&tally);
        }
        self.stopped_early |= other.stopped_early;
    }
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        catch_up: CatchUp,
        batch_size: u32,
    ) -> Engine {
        Engine {
            store,
            catalog,
            catch_up,
            batch_size: batch_size.max(1),
            reminders: None,
            notices: None,
            webhooks: Vec::new(),
            stop: None,
            workers: DEFAULT_WORKERS,
            billing_tz: Tz::UTC,
            collection: ProviderKind::None,
        }
    }

    /// The engine `subsave run`, `tick` and the demo use: everything from the settings
    /// (catalog, catch-up, batches, reminders, notices, webhooks, billing time zone, who
    /// collects the orders).
    pub fn from_settings(store: Arc<dyn Store>, settings: &crate::config::Settings) -> Engine {
        Engine::new(
            store,
            Arc::new(settings.catalog.clone()),
            settings.engine.catch_up,
            settings.engine.batch_size,
        )
        .with_reminders(settings.reminders.clone())
        .with_notices(Notices {
            price_change_days: settings.notices.price_change_days,
            window: settings.reminders.window,
        })
        .with_webhooks(settings.webhooks.endpoints.clone())
        .with_workers(settings.engine.workers as usize)
        .with_billing_time_zone(settings.finance.time_zone)
        .with_collection(settings.payments.provider)
    }

    /// How many batches are in flight at once on PostgreSQL (SQLite always uses one).
    pub fn with_workers(mut self, workers: usize) -> Engine {
        self.workers = workers.max(1);
        self
    }

    /// Stop claiming new batches once `stop` is cancelled (the batch in hand commits).
    pub fn with_stop(mut self, stop: CancellationToken) -> Engine {
        self.stop = Some(stop);
        self
    }

    /// Also queue renewal reminders in each sweep (after renewals), per the settings.
    /// Books orders on their scheduled date in `tz` (`finance.time_zone`); UTC otherwise.
    pub fn with_billing_time_zone(mut self, tz: Tz) -> Engine {
        self.billing_tz = tz;
        self
    }

    /// Orders are charged by this provider (`payments.provider`); `None`: the storefront
    /// collects and orders are `external`.
    pub fn with_collection(mut self, provider: ProviderKind) -> Engine {
        self.collection = provider;
        self
    }

    pub fn with_reminders(mut self, reminders: ReminderSettings) -> Engine {
        self.reminders = Some(reminders);
        self
    }

    /// Tells these endpoints of the orders and subscription changes each sweep makes.
    pub fn with_webhooks(mut self, endpoints: Vec<webhooks::Endpoint>) -> Engine {
        self.webhooks = endpoints;
        self
    }

    /// Also plan the customer notices in each sweep (after reminders): price checks
    /// `price_change_days` before each renewal, and annual notices.
    pub fn with_notices(mut self, notices: Notices) -> Engine {
        self.notices = Some(notices);
        self
    }

    /// Runs one sweep at `now`: resumes ended pauses, then renews everything due.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let resume = |sub: &Subscription, customer: &Customer| {
            let mut change = auto_resume(sub, customer, now)?;
            webhooks::attach(&mut change, &self.webhooks, now);
            Some(change)
        };
        self.drain(Claim::EndedPauses, now, &resume, &mut report, |r, o| {
            r.resumed += o.changed
        })
        .await?;
        let renew = |sub: &Subscription, customer: &Customer| self.plan_renewal(sub, customer, now);
        // Several drains at once: while one batch's transaction waits on the database, the
        // next is planned. SKIP LOCKED keeps them apart; SQLite has one writer, so one drain.
        let workers = match self.store.backend() {
            Backend::Postgres => self.workers,
            Backend::Sqlite => 1,
        };
        let drains = (0..workers).map(|_| async {
            let mut part = SweepReport::default();
            self.drain(Claim::DueRenewals, now, &renew, &mut part, |r, o| {
                r.renewed += o.changed - o.held.min(o.changed);
            })
            .await
            .map(|()| part)
        });
        for part in futures_util::future::join_all(drains).await {
            report.merge(part?);
        }
        if let Some(settings) = &self.reminders {
            for &lead_days in &settings.lead_days {
                let remind = |sub: &Subscription, customer: &Customer| {
                    reminders::plan(
                        sub,
                        customer,
                        &self.catalog,
                        lead_days,
                        &settings.window,
                        now,
                    )
                };
                // Claim a day beyond the lead time: the window may move delivery a day later,
                // and a reminder queued early waits in the outbox for its delivery instant.
                let horizon = now + TimeDelta::days(i64::from(lead_days) + 1);
                self.drain_until(
                    Claim::Reminders {
                        lead_days,
                        after: None,
                    },
                    horizon,
                    now,
                    &remind,
                    &mut report,
                    |r, o| r.reminders += o.changed,
                )
                .await?;
            }
        }
        if let Some(notices) = self.notices {
            let check = |sub: &Subscription, customer: &Customer| {
                notices::price_check(sub, customer, &self.catalog, &notices.window, now)
            };
            let horizon = now + TimeDelta::days(i64::from(notices.price_change_days));
            self.drain_until(
                Claim::PriceChecks { after: None },
                horizon,
                now,
                &check,
                &mut report,
                |r, o| r.notices += o.messages,
            )
            .await?;
            let annual = |sub: &Subscription, customer: &Customer| {
                notices::annual(sub, customer, &self.catalog, &notices.window, now)
            };
            self.drain(Claim::AnnualNotices, now, &annual, &mut report, |r, o| {
                r.notices += o.messages
            })
            .await?;
        }
        Ok(report)
    }

    /// Processes batches of `claim` until a batch comes back short: the rows left are either
    /// none or held by another engine, which will finish them.
    async fn drain(
        &self,
        claim: Claim,
        now: DateTime<Utc>,
        planner: &(dyn Fn(&Subscription, &Customer) -> Option<Change> + Send + Sync),
        report: &mut SweepReport,
        count: impl Fn(&mut SweepReport, &BatchOutcome),
    ) -> Result<(), StoreError> {
        self.drain_until(claim, now, now, planner, report, count)
            .await
    }

    async fn drain_until(
        &self,
        claim: Claim,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        planner: &(dyn Fn(&Subscription, &Customer) -> Option<Change> + Send + Sync),
        report: &mut SweepReport,
        count: impl Fn(&mut SweepReport, &BatchOutcome),
    ) -> Result<(), StoreError> {
        let mut claim = claim;
        loop {
            if self
                .stop
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
            {
                report.stopped_early = true;
                return Ok(());
            }
            let outcome = self
                .store
                .process_batch(claim, until, now, self.batch_size, planner)
                .await?;
            report.batches += 1;
            report.orders += outcome.orders;
            report.messages += outcome.messages;
            report.held += outcome.held;
            report.missed += outcome.missed;
            for (plan, tally) in &outcome.by_plan {
                report.by_plan.entry(plan.clone()).or_default().add(tally);
            }
            count(report, &outcome);
            tracing::debug!(
                ?claim,
                claimed = outcome.claimed,
                orders = outcome.orders,
                "batch committed"
            );
            if (outcome.claimed as u64) < u64::from(self.batch_size) || outcome.changed == 0 {
                return Ok(());
            }
            // Reminder and price-check claims continue after the last row claimed (see
            // `Claim::Reminders`).
            if let Claim::Reminders { after, .. } | Claim::PriceChecks { after } = &mut claim {
                *after = outcome.last_key;
            }
        }
    }

    /// What a sweep at `now` would bill, without writing anything.
    pub async fn dry_run(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Change>, StoreError> {
        let due = self.store.due_preview(now, limit).await?;
        Ok(due
            .iter()
            .filter_map(|(sub, customer)| self.plan_renewal(sub, customer, now))
            .collect())
    }

    /// What a renewal of `sub` at `now` writes, its orders booked in the billing time zone.
    fn plan_renewal(
        &self,
        sub: &Subscription,
        customer: &Customer,
        now: DateTime<Utc>,
    ) -> Option<Change> {
        let mut change = renewal::plan(sub, customer, &self.catalog, self.catch_up, now)?;
        for order in &mut change.orders {
            order.billing_date = order
                .scheduled_for
                .with_timezone(&self.billing_tz)
                .date_naive();
            order.collection = self.collection;
        }
        webhooks::attach(&mut change, &self.webhooks, now);
        Some(change)
    }
}

/// A pause that ended at `paused_until`: active again from that instant; a renewal that falls
/// after it is billed normally (by the same sweep if it is already due).
fn auto_resume(sub: &Subscription, customer: &Customer, now: DateTime<Utc>) -> Option<Change> {
    let until = sub.paused_until?;
    let mut after = resumed(sub, until, true).ok()?;
    after.updated_at = now;
    Some(change_with_notice(
        sub,
        &after,
        customer,
        "auto_resume",
        MessageKind::Resumed,
        &Actor::engine(),
        serde_json::json!({ "paused_until": until }),
    ))
}

/// Subscriptions (active or paused) whose plan is not in the catalog, as one error that names
/// them, so a deploy that dropped a plan fails at start instead of mid-sweep.
/// Why [`check_plans`] refused: the database could not be read, or the catalog lacks plans
/// that subscriptions use (a configuration error: nothing may be billed until it is fixed).
#[derive(Debug, thiserror::Error)]
pub enum PlanCheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Missing(String),
}

pub async fn check_plans(store: &dyn Store, catalog: &Catalog) -> Result<(), PlanCheckError> {
    const SHOWN: u32 = 20;
    let in_use = store.plans_in_use().await?;
    let mut missing = Vec::new();
    for (plan, count) in in_use {
        if catalog.plan(&plan).is_some() {
            continue;
        }
        let ids = store.subscriptions_on_plan(&plan, SHOWN).await?;
        let shown: Vec<String> = ids.iter().map(i64::to_string).collect();
        let more = match count.saturating_sub(ids.len() as u64) {
            0 => String::new(),
            rest => format!(" and {rest} more"),
        };
        missing.push(format!(
            "plan \"{plan}\" (subscriptions {}{more})",
            shown.join(", ")
        ));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PlanCheckError::Missing(format!(
            "the catalog lacks plans that subscriptions use: {}; add them back to the catalog or change those subscriptions' plans (catalog plans: {})",
            missing.join("; "),
            catalog.plan_ids()
        )))
    }
}
