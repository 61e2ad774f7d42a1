//! Finance commands: `report revenue`, `report upcoming`, `report fulfillment` and `audit` (the export is
//! `orders export`, in `orders.rs`).

use std::io::Write;

use chrono::NaiveDate;
use clap::Subcommand;

use super::{CliError, JsonFlag, outln, write_json};
use crate::app::{self, App};
use crate::finance::{RevenueBy, major_units};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Revenue, discounts, shipping and tax between two billing dates.
    Revenue {
        /// First billing date (YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: NaiveDate,
        /// Last billing date (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: NaiveDate,
        /// Group by month, plan or region.
        #[arg(long, value_enum, default_value_t = RevenueBy::Month)]
        by: RevenueBy,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Reconciliation by billing date: orders billed, paid, outstanding, collected by the
    /// storefront, refunded, and the provider's fees.
    Payments {
        /// First billing date (YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: NaiveDate,
        /// Last billing date (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: NaiveDate,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Orders billed at least --days days ago and not shipped yet, the oldest first.
    Fulfillment {
        /// How many days after billing an order counts as late.
        #[arg(long, default_value_t = 2)]
        days: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Renewals, packs per plan and expected revenue, week by week, for the coming days.
    Upcoming {
        /// How many days ahead (1-366).
        #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
}

pub(super) async fn report(
    app: &App,
    command: ReportCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        ReportCommand::Revenue {
            from,
            to,
            by,
            output,
        } => {
            let groups = app::finance::revenue(app, from, to, by).await?;
            if output.json {
                let rows: Vec<serde_json::Value> = groups
                    .iter()
                    .map(|((group, currency), t)| serde_json::json!({ "group": group, "currency": currency, "totals": t }))
                    .collect();
                return write_json(out, &rows);
            }
            outln!(
                out,
                "{:<12} {:<4} {:>7} {:>6} {:>13} {:>11} {:>11} {:>11} {:>10} {:>10} {:>10} {:>13} {:>13} {:>11} {:>13}",
                "group",
                "cur",
                "orders",
                "packs",
                "gross",
                "s&s",
                "loyalty",
                "coupons",
                "shipping",
                "tax added",
                "tax incl.",
                "charged",
                "net of tax",
                "refunds",
                "net − refunds"
            );
            // One total row per currency: amounts in different currencies are never added.
            let mut totals: std::collections::BTreeMap<&str, crate::finance::RevenueTotals> =
                std::collections::BTreeMap::new();
            for ((_, currency), t) in &groups {
                totals.entry(currency.as_str()).or_default().merge(t);
            }
            let rows = groups
                .iter()
                .map(|((group, currency), t)| (group.as_str(), currency.as_str(), t))
                .chain(totals.iter().map(|(currency, t)| ("total", *currency, t)));
            for (group, currency, t) in rows {
                let m = |v: i64| major_units(v, currency);
                outln!(
                    out,
                    "{:<12} {:<4} {:>7} {:>6} {:>13} {:>11} {:>11} {:>11} {:>10} {:>10} {:>10} {:>13} {:>13} {:>11} {:>13}",
                    group,
                    currency,
                    t.orders,
                    t.packs,
                    m(t.gross_minor),
                    m(-t.subscribe_and_save_discount_minor),
                    m(-t.loyalty_discount_minor),
                    m(-t.coupon_discount_minor),
                    m(t.shipping_minor),
                    m(t.tax_added_minor),
                    m(t.tax_included_minor),
                    m(t.net_minor),
                    m(t.net_of_tax_minor),
                    m(-t.refunds_minor),
                    m(t.net_of_tax_after_refunds_minor)
                );
            }
        }
        ReportCommand::Payments { from, to, output } => {
            let days = app::finance::payments(app, from, to).await?;
            if output.json {
                return write_json(out, &days);
            }
            outln!(
                out,
                "{:<10} {:<4} {:>7} {:>13} {:>13} {:>13} {:>13} {:>11} {:>9}",
                "date",
                "cur",
                "orders",
                "billed",
                "paid",
                "outstanding",
                "external",
                "refunded",
                "fees"
            );
            for d in &days {
                let m = |v: i64| major_units(v, &d.currency);
                outln!(
                    out,
                    "{:<10} {:<4} {:>7} {:>13} {:>13} {:>13} {:>13} {:>11} {:>9}",
                    d.billing_date,
                    d.currency,
                    d.orders,
                    m(d.billed_minor),
                    m(d.paid_minor),
                    m(d.outstanding_minor),
                    m(d.external_minor),
                    m(d.refunded_minor),
                    m(d.fees_minor)
                );
            }
        }
        ReportCommand::Fulfillment { days, output } => {
            let report = app::fulfillments::late(app, days).await?;
            if output.json {
                return write_json(out, &report);
            }
            outln!(
                out,
                "{} orders billed {} or more days ago are not shipped{}",
                report.late,
                report.days,
                report
                    .oldest_billed_at
                    .map(|at| format!(" (the oldest billed {})", super::rfc3339(at)))
                    .unwrap_or_default()
            );
            for o in &report.orders {
                outln!(
                    out,
                    "  {}  billed {}  {} days  {}",
                    o.order_number,
                    super::rfc3339(o.billed_at),
                    o.days_waiting,
                    o.ship_country.as_deref().unwrap_or("-")
                );
            }
        }
        ReportCommand::Upcoming { days, output } => {
            let weeks = app::finance::upcoming(app, days).await?;
            if output.json {
                return write_json(out, &weeks);
            }
            let currency = app.catalog().currency.code();
            let plans = app.catalog().plan_id_list();
            let header: Vec<String> = plans.iter().map(|p| format!("{p:>8}")).collect();
            outln!(
                out,
                "{:<12} {:>8} {} {:>14}",
                "week of",
                "renewals",
                header.join(" "),
                "expected"
            );
            for w in weeks {
                let packs: Vec<String> = plans
                    .iter()
                    .map(|p| format!("{:>8}", w.packs_by_plan.get(*p).copied().unwrap_or(0)))
                    .collect();
                outln!(
                    out,
                    "{:<12} {:>8} {} {:>14}",
                    w.week_start,
                    w.renewals,
                    packs.join(" "),
                    format!("{} {currency}", major_units(w.revenue_minor, currency))
                );
            }
            outln!(out, "(columns per plan are packs to ship)");
        }
    }
    Ok(())
}

/// Exits non-zero with the list of what is wrong when the ledger is not sound.
pub(super) async fn audit(app: &App, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let findings = app::finance::audit(app).await?;
    if json {
        write_json(out, &findings)?;
    } else {
        if findings.is_empty() {
            outln!(out, "ledger sound: every check passed");
        }
        for f in &findings {
            outln!(out, "FAIL {}: {}", f.check, f.offenders.join(", "));
        }
        // Not a ledger fault: these renew, taxed by their customer's region.
        let (count, ids) = app::addresses::without_address(app, 20).await?;
        if count > 0 {
            let listed: Vec<String> = ids.iter().map(|id| format!("subscription {id}")).collect();
            outln!(
                out,
                "note: {count} subscription(s) ship without an address and are taxed by their customer's region: {}{}; set one with `subsave subs change ID --ship-to ADDRESS`",
                listed.join(", "),
                if count > ids.len() as i64 {
                    ", …"
                } else {
                    ""
                }
            );
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!(
            "the ledger audit found {} problem(s)",
            findings.len()
        )))
    }
}
