//! What finance reads: the export row format, revenue totals, the demand forecast and the
//! ledger audit. Exports stream `finance_orders` rows from the store one at a time; revenue
//! reports are folded from the same rows (so a report always equals the export's sums); the
//! forecast replays the engine's own planner ([`crate::core::renewal::plan`]) over the coming weeks
//! on in-memory copies of the live subscriptions. Nothing here writes to the database.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use crate::core::catalog::Catalog;
use crate::core::lifecycle::resumed;
use crate::core::model::{Customer, Status, Subscription};
use crate::core::money::{Currency, Money};
use crate::core::renewal;
use crate::core::renewal::CatchUp;
use crate::store::{FinanceCreditNote, FinanceOrder, Store, StoreError};

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
    /// Credit notes booked in the period (by their own billing date), and their tax part.
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
        self.refunds_minor += other.refunds_minor;
        self.refunds_tax_minor += other.refunds_tax_minor;
        self.net_of_tax_after_refunds_minor += other.net_of_tax_after_refunds_minor;
    }

    pub fn add_refund(&mut self, note: &FinanceCreditNote) {
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
    pub revenue_minor: i64,
    /// The currency of `revenue_minor` (the catalog's).
    pub currency: String,
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
                week.revenue_minor += order.total.minor();
                week.cycles.push((order.subscription_id, order.cycle));
            }
        }
        if change.orders.is_empty() {
            return;
        }
        state = change.after;
    }
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
    use super::csv_text;

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
