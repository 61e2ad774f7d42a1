//! The outbox and mail commands: `outbox list|show|retry|deliver` and `mail test`.

use std::io::Write;
use std::sync::Arc;

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use serde_json::json;

use super::operations::{from_store, open_store, usage};
use super::{CliError, JsonFlag, outln, write_json};
use crate::clock::Clock;
use crate::config::Settings;
use crate::mail::mailer::Mailer;
use crate::mail::transport::{self, SendError};
use crate::model::Message;
use crate::store::MessageFilter;

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
        #[arg(long)]
        subscription: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show one message as it would be sent (headers and both parts).
    Show {
        id: i64,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Put a failed message (or every failed one) back in the queue.
    Retry {
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<i64>,
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

const STATUSES: [&str; 4] = ["pending", "sent", "failed", "suppressed"];

pub async fn outbox(
    settings: &Settings,
    clock: &dyn Clock,
    command: OutboxCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        OutboxCommand::List {
            status,
            kind,
            subscription,
            limit,
            output,
        } => {
            if let Some(s) = &status
                && !STATUSES.contains(&s.as_str())
            {
                return Err(usage(format!(
                    "--status \"{s}\": expected one of {}",
                    STATUSES.join(", ")
                )));
            }
            let messages = store
                .messages(&MessageFilter {
                    status,
                    kind,
                    subscription_id: subscription,
                    limit,
                })
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(out, &messages);
            }
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
        }
        OutboxCommand::Show { id, output } => {
            let message = store
                .message(id)
                .await
                .map_err(from_store)?
                .ok_or_else(|| {
                    usage(format!("no outbox message {id}; see `subsave outbox list`"))
                })?;
            let mailer = mailer_for(settings, store.clone())?;
            let email = mailer
                .compose(&message, message.created_at)
                .map_err(|e| CliError::Runtime(anyhow::anyhow!(e)))?;
            let formatted = String::from_utf8_lossy(&email.formatted()).into_owned();
            if output.json {
                return write_json(out, &json!({ "message": message, "rendered": formatted }));
            }
            print_summary(&message, out)?;
            outln!(out, "{formatted}");
        }
        OutboxCommand::Retry { id, failed: _ } => {
            let count = store
                .retry_failed(id, clock.now())
                .await
                .map_err(from_store)?;
            if count == 0 && id.is_some() {
                return Err(usage(format!(
                    "message {} is not failed; only failed messages are retried",
                    id.unwrap_or_default()
                )));
            }
            outln!(out, "{count} message(s) queued again");
        }
        OutboxCommand::Deliver(output) => {
            let mailer = mailer_for(settings, store)?;
            let report = mailer.deliver_due(clock).await.map_err(from_store)?;
            if output.json {
                return write_json(out, &report);
            }
            outln!(
                out,
                "delivered with {}: {} sent, {} to retry, {} failed, {} suppressed",
                mailer.transport().describe(),
                report.sent,
                report.retried,
                report.failed,
                report.suppressed
            );
        }
    }
    Ok(())
}

fn print_summary(m: &Message, out: &mut dyn Write) -> Result<(), CliError> {
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

fn mailer_for(
    settings: &Settings,
    store: Arc<dyn crate::store::Store>,
) -> Result<Mailer, CliError> {
    let transport = transport::from_settings(&settings.mail).map_err(usage)?;
    Ok(Mailer::new(store, Arc::from(transport), &settings.mail))
}

/// Sends one test message with the configured transport, so operators can check SMTP
/// settings; a failure says what the server answered.
pub async fn mail_test(
    settings: &Settings,
    clock: &dyn Clock,
    args: &MailTestArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let to: lettre::message::Mailbox = args
        .to
        .parse()
        .map_err(|e| usage(format!("--to \"{}\": {e}", args.to)))?;
    let transport = transport::from_settings(&settings.mail).map_err(usage)?;
    let email = lettre::Message::builder()
        .from(settings.mail.from.clone())
        .to(to)
        .date(clock.now().into())
        .subject("subsave test message")
        .body(format!(
            "This is a test message from subsave, sent with {}.\n",
            transport.describe()
        ))
        .map_err(|e| usage(e.to_string()))?;
    match transport.send(0, "test", &email).await {
        Ok(reply) => {
            outln!(out, "sent with {}: {reply}", transport.describe());
            Ok(())
        }
        Err(SendError::Permanent(reply)) => Err(CliError::Runtime(anyhow::anyhow!(
            "{} refused the message permanently: {reply}",
            transport.describe()
        ))),
        Err(SendError::Transient(error)) => Err(CliError::Runtime(anyhow::anyhow!(
            "could not deliver through {} (a temporary failure: check host, port, TLS mode and credentials): {error}",
            transport.describe()
        ))),
    }
}
