//! `subsave payments collect|list|set-method`, and `orders refund` (in `orders.rs`).

use std::io::Write;

use clap::Subcommand;

use super::{CliError, JsonFlag, customer_ref, outln, rfc3339, write_json};
use crate::app::payments::{self, PaymentQuery};
use crate::app::{App, PageRequest};
use crate::core::model::{PaymentRefs, PaymentStatus};

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// Charge every payment due now, once (`subsave run` does this every payments.poll_secs).
    Collect(JsonFlag),
    /// List payments, by id.
    List {
        /// Only payments in this state: external, pending, paid, requires_action, failed,
        /// refunded, partially_refunded.
        #[arg(long, value_parser = |s: &str| s.parse::<PaymentStatus>())]
        status: Option<PaymentStatus>,
        /// Only this subscription's payments (its id).
        #[arg(long)]
        subscription: Option<i64>,
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Set a customer's payment method at the provider (Stripe's cus_… and pm_…); their
    /// declined payments are tried again at once.
    SetMethod {
        /// Customer id or email address.
        customer: String,
        /// The provider's customer, e.g. cus_Nffrt1.
        #[arg(long)]
        customer_ref: String,
        /// The saved payment method, e.g. pm_1Nffrt1.
        #[arg(long)]
        method_ref: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

pub(super) async fn run(
    app: &App,
    command: PaymentsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        PaymentsCommand::Collect(output) => {
            let report = payments::collect(app).await?;
            if output.json {
                return write_json(out, &report);
            }
            outln!(
                out,
                "claimed {}: {} paid, {} declined, {} need the customer (3-D Secure), {} postponed (provider unavailable), {} unchanged",
                report.claimed,
                report.paid,
                report.declined,
                report.requires_action,
                report.postponed,
                report.unchanged
            );
        }
        PaymentsCommand::List {
            status,
            subscription,
            limit,
            output,
        } => {
            let query = PaymentQuery {
                status,
                subscription_id: subscription,
            };
            list(app, &query, limit, output.json, out).await?;
        }
        PaymentsCommand::SetMethod {
            customer,
            customer_ref: provider_customer,
            method_ref,
            output,
        } => {
            let refs = PaymentRefs {
                customer_ref: Some(provider_customer),
                method_ref: Some(method_ref),
            };
            let view = payments::set_payment_method(app, &customer_ref(&customer)?, refs).await?;
            if output.json {
                return write_json(out, &view);
            }
            outln!(
                out,
                "customer {}: payment method set; {} declined payment(s) will be tried again now",
                view.customer_id,
                view.payments_retried
            );
        }
    }
    Ok(())
}

/// `payments list`: the first `limit` payments that `query` names.
async fn list(
    app: &App,
    query: &PaymentQuery,
    limit: u32,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let page = payments::list(app, query, PageRequest::first(limit)).await?;
    if json {
        return write_json(out, &page.data);
    }
    outln!(
        out,
        "{:<16} {:<9} {:<18} {:>12} {:>3}  {:<20} {:<20}",
        "order",
        "provider",
        "status",
        "amount",
        "try",
        "next try",
        "decline"
    );
    for p in page.data {
        outln!(
            out,
            "{:<16} {:<9} {:<18} {:>12} {:>3}  {:<20} {:<20}",
            p.order_number,
            p.provider,
            p.status,
            p.amount.to_string(),
            p.attempt,
            p.next_attempt_at.map(rfc3339).unwrap_or_else(|| "-".into()),
            p.decline_code.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
