//! `subsave demo`: a newcomer's first run. It makes a realistic sample on the embedded default
//! (SQLite in a fresh folder, .eml files for mail): about fifty customers across time zones,
//! each with their country's locale (German emails in Berlin; a language without templates,
//! such as French, gets English ones), all four plans, coupons, skips, pauses, a plan change, a
//! fresh-link request, a cancellation and its restart from the customer's page, one long-time
//! subscriber whose annual notice falls due, and saved cards, some of which are declined (a few
//! customers give a new card on their card page and recover, the others run through the
//! dunning schedule) or ask for 3-D Secure (those customers complete each such renewal from
//! its email's page). The pages' parts are their use cases (`app::customer_payments`,
//! `app::subscriptions::restart`), called as the pages call them. Customers in the US, Germany and France have a
//! ship-to address in their country (taxed by it), and one moves to California during the
//! demo; a simulated warehouse ships each order one or two days after it was billed, sending
//! its shipments back as a 3PL's CSV file through the same import as `subsave orders
//! import-shipments`, so that "shipped" emails go out. Then it advances a simulated clock through the
//! months up to now (the clock's: the real one, or `--now`), running the same engine, payment
//! worker and mailer as `subsave run` every six simulated hours, so that every kind of email
//! goes out, and reports from the database it wrote. Nothing is computed differently from
//! production: only the clock is simulated, and the payment provider is the in-process
//! simulation (`simulated`), whatever `payments.provider` says: a demo never charges a real
//! card.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Days, Months, NaiveTime, TimeDelta, Utc};
use serde::Serialize;

use crate::clock::FixedClock;
use crate::config::{MailTransport, Settings};
use crate::core::address::{Address, RawAddress};
use crate::core::catalog::PlanId;
use crate::core::lifecycle::{self, Operation, Start};
use crate::core::model::{
    Actor, CouponDuration, CustomerAddress, NewCoupon, NewCustomer, PaymentRefs, ProviderKind,
    Subscription,
};
use crate::core::money::{BasisPoints, Currency, Money};
use crate::core::pricing::CouponValue;
use crate::engine::Engine;
use crate::mail::mailer::Mailer;
use crate::mail::transport;
use crate::payments::Collector;
use crate::store::{
    self, DatabaseSettings, DatabaseUrl, MessageFilter, OrderFilter, PaymentFilter, Store,
    SubscriptionFilter,
};

const NAMES: [&str; 10] = [
    "Ada", "Björn", "Chiara", "Dmitri", "Emeka", "Fatima", "Grace", "Hiro", "Inès", "José",
];
const SURNAMES: [&str; 5] = ["Okafor", "Lindqvist", "Rossi", "Tanaka", "Müller"];
/// (time zone, tax region, locale): customers in the US, Europe, Asia and Australia, each with
/// their country's language tag.
const PLACES: [(&str, Option<&str>, &str); 7] = [
    ("America/New_York", Some("US-NY"), "en-US"),
    ("America/Los_Angeles", Some("US-CA"), "en-US"),
    ("America/Chicago", Some("US-TX"), "en-US"),
    ("Europe/Berlin", Some("DE"), "de-DE"),
    ("Europe/Paris", Some("FR"), "fr-FR"),
    ("Asia/Tokyo", None, "ja-JP"),
    ("Australia/Sydney", None, "en-AU"),
];

/// A place's street, city, subdivision, postal code and country.
type Street = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
);

/// Where the customers of each place live (street, city, subdivision, postal code, country),
/// by [`PLACES`]' index; none where the catalog's shop does not ship (Japan, Australia), whose
/// customers are taxed by their region alone.
const STREETS: [Option<Street>; 7] = [
    Some(("Broadway", "New York", Some("NY"), "10007", "US")),
    Some(("Market St", "San Francisco", Some("CA"), "94105", "US")),
    Some(("Congress Ave", "Austin", Some("TX"), "78701", "US")),
    Some(("Unter den Linden", "Berlin", None, "10117", "DE")),
    Some(("Rue de Rivoli", "Paris", None, "75001", "FR")),
    None,
    None,
];

/// The customer who moves (from New York to California) during the demo.
const MOVER: usize = 0;

/// The long-time subscriber: signed up a year and two weeks before the demo ends (or when it
/// starts, if that is earlier), so that their annual notice is due during the demo.
const LONG_TIME: usize = 3;

/// What the demo's customers did on their pages, through the very use cases the pages call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PortalReport {
    /// Declined customers who gave the test card on the card page (their unpaid orders
    /// tried again at once).
    pub cards_saved: usize,
    /// 3-D Secure renewals completed from the `payment_action_required` email's page.
    pub payments_confirmed: usize,
    /// Cancelled subscriptions restarted from their page.
    pub restarts: usize,
}

/// What the demo wrote, summarised from the database afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    pub folder: PathBuf,
    pub database: String,
    pub mail_folder: PathBuf,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub customers: usize,
    pub subscriptions: usize,
    pub orders: usize,
    /// Currency → the orders' total in it (never added across currencies).
    pub revenue: BTreeMap<String, Money>,
    /// plan → currency → orders and revenue.
    pub by_plan: BTreeMap<String, BTreeMap<String, (usize, Money)>>,
    /// adjustment kind → currency → total (discounts are negative).
    pub adjustments: BTreeMap<String, BTreeMap<String, Money>>,
    /// message kind → status → count.
    pub emails: BTreeMap<String, BTreeMap<String, usize>>,
    pub eml_files: usize,
    /// A signed link to an active subscription's customer page, working from today.
    pub customer_page: Option<String>,
    /// An admin key (`demo-console`) made in the demo's database, to sign in to the console.
    pub console_key: String,
    /// payment status → count (the simulated provider).
    pub payments: BTreeMap<String, usize>,
    /// Declined attempts, and payments paid after at least one decline.
    pub declined_attempts: usize,
    pub recovered: usize,
    /// Subscriptions shipping to an address (the others are taxed by their customer's region).
    pub with_address: usize,
    /// Shipments the simulated warehouse sent back and the import recorded.
    pub shipped: u64,
    /// What customers did on their own pages (the pages' use cases, actor `customer:link`).
    pub portal: PortalReport,
    /// Orders still waiting for their shipment at the end.
    pub unfulfilled: i64,
}

/// The demo's saved card for customer `i`: most are paid, every tenth is declined, and every
/// twentieth (from the sixth) asks for 3-D Secure.
fn demo_card(i: usize) -> &'static str {
    if i % 10 == 4 {
        "pm_card_declined"
    } else if i % 20 == 5 {
        "pm_card_authenticationRequired"
    } else {
        "pm_card_visa"
    }
}

/// The demo's first renewal day for customer `i`: spread over the first month.
fn first_renewal_day(i: usize) -> u64 {
    1 + (i as u64 * 7) % 30
}

/// Runs the demo in `folder` (which must not hold a demo already) for the `months` that end at
/// `now`: it starts at midnight (UTC) `months` before.
pub async fn run(
    settings: &Settings,
    folder: &Path,
    months: u32,
    customers: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<DemoReport> {
    if folder.join("subsave.db").exists() {
        anyhow::bail!(
            "{} already holds a demo database; remove the folder or pass another --dir",
            folder.display()
        );
    }
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let folder = folder.canonicalize()?;
    let url = format!("sqlite://{}?mode=rwc", folder.join("subsave.db").display());
    let database = DatabaseSettings::direct(
        DatabaseUrl::parse(&url).map_err(|e| anyhow::anyhow!(e))?,
        4,
        true,
    );
    let mut mail = settings.mail.clone();
    mail.transport = MailTransport::File;
    mail.file_dir = folder.join("mail");
    mail.delivery.rate_per_second = 100_000;

    let links = crate::link_keys::links(&settings.web)?;
    let end = now;
    let store = store::connect(&database).await?;
    store.migrate().await?;
    let catalog = Arc::new(settings.catalog.clone());
    let mut settings = settings.clone();
    settings.payments.provider = ProviderKind::Simulated;
    let settings = &settings;
    let engine = Engine::from_settings(store.clone(), settings);
    let collector = Collector::from_settings(store.clone(), settings)
        .map_err(|e| anyhow::anyhow!(e))?
        .context("the simulated provider is always there")?;
    let mailer = Mailer::new(
        store.clone(),
        Arc::from(transport::from_settings(&mail).map_err(|e| anyhow::anyhow!(e))?),
        &mail,
    )
    .with_delivery_window(settings.reminders.window)
    .with_links(links.clone())
    .with_plan_names(&settings.catalog)
    .with_webhooks(&settings.webhooks);

    let start = end
        .checked_sub_months(Months::new(months))
        .context("--months takes the demo before the calendar")?
        .date_naive()
        .and_time(NaiveTime::MIN)
        .and_utc();
    let year_before = end
        .checked_sub_months(Months::new(12))
        .context("a year before the demo's end is before the calendar")?
        - TimeDelta::days(14);
    let since = start.min(year_before);
    let (subs, new_home) = populate(store.as_ref(), settings, customers, start, since).await?;
    // The long-time subscriber's welcome went out when they signed up.
    mailer.deliver_due(&FixedClock(since)).await?;
    let script = script(&subs, start, new_home);
    let mut shipped = 0;
    let fixes = fixes(&subs, start);
    let mut portal = PortalReport::default();
    let actor = Actor("demo".into());
    // Every six hours from the start, then once more at the end.
    let mut now = start;
    loop {
        let next = (now + TimeDelta::hours(6)).min(end);
        for (at, id, step) in script
            .iter()
            .filter(|(at, _, step)| *at >= now && *at < next && !matches!(step, Step::Restart))
        {
            let apply = |s: &Subscription, c: &crate::core::model::Customer| match step {
                Step::Lifecycle(operation) => {
                    lifecycle::apply(s, c, operation, &catalog, &actor, *at)
                }
                Step::FreshLink => Ok(lifecycle::link_request(s, c, *at)),
                Step::Restart => Err(lifecycle::LifecycleError::InvalidState(
                    "a restart is made on the customer's page, below".into(),
                )),
            };
            // A scripted change that no longer applies (say, skipping a paused one) is skipped,
            // exactly as the CLI would refuse it.
            if let Err(refused) = store.transition(*id, &apply).await {
                tracing::debug!(%refused, "demo operation refused");
            }
        }
        // The customers' own pages, at this instant's clock.
        let app = crate::app::App::new(
            store.clone(),
            Arc::new(settings.clone()),
            Arc::new(FixedClock(now)),
        );
        for (at, id, step) in script.iter().filter(|(at, _, _)| *at >= now && *at < next) {
            if matches!(step, Step::Restart) {
                let restarted = crate::app::subscriptions::restart(
                    &app,
                    &Actor::customer_link(),
                    *id,
                    None,
                    crate::app::idempotency::Commit::Plain,
                )
                .await;
                match restarted {
                    Ok(_) => portal.restarts += 1,
                    Err(refused) => tracing::debug!(%refused, at = %at, "demo restart refused"),
                }
            }
        }
        portal_fixes(&app, &fixes, now, next, &mut portal).await?;
        engine.sweep(now).await?;
        collector.collect(now).await?;
        shipped += warehouse(&store, settings, now).await?;
        mailer.deliver_due(&FixedClock(now)).await?;
        if now >= end {
            break;
        }
        now = next;
    }
    let mut report = report(store.as_ref(), &folder, &url, &mail.file_dir, start, end).await?;
    report.shipped = shipped;
    report.portal = portal;
    // A link that works from today, to a subscription that is still active at the end.
    let active = store
        .subscriptions(&SubscriptionFilter {
            status: Some(crate::core::model::Status::Active),
            limit: 1,
            ..Default::default()
        })
        .await?;
    report.customer_page = active
        .first()
        .map(|sub| links.for_subscription(sub.id, end).page);
    // The console is `subsave run`'s (admin.listen); its sign-in key is made like any other.
    let app = crate::app::App::new(
        store.clone(),
        Arc::new(settings.clone()),
        Arc::new(FixedClock(end)),
    );
    report.console_key =
        crate::app::api_keys::create(&app, "demo-console", crate::core::model::Scope::Admin)
            .await?
            .key;
    Ok(report)
}

/// The simulated warehouse at `now`: each order waiting for its shipment leaves one or two days
/// after it was billed (by its id), with USPS in the US and DHL elsewhere; the shipments come
/// back as a 3PL's CSV file (its own column names, CRLF) through the import that `subsave
/// orders import-shipments` runs. Returns how many were recorded.
async fn warehouse(
    store: &Arc<dyn Store>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    const PAGE: u32 = 500;
    let mut file = String::from("Order #,Carrier,Tracking Number,Ship Date\r\n");
    let mut rows = 0;
    let mut after = None;
    loop {
        let page = store.unfulfilled_orders(after, PAGE).await?;
        for order in &page {
            let leaves = order.created_at + TimeDelta::days(1 + order.id % 2);
            if leaves > now {
                continue;
            }
            let carrier = match order.ship_to.as_ref().map(|a| a.country.code()) {
                Some("US") | None => "USPS",
                Some(_) => "DHL",
            };
            file.push_str(&format!(
                "{},{carrier},DEMO{:010},{}\r\n",
                order.order_number,
                order.id,
                leaves.to_rfc3339()
            ));
            rows += 1;
        }
        if page.len() < PAGE as usize {
            break;
        }
        after = page.last().map(|o| o.id);
    }
    if rows == 0 {
        return Ok(0);
    }
    let app = crate::app::App::new(
        store.clone(),
        Arc::new(settings.clone()),
        Arc::new(FixedClock(now)),
    );
    let columns = crate::app::fulfillments::Columns {
        order: "Order #".into(),
        carrier: "Carrier".into(),
        tracking: "Tracking Number".into(),
        shipped_at: Some("Ship Date".into()),
        url: None,
    };
    let report = crate::app::fulfillments::import(
        &app,
        &Actor("warehouse".into()),
        file.as_bytes(),
        &columns,
    )
    .await?;
    if report.refused_count > 0 {
        anyhow::bail!(
            "the demo warehouse's shipments were refused: {:?}",
            report.refused
        );
    }
    Ok(report.applied)
}

/// Customer `i`'s address in their place's country, when the shop ships there.
fn demo_address(i: usize, name: &str) -> anyhow::Result<Option<Address>> {
    let Some((street, city, subdivision, postal_code, country)) = STREETS[i % STREETS.len()] else {
        return Ok(None);
    };
    Address::parse(&RawAddress {
        name: name.into(),
        line1: format!("{} {street}", 1 + i),
        line2: None,
        city: city.into(),
        subdivision: subdivision.map(str::to_owned),
        postal_code: Some(postal_code.into()),
        country: country.into(),
        phone: None,
    })
    .map(Some)
    .map_err(|e| anyhow::anyhow!("the demo's address {i}: {e}"))
}

/// The coupons, then `count` customers with a subscription each, signed up at `start` (the
/// long-time subscriber at `since`), shipping to an address in their country where the shop
/// ships there; and the address in California that [`MOVER`] moves to.
async fn populate(
    store: &dyn Store,
    settings: &Settings,
    count: usize,
    start: DateTime<Utc>,
    since: DateTime<Utc>,
) -> anyhow::Result<(Vec<Subscription>, Option<CustomerAddress>)> {
    let default_currency = settings.catalog.currency;
    let mut coupons = vec![
        (
            "WELCOME10".to_owned(),
            CouponValue::Percent(BasisPoints::new(1000).unwrap_or_default()),
            CouponDuration::Once,
        ),
        (
            "VIP5".to_owned(),
            CouponValue::Percent(BasisPoints::new(500).unwrap_or_default()),
            CouponDuration::Forever,
        ),
    ];
    // 5.00 off three orders in each currency: an amount coupon applies only in its own.
    for currency in settings.catalog.currencies() {
        coupons.push((
            amount_coupon(currency, default_currency),
            CouponValue::Amount(Money::from_minor(500, currency)),
            CouponDuration::Repeating(3),
        ));
    }
    for (code, value, duration) in coupons {
        store
            .create_coupon(
                &NewCoupon {
                    code,
                    currency: match value {
                        CouponValue::Amount(amount) => amount.currency(),
                        CouponValue::Percent(_) => default_currency,
                    },
                    value,
                    duration,
                    plan: None,
                    expires_at: None,
                    max_redemptions: None,
                },
                since,
            )
            .await?;
    }
    let plans = settings.catalog.plan_id_list();
    let mut subs = Vec::new();
    let mut new_home = None;
    for i in 0..count {
        let (tz, region, locale) = PLACES[i % PLACES.len()];
        let signed_up = if i == LONG_TIME { since } else { start };
        let name = format!(
            "{} {}",
            NAMES[i % NAMES.len()],
            SURNAMES[(i / NAMES.len()) % SURNAMES.len()]
        );
        let customer = store
            .add_customer(
                &NewCustomer {
                    email: format!("customer{:02}@example.com", i + 1)
                        .parse()
                        .map_err(|e: String| anyhow::anyhow!(e))?,
                    name,
                    time_zone: tz.parse().map_err(|_| anyhow::anyhow!("bad zone {tz}"))?,
                    locale: locale.into(),
                    tax_region: region.map(str::to_owned),
                    external_id: None,
                    metadata: Default::default(),
                },
                signed_up,
            )
            .await?;
        let home = match demo_address(i, &customer.name)? {
            Some(address) => Some(
                store
                    .add_address(customer.id, &address, true, signed_up)
                    .await?,
            ),
            None => None,
        };
        if i == MOVER
            && let Some(address) = demo_address(1, &customer.name)?
        {
            new_home = Some(
                store
                    .add_address(customer.id, &address, false, signed_up)
                    .await?,
            );
        }
        // First renewals spread over the first month, as if customers had signed up over time.
        let first = start
            .date_naive()
            .checked_add_days(Days::new(first_renewal_day(i)))
            .context("date")?;
        let mut new = lifecycle::new_subscription(
            &settings.catalog,
            &customer,
            plans[i % plans.len()],
            1 + u32::from(i % 9 == 0),
            None,
            Start::FirstRenewalOn(first),
            settings.engine.renewal_time,
            signed_up,
        )?;
        new.ship_to(home.as_ref(), &settings.catalog);
        new.consent = Some(crate::core::model::ConsentInput {
            channel: "checkout".into(),
            terms_version: settings.notices.terms_version.clone(),
        });
        store
            .set_payment_refs(
                customer.id,
                &PaymentRefs {
                    customer_ref: Some(format!("cus_demo{}", customer.id)),
                    method_ref: Some(demo_card(i).into()),
                },
                crate::core::dunning::last_attempt(&settings.payments.policy()),
                signed_up,
            )
            .await?;
        new.coupon_code = match i % 6 {
            0 => Some("WELCOME10".into()),
            3 => Some(amount_coupon(new.currency, settings.catalog.currency)),
            5 => Some("VIP5".into()),
            _ => None,
        };
        subs.push(
            store
                .create_subscription(&new, &settings.catalog, &Actor("demo".into()), signed_up)
                .await?,
        );
    }
    Ok((subs, new_home))
}

/// The demo's 5.00-off-three-orders coupon in `currency`: `SAVE5X3` in the default market's,
/// `SAVE5X3-EUR` and the like in the other markets'.
fn amount_coupon(currency: Currency, default: Currency) -> String {
    if currency == default {
        "SAVE5X3".into()
    } else {
        format!("SAVE5X3-{currency}")
    }
}

/// What a customer whose renewal was not paid does from their page.
enum Fix {
    /// Gives the test card on the card page (`/s/TOKEN/payment-method`).
    NewCard,
    /// Completes each renewal waiting for 3-D Secure from its email's page
    /// (`/s/TOKEN/orders/NUMBER/pay`).
    Confirm,
}

/// Half the customers whose card is declined give a new one on their card page two days after
/// their first renewal (after the first retry failed too); those whose card asks for 3-D
/// Secure complete each such renewal from its email's page, from two days after their first:
/// (from when, subscription id, what).
fn fixes(subs: &[Subscription], start: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64, Fix)> {
    subs.iter()
        .enumerate()
        .filter_map(|(i, sub)| {
            let fix = match i % 20 {
                4 => Fix::NewCard,
                5 => Fix::Confirm,
                _ => return None,
            };
            let day = first_renewal_day(i) as i64 + 2;
            Some((
                start + TimeDelta::days(day) + TimeDelta::hours(12),
                sub.id,
                fix,
            ))
        })
        .collect()
}

/// The fixes due in `[now, next)`, through the pages' use cases: a new card once, and every
/// payment waiting for authentication since it is due.
async fn portal_fixes(
    app: &crate::app::App,
    fixes: &[(DateTime<Utc>, i64, Fix)],
    now: DateTime<Utc>,
    next: DateTime<Utc>,
    portal: &mut PortalReport,
) -> anyhow::Result<()> {
    use crate::app::customer_payments;
    for (at, id, fix) in fixes {
        match fix {
            Fix::NewCard if *at >= now && *at < next => {
                customer_payments::use_test_card(app, *id).await?;
                portal.cards_saved += 1;
            }
            Fix::Confirm if *at < next => {
                let waiting = app
                    .store()
                    .payments(&crate::store::PaymentFilter {
                        status: Some(crate::core::model::PaymentStatus::RequiresAction),
                        subscription_id: Some(*id),
                        limit: 10,
                        ..Default::default()
                    })
                    .await?;
                for payment in waiting {
                    let done =
                        customer_payments::finish_confirm(app, *id, &payment.order_number, None)
                            .await?;
                    portal.payments_confirmed += usize::from(done.state == "paid");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the script does to a subscription on a given day.
enum Step {
    /// What the customer asked for (through a page or support), as the CLI would do it.
    Lifecycle(Operation),
    /// The customer asks for a fresh link to their pages.
    FreshLink,
    /// The customer restarts their cancelled subscription from its page.
    Restart,
}

/// Skips, pauses (one with an end), a plan change, a move to another address (`new_home`), a
/// fresh-link request and a cancellation, on given days: most within the first month, so that
/// even a one-month demo has them.
fn script(
    subs: &[Subscription],
    start: DateTime<Utc>,
    new_home: Option<CustomerAddress>,
) -> Vec<(DateTime<Utc>, i64, Step)> {
    let day = |d: i64| start + TimeDelta::days(d) + TimeDelta::hours(1);
    let id = |i: usize| subs[i % subs.len()].id;
    let mut script = vec![
        (day(3), id(1), Step::Lifecycle(Operation::Skip)),
        (day(10), id(7), Step::Lifecycle(Operation::Skip)),
        (day(40), id(13), Step::Lifecycle(Operation::Skip)),
        (day(75), id(19), Step::Lifecycle(Operation::Skip)),
        (
            day(5),
            id(2),
            Step::Lifecycle(Operation::Pause {
                until: Some(start + TimeDelta::days(25)),
            }),
        ),
        (
            day(20),
            id(8),
            Step::Lifecycle(Operation::Pause { until: None }),
        ),
        (day(95), id(8), Step::Lifecycle(Operation::Resume)),
        (day(9), id(6), Step::FreshLink),
        (
            day(12),
            id(4),
            Step::Lifecycle(Operation::Change {
                plan: PlanId::parse("6-pack").ok(),
                quantity: None,
                interval: Some(
                    crate::core::schedule::Interval::days(180).unwrap_or(subs[0].interval),
                ),
                ship_to: None,
            }),
        ),
        (
            day(24),
            id(10),
            Step::Lifecycle(Operation::Cancel {
                reason: "moving abroad".into(),
            }),
        ),
        (day(30), id(10), Step::Restart),
    ];
    if let Some(address) = new_home {
        script.push((
            day(15),
            id(MOVER),
            Step::Lifecycle(Operation::Change {
                plan: None,
                quantity: None,
                interval: None,
                ship_to: Some(Box::new(address)),
            }),
        ));
    }
    script.sort_by_key(|(at, _, _)| *at);
    script
}

async fn report(
    store: &dyn Store,
    folder: &Path,
    url: &str,
    mail_dir: &Path,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<DemoReport> {
    let orders = store
        .orders(&OrderFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await?;
    let mut by_plan: BTreeMap<String, BTreeMap<String, (usize, Money)>> = BTreeMap::new();
    let mut adjustments: BTreeMap<String, BTreeMap<String, Money>> = BTreeMap::new();
    let mut revenue: BTreeMap<String, Money> = BTreeMap::new();
    for order in &orders {
        let currency = order.total.currency();
        let code = || currency.code().to_owned();
        let total = revenue.entry(code()).or_insert(Money::zero(currency));
        *total = total.checked_add(order.total)?;
        let entry = by_plan
            .entry(order.plan.to_string())
            .or_default()
            .entry(code())
            .or_insert((0, Money::zero(currency)));
        entry.0 += 1;
        entry.1 = entry.1.checked_add(order.total)?;
        for line in &order.lines {
            let total = adjustments
                .entry(line.kind.clone())
                .or_default()
                .entry(code())
                .or_insert(Money::zero(currency));
            *total = total.checked_add(line.amount)?;
        }
    }
    let mut emails: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for message in store
        .messages(&MessageFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await?
    {
        *emails
            .entry(message.kind.to_string())
            .or_default()
            .entry(message.status.to_string())
            .or_default() += 1;
    }
    let eml_files = std::fs::read_dir(mail_dir).map(|d| d.count()).unwrap_or(0);
    let payments = store
        .payments(&PaymentFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await?;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for payment in &payments {
        *by_status.entry(payment.status.as_str().into()).or_default() += 1;
    }
    let recovered = payments
        .iter()
        .filter(|p| p.status.collected() && p.attempt > 1)
        .count();
    // Each payment's attempts before the last, and the last when it was declined.
    let declined_attempts = payments
        .iter()
        .map(|p| {
            let last_declined = p.status == crate::core::model::PaymentStatus::Failed
                && p.next_attempt_at.is_none();
            (p.attempt as usize - 1) + usize::from(last_declined)
        })
        .sum();
    let subscriptions = store
        .subscriptions(&SubscriptionFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await?;
    Ok(DemoReport {
        folder: folder.to_owned(),
        database: url.to_owned(),
        mail_folder: mail_dir.to_owned(),
        from,
        to,
        customers: store.customers(u32::MAX, None).await?.len(),
        subscriptions: subscriptions.len(),
        orders: orders.len(),
        revenue,
        by_plan,
        adjustments,
        emails,
        eml_files,
        customer_page: None,
        console_key: String::new(),
        payments: by_status,
        declined_attempts,
        recovered,
        with_address: subscriptions.iter().filter(|s| s.ship_to.is_some()).count(),
        shipped: 0,
        portal: PortalReport::default(),
        unfulfilled: store.unfulfilled_summary(to, 0).await?.0,
    })
}
