//! `subsave customers add|list|show|export-data|erase` and `subsave customers addresses
//! add|list|set-default`.

use std::io::Write;

use chrono_tz::Tz;
use clap::Subcommand;

use super::subscriptions::print_subscriptions;
use super::{
    CliError, JsonFlag, MetadataArgs, customer_ref, outln, parse_tz_arg, print_metadata, usage,
    write_json,
};
use crate::app::addresses::{self, AddressInput};
use crate::app::customers::{self, CustomerInput};
use crate::app::idempotency::Commit;
use crate::app::privacy;
use crate::app::views::AddressView;
use crate::app::{Actor, App, PageRequest};
use crate::core::address::RawAddress;

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
        storefront: MetadataArgs,
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
    /// A customer's ship-to addresses.
    #[command(subcommand)]
    Addresses(AddressesCommand),
    /// Everything held about a customer, as JSON: the customer, addresses, subscriptions,
    /// orders with lines and ship-to snapshots, payments, credit notes, events, messages and
    /// consents.
    ExportData {
        /// Customer id or email address.
        customer: String,
    },
    /// Erase a customer's personal data: name, email, street lines and phone, wherever held
    /// (amounts, tax region, country and consents are kept). Their links stop working, emails
    /// still to be sent to them are suppressed. Cannot be undone; their subscriptions must be
    /// cancelled first.
    Erase {
        /// Customer id or email address.
        customer: String,
        /// Confirm: an erasure cannot be undone.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum AddressesCommand {
    /// Add a ship-to address to a customer (their first becomes the default).
    Add {
        /// Customer id or email address.
        customer: String,
        /// The name on the parcel.
        #[arg(long)]
        name: String,
        /// The street line.
        #[arg(long)]
        line1: String,
        /// A second line (apartment, floor, company).
        #[arg(long)]
        line2: Option<String>,
        /// The city or town.
        #[arg(long)]
        city: String,
        /// State or province: an ISO 3166-2 code, e.g. CA or US-CA (required in the US,
        /// Canada and Australia).
        #[arg(long)]
        subdivision: Option<String>,
        /// In the country's format, e.g. 94105, K1A 0B1, SW1A 1AA, 10115.
        #[arg(long)]
        postal_code: Option<String>,
        /// ISO 3166-1 alpha-2 code, e.g. US or DE; one the catalog ships to.
        #[arg(long)]
        country: String,
        /// A phone number for the carrier, e.g. +1 415 555 0100.
        #[arg(long)]
        phone: Option<String>,
        /// Make it the customer's default address.
        #[arg(long)]
        default: bool,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List a customer's addresses.
    List {
        /// Customer id or email address.
        customer: String,
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Make one of a customer's addresses the default for their new subscriptions.
    SetDefault {
        /// Customer id or email address.
        customer: String,
        /// The address id (see `subsave customers addresses list`).
        address: i64,
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
            storefront,
            output,
        } => {
            let email = email
                .parse()
                .map_err(|e: String| usage(format!("--email: {e}")))?;
            let storefront = storefront.parse()?;
            let customer = customers::create(
                app,
                CustomerInput {
                    email,
                    name,
                    time_zone: tz,
                    locale,
                    tax_region: region,
                    external_id: storefront.external_id.flatten(),
                    metadata: storefront.metadata,
                },
                Commit::Plain,
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
        CustomersCommand::List { limit, output } => list(app, limit, output.json, out).await?,
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
            print_metadata(c.external_id.as_deref(), &c.metadata, out)?;
            print_subscriptions(&detail.subscriptions, out)?;
        }
        CustomersCommand::Addresses(command) => run_addresses(app, command, out).await?,
        CustomersCommand::ExportData { customer } => {
            let data = privacy::export(app, &customer_ref(&customer)?).await?;
            return write_json(out, &data);
        }
        CustomersCommand::Erase {
            customer,
            yes,
            output,
        } => erase(app, &customer, yes, output.json, out).await?,
    }
    Ok(())
}

/// `customers list`: the first `limit` customers, by id.
async fn list(app: &App, limit: u32, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let page = customers::list(
        app,
        &customers::CustomerQuery::default(),
        PageRequest::first(limit),
    )
    .await?;
    if json {
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
    Ok(())
}

/// `customers erase`: refused without `--yes` (naming whom it would erase), else done.
async fn erase(
    app: &App,
    customer: &str,
    yes: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let key = customer_ref(customer)?;
    if !yes {
        // Found first, so that a typo says so before asking for a confirmation.
        let found = customers::find(app, &key).await?;
        return Err(usage(format!(
            "erasing customer {} ({}) cannot be undone: their name, email, street lines and phone are replaced everywhere; run again with --yes (see `subsave customers export-data {}` to keep a copy for them first)",
            found.id, found.email, found.id
        )));
    }
    let done = privacy::erase(app, &Actor::cli(), &key, Commit::Plain).await?;
    if json {
        return write_json(out, &done);
    }
    outln!(
        out,
        "customer {} erased: {} addresses, {} orders' ship-to and {} messages replaced; {} unsent emails suppressed",
        done.customer_id,
        done.addresses,
        done.orders,
        done.messages,
        done.suppressed
    );
    Ok(())
}

async fn run_addresses(
    app: &App,
    command: AddressesCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        AddressesCommand::Add {
            customer,
            name,
            line1,
            line2,
            city,
            subdivision,
            postal_code,
            country,
            phone,
            default,
            output,
        } => {
            let added = addresses::add(
                app,
                AddressInput {
                    customer: customer_ref(&customer)?,
                    address: RawAddress {
                        name,
                        line1,
                        line2,
                        city,
                        subdivision,
                        postal_code,
                        country,
                        phone,
                    },
                    make_default: default,
                },
                Commit::Plain,
            )
            .await?;
            if output.json {
                return write_json(out, &added);
            }
            outln!(
                out,
                "address {} added to customer {}{}: {}",
                added.id,
                added.customer_id,
                if added.is_default { " (default)" } else { "" },
                added.address.one_line()
            );
        }
        AddressesCommand::List {
            customer,
            limit,
            output,
        } => {
            let page =
                addresses::list(app, &customer_ref(&customer)?, PageRequest::first(limit)).await?;
            if output.json {
                return write_json(out, &page.data);
            }
            print_addresses(&page.data, out)?;
        }
        AddressesCommand::SetDefault { customer, address } => {
            let address = addresses::set_default(app, &customer_ref(&customer)?, address).await?;
            outln!(
                out,
                "address {} is customer {}'s default: {}",
                address.id,
                address.customer_id,
                address.address.one_line()
            );
        }
    }
    Ok(())
}

fn print_addresses(list: &[AddressView], out: &mut dyn Write) -> Result<(), CliError> {
    outln!(out, "{:>6}  {:<7}  address", "id", "default");
    for a in list {
        outln!(
            out,
            "{:>6}  {:<7}  {}",
            a.id,
            if a.is_default { "yes" } else { "" },
            crate::core::text::printable(&a.address.one_line())
        );
    }
    Ok(())
}
