//! The `subsave` command line: argument definitions (clap) and the commands behind them.
//!
//! Owns parsing command-line values into domain types at the edge (plan ids, intervals, time
//! zones, amounts), dispatching to the library, and printing tables or `--json`. It maps
//! failures to exit codes: 0 ok, 1 runtime failure, 2 usage or config error. It must not hold
//! business rules: prices come from `pricing`, dates from `schedule`.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

mod finance;
mod mail;
mod operations;

use crate::catalog::Catalog;
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::{self, ConfigError, Settings};
use crate::money::{BasisPoints, Money};
use crate::pricing::{self, AppliedCoupon, CouponValue, Quote, QuoteRequest};
use crate::schedule::{Anchor, Interval, parse_time_zone};

/// subsave: a subscribe-and-save billing and reorder daemon.
///
/// It renews subscriptions on schedule, prices each renewal with its discounts, writes orders
/// to PostgreSQL (or SQLite), and emails customers through SMTP.
#[derive(Debug, Parser)]
#[command(name = "subsave", version, propagate_version = true)]
pub struct Cli {
    /// A TOML config file layered over the built-in defaults (environment variables
    /// SUBSAVE_SECTION__KEY override both).
    #[arg(long, global = true, env = "SUBSAVE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run as if it were this instant (RFC 3339, e.g. 2026-12-01T09:00:00Z): the one clock
    /// every command reads, for trials, tests and replays.
    #[arg(long, global = true, env = "SUBSAVE_NOW", value_parser = parse_instant)]
    pub now: Option<DateTime<Utc>>,

    /// Log output format (logs go to stderr; filter with RUST_LOG, e.g. RUST_LOG=subsave=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print it as loaded (secrets redacted).
    CheckConfig(JsonFlag),
    /// List the catalog's plans: list price, subscribe-and-save price, price per pack, interval.
    Plans(JsonFlag),
    /// Price one renewal, itemized, exactly as the renewal engine would.
    Quote(QuoteArgs),
    /// Print a subscription's renewal instants, local and UTC.
    Schedule(ScheduleArgs),
    /// Run the daemon: sweeps on the crontab schedule, the mailer, and /healthz, /readyz,
    /// /metrics, until SIGTERM or SIGINT.
    Run,
    /// The newcomer's first command: a sample shop on the embedded default, six simulated
    /// months of renewals and emails, and a report.
    Demo(DemoArgs),
    /// Apply the database migrations.
    Migrate,
    /// Run one sweep: resume ended pauses, bill every due renewal.
    Tick(operations::TickArgs),
    /// Add, list and show customers.
    #[command(subcommand)]
    Customers(operations::CustomersCommand),
    /// Create, list, show and change subscriptions.
    #[command(subcommand)]
    Subs(operations::SubsCommand),
    /// Create, list and disable coupons.
    #[command(subcommand)]
    Coupons(operations::CouponsCommand),
    /// List and show orders.
    #[command(subcommand)]
    Orders(operations::OrdersCommand),
    /// List, show, retry and deliver outbox messages.
    #[command(subcommand)]
    Outbox(mail::OutboxCommand),
    /// Mail tools: `mail test --to ADDRESS` sends one message with the configured transport.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Finance reports: revenue between dates, upcoming renewals and pack demand.
    #[command(subcommand)]
    Report(finance::ReportCommand),
    /// Check the ledger's invariants; exits 1 with the list of what is wrong.
    Audit(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send a test message, to check the mail settings.
    Test(mail::MailTestArgs),
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON: amounts as integer minor units with their currency, instants in RFC 3339.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The folder to create the demo in (its SQLite database and .eml files).
    #[arg(long, default_value = "subsave-demo")]
    pub dir: PathBuf,
    /// Simulated months.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=36))]
    pub months: u32,
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(4..=1000))]
    pub customers: u32,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// The plan, e.g. 3-pack (see `subsave plans`).
    #[arg(long)]
    pub plan: String,
    /// Shipments of the plan per renewal.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub quantity: u32,
    /// Tax region code from the catalog, e.g. US-CA or DE (none: no tax).
    #[arg(long)]
    pub region: Option<String>,
    /// Orders the subscription already has (selects the loyalty tier).
    #[arg(long, default_value_t = 0)]
    pub orders_so_far: u32,
    /// A percentage coupon, e.g. "10%" or "12.5".
    #[arg(long, value_parser = parse_percent_arg, conflicts_with = "coupon_amount")]
    pub coupon_percent: Option<BasisPoints>,
    /// A fixed-amount coupon in the catalog's currency, e.g. "5.00".
    #[arg(long)]
    pub coupon_amount: Option<String>,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The anchor: local date and time of renewal 0, e.g. 2026-01-31T09:00.
    #[arg(long, value_parser = parse_local_datetime)]
    pub anchor: NaiveDateTime,
    /// The customer's IANA time zone, e.g. Europe/Berlin.
    #[arg(long, value_parser = parse_tz_arg)]
    pub tz: Tz,
    /// The interval, e.g. "1 month", "2 weeks", "30 days".
    #[arg(long, value_parser = parse_interval_arg)]
    pub every: Interval,
    /// How many renewals to print, starting with renewal 1.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    #[command(flatten)]
    pub output: JsonFlag,
}

fn parse_instant(input: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(input)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("\"{input}\" is not an RFC 3339 instant, like 2026-12-01T09:00:00Z"))
}

fn parse_percent_arg(input: &str) -> Result<BasisPoints, String> {
    let with_sign = if input.trim_end().ends_with('%') {
        input.to_owned()
    } else {
        format!("{input}%")
    };
    BasisPoints::parse_percent(&with_sign).map_err(|e| e.to_string())
}

fn parse_local_datetime(input: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(input, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(input, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("\"{input}\" is not a local date and time: expected YYYY-MM-DDTHH:MM, like 2026-01-31T09:00"))
}

fn parse_tz_arg(input: &str) -> Result<Tz, String> {
    parse_time_zone(input).map_err(|e| e.to_string())
}

fn parse_interval_arg(input: &str) -> Result<Interval, String> {
    input.parse::<Interval>().map_err(|e| e.to_string())
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A value on the command line that the catalog or the rules refuse (exit 2).
    #[error("{0}")]
    Usage(String),
    /// An invalid configuration (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Anything that went wrong while doing the work (exit 1).
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

/// Runs one parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = || config::load(cli.config.as_deref());
    let clock: Box<dyn Clock> = match cli.now {
        Some(now) => Box::new(FixedClock(now)),
        None => Box::new(SystemClock),
    };
    let clock = clock.as_ref();
    match cli.command {
        Command::CheckConfig(flag) => check_config(&settings()?, flag.json, out),
        Command::Plans(flag) => plans(&settings()?.catalog, flag.json, out),
        Command::Quote(args) => quote(&settings()?.catalog, &args, out),
        Command::Schedule(args) => schedule(&args, out),
        Command::Run => {
            if cli.now.is_some() {
                return Err(CliError::Usage(
                    "run keeps time with the system clock; --now is for one-off commands".into(),
                ));
            }
            let stop = crate::daemon::stop_on_signals()?;
            crate::daemon::run(settings()?, std::sync::Arc::new(SystemClock), stop).await?;
            Ok(())
        }
        Command::Demo(args) => demo(&settings()?, clock, &args, out).await,
        Command::Migrate => operations::migrate(&settings()?, out).await,
        Command::Tick(args) => operations::tick(&settings()?, clock, &args, out).await,
        Command::Customers(c) => operations::customers(&settings()?, clock, c, out).await,
        Command::Subs(c) => operations::subs(&settings()?, clock, c, out).await,
        Command::Coupons(c) => operations::coupons(&settings()?, clock, c, out).await,
        Command::Orders(c) => operations::orders(&settings()?, c, out).await,
        Command::Report(c) => finance::report(&settings()?, clock, c, out).await,
        Command::Audit(flag) => finance::audit(&settings()?, flag.json, out).await,
        Command::Outbox(c) => mail::outbox(&settings()?, clock, c, out).await,
        Command::Mail(MailCommand::Test(args)) => {
            mail::mail_test(&settings()?, clock, &args, out).await
        }
    }
}

fn write_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(anyhow::Error::from)?;
    writeln!(out).map_err(anyhow::Error::from)?;
    Ok(())
}

macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(anyhow::Error::from)?
    };
}
use outln;

/// The settings as `check-config` prints them: everything but the catalog's contents, which
/// are summarised (see `subsave plans`).
#[derive(Serialize)]
struct SettingsView<'a> {
    database: &'a config::DatabaseSettings,
    mail: &'a config::MailSettings,
    engine: &'a config::EngineSettings,
    reminders: &'a config::ReminderSettings,
    http: &'a config::HttpSettings,
    daemon: &'a config::DaemonSettings,
}

fn check_config(settings: &Settings, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    if json {
        return write_json(out, settings);
    }
    let view = SettingsView {
        database: &settings.database,
        mail: &settings.mail,
        engine: &settings.engine,
        reminders: &settings.reminders,
        http: &settings.http,
        daemon: &settings.daemon,
    };
    let text = toml::to_string(&view).map_err(anyhow::Error::from)?;
    let c = &settings.catalog;
    outln!(out, "# config is valid (secrets are shown as [redacted])");
    outln!(out, "{text}");
    outln!(
        out,
        "# catalog: {} ({}; plans {}; {} tax regions; discount cap {})",
        settings.catalog_source,
        c.currency,
        c.plan_ids(),
        c.tax_regions.len(),
        c.discount_cap
    );
    Ok(())
}

#[derive(Serialize)]
struct PlanRow {
    plan: String,
    product: String,
    packs: u32,
    list_price: Money,
    subscribe_and_save: BasisPoints,
    subscribe_and_save_price: Money,
    price_per_pack: Money,
    default_interval: Interval,
    allowed_intervals: Vec<Interval>,
}

fn plan_rows(catalog: &Catalog) -> Result<Vec<PlanRow>, CliError> {
    catalog
        .plans
        .iter()
        .map(|plan| {
            let saving = plan.list_price.percent(plan.subscribe_and_save);
            let price = plan
                .list_price
                .checked_sub(saving)
                .map_err(anyhow::Error::from)?;
            let per_pack = price.divided_by(plan.packs);
            Ok(PlanRow {
                plan: plan.id.to_string(),
                product: catalog
                    .product(&plan.product_sku)
                    .map_or_else(|| plan.product_sku.clone(), |p| p.name.clone()),
                packs: plan.packs,
                list_price: plan.list_price,
                subscribe_and_save: plan.subscribe_and_save,
                subscribe_and_save_price: price,
                price_per_pack: per_pack,
                default_interval: plan.default_interval,
                allowed_intervals: plan.allowed_intervals.clone(),
            })
        })
        .collect()
}

fn plans(catalog: &Catalog, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let rows = plan_rows(catalog)?;
    if json {
        return write_json(out, &rows);
    }
    outln!(
        out,
        "{:<8} {:>5} {:>12} {:>6} {:>12} {:>10}  {:<10} allowed intervals",
        "plan",
        "packs",
        "list price",
        "S&S",
        "S&S price",
        "per pack",
        "default"
    );
    for r in rows {
        let allowed: Vec<String> = r
            .allowed_intervals
            .iter()
            .map(Interval::to_string)
            .collect();
        outln!(
            out,
            "{:<8} {:>5} {:>12} {:>6} {:>12} {:>10}  {:<10} {}",
            r.plan,
            r.packs,
            r.list_price.to_string(),
            r.subscribe_and_save.to_string(),
            r.subscribe_and_save_price.to_string(),
            r.price_per_pack.to_decimal_string(),
            r.default_interval.to_string(),
            allowed.join(", ")
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct QuoteOutput<'a> {
    plan: &'a str,
    quantity: u32,
    region: Option<&'a str>,
    orders_so_far: u32,
    #[serde(flatten)]
    quote: &'a Quote,
}

fn quote(catalog: &Catalog, args: &QuoteArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let plan = catalog.plan(&args.plan).ok_or_else(|| {
        CliError::Usage(format!(
            "--plan \"{}\": no such plan; the catalog's plans are: {}",
            args.plan,
            catalog.plan_ids()
        ))
    })?;
    let region = match &args.region {
        Some(code) => Some(
            catalog
                .require_tax_region(code)
                .map_err(|e| CliError::Usage(format!("--region {e}")))?,
        ),
        None => None,
    };
    let coupon = match (&args.coupon_percent, &args.coupon_amount) {
        (Some(rate), _) => Some(AppliedCoupon {
            code: "(cli)".into(),
            value: CouponValue::Percent(*rate),
        }),
        (None, Some(text)) => {
            let amount = Money::parse(text, catalog.currency)
                .map_err(|e| CliError::Usage(format!("--coupon-amount: {e}")))?;
            Some(AppliedCoupon {
                code: "(cli)".into(),
                value: CouponValue::Amount(amount),
            })
        }
        (None, None) => None,
    };
    let request = QuoteRequest {
        plan,
        quantity: args.quantity,
        region,
        orders_so_far: args.orders_so_far,
        coupon,
        promised_price: None,
    };
    let quote = pricing::quote(catalog, &request).map_err(|e| CliError::Usage(e.to_string()))?;
    if args.output.json {
        return write_json(
            out,
            &QuoteOutput {
                plan: plan.id.as_str(),
                quantity: args.quantity,
                region: args.region.as_deref(),
                orders_so_far: args.orders_so_far,
                quote: &quote,
            },
        );
    }
    for line in &quote.lines {
        outln!(out, "{:<44} {:>12}", line.label, line.amount.to_string());
    }
    outln!(out, "{:<44} {:>12}", "Total", quote.total.to_string());
    if let Some(tax) = &quote.included_tax {
        outln!(out, "{:<44} {:>12}", tax.label, tax.amount.to_string());
    }
    Ok(())
}

#[derive(Serialize)]
struct ScheduleRow {
    cycle: u32,
    local: String,
    utc: String,
}

fn schedule(args: &ScheduleArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let anchor = Anchor::new(args.anchor, args.tz);
    let rows = (1..=args.count)
        .map(|k| {
            let at = anchor
                .nth(args.every, k)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            Ok(ScheduleRow {
                cycle: k,
                local: at
                    .with_timezone(&args.tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, false),
                utc: at
                    .with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    if args.output.json {
        return write_json(out, &rows);
    }
    outln!(
        out,
        "renewals every {} from {} ({})",
        args.every,
        args.anchor.format("%Y-%m-%d %H:%M"),
        args.tz.name()
    );
    outln!(out, "{:>5}  {:<27} {}", "cycle", "local", "UTC");
    for r in rows {
        outln!(out, "{:>5}  {:<27} {}", r.cycle, r.local, r.utc);
    }
    Ok(())
}

async fn demo(
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
    outln!(out, "\norders and revenue by plan");
    for (plan, (orders, revenue)) in &report.by_plan {
        outln!(
            out,
            "  {plan:<8} {orders:>5} orders {:>16}",
            revenue.to_string()
        );
    }
    outln!(
        out,
        "  {:<8} {:>5} orders {:>16}",
        "total",
        report.orders,
        report.revenue.to_string()
    );
    outln!(out, "\nprice components (all orders)");
    for (kind, amount) in &report.adjustments {
        outln!(out, "  {kind:<20} {:>16}", amount.to_string());
    }
    outln!(out, "\nemails by kind");
    for (kind, statuses) in &report.emails {
        let parts: Vec<String> = statuses
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        outln!(out, "  {kind:<22} {}", parts.join(", "));
    }
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
    Ok(())
}
