//! `subsave customers add|list|show`.

use std::io::Write;

use chrono_tz::Tz;
use clap::Subcommand;

use super::subscriptions::print_subscriptions;
use super::{CliError, JsonFlag, customer_ref, outln, parse_tz_arg, usage, write_json};
use crate::app::customers::{self, CustomerInput};
use crate::app::{App, PageRequest};

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Add a customer.
    Add {
        /// Email address, e.g. ada@example.com (unique per customer).
        #[arg(long)]
        email: String,
        /// Full name as emails address them: plain text, at most 200 characters.
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. America/New_York.
        #[arg(long, value_parser = parse_tz_arg)]
        tz: Tz,
        /// Language tag for emails, e.g. en-US or de-DE (languages without templates get English).
        #[arg(long, default_value = "en-US")]
        locale: String,
        /// Tax region code from the catalog (e.g. US-CA, DE); none: no tax.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List customers.
    List {
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show one customer (by id or email) with their subscriptions.
    Show {
        /// Customer id or email address.
        customer: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

pub(super) async fn run(
    app: &App,
    command: CustomersCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        CustomersCommand::Add {
            email,
            name,
            tz,
            locale,
            region,
            output,
        } => {
            let email = email
                .parse()
                .map_err(|e: String| usage(format!("--email: {e}")))?;
            let customer = customers::create(
                app,
                CustomerInput {
                    email,
                    name,
                    time_zone: tz,
                    locale,
                    tax_region: region,
                },
            )
            .await?;
            if output.json {
                return write_json(out, &customer);
            }
            outln!(
                out,
                "customer {} added: {} <{}> ({})",
                customer.id,
                customer.name,
                customer.email,
                customer.time_zone
            );
        }
        CustomersCommand::List { limit, output } => {
            let page = customers::list(
                app,
                &customers::CustomerQuery::default(),
                PageRequest::first(limit),
            )
            .await?;
            if output.json {
                return write_json(out, &page.data);
            }
            outln!(
                out,
                "{:>6}  {:<32} {:<24} {:<20} region",
                "id",
                "email",
                "name",
                "time zone"
            );
            for c in page.data {
                outln!(
                    out,
                    "{:>6}  {:<32} {:<24} {:<20} {}",
                    c.id,
                    c.email,
                    c.name,
                    c.time_zone,
                    c.tax_region.as_deref().unwrap_or("-")
                );
            }
        }
        CustomersCommand::Show { customer, output } => {
            let detail = customers::show(app, &customer_ref(&customer)?).await?;
            if output.json {
                return write_json(out, &detail);
            }
            let c = &detail.customer;
            outln!(
                out,
                "customer {}: {} <{}>, {}, locale {}, region {}",
                c.id,
                c.name,
                c.email,
                c.time_zone,
                c.locale,
                c.tax_region.as_deref().unwrap_or("-")
            );
            print_subscriptions(&detail.subscriptions, out)?;
        }
    }
    Ok(())
}
