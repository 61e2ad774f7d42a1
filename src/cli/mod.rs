//! The `subsave` command line: a thin door onto the application layer (`app`).
//!
//! Owns the argument definitions (clap), parsing command-line values into typed input at the
//! edge (plan ids, intervals, time zones, amounts, customer references), calling one use case
//! per command, and printing tables or `--json` (the `app::views` shapes). It maps failures to
//! exit codes: 0 ok, 1 runtime failure, 2 usage, refusal or config error. One file per command
//! family; helpers they share are here. It must not hold business rules or call the store:
//! every command goes through `app`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

mod api_keys;
mod catalog;
mod coupons;
mod customers;
mod daemon;
mod finance;
mod man;
mod orders;
mod outbox;
mod payments;
mod subscriptions;

use crate::app::{App, AppError, CustomerRef};
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::{self, ConfigError};
use crate::core::metadata::{ExternalId, MetadataPatch, MetadataUpdate};
use crate::core::money::BasisPoints;
use crate::core::schedule::{Interval, parse_time_zone};

/// A subscribe-and-save billing and reorder daemon.
///
/// It renews subscriptions on schedule, prices each renewal with its discounts, writes orders
/// to PostgreSQL (or SQLite), and emails customers through SMTP.
#[derive(Debug, Parser)]
#[command(name = "subsave", version, propagate_version = true, after_help = AFTER_HELP)]
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

const AFTER_HELP: &str = "\
EXAMPLES:
  subsave demo                                   a sample shop, six simulated months, a report
  subsave plans                                  the catalog's plans and prices
  subsave quote --plan 3-pack --region US-CA     one renewal, itemized
  subsave customers add --email ada@example.com --name Ada --tz America/New_York
  subsave subs create --customer ada@example.com --plan 3-pack
  subsave --now 2027-03-01T00:00:00Z tick --dry-run
  SUBSAVE_CONFIG=/etc/subsave/subsave.toml subsave run --log-format json

EXIT CODES:
  0  done
  1  a runtime failure (the database or the mail server failed; retrying may help)
  2  a usage, refusal or configuration error (fix the command or the config)";

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
    Tick(daemon::TickArgs),
    /// Add, list and show customers.
    #[command(subcommand)]
    Customers(customers::CustomersCommand),
    /// Create, list, show and change subscriptions.
    #[command(subcommand)]
    Subs(subscriptions::SubsCommand),
    /// Create, list and disable coupons.
    #[command(subcommand)]
    Coupons(coupons::CouponsCommand),
    /// List, show and export orders; refund one.
    #[command(subcommand)]
    Orders(orders::OrdersCommand),
    /// Charge due payments, list payments, set a customer's payment method.
    #[command(subcommand)]
    Payments(payments::PaymentsCommand),
    /// Create, list and revoke keys for the HTTP API.
    #[command(subcommand)]
    ApiKeys(api_keys::ApiKeysCommand),
    /// List, show, retry and deliver outbox messages.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Mail tools: `mail test --to ADDRESS` sends one message with the configured transport.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Finance reports: revenue between dates, the payments reconciliation, upcoming renewals
    /// and pack demand.
    #[command(subcommand)]
    Report(finance::ReportCommand),
    /// Check the ledger's invariants; exits 1 with the list of what is wrong.
    Audit(JsonFlag),
    /// Print a shell completion script, e.g. `subsave completions bash > /etc/bash_completion.d/subsave`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `subsave man > /usr/local/share/man/man1/subsave.1`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send a test message, to check the mail settings.
    Test(outbox::MailTestArgs),
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON: amounts as integer minor units with their currency, instants in RFC 3339.
    #[arg(long)]
    pub json: bool,
}

/// The storefront's fields of a command that creates or changes a customer or subscription.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// The storefront's own id for it: unique per kind (customer, subscription), 1-255
    /// characters.
    #[arg(long)]
    pub external_id: Option<String>,
    /// A metadata key and its value, KEY=VALUE; repeat for more (at most 50 keys of 1-40
    /// characters, values of at most 500). On a change, KEY= removes the key.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
}

impl MetadataArgs {
    /// The external id and metadata change given, parsed.
    pub fn parse(&self) -> Result<MetadataUpdate, CliError> {
        let external_id = self
            .external_id
            .as_deref()
            .map(ExternalId::parse)
            .transpose()
            .map_err(|e| usage(format!("--external-id: {e}")))?;
        let mut map = std::collections::BTreeMap::new();
        for pair in &self.metadata {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                usage(format!(
                    "--metadata \"{pair}\": expected KEY=VALUE (KEY= removes the key)"
                ))
            })?;
            map.insert(key.to_owned(), Some(value.to_owned()));
        }
        let metadata = MetadataPatch::parse(map).map_err(|e| usage(format!("--metadata: {e}")))?;
        Ok(MetadataUpdate {
            external_id: external_id.map(Some),
            metadata,
        })
    }
}

/// The external id and metadata lines of `customers show` and `subs show`.
fn print_metadata(
    external_id: Option<&str>,
    metadata: &std::collections::BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    outln!(out, "external id: {}", external_id.unwrap_or("-"));
    if !metadata.is_empty() {
        outln!(out, "metadata:");
    }
    for (key, value) in metadata {
        outln!(out, "  {key}: {value}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The folder to create the demo in (its SQLite database and .eml files).
    #[arg(long, default_value = "subsave-demo")]
    pub dir: PathBuf,
    /// Simulated months, ending now (the system clock's, or --now).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=36))]
    pub months: u32,
    /// Sample customers to create (4-1000).
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
    /// Where it ships (ISO 3166-1 alpha-2, e.g. DE): its shipping zone, and its tax region
    /// when --region is not given.
    #[arg(long)]
    pub country: Option<String>,
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
    /// The database or the catalog does not fit this build (no schema, migrations behind, a
    /// plan in use missing from the catalog): a person must act, retrying will not help
    /// (exit 2).
    #[error("{0}")]
    Setup(String),
    /// Anything that went wrong while doing the work (exit 1).
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config(_) | CliError::Setup(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }

    /// Whoever read the output closed it (`subsave … | head -1`): not a failure of the
    /// command, which ends quietly as Unix tools do.
    pub fn is_closed_output(&self) -> bool {
        let CliError::Runtime(error) = self else {
            return false;
        };
        error.chain().any(|cause| {
            let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
                match cause.downcast_ref::<csv::Error>().map(csv::Error::kind) {
                    Some(csv::ErrorKind::Io(io)) => Some(io),
                    _ => None,
                }
            });
            io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }
}

/// A CSV writer's failure as the I/O error a streaming sink returns, keeping its kind: a
/// closed pipe stays `BrokenPipe`, so that the command still ends quietly
/// ([`CliError::is_closed_output`]).
fn csv_sink_error(error: csv::Error) -> std::io::Error {
    let kind = match error.kind() {
        csv::ErrorKind::Io(io) => io.kind(),
        _ => std::io::ErrorKind::Other,
    };
    std::io::Error::new(kind, error)
}

/// [`csv_sink_error`] for a JSON writer's failure (a streamed row, or a whole `--json` report).
fn json_sink_error(error: serde_json::Error) -> std::io::Error {
    std::io::Error::new(
        error.io_error_kind().unwrap_or(std::io::ErrorKind::Other),
        error,
    )
}

/// A refusal is a usage error (exit 2), naming the flag it is about; a failure of the store
/// or a peer is a runtime error (exit 1).
impl From<AppError> for CliError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::InvalidInput {
                field: Some(field),
                message,
            } => CliError::Usage(format!("--{}{message}", field.replace('_', "-"))),
            // A database that cannot be opened for a reason a person must fix (no such
            // database or folder, a wrong password) is a setup error.
            AppError::Store(e @ crate::store::StoreError::Connect { .. }) if !e.is_retryable() => {
                CliError::Setup(e.to_string())
            }
            AppError::Store(e) => CliError::Runtime(anyhow::Error::new(e)),
            AppError::Unavailable(m) => CliError::Runtime(anyhow::anyhow!(m)),
            refused => CliError::Usage(refused.to_string()),
        }
    }
}

/// Runs one parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = || config::load(cli.config.as_deref());
    let clock: Arc<dyn Clock> = match cli.now {
        Some(now) => Arc::new(FixedClock(now)),
        None => Arc::new(SystemClock),
    };
    let app = || async {
        let app = App::open(Arc::new(settings()?), clock.clone()).await?;
        if let Err(crate::store::NotReady::Schema(reason)) = app.store().ready().await {
            return Err(CliError::Setup(reason));
        }
        Ok::<_, CliError>(app)
    };
    match cli.command {
        Command::CheckConfig(flag) => {
            let settings = settings()?;
            catalog::check_config(&settings, flag.json, out)?;
            catalog::check_database(&settings, flag.json, out).await
        }
        Command::Plans(flag) => catalog::plans(&settings()?.catalog, flag.json, out),
        Command::Quote(args) => catalog::quote(&settings()?.catalog, &args, out),
        Command::Schedule(args) => catalog::schedule(&args, out),
        Command::Run => {
            if cli.now.is_some() {
                return Err(CliError::Usage(
                    "run keeps time with the system clock; --now is for one-off commands".into(),
                ));
            }
            daemon::run(settings()?).await
        }
        Command::Demo(args) => daemon::demo(&settings()?, clock.as_ref(), &args, out).await,
        Command::Migrate => daemon::migrate(&settings()?, out).await,
        Command::Tick(args) => daemon::tick(&app().await?, &args, out).await,
        Command::Customers(c) => customers::run(&app().await?, c, out).await,
        Command::Subs(c) => subscriptions::run(&app().await?, c, out).await,
        Command::Coupons(c) => coupons::run(&app().await?, c, out).await,
        Command::Orders(c) => orders::run(&app().await?, c, out).await,
        Command::ApiKeys(c) => api_keys::run(&app().await?, c, out).await,
        Command::Payments(c) => payments::run(&app().await?, c, out).await,
        Command::Report(c) => finance::report(&app().await?, c, out).await,
        Command::Audit(flag) => finance::audit(&app().await?, flag.json, out).await,
        Command::Outbox(c) => outbox::run(&app().await?, c, out).await,
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "subsave", &mut script);
            out.write_all(&script).map_err(anyhow::Error::from)?;
            Ok(())
        }
        Command::Man => man::render(out).map_err(|e| CliError::Runtime(e.into())),
        Command::Mail(MailCommand::Test(args)) => {
            outbox::mail_test(&settings()?, clock.as_ref(), &args, out).await
        }
    }
}

fn write_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(|e| anyhow::Error::from(json_sink_error(e)))?;
    writeln!(out).map_err(anyhow::Error::from)?;
    Ok(())
}

/// Writes one line of a table or message. Stored text (a name, a reason, a server's reply)
/// may hold escape sequences from before they were refused at the edge: they are shown
/// escaped, never obeyed by the terminal.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, "{}", $crate::core::text::printable(&format!($($arg)*)))
            .map_err(anyhow::Error::from)?
    };
}
use outln;

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A customer named on the command line: an id, or an email address.
fn customer_ref(input: &str) -> Result<CustomerRef, CliError> {
    input.parse().map_err(usage)
}

/// An instant as the local time of the subscription's zone, or `none`.
fn local_time(at: Option<DateTime<Utc>>, time_zone: &str) -> Option<String> {
    let tz: Tz = time_zone.parse().ok()?;
    at.map(|at| {
        at.with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it takes.
    #[test]
    fn every_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "subsave", &mut missing);
        assert!(
            missing.is_empty(),
            "{} undescribed: {missing:#?}",
            missing.len()
        );
    }

    /// A writer whose reader has gone (`… | head -1`).
    struct ClosedPipe;

    impl std::io::Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    /// A streamed row that meets a closed pipe fails the store's sink with an I/O error that
    /// still says `BrokenPipe`, so the command ends quietly; another failure does not.
    #[test]
    fn a_closed_pipe_in_a_streaming_sink_is_still_a_closed_output() {
        let stopped = |sink_error: std::io::Error| {
            let store = crate::store::StoreError::Sink(sink_error);
            super::CliError::from(crate::app::AppError::from(store)).is_closed_output()
        };
        let mut csv = csv::WriterBuilder::new()
            .buffer_capacity(1)
            .from_writer(ClosedPipe);
        let csv_failure = csv.write_record(["a", "b"]).unwrap_err();
        assert!(stopped(super::csv_sink_error(csv_failure)));
        let json_failure = serde_json::to_writer(ClosedPipe, &[1, 2]).unwrap_err();
        assert!(stopped(super::json_sink_error(json_failure)));
        // What the sinks did before: the pipe's kind hidden behind `Other`.
        let hidden = csv::WriterBuilder::new()
            .buffer_capacity(1)
            .from_writer(ClosedPipe)
            .write_record(["a"])
            .unwrap_err();
        assert!(!stopped(std::io::Error::other(hidden)));
        let full = csv::Error::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(!stopped(super::csv_sink_error(full)));
    }
}
