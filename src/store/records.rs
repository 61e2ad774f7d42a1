//! What both backends share: the SQL that reads the same on PostgreSQL and SQLite, the row
//! shapes (`*Record`), and their conversion into domain types. A row that does not parse is
//! reported as [`StoreError::Corrupt`], never unwrapped. Both backends bind `$N` parameters,
//! integers as `BIGINT`/`INTEGER` (i64) and instants as `DateTime<Utc>` (SQLite stores them
//! as RFC 3339 text, whose order is the instants' order since every value is UTC).

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::types::Json;

use super::StoreError;
use crate::catalog::PlanId;
use crate::model::{
    Change, Coupon, CouponDuration, CouponGrant, Customer, Email, Event, Message, Order, OrderLine,
    Promise, Status, Subscription,
};
use crate::money::{BasisPoints, Currency, Money};
use crate::pricing::CouponValue;
use crate::schedule::{Interval, IntervalUnit, parse_time_zone};

pub const CUSTOMER_COLUMNS: &str = "id, email, name, time_zone, locale, tax_region, created_at";

pub const COUPON_COLUMNS: &str = "id, code, percent_bp, amount_minor, currency, duration, \
     duration_orders, plan_id, expires_at, max_redemptions, redemptions, disabled_at, created_at";

/// Subscription columns joined with the redeemed coupon's terms (`s` and `cp`).
pub const SUBSCRIPTION_SELECT: &str = "SELECT s.id, s.customer_id, s.plan_id, s.quantity, \
     s.interval_count, s.interval_unit, s.anchor_local, s.anchor_cycle, s.time_zone, s.next_cycle, \
     s.next_renewal_at, s.status, s.paused_until, s.orders_count, s.coupon_id, s.coupon_orders_used, \
     s.cancel_reason, s.hold_reason, s.error_count, s.created_at, s.updated_at, \
     s.promised_cycle, s.promised_price_minor, \
     cp.code AS coupon_code, cp.percent_bp AS coupon_percent_bp, cp.amount_minor AS coupon_amount_minor, \
     cp.currency AS coupon_currency, cp.duration AS coupon_duration, \
     cp.duration_orders AS coupon_duration_orders, cp.plan_id AS coupon_plan_id \
     FROM subscriptions s LEFT JOIN coupons cp ON cp.id = s.coupon_id";

/// A claimed subscription with its customer, prefixed `c_`.
pub const CLAIM_CUSTOMER_COLUMNS: &str = "c.id AS c_id, c.email AS c_email, c.name AS c_name, \
     c.time_zone AS c_time_zone, c.locale AS c_locale, c.tax_region AS c_tax_region, \
     c.created_at AS c_created_at";

pub const ORDER_COLUMNS: &str = "id, order_number, subscription_id, customer_id, cycle, plan_id, \
     packs, quantity, currency, total_minor, tax_included_minor, tax_region, coupon_code, \
     scheduled_for, created_at";

pub const UPDATE_SUBSCRIPTION: &str = "UPDATE subscriptions SET plan_id = $2, quantity = $3, \
     interval_count = $4, interval_unit = $5, anchor_local = $6, anchor_cycle = $7, next_cycle = $8, \
     next_renewal_at = $9, status = $10, paused_until = $11, orders_count = $12, \
     coupon_orders_used = $13, cancel_reason = $14, hold_reason = $15, error_count = $16, \
     updated_at = $17, promised_cycle = $18, promised_price_minor = $19 WHERE id = $1";

fn corrupt(what: &str, id: i64, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {id}: {problem}"))
}

fn count(what: &str, id: i64, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(what, id, format!("{value} is out of range")))
}

#[derive(Debug, sqlx::FromRow)]
pub struct CustomerRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub time_zone: String,
    pub locale: String,
    pub tax_region: Option<String>,
    pub created_at: DateTime<Utc>,
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
            created_at: self.created_at,
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
    pub c_created_at: DateTime<Utc>,
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
            created_at: self.c_created_at,
        }
        .into_customer()
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
    pub coupon_code: Option<String>,
    pub coupon_percent_bp: Option<i64>,
    pub coupon_amount_minor: Option<i64>,
    pub coupon_currency: Option<String>,
    pub coupon_duration: Option<String>,
    pub coupon_duration_orders: Option<i64>,
    pub coupon_plan_id: Option<String>,
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
        Ok(Subscription {
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
                }),
                _ => None,
            },
            error_count: count("subscription", id, self.error_count)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
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
        Ok(Order {
            id,
            order_number: self.order_number,
            subscription_id: self.subscription_id,
            customer_id: self.customer_id,
            cycle: count("order", id, self.cycle)?,
            plan: self.plan_id,
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
    pub next_attempt_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

pub const MESSAGE_COLUMNS: &str = "id, kind, recipient, subscription_id, order_id, cycle, lead_days, \
     status, attempts, next_attempt_at, lease_until, last_error, payload, created_at, sent_at";

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
            next_attempt_at: self.next_attempt_at,
            lease_until: self.lease_until,
            last_error: self.last_error,
            sent_at: self.sent_at,
            kind: self.kind,
            recipient: self.recipient,
            subscription_id: self.subscription_id,
            order_id: self.order_id,
            status: self.status,
            payload: self.payload.0,
            created_at: self.created_at,
        })
    }
}

/// Converts a count for binding.
pub fn big(n: u32) -> i64 {
    i64::from(n)
}

pub const SUBSCRIPTION_FILTER: &str = " WHERE ($1 IS NULL OR s.status = $1) \
     AND ($2 IS NULL OR s.customer_id = $2) AND ($3 IS NULL OR s.plan_id = $3) ORDER BY s.id LIMIT $4";

pub const ORDER_FILTER: &str = " WHERE ($1 IS NULL OR subscription_id = $1) \
     AND ($2 IS NULL OR customer_id = $2) ORDER BY id LIMIT $3";

pub const MESSAGE_FILTER: &str = " WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR kind = $2) \
     AND ($3 IS NULL OR subscription_id = $3) ORDER BY id LIMIT $4";

pub const INSERT_CUSTOMER: &str = "INSERT INTO customers (email, name, time_zone, locale, tax_region, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, email, name, time_zone, locale, \
     tax_region, created_at";

pub const INSERT_COUPON: &str = "INSERT INTO coupons (code, percent_bp, amount_minor, currency, \
     duration, duration_orders, plan_id, expires_at, max_redemptions, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id, code, percent_bp, amount_minor, \
     currency, duration, duration_orders, plan_id, expires_at, max_redemptions, redemptions, \
     disabled_at, created_at";

pub const DISABLE_COUPON: &str = "UPDATE coupons SET disabled_at = COALESCE(disabled_at, $2) \
     WHERE code = $1 RETURNING id, code, percent_bp, amount_minor, currency, duration, \
     duration_orders, plan_id, expires_at, max_redemptions, redemptions, disabled_at, created_at";

pub const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (customer_id, plan_id, quantity, \
     interval_count, interval_unit, anchor_local, anchor_cycle, time_zone, next_cycle, \
     next_renewal_at, status, orders_count, coupon_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12, $13, $13) RETURNING id";

pub const SELECT_EVENTS: &str = "SELECT id, subscription_id, kind, actor, at, cycle, detail \
     FROM subscription_events WHERE subscription_id = $1 ORDER BY id";

pub const SELECT_ORDER_LINES: &str = "SELECT order_id, kind, label, amount_minor FROM order_lines \
     WHERE order_id IN (SELECT id FROM orders WHERE ($1 IS NULL OR subscription_id = $1) \
     AND ($2 IS NULL OR customer_id = $2) ORDER BY id LIMIT $3) ORDER BY order_id, position";

pub const SELECT_ONE_ORDER_LINES: &str = "SELECT order_id, kind, label, amount_minor FROM order_lines \
     WHERE order_id = $1 ORDER BY position";

/// Claims rows of `claim` at `$1`, at most `$2`, oldest first, with their customers.
pub fn claim_sql(claim: super::Claim) -> String {
    let reminder_condition;
    let (condition, order) = match claim {
        super::Claim::DueRenewals => (
            "s.status = 'active' AND s.hold_reason IS NULL AND s.next_renewal_at <= $1",
            "s.next_renewal_at, s.id",
        ),
        super::Claim::EndedPauses => (
            "s.status = 'paused' AND s.paused_until IS NOT NULL AND s.paused_until <= $1",
            "s.paused_until",
        ),
        super::Claim::Reminders { lead_days, after } => {
            let cursor = if after.is_some() {
                " AND (s.next_renewal_at, s.id) > ($3, $4)"
            } else {
                ""
            };
            reminder_condition = format!(
                "s.status = 'active' AND s.hold_reason IS NULL AND s.next_renewal_at <= $1{cursor} \
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'renewal_reminder' \
                 AND o.subscription_id = s.id AND o.cycle = s.next_cycle AND o.lead_days = {lead_days})"
            );
            (reminder_condition.as_str(), "s.next_renewal_at, s.id")
        }
    };
    with_customers(&format!("WHERE {condition} ORDER BY {order} LIMIT $2"))
}

/// Subscriptions joined with their customers (the `c_` columns), then `rest` (WHERE …).
pub fn with_customers(rest: &str) -> String {
    let select = SUBSCRIPTION_SELECT.replacen(
        " FROM subscriptions s",
        &format!(", {CLAIM_CUSTOMER_COLUMNS} FROM subscriptions s"),
        1,
    );
    format!("{select} JOIN customers c ON c.id = s.customer_id {rest}")
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

/// Counters for one processed batch.
pub fn outcome_of(
    claimed: usize,
    held_unreadable: usize,
    changes: &[Change],
    last_key: Option<(DateTime<Utc>, i64)>,
) -> super::BatchOutcome {
    let mut by_plan = std::collections::BTreeMap::<String, super::PlanTally>::new();
    for order in changes.iter().flat_map(|c| &c.orders) {
        let tally = by_plan.entry(order.plan.to_string()).or_default();
        tally.orders += 1;
        tally.amount_minor += order.total.minor();
    }
    super::BatchOutcome {
        last_key,
        by_plan,
        missed: changes
            .iter()
            .flat_map(|c| &c.events)
            .filter(|e| e.kind == "missed")
            .count(),
        claimed,
        changed: changes.len(),
        orders: changes.iter().map(|c| c.orders.len()).sum(),
        messages: changes.iter().map(|c| c.messages.len()).sum(),
        held: held_unreadable
            + changes
                .iter()
                .filter(|c| c.after.hold_reason.is_some() && c.orders.is_empty())
                .count(),
    }
}
