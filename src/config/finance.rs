//! `[finance]` and `[fulfillment]`: the zone finance books days in, the chart of accounts the
//! journal books to, and the carriers' tracking pages.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers, serialize_tz};
use crate::core::schedule::parse_time_zone;

/// Finance's view of time, and the accounting system's names for its accounts.
#[derive(Debug, Clone, Serialize)]
pub struct FinanceSettings {
    /// The zone whose calendar day an order is booked on (its billing date).
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    pub accounts: Accounts,
}

/// The chart of accounts the journal (`report journal`) books to, as the accounting system
/// names them (`[finance.accounts]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accounts {
    /// Owed by customers: an order's total until it is collected.
    pub receivable: String,
    /// Sales net of tax, before discounts (shipping included).
    pub revenue: String,
    /// Discounts given (subscribe-and-save, loyalty, coupons, price promises).
    pub discounts: String,
    /// Tax collected for the tax authority (added or included).
    pub tax_payable: String,
    /// Money collected by the payment provider (net of its fees).
    pub cash: String,
    /// The payment provider's fees.
    pub fees: String,
    /// Refunds (credit notes) net of tax.
    pub refunds: String,
    /// Money the storefront collected (`external` orders).
    pub storefront: String,
}

/// Longest account name accepted.
const ACCOUNT_NAME_MAX: usize = 100;

/// How shipments are told to customers: the carriers' tracking pages.
#[derive(Debug, Clone, Serialize)]
pub struct FulfillmentSettings {
    /// By carrier key (usps, ups, fedex, dhl, or another carrier's name): the built-in pages
    /// with the configured ones over them.
    pub tracking_urls: crate::core::fulfillment::TrackingUrls,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFinance {
    pub(super) time_zone: String,
    pub(super) accounts: RawAccounts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccounts {
    pub(super) receivable: String,
    pub(super) revenue: String,
    pub(super) discounts: String,
    pub(super) tax_payable: String,
    pub(super) cash: String,
    pub(super) fees: String,
    pub(super) refunds: String,
    pub(super) storefront: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFulfillment {
    pub(super) tracking_urls: std::collections::BTreeMap<String, String>,
}

/// `[finance]`, checked: a time zone and printable account names.
pub(super) fn parse(l: &Layers, raw: RawFinance) -> Result<FinanceSettings, ConfigError> {
    Ok(FinanceSettings {
        time_zone: parse_time_zone(&raw.time_zone)
            .map_err(|e| l.field("finance.time_zone", &raw.time_zone, e.to_string()))?,
        accounts: {
            let a = &raw.accounts;
            let name = |key: &str, value: &str| {
                crate::core::text::FreeText::parse(value, ACCOUNT_NAME_MAX)
                    .map(crate::core::text::FreeText::into_string)
                    .map_err(|e| {
                        l.field(
                            &format!("finance.accounts.{key}"),
                            value,
                            format!("an account name{e}"),
                        )
                    })
            };
            Accounts {
                receivable: name("receivable", &a.receivable)?,
                revenue: name("revenue", &a.revenue)?,
                discounts: name("discounts", &a.discounts)?,
                tax_payable: name("tax_payable", &a.tax_payable)?,
                cash: name("cash", &a.cash)?,
                fees: name("fees", &a.fees)?,
                refunds: name("refunds", &a.refunds)?,
                storefront: name("storefront", &a.storefront)?,
            }
        },
    })
}

/// `[fulfillment]`, checked: each tracking URL template.
pub(super) fn parse_fulfillment(
    l: &Layers,
    raw: RawFulfillment,
) -> Result<FulfillmentSettings, ConfigError> {
    Ok(FulfillmentSettings {
        tracking_urls: crate::core::fulfillment::TrackingUrls::with(&raw.tracking_urls).map_err(
            |(carrier, problem)| {
                let given = &raw.tracking_urls[&carrier];
                l.field(
                    &format!("fulfillment.tracking_urls.{carrier}"),
                    given,
                    problem,
                )
            },
        )?,
    })
}
