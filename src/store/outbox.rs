//! The outbox in the store: messages written by the change that caused them
//! (`write_changes` in `subscriptions.rs`), read here, leased by mailers (`SKIP LOCKED`, a
//! lease that expires so a crashed mailer's messages go to another), finished only under the
//! lease they were sent under, given back on shutdown, and put back in the queue by an
//! operator. The SQL is written once in [`outbox_sql!`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::model::{Message, MessageKind, MessageStatus};

/// Which messages a list returns, by id.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<MessageStatus>,
    pub kind: Option<MessageKind>,
    pub subscription_id: Option<i64>,
    pub limit: u32,
    /// Only ids after this one (keyset pages).
    pub after_id: Option<i64>,
    /// May be read from the replica (`database.read_url`): a list page, not a decision.
    pub lag_ok: bool,
}

/// A message's lease as a mailer took it: giving it back names both, so that a lease that
/// expired and was taken by another mailer is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub message_id: i64,
    pub until: Option<DateTime<Utc>>,
}

impl From<&Message> for Lease {
    fn from(message: &Message) -> Lease {
        Lease {
            message_id: message.id,
            until: message.lease_until,
        }
    }
}

/// What became of one leased message. `Sent`, `Retry` and `Failed` come from a send, and
/// count one attempt; the others did not reach the transport and count none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the server (its reply).
    Sent(String),
    /// A transient failure: try again at the given instant.
    Retry { at: DateTime<Utc>, error: String },
    /// A permanent failure, or too many transient ones.
    Failed(String),
    /// Not sent: it no longer tells the truth (a skipped, paused or cancelled cycle).
    Suppressed(String),
    /// Not sent: the email cannot be built or rendered from what is stored. Failed at once,
    /// with the reason; sending again cannot help.
    Unsendable(String),
    /// Not sent: the lease would have run out during the send. Given back to the queue as it
    /// was, for the next claim.
    Released,
}

/// What recording outcomes sets on a row of `outbox` from its row `v` of outcomes (id,
/// lease_until, status, next_attempt_at, last_error, sent_at, sends): each backend writes
/// `UPDATE outbox SET {OUTCOME_SET} FROM` its rows `v` `WHERE {OUTCOME_OF_THE_LEASE}`.
pub(in crate::store) const OUTCOME_SET: &str = "status = v.status, \
     next_attempt_at = COALESCE(v.next_attempt_at, outbox.next_attempt_at), \
     last_error = COALESCE(v.last_error, outbox.last_error), sent_at = v.sent_at, \
     attempts = outbox.attempts + v.sends, lease_until = NULL";

/// The lease guards each row, not `status = 'pending'`: a lease is taken only after the
/// previous one expired, so it names exactly one claim. It also keeps the plan on the primary
/// key: with `status = 'pending'` and statistics that lag a burst of new mail, PostgreSQL chose
/// the partial `outbox_pending` index and filtered every pending row per update.
pub(in crate::store) const OUTCOME_OF_THE_LEASE: &str =
    "outbox.id = v.id AND outbox.lease_until = v.lease_until";

/// How one outcome is written: the status, the next attempt (for a retry), the note kept
/// with it (the reply, the error or the reason; `None` keeps the one there), whether it was
/// sent, and the sends it adds to `attempts`.
pub(in crate::store) struct OutcomeColumns<'a> {
    pub status: MessageStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub note: Option<&'a str>,
    pub sent: bool,
    pub sends: i64,
}

impl Delivery {
    pub(in crate::store) fn columns(&self) -> OutcomeColumns<'_> {
        let (status, next_attempt_at, note, sends) = match self {
            Delivery::Sent(reply) => (MessageStatus::Sent, None, Some(reply), 1),
            Delivery::Retry { at, error } => (MessageStatus::Pending, Some(*at), Some(error), 1),
            Delivery::Failed(error) => (MessageStatus::Failed, None, Some(error), 1),
            Delivery::Suppressed(reason) => (MessageStatus::Suppressed, None, Some(reason), 0),
            Delivery::Unsendable(reason) => (MessageStatus::Failed, None, Some(reason), 0),
            Delivery::Released => (MessageStatus::Pending, None, None, 0),
        };
        OutcomeColumns {
            status,
            next_attempt_at,
            note: note.map(String::as_str),
            sent: status == MessageStatus::Sent,
            sends,
        }
    }
}

#[async_trait]
pub trait OutboxStore: super::Writes {
    async fn messages(&self, filter: &MessageFilter) -> Result<Vec<Message>, StoreError>;
    async fn message(&self, id: i64) -> Result<Option<Message>, StoreError>;

    /// Leases up to `limit` pending messages due at `now` (skipping rows other mailers hold,
    /// and rows whose lease has not expired), counting the claim (not an attempt: attempts
    /// count sends, when their outcome is recorded).
    async fn claim_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    /// Records what became of claimed messages, in one statement per few hundred, adding the
    /// sends to `attempts` and clearing the lease. Only the holder of a message's current
    /// lease may: when the lease expired and another mailer claimed (or finished) the
    /// message, that outcome is dropped and the other mailer's stands. Returns how many
    /// outcomes were recorded.
    async fn finish_messages(
        &self,
        finished: &[(Message, Delivery)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Gives back claimed messages that will not be sent (a mailer stopping): their lease is
    /// cleared, so another mailer may send them at once. Like
    /// [`OutboxStore::finish_messages`], only for messages still under the lease they were
    /// claimed with. Returns how many were released.
    async fn release_messages(&self, leases: &[super::Lease]) -> Result<u64, StoreError>;

    /// Puts failed messages back to pending in a transaction of its own
    /// ([`OutboxWrites::retry_failed`]).
    async fn retry_failed(&self, id: Option<i64>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let retried = tx.retry_failed(id, now).await?;
        tx.commit().await?;
        Ok(retried)
    }

    /// Puts message `id` back in the queue to be sent again (attempts from 0, due `now`) if it
    /// is still `seen` and finished (sent, failed or suppressed), with `event` (who asked and
    /// why) in the same transaction; returns whether it did. A second call finds it pending
    /// and does nothing.
    async fn resend_message(
        &self,
        id: i64,
        seen: MessageStatus,
        event: Option<&crate::core::model::NewEvent>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Deletes up to `limit` finished messages (sent, failed or suppressed, and not leased)
    /// created before `before`, oldest first; returns how many. Never a pending message.
    async fn purge_finished(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// Pending outbox messages, and the creation time of the oldest one that is due.
    async fn outbox_backlog(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;

    /// Returns when new outbox rows may have committed (PostgreSQL `LISTEN`), or after
    /// `timeout` (the polling fallback, and always on SQLite).
    async fn wait_for_outbox(&self, timeout: std::time::Duration);
}

/// The outbox's changes made for a use case, in a write transaction ([`super::WriteTx`]).
#[async_trait]
pub trait OutboxWrites: Send {
    /// Puts failed messages back to pending (one, or all when `id` is `None`); returns how many.
    async fn retry_failed(
        &mut self,
        id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// The payload comes as text: the mailer parses it once, into what its templates read.
pub(in crate::store) const MESSAGE_COLUMNS: &str = "id, kind, recipient, subscription_id, \
     order_id, cycle, lead_days, status, attempts, claims, next_attempt_at, lease_until, \
     last_error, CAST(payload AS TEXT) AS payload, created_at, sent_at";

/// The messages a filter selects (`$1` status, `$2` kind, `$3` subscription, `$4` limit,
/// `$5` after id).
pub(in crate::store) const MESSAGE_FILTER: &str = " WHERE ($1 IS NULL OR status = $1) \
     AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR subscription_id = $3) \
     AND ($5 IS NULL OR id > $5) ORDER BY id LIMIT $4";

macro_rules! outbox_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::OutboxWrites for SqlWrite {
            async fn retry_failed(
                &mut self,
                id: Option<i64>,
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let tx = &mut self.tx;
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
                     lease_until = NULL WHERE status = 'failed' AND ($1 IS NULL OR id = $1)",
                )
                .bind(id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl super::OutboxStore for $store {
            async fn messages(&self, filter: &MessageFilter) -> Result<Vec<Message>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM outbox{}",
                    super::outbox::MESSAGE_COLUMNS,
                    super::outbox::MESSAGE_FILTER
                );
                let records: Vec<MessageRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(filter.status.map(|s| s.as_str()))
                    .bind(filter.kind.map(|k| k.as_str()))
                    .bind(filter.subscription_id)
                    .bind(big(filter.limit))
                    .bind(filter.after_id)
                    .fetch_all(self.reader(filter.lag_ok))
                    .await?;
                records
                    .into_iter()
                    .map(MessageRecord::into_message)
                    .collect()
            }

            async fn message(&self, id: i64) -> Result<Option<Message>, StoreError> {
                let sql = format!("SELECT {} FROM outbox WHERE id = $1", super::outbox::MESSAGE_COLUMNS);
                let record: Option<MessageRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(MessageRecord::into_message).transpose()
            }

            async fn claim_messages(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                let mut tx = begin_write(self).await?;
                let records: Vec<MessageRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "UPDATE outbox SET lease_until = $2, claims = claims + 1 WHERE id IN \
                     (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                     AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, id \
                     LIMIT $3{MESSAGE_CLAIM_LOCK}) RETURNING {}",
                    super::outbox::MESSAGE_COLUMNS
                )))
                .bind(now)
                .bind(lease_until)
                .bind(big(limit))
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut messages = records
                    .into_iter()
                    .map(MessageRecord::into_message)
                    .collect::<Result<Vec<_>, _>>()?;
                messages.sort_by_key(|m| (m.next_attempt_at, m.id));
                Ok(messages)
            }

            async fn finish_messages(
                &self,
                finished: &[(Message, super::Delivery)],
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                record_outcomes(self, finished, now).await
            }

            async fn release_messages(&self, leases: &[super::Lease]) -> Result<u64, StoreError> {
                let mut tx = begin_write(self).await?;
                let mut released = 0;
                for chunk in leases.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new("WITH v (id, lease_until) AS (");
                    q.push_values(chunk, |mut row, lease| {
                        row.push_bind(lease.message_id).push_bind(lease.until);
                    });
                    q.push(
                        ") UPDATE outbox SET lease_until = NULL FROM v \
                         WHERE outbox.id = v.id AND outbox.lease_until = v.lease_until",
                    );
                    released += q.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(released)
            }

            async fn resend_message(
                &self,
                id: i64,
                seen: crate::core::model::MessageStatus,
                event: Option<&crate::core::model::NewEvent>,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut tx = begin_write(self).await?;
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
                     lease_until = NULL WHERE id = $1 AND status = $3 AND status <> 'pending'",
                )
                .bind(id)
                .bind(now)
                .bind(seen.as_str())
                .execute(&mut *tx)
                .await?;
                let resent = done.rows_affected() == 1;
                if resent && let Some(e) = event {
                    sqlx::query(
                        "INSERT INTO subscription_events (subscription_id, kind, actor, at, cycle, detail) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(e.subscription_id)
                    .bind(e.kind.as_str())
                    .bind(e.actor.0.as_str())
                    .bind(now)
                    .bind(e.cycle.map(big))
                    .bind(sqlx::types::Json(&e.detail))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(resent)
            }

            async fn purge_finished(
                &self,
                before: DateTime<Utc>,
                limit: u32,
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(self).await?;
                let done = sqlx::query(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                     WHERE status <> 'pending' AND lease_until IS NULL AND created_at < $1 \
                     ORDER BY id LIMIT $2)",
                )
                .bind(before)
                .bind(big(limit))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn outbox_backlog(
                &self,
                now: DateTime<Utc>,
            ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
                let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?;
                let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT MIN(created_at) FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok((pending, oldest))
            }

            async fn wait_for_outbox(&self, timeout: std::time::Duration) {
                wait_for_outbox(self, timeout).await
            }
        }
    };
}

pub(crate) use outbox_sql;
