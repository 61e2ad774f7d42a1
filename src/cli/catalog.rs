//! The catalog's commands, which need no database: `check-config`, `plans`, `quote` and
//! `schedule`.

use std::io::Write;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{CliError, QuoteArgs, ScheduleArgs, outln, usage, write_json};
use crate::app::{self, catalog::QuoteInput};
use crate::catalog::Catalog;
use crate::config::{self, Settings};
use crate::money::Money;
use crate::pricing::{AppliedCoupon, CouponValue};
use crate::schedule::{Anchor, Interval};

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
    };
    let text = toml::to_string(&view).map_err(anyhow::Error::from)?;
    let c = &settings.catalog;
    outln!(out, "# config is valid (secrets are shown as [redacted])");
    outln!(out, "{text}");
    outln!(
        out,
        "# catalog: {} ({}; plans {}; {} tax regions; discount cap {})",
        settings.catalog_source,
        c.currency,
        c.plan_ids(),
        c.tax_regions.len(),
        c.discount_cap
    );
    Ok(())
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
