//! The commands that run subsave's machinery: `run` (the daemon), `tick` (one sweep),
//! `migrate` and `demo`.

use std::io::Write;
use std::sync::Arc;

use clap::Args;

use super::{CliError, DemoArgs, JsonFlag, outln, rfc3339, write_json};
use crate::app::{self, App};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::core::money::Money;
use crate::demo::DemoReport;

#[derive(Debug, Args)]
pub struct TickArgs {
    /// Show what the sweep would bill, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: JsonFlag,
}

/// The daemon, until SIGTERM or SIGINT.
pub(super) async fn run(settings: Settings) -> Result<(), CliError> {
    let stop = crate::daemon::stop_on_signals()?;
    crate::daemon::run(settings, Arc::new(SystemClock), stop)
        .await
        .map_err(
            |error| match error.downcast::<crate::daemon::SetupError>() {
                Ok(setup) => CliError::Setup(setup.0),
                Err(other) => CliError::Runtime(other),
            },
        )
}

pub(super) async fn migrate(settings: &Settings, out: &mut dyn Write) -> Result<(), CliError> {
    let backend = App::migrate(settings).await?;
    outln!(
        out,
        "migrations applied to {} ({backend:?})",
        settings.database.url
    );
    Ok(())
}

pub(super) async fn tick(app: &App, args: &TickArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let now = app.now();
    if args.dry_run {
        let planned = app::renewals::dry_run(app).await?;
        if args.output.json {
            return write_json(out, &planned);
        }
        outln!(
            out,
            "dry run at {}: {} order(s) would be written; nothing was changed",
            rfc3339(now),
            planned.len()
        );
        for p in planned {
            outln!(
                out,
                "  {}  subscription {}  cycle {}  {}  {}",
                p.order_number,
                p.subscription_id,
                p.cycle,
                p.plan,
                p.total
            );
        }
        return Ok(());
    }
    let report = app::renewals::sweep(app).await?;
    if args.output.json {
        return write_json(out, &report);
    }
    outln!(
        out,
        "sweep at {}: {} order(s) for {} subscription(s), {} resumed, {} held, {} reminder(s) and {} other message(s) queued",
        rfc3339(now),
        report.orders,
        report.renewed,
        report.resumed,
        report.held,
        report.reminders,
        report.messages - report.reminders
    );
    Ok(())
}

pub(super) async fn demo(
    settings: &Settings,
    clock: &dyn Clock,
    args: &DemoArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let report = crate::demo::run(
        settings,
        &args.dir,
        args.months,
        args.customers as usize,
        clock.now(),
    )
    .await?;
    if args.output.json {
        return write_json(out, &report);
    }
    outln!(
        out,
        "subsave demo: {} customers, {} subscriptions, simulated {} to {} in {:.1} s",
        report.customers,
        report.subscriptions,
        report.from.format("%Y-%m-%d"),
        report.to.format("%Y-%m-%d"),
        started.elapsed().as_secs_f64()
    );
    print_totals(&report, out)?;
    let statuses: Vec<String> = report
        .payments
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    outln!(
        out,
        "\npayments (simulated provider): {}; {} declined attempts, {} recovered after a decline",
        statuses.join(", "),
        report.declined_attempts,
        report.recovered
    );
    outln!(
        out,
        "customers' own pages: {} new cards given, {} 3-D Secure renewals completed, {} restarts",
        report.portal.cards_saved,
        report.portal.payments_confirmed,
        report.portal.restarts
    );
    outln!(
        out,
        "\nshipping: {} of {} subscriptions ship to an address (one moved to California); the simulated warehouse shipped {} orders 1-2 days after billing (through the shipment import), {} waiting",
        report.with_address,
        report.subscriptions,
        report.shipped,
        report.unfulfilled
    );
    outln!(out, "\nemails by kind");
    for (kind, statuses) in &report.emails {
        let parts: Vec<String> = statuses
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        outln!(out, "  {kind:<24} {}", parts.join(", "));
    }
    print_where(&report, out)
}

/// The demo's orders and revenue by plan, and its price components, per currency.
fn print_totals(report: &DemoReport, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(out, "\norders and revenue by plan");
    for (plan, currencies) in &report.by_plan {
        for (orders, revenue) in currencies.values() {
            outln!(
                out,
                "  {plan:<8} {orders:>5} orders {:>16}",
                revenue.to_string()
            );
        }
    }
    let totals: Vec<String> = report.revenue.values().map(Money::to_string).collect();
    outln!(
        out,
        "  {:<8} {:>5} orders {:>16}",
        "total",
        report.orders,
        totals.join(" + ")
    );
    outln!(out, "\nprice components (all orders, per currency)");
    for (kind, currencies) in &report.adjustments {
        for amount in currencies.values() {
            outln!(out, "  {kind:<20} {:>16}", amount.to_string());
        }
    }
    Ok(())
}

/// Where the demo's database and emails are, and how to open its pages and its console.
fn print_where(report: &DemoReport, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(out, "\ndatabase:    {}", report.database);
    outln!(
        out,
        "emails:      {} ({} .eml files; open them with any mail client)",
        report.mail_folder.display(),
        report.eml_files
    );
    outln!(
        out,
        "look around: SUBSAVE_DATABASE__URL='{}' subsave orders list",
        report.database
    );
    if let Some(page) = &report.customer_page {
        outln!(
            out,
            "\na customer's page (skip, change, pause, cancel as the customer would): serve the pages with\n  SUBSAVE_DATABASE__URL='{}' subsave run\nthen open\n  {page}",
            report.database
        );
    }
    outln!(
        out,
        "\nthe console (the last six months' metrics, find a customer, refunds): serve it with\n  SUBSAVE_DATABASE__URL='{}' SUBSAVE_ADMIN__LISTEN={DEMO_CONSOLE} subsave run\nthen open http://{DEMO_CONSOLE}/ and sign in with the admin key\n  {}",
        report.database,
        report.console_key
    );
    Ok(())
}

/// Where the demo's instructions serve the console.
const DEMO_CONSOLE: &str = "127.0.0.1:8082";
