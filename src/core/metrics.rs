//! Business metrics, defined once: monthly recurring revenue (MRR) and its movements (new,
//! expansion, contraction, churned, reactivated), logo and revenue churn, cohort retention by
//! first-order month, average revenue per subscription, the dunning funnel and cancellation
//! reasons, as pure functions over what the store reads: subscription events (their recorded
//! state), orders (net of tax, from the `finance_orders` view) and declined payments.
//!
//! Owns the formulas of docs/finance.md ("Business metrics"). Amounts are integers in minor
//! units, grouped by currency and never added across currencies; every division rounds half
//! away from zero, once. No IO and no clock: the finance time zone (which calendar a month
//! follows) and the period are parameters. The units forecast is not here: it is the
//! forecast's replay of the renewal planner (`crate::core::renewal::plan`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::core::model::{Event, PaymentStatus, Status};
use crate::core::money::div_round_half_away;
use crate::core::schedule::{Interval, IntervalUnit};

/// An average month in ten-thousandths of a day: 365.25 ÷ 12 = 30.4375 days.
const MONTH_IN_TEN_THOUSANDTHS_OF_A_DAY: i128 = 304_375;

/// An amount charged once per `interval`, as a monthly amount: ÷ N for an interval of N
/// months; × 30.4375 ÷ days for days and weeks (a week is 7 days). Rounded half away from
/// zero to the minor unit.
pub fn monthly_amount(per_renewal_minor: i64, interval: Interval) -> i64 {
    let count = i128::from(interval.count());
    let amount = i128::from(per_renewal_minor);
    match interval.unit() {
        IntervalUnit::Month => div_round_half_away(amount, count),
        IntervalUnit::Week => div_round_half_away(
            amount * MONTH_IN_TEN_THOUSANDTHS_OF_A_DAY,
            count * 7 * 10_000,
        ),
        IntervalUnit::Day => {
            div_round_half_away(amount * MONTH_IN_TEN_THOUSANDTHS_OF_A_DAY, count * 10_000)
        }
    }
}

/// `part ÷ whole` in basis points (1234 = 12.34 %), rounded half away from zero; `None` when
/// `whole` is zero (a rate of nothing is not 0 %).
pub fn rate_bp(part: i64, whole: i64) -> Option<i64> {
    (whole != 0).then(|| div_round_half_away(i128::from(part) * 10_000, i128::from(whole)))
}

/// An event of a subscription with the customer it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEvent {
    pub customer_id: i64,
    pub event: Event,
}

/// What MRR needs of one order: whose it is, the day it is booked on, and what it charged net
/// of tax (the `finance_orders` view's `net_of_tax_minor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledOrder {
    pub subscription_id: i64,
    pub customer_id: i64,
    pub billing_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub currency: String,
    pub net_of_tax_minor: i64,
}

/// A payment declined at least once, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclinedPayment {
    pub order_number: String,
    pub subscription_id: i64,
    pub billing_date: NaiveDate,
    pub currency: String,
    pub amount_minor: i64,
    pub status: PaymentStatus,
    /// Another try is scheduled, or the customer is asked to act (3-D Secure).
    pub retrying: bool,
}

/// What the metrics keep of one event: the state it recorded, and what the dunning funnel and
/// the cancellation reasons need. Small, so that a long history fits in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub subscription_id: i64,
    pub customer_id: i64,
    pub at: DateTime<Utc>,
    /// The status and interval after the event (`detail.after`).
    pub state: Option<(Status, Interval)>,
    pub note: Option<Note>,
}

/// What an event says beyond a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Cancelled by someone (not dunning), for this reason.
    Cancelled(String),
    /// Dunning's tries for this order are over.
    PastDue(String),
    /// Dunning's final action: paused or cancelled by the payments actor.
    Dunning(Status),
}

impl Fact {
    /// The fact an event records, if any: its recorded state (`detail.after`), a cancellation
    /// and its reason, dunning's `past_due` and its final pause or cancellation.
    pub fn of(customer_id: i64, event: &Event) -> Option<Fact> {
        let state = recorded_state(event);
        let by_dunning = event.actor == "payments";
        let note = match event.kind.as_str() {
            "cancel" if by_dunning => Some(Note::Dunning(Status::Cancelled)),
            "pause" if by_dunning => Some(Note::Dunning(Status::Paused)),
            "cancel" => Some(Note::Cancelled(
                event
                    .detail
                    .pointer("/detail/reason")
                    .and_then(|r| r.as_str())
                    .map_or_else(|| "(none)".to_owned(), |r| r.trim().to_owned()),
            )),
            "past_due" => event
                .detail
                .get("order")
                .and_then(|o| o.as_str())
                .map(|o| Note::PastDue(o.to_owned())),
            _ => None,
        };
        (state.is_some() || note.is_some()).then_some(Fact {
            subscription_id: event.subscription_id,
            customer_id,
            at: event.at,
            state,
            note,
        })
    }
}

/// The state an event recorded (its `detail.after`): status and interval. `None` for events
/// that record no state (renewals, payments, refunds).
fn recorded_state(event: &Event) -> Option<(Status, Interval)> {
    let after = event.detail.get("after")?;
    let status = after.get("status")?.as_str()?.parse().ok()?;
    let interval = after.get("interval")?.as_str()?.parse().ok()?;
    Some((status, interval))
}

/// The first day of `date`'s month.
fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn next_month(month: NaiveDate) -> NaiveDate {
    month.checked_add_months(Months::new(1)).unwrap_or(month)
}

/// One calendar month's MRR and its movements, in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthMetrics {
    /// `YYYY-MM`.
    pub month: String,
    pub currency: String,
    /// MRR at the end of the month before, and at the end of this one (or of the period).
    pub mrr_start_minor: i64,
    pub mrr_end_minor: i64,
    pub new_minor: i64,
    pub expansion_minor: i64,
    pub contraction_minor: i64,
    pub churned_minor: i64,
    pub reactivated_minor: i64,
    /// Customers with MRR at the start and at the end; customers whose MRR went to zero.
    pub customers_start: u32,
    pub customers_end: u32,
    pub customers_churned: u32,
    /// Subscriptions contributing MRR at the end.
    pub subscriptions_end: u32,
    /// `customers_churned ÷ customers_start`, in basis points.
    pub logo_churn_bp: Option<i64>,
    /// `(churned + contraction) ÷ mrr_start`, in basis points.
    pub revenue_churn_bp: Option<i64>,
    /// Average revenue per subscription: `mrr_end ÷ subscriptions_end`.
    pub arps_minor: Option<i64>,
}

/// Customers grouped by the month of their first order, and how many still have MRR at the
/// end of that month and of each month after it (within the period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohort {
    /// `YYYY-MM` of the first order.
    pub month: String,
    pub currency: String,
    pub customers: u32,
    /// `retained[k]`: customers of the cohort with MRR at the end of the k-th month after it.
    pub retained: Vec<u32>,
}

/// Where the payments declined at least once ended, in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningFunnel {
    pub currency: String,
    pub declined: u32,
    pub declined_minor: i64,
    /// Collected after all (refunds since included).
    pub recovered: u32,
    pub recovered_minor: i64,
    /// Tries over: the subscription was paused, or cancelled, by dunning's final action.
    pub paused: u32,
    pub cancelled: u32,
    /// Tries over without a final action (the subscription was not active any more).
    pub given_up: u32,
    /// Still being retried, or waiting for the customer.
    pub open: u32,
    /// `recovered ÷ declined`, in basis points.
    pub recovery_rate_bp: Option<i64>,
}

/// Cancellations in the period by reason, most frequent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    pub reason: String,
    pub cancellations: u32,
}

/// The reason dunning's final cancellation counts under.
pub const PAYMENT_FAILED_REASON: &str = "payment failed";

/// Every business metric of a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub months: Vec<MonthMetrics>,
    pub cohorts: Vec<Cohort>,
    pub dunning: Vec<DunningFunnel>,
    pub cancellation_reasons: Vec<ReasonCount>,
}

/// What a subscription contributes, as the timeline reaches it.
#[derive(Debug, Clone, Default)]
struct SubscriptionState {
    customer_id: i64,
    status: Option<Status>,
    interval: Option<Interval>,
    /// The last order's currency, net of tax and the interval it was billed for (unknown
    /// when the order comes before the subscription's first recorded state).
    billed: Option<(String, i64, Option<Interval>)>,
}

impl SubscriptionState {
    /// Its MRR: the last order's net of tax, per month, while active (a subscription with no
    /// recorded state but an order counts as active); 0 while paused or cancelled, so that its
    /// currency still has a row. `None` before any order, and without any recorded interval
    /// (there is nothing to spread the order over).
    fn mrr(&self) -> Option<(&str, i64)> {
        let (currency, net, billed_for) = self.billed.as_ref()?;
        let interval = billed_for.or(self.interval)?;
        let active = matches!(self.status, None | Some(Status::Active));
        Some((
            currency,
            if active {
                monthly_amount(*net, interval)
            } else {
                0
            },
        ))
    }
}

/// (customer, currency) → (MRR, subscriptions contributing).
type Snapshot = BTreeMap<(i64, String), (i64, u32)>;

/// The metrics of the calendar months from `from`'s to `to`'s, folded from a subscription
/// history: MRR is taken at the end of each month's last day (of `to` for the last month), and
/// movements compare a customer's MRR there with the month before. Orders are fed one at a
/// time, in billing-date order, so memory follows the number of customers and subscriptions,
/// not of orders; the facts (what events recorded) are given whole.
#[derive(Debug)]
pub struct Ledger {
    from: NaiveDate,
    to: NaiveDate,
    /// Facts with their date in `time_zone`, in order; `next_fact` is the first not applied.
    facts: Vec<(NaiveDate, Fact)>,
    next_fact: usize,
    subs: HashMap<i64, SubscriptionState>,
    first_order: HashMap<(i64, String), NaiveDate>,
    ever_had_mrr: HashSet<(i64, String)>,
    previous: Snapshot,
    /// The first day of the month not closed yet.
    month: NaiveDate,
    months: Vec<MonthMetrics>,
    /// (cohort month, currency) → customers with MRR at the end of each month after it.
    retained: BTreeMap<(NaiveDate, String), Vec<u32>>,
    last_order: Option<(NaiveDate, DateTime<Utc>)>,
}

impl Ledger {
    /// A ledger over `facts` for the months from `from`'s through `to`'s, in `time_zone`'s
    /// calendar (the shop's `finance.time_zone`).
    pub fn new(facts: Vec<Fact>, time_zone: Tz, from: NaiveDate, to: NaiveDate) -> Ledger {
        let mut facts: Vec<(NaiveDate, Fact)> = facts
            .into_iter()
            .map(|f| (f.at.with_timezone(&time_zone).date_naive(), f))
            .filter(|(date, _)| *date <= to)
            .collect();
        facts.sort_by_key(|(date, f)| (*date, f.at));
        let first = facts.first().map_or(from, |(date, _)| (*date).min(from));
        Ledger {
            from,
            to,
            facts,
            next_fact: 0,
            subs: HashMap::new(),
            first_order: HashMap::new(),
            ever_had_mrr: HashSet::new(),
            previous: Snapshot::new(),
            month: month_of(first),
            months: Vec::new(),
            retained: BTreeMap::new(),
            last_order: None,
        }
    }

    /// Takes the next order. Orders must come by billing date, then creation; later ones
    /// than `to` are ignored.
    pub fn order(&mut self, order: &BilledOrder) -> Result<(), MetricsError> {
        let key = (order.billing_date, order.created_at);
        if self.last_order.is_some_and(|last| last > key) {
            return Err(MetricsError::OrdersOutOfOrder(order.billing_date));
        }
        self.last_order = Some(key);
        if order.billing_date > self.to {
            return Ok(());
        }
        while self.month <= self.to && month_end(self.month) < order.billing_date {
            self.close_month();
        }
        self.apply_facts(key);
        let first = self
            .first_order
            .entry((order.customer_id, order.currency.clone()))
            .or_insert(order.billing_date);
        *first = (*first).min(order.billing_date);
        let sub = self.subs.entry(order.subscription_id).or_default();
        sub.customer_id = order.customer_id;
        sub.billed = Some((order.currency.clone(), order.net_of_tax_minor, sub.interval));
        Ok(())
    }

    /// Applies the facts up to (date, instant).
    fn apply_facts(&mut self, until: (NaiveDate, DateTime<Utc>)) {
        while let Some((date, fact)) = self.facts.get(self.next_fact) {
            if (*date, fact.at) > until {
                break;
            }
            self.next_fact += 1;
            if let Some((status, interval)) = fact.state {
                let sub = self.subs.entry(fact.subscription_id).or_default();
                sub.customer_id = fact.customer_id;
                sub.status = Some(status);
                sub.interval = Some(interval);
            }
        }
    }

    /// Takes the open month's snapshot, its movements and its cohort counts, and opens the
    /// next month.
    fn close_month(&mut self) {
        let end = month_end(self.month).min(self.to);
        self.apply_facts((end, DateTime::<Utc>::MAX_UTC));
        let snapshot = snapshot(&self.subs);
        if self.month >= month_of(self.from) {
            self.months.extend(movements(
                self.month,
                &self.previous,
                &snapshot,
                &self.ever_had_mrr,
            ));
            for (key, _) in snapshot.iter().filter(|(_, (mrr, _))| *mrr > 0) {
                let Some(cohort) = self.first_order.get(key).map(|d| month_of(*d)) else {
                    continue;
                };
                if cohort < month_of(self.from) {
                    continue;
                }
                let k = months_between(cohort, self.month);
                let counts = self.retained.entry((cohort, key.1.clone())).or_default();
                if counts.len() <= k {
                    counts.resize(k + 1, 0);
                }
                counts[k] += 1;
            }
        }
        self.ever_had_mrr.extend(
            snapshot
                .iter()
                .filter(|(_, (mrr, _))| *mrr > 0)
                .map(|(key, _)| key.clone()),
        );
        self.previous = snapshot;
        self.month = next_month(self.month);
    }

    /// Closes the remaining months and adds what does not depend on the timeline: the dunning
    /// funnel of `declined` (payments billed in the period) and the cancellation reasons.
    pub fn finish(mut self, declined: &[DeclinedPayment]) -> Metrics {
        while self.month <= self.to {
            self.close_month();
        }
        let last_month = month_of(self.to);
        let mut sizes: BTreeMap<(NaiveDate, String), u32> = BTreeMap::new();
        for ((_, currency), first) in &self.first_order {
            let cohort = month_of(*first);
            if cohort >= month_of(self.from) && cohort <= last_month {
                *sizes.entry((cohort, currency.clone())).or_default() += 1;
            }
        }
        let cohorts = sizes
            .into_iter()
            .map(|((cohort, currency), customers)| {
                let mut retained = self
                    .retained
                    .remove(&(cohort, currency.clone()))
                    .unwrap_or_default();
                retained.resize(months_between(cohort, last_month) + 1, 0);
                Cohort {
                    month: cohort.format("%Y-%m").to_string(),
                    currency,
                    customers,
                    retained,
                }
            })
            .collect();
        let facts: Vec<&Fact> = self.facts.iter().map(|(_, f)| f).collect();
        Metrics {
            months: self.months,
            cohorts,
            dunning: dunning(declined, &facts),
            cancellation_reasons: cancellation_reasons(&self.facts, self.from, self.to),
        }
    }
}

/// Why the metrics could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("orders must come by billing date: one of {0} came after a later one")]
    OrdersOutOfOrder(NaiveDate),
}

/// The last day of `month`'s month.
fn month_end(month: NaiveDate) -> NaiveDate {
    next_month(month).pred_opt().unwrap_or(month)
}

/// Whole months from `earlier`'s to `later`'s.
fn months_between(earlier: NaiveDate, later: NaiveDate) -> usize {
    let months =
        (later.year() - earlier.year()) * 12 + later.month() as i32 - earlier.month() as i32;
    usize::try_from(months).unwrap_or(0)
}

fn snapshot(subs: &HashMap<i64, SubscriptionState>) -> Snapshot {
    let mut snapshot = Snapshot::new();
    for sub in subs.values() {
        if let Some((currency, mrr)) = sub.mrr() {
            let entry = snapshot
                .entry((sub.customer_id, currency.to_owned()))
                .or_default();
            entry.0 += mrr;
            if mrr > 0 {
                entry.1 += 1;
            }
        }
    }
    snapshot
}

/// One month's movements per currency, customer by customer: from zero to some MRR is new
/// (never had MRR at an earlier month's end) or reactivated; to zero is churned; otherwise
/// the difference is expansion or contraction.
fn movements(
    month: NaiveDate,
    before: &Snapshot,
    after: &Snapshot,
    ever_had_mrr: &HashSet<(i64, String)>,
) -> Vec<MonthMetrics> {
    let mut by_currency: BTreeMap<String, MonthMetrics> = BTreeMap::new();
    let keys: BTreeSet<&(i64, String)> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let start = before.get(key).map_or(0, |(mrr, _)| *mrr);
        let (end, subscriptions) = after.get(key).copied().unwrap_or((0, 0));
        let m = by_currency
            .entry(key.1.clone())
            .or_insert_with(|| MonthMetrics {
                month: month.format("%Y-%m").to_string(),
                currency: key.1.clone(),
                ..MonthMetrics::default()
            });
        m.mrr_start_minor += start;
        m.mrr_end_minor += end;
        m.subscriptions_end += subscriptions;
        if start > 0 {
            m.customers_start += 1;
        }
        if end > 0 {
            m.customers_end += 1;
        }
        match (start > 0, end > 0) {
            (false, true) if ever_had_mrr.contains(key) => m.reactivated_minor += end,
            (false, true) => m.new_minor += end,
            (true, false) => {
                m.churned_minor += start;
                m.customers_churned += 1;
            }
            (true, true) if end > start => m.expansion_minor += end - start,
            (true, true) => m.contraction_minor += start - end,
            (false, false) => {}
        }
    }
    by_currency
        .into_values()
        .map(|mut m| {
            m.logo_churn_bp = rate_bp(i64::from(m.customers_churned), i64::from(m.customers_start));
            m.revenue_churn_bp = rate_bp(m.churned_minor + m.contraction_minor, m.mrr_start_minor);
            m.arps_minor = (m.subscriptions_end > 0).then(|| {
                div_round_half_away(i128::from(m.mrr_end_minor), i128::from(m.subscriptions_end))
            });
            m
        })
        .collect()
}

/// Dunning's final action on an order, from its subscription's facts: the `past_due` naming
/// it, and the pause or cancellation the payments actor recorded in the same instant.
fn final_action(order_number: &str, facts: &[&Fact]) -> Option<Status> {
    let past_due = facts
        .iter()
        .find(|f| matches!(&f.note, Some(Note::PastDue(order)) if order == order_number))?;
    facts
        .iter()
        .filter(|f| f.at == past_due.at)
        .find_map(|f| match f.note {
            Some(Note::Dunning(status)) => Some(status),
            _ => None,
        })
}

fn dunning(declined: &[DeclinedPayment], facts: &[&Fact]) -> Vec<DunningFunnel> {
    let mut by_subscription: HashMap<i64, Vec<&Fact>> = HashMap::new();
    for f in facts.iter().filter(|f| f.note.is_some()) {
        by_subscription
            .entry(f.subscription_id)
            .or_default()
            .push(f);
    }
    let mut funnels: BTreeMap<&str, DunningFunnel> = BTreeMap::new();
    for payment in declined {
        let f = funnels
            .entry(payment.currency.as_str())
            .or_insert_with(|| DunningFunnel {
                currency: payment.currency.clone(),
                ..DunningFunnel::default()
            });
        f.declined += 1;
        f.declined_minor += payment.amount_minor;
        if payment.status.collected() {
            f.recovered += 1;
            f.recovered_minor += payment.amount_minor;
        } else if payment.retrying {
            f.open += 1;
        } else {
            let of_subscription = by_subscription
                .get(&payment.subscription_id)
                .map_or(&[][..], Vec::as_slice);
            match final_action(&payment.order_number, of_subscription) {
                Some(Status::Paused) => f.paused += 1,
                Some(Status::Cancelled) => f.cancelled += 1,
                _ => f.given_up += 1,
            }
        }
    }
    funnels
        .into_values()
        .map(|mut f| {
            f.recovery_rate_bp = rate_bp(i64::from(f.recovered), i64::from(f.declined));
            f
        })
        .collect()
}

/// Cancellations recorded in the period (by the fact's date in the finance time zone), by
/// the reason given; dunning's own count as [`PAYMENT_FAILED_REASON`].
fn cancellation_reasons(
    facts: &[(NaiveDate, Fact)],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<ReasonCount> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for (date, fact) in facts {
        let reason = match &fact.note {
            Some(Note::Cancelled(reason)) => reason.as_str(),
            Some(Note::Dunning(Status::Cancelled)) => PAYMENT_FAILED_REASON,
            _ => continue,
        };
        if (from..=to).contains(date) {
            *counts.entry(reason).or_default() += 1;
        }
    }
    let mut reasons: Vec<ReasonCount> = counts
        .into_iter()
        .map(|(reason, cancellations)| ReasonCount {
            reason: reason.to_owned(),
            cancellations,
        })
        .collect();
    reasons.sort_by(|a, b| {
        b.cancellations
            .cmp(&a.cancellations)
            .then(a.reason.cmp(&b.reason))
    });
    reasons
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;
    use crate::test_support::at;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The fixture's events and orders, built like the store's: every event records the
    /// subscription's state after it in `detail.after`.
    #[derive(Default)]
    struct Shop {
        events: Vec<CustomerEvent>,
        orders: Vec<BilledOrder>,
        declined: Vec<DeclinedPayment>,
    }

    impl Shop {
        fn event(
            &mut self,
            sub: i64,
            customer: i64,
            date: &str,
            kind: &str,
            actor: &str,
            detail: serde_json::Value,
        ) {
            let id = self.events.len() as i64 + 1;
            self.events.push(CustomerEvent {
                customer_id: customer,
                event: Event {
                    id,
                    subscription_id: sub,
                    kind: kind.into(),
                    actor: actor.into(),
                    at: at(&format!("{date}T12:00:00Z")),
                    cycle: None,
                    detail,
                },
            });
        }

        fn state(
            &mut self,
            sub: i64,
            customer: i64,
            date: &str,
            kind: &str,
            status: &str,
            interval: &str,
        ) {
            let detail =
                json!({ "detail": {}, "after": { "status": status, "interval": interval } });
            self.event(sub, customer, date, kind, "cli", detail);
        }

        fn cancel(&mut self, sub: i64, customer: i64, date: &str, reason: &str, actor: &str) {
            let detail = json!({
                "detail": { "reason": reason },
                "after": { "status": "cancelled", "interval": "1 month" },
            });
            self.event(sub, customer, date, "cancel", actor, detail);
        }

        /// Tries over for `order`: `past_due`, then dunning's pause or cancellation.
        fn gave_up(&mut self, sub: i64, customer: i64, date: &str, order: &str, action: &str) {
            self.event(
                sub,
                customer,
                date,
                "past_due",
                "payments",
                json!({ "order": order }),
            );
            let status = if action == "pause" {
                "paused"
            } else {
                "cancelled"
            };
            let detail = json!({
                "detail": { "reason": format!("payment failed: order {order}") },
                "after": { "status": status, "interval": "1 month" },
            });
            self.event(sub, customer, date, action, "payments", detail);
        }

        fn order(&mut self, sub: i64, customer: i64, date: &str, net: i64, currency: &str) {
            self.orders.push(BilledOrder {
                subscription_id: sub,
                customer_id: customer,
                billing_date: day(date),
                created_at: at(&format!("{date}T09:00:00Z")),
                currency: currency.into(),
                net_of_tax_minor: net,
            });
        }

        /// One order on `day_of_month` of each month in `months` (1-based).
        fn monthly(
            &mut self,
            sub: i64,
            customer: i64,
            day_of_month: u32,
            months: std::ops::RangeInclusive<u32>,
            net: i64,
        ) {
            for m in months {
                let date = NaiveDate::from_ymd_opt(2026, m, day_of_month).unwrap();
                self.order(sub, customer, &date.to_string(), net, "USD");
            }
        }

        /// One order every `days` days from `first` through the year.
        fn every(&mut self, sub: i64, customer: i64, first: &str, days: i64, net: i64) {
            let mut date = day(first);
            while date.year() == 2026 {
                self.order(sub, customer, &date.to_string(), net, "USD");
                date += TimeDelta::days(days);
            }
        }

        fn decline(
            &mut self,
            sub: i64,
            order: &str,
            date: &str,
            amount: i64,
            status: PaymentStatus,
            retrying: bool,
        ) {
            self.declined.push(DeclinedPayment {
                order_number: order.into(),
                subscription_id: sub,
                billing_date: day(date),
                currency: "USD".into(),
                amount_minor: amount,
                status,
                retrying,
            });
        }

        fn metrics(&self, from: &str, to: &str) -> Metrics {
            self.metrics_in(chrono_tz::UTC, from, to)
        }

        /// What the report computes: the facts of the events, the orders one by one in
        /// billing-date order, then the declined payments.
        fn metrics_in(&self, tz: Tz, from: &str, to: &str) -> Metrics {
            let facts = self
                .events
                .iter()
                .filter_map(|ce| Fact::of(ce.customer_id, &ce.event))
                .collect();
            let mut ledger = Ledger::new(facts, tz, day(from), day(to));
            let mut orders: Vec<&BilledOrder> = self.orders.iter().collect();
            orders.sort_by_key(|o| (o.billing_date, o.created_at));
            for order in orders {
                ledger.order(order).unwrap();
            }
            ledger.finish(&self.declined)
        }
    }

    /// Thirteen customers and fourteen subscriptions over 2026 (amounts net of tax, in cents):
    /// steady ones, an upgrade and a downgrade, a skip, a pause and its resume, cancellations,
    /// dunning that recovers, pauses and cancels, a customer who comes back with a new
    /// subscription, 2-week and 30-day intervals, and one customer paying in EUR.
    fn year() -> Shop {
        let mut s = Shop::default();
        let active = |s: &mut Shop, sub, c, date: &str, interval| {
            s.state(sub, c, date, "created", "active", interval)
        };
        // C1: steady; December's charge declined, being retried.
        active(&mut s, 1, 1, "2026-01-05", "1 month");
        s.monthly(1, 1, 5, 1..=12, 4000);
        s.decline(1, "S1-DEC", "2026-12-05", 4000, PaymentStatus::Failed, true);
        // C2: upgraded on March 20; the April order is the first at the new price.
        active(&mut s, 2, 2, "2026-01-10", "1 month");
        s.monthly(2, 2, 10, 1..=3, 4000);
        s.state(2, 2, "2026-03-20", "change", "active", "1 month");
        s.monthly(2, 2, 10, 4..=12, 8000);
        // C3: from February; April skipped.
        active(&mut s, 3, 3, "2026-02-01", "1 month");
        s.state(3, 3, "2026-03-15", "skip", "active", "1 month");
        s.monthly(3, 3, 1, 2..=3, 3000);
        s.monthly(3, 3, 1, 5..=12, 3000);
        // C4: paused May 2, resumed July 1.
        active(&mut s, 4, 4, "2026-01-15", "1 month");
        s.monthly(4, 4, 15, 1..=4, 5000);
        s.state(4, 4, "2026-05-02", "pause", "paused", "1 month");
        s.state(4, 4, "2026-07-01", "resume", "active", "1 month");
        s.monthly(4, 4, 15, 7..=12, 5000);
        // C5: cancelled April 3.
        active(&mut s, 5, 5, "2026-01-20", "1 month");
        s.monthly(5, 5, 20, 1..=3, 3000);
        s.cancel(5, 5, "2026-04-03", "too much product", "customer:link");
        // C6: first renewal in February; June's charge declined to the end: paused June 8.
        active(&mut s, 6, 6, "2026-01-25", "1 month");
        s.monthly(6, 6, 1, 2..=6, 6000);
        s.decline(
            6,
            "S6-JUN",
            "2026-06-01",
            6000,
            PaymentStatus::Failed,
            false,
        );
        s.gave_up(6, 6, "2026-06-08", "S6-JUN", "pause");
        // C7: March's charge declined, then paid.
        active(&mut s, 7, 7, "2026-01-02", "1 month");
        s.monthly(7, 7, 2, 1..=12, 2000);
        s.decline(7, "S7-MAR", "2026-03-02", 2000, PaymentStatus::Paid, false);
        // C8: cancelled March 1, back with a new subscription on June 10.
        active(&mut s, 8, 8, "2026-01-03", "1 month");
        s.monthly(8, 8, 3, 1..=2, 4500);
        s.cancel(8, 8, "2026-03-01", "moving abroad", "cli");
        active(&mut s, 9, 8, "2026-06-10", "1 month");
        s.monthly(9, 8, 10, 6..=12, 4500);
        // C9: every 2 weeks from April 1: 1400 × 30.4375 ÷ 14 = 3043.75 → 3044 a month.
        active(&mut s, 10, 9, "2026-04-01", "2 weeks");
        s.every(10, 9, "2026-04-01", 14, 1400);
        // C10: every 30 days from February 1: 3000 × 30.4375 ÷ 30 = 3043.75 → 3044.
        active(&mut s, 11, 10, "2026-02-01", "30 days");
        s.every(11, 10, "2026-02-01", 30, 3000);
        // C11: downgraded August 20; the September order is the first at the lower price.
        active(&mut s, 12, 11, "2026-01-12", "1 month");
        s.monthly(12, 11, 12, 1..=8, 6000);
        s.state(12, 11, "2026-08-20", "change", "active", "1 month");
        s.monthly(12, 11, 12, 9..=12, 3000);
        // C12: pays in EUR.
        active(&mut s, 13, 12, "2026-01-08", "1 month");
        for m in 1..=12 {
            s.order(13, 12, &format!("2026-{m:02}-08"), 2500, "EUR");
        }
        // C13: October's charge declined to the end: cancelled October 25.
        active(&mut s, 14, 13, "2026-01-18", "1 month");
        s.monthly(14, 13, 18, 1..=10, 3500);
        s.decline(
            14,
            "S14-OCT",
            "2026-10-18",
            3500,
            PaymentStatus::Failed,
            false,
        );
        s.gave_up(14, 13, "2026-10-25", "S14-OCT", "cancel");
        s
    }

    fn usd(metrics: &Metrics, month: &str) -> MonthMetrics {
        metrics
            .months
            .iter()
            .find(|m| m.month == month && m.currency == "USD")
            .unwrap_or_else(|| panic!("no USD row for {month}"))
            .clone()
    }

    #[test]
    fn a_renewal_price_is_spread_over_an_average_month() {
        for (net, interval, monthly) in [
            (4999, "1 month", 4999),
            (4999, "3 months", 1666),
            (10_000, "2 months", 5000),
            (1, "2 months", 1),
            (-5, "2 months", -3),
            (1400, "2 weeks", 3044),
            (3000, "30 days", 3044),
            (4999, "45 days", 3381),
            (7000, "1 week", 30_438),
            (0, "30 days", 0),
        ] {
            let interval: Interval = interval.parse().unwrap();
            assert_eq!(
                monthly_amount(net, interval),
                monthly,
                "{net} every {interval}"
            );
        }
    }

    #[test]
    fn rates_are_basis_points_rounded_half_away_from_zero() {
        for (part, whole, bp) in [
            (1, 3, Some(3333)),
            (2, 3, Some(6667)),
            (1, 8, Some(1250)),
            (1, 20_000, Some(1)),
            (1, 20_001, Some(0)),
            (0, 5, Some(0)),
            (3, 0, None),
        ] {
            assert_eq!(rate_bp(part, whole), bp, "{part}/{whole}");
        }
    }

    #[test]
    fn mrr_and_its_movements_month_by_month() {
        let metrics = year().metrics("2026-01-01", "2026-12-31");
        // (month, start, new, expansion, contraction, churned, reactivated, end,
        //  customers start/end/churned, subscriptions at the end)
        let expected = [
            ("2026-01", 0, 32_000, 0, 0, 0, 0, 32_000, 0, 8, 0, 8),
            ("2026-02", 32_000, 12_044, 0, 0, 0, 0, 44_044, 8, 11, 0, 11),
            ("2026-03", 44_044, 0, 0, 0, 4500, 0, 39_544, 11, 10, 1, 10),
            (
                "2026-04", 39_544, 3044, 4000, 0, 3000, 0, 43_588, 10, 10, 1, 10,
            ),
            ("2026-05", 43_588, 0, 0, 0, 5000, 0, 38_588, 10, 9, 1, 9),
            ("2026-06", 38_588, 0, 0, 0, 6000, 4500, 37_088, 9, 9, 1, 9),
            ("2026-07", 37_088, 0, 0, 0, 0, 5000, 42_088, 9, 10, 0, 10),
            ("2026-08", 42_088, 0, 0, 0, 0, 0, 42_088, 10, 10, 0, 10),
            ("2026-09", 42_088, 0, 0, 3000, 0, 0, 39_088, 10, 10, 0, 10),
            ("2026-10", 39_088, 0, 0, 0, 3500, 0, 35_588, 10, 9, 1, 9),
            ("2026-11", 35_588, 0, 0, 0, 0, 0, 35_588, 9, 9, 0, 9),
            ("2026-12", 35_588, 0, 0, 0, 0, 0, 35_588, 9, 9, 0, 9),
        ];
        for (month, start, new, exp, con, churn, react, end, c_start, c_end, c_churn, subs) in
            expected
        {
            let m = usd(&metrics, month);
            assert_eq!(
                (
                    m.mrr_start_minor,
                    m.new_minor,
                    m.expansion_minor,
                    m.contraction_minor,
                    m.churned_minor,
                    m.reactivated_minor,
                    m.mrr_end_minor
                ),
                (start, new, exp, con, churn, react, end),
                "{month}"
            );
            assert_eq!(
                (
                    m.customers_start,
                    m.customers_end,
                    m.customers_churned,
                    m.subscriptions_end
                ),
                (c_start, c_end, c_churn, subs),
                "{month}"
            );
            assert_eq!(
                start + new + react + exp - con - churn,
                end,
                "{month} adds up"
            );
        }
        // Rates, by hand: 1 of 11 customers (909.09 bp), 4500 of 44044 (1021.70 bp), …
        let rates: Vec<(Option<i64>, Option<i64>, Option<i64>)> = [
            "2026-01", "2026-03", "2026-04", "2026-05", "2026-06", "2026-09",
        ]
        .iter()
        .map(|month| {
            let m = usd(&metrics, month);
            (m.logo_churn_bp, m.revenue_churn_bp, m.arps_minor)
        })
        .collect();
        assert_eq!(
            rates,
            [
                (None, None, Some(4000)),
                (Some(909), Some(1022), Some(3954)),
                (Some(1000), Some(759), Some(4359)),
                (Some(1000), Some(1147), Some(4288)),
                (Some(1111), Some(1555), Some(4121)),
                (Some(0), Some(713), Some(3909)),
            ]
        );
        // EUR is its own row, never added to USD.
        let eur: Vec<(String, i64, i64)> = metrics
            .months
            .iter()
            .filter(|m| m.currency == "EUR")
            .map(|m| (m.month.clone(), m.new_minor, m.mrr_end_minor))
            .collect();
        assert_eq!(eur.len(), 12);
        assert_eq!(eur[0], ("2026-01".into(), 2500, 2500));
        assert!(
            eur[1..]
                .iter()
                .all(|(_, new, end)| (*new, *end) == (0, 2500))
        );
    }

    #[test]
    fn cohorts_by_first_order_month() {
        let metrics = year().metrics("2026-01-01", "2026-12-31");
        let cohorts: Vec<(&str, &str, u32, Vec<u32>)> = metrics
            .cohorts
            .iter()
            .map(|c| {
                (
                    c.month.as_str(),
                    c.currency.as_str(),
                    c.customers,
                    c.retained.clone(),
                )
            })
            .collect();
        assert_eq!(
            cohorts,
            [
                ("2026-01", "EUR", 1, vec![1; 12]),
                (
                    "2026-01",
                    "USD",
                    8,
                    vec![8, 8, 7, 6, 5, 6, 7, 7, 7, 6, 6, 6]
                ),
                ("2026-02", "USD", 3, vec![3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2]),
                ("2026-04", "USD", 1, vec![1; 9]),
            ]
        );
    }

    #[test]
    fn the_dunning_funnel_and_the_reasons_for_cancelling() {
        let metrics = year().metrics("2026-01-01", "2026-12-31");
        assert_eq!(
            metrics.dunning,
            [DunningFunnel {
                currency: "USD".into(),
                declined: 4,
                declined_minor: 15_500,
                recovered: 1,
                recovered_minor: 2000,
                paused: 1,
                cancelled: 1,
                given_up: 0,
                open: 1,
                recovery_rate_bp: Some(2500),
            }]
        );
        let reasons: Vec<(&str, u32)> = metrics
            .cancellation_reasons
            .iter()
            .map(|r| (r.reason.as_str(), r.cancellations))
            .collect();
        assert_eq!(
            reasons,
            [
                ("moving abroad", 1),
                ("payment failed", 1),
                ("too much product", 1)
            ]
        );
    }

    #[test]
    fn a_shorter_period_starts_from_the_history_before_it() {
        let mut shop = year();
        // Declined payments are read for the period by the store; keep June's only.
        shop.declined.retain(|p| p.billing_date.month() == 6);
        let metrics = shop.metrics("2026-04-01", "2026-06-15");
        let months: Vec<(String, i64, i64)> = metrics
            .months
            .iter()
            .filter(|m| m.currency == "USD")
            .map(|m| (m.month.clone(), m.mrr_start_minor, m.mrr_end_minor))
            .collect();
        assert_eq!(
            months,
            [
                ("2026-04".into(), 39_544, 43_588),
                ("2026-05".into(), 43_588, 38_588),
                // Taken at the end of June 15: C6 paused, C8 back.
                ("2026-06".into(), 38_588, 37_088),
            ]
        );
        let cohorts: Vec<(&str, Vec<u32>)> = metrics
            .cohorts
            .iter()
            .map(|c| (c.month.as_str(), c.retained.clone()))
            .collect();
        assert_eq!(cohorts, [("2026-04", vec![1, 1, 1])]);
        let reasons: Vec<&str> = metrics
            .cancellation_reasons
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        assert_eq!(reasons, ["too much product"]);
        assert_eq!(
            (metrics.dunning[0].declined, metrics.dunning[0].paused),
            (1, 1)
        );
    }

    #[test]
    fn months_follow_the_finance_time_zone() {
        let mut shop = Shop::default();
        // Created at 02:00 UTC on February 1: still January 31 in New York.
        shop.events.push(CustomerEvent {
            customer_id: 1,
            event: Event {
                id: 1,
                subscription_id: 1,
                kind: "created".into(),
                actor: "cli".into(),
                at: at("2026-02-01T02:00:00Z"),
                cycle: None,
                detail: json!({ "after": { "status": "active", "interval": "1 month" } }),
            },
        });
        shop.order(1, 1, "2026-01-31", 1000, "USD");
        let in_zone = |tz: Tz| shop.metrics_in(tz, "2026-01-01", "2026-01-31").months;
        assert_eq!(in_zone(chrono_tz::America::New_York)[0].mrr_end_minor, 1000);
        assert!(
            in_zone(chrono_tz::UTC).is_empty(),
            "in UTC the subscription starts in February"
        );
    }

    #[test]
    fn an_event_keeps_only_what_the_metrics_need() {
        let event = |kind: &str, actor: &str, detail: serde_json::Value| Event {
            id: 1,
            subscription_id: 7,
            kind: kind.into(),
            actor: actor.into(),
            at: at("2026-03-01T12:00:00Z"),
            cycle: None,
            detail,
        };
        let after = |status: &str| json!({ "status": status, "interval": "2 weeks" });
        let fact = |e: &Event| Fact::of(3, e).map(|f| (f.state, f.note));
        let two_weeks: Interval = "2 weeks".parse().unwrap();
        for (e, expected) in [
            (
                event(
                    "cancel",
                    "customer:link",
                    json!({ "detail": { "reason": " too much " }, "after": after("cancelled") }),
                ),
                Some((
                    Some((Status::Cancelled, two_weeks)),
                    Some(Note::Cancelled("too much".into())),
                )),
            ),
            (
                event(
                    "cancel",
                    "payments",
                    json!({ "detail": { "reason": "payment failed: order X" }, "after": after("cancelled") }),
                ),
                Some((
                    Some((Status::Cancelled, two_weeks)),
                    Some(Note::Dunning(Status::Cancelled)),
                )),
            ),
            (
                event("pause", "payments", json!({ "after": after("paused") })),
                Some((
                    Some((Status::Paused, two_weeks)),
                    Some(Note::Dunning(Status::Paused)),
                )),
            ),
            (
                event("pause", "cli", json!({ "after": after("paused") })),
                Some((Some((Status::Paused, two_weeks)), None)),
            ),
            (
                event("past_due", "payments", json!({ "order": "BB-0000007-003" })),
                Some((None, Some(Note::PastDue("BB-0000007-003".into())))),
            ),
            (
                event(
                    "renewed",
                    "engine",
                    json!({ "order_number": "BB-0000007-003" }),
                ),
                None,
            ),
            // A state that does not parse is no state.
            (
                event(
                    "change",
                    "cli",
                    json!({ "after": { "status": "gone", "interval": "2 weeks" } }),
                ),
                None,
            ),
        ] {
            assert_eq!(fact(&e), expected, "{} by {}", e.kind, e.actor);
        }
    }

    #[test]
    fn orders_out_of_billing_date_order_are_refused() {
        let mut shop = Shop::default();
        shop.order(1, 1, "2026-02-01", 1000, "USD");
        shop.order(1, 1, "2026-01-01", 1000, "USD");
        let mut ledger = Ledger::new(vec![], chrono_tz::UTC, day("2026-01-01"), day("2026-03-31"));
        assert_eq!(ledger.order(&shop.orders[0]), Ok(()));
        assert_eq!(
            ledger.order(&shop.orders[1]),
            Err(MetricsError::OrdersOutOfOrder(day("2026-01-01")))
        );
    }
}
