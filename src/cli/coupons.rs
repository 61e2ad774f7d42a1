//! `subsave coupons create|list|disable`.

use std::io::Write;

use chrono::NaiveDate;
use clap::Subcommand;

use super::{CliError, JsonFlag, outln, parse_percent_arg, usage, write_json};
use crate::app::coupons::{self, CouponInput};
use crate::app::idempotency::Commit;
use crate::app::{App, PageRequest};
use crate::core::money::{BasisPoints, Money};
use crate::core::pricing::CouponValue;

#[derive(Debug, Subcommand)]
pub enum CouponsCommand {
    /// Create a coupon.
    Create {
        /// The code customers give: letters, digits, '-' and '_', at most 32 (case-insensitive).
        code: String,
        /// A percentage off what remains after other discounts, e.g. "10%".
        #[arg(long, value_parser = parse_percent_arg, required_unless_present = "amount", conflicts_with = "amount")]
        percent: Option<BasisPoints>,
        /// A fixed amount off, e.g. "5.00", in --currency. It applies only to orders in that
        /// currency (the markets priced in it).
        #[arg(long)]
        amount: Option<String>,
        /// The currency of --amount (ISO 4217, one the catalog prices in); the default
        /// market's when left out.
        #[arg(long, requires = "amount")]
        currency: Option<String>,
        /// once, forever, or "repeating N" (orders).
        #[arg(long, default_value = "once")]
        duration: String,
        /// Only for this plan.
        #[arg(long)]
        plan: Option<String>,
        /// Last date (UTC) the coupon can be redeemed.
        #[arg(long)]
        expires: Option<NaiveDate>,
        /// How many subscriptions may redeem it in all (1 or more; no limit when left out).
        #[arg(long)]
        max_redemptions: Option<u32>,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List coupons.
    List {
        /// How many to list, by id.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Disable a coupon: no new redemptions.
    Disable {
        /// The coupon's code.
        code: String,
    },
}

pub(super) async fn run(
    app: &App,
    command: CouponsCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        CouponsCommand::Create {
            code,
            percent,
            amount,
            currency,
            duration,
            plan,
            expires,
            max_redemptions,
            output,
        } => {
            let value = match (percent, amount) {
                (Some(bp), _) => CouponValue::Percent(bp),
                (None, Some(text)) => {
                    let currency = match currency {
                        Some(code) => app
                            .catalog()
                            .priced_currency(&code)
                            .map_err(|e| usage(format!("--currency{e}")))?,
                        None => app.catalog().currency,
                    };
                    CouponValue::Amount(
                        Money::parse(&text, currency)
                            .map_err(|e| usage(format!("--amount: {e}")))?,
                    )
                }
                (None, None) => return Err(usage("pass --percent or --amount")),
            };
            let duration = duration
                .parse()
                .map_err(|e: String| usage(format!("--duration: {e}")))?;
            let coupon = coupons::create(
                app,
                CouponInput {
                    code,
                    value,
                    duration,
                    plan,
                    expires,
                    max_redemptions,
                },
                Commit::Plain,
            )
            .await?;
            if output.json {
                return write_json(out, &coupon);
            }
            outln!(out, "coupon {} created", coupon.code);
        }
        CouponsCommand::List { limit, output } => list(app, limit, output.json, out).await?,
        CouponsCommand::Disable { code } => {
            let coupon = coupons::disable(app, &code, Commit::Plain).await?;
            outln!(
                out,
                "coupon {} disabled: no new redemptions; subscriptions that redeemed it keep it",
                coupon.code
            );
        }
    }
    Ok(())
}

/// `coupons list`: each coupon's value, duration, plan, redemptions and whether it is in use.
async fn list(app: &App, limit: u32, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let page = coupons::list(app, PageRequest::first(limit)).await?;
    if json {
        return write_json(out, &page.data);
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
    let now = app.now();
    for c in page.data {
        let value = match c.value {
            CouponValue::Percent(bp) => bp.to_string(),
            CouponValue::Amount(m) => m.to_string(),
        };
        let status = if c.disabled_at.is_some() {
            "disabled"
        } else if c.expires_at.is_some_and(|e| e <= now) {
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
            c.plan.as_deref().unwrap_or("any"),
            c.redemptions,
            limit,
            status
        );
    }
    Ok(())
}
