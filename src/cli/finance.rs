//! Finance commands: `orders export`, `report revenue`, `report upcoming` and `audit`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

use super::operations::{from_store, open_store, usage};
use super::{CliError, JsonFlag, outln, write_json};
use crate::clock::Clock;
use crate::config::Settings;
use crate::finance::{self, EXPORT_COLUMNS, RevenueBy, major_units};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First billing date (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last billing date (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub to: NaiveDate,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Revenue, discounts, shipping and tax between two billing dates.
    Revenue {
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: NaiveDate,
        #[arg(long, value_enum, default_value_t = RevenueBy::Month)]
        by: RevenueBy,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Renewals, packs per plan and expected revenue, week by week, for the coming days.
    Upcoming {
        #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
}

/// Streams the export, one row at a time, with a row counter on a terminal.
pub async fn export(
    settings: &Settings,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if args.from > args.to {
        return Err(usage(format!(
            "--from {} is after --to {}",
            args.from, args.to
        )));
    }
    let store = open_store(settings).await?;
    let mut target: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| usage(format!("--output {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} orders exported ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let count = match args.format {
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(target);
            writer
                .write_record(EXPORT_COLUMNS)
                .map_err(|e| CliError::Runtime(e.into()))?;
            let mut sink = |row: crate::store::FinanceOrder| {
                if let Some(bar) = &progress {
                    bar.inc(1);
                }
                writer
                    .write_record(finance::export_record(&row))
                    .map_err(std::io::Error::other)
            };
            let count = store
                .export_orders(args.from, args.to, &mut sink)
                .await
                .map_err(from_store)?;
            writer.flush().map_err(|e| CliError::Runtime(e.into()))?;
            count
        }
        ExportFormat::Jsonl => {
            let mut sink = |row: crate::store::FinanceOrder| {
                if let Some(bar) = &progress {
                    bar.inc(1);
                }
                serde_json::to_writer(&mut target, &finance::export_json(&row))
                    .map_err(std::io::Error::other)?;
                target.write_all(b"\n")
            };
            let count = store
                .export_orders(args.from, args.to, &mut sink)
                .await
                .map_err(from_store)?;
            target.flush().map_err(|e| CliError::Runtime(e.into()))?;
            count
        }
    };
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(path) = &args.output {
        outln!(out, "{count} orders exported to {}", path.display());
    }
    Ok(())
}

pub async fn report(
    settings: &Settings,
    clock: &dyn Clock,
    command: ReportCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        ReportCommand::Revenue {
            from,
            to,
            by,
            output,
        } => {
            let groups = finance::revenue(store.as_ref(), from, to, by)
                .await
                .map_err(from_store)?;
            if output.json {
                let rows: Vec<serde_json::Value> = groups
                    .iter()
                    .map(|((group, currency), t)| serde_json::json!({ "group": group, "currency": currency, "totals": t }))
                    .collect();
                return write_json(out, &rows);
            }
            outln!(
                out,
                "{:<12} {:<4} {:>7} {:>6} {:>13} {:>11} {:>11} {:>11} {:>10} {:>10} {:>10} {:>13}",
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
                "net"
            );
            for ((group, currency), t) in &groups {
                let m = |v: i64| major_units(v, currency);
                outln!(
                    out,
                    "{:<12} {:<4} {:>7} {:>6} {:>13} {:>11} {:>11} {:>11} {:>10} {:>10} {:>10} {:>13}",
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
                    m(t.net_minor)
                );
            }
        }
        ReportCommand::Upcoming { days, output } => {
            let weeks = finance::forecast(
                store.as_ref(),
                &settings.catalog,
                settings.engine.catch_up,
                clock.now(),
                days,
            )
            .await
            .map_err(from_store)?;
            if output.json {
                return write_json(out, &weeks);
            }
            let currency = settings.catalog.currency.code();
            let plans: Vec<&str> = settings
                .catalog
                .plans
                .iter()
                .map(|p| p.id.as_str())
                .collect();
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
pub async fn audit(settings: &Settings, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    let findings = finance::audit(store.as_ref(), &settings.catalog, 100)
        .await
        .map_err(from_store)?;
    if json {
        write_json(out, &findings)?;
    } else if findings.is_empty() {
        outln!(out, "ledger sound: every check passed");
    } else {
        for f in &findings {
            outln!(out, "FAIL {}: {}", f.check, f.offenders.join(", "));
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
