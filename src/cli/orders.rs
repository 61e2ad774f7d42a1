//! `subsave orders list|show|export|refund|cancel|import-shipments`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

use super::{CliError, JsonFlag, customer_ref, outln, rfc3339, usage, write_json};
use crate::app::idempotency::Commit;
use crate::app::orders::{self, ExportRow, OrderQuery};
use crate::app::views::{FulfillmentView, OrderView, PaymentView};
use crate::app::{Actor, App, PageRequest, fulfillments, payments};
use crate::core::money::Money;
use crate::finance::{self, EXPORT_COLUMNS};

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders.
    List {
        /// Only this subscription's orders (its id).
        #[arg(long)]
        subscription: Option<i64>,
        /// Customer id or email.
        #[arg(long)]
        customer: Option<String>,
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show one order with its itemized lines.
    Show {
        /// The order number, e.g. BB-0000042-003.
        order_number: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Export orders by billing date as CSV or JSON lines, streamed (see docs/finance.md), or
    /// the unfulfilled ones for the warehouse.
    Export(ExportArgs),
    /// Cancel an order before it ships: it never ships, and what was collected for it is
    /// refunded with a credit note.
    Cancel {
        /// The order number, e.g. BB-0000042-003.
        order_number: String,
        /// Why, in plain text (at most 500 characters); on the cancellation and its credit note.
        #[arg(long)]
        reason: String,
    },
    /// Record the shipments in a warehouse's CSV file (each once, however often it is
    /// imported); refused rows are listed with their line numbers, and the exit code is 2 when
    /// there are any.
    ImportShipments {
        /// The CSV file: UTF-8 (with or without a BOM), a header row, CRLF or LF.
        file: PathBuf,
        /// Which columns hold what, when the names differ from order_number, carrier,
        /// tracking_number, shipped_at and tracking_url: e.g. "order=Order #,tracking=Tracking
        /// Number,shipped_at=Ship Date".
        #[arg(long)]
        columns: Option<String>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Refund an order (all that is left, or --amount) through its payment provider, and
    /// write a credit note; the order itself never changes.
    Refund {
        /// The order number, e.g. BB-0000042-003.
        order_number: String,
        /// How much, in the order's currency, e.g. 12.50; all that is left by default.
        #[arg(long)]
        amount: Option<String>,
        /// Why, for the credit note.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First billing date (YYYY-MM-DD), inclusive.
    #[arg(long, required_unless_present = "unfulfilled")]
    pub from: Option<NaiveDate>,
    /// Last billing date (YYYY-MM-DD), inclusive.
    #[arg(long, required_unless_present = "unfulfilled")]
    pub to: Option<NaiveDate>,
    /// Instead: the orders not shipped yet, with the columns a warehouse imports (ship-to
    /// fields, SKU, units, plan), oldest first; CSV only.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub unfulfilled: bool,
    /// csv (a header row, then one row per order) or jsonl (one JSON object per line).
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Export the credit notes (refunds) booked in the period instead of the orders, in the
    /// same formats.
    #[arg(long)]
    pub credit_notes: bool,
}

pub(super) async fn run(
    app: &App,
    command: OrdersCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        OrdersCommand::Export(args) if args.unfulfilled => {
            export_unfulfilled(app, &args, out).await?
        }
        OrdersCommand::Export(args) => export(app, &args, out).await?,
        OrdersCommand::Cancel {
            order_number,
            reason,
        } => {
            let (f, note) =
                fulfillments::cancel(app, &Actor::cli(), &order_number, &reason).await?;
            print_fulfillment(&f, out)?;
            if let Some(note) = note {
                outln!(
                    out,
                    "credit note {}: {} refunded (of which tax {})",
                    note.number,
                    note.amount,
                    note.tax
                );
            }
        }
        OrdersCommand::ImportShipments {
            file,
            columns,
            output,
        } => import_shipments(app, &file, columns.as_deref(), output.json, out).await?,
        OrdersCommand::Refund {
            order_number,
            amount,
            reason,
            output,
        } => refund(app, &order_number, amount, &reason, output.json, out).await?,
        OrdersCommand::List {
            subscription,
            customer,
            limit,
            output,
        } => {
            let query = OrderQuery {
                subscription_id: subscription,
                customer: customer.as_deref().map(customer_ref).transpose()?,
                created: Default::default(),
            };
            list(app, &query, limit, output.json, out).await?;
        }
        OrdersCommand::Show {
            order_number,
            output,
        } => show(app, &order_number, output.json, out).await?,
    }
    Ok(())
}

/// `orders list`: the first `limit` orders that `query` names.
async fn list(
    app: &App,
    query: &OrderQuery,
    limit: u32,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let page = orders::list(app, query, PageRequest::first(limit)).await?;
    if json {
        return write_json(out, &page.data);
    }
    outln!(
        out,
        "{:<16} {:>6} {:>5}  {:<8} {:>3}  {:<20} {:>14}",
        "order",
        "sub",
        "cycle",
        "plan",
        "qty",
        "scheduled for",
        "total"
    );
    for o in page.data {
        outln!(
            out,
            "{:<16} {:>6} {:>5}  {:<8} {:>3}  {:<20} {:>14}",
            o.order_number,
            o.subscription_id,
            o.cycle,
            o.plan,
            o.quantity,
            rfc3339(o.scheduled_for),
            o.total.to_string()
        );
    }
    Ok(())
}

/// `orders show`: the itemized order, where it ships, its fulfillment, payment and credit notes.
async fn show(
    app: &App,
    order_number: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let order = orders::show(app, order_number).await?;
    if json {
        return write_json(out, &order);
    }
    print_order(&order, out)?;
    match fulfillments::of_order(app, order_number).await? {
        Some(f) => print_fulfillment(&f, out)?,
        None => outln!(out, "unfulfilled: not shipped yet"),
    }
    let (payment, notes) = payments::of_order(app, order_number).await?;
    if let Some(p) = payment {
        print_payment(&p, out)?;
    }
    for note in notes {
        outln!(
            out,
            "credit note {} ({}): {} refunded, of which tax {}: {}",
            note.number,
            note.billing_date,
            note.amount,
            note.tax,
            crate::core::text::printable(&note.reason)
        );
    }
    Ok(())
}

/// `orders show`'s order: what was ordered, its lines and total, and where it ships.
fn print_order(order: &OrderView, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(
        out,
        "order {}: subscription {} cycle {}, {} × {} ({} packs each), scheduled for {}",
        order.order_number,
        order.subscription_id,
        order.cycle,
        order.plan,
        order.quantity,
        order.packs,
        rfc3339(order.scheduled_for)
    );
    for line in &order.lines {
        outln!(out, "  {:<44} {:>14}", line.label, line.amount.to_string());
    }
    outln!(out, "  {:<44} {:>14}", "Total", order.total.to_string());
    if let Some(tax) = order.tax_included {
        outln!(
            out,
            "  {:<44} {:>14}",
            "of which tax (included)",
            tax.to_string()
        );
    }
    match &order.ship_to {
        Some(a) => outln!(
            out,
            "ships to: {} (tax region {})",
            crate::core::text::printable(&a.one_line()),
            order.tax_region.as_deref().unwrap_or("none")
        ),
        None => outln!(
            out,
            "ships to: no address recorded (tax region {})",
            order.tax_region.as_deref().unwrap_or("none")
        ),
    }
    Ok(())
}

/// `orders show`'s payment line: its state, and when it was paid, is tried next or declined.
fn print_payment(p: &PaymentView, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(
        out,
        "payment: {} via {}, attempt {}{}{}{}",
        p.status,
        p.provider,
        p.attempt,
        p.paid_at
            .map(|at| format!(", paid {}", rfc3339(at)))
            .unwrap_or_default(),
        p.next_attempt_at
            .map(|at| format!(", next try {}", rfc3339(at)))
            .unwrap_or_default(),
        p.decline_code
            .as_ref()
            .map(|code| format!(", declined: {code}"))
            .unwrap_or_default()
    );
    Ok(())
}

/// `orders refund`: a credit note for part (`--amount`, in the order's currency) or all of
/// what is left.
async fn refund(
    app: &App,
    order_number: &str,
    amount: Option<String>,
    reason: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let amount = match amount {
        Some(text) => {
            let currency = payments::order_currency(app, order_number).await?;
            Some(
                Money::parse(&text, currency)
                    .map_err(|e| usage(format!("--amount {text}: {e}")))?,
            )
        }
        None => None,
    };
    let note = payments::refund(
        app,
        order_number,
        amount,
        reason,
        &Actor::cli(),
        Commit::Plain,
    )
    .await?;
    if json {
        return write_json(out, &note);
    }
    outln!(
        out,
        "credit note {} for order {}: {} refunded (of which tax {})",
        note.number,
        note.order_number,
        note.amount,
        note.tax
    );
    Ok(())
}

/// Streams the export, one row at a time, with a row counter on a terminal.
async fn export(app: &App, args: &ExportArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (Some(from), Some(to)) = (args.from, args.to) else {
        return Err(usage("give --from and --to (or --unfulfilled)"));
    };
    orders::check_range(from, to)?;
    let target = export_target(args)?;
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} orders exported ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let tick = || {
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    };
    if args.credit_notes {
        let notes = crate::app::finance::credit_notes(app, from, to).await?;
        write_credit_notes(&notes, args.format, target)?;
        if let Some(path) = &args.output {
            outln!(
                out,
                "{} credit notes exported to {}",
                notes.len(),
                path.display()
            );
        }
        return Ok(());
    }
    let count = match args.format {
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(target);
            writer
                .write_record(EXPORT_COLUMNS)
                .map_err(|e| CliError::Runtime(e.into()))?;
            let mut sink = |row: ExportRow| {
                tick();
                writer
                    .write_record(finance::export_record(&row))
                    .map_err(super::csv_sink_error)
            };
            let count = orders::export(app, from, to, &mut sink).await?;
            writer.flush().map_err(|e| CliError::Runtime(e.into()))?;
            count
        }
        ExportFormat::Jsonl => {
            let mut target = target;
            let mut sink = |row: ExportRow| {
                tick();
                serde_json::to_writer(&mut target, &finance::export_json(&row))
                    .map_err(super::json_sink_error)?;
                target.write_all(b"\n")
            };
            let count = orders::export(app, from, to, &mut sink).await?;
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

fn write_credit_notes(
    notes: &[crate::store::FinanceCreditNote],
    format: ExportFormat,
    mut target: Box<dyn Write + Send>,
) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Runtime(e.into());
    match format {
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(target);
            let csv_failed = |e: csv::Error| CliError::Runtime(e.into());
            writer
                .write_record(finance::CREDIT_NOTE_COLUMNS)
                .map_err(csv_failed)?;
            for note in notes {
                writer
                    .write_record(finance::credit_note_record(note))
                    .map_err(csv_failed)?;
            }
            writer.flush().map_err(failed)
        }
        ExportFormat::Jsonl => {
            for note in notes {
                serde_json::to_writer(&mut target, &finance::credit_note_json(note))
                    .map_err(|e| failed(super::json_sink_error(e)))?;
                target.write_all(b"\n").map_err(failed)?;
            }
            target.flush().map_err(failed)
        }
    }
}

/// Where an export goes: `--output FILE`, or standard output.
fn export_target(args: &ExportArgs) -> Result<Box<dyn Write + Send>, CliError> {
    Ok(match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| usage(format!("--output {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

/// The unfulfilled orders as CSV, streamed a page at a time.
async fn export_unfulfilled(
    app: &App,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if args.format != ExportFormat::Csv {
        return Err(usage("--unfulfilled exports CSV only: use --format csv"));
    }
    let mut writer = csv::Writer::from_writer(export_target(args)?);
    writer
        .write_record(fulfillments::UNFULFILLED_COLUMNS)
        .map_err(|e| CliError::Runtime(e.into()))?;
    let mut sink = |row: Vec<String>| writer.write_record(row).map_err(std::io::Error::other);
    let count = fulfillments::export_unfulfilled(app, &mut sink).await?;
    writer.flush().map_err(|e| CliError::Runtime(e.into()))?;
    if let Some(path) = &args.output {
        outln!(
            out,
            "{count} unfulfilled orders exported to {}",
            path.display()
        );
    }
    Ok(())
}

/// Imports a shipment file and reports each refused row; exit 2 when any was refused.
async fn import_shipments(
    app: &App,
    file: &std::path::Path,
    columns: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let columns = match columns {
        Some(spec) => {
            fulfillments::Columns::parse(spec).map_err(|e| usage(format!("--columns {e}")))?
        }
        None => fulfillments::Columns::default(),
    };
    let reader =
        std::fs::File::open(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let report = fulfillments::import(
        app,
        &Actor::cli(),
        std::io::BufReader::new(reader),
        &columns,
    )
    .await?;
    if json {
        write_json(out, &report)?;
    } else {
        outln!(
            out,
            "{} rows: {} shipments recorded, {} recorded before (unchanged), {} refused",
            report.rows,
            report.applied,
            report.unchanged,
            report.refused_count
        );
        for row in &report.refused {
            outln!(
                out,
                "line {}: {}",
                row.line,
                crate::core::text::printable(&row.reason)
            );
        }
        if report.refused_count > report.refused.len() as u64 {
            outln!(
                out,
                "… and {} more refused rows",
                report.refused_count - report.refused.len() as u64
            );
        }
    }
    if report.refused_count > 0 {
        return Err(CliError::Usage(format!(
            "{} of {} rows refused; the others were applied",
            report.refused_count, report.rows
        )));
    }
    Ok(())
}

/// An order's shipment or cancellation on one line.
fn print_fulfillment(f: &FulfillmentView, out: &mut dyn Write) -> Result<(), CliError> {
    match (&f.shipped_at, &f.reason) {
        (Some(at), _) => outln!(
            out,
            "fulfilled: shipped {} with {} {}{}",
            rfc3339(*at),
            f.carrier.as_deref().unwrap_or_default(),
            f.tracking_number.as_deref().unwrap_or_default(),
            f.tracking_url
                .as_deref()
                .map(|url| format!(" ({url})"))
                .unwrap_or_default()
        ),
        (None, reason) => outln!(
            out,
            "cancelled before it shipped: {}",
            crate::core::text::printable(reason.as_deref().unwrap_or_default())
        ),
    }
    Ok(())
}
