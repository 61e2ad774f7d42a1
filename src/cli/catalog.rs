//! The catalog's commands, which need no database: `check-config`, `plans`, `quote` and
//! `schedule`.

use std::io::Write;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{CliError, QuoteArgs, ScheduleArgs, outln, usage, write_json};
use crate::app::{self, catalog::QuoteInput};
use crate::config::{self, Settings};
use crate::core::catalog::Catalog;
use crate::core::money::Money;
use crate::core::pricing::{AppliedCoupon, CouponValue};
use crate::core::schedule::{Anchor, Interval};

/// The settings as `check-config` prints them: everything but the catalog's contents, which
/// are summarised (see `subsave plans`).
#[derive(Serialize)]
struct SettingsView<'a> {
    database: &'a config::DatabaseSettings,
    mail: &'a config::MailSettings,
    engine: &'a config::EngineSettings,
    reminders: &'a config::ReminderSettings,
    http: &'a config::HttpSettings,
    daemon: &'a config::DaemonSettings,
    outbox: &'a config::OutboxSettings,
    finance: &'a config::FinanceSettings,
    fulfillment: &'a config::FulfillmentSettings,
    web: &'a config::WebSettings,
    notices: &'a config::NoticeSettings,
    api: &'a config::ApiSettings,
    webhooks: &'a config::WebhookSettings,
    payments: &'a config::PaymentSettings,
}

pub(super) fn check_config(
    settings: &Settings,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if json {
        return write_json(out, settings);
    }
    let view = SettingsView {
        database: &settings.database,
        mail: &settings.mail,
        engine: &settings.engine,
        reminders: &settings.reminders,
        http: &settings.http,
        daemon: &settings.daemon,
        outbox: &settings.outbox,
        finance: &settings.finance,
        fulfillment: &settings.fulfillment,
        web: &settings.web,
        notices: &settings.notices,
        api: &settings.api,
        webhooks: &settings.webhooks,
        payments: &settings.payments,
    };
    let mut config = toml::Value::try_from(&view).map_err(anyhow::Error::from)?;
    let hidden = as_config_file(&mut config, settings);
    let c = &settings.catalog;
    outln!(
        out,
        "# config is valid; as a file, `--config` accepts it back"
    );
    for warning in placeholder_warnings(settings) {
        outln!(out, "# warning: {warning}");
    }
    if !hidden.is_empty() {
        outln!(
            out,
            "# secrets set and not shown (give them again, from the environment or a *_file): {}",
            hidden.join(", ")
        );
    }
    let text = toml::to_string(&config).map_err(anyhow::Error::from)?;
    outln!(out, "{text}");
    let markets: String = c
        .markets
        .iter()
        .map(|m| format!("; market {} in {}", m.name, m.currency))
        .collect();
    outln!(
        out,
        "# catalog: {} ({}{markets}; plans {}; {} tax regions; discount cap {})",
        settings.catalog_source,
        c.currency,
        c.plan_ids(),
        c.tax_regions.len(),
        c.discount_cap
    );
    Ok(())
}

/// What a start would meet in the database, as comment lines after the configuration (none
/// with `--json`): a catalog lacking plans that subscriptions use, or an SQLite folder that
/// does not exist, exits 2; a database that does not answer is said, not refused.
pub(super) async fn check_database(
    settings: &Settings,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use crate::app::catalog::DatabaseCheck;
    let found = crate::app::catalog::check_database(settings)
        .await
        .map_err(|error| CliError::Setup(error.to_string()))?;
    if json {
        return Ok(());
    }
    let line = match found {
        DatabaseCheck::Fits => {
            "reachable, schema current, every plan in use is in the catalog".to_owned()
        }
        DatabaseCheck::NotCreated(what) => what,
        DatabaseCheck::NotChecked(why) => format!("not checked ({why})"),
        DatabaseCheck::SchemaBehind(why) => format!("warning: {why}"),
    };
    outln!(out, "# database: {line}");
    Ok(())
}

/// Turns the settings as shown into the keys a config file takes: derived values out
/// (`database.backend`), the delivery window as its two keys, secrets out (returned, by key),
/// and the catalog's file when one is used.
fn as_config_file(config: &mut toml::Value, settings: &Settings) -> Vec<String> {
    let mut hidden = Vec::new();
    if let Some(database) = config
        .get_mut("database")
        .and_then(toml::Value::as_table_mut)
    {
        database.remove("backend");
    }
    if let Some(reminders) = config
        .get_mut("reminders")
        .and_then(toml::Value::as_table_mut)
        && let Some(toml::Value::Table(window)) = reminders.remove("window")
    {
        for (key, value) in window {
            reminders.insert(format!("window_{key}"), value);
        }
    }
    // The key source is one of two keys in a file: `link_keys_file`, or `link_keys` (a secret).
    if let Some(web) = config.get_mut("web").and_then(toml::Value::as_table_mut)
        && let Some(toml::Value::Table(source)) = web.remove("link_keys")
    {
        for (kind, value) in source {
            let key = if kind == "file" {
                "link_keys_file"
            } else {
                "link_keys"
            };
            web.insert(key.into(), value);
        }
    }
    remove_redacted(config, "", &mut hidden);
    if settings.catalog_source != crate::config::DEFAULT_CATALOG_NAME
        && let Some(table) = config.as_table_mut()
    {
        let mut catalog = toml::map::Map::new();
        catalog.insert(
            "file".into(),
            toml::Value::String(settings.catalog_source.clone()),
        );
        table.insert("catalog".into(), toml::Value::Table(catalog));
    }
    hidden
}

fn remove_redacted(value: &mut toml::Value, path: &str, hidden: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            let secret: Vec<String> = table
                .iter()
                .filter(|(_, v)| v.as_str() == Some("[redacted]"))
                .map(|(k, _)| k.clone())
                .collect();
            for key in secret {
                table.remove(&key);
                hidden.push(format!("{path}{key}"));
            }
            for (key, child) in table.iter_mut() {
                remove_redacted(child, &format!("{path}{key}."), hidden);
            }
        }
        // An array of tables (webhook endpoints): each by its index.
        toml::Value::Array(items) => {
            let base = path.trim_end_matches('.');
            for (i, item) in items.iter_mut().enumerate() {
                remove_redacted(item, &format!("{base}[{i}]."), hidden);
            }
        }
        _ => {}
    }
}

/// Values that look left over from the example config.
fn placeholder_warnings(settings: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    let domain = settings.mail.from.email.domain().to_ascii_lowercase();
    if domain == "example.com" || domain.ends_with(".example") || domain.ends_with(".invalid") {
        warnings.push(format!(
            "mail.from is a placeholder ({}): set your shop's sender address",
            settings.mail.from.email
        ));
    }
    if settings.mail.reply_to.is_none() {
        warnings.push("mail.reply_to is not set: customers' replies go to mail.from".to_owned());
    }
    let mails = settings.mail.transport == crate::config::MailTransport::Smtp;
    let public = &settings.web.public_url;
    let host = public
        .split_once("://")
        .map_or(public.as_str(), |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if mails && loopback {
        warnings.push(format!(
            "web.public_url is {public}, a loopback address, while mail goes out through SMTP: every email would link customers there; set the address they reach the pages at"
        ));
    } else if mails && public.starts_with("http://") {
        warnings.push(format!(
            "web.public_url is {public}, plain http, while mail goes out through SMTP: links carry credentials, serve the pages over https"
        ));
    }
    let ops = settings.http.listen.ip();
    if !(ops.is_loopback() || is_private(ops)) {
        warnings.push(format!(
            "http.listen is {}, a public or every interface: /metrics and /readyz are for operators; listen on 127.0.0.1 or a private address",
            settings.http.listen
        ));
    }
    warnings
}

/// A private-network address (RFC 1918, IPv6 unique local), where an operator's listener may be.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

pub(super) fn plans(catalog: &Catalog, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let rows = app::catalog::plans(catalog)?;
    if json {
        return write_json(out, &rows);
    }
    outln!(
        out,
        "{:<8} {:>5} {:>12} {:>6} {:>12} {:>10}  {:<10} allowed intervals",
        "plan",
        "packs",
        "list price",
        "S&S",
        "S&S price",
        "per pack",
        "default"
    );
    for r in rows {
        let allowed: Vec<String> = r
            .allowed_intervals
            .iter()
            .map(Interval::to_string)
            .collect();
        outln!(
            out,
            "{:<8} {:>5} {:>12} {:>6} {:>12} {:>10}  {:<10} {}",
            r.plan,
            r.packs,
            r.list_price.to_string(),
            r.subscribe_and_save.to_string(),
            r.subscribe_and_save_price.to_string(),
            r.price_per_pack.to_decimal_string(),
            r.default_interval.to_string(),
            allowed.join(", ")
        );
    }
    // The other markets' prices, in their currencies (`quote --country` itemizes them).
    for market in &catalog.markets {
        let countries: Vec<&str> = market.countries.iter().map(|c| c.code()).collect();
        let prices: Vec<String> = market
            .prices
            .iter()
            .map(|(plan, price)| format!("{plan} {price}"))
            .collect();
        outln!(
            out,
            "market {} ({}): {}",
            market.name,
            countries.join(", "),
            prices.join(", ")
        );
    }
    Ok(())
}

pub(super) fn quote(
    catalog: &Catalog,
    args: &QuoteArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let coupon = match (&args.coupon_percent, &args.coupon_amount) {
        (Some(rate), _) => Some(CouponValue::Percent(*rate)),
        (None, Some(text)) => Some(CouponValue::Amount(
            Money::parse(text, catalog.currency)
                .map_err(|e| usage(format!("--coupon-amount: {e}")))?,
        )),
        (None, None) => None,
    }
    .map(|value| AppliedCoupon {
        code: "(cli)".into(),
        value,
    });
    let quote = app::catalog::quote(
        catalog,
        &QuoteInput {
            plan: args.plan.clone(),
            quantity: args.quantity,
            region: args.region.clone(),
            country: args.country.clone(),
            orders_so_far: args.orders_so_far,
            coupon,
        },
    )?;
    if args.output.json {
        return write_json(out, &quote);
    }
    for line in &quote.lines {
        outln!(out, "{:<44} {:>12}", line.label, line.amount.to_string());
    }
    outln!(out, "{:<44} {:>12}", "Total", quote.total.to_string());
    if let Some(tax) = &quote.included_tax {
        outln!(out, "{:<44} {:>12}", tax.label, tax.amount.to_string());
    }
    Ok(())
}

#[derive(Serialize)]
struct ScheduleRow {
    cycle: u32,
    local: String,
    utc: String,
}

pub(super) fn schedule(args: &ScheduleArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let anchor = Anchor::new(args.anchor, args.tz);
    let rows = (1..=args.count)
        .map(|k| {
            let at = anchor
                .nth(args.every, k)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            Ok(ScheduleRow {
                cycle: k,
                local: at
                    .with_timezone(&args.tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, false),
                utc: at
                    .with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    if args.output.json {
        return write_json(out, &rows);
    }
    outln!(
        out,
        "renewals every {} from {} ({})",
        args.every,
        args.anchor.format("%Y-%m-%d %H:%M"),
        args.tz.name()
    );
    outln!(out, "{:>5}  {:<27} {}", "cycle", "local", "UTC");
    for r in rows {
        outln!(out, "{:>5}  {:<27} {}", r.cycle, r.local, r.utc);
    }
    Ok(())
}
