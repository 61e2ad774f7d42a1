//! Finance commands: `report revenue`, `report payments`, `report metrics`, `report journal`,
//! `report upcoming`, `report fulfillment` and `audit` (the export is `orders export`, in
//! `orders.rs`).

use std::collections::BTreeMap;
use std::io::Write;

use chrono::NaiveDate;
use clap::Subcommand;

use super::{CliError, JsonFlag, outln, write_json};
use crate::app::{self, App};
use crate::core::metrics::Metrics;
use crate::finance::{self, MetricsReport, RevenueBy, major_units, percent};

/// How a report is printed: a table for people, or CSV for a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
}

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
        /// table, or csv: per group a row of its orders and a row of its credit notes
        /// (negative), so that each column adds up to the figure after refunds.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table, conflicts_with = "json")]
        format: ReportFormat,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// The double-entry journal for the accounting system: each order (receivable, discounts,
    /// revenue net of tax, tax payable), each payment collected (cash, fees, receivable) and
    /// each credit note (refunds, tax, cash); every entry balances.
    Journal {
        /// First day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: NaiveDate,
        /// Last day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: NaiveDate,
        /// table, or csv (a header row, then one row per line).
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
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
    /// Business metrics by month: MRR and its movements, churn, average revenue per
    /// subscription, cohorts, the dunning funnel, cancellation reasons, and the packs per plan
    /// the next 90 days will ship (formulas: docs/finance.md).
    Metrics {
        /// First day (YYYY-MM-DD), inclusive: its month is the first reported.
        #[arg(long)]
        from: NaiveDate,
        /// Last day (YYYY-MM-DD), inclusive: the last month's MRR is taken at its end.
        #[arg(long)]
        to: NaiveDate,
        /// table, or csv: one row per figure (section, period, currency, name, value).
        #[arg(long, value_enum, default_value_t = ReportFormat::Table, conflicts_with = "json")]
        format: ReportFormat,
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
            format,
            output,
        } => {
            let groups = app::finance::revenue(app, from, to, by).await?;
            if format == ReportFormat::Csv {
                let rows = groups.iter().flat_map(|((group, currency), t)| {
                    finance::revenue_records(group, currency, t)
                });
                return write_csv(out, &finance::REVENUE_COLUMNS, rows);
            }
            if output.json {
                let rows: Vec<serde_json::Value> = groups
                    .iter()
                    .map(|((group, currency), t)| serde_json::json!({ "group": group, "currency": currency, "totals": t }))
                    .collect();
                return write_json(out, &rows);
            }
            revenue_table(&groups, out)?;
        }
        ReportCommand::Payments { from, to, output } => {
            let days = app::finance::payments(app, from, to).await?;
            if output.json {
                return write_json(out, &days);
            }
            payments_table(&days, out)?;
        }
        ReportCommand::Journal { from, to, format } => {
            // Streamed like the orders export: straight to standard output, row by row.
            let target = std::io::BufWriter::new(std::io::stdout());
            journal(app, from, to, format, target).await?;
        }
        ReportCommand::Metrics {
            from,
            to,
            format,
            output,
        } => {
            let report = app::finance::metrics(app, from, to).await?;
            if output.json {
                return write_json(out, &report);
            }
            match format {
                ReportFormat::Table => metrics_table(&report, out)?,
                ReportFormat::Csv => metrics_csv(&report, out)?,
            }
        }
        ReportCommand::Fulfillment { days, output } => {
            let report = app::fulfillments::late(app, days).await?;
            if output.json {
                return write_json(out, &report);
            }
            fulfillment_table(&report, out)?;
        }
        ReportCommand::Upcoming { days, output } => {
            let weeks = app::finance::upcoming(app, days).await?;
            if output.json {
                return write_json(out, &weeks);
            }
            upcoming_table(app, &weeks, out)?;
        }
    }
    Ok(())
}

/// `report revenue`'s table: a row per group and currency, then one total row per currency.
fn revenue_table(
    groups: &BTreeMap<(String, String), crate::finance::RevenueTotals>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
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
    for ((_, currency), t) in groups {
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
    Ok(())
}

/// `report payments`' table: per billing day and currency, billed against paid, outstanding,
/// collected by the storefront, refunded and the fees.
fn payments_table(days: &[crate::store::PaymentDay], out: &mut dyn Write) -> Result<(), CliError> {
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
    for d in days {
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
    Ok(())
}

/// `report upcoming`'s table: per week, the renewals, the packs of each plan and the
/// expected revenue per currency.
fn upcoming_table(
    app: &App,
    weeks: &[finance::WeekForecast],
    out: &mut dyn Write,
) -> Result<(), CliError> {
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
            std::iter::once((currency, w.revenue_minor))
                .chain(w.other_currencies.iter().map(|(c, v)| (c.as_str(), *v)))
                .map(|(c, v)| format!("{} {c}", major_units(v, c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    outln!(out, "(columns per plan are packs to ship)");
    Ok(())
}

/// `report fulfillment`'s lines: how many orders wait past the days given, then each of them.
fn fulfillment_table(
    report: &app::fulfillments::LateReport,
    out: &mut dyn Write,
) -> Result<(), CliError> {
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
    Ok(())
}

async fn journal(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
    format: ReportFormat,
    target: impl Write + Send,
) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Runtime(e.into());
    match format {
        ReportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(target);
            writer
                .write_record(finance::JOURNAL_COLUMNS)
                .map_err(|e| CliError::Runtime(e.into()))?;
            let mut sink = |line: finance::JournalLine| {
                writer
                    .write_record(finance::journal_record(&line))
                    .map_err(super::csv_sink_error)
            };
            app::finance::journal(app, from, to, &mut sink).await?;
            writer.flush().map_err(failed)
        }
        ReportFormat::Table => {
            let mut target = target;
            let row = |cells: [&str; 6]| {
                let [date, entry, account, debit, credit, currency] = cells;
                let text = format!(
                    "{date:<10} {entry:<26} {account:<30} {debit:>12} {credit:>12} {currency}"
                );
                crate::core::text::printable(&text).into_owned()
            };
            writeln!(
                target,
                "{}",
                row(["date", "entry", "account", "debit", "credit", "cur"])
            )
            .map_err(failed)?;
            let mut sink = |line: finance::JournalLine| {
                let record = finance::journal_record(&line);
                let date = line.date.to_string();
                writeln!(
                    target,
                    "{}",
                    row([
                        &date,
                        &line.entry,
                        &line.account,
                        &record[4],
                        &record[5],
                        &line.currency
                    ])
                )
            };
            app::finance::journal(app, from, to, &mut sink).await?;
            target.flush().map_err(failed)
        }
    }
}

/// A rate in basis points as a percentage with two decimals ("9.09"); "-" for no rate.
fn metrics_table(report: &MetricsReport, out: &mut dyn Write) -> Result<(), CliError> {
    let m = &report.metrics;
    mrr_table(m, out)?;
    outln!(out, "");
    outln!(
        out,
        "Cohorts by first-order month: customers with MRR at the end of month 0, 1, 2, …"
    );
    for c in &m.cohorts {
        let retained: Vec<String> = c.retained.iter().map(|n| format!("{n:>4}")).collect();
        outln!(
            out,
            "{:<8} {:<4} {:>5} |{}",
            c.month,
            c.currency,
            c.customers,
            retained.join("")
        );
    }
    outln!(out, "");
    dunning_table(m, out)?;
    outln!(out, "");
    outln!(out, "Cancellations by reason");
    for r in &m.cancellation_reasons {
        outln!(out, "{:>6}  {}", r.cancellations, r.reason);
    }
    outln!(out, "");
    outln!(
        out,
        "Packs to ship in the next {} days, by plan",
        report.units_forecast_days
    );
    for (plan, packs) in &report.units_forecast {
        outln!(out, "{plan:<10} {packs:>8}");
    }
    Ok(())
}

/// The MRR part of `report metrics`: per month and currency, MRR and its movements, churn
/// and ARPS.
fn mrr_table(m: &Metrics, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(out, "MRR by month (net of tax, per month; rates in %)");
    outln!(
        out,
        "{:<8} {:<4} {:>12} {:>11} {:>11} {:>11} {:>11} {:>11} {:>12} {:>9} {:>6} {:>6} {:>7} {:>10}",
        "month",
        "cur",
        "start",
        "new",
        "expansion",
        "contract.",
        "churned",
        "reactiv.",
        "end",
        "customers",
        "subs",
        "logo",
        "revenue",
        "ARPS"
    );
    for row in &m.months {
        let money = |v: i64| major_units(v, &row.currency);
        outln!(
            out,
            "{:<8} {:<4} {:>12} {:>11} {:>11} {:>11} {:>11} {:>11} {:>12} {:>9} {:>6} {:>6} {:>7} {:>10}",
            row.month,
            row.currency,
            money(row.mrr_start_minor),
            money(row.new_minor),
            money(row.expansion_minor),
            money(-row.contraction_minor),
            money(-row.churned_minor),
            money(row.reactivated_minor),
            money(row.mrr_end_minor),
            row.customers_end,
            row.subscriptions_end,
            percent(row.logo_churn_bp),
            percent(row.revenue_churn_bp),
            row.arps_minor.map_or_else(|| "-".to_owned(), money)
        );
    }
    Ok(())
}

/// The dunning part of `report metrics`: per currency, declined payments and where they ended.
fn dunning_table(m: &Metrics, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(
        out,
        "Dunning (payments declined at least once, billed in the period)"
    );
    outln!(
        out,
        "{:<4} {:>8} {:>12} {:>9} {:>12} {:>6} {:>9} {:>8} {:>5} {:>9}",
        "cur",
        "declined",
        "amount",
        "recovered",
        "amount",
        "paused",
        "cancelled",
        "gave up",
        "open",
        "recovery"
    );
    for f in &m.dunning {
        let money = |v: i64| major_units(v, &f.currency);
        outln!(
            out,
            "{:<4} {:>8} {:>12} {:>9} {:>12} {:>6} {:>9} {:>8} {:>5} {:>9}",
            f.currency,
            f.declined,
            money(f.declined_minor),
            f.recovered,
            money(f.recovered_minor),
            f.paused,
            f.cancelled,
            f.given_up,
            f.open,
            percent(f.recovery_rate_bp)
        );
    }
    Ok(())
}

/// Every figure of the report as one CSV row ([`crate::finance::metrics_rows`]).
fn metrics_csv(report: &MetricsReport, out: &mut dyn Write) -> Result<(), CliError> {
    write_csv(
        out,
        &crate::finance::METRICS_COLUMNS,
        crate::finance::metrics_rows(report)
            .into_iter()
            .map(Vec::from),
    )
}

/// A header row, then `rows`, as CSV.
fn write_csv(
    out: &mut dyn Write,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<(), CliError> {
    let mut writer = csv::Writer::from_writer(out);
    let written = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .try_for_each(|r: Vec<String>| writer.write_record(&r));
    written
        .and_then(|()| writer.flush().map_err(csv::Error::from))
        .map_err(|e| CliError::Runtime(e.into()))
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
