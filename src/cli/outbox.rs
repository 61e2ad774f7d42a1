//! `subsave outbox list|show|retry|deliver` and `subsave mail test`.

use std::io::Write;

use chrono::SecondsFormat;
use clap::{Args, Subcommand};

use super::{CliError, JsonFlag, outln, usage, write_json};
use crate::app::idempotency::Commit;
use crate::app::outbox::{self, MessageQuery};
use crate::app::views::MessageView;
use crate::app::{App, AppError, PageRequest};
use crate::clock::Clock;
use crate::config::Settings;
use crate::core::links::Links;
use crate::core::model::{MessageKind, MessageStatus};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List outbox messages.
    List {
        /// pending, sent, failed or suppressed.
        #[arg(long)]
        status: Option<String>,
        /// renewal_reminder, order_confirmation, subscription_created, skipped, paused,
        /// resumed, cancelled or changed.
        #[arg(long)]
        kind: Option<String>,
        /// Only this subscription's messages (its id).
        #[arg(long)]
        subscription: Option<i64>,
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show one message as it would be sent (headers and both parts).
    Show {
        /// Outbox message id (see `outbox list`).
        id: i64,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Put a failed message (or every failed one) back in the queue.
    Retry {
        /// The failed message's id.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<i64>,
        /// Every failed message instead of one.
        #[arg(long)]
        failed: bool,
    },
    /// Deliver every message due now with the configured transport, once.
    Deliver(JsonFlag),
}

#[derive(Debug, Args)]
pub struct MailTestArgs {
    /// Where to send the test message.
    #[arg(long)]
    pub to: String,
}

pub(super) async fn run(
    app: &App,
    command: OutboxCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        OutboxCommand::List {
            status,
            kind,
            subscription,
            limit,
            output,
        } => {
            let query = MessageQuery {
                status: status
                    .map(|s| s.parse::<MessageStatus>())
                    .transpose()
                    .map_err(|e| usage(format!("--status {e}")))?,
                kind: kind
                    .map(|k| k.parse::<MessageKind>())
                    .transpose()
                    .map_err(|e| usage(format!("--kind {e}")))?,
                subscription_id: subscription,
            };
            let page = outbox::list(app, &query, PageRequest::first(limit)).await?;
            if output.json {
                return write_json(out, &page.data);
            }
            print_messages(&page.data, out)?;
        }
        OutboxCommand::Show { id, output } => {
            let shown = outbox::show(app, &links(app)?, id).await?;
            if output.json {
                return write_json(out, &shown);
            }
            print_summary(&shown.message, out)?;
            outln!(out, "{}", shown.rendered);
        }
        OutboxCommand::Retry { id, failed: _ } => {
            let count = outbox::retry(app, id, Commit::Plain).await?;
            outln!(out, "{count} message(s) queued again");
        }
        OutboxCommand::Deliver(output) => {
            let (transport, report) = outbox::deliver(app, &links(app)?).await?;
            if output.json {
                return write_json(out, &report);
            }
            outln!(
                out,
                "delivered with {transport}: {} sent, {} to retry, {} failed, {} suppressed",
                report.sent,
                report.retried,
                report.failed,
                report.suppressed
            );
        }
    }
    Ok(())
}

/// The link signer of the settings' keys, built here at the CLI's edge for the two commands
/// that render emails (reading, and the first time creating, the key file).
fn links(app: &App) -> Result<Links, AppError> {
    crate::link_keys::links(&app.settings().web).map_err(|e| AppError::invalid(e.to_string()))
}

/// `outbox list`'s table: each message's kind, status, tries, recipient and next attempt.
fn print_messages(messages: &[MessageView], out: &mut dyn Write) -> Result<(), CliError> {
    outln!(
        out,
        "{:>7}  {:<22} {:<10} {:>3}  {:<28} {:<20} last",
        "id",
        "kind",
        "status",
        "try",
        "recipient",
        "next attempt"
    );
    for m in messages {
        outln!(
            out,
            "{:>7}  {:<22} {:<10} {:>3}  {:<28} {:<20} {}",
            m.id,
            m.kind,
            m.status,
            m.attempts,
            m.recipient,
            m.next_attempt_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            m.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

fn print_summary(m: &MessageView, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(
        out,
        "# outbox {}: {} to {}, {} after {} attempt(s){}",
        m.id,
        m.kind,
        m.recipient,
        m.status,
        m.attempts,
        m.last_error
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    Ok(())
}

/// Sends one test message with the configured transport, so operators can check SMTP
/// settings; a failure says what the server answered.
pub(super) async fn mail_test(
    settings: &Settings,
    clock: &dyn Clock,
    args: &MailTestArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let to: lettre::message::Mailbox = args
        .to
        .parse()
        .map_err(|e| usage(format!("--to \"{}\": {e}", args.to)))?;
    let reply = outbox::send_test(&settings.mail, clock.now(), to).await?;
    outln!(out, "{reply}");
    Ok(())
}
