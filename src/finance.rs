//! What finance reads: the export row format, revenue totals, the demand forecast, the
//! business metrics (`crate::core::metrics` over the store's history) and the ledger audit. Exports stream `finance_orders` rows from the store one at a time; revenue
//! reports are folded from the same rows (so a report always equals the export's sums); the
//! forecast replays the engine's own planner ([`crate::core::renewal::plan`]) over the coming weeks
//! on in-memory copies of the live subscriptions. Nothing here writes to the database.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Accounts;
use crate::core::catalog::Catalog;
use crate::core::lifecycle::resumed;
use crate::core::metrics::{self, DunningFunnel, Metrics, MonthMetrics};
use crate::core::model::{Customer, Status, Subscription};
use crate::core::money::{Currency, Money};
use crate::core::renewal;
use crate::core::renewal::CatchUp;
use crate::store::{FinanceCreditNote, FinanceOrder, JournalPayment, Store, StoreError};

/// The export's columns, in order. Stable: columns are only ever added at the end.
pub const EXPORT_COLUMNS: [&str; 27] = [
    "order_number",
    "order_id",
    "created_at",
    "billing_date",
    "customer_id",
    "customer_email",
    "tax_region",
    "plan",
    "packs",
    "quantity",
    "currency",
    "subtotal",
    "subscribe_and_save_discount",
    "loyalty_discount",
    "coupon_discount",
    "coupon_code",
    "shipping",
    "tax",
    "tax_inclusive",
    "total",
    "price_promise_discount",
    "tax_added",
    "tax_included",
    "tax_rate_bp",
    "net_of_tax",
    "ship_country",
    "ship_subdivision",
];

/// An amount in minor units as the decimal string spreadsheets expect ("49.99").
pub fn major_units(minor: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Money::from_minor(minor, c).to_decimal_string(),
        // An unknown code still exports, in minor units, rather than failing the export.
        Err(_) => minor.to_string(),
    }
}

/// One export row as strings, in [`EXPORT_COLUMNS`] order.
/// A text cell made safe for a spreadsheet (OWASP's CSV injection advice): a cell starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula, so it gets a
/// leading `'`. Applied to the free text in CSV exports (emails, coupon codes); the amounts
/// subsave writes itself are numbers (a refund's `-5.00` stays a number), and JSONL is left as
/// it is.
pub fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

pub fn export_record(row: &FinanceOrder) -> Vec<String> {
    let money = |m: i64| major_units(m, &row.currency);
    vec![
        row.order_number.clone(),
        row.order_id.to_string(),
        row.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        row.billing_date.to_string(),
        row.customer_id.to_string(),
        csv_text(&row.customer_email),
        row.tax_region.clone().unwrap_or_default(),
        row.plan.clone(),
        row.packs.to_string(),
        row.quantity.to_string(),
        row.currency.clone(),
        money(row.subtotal_minor),
        money(row.subscribe_and_save_discount_minor),
        money(row.loyalty_discount_minor),
        money(row.coupon_discount_minor),
        csv_text(row.coupon_code.as_deref().unwrap_or_default()),
        money(row.shipping_minor),
        money(row.tax_minor),
        row.tax_inclusive.to_string(),
        money(row.total_minor),
        money(row.price_promise_discount_minor),
        money(row.tax_added_minor),
        money(row.tax_included_minor),
        row.tax_rate_bp.map(|r| r.to_string()).unwrap_or_default(),
        money(row.net_of_tax_minor),
        row.ship_country.clone().unwrap_or_default(),
        row.ship_subdivision.clone().unwrap_or_default(),
    ]
}

/// One export row as a JSON object: the CSV's keys, amounts as the same decimal strings,
/// counts as numbers and `tax_inclusive` as a boolean.
pub fn export_json(row: &FinanceOrder) -> serde_json::Value {
    let money = |m: i64| major_units(m, &row.currency);
    serde_json::json!({
        "order_number": row.order_number,
        "order_id": row.order_id,
        "created_at": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "billing_date": row.billing_date.to_string(),
        "customer_id": row.customer_id,
        "customer_email": row.customer_email,
        "tax_region": row.tax_region,
        "plan": row.plan,
        "packs": row.packs,
        "quantity": row.quantity,
        "currency": row.currency,
        "subtotal": money(row.subtotal_minor),
        "subscribe_and_save_discount": money(row.subscribe_and_save_discount_minor),
        "loyalty_discount": money(row.loyalty_discount_minor),
        "coupon_discount": money(row.coupon_discount_minor),
        "coupon_code": row.coupon_code,
        "shipping": money(row.shipping_minor),
        "tax": money(row.tax_minor),
        "tax_inclusive": row.tax_inclusive,
        "total": money(row.total_minor),
        "price_promise_discount": money(row.price_promise_discount_minor),
        "tax_added": money(row.tax_added_minor),
        "tax_included": money(row.tax_included_minor),
        "tax_rate_bp": row.tax_rate_bp,
        "net_of_tax": money(row.net_of_tax_minor),
        "ship_country": row.ship_country,
        "ship_subdivision": row.ship_subdivision,
    })
}

/// How a revenue report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RevenueBy {
    Month,
    Plan,
    Region,
}

impl RevenueBy {
    /// The group a row of this billing date, plan and region falls in.
    fn key(self, billing_date: NaiveDate, plan: &str, region: Option<&str>) -> String {
        match self {
            RevenueBy::Month => billing_date.format("%Y-%m").to_string(),
            RevenueBy::Plan => plan.to_owned(),
            RevenueBy::Region => region.unwrap_or("(none)").to_owned(),
        }
    }
}

/// Sums for one group of orders, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevenueTotals {
    pub orders: u64,
    pub packs: i64,
    pub gross_minor: i64,
    pub subscribe_and_save_discount_minor: i64,
    pub loyalty_discount_minor: i64,
    pub coupon_discount_minor: i64,
    pub shipping_minor: i64,
    /// Tax added on top (exclusive regions).
    pub tax_added_minor: i64,
    /// Tax contained in the price (inclusive regions), not added.
    pub tax_included_minor: i64,
    /// What was charged: gross − discounts + shipping + tax added − price promises.
    pub net_minor: i64,
    /// Not charged because a reminder promised a lower total.
    pub price_promise_discount_minor: i64,
    /// What was charged less all tax (added and included): revenue net of tax.
    pub net_of_tax_minor: i64,
    /// Credit notes booked in the period (by their own billing date): how many, their
    /// amount and its tax part.
    pub credit_notes: u64,
    pub refunds_minor: i64,
    pub refunds_tax_minor: i64,
    /// Revenue net of tax less the credit notes net of tax.
    pub net_of_tax_after_refunds_minor: i64,
}

impl RevenueTotals {
    pub fn add(&mut self, row: &FinanceOrder) {
        self.orders += 1;
        self.packs += row.packs * row.quantity;
        self.gross_minor += row.subtotal_minor;
        self.subscribe_and_save_discount_minor += row.subscribe_and_save_discount_minor;
        self.loyalty_discount_minor += row.loyalty_discount_minor;
        self.coupon_discount_minor += row.coupon_discount_minor;
        self.shipping_minor += row.shipping_minor;
        if row.tax_inclusive {
            self.tax_included_minor += row.tax_minor;
        } else {
            self.tax_added_minor += row.tax_minor;
        }
        self.net_minor += row.total_minor;
        self.price_promise_discount_minor += row.price_promise_discount_minor;
        self.net_of_tax_minor += row.net_of_tax_minor;
        self.net_of_tax_after_refunds_minor += row.net_of_tax_minor;
    }

    /// Adds another group's totals: the report's total row.
    pub fn merge(&mut self, other: &RevenueTotals) {
        self.orders += other.orders;
        self.packs += other.packs;
        self.gross_minor += other.gross_minor;
        self.subscribe_and_save_discount_minor += other.subscribe_and_save_discount_minor;
        self.loyalty_discount_minor += other.loyalty_discount_minor;
        self.coupon_discount_minor += other.coupon_discount_minor;
        self.shipping_minor += other.shipping_minor;
        self.tax_added_minor += other.tax_added_minor;
        self.tax_included_minor += other.tax_included_minor;
        self.net_minor += other.net_minor;
        self.price_promise_discount_minor += other.price_promise_discount_minor;
        self.net_of_tax_minor += other.net_of_tax_minor;
        self.credit_notes += other.credit_notes;
        self.refunds_minor += other.refunds_minor;
        self.refunds_tax_minor += other.refunds_tax_minor;
        self.net_of_tax_after_refunds_minor += other.net_of_tax_after_refunds_minor;
    }

    pub fn add_refund(&mut self, note: &FinanceCreditNote) {
        self.credit_notes += 1;
        self.refunds_minor += note.amount_minor;
        self.refunds_tax_minor += note.tax_minor;
        self.net_of_tax_after_refunds_minor -= note.net_of_tax_minor;
    }
}

/// Revenue between two billing dates, grouped, per currency: (group, currency) → totals.
pub async fn revenue(
    store: &dyn Store,
    from: NaiveDate,
    to: NaiveDate,
    by: RevenueBy,
) -> Result<BTreeMap<(String, String), RevenueTotals>, StoreError> {
    let mut groups: BTreeMap<(String, String), RevenueTotals> = BTreeMap::new();
    let mut fold = |row: FinanceOrder| {
        let key = by.key(row.billing_date, &row.plan, row.tax_region.as_deref());
        groups
            .entry((key, row.currency.clone()))
            .or_default()
            .add(&row);
        Ok(())
    };
    store.export_orders(from, to, &mut fold).await?;
    for note in store.credit_note_rows(from, to).await? {
        let key = by.key(note.billing_date, &note.plan, note.tax_region.as_deref());
        groups
            .entry((key, note.currency.clone()))
            .or_default()
            .add_refund(&note);
    }
    Ok(groups)
}

/// One week of the demand forecast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WeekForecast {
    pub week_start: NaiveDate,
    pub renewals: u64,
    /// Packs to ship per plan: the warehouse's reorder figure.
    pub packs_by_plan: BTreeMap<String, i64>,
    /// The expected revenue in the default market's currency.
    pub revenue_minor: i64,
    /// The currency of `revenue_minor` (the catalog's, the default market's).
    pub currency: String,
    /// The expected revenue in each other currency (the markets'), never added to
    /// `revenue_minor`; absent when every renewal is in the catalog's currency.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub other_currencies: BTreeMap<String, i64>,
    /// Every renewal the forecast expects, as (subscription, cycle).
    #[serde(skip)]
    pub cycles: Vec<(i64, u32)>,
}

/// Rows read per page while forecasting.
const FORECAST_PAGE: u32 = 1000;

/// The renewals the engine will bill over the next `days` days from `now`, week by week,
/// replaying its planner on copies of the live subscriptions (skips, pauses with an end,
/// coupons' remaining cycles and loyalty tiers all as the engine would apply them).
pub async fn forecast(
    store: &dyn Store,
    catalog: &Catalog,
    catch_up: CatchUp,
    now: DateTime<Utc>,
    days: u32,
) -> Result<Vec<WeekForecast>, StoreError> {
    let end = now + TimeDelta::days(i64::from(days));
    let weeks = days.div_ceil(7).max(1) as usize;
    let mut forecast: Vec<WeekForecast> = (0..weeks)
        .map(|w| WeekForecast {
            week_start: (now + TimeDelta::days(7 * w as i64)).date_naive(),
            currency: catalog.currency.code().to_owned(),
            ..WeekForecast::default()
        })
        .collect();
    let mut after_id = 0;
    loop {
        let page = store.live_subscriptions(after_id, FORECAST_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after_id = last.id;
        for (sub, customer) in &page {
            replay(sub, customer, catalog, catch_up, now, end, &mut forecast);
        }
    }
    Ok(forecast)
}

fn replay(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    catch_up: CatchUp,
    now: DateTime<Utc>,
    end: DateTime<Utc>,
    forecast: &mut [WeekForecast],
) {
    let mut state = sub.clone();
    if state.status == Status::Paused {
        match state.paused_until {
            Some(until) if until < end => match resumed(&state, until, true) {
                Ok(active) => state = active,
                Err(_) => return,
            },
            _ => return,
        }
    }
    if state.hold_reason.is_some() {
        return;
    }
    while let Some(at) = state.next_renewal_at.filter(|at| *at < end) {
        // What is already overdue is billed by the next sweep; it counts in the first week.
        let Some(change) = renewal::plan(&state, customer, catalog, catch_up, at.max(now)) else {
            return;
        };
        for order in &change.orders {
            let offset = (order.scheduled_for.max(now) - now).num_days().max(0) as usize / 7;
            if let Some(week) = forecast.get_mut(offset) {
                week.renewals += 1;
                *week
                    .packs_by_plan
                    .entry(order.plan.to_string())
                    .or_default() += i64::from(order.packs) * i64::from(order.quantity);
                let currency = order.total.currency().code();
                if currency == week.currency {
                    week.revenue_minor += order.total.minor();
                } else {
                    *week
                        .other_currencies
                        .entry(currency.to_owned())
                        .or_default() += order.total.minor();
                }
                week.cycles.push((order.subscription_id, order.cycle));
            }
        }
        if change.orders.is_empty() {
            return;
        }
        state = change.after;
    }
}

/// The columns of `report revenue --format csv`, in order.
pub const REVENUE_COLUMNS: [&str; 10] = [
    "group",
    "currency",
    "kind",
    "count",
    "gross",
    "discounts",
    "shipping",
    "charged",
    "tax",
    "net_of_tax",
];

/// A revenue group as CSV rows: its orders, then (when there are any) its credit notes as a
/// row of their own, negative, so that a column's sum is the group's figure after refunds.
pub fn revenue_records(group: &str, currency: &str, t: &RevenueTotals) -> Vec<Vec<String>> {
    let money = |m: i64| major_units(m, currency);
    let discounts = t.subscribe_and_save_discount_minor
        + t.loyalty_discount_minor
        + t.coupon_discount_minor
        + t.price_promise_discount_minor;
    let mut rows = vec![vec![
        csv_text(group),
        currency.to_owned(),
        "orders".to_owned(),
        t.orders.to_string(),
        money(t.gross_minor),
        money(-discounts),
        money(t.shipping_minor),
        money(t.net_minor),
        money(t.tax_added_minor + t.tax_included_minor),
        money(t.net_of_tax_minor),
    ]];
    if t.credit_notes > 0 {
        rows.push(vec![
            csv_text(group),
            currency.to_owned(),
            "refunds".to_owned(),
            t.credit_notes.to_string(),
            money(0),
            money(0),
            money(0),
            money(-t.refunds_minor),
            money(-t.refunds_tax_minor),
            money(t.net_of_tax_after_refunds_minor - t.net_of_tax_minor),
        ]);
    }
    rows
}

/// How far ahead the metrics' units forecast looks.
pub const UNITS_FORECAST_DAYS: u32 = 90;

/// The business metrics of a period, and the packs to ship per plan over the next
/// [`UNITS_FORECAST_DAYS`] days (the forecast's own replay, summed over its weeks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub units_forecast_days: u32,
    /// Plan → packs.
    pub units_forecast: BTreeMap<String, i64>,
}

/// The columns of [`metrics_rows`].
pub const METRICS_COLUMNS: [&str; 5] = ["section", "period", "currency", "name", "value"];

/// Every figure of the report as one row: section, period, currency, name, value (amounts
/// in major units, rates in percent). `report metrics --format csv` and the console's CSV
/// downloads are these rows.
pub fn metrics_rows(report: &MetricsReport) -> Vec<[String; 5]> {
    let m = &report.metrics;
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut row = |section: &str, period: &str, currency: &str, name: &str, value: String| {
        rows.push([
            section.into(),
            period.into(),
            currency.into(),
            name.into(),
            value,
        ]);
    };
    for r in &m.months {
        for (name, value) in mrr_figures(r) {
            row("mrr", &r.month, &r.currency, name, value);
        }
    }
    for c in &m.cohorts {
        row(
            "cohort",
            &c.month,
            &c.currency,
            "customers",
            c.customers.to_string(),
        );
        for (k, n) in c.retained.iter().enumerate() {
            row(
                "cohort",
                &c.month,
                &c.currency,
                &format!("retained_month_{k}"),
                n.to_string(),
            );
        }
    }
    let period = format!("{}..{}", report.from, report.to);
    for f in &m.dunning {
        for (name, value) in dunning_figures(f) {
            row("dunning", &period, &f.currency, name, value);
        }
    }
    for r in &m.cancellation_reasons {
        row(
            "cancellations",
            &period,
            "",
            &csv_text(&r.reason),
            r.cancellations.to_string(),
        );
    }
    let horizon = format!("next {} days", report.units_forecast_days);
    for (plan, packs) in &report.units_forecast {
        row("units_forecast", &horizon, "", plan, packs.to_string());
    }
    rows
}

/// One month's MRR rows of [`metrics_rows`], by name.
fn mrr_figures(r: &MonthMetrics) -> [(&'static str, String); 14] {
    let money = |v: i64| major_units(v, &r.currency);
    [
        ("mrr_start", money(r.mrr_start_minor)),
        ("new", money(r.new_minor)),
        ("expansion", money(r.expansion_minor)),
        ("contraction", money(r.contraction_minor)),
        ("churned", money(r.churned_minor)),
        ("reactivated", money(r.reactivated_minor)),
        ("mrr_end", money(r.mrr_end_minor)),
        ("customers_start", r.customers_start.to_string()),
        ("customers_end", r.customers_end.to_string()),
        ("customers_churned", r.customers_churned.to_string()),
        ("subscriptions_end", r.subscriptions_end.to_string()),
        ("logo_churn_percent", percent(r.logo_churn_bp)),
        ("revenue_churn_percent", percent(r.revenue_churn_bp)),
        ("arps", r.arps_minor.map_or_else(|| "-".to_owned(), money)),
    ]
}

/// One currency's dunning rows of [`metrics_rows`], by name.
fn dunning_figures(f: &DunningFunnel) -> [(&'static str, String); 9] {
    let money = |v: i64| major_units(v, &f.currency);
    [
        ("declined", f.declined.to_string()),
        ("declined_amount", money(f.declined_minor)),
        ("recovered", f.recovered.to_string()),
        ("recovered_amount", money(f.recovered_minor)),
        ("paused", f.paused.to_string()),
        ("cancelled", f.cancelled.to_string()),
        ("given_up", f.given_up.to_string()),
        ("open", f.open.to_string()),
        ("recovery_rate_percent", percent(f.recovery_rate_bp)),
    ]
}

/// Basis points as a percentage with two decimals (`-` for none).
pub fn percent(bp: Option<i64>) -> String {
    match bp {
        Some(bp) => format!(
            "{}{}.{:02}",
            if bp < 0 { "-" } else { "" },
            bp.abs() / 100,
            bp.abs() % 100
        ),
        None => "-".to_owned(),
    }
}

/// The business metrics of `from..=to` (months in `time_zone`, the shop's finance calendar).
#[allow(clippy::too_many_arguments)]
pub async fn metrics(
    store: &dyn Store,
    catalog: &Catalog,
    catch_up: CatchUp,
    time_zone: chrono_tz::Tz,
    now: DateTime<Utc>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<MetricsReport, StoreError> {
    // Events are kept as small facts; orders stream through the ledger one at a time.
    let mut facts = Vec::new();
    store
        .metric_events(day_start(time_zone, day_after(to)), &mut |e| {
            facts.extend(metrics::Fact::of(e.customer_id, &e.event));
        })
        .await?;
    let mut ledger = metrics::Ledger::new(facts, time_zone, from, to);
    let mut out_of_order = None;
    store
        .billed_orders(to, &mut |order| {
            if let Err(e) = ledger.order(&order) {
                out_of_order.get_or_insert(e);
            }
        })
        .await?;
    if let Some(e) = out_of_order {
        return Err(StoreError::Corrupt(e.to_string()));
    }
    let declined = store.declined_payments(from, to).await?;
    let mut units_forecast = BTreeMap::new();
    for week in forecast(store, catalog, catch_up, now, UNITS_FORECAST_DAYS).await? {
        for (plan, packs) in week.packs_by_plan {
            *units_forecast.entry(plan).or_default() += packs;
        }
    }
    Ok(MetricsReport {
        from,
        to,
        metrics: ledger.finish(&declined),
        units_forecast_days: UNITS_FORECAST_DAYS,
        units_forecast,
    })
}

/// The first instant of `date` in `time_zone`.
fn day_start(time_zone: chrono_tz::Tz, date: NaiveDate) -> DateTime<Utc> {
    crate::core::schedule::resolve_local(time_zone, date.and_time(chrono::NaiveTime::MIN))
}

fn day_after(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(date)
}

/// The journal's columns, in order.
pub const JOURNAL_COLUMNS: [&str; 8] = [
    "date",
    "entry",
    "order_number",
    "account",
    "debit",
    "credit",
    "currency",
    "memo",
];

/// One line of a double-entry journal: an amount on one side of one account. Each entry's
/// lines (same `entry`) balance: debits equal credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalLine {
    pub date: NaiveDate,
    /// `order BB-…`, `payment BB-…`, `storefront BB-…` or the credit note's number.
    pub entry: String,
    pub order_number: String,
    pub account: String,
    pub currency: String,
    pub debit_minor: i64,
    pub credit_minor: i64,
    pub memo: String,
}

/// Builds one balanced entry from (account, memo, signed amount: debit positive, credit
/// negative) lines, leaving out zero amounts.
fn entry(
    date: NaiveDate,
    entry: String,
    order_number: &str,
    currency: &str,
    lines: &[(&str, &str, i64)],
) -> Vec<JournalLine> {
    lines
        .iter()
        .copied()
        .filter(|(_, _, amount)| *amount != 0)
        .map(|(account, memo, amount)| JournalLine {
            date,
            entry: entry.clone(),
            order_number: order_number.to_owned(),
            account: account.to_owned(),
            currency: currency.to_owned(),
            debit_minor: amount.max(0),
            credit_minor: (-amount).max(0),
            memo: memo.to_owned(),
        })
        .collect()
}

/// An order booked on its billing date: its total owed (receivable) and the discounts given,
/// against revenue net of tax before discounts and the tax payable.
/// `revenue = total + discounts − tax`, so the entry balances by construction.
pub fn order_entry(row: &FinanceOrder, accounts: &Accounts) -> Vec<JournalLine> {
    let discounts = row.subscribe_and_save_discount_minor
        + row.loyalty_discount_minor
        + row.coupon_discount_minor
        + row.price_promise_discount_minor;
    let tax = row.tax_added_minor + row.tax_included_minor;
    entry(
        row.billing_date,
        format!("order {}", row.order_number),
        &row.order_number,
        &row.currency,
        &[
            (&accounts.receivable, "order total", row.total_minor),
            (&accounts.discounts, "discounts", discounts),
            (
                &accounts.revenue,
                "sales net of tax",
                -(row.total_minor + discounts - tax),
            ),
            (&accounts.tax_payable, "tax", -tax),
        ],
    )
}

/// A payment: what the provider collected (less its fee, when it reports one) or the
/// storefront collected, against the order's receivable. Booked on the day it was paid in
/// `time_zone` (a storefront's on the order's billing date).
pub fn payment_entry(
    payment: &JournalPayment,
    accounts: &Accounts,
    time_zone: chrono_tz::Tz,
) -> Vec<JournalLine> {
    let number = &payment.order_number;
    if payment.status == "external" {
        return entry(
            payment.billing_date,
            format!("storefront {number}"),
            number,
            &payment.currency,
            &[
                (
                    &accounts.storefront,
                    "collected by the storefront",
                    payment.amount_minor,
                ),
                (&accounts.receivable, "order total", -payment.amount_minor),
            ],
        );
    }
    let fee = payment.fee_minor.unwrap_or(0);
    let date = payment.paid_at.map_or(payment.billing_date, |at| {
        at.with_timezone(&time_zone).date_naive()
    });
    entry(
        date,
        format!("payment {number}"),
        number,
        &payment.currency,
        &[
            (&accounts.cash, "collected", payment.amount_minor - fee),
            (&accounts.fees, "provider fee", fee),
            (&accounts.receivable, "order total", -payment.amount_minor),
            ("", "", 0),
        ],
    )
}

/// A credit note booked on its billing date: the refund net of tax and the tax given back,
/// against the money returned.
pub fn credit_note_entry(note: &FinanceCreditNote, accounts: &Accounts) -> Vec<JournalLine> {
    entry(
        note.billing_date,
        note.number.clone(),
        &note.order_number,
        &note.currency,
        &[
            (
                &accounts.refunds,
                "refund net of tax",
                note.net_of_tax_minor,
            ),
            (&accounts.tax_payable, "tax refunded", note.tax_minor),
            (&accounts.cash, "refunded", -note.amount_minor),
            ("", "", 0),
        ],
    )
}

/// The journal of `from..=to` into `sink`: each order billed in the period, then each payment
/// collected in it, then each credit note booked in it. Orders are streamed (memory stays
/// flat); returns the number of lines.
pub async fn journal(
    store: &dyn Store,
    accounts: &Accounts,
    time_zone: chrono_tz::Tz,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut (dyn FnMut(JournalLine) -> std::io::Result<()> + Send),
) -> Result<u64, StoreError> {
    let mut lines = 0u64;
    let mut write =
        |entry: Vec<JournalLine>,
         sink: &mut (dyn FnMut(JournalLine) -> std::io::Result<()> + Send)| {
            entry.into_iter().try_for_each(|line| {
                lines += 1;
                sink(line)
            })
        };
    store
        .export_orders(from, to, &mut |row| {
            write(order_entry(&row, accounts), sink)
        })
        .await?;
    let payments = store
        .journal_payments(
            from,
            to,
            day_start(time_zone, from),
            day_start(time_zone, day_after(to)),
        )
        .await?;
    for payment in &payments {
        write(payment_entry(payment, accounts, time_zone), sink).map_err(StoreError::Sink)?;
    }
    for note in store.credit_note_rows(from, to).await? {
        write(credit_note_entry(&note, accounts), sink).map_err(StoreError::Sink)?;
    }
    Ok(lines)
}

/// One journal line as strings, in [`JOURNAL_COLUMNS`] order (an empty side left blank).
pub fn journal_record(line: &JournalLine) -> Vec<String> {
    let side = |minor: i64| {
        if minor == 0 {
            String::new()
        } else {
            major_units(minor, &line.currency)
        }
    };
    vec![
        line.date.to_string(),
        line.entry.clone(),
        line.order_number.clone(),
        csv_text(&line.account),
        side(line.debit_minor),
        side(line.credit_minor),
        line.currency.clone(),
        csv_text(&line.memo),
    ]
}

/// The credit notes export's columns, in order.
pub const CREDIT_NOTE_COLUMNS: [&str; 14] = [
    "number",
    "order_number",
    "order_id",
    "billing_date",
    "created_at",
    "currency",
    "amount",
    "tax",
    "net_of_tax",
    "reason",
    "provider_refund_ref",
    "actor",
    "plan",
    "tax_region",
];

/// One credit note as strings, in [`CREDIT_NOTE_COLUMNS`] order; free text made safe for a
/// spreadsheet as in the orders export.
pub fn credit_note_record(note: &FinanceCreditNote) -> Vec<String> {
    let money = |m: i64| major_units(m, &note.currency);
    vec![
        note.number.clone(),
        note.order_number.clone(),
        note.order_id.to_string(),
        note.billing_date.to_string(),
        note.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        note.currency.clone(),
        money(note.amount_minor),
        money(note.tax_minor),
        money(note.net_of_tax_minor),
        csv_text(&note.reason),
        note.provider_refund_ref.clone().unwrap_or_default(),
        csv_text(&note.actor),
        note.plan.clone(),
        note.tax_region.clone().unwrap_or_default(),
    ]
}

/// One credit note as a JSON object: the CSV's keys, amounts as the same decimal strings.
pub fn credit_note_json(note: &FinanceCreditNote) -> serde_json::Value {
    let money = |m: i64| major_units(m, &note.currency);
    serde_json::json!({
        "number": note.number,
        "order_number": note.order_number,
        "order_id": note.order_id,
        "billing_date": note.billing_date.to_string(),
        "created_at": note.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "currency": note.currency,
        "amount": money(note.amount_minor),
        "tax": money(note.tax_minor),
        "net_of_tax": money(note.net_of_tax_minor),
        "reason": note.reason,
        "provider_refund_ref": note.provider_refund_ref,
        "actor": note.actor,
        "plan": note.plan,
        "tax_region": note.tax_region,
    })
}

/// One broken invariant of the ledger and what breaks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: String,
    pub offenders: Vec<String>,
}

/// Checks the ledger: lines sum to totals, one order per cycle, every order since
/// `confirmations_since` confirmed (older confirmations may have been purged), every active
/// subscription scheduled, every ordered plan in the catalog. Empty when sound.
pub async fn audit(
    store: &dyn Store,
    catalog: &Catalog,
    limit: u32,
    confirmations_since: DateTime<Utc>,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings: Vec<Finding> = store
        .audit(limit, confirmations_since)
        .await?
        .into_iter()
        .filter(|(_, offenders)| !offenders.is_empty())
        .map(|(check, offenders)| Finding { check, offenders })
        .collect();
    let unknown: Vec<String> = store
        .ordered_plans()
        .await?
        .into_iter()
        .filter(|plan| catalog.plan(plan).is_none())
        .map(|plan| format!("plan {plan}"))
        .collect();
    if !unknown.is_empty() {
        findings.push(Finding {
            check: "orders reference a plan the catalog does not have".into(),
            offenders: unknown,
        });
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        let name = |n: &str| n.to_owned();
        Accounts {
            receivable: name("AR"),
            revenue: name("Sales"),
            discounts: name("Discounts"),
            tax_payable: name("Tax"),
            cash: name("Cash"),
            fees: name("Fees"),
            refunds: name("Refunds"),
            storefront: name("Shop"),
        }
    }

    /// (account, debit, credit) of each line.
    fn sides(lines: &[JournalLine]) -> Vec<(&str, i64, i64)> {
        lines
            .iter()
            .map(|l| (l.account.as_str(), l.debit_minor, l.credit_minor))
            .collect()
    }

    fn order(tax_inclusive: bool) -> FinanceOrder {
        // 2 × 49.99 = 99.98, less 10.00 subscribe-and-save, 5.00 loyalty and 2.00 coupon,
        // shipped free; a reminder promised 0.50 less. Taxed on top: 7.25 % of 82.98 = 6.02.
        // Included (19 % VAT): 82.48 × 19 ÷ 119 = 13.17 of the total.
        let (tax, total) = if tax_inclusive {
            (1317, 8248)
        } else {
            (602, 8850)
        };
        FinanceOrder {
            order_number: "BB-0000001-001".into(),
            order_id: 1,
            created_at: crate::test_support::at("2026-03-01T09:00:00Z"),
            billing_date: "2026-03-01".parse().unwrap(),
            customer_id: 1,
            customer_email: "ada@example.com".into(),
            tax_region: Some("X".into()),
            ship_country: None,
            ship_subdivision: None,
            plan: "1-pack".into(),
            packs: 1,
            quantity: 2,
            currency: "USD".into(),
            subtotal_minor: 9998,
            subscribe_and_save_discount_minor: 1000,
            loyalty_discount_minor: 500,
            coupon_discount_minor: 200,
            coupon_code: Some("TWO".into()),
            shipping_minor: 0,
            tax_minor: tax,
            tax_inclusive,
            total_minor: total,
            price_promise_discount_minor: 50,
            tax_added_minor: if tax_inclusive { 0 } else { tax },
            tax_included_minor: if tax_inclusive { tax } else { 0 },
            tax_rate_bp: Some(if tax_inclusive { 1900 } else { 725 }),
            net_of_tax_minor: total - tax,
        }
    }

    #[test]
    fn an_order_books_its_total_discounts_revenue_and_tax_in_balance() {
        let accounts = accounts();
        // Revenue = total + discounts − tax: what was sold before discounts, without tax.
        assert_eq!(
            sides(&order_entry(&order(false), &accounts)),
            [
                ("AR", 8850, 0),
                ("Discounts", 1750, 0),
                ("Sales", 0, 9998),
                ("Tax", 0, 602)
            ]
        );
        assert_eq!(
            sides(&order_entry(&order(true), &accounts)),
            [
                ("AR", 8248, 0),
                ("Discounts", 1750, 0),
                ("Sales", 0, 8681),
                ("Tax", 0, 1317)
            ]
        );
    }

    #[test]
    fn payments_and_credit_notes_book_cash_fees_and_refunds_in_balance() {
        let accounts = accounts();
        let paid = JournalPayment {
            order_number: "BB-0000001-001".into(),
            billing_date: "2026-03-01".parse().unwrap(),
            currency: "USD".into(),
            status: "paid".into(),
            amount_minor: 8850,
            // 02:00 UTC on March 3 is March 2 in New York: the day it is booked on.
            paid_at: Some(crate::test_support::at("2026-03-03T02:00:00Z")),
            fee_minor: Some(287),
        };
        let lines = payment_entry(&paid, &accounts, chrono_tz::America::New_York);
        assert_eq!(
            sides(&lines),
            [("Cash", 8563, 0), ("Fees", 287, 0), ("AR", 0, 8850)]
        );
        assert_eq!(lines[0].date.to_string(), "2026-03-02");
        let no_fee = JournalPayment {
            fee_minor: None,
            ..paid.clone()
        };
        assert_eq!(
            sides(&payment_entry(&no_fee, &accounts, chrono_tz::UTC)),
            [("Cash", 8850, 0), ("AR", 0, 8850)]
        );
        let external = JournalPayment {
            status: "external".into(),
            paid_at: None,
            fee_minor: None,
            ..paid
        };
        let lines = payment_entry(&external, &accounts, chrono_tz::UTC);
        assert_eq!(sides(&lines), [("Shop", 8850, 0), ("AR", 0, 8850)]);
        assert_eq!(lines[0].entry, "storefront BB-0000001-001");
        let note = FinanceCreditNote {
            number: "CN-BB-0000001-001-1".into(),
            order_number: "BB-0000001-001".into(),
            order_id: 1,
            billing_date: "2026-03-05".parse().unwrap(),
            created_at: crate::test_support::at("2026-03-05T10:00:00Z"),
            currency: "USD".into(),
            amount_minor: 1000,
            tax_minor: 68,
            net_of_tax_minor: 932,
            reason: "damaged".into(),
            provider_refund_ref: None,
            actor: "cli".into(),
            plan: "1-pack".into(),
            tax_region: Some("X".into()),
        };
        assert_eq!(
            sides(&credit_note_entry(&note, &accounts)),
            [("Refunds", 932, 0), ("Tax", 68, 0), ("Cash", 0, 1000)]
        );
    }

    #[test]
    fn a_journal_line_leaves_the_other_side_blank_and_neutralizes_text() {
        let mut accounts = accounts();
        accounts.receivable = "=1200 Receivable".into();
        let lines = order_entry(&order(false), &accounts);
        assert_eq!(
            journal_record(&lines[0]),
            [
                "2026-03-01",
                "order BB-0000001-001",
                "BB-0000001-001",
                "'=1200 Receivable",
                "88.50",
                "",
                "USD",
                "order total"
            ]
        );
        assert_eq!(journal_record(&lines[2])[4..6], ["", "99.98"]);
    }

    #[test]
    fn text_that_a_spreadsheet_would_run_is_neutralized() {
        for (cell, shown) in [
            ("=1+2@example.com", "'=1+2@example.com"),
            ("+1@example.com", "'+1@example.com"),
            ("-x@example.com", "'-x@example.com"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tada@example.com", "'\tada@example.com"),
            ("\rada@example.com", "'\rada@example.com"),
            ("ada@example.com", "ada@example.com"),
            ("SAVE10", "SAVE10"),
            ("", ""),
        ] {
            assert_eq!(csv_text(cell), shown, "{cell:?}");
        }
    }
}
