//! The daemon's Prometheus metrics: what the engine, the payment worker and the mailer did
//! (counters, by plan, kind and outcome), how long sweeps take, and gauges read from the database at scrape time
//! (outbox backlog and its oldest message's age, due renewals, due payments and the oldest's
//! age, readiness as `/readyz` answers). Names are prefixed `subsave_`.

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

/// The outcomes of a delivery from the outbox (an email or a webhook).
const DELIVERY_OUTCOMES: [&str; 5] = ["sent", "retried", "failed", "suppressed", "released"];

/// The outcomes a payment collection counts.
const PAYMENT_OUTCOMES: [&str; 5] = [
    "paid",
    "declined",
    "requires_action",
    "postponed",
    "unchanged",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanCurrency {
    plan: String,
    currency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindOutcome {
    kind: String,
    outcome: String,
}

pub struct Metrics {
    registry: Registry,
    renewals: Family<PlanOutcome, Counter>,
    orders: Family<Plan, Counter>,
    order_amount_minor: Family<PlanCurrency, Counter>,
    emails: Family<KindOutcome, Counter>,
    webhooks: Family<Outcome, Counter>,
    missed_cycles: Counter,
    held: Counter,
    sweep_seconds: Histogram,
    last_successful_sweep: Gauge<f64, AtomicU64>,
    outbox_pending: Gauge,
    outbox_oldest_pending_seconds: Gauge<f64, AtomicU64>,
    due_backlog: Gauge,
    payments_due: Gauge,
    payments_oldest_due_seconds: Gauge<f64, AtomicU64>,
    ready: Gauge,
    unfulfilled_orders: Gauge,
    oldest_unfulfilled_order_seconds: Gauge<f64, AtomicU64>,
    database_errors: Counter,
    smtp_errors: Counter,
    outbox_purged: Counter,
    payments: Family<Outcome, Counter>,
    replica_lag_bytes: Gauge,
    replica_lag_seconds: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered with its help text: long as a table is (one entry per metric),
    /// not as logic.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("subsave");
        let metrics = Metrics {
            renewals: Family::default(),
            orders: Family::default(),
            order_amount_minor: Family::default(),
            emails: Family::default(),
            webhooks: Family::default(),
            missed_cycles: Counter::default(),
            held: Counter::default(),
            sweep_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            last_successful_sweep: Gauge::default(),
            outbox_pending: Gauge::default(),
            outbox_oldest_pending_seconds: Gauge::default(),
            due_backlog: Gauge::default(),
            payments_due: Gauge::default(),
            payments_oldest_due_seconds: Gauge::default(),
            ready: Gauge::default(),
            unfulfilled_orders: Gauge::default(),
            oldest_unfulfilled_order_seconds: Gauge::default(),
            database_errors: Counter::default(),
            smtp_errors: Counter::default(),
            outbox_purged: Counter::default(),
            payments: Family::default(),
            replica_lag_bytes: Gauge::default(),
            replica_lag_seconds: Gauge::default(),
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
            "Order totals written, in minor units of their currency, by plan and currency (never add currencies together)",
            metrics.order_amount_minor.clone(),
        );
        registry.register(
            "emails",
            "Emails delivered from the outbox, by message kind and outcome (sent, retried, failed, suppressed, released)",
            metrics.emails.clone(),
        );
        registry.register(
            "webhooks",
            "Webhook deliveries from the outbox to the storefront's endpoints, by outcome (sent, retried, failed, released)",
            metrics.webhooks.clone(),
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
            "payments_due",
            "Payments due for a charge now (a first try, or a retry after a decline) of active subscriptions",
            metrics.payments_due.clone(),
        );
        registry.register(
            "payments_oldest_due_age_seconds",
            "How long the longest-waiting due payment has been due",
            metrics.payments_oldest_due_seconds.clone(),
        );
        registry.register(
            "ready",
            "1 when /readyz answers 200 (the database answers and its migrations are current), else 0",
            metrics.ready.clone(),
        );
        registry.register(
            "unfulfilled_orders",
            "Orders billed and not shipped yet",
            metrics.unfulfilled_orders.clone(),
        );
        registry.register(
            "unfulfilled_oldest_age_seconds",
            "How long ago the oldest order not shipped yet was billed (0 when none waits)",
            metrics.oldest_unfulfilled_order_seconds.clone(),
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
        registry.register(
            "replica_lag_bytes",
            "WAL the read replica (database.read_url) has not replayed yet; 0 without a replica",
            metrics.replica_lag_bytes.clone(),
        );
        registry.register(
            "replica_lag_seconds",
            "Age of the read replica's last replayed transaction while it is behind; 0 when caught up or without a replica",
            metrics.replica_lag_seconds.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Every counter with its known labels at 0, and the last-sweep time at `started_unix`
    /// (the process's start): an alert on `increase(...)` sees the first failure, and one on
    /// the sweep's age does not fire before the first sweep had a chance.
    pub fn start(&self, plans: &[&str], currencies: &[&str], started_unix: f64) {
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
            for currency in currencies {
                self.order_amount_minor
                    .get_or_create(&PlanCurrency {
                        plan: plan.clone(),
                        currency: (*currency).to_owned(),
                    })
                    .inc_by(0);
            }
        }
        for outcome in DELIVERY_OUTCOMES {
            self.webhooks
                .get_or_create(&Outcome {
                    outcome: outcome.to_owned(),
                })
                .inc_by(0);
        }
        for kind in MessageKind::ALL
            .into_iter()
            .filter(|k| *k != MessageKind::Webhook)
        {
            for outcome in DELIVERY_OUTCOMES {
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
            for (currency, minor) in &tally.amount_minor {
                self.order_amount_minor
                    .get_or_create(&PlanCurrency {
                        plan: plan.clone(),
                        currency: currency.clone(),
                    })
                    .inc_by(u64::try_from(*minor).unwrap_or(0));
            }
        }
        self.missed_cycles.inc_by(report.missed as u64);
        self.held.inc_by(report.held as u64);
        self.sweep_seconds.observe(seconds);
        self.last_successful_sweep.set(finished_unix);
    }

    pub fn record_delivery(&self, report: &DeliveryReport) {
        for (kind, outcomes) in &report.by_kind {
            for (outcome, count) in outcomes {
                if kind == MessageKind::Webhook.as_str() {
                    self.webhooks
                        .get_or_create(&Outcome {
                            outcome: (*outcome).to_owned(),
                        })
                        .inc_by(*count as u64);
                    continue;
                }
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

    /// The payment gauges read from the database at scrape time.
    pub fn set_payment_backlog(&self, due: i64, oldest_due_age_seconds: f64) {
        self.payments_due.set(due);
        self.payments_oldest_due_seconds.set(oldest_due_age_seconds);
    }

    /// Whether `/readyz` would answer 200 now.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The read replica's lag, read at scrape time.
    pub fn set_replica_lag(&self, lag: &crate::store::ReplicaLag) {
        self.replica_lag_bytes.set(lag.bytes);
        self.replica_lag_seconds.set(lag.seconds);
    }

    /// The fulfillment gauges, read from the database at scrape time.
    pub fn set_unfulfilled(&self, orders: i64, oldest_age_seconds: f64) {
        self.unfulfilled_orders.set(orders);
        self.oldest_unfulfilled_order_seconds
            .set(oldest_age_seconds);
    }

    /// The OpenMetrics exposition (served with [`OPENMETRICS_CONTENT_TYPE`]).
    pub fn encode_openmetrics(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The Prometheus text format 0.0.4 (served with [`TEXT_CONTENT_TYPE`]), for scrapers and
    /// tools that do not ask for OpenMetrics.
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode_openmetrics())
    }
}

/// The content type of [`Metrics::encode_openmetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`Metrics::encode_text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The same families in the Prometheus text format: there a counter's HELP and TYPE name its
/// samples (`x_total`), where OpenMetrics names the family (`x`); `# UNIT` and `# EOF` are
/// OpenMetrics only.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => text.push_str(&line),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_counters_by_their_samples() {
        let metrics = Metrics::new();
        metrics.start(&["1-pack"], &["USD", "EUR"], 0.0);
        let openmetrics = metrics.encode_openmetrics();
        assert!(openmetrics.contains("# TYPE subsave_orders counter"));
        assert!(openmetrics.ends_with("# EOF\n"));
        let text = metrics.encode_text();
        assert!(text.contains("# HELP subsave_orders_total Orders written, by plan.\n"));
        assert!(text.contains("# TYPE subsave_orders_total counter\n"));
        assert!(text.contains("subsave_orders_total{plan=\"1-pack\"} 0\n"));
        for currency in ["USD", "EUR"] {
            assert!(text.contains(&format!(
                "subsave_order_amount_minor_total{{plan=\"1-pack\",currency=\"{currency}\"}} 0\n"
            )));
        }
        assert!(text.contains("# TYPE subsave_outbox_pending gauge\n"));
        assert!(!text.contains("# EOF"));
        // Every sample's family has HELP and TYPE lines under the sample's own name.
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap_or_default();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "no HELP for {name}"
            );
        }
    }

    #[test]
    fn webhooks_are_counted_apart_from_emails() {
        let metrics = Metrics::new();
        metrics.start(&[], &[], 0.0);
        let text = metrics.encode_text();
        assert!(text.contains("subsave_webhooks_total{outcome=\"sent\"} 0"));
        assert!(!text.contains("kind=\"webhook\""));
    }
}
