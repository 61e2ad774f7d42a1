//! The daemon's Prometheus metrics: what the engine, the payment worker and the mailer did
//! (counters, by plan, kind and outcome), how long sweeps take, and gauges read from the database at scrape time
//! (outbox backlog and its oldest message's age, due renewals). Names are prefixed `subsave_`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::model::MessageKind;
use crate::engine::SweepReport;
use crate::mail::mailer::DeliveryReport;
use crate::payments::CollectReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanOutcome {
    plan: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Plan {
    plan: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

/// The outcomes a payment collection counts.
const PAYMENT_OUTCOMES: [&str; 5] = [
    "paid",
    "declined",
    "requires_action",
    "postponed",
    "unchanged",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindOutcome {
    kind: String,
    outcome: String,
}

pub struct Metrics {
    registry: Registry,
    renewals: Family<PlanOutcome, Counter>,
    orders: Family<Plan, Counter>,
    order_amount_minor: Family<Plan, Counter>,
    emails: Family<KindOutcome, Counter>,
    missed_cycles: Counter,
    held: Counter,
    sweep_seconds: Histogram,
    last_successful_sweep: Gauge<f64, AtomicU64>,
    outbox_pending: Gauge,
    outbox_oldest_pending_seconds: Gauge<f64, AtomicU64>,
    due_backlog: Gauge,
    database_errors: Counter,
    smtp_errors: Counter,
    outbox_purged: Counter,
    payments: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("subsave");
        let metrics = Metrics {
            renewals: Family::default(),
            orders: Family::default(),
            order_amount_minor: Family::default(),
            emails: Family::default(),
            missed_cycles: Counter::default(),
            held: Counter::default(),
            sweep_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            last_successful_sweep: Gauge::default(),
            outbox_pending: Gauge::default(),
            outbox_oldest_pending_seconds: Gauge::default(),
            due_backlog: Gauge::default(),
            database_errors: Counter::default(),
            smtp_errors: Counter::default(),
            outbox_purged: Counter::default(),
            payments: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "renewals",
            "Subscriptions renewed by the engine, by plan and outcome (billed)",
            metrics.renewals.clone(),
        );
        registry.register("orders", "Orders written, by plan", metrics.orders.clone());
        registry.register(
            "order_amount_minor",
            "Order totals written, in minor units of the catalog currency, by plan",
            metrics.order_amount_minor.clone(),
        );
        registry.register(
            "emails",
            "Outbox deliveries by message kind and outcome (sent, retried, failed, suppressed)",
            metrics.emails.clone(),
        );
        registry.register(
            "missed_cycles",
            "Overdue cycles recorded as missed by catch-up",
            metrics.missed_cycles.clone(),
        );
        registry.register(
            "held_subscriptions",
            "Subscriptions put on hold because they could not be priced",
            metrics.held.clone(),
        );
        registry.register(
            "sweep_duration_seconds",
            "Duration of renewal sweeps",
            metrics.sweep_seconds.clone(),
        );
        registry.register(
            "last_successful_sweep_timestamp_seconds",
            "Unix time of the last sweep that completed",
            metrics.last_successful_sweep.clone(),
        );
        registry.register(
            "outbox_pending",
            "Outbox messages waiting to be delivered",
            metrics.outbox_pending.clone(),
        );
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox message that is due",
            metrics.outbox_oldest_pending_seconds.clone(),
        );
        registry.register(
            "due_backlog",
            "Active subscriptions whose renewal is due now and not yet billed",
            metrics.due_backlog.clone(),
        );
        registry.register(
            "database_errors",
            "Database operations that failed (the daemon retries)",
            metrics.database_errors.clone(),
        );
        registry.register(
            "smtp_errors",
            "Deliveries that failed transiently (connection, timeout, 4xx)",
            metrics.smtp_errors.clone(),
        );
        registry.register(
            "outbox_purged",
            "Finished outbox messages deleted after outbox.retain_days",
            metrics.outbox_purged.clone(),
        );
        registry.register(
            "payments",
            "Payments the payment worker handled, by outcome (paid, declined, requires_action, postponed: the provider could not be reached, unchanged)",
            metrics.payments.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Every counter with its known labels at 0, and the last-sweep time at `started_unix`
    /// (the process's start): an alert on `increase(...)` sees the first failure, and one on
    /// the sweep's age does not fire before the first sweep had a chance.
    pub fn start(&self, plans: &[&str], started_unix: f64) {
        for plan in plans {
            let plan = (*plan).to_owned();
            self.renewals
                .get_or_create(&PlanOutcome {
                    plan: plan.clone(),
                    outcome: "billed".into(),
                })
                .inc_by(0);
            self.orders
                .get_or_create(&Plan { plan: plan.clone() })
                .inc_by(0);
            self.order_amount_minor
                .get_or_create(&Plan { plan })
                .inc_by(0);
        }
        for kind in MessageKind::ALL {
            for outcome in ["sent", "retried", "failed", "suppressed", "released"] {
                self.emails
                    .get_or_create(&KindOutcome {
                        kind: kind.as_str().to_owned(),
                        outcome: outcome.to_owned(),
                    })
                    .inc_by(0);
            }
        }
        for outcome in PAYMENT_OUTCOMES {
            self.payments
                .get_or_create(&Outcome {
                    outcome: outcome.to_owned(),
                })
                .inc_by(0);
        }
        self.last_successful_sweep.set(started_unix);
    }

    pub fn record_collection(&self, report: &CollectReport) {
        let counts = [
            report.paid,
            report.declined,
            report.requires_action,
            report.postponed,
            report.unchanged,
        ];
        for (outcome, count) in PAYMENT_OUTCOMES.iter().zip(counts) {
            self.payments
                .get_or_create(&Outcome {
                    outcome: (*outcome).to_owned(),
                })
                .inc_by(count as u64);
        }
    }

    pub fn record_purge(&self, deleted: u64) {
        self.outbox_purged.inc_by(deleted);
    }

    pub fn record_sweep(&self, report: &SweepReport, seconds: f64, finished_unix: f64) {
        for (plan, tally) in &report.by_plan {
            let plan_label = Plan { plan: plan.clone() };
            self.renewals
                .get_or_create(&PlanOutcome {
                    plan: plan.clone(),
                    outcome: "billed".into(),
                })
                .inc_by(tally.orders as u64);
            self.orders
                .get_or_create(&plan_label)
                .inc_by(tally.orders as u64);
            self.order_amount_minor
                .get_or_create(&plan_label)
                .inc_by(u64::try_from(tally.amount_minor).unwrap_or(0));
        }
        self.missed_cycles.inc_by(report.missed as u64);
        self.held.inc_by(report.held as u64);
        self.sweep_seconds.observe(seconds);
        self.last_successful_sweep.set(finished_unix);
    }

    pub fn record_delivery(&self, report: &DeliveryReport) {
        for (kind, outcomes) in &report.by_kind {
            for (outcome, count) in outcomes {
                self.emails
                    .get_or_create(&KindOutcome {
                        kind: kind.clone(),
                        outcome: (*outcome).to_owned(),
                    })
                    .inc_by(*count as u64);
            }
        }
        self.smtp_errors.inc_by(report.retried as u64);
    }

    pub fn database_error(&self) {
        self.database_errors.inc();
    }

    /// Gauges read from the database at scrape time.
    pub fn set_backlog(&self, outbox_pending: i64, oldest_pending_age_seconds: f64, due: i64) {
        self.outbox_pending.set(outbox_pending);
        self.outbox_oldest_pending_seconds
            .set(oldest_pending_age_seconds);
        self.due_backlog.set(due);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
