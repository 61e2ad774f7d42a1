//! The row shapes both backends read (`*Record`), and their conversion into domain types;
//! the statements themselves sit beside their use, in each concern's file. A row that does not parse is
//! reported as [`StoreError::Corrupt`], never unwrapped. Both backends bind `$N` parameters,
//! integers as `BIGINT`/`INTEGER` (i64) and instants as `DateTime<Utc>` (SQLite stores them
//! as RFC 3339 text, whose order is the instants' order since every value is UTC).

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::types::Json;

use super::StoreError;
use crate::core::address::{Address, RawAddress};
use crate::core::catalog::PlanId;
use crate::core::metadata::{ExternalId, Metadata};
use crate::core::model::{
    Coupon, CouponDuration, CouponGrant, CreditNote, Customer, CustomerAddress, Email, Event,
    Message, NoticeState, Order, OrderLine, Payload, Payment, PaymentRefs, Promise, Status,
    Subscription,
};
use crate::core::money::{BasisPoints, Currency, Money};
use crate::core::pricing::CouponValue;
use crate::core::schedule::{Interval, IntervalUnit, parse_time_zone};

fn corrupt(what: &str, id: i64, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {id}: {problem}"))
}

fn count(what: &str, id: i64, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(what, id, format!("{value} is out of range")))
}

/// An optional rate column, in basis points.
fn rate(what: &str, id: i64, value: Option<i64>) -> Result<Option<BasisPoints>, StoreError> {
    value
        .map(|bp| {
            u32::try_from(bp)
                .ok()
                .and_then(BasisPoints::new)
                .ok_or_else(|| corrupt(what, id, format!("rate {bp} bp is out of range")))
        })
        .transpose()
}

#[derive(Debug, sqlx::FromRow)]
pub struct CustomerRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub time_zone: String,
    pub locale: String,
    pub tax_region: Option<String>,
    pub external_id: Option<String>,
    pub metadata: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An external id column, checked as a new one is.
fn external_id(
    what: &str,
    id: i64,
    value: Option<String>,
) -> Result<Option<ExternalId>, StoreError> {
    value
        .map(|v| ExternalId::parse(&v).map_err(|e| corrupt(what, id, e)))
        .transpose()
}

/// A metadata column: a JSON object of strings, within the bounds.
pub fn stored_metadata(what: &str, id: i64, text: &str) -> Result<Metadata, StoreError> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| corrupt(what, id, format!("metadata: {e}")))?;
    Metadata::parse(map).map_err(|e| corrupt(what, id, e))
}

/// Metadata as its column keeps it: a JSON object, keys in order.
pub fn metadata_text(metadata: &Metadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

impl CustomerRecord {
    pub fn into_customer(self) -> Result<Customer, StoreError> {
        Ok(Customer {
            id: self.id,
            email: self
                .email
                .parse::<Email>()
                .map_err(|e| corrupt("customer", self.id, e))?,
            name: self.name,
            time_zone: parse_time_zone(&self.time_zone)
                .map_err(|e| corrupt("customer", self.id, e))?,
            locale: self.locale,
            tax_region: self.tax_region,
            external_id: external_id("customer", self.id, self.external_id)?,
            metadata: stored_metadata("customer", self.id, &self.metadata)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The customer half of a claimed row.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedCustomerRecord {
    pub c_id: i64,
    pub c_email: String,
    pub c_name: String,
    pub c_time_zone: String,
    pub c_locale: String,
    pub c_tax_region: Option<String>,
    pub c_external_id: Option<String>,
    pub c_metadata: String,
    pub c_created_at: DateTime<Utc>,
    pub c_updated_at: DateTime<Utc>,
}

impl ClaimedCustomerRecord {
    pub fn into_customer(self) -> Result<Customer, StoreError> {
        CustomerRecord {
            id: self.c_id,
            email: self.c_email,
            name: self.c_name,
            time_zone: self.c_time_zone,
            locale: self.c_locale,
            tax_region: self.c_tax_region,
            external_id: self.c_external_id,
            metadata: self.c_metadata,
            created_at: self.c_created_at,
            updated_at: self.c_updated_at,
        }
        .into_customer()
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AddressRecord {
    pub id: i64,
    pub customer_id: i64,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub country: String,
    pub subdivision: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
}

impl AddressRecord {
    pub fn into_address(self) -> Result<CustomerAddress, StoreError> {
        let address = Address::parse(&RawAddress {
            name: self.name,
            line1: self.line1,
            line2: self.line2,
            city: self.city,
            subdivision: self.subdivision,
            postal_code: self.postal_code,
            country: self.country,
            phone: self.phone,
        })
        .map_err(|e| corrupt("address", self.id, e))?;
        Ok(CustomerAddress {
            id: self.id,
            customer_id: self.customer_id,
            is_default: self.is_default,
            created_at: self.created_at,
            address,
        })
    }
}

fn coupon_value(
    id: i64,
    percent_bp: Option<i64>,
    amount_minor: Option<i64>,
    currency: &str,
) -> Result<CouponValue, StoreError> {
    match (percent_bp, amount_minor) {
        (Some(bp), None) => u32::try_from(bp)
            .ok()
            .and_then(BasisPoints::new)
            .map(CouponValue::Percent)
            .ok_or_else(|| corrupt("coupon", id, format!("percent {bp} bp is out of range"))),
        (None, Some(minor)) => {
            let currency: Currency = currency.parse().map_err(|e| corrupt("coupon", id, e))?;
            Ok(CouponValue::Amount(Money::from_minor(minor, currency)))
        }
        _ => Err(corrupt(
            "coupon",
            id,
            "exactly one of percent and amount must be set",
        )),
    }
}

fn coupon_duration(id: i64, kind: &str, orders: Option<i64>) -> Result<CouponDuration, StoreError> {
    match (kind, orders) {
        ("once", _) => Ok(CouponDuration::Once),
        ("forever", _) => Ok(CouponDuration::Forever),
        ("repeating", Some(n)) => Ok(CouponDuration::Repeating(count("coupon", id, n)?)),
        (other, _) => Err(corrupt(
            "coupon",
            id,
            format!("unknown duration \"{other}\""),
        )),
    }
}

/// The columns that store a coupon's value and duration.
pub struct CouponColumns {
    pub percent_bp: Option<i64>,
    pub amount_minor: Option<i64>,
    pub currency: String,
    pub duration: &'static str,
    pub duration_orders: Option<i64>,
}

pub fn coupon_columns(
    value: CouponValue,
    duration: CouponDuration,
    currency: Currency,
) -> CouponColumns {
    let (percent_bp, amount_minor, currency) = match value {
        CouponValue::Percent(bp) => (Some(i64::from(bp.get())), None, currency),
        CouponValue::Amount(m) => (None, Some(m.minor()), m.currency()),
    };
    let (duration, duration_orders) = match duration {
        CouponDuration::Once => ("once", None),
        CouponDuration::Repeating(n) => ("repeating", Some(i64::from(n))),
        CouponDuration::Forever => ("forever", None),
    };
    CouponColumns {
        percent_bp,
        amount_minor,
        currency: currency.code().to_owned(),
        duration,
        duration_orders,
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct CouponRecord {
    pub id: i64,
    pub code: String,
    pub percent_bp: Option<i64>,
    pub amount_minor: Option<i64>,
    pub currency: String,
    pub duration: String,
    pub duration_orders: Option<i64>,
    pub plan_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i64>,
    pub redemptions: i64,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl CouponRecord {
    pub fn into_coupon(self) -> Result<Coupon, StoreError> {
        let id = self.id;
        Ok(Coupon {
            id,
            value: coupon_value(id, self.percent_bp, self.amount_minor, &self.currency)?,
            duration: coupon_duration(id, &self.duration, self.duration_orders)?,
            code: self.code,
            plan: self
                .plan_id
                .map(|p| PlanId::parse(&p).map_err(|e| corrupt("coupon", id, e)))
                .transpose()?,
            expires_at: self.expires_at,
            max_redemptions: self
                .max_redemptions
                .map(|m| count("coupon", id, m))
                .transpose()?,
            redemptions: count("coupon", id, self.redemptions)?,
            disabled_at: self.disabled_at,
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct SubscriptionRecord {
    pub id: i64,
    pub customer_id: i64,
    pub plan_id: String,
    pub quantity: i64,
    pub interval_count: i64,
    pub interval_unit: String,
    pub anchor_local: NaiveDateTime,
    pub anchor_cycle: i64,
    pub time_zone: String,
    pub next_cycle: i64,
    pub next_renewal_at: Option<DateTime<Utc>>,
    pub status: String,
    pub paused_until: Option<DateTime<Utc>>,
    pub orders_count: i64,
    pub coupon_id: Option<i64>,
    pub coupon_orders_used: i64,
    pub cancel_reason: Option<String>,
    pub hold_reason: Option<String>,
    pub error_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub promised_cycle: Option<i64>,
    pub promised_price_minor: Option<i64>,
    pub promised_total_minor: Option<i64>,
    pub promise_currency: Option<String>,
    pub last_total_minor: Option<i64>,
    pub last_total_currency: Option<String>,
    pub price_checked_cycle: Option<i64>,
    pub annual_notice_at: Option<DateTime<Utc>>,
    pub coupon_code: Option<String>,
    pub coupon_percent_bp: Option<i64>,
    pub coupon_amount_minor: Option<i64>,
    pub coupon_currency: Option<String>,
    pub coupon_duration: Option<String>,
    pub coupon_duration_orders: Option<i64>,
    pub coupon_plan_id: Option<String>,
    pub address_id: Option<i64>,
    pub a_name: Option<String>,
    pub a_line1: Option<String>,
    pub a_line2: Option<String>,
    pub a_city: Option<String>,
    pub a_country: Option<String>,
    pub a_subdivision: Option<String>,
    pub a_postal_code: Option<String>,
    pub a_phone: Option<String>,
    pub a_is_default: Option<bool>,
    pub a_created_at: Option<DateTime<Utc>>,
    pub external_id: Option<String>,
    pub metadata: String,
}

impl SubscriptionRecord {
    pub fn into_subscription(self) -> Result<Subscription, StoreError> {
        let id = self.id;
        let bad = |problem: String| corrupt("subscription", id, problem);
        let unit = match self.interval_unit.as_str() {
            "day" => IntervalUnit::Day,
            "week" => IntervalUnit::Week,
            "month" => IntervalUnit::Month,
            other => return Err(bad(format!("unknown interval unit \"{other}\""))),
        };
        let interval = Interval::new(count("subscription", id, self.interval_count)?, unit)
            .ok_or_else(|| {
                bad(format!(
                    "interval count {} is out of range",
                    self.interval_count
                ))
            })?;
        let coupon = match (self.coupon_id, self.coupon_code) {
            (Some(coupon_id), Some(code)) => Some(CouponGrant {
                coupon_id,
                value: coupon_value(
                    coupon_id,
                    self.coupon_percent_bp,
                    self.coupon_amount_minor,
                    self.coupon_currency.as_deref().unwrap_or_default(),
                )?,
                duration: coupon_duration(
                    coupon_id,
                    self.coupon_duration.as_deref().unwrap_or_default(),
                    self.coupon_duration_orders,
                )?,
                plan: self
                    .coupon_plan_id
                    .map(|p| PlanId::parse(&p).map_err(bad))
                    .transpose()?,
                code,
                orders_used: count("subscription", id, self.coupon_orders_used)?,
            }),
            _ => None,
        };
        let ship_to = match (self.address_id, self.a_created_at) {
            (Some(address_id), Some(created_at)) => Some(
                AddressRecord {
                    id: address_id,
                    customer_id: self.customer_id,
                    name: self.a_name.unwrap_or_default(),
                    line1: self.a_line1.unwrap_or_default(),
                    line2: self.a_line2,
                    city: self.a_city.unwrap_or_default(),
                    country: self.a_country.unwrap_or_default(),
                    subdivision: self.a_subdivision,
                    postal_code: self.a_postal_code,
                    phone: self.a_phone,
                    is_default: self.a_is_default.unwrap_or_default(),
                    created_at,
                }
                .into_address()?,
            ),
            (Some(address_id), None) => {
                return Err(bad(format!("its address {address_id} does not exist")));
            }
            _ => None,
        };
        Ok(Subscription {
            ship_to,
            external_id: external_id("subscription", id, self.external_id)?,
            metadata: stored_metadata("subscription", id, &self.metadata)?,
            id,
            customer_id: self.customer_id,
            plan: PlanId::parse(&self.plan_id).map_err(bad)?,
            quantity: count("subscription", id, self.quantity)?,
            interval,
            anchor_local: self.anchor_local,
            anchor_cycle: count("subscription", id, self.anchor_cycle)?,
            time_zone: parse_time_zone(&self.time_zone).map_err(|e| bad(e.to_string()))?,
            next_cycle: count("subscription", id, self.next_cycle)?,
            next_renewal_at: self.next_renewal_at,
            status: self.status.parse::<Status>().map_err(bad)?,
            paused_until: self.paused_until,
            orders_count: count("subscription", id, self.orders_count)?,
            coupon,
            cancel_reason: self.cancel_reason,
            hold_reason: self.hold_reason,
            promise: match (self.promised_cycle, self.promised_price_minor) {
                (Some(cycle), Some(unit_price_minor)) => Some(Promise {
                    cycle: count("subscription", id, cycle)?,
                    unit_price_minor,
                    total_minor: self.promised_total_minor,
                    currency: kept_currency(self.promise_currency.as_deref()).map_err(bad)?,
                }),
                _ => None,
            },
            error_count: count("subscription", id, self.error_count)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            notices: NoticeState {
                last_total_minor: self.last_total_minor,
                last_total_currency: kept_currency(self.last_total_currency.as_deref())
                    .map_err(bad)?,
                price_checked_cycle: self
                    .price_checked_cycle
                    .map(|c| count("subscription", id, c))
                    .transpose()?,
                annual_notice_at: self.annual_notice_at,
            },
        })
    }
}

/// The currency stored beside a kept amount; NULL (written before markets existed) stays
/// `None`, read by the core (`core::model::kept_currency`).
fn kept_currency(code: Option<&str>) -> Result<Option<Currency>, String> {
    code.map(|c| c.parse::<Currency>().map_err(|e| e.to_string()))
        .transpose()
}

pub fn interval_unit(interval: Interval) -> &'static str {
    match interval.unit() {
        IntervalUnit::Day => "day",
        IntervalUnit::Week => "week",
        IntervalUnit::Month => "month",
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct OrderRecord {
    pub id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub cycle: i64,
    pub plan_id: String,
    pub packs: i64,
    pub quantity: i64,
    pub currency: String,
    pub total_minor: i64,
    pub tax_included_minor: Option<i64>,
    pub tax_region: Option<String>,
    pub coupon_code: Option<String>,
    pub scheduled_for: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub ship_name: Option<String>,
    pub ship_line1: Option<String>,
    pub ship_line2: Option<String>,
    pub ship_city: Option<String>,
    pub ship_subdivision: Option<String>,
    pub ship_postal_code: Option<String>,
    pub ship_country: Option<String>,
    pub ship_phone: Option<String>,
    pub tax_included_bp: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct OrderLineRecord {
    pub order_id: i64,
    pub kind: String,
    pub label: String,
    pub amount_minor: i64,
}

impl OrderRecord {
    /// Builds the order with its lines (`lines` may hold other orders' lines too).
    pub fn into_order(self, lines: &[OrderLineRecord]) -> Result<Order, StoreError> {
        let id = self.id;
        let currency: Currency = self.currency.parse().map_err(|e| corrupt("order", id, e))?;
        let ship_to = match self.ship_country {
            Some(country) => Some(
                Address::parse(&RawAddress {
                    name: self.ship_name.unwrap_or_default(),
                    line1: self.ship_line1.unwrap_or_default(),
                    line2: self.ship_line2,
                    city: self.ship_city.unwrap_or_default(),
                    subdivision: self.ship_subdivision,
                    postal_code: self.ship_postal_code,
                    country,
                    phone: self.ship_phone,
                })
                .map_err(|e| corrupt("order", id, format!("its ship-to address: {e}")))?,
            ),
            None => None,
        };
        Ok(Order {
            ship_to,
            id,
            order_number: self.order_number,
            subscription_id: self.subscription_id,
            customer_id: self.customer_id,
            cycle: count("order", id, self.cycle)?,
            plan: PlanId::parse(&self.plan_id).map_err(|e| corrupt("order", id, e))?,
            packs: count("order", id, self.packs)?,
            quantity: count("order", id, self.quantity)?,
            tax_region: self.tax_region,
            coupon_code: self.coupon_code,
            total: Money::from_minor(self.total_minor, currency),
            tax_included: self
                .tax_included_minor
                .map(|m| Money::from_minor(m, currency)),
            scheduled_for: self.scheduled_for,
            created_at: self.created_at,
            tax_included_rate: rate("order", id, self.tax_included_bp)?,
            lines: lines
                .iter()
                .filter(|l| l.order_id == id)
                .map(|l| OrderLine {
                    kind: l.kind.clone(),
                    label: l.label.clone(),
                    amount: Money::from_minor(l.amount_minor, currency),
                })
                .collect(),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub subscription_id: i64,
    pub kind: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub cycle: Option<i64>,
    pub detail: Json<serde_json::Value>,
}

impl EventRecord {
    pub fn into_event(self) -> Result<Event, StoreError> {
        Ok(Event {
            id: self.id,
            subscription_id: self.subscription_id,
            cycle: self.cycle.map(|c| count("event", self.id, c)).transpose()?,
            kind: self.kind,
            actor: self.actor,
            at: self.at,
            detail: self.detail.0,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct MessageRecord {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subscription_id: Option<i64>,
    pub order_id: Option<i64>,
    pub cycle: Option<i64>,
    pub lead_days: Option<i64>,
    pub status: String,
    pub attempts: i64,
    pub claims: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The JSON column as text (`CAST(payload AS TEXT)`), parsed by whoever reads it.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl MessageRecord {
    pub fn into_message(self) -> Result<Message, StoreError> {
        Ok(Message {
            id: self.id,
            cycle: self
                .cycle
                .map(|c| count("message", self.id, c))
                .transpose()?,
            lead_days: self
                .lead_days
                .map(|c| count("message", self.id, c))
                .transpose()?,
            attempts: count("message", self.id, self.attempts)?,
            claims: count("message", self.id, self.claims)?,
            next_attempt_at: self.next_attempt_at,
            lease_until: self.lease_until,
            last_error: self.last_error,
            sent_at: self.sent_at,
            kind: self
                .kind
                .parse()
                .map_err(|e| corrupt("message", self.id, e))?,
            recipient: self.recipient,
            subscription_id: self.subscription_id,
            order_id: self.order_id,
            status: self
                .status
                .parse()
                .map_err(|e| corrupt("message", self.id, e))?,
            payload: Payload::from_stored(self.payload),
            created_at: self.created_at,
        })
    }
}

/// Converts a count for binding.
pub fn big(n: u32) -> i64 {
    i64::from(n)
}

/// Decodes a claimed row (subscription columns plus `c_` customer columns).
pub fn parse_claimed<'r, R: sqlx::Row>(row: &'r R) -> Result<(Subscription, Customer), StoreError>
where
    SubscriptionRecord: sqlx::FromRow<'r, R>,
    ClaimedCustomerRecord: sqlx::FromRow<'r, R>,
{
    let sub = <SubscriptionRecord as sqlx::FromRow<'r, R>>::from_row(row)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .into_subscription()?;
    let customer = <ClaimedCustomerRecord as sqlx::FromRow<'r, R>>::from_row(row)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .into_customer()?;
    Ok((sub, customer))
}

/// Maps a unique violation on insert to a message naming the duplicate.
pub fn conflict_as(message: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(message()),
        other => other,
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    pub fn into_api_key(self) -> Result<crate::core::model::ApiKey, StoreError> {
        Ok(crate::core::model::ApiKey {
            id: self.id,
            scope: self
                .scope
                .parse()
                .map_err(|e| corrupt("api key", self.id, e))?,
            name: self.name,
            key_prefix: self.key_prefix,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PaymentRecord {
    pub id: i64,
    pub order_id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub provider: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub attempt: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub provider_payment_ref: Option<String>,
    pub decline_code: Option<String>,
    pub last_error: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fee_minor: Option<i64>,
    pub refunded_minor: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    pub payment_customer_ref: Option<String>,
    pub payment_method_ref: Option<String>,
}

impl PaymentRecord {
    /// The payment, and its customer's provider references.
    pub fn into_payment(self) -> Result<(Payment, PaymentRefs), StoreError> {
        let id = self.id;
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|e| corrupt("payment", id, e))?;
        let money = |minor: i64| Money::from_minor(minor, currency);
        let payment = Payment {
            id,
            order_id: self.order_id,
            order_number: self.order_number,
            subscription_id: self.subscription_id,
            customer_id: self.customer_id,
            provider: self
                .provider
                .parse()
                .map_err(|e| corrupt("payment", id, e))?,
            status: self.status.parse().map_err(|e| corrupt("payment", id, e))?,
            amount: money(self.amount_minor),
            attempt: count("payment", id, self.attempt)?,
            next_attempt_at: self.next_attempt_at,
            provider_payment_ref: self.provider_payment_ref,
            decline_code: self.decline_code,
            last_error: self.last_error,
            paid_at: self.paid_at,
            fee: self.fee_minor.map(money),
            refunded: money(self.refunded_minor),
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        let refs = PaymentRefs {
            customer_ref: self.payment_customer_ref,
            method_ref: self.payment_method_ref,
        };
        Ok((payment, refs))
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct CreditNoteRecord {
    pub id: i64,
    pub number: String,
    pub order_id: i64,
    pub order_number: String,
    pub currency: String,
    pub amount_minor: i64,
    pub tax_minor: i64,
    pub reason: String,
    pub provider_refund_ref: Option<String>,
    pub actor: String,
    pub billing_date: chrono::NaiveDate,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct CreditNoteLineRecord {
    pub credit_note_id: i64,
    pub kind: String,
    pub label: String,
    pub amount_minor: i64,
}

impl CreditNoteRecord {
    /// The credit note with its lines (`lines` may hold other notes' lines too).
    pub fn into_credit_note(
        self,
        lines: &[CreditNoteLineRecord],
    ) -> Result<CreditNote, StoreError> {
        let id = self.id;
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|e| corrupt("credit note", id, e))?;
        let money = |minor: i64| Money::from_minor(minor, currency);
        Ok(CreditNote {
            id,
            number: self.number,
            order_id: self.order_id,
            order_number: self.order_number,
            amount: money(self.amount_minor),
            tax: money(self.tax_minor),
            reason: self.reason,
            provider_refund_ref: self.provider_refund_ref,
            actor: self.actor,
            billing_date: self.billing_date,
            created_at: self.created_at,
            lines: lines
                .iter()
                .filter(|l| l.credit_note_id == id)
                .map(|l| OrderLine {
                    kind: l.kind.clone(),
                    label: l.label.clone(),
                    amount: money(l.amount_minor),
                })
                .collect(),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct FulfillmentRecord {
    pub order_id: i64,
    pub order_number: String,
    pub status: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl FulfillmentRecord {
    pub fn into_fulfillment(self) -> Result<crate::core::fulfillment::Fulfillment, StoreError> {
        use crate::core::fulfillment::{Outcome, Shipment};
        let outcome = match (
            self.status.as_str(),
            self.carrier,
            self.tracking_number,
            self.shipped_at,
            self.reason,
        ) {
            ("fulfilled", Some(carrier), Some(tracking_number), Some(shipped_at), _) => {
                Outcome::Fulfilled(Shipment {
                    carrier,
                    tracking_number,
                    tracking_url: self.tracking_url,
                    shipped_at,
                })
            }
            ("cancelled", _, _, _, Some(reason)) => Outcome::Cancelled { reason },
            (status, ..) => {
                return Err(corrupt(
                    "fulfillment of order",
                    self.order_id,
                    format!("status \"{status}\" without its fields"),
                ));
            }
        };
        Ok(crate::core::fulfillment::Fulfillment {
            order_id: self.order_id,
            order_number: self.order_number,
            outcome,
            actor: self.actor,
            created_at: self.created_at,
        })
    }
}
