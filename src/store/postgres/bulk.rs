//! What a batch of changes writes on PostgreSQL: orders, their shipments-to-come, payments and
//! lines, events, outbox messages, and every subscription's new state. Each table is one
//! statement per chunk of [`ROWS_PER_STATEMENT`] rows whose every column is bound as one array
//! and expanded by `UNNEST`: the statement's text and its handful of parameters are the same
//! however many rows it carries. A multi-row `VALUES` list (SQLite's way, `sqlite.rs`) binds 25
//! parameters an order, which the client encodes one by one and the server parses and plans
//! for every statement; with arrays, both sides handle a column at a time (measured in
//! docs/benchmarks.md). Consents, rare, are written by the shared `insert_consents`.
//!
//! The mailer's outcomes are written the same way ([`record_outcomes`]).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use super::super::StoreError;
use super::super::outbox::{OUTCOME_OF_THE_LEASE, OUTCOME_SET};
use super::super::records::{big, interval_unit};
use super::super::subscriptions::{
    EVENT_COLUMNS, LINE_COLUMNS, MESSAGE_COLUMNS, ORDER_COLUMNS, PAYMENT_COLUMNS,
};
use super::{PgStore, ROWS_PER_STATEMENT, begin_write};
use crate::core::address::RawAddress;
use crate::core::model::{Change, Message, NewOrder};
use crate::core::money::Currency;

type Tx = Transaction<'static, Postgres>;

/// Writes `changes` at `now`; the orders are linked back by order number.
pub(super) async fn write_changes(
    tx: &mut Tx,
    changes: &[Change],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let orders: Vec<&NewOrder> = changes.iter().flat_map(|c| &c.orders).collect();
    let mut order_ids: HashMap<String, i64> = HashMap::with_capacity(orders.len());
    for chunk in orders.chunks(ROWS_PER_STATEMENT) {
        let written = insert_orders(tx, chunk, now).await?;
        order_ids.extend(written.into_iter().map(|(id, number)| (number, id)));
        let ids: Vec<i64> = chunk
            .iter()
            .map(|o| order_id(&order_ids, &o.order_number))
            .collect::<Result<_, _>>()?;
        insert_order_rows(tx, chunk, &ids, now).await?;
    }
    let events: Vec<_> = changes.iter().flat_map(|c| &c.events).collect();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO subscription_events ({EVENT_COLUMNS}) \
             SELECT subscription_id, kind, actor, $4, cycle, detail \
             FROM UNNEST($1::int8[], $2::text[], $3::text[], $5::int8[], $6::jsonb[]) \
             AS e(subscription_id, kind, actor, cycle, detail)"
        )))
        .bind(column(chunk, |e| e.subscription_id))
        .bind(column(chunk, |e| e.kind.as_str()))
        .bind(column(chunk, |e| e.actor.0.as_str()))
        .bind(now)
        .bind(column(chunk, |e| e.cycle.map(big)))
        .bind(column(chunk, |e| Json(&e.detail)))
        .execute(&mut **tx)
        .await?;
    }
    let messages: Vec<_> = changes.iter().flat_map(|c| &c.messages).collect();
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let order_of = chunk
            .iter()
            .map(|m| {
                m.order_number
                    .as_deref()
                    .map(|n| order_id(&order_ids, n))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A reminder another engine queued since this batch was claimed already stands (its
        // claim's NOT EXISTS ran on an older snapshot): the unique index keeps the first, and
        // this one is dropped rather than failing the batch.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO outbox ({MESSAGE_COLUMNS}) \
             SELECT kind, recipient, subscription_id, order_id, cycle, lead_days, payload, \
             CASE WHEN last_error IS NULL THEN 'pending' ELSE 'suppressed' END, last_error, \
             COALESCE(next_attempt_at, $10), $10 \
             FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], \
             $7::jsonb[], $8::text[], $9::timestamptz[]) \
             AS m(kind, recipient, subscription_id, order_id, cycle, lead_days, payload, last_error, \
             next_attempt_at) ON CONFLICT DO NOTHING"
        )))
        .bind(column(chunk, |m| m.kind.as_str()))
        .bind(column(chunk, |m| m.recipient.as_str()))
        .bind(column(chunk, |m| m.subscription_id))
        .bind(order_of)
        .bind(column(chunk, |m| m.cycle.map(big)))
        .bind(column(chunk, |m| m.lead_days.map(big)))
        .bind(column(chunk, |m| Json(&m.payload)))
        .bind(column(chunk, |m| m.suppressed.as_deref()))
        .bind(column(chunk, |m| m.deliver_at))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    super::insert_consents(tx, changes, now).await?;
    update_subscriptions(tx, changes).await
}

/// Records the mailer's outcomes (see `OutboxStore::finish_messages`) in one statement of
/// constant text, prepared once per connection: a `VALUES` list of the outcomes that happened
/// to finish together (1 to 250) was a new statement to parse and plan on almost every write
/// (measured in docs/benchmarks.md); its text is built once. In a write transaction, as every
/// write of the store.
pub(super) async fn record_outcomes(
    store: &PgStore,
    finished: &[(Message, super::super::Delivery)],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    static RECORD: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE outbox SET {OUTCOME_SET} \
             FROM UNNEST($1::int8[], $2::timestamptz[], $3::text[], $4::timestamptz[], \
             $5::text[], $6::timestamptz[], $7::int8[]) \
             AS v(id, lease_until, status, next_attempt_at, last_error, sent_at, sends) \
             WHERE {OUTCOME_OF_THE_LEASE}"
        )
    });
    let outcomes: Vec<_> = finished.iter().map(|(m, o)| (m, o.columns())).collect();
    let update = sqlx::query(sqlx::AssertSqlSafe(RECORD.as_str()))
        .bind(column(&outcomes, |(m, _)| m.id))
        .bind(column(&outcomes, |(m, _)| m.lease_until))
        .bind(column(&outcomes, |(_, c)| c.status.as_str()))
        .bind(column(&outcomes, |(_, c)| c.next_attempt_at))
        .bind(column(&outcomes, |(_, c)| c.note))
        .bind(column(&outcomes, |(_, c)| c.sent.then_some(now)))
        .bind(column(&outcomes, |(_, c)| c.sends));
    let mut tx = begin_write(store).await?;
    let recorded = update.execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(recorded)
}

/// The orders of `chunk`, returning each one's id and number.
async fn insert_orders(
    tx: &mut Tx,
    chunk: &[&NewOrder],
    now: DateTime<Utc>,
) -> Result<Vec<(i64, String)>, StoreError> {
    let ship: Vec<Option<RawAddress>> = chunk
        .iter()
        .map(|o| o.ship_to.as_ref().map(crate::core::address::Address::raw))
        .collect();
    let ship_field = |field: fn(&RawAddress) -> Option<&str>| -> Vec<Option<&str>> {
        ship.iter().map(|a| a.as_ref().and_then(field)).collect()
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO orders ({ORDER_COLUMNS}) \
         SELECT order_number, subscription_id, customer_id, cycle, plan_id, packs, quantity, \
         currency, total_minor, tax_included_minor, tax_included_bp, tax_region, coupon_code, \
         scheduled_for, $15, billing_date, tax_rate_bp, ship_name, ship_line1, ship_line2, \
         ship_city, ship_subdivision, ship_postal_code, ship_country, ship_phone \
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::int8[], \
         $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::text[], $13::text[], \
         $14::timestamptz[], $16::date[], $17::int8[], $18::text[], $19::text[], $20::text[], \
         $21::text[], $22::text[], $23::text[], $24::text[], $25::text[]) \
         AS o(order_number, subscription_id, customer_id, cycle, plan_id, packs, quantity, \
         currency, total_minor, tax_included_minor, tax_included_bp, tax_region, coupon_code, \
         scheduled_for, billing_date, tax_rate_bp, ship_name, ship_line1, ship_line2, ship_city, \
         ship_subdivision, ship_postal_code, ship_country, ship_phone) \
         RETURNING id, order_number"
    )))
    .bind(column(chunk, |o| o.order_number.as_str()))
    .bind(column(chunk, |o| o.subscription_id))
    .bind(column(chunk, |o| o.customer_id))
    .bind(column(chunk, |o| big(o.cycle)))
    .bind(column(chunk, |o| o.plan.as_str()))
    .bind(column(chunk, |o| big(o.packs)))
    .bind(column(chunk, |o| big(o.quantity)))
    .bind(column(chunk, |o| o.total.currency().code()))
    .bind(column(chunk, |o| o.total.minor()))
    .bind(column(chunk, |o| o.tax_included.map(|m| m.minor())))
    .bind(column(chunk, |o| {
        o.tax_included_rate.map(|r| i64::from(r.get()))
    }))
    .bind(column(chunk, |o| o.tax_region.as_deref()))
    .bind(column(chunk, |o| o.coupon_code.as_deref()))
    .bind(column(chunk, |o| o.scheduled_for))
    .bind(now)
    .bind(column::<_, NaiveDate>(chunk, |o| o.billing_date))
    .bind(column(chunk, |o| o.tax_rate.map(|r| i64::from(r.get()))))
    .bind(ship_field(|a| Some(&a.name)))
    .bind(ship_field(|a| Some(&a.line1)))
    .bind(ship_field(|a| a.line2.as_deref()))
    .bind(ship_field(|a| Some(&a.city)))
    .bind(ship_field(|a| a.subdivision.as_deref()))
    .bind(ship_field(|a| a.postal_code.as_deref()))
    .bind(ship_field(|a| Some(&a.country)))
    .bind(ship_field(|a| a.phone.as_deref()))
    .fetch_all(&mut **tx)
    .await?)
}

/// What each order of `chunk` (whose ids are `ids`, in order) has beside it: its wait for a
/// shipment, its payment as the core says it starts, and its lines.
async fn insert_order_rows(
    tx: &mut Tx,
    chunk: &[&NewOrder],
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO unfulfilled_orders (order_id, created_at) SELECT UNNEST($1::int8[]), $2",
    )
    .bind(ids)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let first: Vec<_> = chunk.iter().map(|o| o.first_payment(now)).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments ({PAYMENT_COLUMNS}) \
         SELECT order_id, subscription_id, customer_id, provider, status, amount_minor, currency, \
         next_attempt_at, paid_at, $10, $10 \
         FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::int8[], \
         $7::text[], $8::timestamptz[], $9::timestamptz[]) \
         AS p(order_id, subscription_id, customer_id, provider, status, amount_minor, currency, \
         next_attempt_at, paid_at)"
    )))
    .bind(ids)
    .bind(column(chunk, |o| o.subscription_id))
    .bind(column(chunk, |o| o.customer_id))
    .bind(column(chunk, |o| o.collection.as_str()))
    .bind(first.iter().map(|f| f.status.as_str()).collect::<Vec<_>>())
    .bind(column(chunk, |o| o.total.minor()))
    .bind(column(chunk, |o| o.total.currency().code()))
    .bind(first.iter().map(|f| f.next_attempt_at).collect::<Vec<_>>())
    .bind(first.iter().map(|f| f.paid_at).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let lines: Vec<_> = chunk
        .iter()
        .zip(ids)
        .flat_map(|(o, id)| {
            o.lines
                .iter()
                .enumerate()
                .map(move |(position, line)| (*id, position as i64, line))
        })
        .collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO order_lines ({LINE_COLUMNS}) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[])"
    )))
    .bind(column(&lines, |(id, _, _)| *id))
    .bind(column(&lines, |(_, position, _)| *position))
    .bind(column(&lines, |(_, _, line)| line.kind.as_str()))
    .bind(column(&lines, |(_, _, line)| line.label.as_str()))
    .bind(column(&lines, |(_, _, line)| line.amount.minor()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every changed subscription's new state, one statement per chunk.
async fn update_subscriptions(tx: &mut Tx, changes: &[Change]) -> Result<(), StoreError> {
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let subs: Vec<_> = chunk.iter().map(|c| &c.after).collect();
        sqlx::query(
            "UPDATE subscriptions AS s SET plan_id = v.plan_id, quantity = v.quantity, \
             interval_count = v.interval_count, interval_unit = v.interval_unit, \
             anchor_local = v.anchor_local, anchor_cycle = v.anchor_cycle, next_cycle = v.next_cycle, \
             next_renewal_at = v.next_renewal_at, status = v.status, paused_until = v.paused_until, \
             orders_count = v.orders_count, coupon_orders_used = v.coupon_orders_used, \
             cancel_reason = v.cancel_reason, hold_reason = v.hold_reason, \
             error_count = v.error_count, updated_at = v.updated_at, \
             promised_cycle = v.promised_cycle, promised_price_minor = v.promised_price_minor, \
             promised_total_minor = v.promised_total_minor, last_total_minor = v.last_total_minor, \
             price_checked_cycle = v.price_checked_cycle, annual_notice_at = v.annual_notice_at, \
             address_id = v.address_id, promise_currency = v.promise_currency, \
             last_total_currency = v.last_total_currency \
             FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int8[], $5::text[], \
             $6::timestamp[], $7::int8[], $8::int8[], $9::timestamptz[], $10::text[], \
             $11::timestamptz[], $12::int8[], $13::int8[], $14::text[], $15::text[], $16::int8[], \
             $17::timestamptz[], $18::int8[], $19::int8[], $20::int8[], $21::int8[], $22::int8[], \
             $23::timestamptz[], $24::int8[], $25::text[], $26::text[]) \
             AS v(id, plan_id, quantity, interval_count, interval_unit, anchor_local, anchor_cycle, \
             next_cycle, next_renewal_at, status, paused_until, orders_count, coupon_orders_used, \
             cancel_reason, hold_reason, error_count, updated_at, promised_cycle, \
             promised_price_minor, promised_total_minor, last_total_minor, price_checked_cycle, \
             annual_notice_at, address_id, promise_currency, last_total_currency) \
             WHERE s.id = v.id",
        )
        .bind(column(&subs, |s| s.id))
        .bind(column(&subs, |s| s.plan.as_str()))
        .bind(column(&subs, |s| big(s.quantity)))
        .bind(column(&subs, |s| big(s.interval.count())))
        .bind(column(&subs, |s| interval_unit(s.interval)))
        .bind(column::<_, NaiveDateTime>(&subs, |s| s.anchor_local))
        .bind(column(&subs, |s| big(s.anchor_cycle)))
        .bind(column(&subs, |s| big(s.next_cycle)))
        .bind(column(&subs, |s| s.next_renewal_at))
        .bind(column(&subs, |s| s.status.as_str()))
        .bind(column(&subs, |s| s.paused_until))
        .bind(column(&subs, |s| big(s.orders_count)))
        .bind(column(&subs, |s| {
            big(s.coupon.as_ref().map_or(0, |g| g.orders_used))
        }))
        .bind(column(&subs, |s| s.cancel_reason.as_deref()))
        .bind(column(&subs, |s| s.hold_reason.as_deref()))
        .bind(column(&subs, |s| big(s.error_count)))
        .bind(column(&subs, |s| s.updated_at))
        .bind(column(&subs, |s| s.promise.map(|p| big(p.cycle))))
        .bind(column(&subs, |s| s.promise.map(|p| p.unit_price_minor)))
        .bind(column(&subs, |s| s.promise.and_then(|p| p.total_minor)))
        .bind(column(&subs, |s| s.notices.last_total_minor))
        .bind(column(&subs, |s| s.notices.price_checked_cycle.map(big)))
        .bind(column(&subs, |s| s.notices.annual_notice_at))
        .bind(column(&subs, |s| s.ship_to.as_ref().map(|a| a.id)))
        .bind(column(&subs, |s| {
            s.promise.and_then(|p| p.currency).map(Currency::code)
        }))
        .bind(column(&subs, |s| {
            s.notices.last_total_currency.map(Currency::code)
        }))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One column of `rows`, to bind as an array.
fn column<'r, R, T>(rows: &'r [R], value: impl Fn(&'r R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// The id the database gave the order numbered `number` in this batch.
fn order_id(ids: &HashMap<String, i64>, number: &str) -> Result<i64, StoreError> {
    ids.get(number).copied().ok_or_else(|| {
        StoreError::Corrupt(format!(
            "order {number} was written but its id did not come back"
        ))
    })
}
