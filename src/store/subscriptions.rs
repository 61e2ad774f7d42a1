//! Subscriptions and renewals in the store: create (redeeming a coupon), read, list, one
//! operation on a locked subscription ([`SubscriptionStore::transition`]), and batches of
//! claimed work ([`SubscriptionStore::process_batch`]: due renewals, ended pauses, reminders).
//!
//! A state change is one transaction: the subscription's new state with its orders, order
//! lines, events and outbox messages (`write_changes`). Due work is claimed with `FOR UPDATE
//! SKIP LOCKED` on PostgreSQL and under SQLite's single writer. The store decides nothing
//! about billing: callers pass pure functions (`lifecycle`, `renewal`) that turn the locked
//! state into a [`Change`]. The SQL is written once in [`subscriptions_sql!`].

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::lifecycle::LifecycleError;
use crate::core::metadata::{ExternalId, MetadataUpdate};
use crate::core::model::{
    Actor, Change, Consent, Customer, Event, NewSubscription, Status, Subscription,
};

/// The subscriptions' changes made for one use case, in a write transaction
/// ([`super::WriteTx`]).
#[async_trait]
pub trait SubscriptionWrites: Send {
    /// Creates a subscription with the welcome change `welcome` makes of it (its `created`
    /// event, email and any webhooks), redeeming `new.coupon_code` (checked and counted against
    /// its limit).
    async fn create_subscription(
        &mut self,
        new: &NewSubscription,
        welcome: &Welcome<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Subscription, StoreError>;

    /// Changes subscription `id`'s external id and merges its metadata (the row locked);
    /// `NotFound` for no such subscription, `Conflict` for an external id another has, refused
    /// when the metadata would be out of bounds. No event: subsave's rules never read them.
    async fn update_subscription_metadata(
        &mut self,
        id: i64,
        update: &MetadataUpdate,
        now: DateTime<Utc>,
    ) -> Result<Subscription, StoreError>;

    /// Locks one subscription, applies `transition` and writes the change.
    async fn transition(
        &mut self,
        id: i64,
        transition: &Transition<'_>,
    ) -> Result<Subscription, StoreError>;
}

/// Which rows a batch claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Active, not held, next renewal at or before `now`.
    DueRenewals,
    /// Paused with a `paused_until` at or before `now`.
    EndedPauses,
    /// Active, not held, next renewal at or before the given horizon, and no reminder yet
    /// for (its next cycle, this lead time); after the `(next_renewal_at, id)` cursor, which a
    /// sweep advances batch by batch: reminded rows keep their place in the due index, and
    /// without the cursor every batch would scan past all of them again.
    Reminders {
        lead_days: u32,
        after: Option<(DateTime<Utc>, i64)>,
    },
    /// Active, not held, next renewal at or before the given horizon, and that renewal's price
    /// not checked yet (`price_checked_cycle`); after a cursor, as for reminders.
    PriceChecks { after: Option<(DateTime<Utc>, i64)> },
    /// Not cancelled, with an annual notice due at or before `now`.
    AnnualNotices,
}

/// Orders written for one plan, and their totals per currency (never added across
/// currencies).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanTally {
    pub orders: usize,
    /// Currency code to the sum of the orders' totals, in its minor units.
    pub amount_minor: std::collections::BTreeMap<String, i64>,
}

impl PlanTally {
    /// Counts `other`'s orders and amounts in this tally.
    pub fn add(&mut self, other: &PlanTally) {
        self.orders += other.orders;
        for (currency, minor) in &other.amount_minor {
            *self.amount_minor.entry(currency.clone()).or_default() += minor;
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows claimed (locked) in this batch.
    pub claimed: usize,
    /// Changes written.
    pub changed: usize,
    pub orders: usize,
    pub messages: usize,
    /// Subscriptions put on hold because they could not be processed.
    pub held: usize,
    /// Cycles recorded as missed (catch-up).
    pub missed: usize,
    pub by_plan: std::collections::BTreeMap<String, PlanTally>,
    /// The last claimed row's `(next_renewal_at, id)`: where a cursor continues.
    pub last_key: Option<(DateTime<Utc>, i64)>,
}

impl BatchOutcome {
    /// Counters for a batch that claimed `claimed` rows, held `held_unreadable` rows that
    /// did not parse, and wrote `changes`.
    pub(in crate::store) fn of(
        claimed: usize,
        held_unreadable: usize,
        changes: &[Change],
        last_key: Option<(DateTime<Utc>, i64)>,
    ) -> BatchOutcome {
        let mut by_plan = std::collections::BTreeMap::<String, PlanTally>::new();
        for order in changes.iter().flat_map(|c| &c.orders) {
            let tally = by_plan.entry(order.plan.to_string()).or_default();
            tally.orders += 1;
            *tally
                .amount_minor
                .entry(order.total.currency().code().to_owned())
                .or_default() += order.total.minor();
        }
        BatchOutcome {
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
}

/// Which subscriptions a list returns, by id.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    pub status: Option<Status>,
    pub customer_id: Option<i64>,
    pub plan: Option<String>,
    pub external_id: Option<ExternalId>,
    pub created: super::TimeRange,
    pub updated: super::TimeRange,
    pub limit: u32,
    /// Only ids after this one (keyset pages).
    pub after_id: Option<i64>,
    /// May be read from the replica (`database.read_url`): a list page, not a decision.
    pub lag_ok: bool,
}

/// Turns a locked subscription (and its customer) into a change, or refuses.
pub type Transition<'a> =
    dyn Fn(&Subscription, &Customer) -> Result<Change, LifecycleError> + Send + Sync + 'a;

/// Turns a locked subscription, its customer and a locked coupon into the change that
/// redeems the coupon, or refuses.
pub type Redemption<'a> = dyn Fn(&Subscription, &Customer, &crate::core::model::Coupon) -> Result<Change, LifecycleError>
    + Send
    + Sync
    + 'a;

/// The welcome change of a subscription just created, and its customer.
pub type Welcome<'a> = dyn Fn(&Subscription, &Customer) -> Change + Send + Sync + 'a;

/// The `created` event's detail: the coupon redeemed, if any.
pub fn welcome_detail(new: &NewSubscription) -> serde_json::Value {
    serde_json::json!({ "coupon": new.coupon_code })
}

/// Plans the change for one claimed row; `None` leaves the row as it is.
pub type Planner<'a> = dyn Fn(&Subscription, &Customer) -> Option<Change> + Send + Sync + 'a;

#[async_trait]
pub trait SubscriptionStore: super::Writes {
    /// Creates a subscription with its `created` event and welcome message (priced from
    /// `catalog`, no webhooks) in a transaction of its own
    /// ([`SubscriptionWrites::create_subscription`]).
    async fn create_subscription(
        &self,
        new: &NewSubscription,
        catalog: &crate::core::catalog::Catalog,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Subscription, StoreError> {
        let welcome = |sub: &Subscription, customer: &Customer| {
            crate::core::lifecycle::welcome(sub, customer, catalog, actor, welcome_detail(new))
        };
        let mut tx = self.begin_write().await?;
        let sub = tx.create_subscription(new, &welcome, actor, now).await?;
        tx.commit().await?;
        Ok(sub)
    }
    async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError>;
    /// The subscriptions with these ids (those that exist), a few hundred ids per query.
    async fn subscriptions_by_id(&self, ids: &[i64]) -> Result<Vec<Subscription>, StoreError>;

    async fn subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// Changes a subscription's external id and metadata in a transaction of its own
    /// ([`SubscriptionWrites::update_subscription_metadata`]).
    async fn update_subscription_metadata(
        &self,
        id: i64,
        update: &MetadataUpdate,
        now: DateTime<Utc>,
    ) -> Result<Subscription, StoreError> {
        let mut tx = self.begin_write().await?;
        let sub = tx.update_subscription_metadata(id, update, now).await?;
        tx.commit().await?;
        Ok(sub)
    }

    /// One transition in a transaction of its own ([`SubscriptionWrites::transition`]).
    async fn transition(
        &self,
        id: i64,
        transition: &Transition<'_>,
    ) -> Result<Subscription, StoreError> {
        let mut tx = self.begin_write().await?;
        let after = tx.transition(id, transition).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Redeems coupon `code` (upper case) on subscription `id` in one transaction: the coupon
    /// and the subscription locked, `redemption` makes the change of the two (it applies the
    /// coupon's rules: `lifecycle::redeem_coupon`), the redemption is counted against the
    /// coupon's limit and recorded, and the change written with its event and email.
    /// `NotFound` for no such code or subscription.
    async fn redeem_coupon(
        &self,
        id: i64,
        code: &str,
        redemption: &Redemption<'_>,
    ) -> Result<Subscription, StoreError>;

    /// Claims up to `limit` rows of `claim` whose instant is at or before `until` (skipping
    /// rows other workers hold), plans each, and writes all changes in one transaction,
    /// stamped `now`.
    async fn process_batch(
        &self,
        claim: Claim,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
        planner: &Planner<'_>,
    ) -> Result<BatchOutcome, StoreError>;

    /// The rows `process_batch(DueRenewals)` would claim, without locking (for `--dry-run`).
    async fn due_preview(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Subscription, Customer)>, StoreError>;

    /// How many active or paused subscriptions each plan id has, for the start-up catalog
    /// check. Counts, not ids: at a million subscriptions a list of ids cost 17 MB and half a
    /// second on every `tick`.
    async fn plans_in_use(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// The first `limit` active or paused subscriptions on a plan, to name them in an error.
    async fn subscriptions_on_plan(&self, plan: &str, limit: u32) -> Result<Vec<i64>, StoreError>;

    /// A subscription's events, oldest first.
    async fn events(&self, subscription_id: i64) -> Result<Vec<Event>, StoreError>;

    /// The consents recorded for a subscription, oldest first.
    async fn consents(&self, subscription_id: i64) -> Result<Vec<Consent>, StoreError>;

    /// Active, not held subscriptions whose renewal is due at `now`.
    async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, StoreError>;
}

/// Subscription columns joined with the redeemed coupon's terms and the address it ships to
/// (`s`, `cp` and `a`).
pub(in crate::store) const SUBSCRIPTION_SELECT: &str = "SELECT s.id, s.customer_id, s.plan_id, \
     s.quantity, s.interval_count, s.interval_unit, s.anchor_local, s.anchor_cycle, s.time_zone, \
     s.next_cycle, s.next_renewal_at, s.status, s.paused_until, s.orders_count, s.coupon_id, \
     s.coupon_orders_used, s.cancel_reason, s.hold_reason, s.error_count, s.created_at, \
     s.updated_at, s.promised_cycle, s.promised_price_minor, s.promised_total_minor, \
     s.promise_currency, s.last_total_minor, s.last_total_currency, s.price_checked_cycle, \
     s.annual_notice_at, cp.code AS coupon_code, cp.percent_bp AS coupon_percent_bp, cp.amount_minor AS coupon_amount_minor, \
     cp.currency AS coupon_currency, cp.duration AS coupon_duration, \
     cp.duration_orders AS coupon_duration_orders, cp.plan_id AS coupon_plan_id, \
     s.address_id, a.name AS a_name, a.line1 AS a_line1, a.line2 AS a_line2, a.city AS a_city, \
     a.country AS a_country, a.subdivision AS a_subdivision, a.postal_code AS a_postal_code, \
     a.phone AS a_phone, a.is_default AS a_is_default, a.created_at AS a_created_at, \
     s.external_id, s.metadata \
     FROM subscriptions s LEFT JOIN coupons cp ON cp.id = s.coupon_id \
     LEFT JOIN addresses a ON a.id = s.address_id";

/// A claimed subscription with its customer, prefixed `c_`.
const CLAIM_CUSTOMER_COLUMNS: &str = "c.id AS c_id, c.email AS c_email, c.name AS c_name, \
     c.time_zone AS c_time_zone, c.locale AS c_locale, c.tax_region AS c_tax_region, \
     c.external_id AS c_external_id, c.metadata AS c_metadata, c.created_at AS c_created_at, \
     c.updated_at AS c_updated_at";

pub(in crate::store) const SUBSCRIPTION_FILTER: &str = " WHERE ($1 IS NULL OR s.status = $1) \
     AND ($2 IS NULL OR s.customer_id = $2) AND ($3 IS NULL OR s.plan_id = $3) \
     AND ($5 IS NULL OR s.id > $5) AND ($6 IS NULL OR s.external_id = $6) \
     AND ($7 IS NULL OR s.created_at >= $7) AND ($8 IS NULL OR s.created_at < $8) \
     AND ($9 IS NULL OR s.updated_at >= $9) AND ($10 IS NULL OR s.updated_at < $10) \
     ORDER BY s.id LIMIT $4";

pub(in crate::store) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (customer_id, \
     plan_id, quantity, interval_count, interval_unit, anchor_local, anchor_cycle, time_zone, \
     next_cycle, next_renewal_at, status, orders_count, coupon_id, created_at, updated_at, \
     annual_notice_at, address_id, external_id, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12, $13, $13, $14, $15, $16, $17) \
     RETURNING id";

/// One subscription's new state (SQLite writes them one by one; PostgreSQL in one
/// `UPDATE … FROM (VALUES …)`, in `postgres.rs`).
pub(in crate::store) const UPDATE_SUBSCRIPTION: &str = "UPDATE subscriptions SET plan_id = $2, \
     quantity = $3, interval_count = $4, interval_unit = $5, anchor_local = $6, anchor_cycle = $7, \
     next_cycle = $8, next_renewal_at = $9, status = $10, paused_until = $11, orders_count = $12, \
     coupon_orders_used = $13, cancel_reason = $14, hold_reason = $15, error_count = $16, \
     updated_at = $17, promised_cycle = $18, promised_price_minor = $19, \
     promised_total_minor = $20, last_total_minor = $21, price_checked_cycle = $22, \
     annual_notice_at = $23, address_id = $24, promise_currency = $25, \
     last_total_currency = $26 WHERE id = $1";

/// The columns a renewal's rows are written with: each backend's `write_changes` (a `VALUES`
/// list on SQLite, arrays through `UNNEST` on PostgreSQL) names them in this order.
pub(in crate::store) const ORDER_COLUMNS: &str = "order_number, subscription_id, customer_id, \
     cycle, plan_id, packs, quantity, currency, total_minor, tax_included_minor, tax_included_bp, \
     tax_region, coupon_code, scheduled_for, created_at, billing_date, tax_rate_bp, ship_name, \
     ship_line1, ship_line2, ship_city, ship_subdivision, ship_postal_code, ship_country, ship_phone";
pub(in crate::store) const PAYMENT_COLUMNS: &str = "order_id, subscription_id, customer_id, \
     provider, status, amount_minor, currency, next_attempt_at, paid_at, created_at, updated_at";
pub(in crate::store) const LINE_COLUMNS: &str = "order_id, position, kind, label, amount_minor";
pub(in crate::store) const EVENT_COLUMNS: &str = "subscription_id, kind, actor, at, cycle, detail";
pub(in crate::store) const MESSAGE_COLUMNS: &str = "kind, recipient, subscription_id, order_id, \
     cycle, lead_days, payload, status, last_error, next_attempt_at, created_at";

pub(in crate::store) const SELECT_EVENTS: &str = "SELECT id, subscription_id, kind, actor, at, \
     cycle, detail FROM subscription_events WHERE subscription_id = $1 ORDER BY id";

/// Claims rows of `claim` at `$1`, at most `$2`, oldest first, with their customers.
pub(in crate::store) fn claim_sql(claim: Claim) -> String {
    let reminder_condition;
    let (condition, order) = match claim {
        Claim::DueRenewals => (
            "s.status = 'active' AND s.hold_reason IS NULL AND s.next_renewal_at <= $1 \
             AND s.unpaid_order_id IS NULL",
            "s.next_renewal_at, s.id",
        ),
        Claim::EndedPauses => (
            "s.status = 'paused' AND s.paused_until IS NOT NULL AND s.paused_until <= $1",
            "s.paused_until",
        ),
        Claim::PriceChecks { after } => {
            let cursor = if after.is_some() {
                " AND (s.next_renewal_at, s.id) > ($3, $4)"
            } else {
                ""
            };
            reminder_condition = format!(
                "s.status = 'active' AND s.hold_reason IS NULL AND s.unpaid_order_id IS NULL \
                 AND s.next_renewal_at <= $1{cursor} \
                 AND (s.price_checked_cycle IS NULL OR s.price_checked_cycle < s.next_cycle)"
            );
            (reminder_condition.as_str(), "s.next_renewal_at, s.id")
        }
        Claim::AnnualNotices => (
            "s.status <> 'cancelled' AND s.annual_notice_at <= $1",
            "s.annual_notice_at, s.id",
        ),
        Claim::Reminders { lead_days, after } => {
            let cursor = if after.is_some() {
                " AND (s.next_renewal_at, s.id) > ($3, $4)"
            } else {
                ""
            };
            reminder_condition = format!(
                "s.status = 'active' AND s.hold_reason IS NULL AND s.unpaid_order_id IS NULL \
                 AND s.next_renewal_at <= $1{cursor} \
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'renewal_reminder' \
                 AND o.subscription_id = s.id AND o.cycle = s.next_cycle AND o.lead_days = {lead_days})"
            );
            (reminder_condition.as_str(), "s.next_renewal_at, s.id")
        }
    };
    with_customers(&format!("WHERE {condition} ORDER BY {order} LIMIT $2"))
}

/// One subscription by id (`$1`): its text built once, not per read (the API's GET reads it
/// per request).
pub(in crate::store) static SUBSCRIPTION_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("{SUBSCRIPTION_SELECT} WHERE s.id = $1"));

/// Subscriptions joined with their customers (the `c_` columns), then `rest` (WHERE …).
pub(in crate::store) fn with_customers(rest: &str) -> String {
    let select = SUBSCRIPTION_SELECT.replacen(
        " FROM subscriptions s",
        &format!(", {CLAIM_CUSTOMER_COLUMNS} FROM subscriptions s"),
        1,
    );
    format!("{select} JOIN customers c ON c.id = s.customer_id {rest}")
}

/// Says that no subscription has that id, and where to look.
pub(in crate::store) fn no_such_subscription(id: i64) -> StoreError {
    StoreError::NotFound(format!("no subscription {id}; see `subsave subs list`"))
}

macro_rules! subscriptions_sql {
    ($store:ident, $db:ty) => {
        /// One subscription, inside a transaction or straight from the pool (one round trip,
        /// for reads that need no transaction).
        async fn load_subscription<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            id: i64,
        ) -> Result<Option<Subscription>, StoreError> {
            let record: Option<SubscriptionRecord> =
                sqlx::query_as(AssertSqlSafe(super::subscriptions::SUBSCRIPTION_BY_ID.as_str()))
                    .bind(id)
                    .fetch_optional(executor)
                    .await?;
            record
                .map(SubscriptionRecord::into_subscription)
                .transpose()
        }

        /// A subscription's customer, inside its transaction.
        async fn customer_of(
            tx: &mut Transaction<'static, $db>,
            id: i64,
        ) -> Result<Customer, StoreError> {
            load_customer(&mut **tx, id).await?.ok_or_else(|| {
                StoreError::NotFound(format!("customer {id} does not exist"))
            })
        }

        /// The coupon with `code`, locked until the transaction ends (its redemptions are
        /// counted against its limit); `NotFound` for no such code.
        async fn lock_coupon(
            tx: &mut Transaction<'static, $db>,
            code: &str,
        ) -> Result<crate::core::model::Coupon, StoreError> {
            let sql = format!(
                "SELECT {} FROM coupons WHERE code = $1{COUPON_LOCK}",
                super::coupons::COUPON_COLUMNS
            );
            let record: Option<CouponRecord> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(code)
                .fetch_optional(&mut **tx)
                .await?;
            record
                .ok_or_else(|| super::coupons::no_such_coupon(code))?
                .into_coupon()
        }

        /// Counts a redemption of `coupon_id` by subscription `id` and records it.
        async fn record_redemption(
            tx: &mut Transaction<'static, $db>,
            coupon_id: i64,
            id: i64,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE coupons SET redemptions = redemptions + 1 WHERE id = $1")
                .bind(coupon_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO coupon_redemptions (coupon_id, subscription_id, redeemed_at) VALUES ($1, $2, $3)")
                .bind(coupon_id)
                .bind(id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Subscription `id`, locked, with its customer: one round trip.
        async fn lock_with_customer(
            tx: &mut Transaction<'static, $db>,
            id: i64,
        ) -> Result<(Subscription, Customer), StoreError> {
            let sql = format!(
                "{}{SUBSCRIPTION_LOCK}",
                super::subscriptions::with_customers("WHERE s.id = $1")
            );
            let row: Option<<$db as sqlx::Database>::Row> = sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            parse_claimed(&row.ok_or_else(|| super::subscriptions::no_such_subscription(id))?)
        }

        /// The consents given with `changes` (a restart's), at `now`; both backends' `write_changes`
        /// end with them.
        async fn insert_consents(
            tx: &mut Transaction<'static, $db>,
            changes: &[Change],
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            for (id, consent) in changes
                .iter()
                .filter_map(|c| c.consent.as_ref().map(|consent| (c.after.id, consent)))
            {
                sqlx::query("INSERT INTO consents (subscription_id, given_at, channel, terms_version, actor) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id)
                    .bind(now)
                    .bind(consent.input.channel.as_str())
                    .bind(consent.input.terms_version.as_str())
                    .bind(consent.actor.0.as_str())
                    .execute(&mut **tx)
                    .await?;
            }

            Ok(())
        }

        #[async_trait::async_trait]
        impl super::SubscriptionWrites for SqlWrite {
            async fn create_subscription(
                &mut self,
                new: &NewSubscription,
                welcome: &super::Welcome<'_>,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<Subscription, StoreError> {
                let tx = &mut self.tx;
                let customer = customer_of(tx, new.customer_id).await?;
                let coupon = match &new.coupon_code {
                    Some(code) => {
                        let coupon = lock_coupon(tx, code).await?;
                        if let Some(why) = coupon.refuse_redemption(&new.plan, new.currency, now) {
                            return Err(StoreError::Refused(
                                crate::core::lifecycle::LifecycleError::InvalidState(why),
                            ));
                        }
                        Some(coupon)
                    }
                    None => None,
                };
                let (id,): (i64,) = sqlx::query_as(super::subscriptions::INSERT_SUBSCRIPTION)
                    .bind(new.customer_id)
                    .bind(new.plan.as_str())
                    .bind(big(new.quantity))
                    .bind(big(new.interval.count()))
                    .bind(interval_unit(new.interval))
                    .bind(new.anchor_local)
                    .bind(big(new.anchor_cycle))
                    .bind(new.time_zone.name())
                    .bind(big(new.next_cycle))
                    .bind(new.next_renewal_at)
                    .bind(big(new.orders_count))
                    .bind(coupon.as_ref().map(|c| c.id))
                    .bind(now)
                    .bind(new.annual_notice_at)
                    .bind(new.address_id)
                    .bind(new.external_id.as_ref().map(|e| e.as_str().to_owned()))
                    .bind(metadata_text(&new.metadata))
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(super::customers::taken(
                        "subscription",
                        new.external_id.as_ref(),
                        StoreError::from,
                    ))?;
                if let Some(consent) = &new.consent {
                    sqlx::query("INSERT INTO consents (subscription_id, given_at, channel, terms_version, actor) VALUES ($1, $2, $3, $4, $5)")
                        .bind(id)
                        .bind(now)
                        .bind(consent.channel.as_str())
                        .bind(consent.terms_version.as_str())
                        .bind(actor.0.as_str())
                        .execute(&mut **tx)
                        .await?;
                }
                if let Some(coupon) = &coupon {
                    record_redemption(tx, coupon.id, id, now).await?;
                }
                let sub = load_subscription(&mut **tx, id)
                    .await?
                    .ok_or_else(|| super::subscriptions::no_such_subscription(id))?;
                let change = welcome(&sub, &customer);
                write_changes(tx, std::slice::from_ref(&change), now).await?;
                Ok(sub)
            }

            async fn update_subscription_metadata(
                &mut self,
                id: i64,
                update: &crate::core::metadata::MetadataUpdate,
                now: DateTime<Utc>,
            ) -> Result<Subscription, StoreError> {
                let tx = &mut self.tx;
                let metadata = locked_metadata(tx, "subscriptions", id, &update.metadata)
                    .await?
                    .ok_or_else(|| super::subscriptions::no_such_subscription(id))?;
                sqlx::query(
                    "UPDATE subscriptions SET external_id = CASE WHEN $2 THEN $3 ELSE external_id END, \
                     metadata = COALESCE($4, metadata), updated_at = $5 WHERE id = $1",
                )
                .bind(id)
                .bind(update.external_id.is_some())
                .bind(update.external_id.clone().flatten().map(|e| e.as_str().to_owned()))
                .bind(metadata.map(|m| metadata_text(&m)))
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(super::customers::taken(
                    "subscription",
                    update.external_id.as_ref().and_then(Option::as_ref),
                    StoreError::from,
                ))?;
                let sub = load_subscription(&mut **tx, id)
                    .await?
                    .ok_or_else(|| super::subscriptions::no_such_subscription(id))?;
                Ok(sub)
            }

            async fn transition(
                &mut self,
                id: i64,
                transition: &Transition<'_>,
            ) -> Result<Subscription, StoreError> {
                let tx = &mut self.tx;
                let (sub, customer) = lock_with_customer(tx, id).await?;
                let change = transition(&sub, &customer)?;
                let after = change.after.clone();
                write_changes(tx, std::slice::from_ref(&change), after.updated_at).await?;
                Ok(after)
            }
        }

        #[async_trait::async_trait]
        impl super::SubscriptionStore for $store {
            async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError> {
                load_subscription(&self.pool, id).await
            }

            async fn subscriptions_by_id(
                &self,
                ids: &[i64],
            ) -> Result<Vec<Subscription>, StoreError> {
                let mut found = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "{} WHERE s.id IN (",
                        super::subscriptions::SUBSCRIPTION_SELECT
                    ));
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    let records: Vec<SubscriptionRecord> = q.build_query_as().fetch_all(&self.pool).await?;
                    for record in records {
                        found.push(record.into_subscription()?);
                    }
                }
                Ok(found)
            }

            async fn subscriptions(
                &self,
                filter: &SubscriptionFilter,
            ) -> Result<Vec<Subscription>, StoreError> {
                let sql = format!(
                    "{}{}",
                    super::subscriptions::SUBSCRIPTION_SELECT,
                    super::subscriptions::SUBSCRIPTION_FILTER
                );
                let records: Vec<SubscriptionRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(filter.status.map(|s| s.as_str()))
                    .bind(filter.customer_id)
                    .bind(filter.plan.as_deref())
                    .bind(big(filter.limit))
                    .bind(filter.after_id)
                    .bind(filter.external_id.as_ref().map(|e| e.as_str().to_owned()))
                    .bind(filter.created.from)
                    .bind(filter.created.before)
                    .bind(filter.updated.from)
                    .bind(filter.updated.before)
                    .fetch_all(self.reader(filter.lag_ok))
                    .await?;
                records
                    .into_iter()
                    .map(SubscriptionRecord::into_subscription)
                    .collect()
            }

            async fn redeem_coupon(
                &self,
                id: i64,
                code: &str,
                redemption: &super::Redemption<'_>,
            ) -> Result<Subscription, StoreError> {
                let mut tx = begin_write(self).await?;
                let coupon = lock_coupon(&mut tx, code).await?;
                let (sub, customer) = lock_with_customer(&mut tx, id).await?;
                let change = redemption(&sub, &customer, &coupon)?;
                let after = change.after.clone();
                let now = after.updated_at;
                record_redemption(&mut tx, coupon.id, id, now).await?;
                sqlx::query("UPDATE subscriptions SET coupon_id = $2, coupon_orders_used = 0 WHERE id = $1")
                    .bind(id)
                    .bind(coupon.id)
                    .execute(&mut *tx)
                    .await?;
                write_changes(&mut tx, std::slice::from_ref(&change), now).await?;
                tx.commit().await?;
                Ok(after)
            }

            async fn process_batch(
                &self,
                claim: Claim,
                until: DateTime<Utc>,
                now: DateTime<Utc>,
                limit: u32,
                planner: &Planner<'_>,
            ) -> Result<BatchOutcome, StoreError> {
                let mut tx = begin_write(self).await?;
                let sql = format!("{}{CLAIM_LOCK}", super::subscriptions::claim_sql(claim));
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(until).bind(big(limit));
                if let Claim::Reminders { after: Some((at, id)), .. }
                | Claim::PriceChecks { after: Some((at, id)) } = claim
                {
                    query = query.bind(at).bind(id);
                }
                let rows: Vec<<$db as sqlx::Database>::Row> = query.fetch_all(&mut *tx).await?;
                let mut held_unreadable = 0;
                let mut last_key = None;
                let mut changes = Vec::with_capacity(rows.len());
                for row in &rows {
                    match parse_claimed(row) {
                        Ok((sub, customer)) => {
                            last_key = sub.next_renewal_at.map(|at| (at, sub.id));
                            if let Some(change) = planner(&sub, &customer) {
                                changes.push(change);
                            }
                        }
                        Err(problem) => {
                            // A row that does not even parse is held by SQL alone, with its error.
                            let id: i64 = sqlx::Row::try_get(row, "id").map_err(StoreError::Database)?;
                            tracing::error!(subscription = id, error = %problem, "holding an unreadable subscription");
                            sqlx::query(
                                "UPDATE subscriptions SET hold_reason = $2, error_count = error_count + 1 WHERE id = $1",
                            )
                            .bind(id)
                            .bind(problem.to_string())
                            .execute(&mut *tx)
                            .await?;
                            held_unreadable += 1;
                        }
                    }
                }
                write_changes(&mut tx, &changes, now).await?;
                tx.commit().await?;
                Ok(BatchOutcome::of(rows.len(), held_unreadable, &changes, last_key))
            }

            async fn due_preview(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<(Subscription, Customer)>, StoreError> {
                let sql = super::subscriptions::claim_sql(Claim::DueRenewals);
                let rows: Vec<<$db as sqlx::Database>::Row> = sqlx::query(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(big(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(parse_claimed).collect()
            }

            async fn plans_in_use(&self) -> Result<Vec<(String, u64)>, StoreError> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT plan_id, COUNT(*) FROM subscriptions WHERE status <> 'cancelled' \
                     GROUP BY plan_id ORDER BY plan_id",
                )
                .fetch_all(&self.pool)
                .await?;
                // COUNT(*) is never negative.
                Ok(rows
                    .into_iter()
                    .map(|(plan, n)| (plan, u64::try_from(n).unwrap_or(0)))
                    .collect())
            }

            async fn subscriptions_on_plan(&self, plan: &str, limit: u32) -> Result<Vec<i64>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM subscriptions WHERE status <> 'cancelled' AND plan_id = $1 \
                     ORDER BY id LIMIT $2",
                )
                .bind(plan)
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn events(&self, subscription_id: i64) -> Result<Vec<Event>, StoreError> {
                let records: Vec<EventRecord> = sqlx::query_as(super::subscriptions::SELECT_EVENTS)
                    .bind(subscription_id)
                    .fetch_all(&self.pool)
                    .await?;
                records.into_iter().map(EventRecord::into_event).collect()
            }

            async fn consents(&self, subscription_id: i64) -> Result<Vec<Consent>, StoreError> {
                let rows: Vec<(i64, DateTime<Utc>, String, String, String)> = sqlx::query_as(
                    "SELECT subscription_id, given_at, channel, terms_version, actor FROM consents \
                     WHERE subscription_id = $1 ORDER BY id",
                )
                .bind(subscription_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(subscription_id, given_at, channel, terms_version, actor)| Consent {
                        subscription_id,
                        given_at,
                        channel,
                        terms_version,
                        actor,
                    })
                    .collect())
            }

            async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM subscriptions WHERE status = 'active' \
                     AND hold_reason IS NULL AND unpaid_order_id IS NULL AND next_renewal_at <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use subscriptions_sql;
