//! `subsave subs create|list|show|skip|pause|resume|cancel|change|reschedule|renew-now`.

use std::io::Write;

use chrono::NaiveDate;
use clap::Subcommand;

use super::{
    CliError, JsonFlag, MetadataArgs, customer_ref, local_time, outln, parse_interval_arg,
    print_metadata, rfc3339, usage, write_json,
};
use crate::app::idempotency::Commit;
use crate::app::subscriptions::{self, Action, ChangeInput, SubscriptionInput, SubscriptionQuery};
use crate::app::views::{ChangeView, SubscriptionDetail, SubscriptionView};
use crate::app::{Actor, App, PageRequest};
use crate::core::catalog::PlanId;
use crate::core::lifecycle::Start;
use crate::core::model::Status;
use crate::core::schedule::Interval;

#[derive(Debug, Subcommand)]
pub enum SubsCommand {
    /// Create a subscription. By default the storefront took the first order today and the
    /// first renewal is one interval later.
    Create {
        /// Customer id or email.
        #[arg(long)]
        customer: String,
        /// Plan id from `subsave plans`, e.g. 3-pack.
        #[arg(long)]
        plan: String,
        /// Shipments of the plan per renewal (1-1000).
        #[arg(long, default_value_t = 1)]
        quantity: u32,
        /// Interval, e.g. "30 days" (default: the plan's).
        #[arg(long, value_parser = parse_interval_arg)]
        every: Option<Interval>,
        /// The first renewal's local date (YYYY-MM-DD) instead of one interval from today.
        #[arg(long, conflicts_with = "start_now")]
        first_renewal: Option<NaiveDate>,
        /// No order yet: the next sweep bills the first cycle.
        #[arg(long)]
        start_now: bool,
        /// A coupon code to redeem.
        #[arg(long)]
        coupon: Option<String>,
        /// How the customer agreed to the automatic renewal, recorded as their consent
        /// (e.g. checkout, phone; default: cli).
        #[arg(long)]
        consent_channel: Option<String>,
        /// The version of the terms the customer agreed to (default: notices.terms_version).
        #[arg(long)]
        terms_version: Option<String>,
        /// The id of the customer's address it ships to (default: their default address;
        /// see `subsave customers addresses list`).
        #[arg(long)]
        ship_to: Option<i64>,
        #[command(flatten)]
        storefront: MetadataArgs,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List subscriptions.
    List {
        /// Only this status: active, paused or cancelled.
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// Customer id or email.
        #[arg(long)]
        customer: Option<String>,
        /// Only this plan, e.g. 3-pack.
        #[arg(long)]
        plan: Option<String>,
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show a subscription with its events and orders.
    Show {
        /// Subscription id.
        id: i64,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Skip the next renewal.
    Skip {
        /// Subscription id.
        id: i64,
    },
    /// Pause renewals, optionally until a local date (then active again by itself).
    Pause {
        /// Subscription id.
        id: i64,
        /// The local date (YYYY-MM-DD) renewals start again, at its midnight.
        #[arg(long)]
        until: Option<NaiveDate>,
    },
    /// Resume a paused subscription.
    Resume {
        /// Subscription id.
        id: i64,
    },
    /// Cancel (final).
    Cancel {
        /// Subscription id.
        id: i64,
        /// Why, in plain text (at most 500 characters); kept on the subscription and its event.
        #[arg(long)]
        reason: String,
    },
    /// Change plan, quantity, interval or ship-to address, effective next renewal; or the
    /// external id and metadata.
    Change {
        /// Subscription id.
        id: i64,
        /// The new plan id, e.g. 6-pack.
        #[arg(long)]
        plan: Option<String>,
        /// The new number of shipments per renewal (1-1000).
        #[arg(long)]
        quantity: Option<u32>,
        /// The new interval, e.g. "60 days" (one the plan allows).
        #[arg(long, value_parser = parse_interval_arg)]
        every: Option<Interval>,
        /// The id of another of the customer's addresses to ship to (and tax by). When the
        /// new address changes the next renewal's price, the new quote is shown and nothing
        /// changes without --yes.
        #[arg(long)]
        ship_to: Option<i64>,
        /// Confirm a change of address that changes the price.
        #[arg(long)]
        yes: bool,
        /// The external id and metadata: changed on their own, without the options above.
        #[command(flatten)]
        storefront: MetadataArgs,
    },
    /// Move the next renewal to another local date (same time of day).
    Reschedule {
        /// Subscription id.
        id: i64,
        /// The new local date (YYYY-MM-DD), in the future.
        #[arg(long)]
        to: NaiveDate,
    },
    /// Restart a cancelled subscription (within web.restart_days of its cancellation): at
    /// today's price, due now, with a fresh consent.
    Restart {
        /// Subscription id.
        id: i64,
    },
    /// Make the next renewal due now; the next sweep bills it.
    RenewNow {
        /// Subscription id.
        id: i64,
    },
}

fn parse_status(input: &str) -> Result<Status, String> {
    input.parse()
}

/// `subs …`: one arm per subcommand, turning its flags into `app` input; long as the list of
/// subcommands and their flags is, not as logic (`show` prints in its own function).
pub(super) async fn run(
    app: &App,
    command: SubsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let actor = Actor::cli();
    let (id, action) = match command {
        SubsCommand::Create {
            customer,
            plan,
            quantity,
            every,
            first_renewal,
            start_now,
            coupon,
            consent_channel,
            terms_version,
            ship_to,
            storefront,
            output,
        } => {
            let storefront = storefront.parse()?;
            let start = match (first_renewal, start_now) {
                (Some(date), _) => Start::FirstRenewalOn(date),
                (None, true) => Start::Now,
                (None, false) => Start::AfterCheckout,
            };
            let sub = subscriptions::create(
                app,
                &actor,
                SubscriptionInput {
                    customer: customer_ref(&customer)?,
                    plan,
                    quantity,
                    interval: every,
                    start,
                    coupon,
                    consent_channel,
                    terms_version,
                    ship_to,
                    external_id: storefront.external_id.flatten(),
                    metadata: storefront.metadata,
                },
                Commit::Plain,
            )
            .await?;
            if output.json {
                return write_json(out, &sub);
            }
            outln!(
                out,
                "subscription {} created: {} × {} every {}, next renewal {} (cycle {})",
                sub.id,
                sub.plan,
                sub.quantity,
                sub.interval,
                local_time(sub.next_renewal_at, &sub.time_zone).unwrap_or_default(),
                sub.next_cycle
            );
            return Ok(());
        }
        SubsCommand::List {
            status,
            customer,
            plan,
            limit,
            output,
        } => {
            let query = SubscriptionQuery {
                status,
                customer: customer.as_deref().map(customer_ref).transpose()?,
                plan,
                ..SubscriptionQuery::default()
            };
            let page = subscriptions::list(app, &query, PageRequest::first(limit)).await?;
            if output.json {
                return write_json(out, &page.data);
            }
            return print_subscriptions(&page.data, out);
        }
        SubsCommand::Show { id, output } => return show(app, id, output.json, out).await,
        SubsCommand::Skip { id } => (id, Action::Skip),
        SubsCommand::Pause { id, until } => (id, Action::Pause { until }),
        SubsCommand::Resume { id } => (id, Action::Resume),
        SubsCommand::Cancel { id, reason } => (id, Action::Cancel { reason }),
        SubsCommand::Change {
            id,
            plan,
            quantity,
            every,
            ship_to,
            yes,
            storefront,
        } => {
            let storefront = storefront.parse()?;
            if !storefront.is_empty() {
                if plan.is_some() || quantity.is_some() || every.is_some() || ship_to.is_some() {
                    return Err(usage(
                        "change --external-id and --metadata in a command of their own, without --plan, --quantity, --every or --ship-to",
                    ));
                }
                let done =
                    subscriptions::update_metadata_quoted(app, id, &storefront, Commit::Plain)
                        .await?;
                return print_outcome(&done.subscription, out);
            }
            let plan = plan.map(|p| PlanId::parse(&p).map_err(usage)).transpose()?;
            let change = ChangeInput {
                plan,
                quantity,
                interval: every,
                ship_to,
            };
            if ship_to.is_some() {
                return change_address(app, &actor, id, &change, yes, out).await;
            }
            (id, Action::Change(change))
        }
        SubsCommand::Reschedule { id, to } => (id, Action::Reschedule { to }),
        SubsCommand::RenewNow { id } => (id, Action::RenewNow),
        SubsCommand::Restart { id } => {
            let sub = subscriptions::restart(app, &actor, id, None, Commit::Plain).await?;
            return print_outcome(&sub, out);
        }
    };
    let sub = subscriptions::perform(app, &actor, id, &action, Commit::Plain).await?;
    print_outcome(&sub, out)
}

/// `subs show`: the subscription, its events, consents, notices and orders with their payments.
async fn show(app: &App, id: i64, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let detail = subscriptions::show(app, id).await?;
    if json {
        return write_json(out, &detail);
    }
    let sub = &detail.subscription;
    print_subscriptions(std::slice::from_ref(sub), out)?;
    print_metadata(sub.external_id.as_deref(), &sub.metadata, out)?;
    if let Some(reason) = &sub.hold_reason {
        outln!(out, "ON HOLD: {reason}");
    }
    if let Some(grant) = &sub.coupon {
        outln!(
            out,
            "coupon {} ({}), used on {} order(s)",
            grant.code,
            grant.duration,
            grant.orders_used
        );
    }
    outln!(out, "events:");
    for e in &detail.events {
        outln!(
            out,
            "  {}  {:<12} {:<8} cycle {}",
            rfc3339(e.at),
            e.kind,
            e.actor,
            e.cycle.map_or("-".into(), |c| c.to_string())
        );
    }
    for c in &detail.consents {
        outln!(
            out,
            "consent: {} via {}, terms {}, recorded by {}",
            rfc3339(c.given_at),
            c.channel,
            c.terms_version,
            c.actor
        );
    }
    if let Some(at) = sub.next_annual_notice_at {
        outln!(out, "next annual notice: {}", rfc3339(at));
    }
    match &sub.shipping_address {
        Some(a) => outln!(
            out,
            "ships to: address {}: {}",
            a.id,
            crate::core::text::printable(&a.address.one_line())
        ),
        None => outln!(
            out,
            "ships to: no address (taxed by the customer's region; set one with `subsave subs change {} --ship-to ADDRESS`)",
            sub.id
        ),
    }
    outln!(out, "notices:");
    for m in detail
        .messages
        .iter()
        .filter(|m| ["annual_notice", "price_change"].contains(&m.kind.as_str()))
    {
        outln!(
            out,
            "  {}  {:<14} {}",
            rfc3339(m.created_at),
            m.kind,
            m.status
        );
    }
    print_orders(&detail, out)
}

/// The orders of `subs show`, each with how its payment stands.
fn print_orders(detail: &SubscriptionDetail, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(out, "orders:");
    for o in &detail.orders {
        let payment = detail
            .payments
            .iter()
            .find(|p| p.order_number == o.order_number)
            .map(|p| match (&p.next_attempt_at, &p.decline_code) {
                (Some(next), _) => {
                    format!("{} (try {}, next {})", p.status, p.attempt, rfc3339(*next))
                }
                (None, Some(code)) => format!("{} ({code})", p.status),
                (None, None) => p.status.clone(),
            })
            .unwrap_or_default();
        outln!(
            out,
            "  {}  cycle {}  {}  {}  {payment}",
            o.order_number,
            o.cycle,
            rfc3339(o.scheduled_for),
            o.total
        );
    }
    Ok(())
}

/// A change that names an address: a new address can change the price (tax and shipping by
/// destination), which is shown before it is confirmed: without `--yes`, a change of price is
/// printed with the new quote and refused; with it, or when the price stays, it is made.
async fn change_address(
    app: &App,
    actor: &Actor,
    id: i64,
    change: &ChangeInput,
    yes: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let preview = subscriptions::preview_change(app, id, change).await?;
    if preview.price_changes && !yes {
        print_quote(&preview, out)?;
        return Err(usage(format!(
            "this change moves the next renewal's total from {} to {}; nothing was changed: run again with --yes to confirm",
            quote_total(preview.quote_before.as_ref()),
            quote_total(preview.quote.as_ref())
        )));
    }
    let done = subscriptions::change_quoted(app, actor, id, change, Commit::Plain).await?;
    print_outcome(&done.subscription, out)?;
    if done.price_changes {
        print_quote(&done, out)?;
    }
    Ok(())
}

/// The next renewal's quote after a change, line by line, and its total before.
fn print_quote(view: &ChangeView, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(out, "next renewal, as it will be billed:");
    if let Some(lines) = view.quote.as_ref().and_then(|q| q["lines"].as_array()) {
        for line in lines {
            outln!(
                out,
                "  {:<44} {:>14}",
                crate::core::text::printable(line["label"].as_str().unwrap_or_default()),
                plain(&line["amount"])
            );
        }
    }
    outln!(
        out,
        "  {:<44} {:>14}",
        "Total",
        quote_total(view.quote.as_ref())
    );
    outln!(
        out,
        "  {:<44} {:>14}",
        "(was)",
        quote_total(view.quote_before.as_ref())
    );
    Ok(())
}

fn quote_total(quote: Option<&serde_json::Value>) -> String {
    quote.map_or_else(|| "none".into(), |q| plain(&q["total"]))
}

/// An amount of a quote's JSON (`{"amount_minor": 12306, "currency": "USD"}`) as "123.06 USD".
fn plain(value: &serde_json::Value) -> String {
    let currency = value["currency"]
        .as_str()
        .and_then(|c| c.parse::<crate::core::money::Currency>().ok());
    match (value["amount_minor"].as_i64(), currency) {
        (Some(minor), Some(currency)) => {
            crate::core::money::Money::from_minor(minor, currency).to_string()
        }
        _ => value.to_string(),
    }
}

/// The one line a lifecycle command prints: the subscription's status and next renewal.
fn print_outcome(sub: &SubscriptionView, out: &mut dyn Write) -> Result<(), CliError> {
    outln!(
        out,
        "subscription {}: {}, next renewal {} (cycle {})",
        sub.id,
        sub.status,
        local_time(sub.next_renewal_at, &sub.time_zone).unwrap_or_else(|| "none".into()),
        sub.next_cycle
    );
    Ok(())
}

/// The subscriptions table of `subs list`, `subs show` and `customers show`.
pub(super) fn print_subscriptions(
    subs: &[SubscriptionView],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    outln!(
        out,
        "{:>6}  {:>8}  {:<8} {:>3}  {:<10} {:<9} {:>5}  next renewal (local)",
        "id",
        "customer",
        "plan",
        "qty",
        "every",
        "status",
        "cycle"
    );
    for s in subs {
        let next = local_time(s.next_renewal_at, &s.time_zone).unwrap_or_else(|| "-".into());
        let status = if s.hold_reason.is_some() {
            "held"
        } else {
            s.status.as_str()
        };
        outln!(
            out,
            "{:>6}  {:>8}  {:<8} {:>3}  {:<10} {:<9} {:>5}  {}",
            s.id,
            s.customer_id,
            s.plan,
            s.quantity,
            s.interval.to_string(),
            status,
            s.next_cycle,
            next
        );
    }
    Ok(())
}
