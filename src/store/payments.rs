//! Payments in the store: each order's payment (written with the order by `write_changes`),
//! claimed by the payment worker under a lease, its outcomes recorded in one transaction with
//! their attempt row, the subscription's events and emails and its renewal hold; the
//! provider's webhook events (each applied once); the customer's provider references; and
//! refunds as credit notes. The store decides nothing: callers pass [`PaymentDecider`]
//! (`dunning::decide`) and [`CreditNoteRecorder`] (`dunning::refunded`). The SQL is written
//! once in [`payments_sql!`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;
use crate::core::dunning::PaymentChange;
use crate::core::model::{
    Change, CreditNote, Customer, Payment, PaymentRefs, PaymentStatus, ProviderKind, Subscription,
};
use crate::core::money::Money;

/// A payment the worker holds: the payment, the customer's provider references, and whether
/// an earlier holder handed this attempt to the provider without recording what came of it.
#[derive(Debug, Clone)]
pub struct ClaimedPayment {
    pub payment: Payment,
    pub refs: PaymentRefs,
    /// When an earlier claim sent this attempt (its outcome unknown): ask the provider first.
    pub in_doubt_since: Option<DateTime<Utc>>,
    /// The lease this claim holds; only it may record the outcome.
    pub lease_until: DateTime<Utc>,
}

/// Turns a locked payment, its subscription and customer into what an outcome changes;
/// `None` changes nothing.
pub type PaymentDecider<'a> =
    dyn Fn(&Payment, &Subscription, &Customer) -> Option<PaymentChange> + Send + Sync + 'a;

/// Turns a credit note just written and its locked subscription into what it records there
/// (its event and webhook messages: `Outcomes::refunded`).
pub type CreditNoteRecorder<'a> = dyn Fn(&CreditNote, &Subscription) -> Change + Send + Sync + 'a;

/// What recording an outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Written,
    /// The payment already stood there (the lease is given back).
    Unchanged,
    /// The lease expired and another worker holds the payment: its outcome stands.
    LeaseLost,
    /// No payment has that provider reference (a webhook about a charge subsave did not make).
    UnknownPayment,
    /// The webhook event was applied before.
    AlreadySeen,
}

/// Which payments a list returns, by id.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentStatus>,
    pub subscription_id: Option<i64>,
    pub limit: u32,
    pub after_id: Option<i64>,
    /// May be read from the replica (`database.read_url`): a list page, not a decision.
    pub lag_ok: bool,
}

/// A credit note about to be written.
#[derive(Debug, Clone)]
pub struct NewCreditNote {
    pub payment_id: i64,
    pub order_id: i64,
    pub amount: Money,
    pub tax: Money,
    pub reason: String,
    pub provider_refund_ref: Option<String>,
    pub actor: String,
    pub billing_date: NaiveDate,
    /// What the payment had refunded when the refund was asked for: the note is written only
    /// if it still has (two refunds at once cannot both pass the amount paid).
    pub refunded_before: Money,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Payments the worker would claim at `now` (pending, or declined with a retry due, of
    /// active subscriptions), and the earliest instant one of them became due.
    async fn payment_backlog(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;

    /// Leases up to `limit` payments due at `now` (pending or declined with a retry due) of
    /// active subscriptions, until `lease_until`, oldest first; marks their attempt as sent.
    /// With `customer_id`, only that customer's (a card just saved is tried at once).
    async fn claim_payments(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        customer_id: Option<i64>,
    ) -> Result<Vec<ClaimedPayment>, StoreError>;

    /// Records an outcome of a claimed payment, if its lease is still `lease_until`.
    async fn record_payment(
        &self,
        payment_id: i64,
        lease_until: DateTime<Utc>,
        decide: &PaymentDecider<'_>,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError>;

    /// The provider could not be reached: the same attempt is tried again at `retry_at` (with
    /// the same idempotency key), the lease given back.
    async fn postpone_payment(
        &self,
        payment_id: i64,
        lease_until: DateTime<Utc>,
        retry_at: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives back claims that will not be finished (a worker stopping past its grace period):
    /// each `(payment id, lease)` still under that lease is released; the attempt stays marked
    /// sent, so the next claim asks the provider first. Returns how many.
    async fn release_payments(&self, leases: &[(i64, DateTime<Utc>)]) -> Result<u64, StoreError>;

    /// Applies a provider's webhook event about the payment with `payment_ref`, once per
    /// event id, in one transaction with the event's record.
    #[allow(clippy::too_many_arguments)]
    async fn apply_provider_event(
        &self,
        provider: ProviderKind,
        event_id: &str,
        kind: &str,
        payment_ref: &str,
        decide: &PaymentDecider<'_>,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError>;

    /// Sets a customer's provider references; their declined or waiting payments of active
    /// subscriptions are tried again at once. Returns how many.
    /// Sets the customer's payment method and retries at once their active subscriptions'
    /// payments that a card could fix: a retry due later, one waiting for authentication, and
    /// one given up whose attempt is below `last_attempt`. Returns how many.
    async fn set_payment_refs(
        &self,
        customer_id: i64,
        refs: &PaymentRefs,
        last_attempt: u32,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Retries at once subscription `subscription_id`'s given-up payments (failed, no retry
    /// due, attempt below `last_attempt`), holding its renewals on the order when `hold`, in
    /// one transaction: what a resume does. Returns how many.
    async fn retry_given_up(
        &self,
        subscription_id: i64,
        last_attempt: u32,
        hold: bool,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    async fn payment_refs(&self, customer_id: i64) -> Result<Option<PaymentRefs>, StoreError>;

    /// Records `customer_ref` as customer `customer_id`'s customer at the provider unless one
    /// is on file already (two pages may make one at once), leaving the card and the payments
    /// alone; returns the one on file after. `NotFound` for no such customer.
    async fn adopt_payment_customer(
        &self,
        customer_id: i64,
        customer_ref: &str,
    ) -> Result<String, StoreError>;

    async fn payment_of_order(&self, order_id: i64) -> Result<Option<Payment>, StoreError>;

    async fn payments(&self, filter: &PaymentFilter) -> Result<Vec<Payment>, StoreError>;

    async fn credit_notes(&self, order_id: i64) -> Result<Vec<CreditNote>, StoreError>;
}

/// The payments' changes made for a use case, in a write transaction ([`super::WriteTx`]).
#[async_trait]
pub trait PaymentWrites: Send {
    /// Writes a credit note with its lines, adds it to the payment's refunded amount and
    /// writes what `record` makes of it for its locked subscription (its event and webhook
    /// messages, through `write_changes`); a `Conflict` if the payment was refunded meanwhile.
    async fn record_credit_note(
        &mut self,
        new: &NewCreditNote,
        record: &CreditNoteRecorder<'_>,
        now: DateTime<Utc>,
    ) -> Result<CreditNote, StoreError>;
}

/// A payment with its order number and the customer's references (`p`, `o`, `c`).
pub(in crate::store) const PAYMENT_SELECT: &str = "SELECT p.id, p.order_id, o.order_number, \
     p.subscription_id, p.customer_id, p.provider, p.status, p.amount_minor, p.currency, p.attempt, \
     p.next_attempt_at, p.provider_payment_ref, p.decline_code, p.last_error, p.paid_at, \
     p.fee_minor, p.refunded_minor, p.created_at, p.updated_at, p.sent_at, p.lease_until, \
     c.payment_customer_ref, c.payment_method_ref \
     FROM payments p JOIN orders o ON o.id = p.order_id JOIN customers c ON c.id = p.customer_id";

pub(in crate::store) const CREDIT_NOTE_SELECT: &str = "SELECT n.id, n.number, n.order_id, \
     o.order_number, n.currency, n.amount_minor, n.tax_minor, n.reason, n.provider_refund_ref, \
     n.actor, n.billing_date, n.created_at FROM credit_notes n JOIN orders o ON o.id = n.order_id";

macro_rules! payments_sql {
    ($store:ident, $db:ty) => {
        /// The payment `condition` picks (`$1`), locked for this transaction.
        async fn locked_payment(
            tx: &mut Transaction<'static, $db>,
            condition: &str,
            key: impl sqlx::Encode<'static, $db> + sqlx::Type<$db> + Send + 'static,
        ) -> Result<Option<PaymentRecord>, StoreError> {
            let sql = format!(
                "{} WHERE {condition}{PAYMENT_LOCK}",
                super::payments::PAYMENT_SELECT
            );
            Ok(sqlx::query_as(AssertSqlSafe(sql))
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?)
        }

        /// Decides and writes one outcome for a locked payment: the payment's new state, its
        /// attempt row, the subscription's change and its renewal hold.
        async fn write_payment_outcome(
            tx: &mut Transaction<'static, $db>,
            record: PaymentRecord,
            decide: &super::payments::PaymentDecider<'_>,
            now: DateTime<Utc>,
        ) -> Result<super::payments::Recorded, StoreError> {
            let (payment, _) = record.into_payment()?;
            let sql = format!(
                "{}{SUBSCRIPTION_LOCK}",
                super::subscriptions::with_customers("WHERE s.id = $1")
            );
            let row: <$db as sqlx::Database>::Row = sqlx::query(AssertSqlSafe(sql))
                .bind(payment.subscription_id)
                .fetch_one(&mut **tx)
                .await?;
            let (sub, customer) = parse_claimed(&row)?;
            let Some(outcome) = decide(&payment, &sub, &customer) else {
                sqlx::query(
                    "UPDATE payments SET lease_until = NULL, sent_at = NULL WHERE id = $1",
                )
                .bind(payment.id)
                .execute(&mut **tx)
                .await?;
                return Ok(super::payments::Recorded::Unchanged);
            };
            let u = &outcome.update;
            sqlx::query(
                "UPDATE payments SET status = $2, attempt = $3, next_attempt_at = $4, \
                 provider_payment_ref = $5, decline_code = $6, last_error = $7, \
                 paid_at = COALESCE($8, paid_at), fee_minor = COALESCE($9, fee_minor), \
                 lease_until = NULL, sent_at = NULL, updated_at = $10 WHERE id = $1",
            )
            .bind(payment.id)
            .bind(u.status.as_str())
            .bind(big(u.attempt))
            .bind(u.next_attempt_at)
            .bind(u.provider_payment_ref.as_deref())
            .bind(u.decline_code.as_deref())
            .bind(u.last_error.as_deref())
            .bind(u.paid_at)
            .bind(u.fee_minor)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            let a = &outcome.attempt;
            sqlx::query(
                "INSERT INTO payment_attempts (payment_id, attempt, idempotency_key, outcome, \
                 provider_payment_ref, decline_code, message, source, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(payment.id)
            .bind(big(a.attempt))
            .bind(&a.idempotency_key)
            .bind(a.outcome)
            .bind(a.provider_payment_ref.as_deref())
            .bind(a.decline_code.as_deref())
            .bind(a.message.as_deref())
            .bind(&a.source)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            write_changes(tx, std::slice::from_ref(&outcome.change), now).await?;
            let hold = match outcome.hold {
                crate::core::dunning::Hold::Keep => None,
                crate::core::dunning::Hold::Set => Some(
                    "UPDATE subscriptions SET unpaid_order_id = $2 WHERE id = $1",
                ),
                crate::core::dunning::Hold::Clear => Some(
                    "UPDATE subscriptions SET unpaid_order_id = NULL WHERE id = $1 AND unpaid_order_id = $2",
                ),
            };
            if let Some(sql) = hold {
                sqlx::query(sql)
                    .bind(payment.subscription_id)
                    .bind(payment.order_id)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(super::payments::Recorded::Written)
        }

        #[async_trait::async_trait]
        impl super::PaymentWrites for SqlWrite {
            async fn record_credit_note(
                &mut self,
                new: &super::NewCreditNote,
                record: &super::payments::CreditNoteRecorder<'_>,
                now: DateTime<Utc>,
            ) -> Result<CreditNote, StoreError> {
                let tx = &mut self.tx;
                let updated = sqlx::query(
                    "UPDATE payments SET refunded_minor = refunded_minor + $2, \
                     status = CASE WHEN refunded_minor + $2 = amount_minor THEN 'refunded' ELSE 'partially_refunded' END, \
                     updated_at = $4 \
                     WHERE id = $1 AND refunded_minor = $3 AND refunded_minor + $2 <= amount_minor \
                     AND status IN ('external', 'paid', 'partially_refunded')",
                )
                .bind(new.payment_id)
                .bind(new.amount.minor())
                .bind(new.refunded_before.minor())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!(
                        "the payment of order {} changed while the refund was made (another refund?); see `subsave orders show` and try again",
                        new.order_id
                    )));
                }
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM credit_notes WHERE order_id = $1")
                        .bind(new.order_id)
                        .fetch_one(&mut **tx)
                        .await?;
                let (order_number, subscription_id): (String, i64) = sqlx::query_as(
                    "SELECT order_number, subscription_id FROM orders WHERE id = $1",
                )
                .bind(new.order_id)
                .fetch_one(&mut **tx)
                .await?;
                let number = format!("CN-{order_number}-{}", count + 1);
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO credit_notes (number, order_id, payment_id, currency, amount_minor, \
                     tax_minor, reason, provider_refund_ref, actor, billing_date, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(&number)
                .bind(new.order_id)
                .bind(new.payment_id)
                .bind(new.amount.currency().code())
                .bind(new.amount.minor())
                .bind(new.tax.minor())
                .bind(&new.reason)
                .bind(new.provider_refund_ref.as_deref())
                .bind(&new.actor)
                .bind(new.billing_date)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?;
                let net = new.amount.minor() - new.tax.minor();
                let note = CreditNote {
                    id,
                    number: number.clone(),
                    order_id: new.order_id,
                    order_number: order_number.clone(),
                    amount: new.amount,
                    tax: new.tax,
                    reason: new.reason.clone(),
                    provider_refund_ref: new.provider_refund_ref.clone(),
                    actor: new.actor.clone(),
                    billing_date: new.billing_date,
                    created_at: now,
                    lines: vec![
                        OrderLine {
                            kind: "refund".into(),
                            label: "Refund".into(),
                            amount: Money::from_minor(net, new.amount.currency()),
                        },
                        OrderLine {
                            kind: "tax".into(),
                            label: "Tax refunded".into(),
                            amount: new.tax,
                        },
                    ],
                };
                for (position, line) in note.lines.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO credit_note_lines (credit_note_id, position, kind, label, amount_minor) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(position as i64)
                    .bind(&line.kind)
                    .bind(&line.label)
                    .bind(line.amount.minor())
                    .execute(&mut **tx)
                    .await?;
                }
                let (sub, _) = lock_with_customer(tx, subscription_id).await?;
                write_changes(tx, std::slice::from_ref(&record(&note, &sub)), now).await?;
                Ok(note)
            }
        }

        #[async_trait::async_trait]
        impl super::PaymentStore for $store {
            async fn payment_backlog(
                &self,
                now: DateTime<Utc>,
            ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
                Ok(sqlx::query_as(
                    "SELECT COUNT(*), MIN(p.next_attempt_at) FROM payments p \
                     JOIN subscriptions s ON s.id = p.subscription_id \
                     WHERE p.next_attempt_at <= $1 AND p.status IN ('pending', 'failed') \
                     AND s.status = 'active'",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn claim_payments(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
                customer_id: Option<i64>,
            ) -> Result<Vec<super::ClaimedPayment>, StoreError> {
                let mut tx = begin_write(self).await?;
                // The worker's claim keeps its plan: the customer's condition only when asked.
                let of_customer = if customer_id.is_some() {
                    " AND p.customer_id = $3"
                } else {
                    ""
                };
                let sql = format!(
                    "{} JOIN subscriptions s ON s.id = p.subscription_id \
                     WHERE p.next_attempt_at <= $1 AND p.status IN ('pending', 'failed') \
                     AND (p.lease_until IS NULL OR p.lease_until <= $1) AND s.status = 'active'{of_customer} \
                     ORDER BY p.next_attempt_at, p.id LIMIT $2{PAYMENT_CLAIM_LOCK}",
                    super::payments::PAYMENT_SELECT
                );
                let mut query = sqlx::query_as(AssertSqlSafe(sql)).bind(now).bind(big(limit));
                if let Some(customer_id) = customer_id {
                    query = query.bind(customer_id);
                }
                let records: Vec<PaymentRecord> = query.fetch_all(&mut *tx).await?;
                let claimed = records
                    .into_iter()
                    .map(|record| {
                        let in_doubt_since = record.sent_at;
                        let (payment, refs) = record.into_payment()?;
                        Ok(super::ClaimedPayment {
                            payment,
                            refs,
                            in_doubt_since,
                            lease_until,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                if claimed.is_empty() {
                    return Ok(claimed);
                }
                // One statement leases the batch and marks its attempts sent (a mark already
                // there stays: that attempt is in doubt).
                let mut lease = QueryBuilder::<$db>::new("UPDATE payments SET lease_until = ");
                lease
                    .push_bind(lease_until)
                    .push(", sent_at = COALESCE(sent_at, ")
                    .push_bind(now)
                    .push(") WHERE id IN (");
                let mut ids = lease.separated(", ");
                for c in &claimed {
                    ids.push_bind(c.payment.id);
                }
                lease.push(")");
                lease.build().execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(claimed)
            }

            async fn record_payment(
                &self,
                payment_id: i64,
                lease_until: DateTime<Utc>,
                decide: &super::payments::PaymentDecider<'_>,
                now: DateTime<Utc>,
            ) -> Result<super::payments::Recorded, StoreError> {
                let mut tx = begin_write(self).await?;
                let Some(record) = locked_payment(&mut tx, "p.id = $1", payment_id).await? else {
                    return Err(StoreError::NotFound(format!("no payment {payment_id}")));
                };
                if record.lease_until != Some(lease_until) {
                    return Ok(super::payments::Recorded::LeaseLost);
                }
                let recorded = write_payment_outcome(&mut tx, record, decide, now).await?;
                tx.commit().await?;
                Ok(recorded)
            }

            async fn postpone_payment(
                &self,
                payment_id: i64,
                lease_until: DateTime<Utc>,
                retry_at: DateTime<Utc>,
                error: &str,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = begin_write(self).await?;
                let done = sqlx::query(
                    "UPDATE payments SET next_attempt_at = $3, last_error = $4, lease_until = NULL, \
                     updated_at = $5 WHERE id = $1 AND lease_until = $2",
                )
                .bind(payment_id)
                .bind(lease_until)
                .bind(retry_at)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_payments(
                &self,
                leases: &[(i64, DateTime<Utc>)],
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(self).await?;
                let mut released = 0;
                for (id, lease_until) in leases {
                    released += sqlx::query(
                        "UPDATE payments SET lease_until = NULL WHERE id = $1 AND lease_until = $2",
                    )
                    .bind(id)
                    .bind(lease_until)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(released)
            }

            async fn apply_provider_event(
                &self,
                provider: ProviderKind,
                event_id: &str,
                kind: &str,
                payment_ref: &str,
                decide: &super::payments::PaymentDecider<'_>,
                now: DateTime<Utc>,
            ) -> Result<super::payments::Recorded, StoreError> {
                let mut tx = begin_write(self).await?;
                let seen = sqlx::query(
                    "INSERT INTO provider_events (provider, event_id, kind, received_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(provider.as_str())
                .bind(event_id)
                .bind(kind)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if seen.rows_affected() == 0 {
                    return Ok(super::payments::Recorded::AlreadySeen);
                }
                let record =
                    locked_payment(&mut tx, "p.provider_payment_ref = $1", payment_ref.to_owned())
                        .await?;
                let recorded = match record {
                    Some(record) => write_payment_outcome(&mut tx, record, decide, now).await?,
                    None => super::payments::Recorded::UnknownPayment,
                };
                tx.commit().await?;
                Ok(recorded)
            }

            async fn set_payment_refs(
                &self,
                customer_id: i64,
                refs: &PaymentRefs,
                last_attempt: u32,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(self).await?;
                let updated = sqlx::query(
                    "UPDATE customers SET payment_customer_ref = $2, payment_method_ref = $3 WHERE id = $1",
                )
                .bind(customer_id)
                .bind(refs.customer_ref.as_deref())
                .bind(refs.method_ref.as_deref())
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!(
                        "no customer {customer_id}; see `subsave customers list`"
                    )));
                }
                // A new payment method is tried at once: a retry due later comes now, and a
                // payment waiting for authentication or given up gets a new attempt with it.
                let retried = sqlx::query(
                    "UPDATE payments SET \
                     attempt = attempt + CASE WHEN status = 'requires_action' OR next_attempt_at IS NULL THEN 1 ELSE 0 END, \
                     status = 'failed', next_attempt_at = $2, updated_at = $2 \
                     WHERE customer_id = $1 AND lease_until IS NULL \
                     AND ((status = 'failed' AND next_attempt_at IS NOT NULL) OR status = 'requires_action' \
                          OR (status = 'failed' AND next_attempt_at IS NULL AND attempt < $3)) \
                     AND subscription_id IN (SELECT id FROM subscriptions WHERE status = 'active')",
                )
                .bind(customer_id)
                .bind(now)
                .bind(i64::from(last_attempt))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(retried.rows_affected())
            }

            async fn retry_given_up(
                &self,
                subscription_id: i64,
                last_attempt: u32,
                hold: bool,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(self).await?;
                let given_up: Vec<(i64,)> = sqlx::query_as(
                    "UPDATE payments SET attempt = attempt + 1, next_attempt_at = $2, updated_at = $2 \
                     WHERE subscription_id = $1 AND lease_until IS NULL AND status = 'failed' \
                     AND next_attempt_at IS NULL AND attempt < $3 RETURNING order_id",
                )
                .bind(subscription_id)
                .bind(now)
                .bind(i64::from(last_attempt))
                .fetch_all(&mut *tx)
                .await?;
                if hold && let Some((order_id,)) = given_up.first() {
                    sqlx::query("UPDATE subscriptions SET unpaid_order_id = $2 WHERE id = $1")
                        .bind(subscription_id)
                        .bind(order_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(given_up.len() as u64)
            }

            async fn adopt_payment_customer(
                &self,
                customer_id: i64,
                customer_ref: &str,
            ) -> Result<String, StoreError> {
                let mut tx = begin_write(self).await?;
                sqlx::query(
                    "UPDATE customers SET payment_customer_ref = $2 \
                     WHERE id = $1 AND payment_customer_ref IS NULL",
                )
                .bind(customer_id)
                .bind(customer_ref)
                .execute(&mut *tx)
                .await?;
                let on_file: Option<Option<String>> =
                    sqlx::query_scalar("SELECT payment_customer_ref FROM customers WHERE id = $1")
                        .bind(customer_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.commit().await?;
                on_file.flatten().ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "no customer {customer_id}; see `subsave customers list`"
                    ))
                })
            }

            async fn payment_refs(
                &self,
                customer_id: i64,
            ) -> Result<Option<PaymentRefs>, StoreError> {
                let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT payment_customer_ref, payment_method_ref FROM customers WHERE id = $1",
                )
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(customer_ref, method_ref)| PaymentRefs {
                    customer_ref,
                    method_ref,
                }))
            }

            async fn payment_of_order(&self, order_id: i64) -> Result<Option<Payment>, StoreError> {
                let sql = format!("{} WHERE p.order_id = $1", super::payments::PAYMENT_SELECT);
                let record: Option<PaymentRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(order_id)
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(|r| r.into_payment().map(|(p, _)| p)).transpose()
            }

            async fn payments(
                &self,
                filter: &super::PaymentFilter,
            ) -> Result<Vec<Payment>, StoreError> {
                let sql = format!(
                    "{} WHERE ($1 IS NULL OR p.status = $1) AND ($2 IS NULL OR p.subscription_id = $2) \
                     AND ($3 IS NULL OR p.id > $3) ORDER BY p.id LIMIT $4",
                    super::payments::PAYMENT_SELECT
                );
                let records: Vec<PaymentRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(filter.status.map(|s| s.as_str()))
                    .bind(filter.subscription_id)
                    .bind(filter.after_id)
                    .bind(big(filter.limit))
                    .fetch_all(self.reader(filter.lag_ok))
                    .await?;
                records
                    .into_iter()
                    .map(|r| r.into_payment().map(|(p, _)| p))
                    .collect()
            }

            async fn credit_notes(&self, order_id: i64) -> Result<Vec<CreditNote>, StoreError> {
                let sql = format!(
                    "{} WHERE n.order_id = $1 ORDER BY n.id",
                    super::payments::CREDIT_NOTE_SELECT
                );
                let records: Vec<CreditNoteRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(order_id)
                    .fetch_all(&self.pool)
                    .await?;
                let lines: Vec<CreditNoteLineRecord> = sqlx::query_as(
                    "SELECT l.credit_note_id, l.kind, l.label, l.amount_minor FROM credit_note_lines l \
                     JOIN credit_notes n ON n.id = l.credit_note_id WHERE n.order_id = $1 \
                     ORDER BY l.credit_note_id, l.position",
                )
                .bind(order_id)
                .fetch_all(&self.pool)
                .await?;
                records
                    .into_iter()
                    .map(|r| r.into_credit_note(&lines))
                    .collect()
            }
        }
    };
}

pub(crate) use payments_sql;
