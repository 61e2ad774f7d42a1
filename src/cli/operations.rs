//! The operator's commands against the store: `migrate`, `tick`, `customers`, `subs`,
//! `coupons` and `orders`. Values are parsed here (emails, zones, dates, amounts) and handed
//! to the lifecycle rules and the engine; nothing here decides billing.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::{Args, Subcommand};
use serde::Serialize;
use tracing::Instrument;

use super::{
    CliError, JsonFlag, outln, parse_interval_arg, parse_percent_arg, parse_tz_arg, write_json,
};
use crate::catalog::PlanId;
use crate::clock::Clock;
use crate::config::Settings;
use crate::engine::{Engine, check_plans};
use crate::lifecycle::{self, Operation, Start};
use crate::model::{Actor, Customer, NewCoupon, NewCustomer, Status, Subscription};
use crate::money::{BasisPoints, Money};
use crate::pricing::CouponValue;
use crate::schedule::{Interval, resolve_local};
use crate::store::{self, MessageFilter, OrderFilter, Store, StoreError, SubscriptionFilter};

#[derive(Debug, Args)]
pub struct TickArgs {
    /// Show what the sweep would bill, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Add a customer.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. America/New_York.
        #[arg(long, value_parser = parse_tz_arg)]
        tz: Tz,
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
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show one customer (by id or email) with their subscriptions.
    Show {
        customer: String,
        #[command(flatten)]
        output: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubsCommand {
    /// Create a subscription. By default the storefront took the first order today and the
    /// first renewal is one interval later.
    Create {
        /// Customer id or email.
        #[arg(long)]
        customer: String,
        #[arg(long)]
        plan: String,
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
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List subscriptions.
    List {
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// Customer id or email.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show a subscription with its events and orders.
    Show {
        id: i64,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Skip the next renewal.
    Skip { id: i64 },
    /// Pause renewals, optionally until a local date (then active again by itself).
    Pause {
        id: i64,
        #[arg(long)]
        until: Option<NaiveDate>,
    },
    /// Resume a paused subscription.
    Resume { id: i64 },
    /// Cancel (final).
    Cancel {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Change plan, quantity or interval, effective next renewal.
    Change {
        id: i64,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        quantity: Option<u32>,
        #[arg(long, value_parser = parse_interval_arg)]
        every: Option<Interval>,
    },
    /// Move the next renewal to another local date (same time of day).
    Reschedule {
        id: i64,
        #[arg(long)]
        to: NaiveDate,
    },
    /// Make the next renewal due now; the next sweep bills it.
    RenewNow { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum CouponsCommand {
    /// Create a coupon.
    Create {
        code: String,
        /// A percentage off what remains after other discounts, e.g. "10%".
        #[arg(long, value_parser = parse_percent_arg, required_unless_present = "amount", conflicts_with = "amount")]
        percent: Option<BasisPoints>,
        /// A fixed amount off, in the catalog's currency, e.g. "5.00".
        #[arg(long)]
        amount: Option<String>,
        /// once, forever, or "repeating N" (orders).
        #[arg(long, default_value = "once")]
        duration: String,
        /// Only for this plan.
        #[arg(long)]
        plan: Option<String>,
        /// Last date (UTC) the coupon can be redeemed.
        #[arg(long)]
        expires: Option<NaiveDate>,
        #[arg(long)]
        max_redemptions: Option<u32>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List coupons.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Disable a coupon: no new redemptions.
    Disable { code: String },
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders.
    List {
        #[arg(long)]
        subscription: Option<i64>,
        /// Customer id or email.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Show one order with its itemized lines.
    Show {
        order_number: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Export orders by billing date as CSV or JSON lines, streamed (see docs/finance.md).
    Export(super::finance::ExportArgs),
}

fn parse_status(input: &str) -> Result<Status, String> {
    input.parse()
}

/// Opens the configured store, applying migrations when the config says so.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, CliError> {
    let store = store::connect(&settings.database).await.map_err(runtime)?;
    if settings.database.migrate_on_start {
        store.migrate().await.map_err(runtime)?;
    }
    Ok(store)
}

fn runtime(error: StoreError) -> CliError {
    CliError::Runtime(anyhow::Error::new(error))
}

/// Store errors a user can fix (refused, not found, duplicate) exit 2; the rest exit 1.
pub(super) fn from_store(error: StoreError) -> CliError {
    match error {
        StoreError::Refused(e) => CliError::Usage(e.to_string()),
        StoreError::NotFound(m) | StoreError::Conflict(m) => CliError::Usage(m),
        other => runtime(other),
    }
}

pub(super) fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn find_customer(store: &dyn Store, key: &str) -> Result<Customer, CliError> {
    let found = match key.parse::<i64>() {
        Ok(id) => store.customer(id).await,
        Err(_) => {
            let email = key.parse().map_err(usage)?;
            store.customer_by_email(&email).await
        }
    }
    .map_err(from_store)?;
    found.ok_or_else(|| {
        usage(format!(
            "no customer \"{key}\"; see `subsave customers list`"
        ))
    })
}

pub async fn migrate(settings: &Settings, out: &mut dyn Write) -> Result<(), CliError> {
    let store = store::connect(&settings.database).await.map_err(runtime)?;
    store.migrate().await.map_err(runtime)?;
    outln!(
        out,
        "migrations applied to {} ({:?})",
        settings.database.url,
        store.backend()
    );
    Ok(())
}

#[derive(Serialize)]
struct PlannedOrder {
    subscription_id: i64,
    order_number: String,
    cycle: u32,
    plan: String,
    total: Money,
    scheduled_for: DateTime<Utc>,
}

pub async fn tick(
    settings: &Settings,
    clock: &dyn Clock,
    args: &TickArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    check_plans(store.as_ref(), &settings.catalog)
        .await
        .map_err(usage)?;
    let engine = Engine::new(
        store,
        Arc::new(settings.catalog.clone()),
        settings.engine.catch_up,
        settings.engine.batch_size,
    )
    .with_reminders(settings.reminders.clone())
    .with_workers(settings.engine.workers as usize);
    let now = clock.now();
    if args.dry_run {
        let changes = engine.dry_run(now, 10_000).await.map_err(runtime)?;
        let planned: Vec<PlannedOrder> = changes
            .iter()
            .flat_map(|c| &c.orders)
            .map(|o| PlannedOrder {
                subscription_id: o.subscription_id,
                order_number: o.order_number.clone(),
                cycle: o.cycle,
                plan: o.plan.to_string(),
                total: o.total,
                scheduled_for: o.scheduled_for,
            })
            .collect();
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
    let span = tracing::info_span!("sweep", now = %rfc3339(now));
    let started = std::time::Instant::now();
    let report = engine.sweep(now).instrument(span).await.map_err(runtime)?;
    tracing::info!(
        orders = report.orders,
        resumed = report.resumed,
        held = report.held,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sweep finished"
    );
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

pub async fn customers(
    settings: &Settings,
    clock: &dyn Clock,
    command: CustomersCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = open_store(settings).await?;
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
            if name.trim().is_empty() {
                return Err(usage("--name: a customer needs a name"));
            }
            if let Some(code) = &region {
                settings
                    .catalog
                    .require_tax_region(code)
                    .map_err(|e| usage(format!("--region {e}")))?;
            }
            let customer = store
                .add_customer(
                    &NewCustomer {
                        email,
                        name,
                        time_zone: tz,
                        locale,
                        tax_region: region,
                    },
                    clock.now(),
                )
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(out, &customer);
            }
            outln!(
                out,
                "customer {} added: {} <{}> ({})",
                customer.id,
                customer.name,
                customer.email,
                customer.time_zone.name()
            );
        }
        CustomersCommand::List { limit, output } => {
            let customers = store.customers(limit).await.map_err(from_store)?;
            if output.json {
                return write_json(out, &customers);
            }
            outln!(
                out,
                "{:>6}  {:<32} {:<24} {:<20} region",
                "id",
                "email",
                "name",
                "time zone"
            );
            for c in customers {
                outln!(
                    out,
                    "{:>6}  {:<32} {:<24} {:<20} {}",
                    c.id,
                    c.email,
                    c.name,
                    c.time_zone.name(),
                    c.tax_region.as_deref().unwrap_or("-")
                );
            }
        }
        CustomersCommand::Show { customer, output } => {
            let customer = find_customer(store.as_ref(), &customer).await?;
            let subs = store
                .subscriptions(&SubscriptionFilter {
                    customer_id: Some(customer.id),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(
                    out,
                    &serde_json::json!({ "customer": customer, "subscriptions": subs }),
                );
            }
            outln!(
                out,
                "customer {}: {} <{}>, {}, locale {}, region {}",
                customer.id,
                customer.name,
                customer.email,
                customer.time_zone.name(),
                customer.locale,
                customer.tax_region.as_deref().unwrap_or("-")
            );
            print_subscriptions(&subs, out)?;
        }
    }
    Ok(())
}

fn print_subscriptions(subs: &[Subscription], out: &mut dyn Write) -> Result<(), CliError> {
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
        let next = s
            .next_renewal_at
            .map(|at| {
                at.with_timezone(&s.time_zone)
                    .to_rfc3339_opts(SecondsFormat::Secs, false)
            })
            .unwrap_or_else(|| "-".into());
        let status = if s.hold_reason.is_some() {
            "held".to_owned()
        } else {
            s.status.to_string()
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

pub async fn subs(
    settings: &Settings,
    clock: &dyn Clock,
    command: SubsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    let now = clock.now();
    let actor = Actor("cli".into());
    let catalog = &settings.catalog;
    let operation = match command {
        SubsCommand::Create {
            customer,
            plan,
            quantity,
            every,
            first_renewal,
            start_now,
            coupon,
            output,
        } => {
            let customer = find_customer(store.as_ref(), &customer).await?;
            let start = match (first_renewal, start_now) {
                (Some(date), _) => Start::FirstRenewalOn(date),
                (None, true) => Start::Now,
                (None, false) => Start::AfterCheckout,
            };
            let mut new = lifecycle::new_subscription(
                catalog,
                &customer,
                &plan,
                quantity,
                every,
                start,
                settings.engine.renewal_time,
                now,
            )
            .map_err(|e| usage(e.to_string()))?;
            new.coupon_code = coupon.map(|c| c.trim().to_uppercase());
            let sub = store
                .create_subscription(&new, &actor, now)
                .await
                .map_err(from_store)?;
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
                sub.next_renewal_at
                    .map(|at| at
                        .with_timezone(&sub.time_zone)
                        .to_rfc3339_opts(SecondsFormat::Secs, false))
                    .unwrap_or_default(),
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
            let customer_id = match customer {
                Some(key) => Some(find_customer(store.as_ref(), &key).await?.id),
                None => None,
            };
            let subs = store
                .subscriptions(&SubscriptionFilter {
                    status,
                    customer_id,
                    plan,
                    limit,
                })
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(out, &subs);
            }
            return print_subscriptions(&subs, out);
        }
        SubsCommand::Show { id, output } => {
            let sub = store
                .subscription(id)
                .await
                .map_err(from_store)?
                .ok_or_else(|| usage(format!("no subscription {id}; see `subsave subs list`")))?;
            let events = store.events(id).await.map_err(from_store)?;
            let orders = store
                .orders(&OrderFilter {
                    subscription_id: Some(id),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .map_err(from_store)?;
            let messages = store
                .messages(&MessageFilter {
                    subscription_id: Some(id),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(
                    out,
                    &serde_json::json!({ "subscription": sub, "events": events, "orders": orders, "messages": messages }),
                );
            }
            print_subscriptions(std::slice::from_ref(&sub), out)?;
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
            for e in &events {
                outln!(
                    out,
                    "  {}  {:<12} {:<8} cycle {}",
                    rfc3339(e.at),
                    e.kind,
                    e.actor,
                    e.cycle.map_or("-".into(), |c| c.to_string())
                );
            }
            outln!(out, "orders:");
            for o in &orders {
                outln!(
                    out,
                    "  {}  cycle {}  {}  {}",
                    o.order_number,
                    o.cycle,
                    rfc3339(o.scheduled_for),
                    o.total
                );
            }
            return Ok(());
        }
        SubsCommand::Skip { id } => (id, Operation::Skip),
        SubsCommand::Pause { id, until } => {
            let until = match until {
                Some(date) => {
                    let sub = store
                        .subscription(id)
                        .await
                        .map_err(from_store)?
                        .ok_or_else(|| usage(format!("no subscription {id}")))?;
                    Some(resolve_local(sub.time_zone, date.and_time(NaiveTime::MIN)))
                }
                None => None,
            };
            (id, Operation::Pause { until })
        }
        SubsCommand::Resume { id } => (id, Operation::Resume),
        SubsCommand::Cancel { id, reason } => (id, Operation::Cancel { reason }),
        SubsCommand::Change {
            id,
            plan,
            quantity,
            every,
        } => {
            let plan = plan.map(|p| PlanId::parse(&p).map_err(usage)).transpose()?;
            (
                id,
                Operation::Change {
                    plan,
                    quantity,
                    interval: every,
                },
            )
        }
        SubsCommand::Reschedule { id, to } => (id, Operation::Reschedule { to }),
        SubsCommand::RenewNow { id } => (id, Operation::RenewNow),
    };
    let (id, operation) = operation;
    let transition = |sub: &Subscription, customer: &Customer| {
        lifecycle::apply(sub, customer, &operation, catalog, &actor, now)
    };
    let sub = store
        .transition(id, &transition)
        .await
        .map_err(from_store)?;
    let next = sub
        .next_renewal_at
        .map(|at| {
            at.with_timezone(&sub.time_zone)
                .to_rfc3339_opts(SecondsFormat::Secs, false)
        })
        .unwrap_or_else(|| "none".into());
    outln!(
        out,
        "subscription {}: {}, next renewal {} (cycle {})",
        sub.id,
        sub.status,
        next,
        sub.next_cycle
    );
    Ok(())
}

pub async fn coupons(
    settings: &Settings,
    clock: &dyn Clock,
    command: CouponsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = open_store(settings).await?;
    match command {
        CouponsCommand::Create {
            code,
            percent,
            amount,
            duration,
            plan,
            expires,
            max_redemptions,
            output,
        } => {
            let value = match (percent, amount) {
                (Some(bp), _) => CouponValue::Percent(bp),
                (None, Some(text)) => {
                    let money = Money::parse(&text, settings.catalog.currency)
                        .map_err(|e| usage(format!("--amount: {e}")))?;
                    if money.minor() <= 0 {
                        return Err(usage("--amount: a coupon takes off more than zero"));
                    }
                    CouponValue::Amount(money)
                }
                (None, None) => return Err(usage("pass --percent or --amount")),
            };
            if percent.is_some_and(|bp| bp == BasisPoints::ZERO) {
                return Err(usage("--percent: a coupon takes off more than 0%"));
            }
            let duration = duration
                .parse()
                .map_err(|e: String| usage(format!("--duration: {e}")))?;
            let plan = match plan {
                Some(p) => Some(settings.catalog.plan(&p).map(|x| x.id.clone()).ok_or_else(
                    || {
                        usage(format!(
                            "--plan \"{p}\": no such plan; the catalog's plans are: {}",
                            settings.catalog.plan_ids()
                        ))
                    },
                )?),
                None => None,
            };
            let code = code.trim().to_uppercase();
            if code.is_empty()
                || !code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(usage(format!(
                    "coupon code \"{code}\": use letters, digits, '-' and '_'"
                )));
            }
            let coupon = store
                .create_coupon(
                    &NewCoupon {
                        code,
                        currency: settings.catalog.currency,
                        value,
                        duration,
                        plan,
                        expires_at: expires
                            .and_then(|d| d.succ_opt())
                            .map(|d| d.and_time(NaiveTime::MIN).and_utc()),
                        max_redemptions,
                    },
                    clock.now(),
                )
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(out, &coupon);
            }
            outln!(out, "coupon {} created", coupon.code);
        }
        CouponsCommand::List { limit, output } => {
            let coupons = store.coupons(limit).await.map_err(from_store)?;
            if output.json {
                return write_json(out, &coupons);
            }
            outln!(
                out,
                "{:<16} {:<12} {:<14} {:<8} {:>11}  status",
                "code",
                "value",
                "duration",
                "plan",
                "redemptions"
            );
            for c in coupons {
                let value = match c.value {
                    CouponValue::Percent(bp) => bp.to_string(),
                    CouponValue::Amount(m) => m.to_string(),
                };
                let status = if c.disabled_at.is_some() {
                    "disabled"
                } else if c.expires_at.is_some_and(|e| e <= clock.now()) {
                    "expired"
                } else {
                    "active"
                };
                let limit = c.max_redemptions.map_or("∞".to_owned(), |m| m.to_string());
                outln!(
                    out,
                    "{:<16} {:<12} {:<14} {:<8} {:>5}/{:<5}  {}",
                    c.code,
                    value,
                    c.duration.to_string(),
                    c.plan.as_ref().map_or("any", |p| p.as_str()),
                    c.redemptions,
                    limit,
                    status
                );
            }
        }
        CouponsCommand::Disable { code } => {
            let coupon = store
                .disable_coupon(&code.trim().to_uppercase(), clock.now())
                .await
                .map_err(from_store)?;
            outln!(
                out,
                "coupon {} disabled: no new redemptions; subscriptions that redeemed it keep it",
                coupon.code
            );
        }
    }
    Ok(())
}

pub async fn orders(
    settings: &Settings,
    command: OrdersCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = match &command {
        // An export streams from its own query; see cli::finance.
        OrdersCommand::Export(args) => return super::finance::export(settings, args, out).await,
        _ => open_store(settings).await?,
    };
    match command {
        OrdersCommand::Export(_) => {}
        OrdersCommand::List {
            subscription,
            customer,
            limit,
            output,
        } => {
            let customer_id = match customer {
                Some(key) => Some(find_customer(store.as_ref(), &key).await?.id),
                None => None,
            };
            let orders = store
                .orders(&OrderFilter {
                    subscription_id: subscription,
                    customer_id,
                    limit,
                })
                .await
                .map_err(from_store)?;
            if output.json {
                return write_json(out, &orders);
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
            for o in orders {
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
        }
        OrdersCommand::Show {
            order_number,
            output,
        } => {
            let order = store
                .order(&order_number)
                .await
                .map_err(from_store)?
                .ok_or_else(|| {
                    usage(format!(
                        "no order {order_number}; see `subsave orders list`"
                    ))
                })?;
            if output.json {
                return write_json(out, &order);
            }
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
        }
    }
    Ok(())
}
