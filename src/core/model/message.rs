//! Outbox messages: their `MessageKind` and `MessageStatus`, where one goes (`Recipient`), one
//! about to be written with its payload snapshot, and one as stored. Plain data; no IO.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Email;

string_enum! {
    /// The kinds of message the outbox carries.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum MessageKind ("message kind") {
        RenewalReminder = "renewal_reminder",
        OrderConfirmation = "order_confirmation",
        SubscriptionCreated = "subscription_created",
        Skipped = "skipped",
        Paused = "paused",
        Resumed = "resumed",
        Cancelled = "cancelled",
        Changed = "changed",
        /// A fresh link to the subscription's pages, asked for by the customer.
        LinkRequest = "link_request",
        /// Once a year: what the customer subscribes to, how often, for how much, how to cancel.
        AnnualNotice = "annual_notice",
        /// Before the first renewal at a higher total than the last order's.
        PriceChange = "price_change",
        /// An event for a configured webhook endpoint (the recipient names it), sent over HTTP.
        Webhook = "webhook",
        /// A renewal's charge was declined: the next try, or what happened now that tries are over.
        PaymentFailed = "payment_failed",
        /// A renewal's charge needs the customer (3-D Secure, or no card on file).
        PaymentActionRequired = "payment_action_required",
        /// A charge that had failed went through.
        PaymentReceived = "payment_received",
        /// An order left the warehouse: the carrier and the tracking link.
        OrderShipped = "order_shipped",
    }
}

impl MessageKind {
    /// Whether the message announces one renewal (its cycle, at its instant), and so must not
    /// be sent once that renewal was skipped, billed, paused, cancelled or moved.
    pub fn announces_a_renewal(self) -> bool {
        matches!(
            self,
            MessageKind::RenewalReminder | MessageKind::PriceChange
        )
    }
}

string_enum! {
    /// Where an outbox message stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum MessageStatus ("message status") {
        /// Waiting for a mailer (possibly leased by one right now).
        Pending = "pending",
        Sent = "sent",
        /// Refused permanently, or out of attempts; `outbox retry` queues it again.
        Failed = "failed",
        /// Not sent because it no longer told the truth, with the reason.
        Suppressed = "suppressed",
    }
}

/// A message to deliver, written in the same transaction as the change that caused it. The
/// payload is a snapshot of everything the message needs, so rendering never re-reads state.
/// An order confirmation names its order by `order_number`; the store links the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMessage {
    pub kind: MessageKind,
    pub recipient: Recipient,
    pub subscription_id: i64,
    pub order_number: Option<String>,
    pub cycle: Option<u32>,
    /// For reminders: how many days before the renewal.
    pub lead_days: Option<u32>,
    /// Not before this instant (a reminder's delivery-window opening); `None`: at once.
    pub deliver_at: Option<DateTime<Utc>>,
    /// Recorded as `suppressed` with this reason instead of being sent.
    pub suppressed: Option<String>,
    pub payload: serde_json::Value,
}

/// Where a message goes: a customer's address, or a webhook endpoint by its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Recipient {
    Email(Email),
    Endpoint(String),
}

impl Recipient {
    pub fn as_str(&self) -> &str {
        match self {
            Recipient::Email(email) => email.as_str(),
            Recipient::Endpoint(name) => name,
        }
    }
}

impl NewMessage {
    /// An event for the webhook endpoint named `endpoint`, to send at once.
    pub fn webhook(endpoint: &str, subscription_id: i64, payload: serde_json::Value) -> NewMessage {
        NewMessage {
            kind: MessageKind::Webhook,
            recipient: Recipient::Endpoint(endpoint.to_owned()),
            subscription_id,
            order_number: None,
            cycle: None,
            lead_days: None,
            deliver_at: None,
            suppressed: None,
            payload,
        }
    }

    /// A message to send at once.
    pub fn now(
        kind: MessageKind,
        recipient: Email,
        subscription_id: i64,
        cycle: Option<u32>,
        payload: serde_json::Value,
    ) -> NewMessage {
        NewMessage {
            kind,
            recipient: Recipient::Email(recipient),
            subscription_id,
            order_number: None,
            cycle,
            lead_days: None,
            deliver_at: None,
            suppressed: None,
            payload,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: i64,
    pub kind: MessageKind,
    pub recipient: String,
    pub subscription_id: Option<i64>,
    pub order_id: Option<i64>,
    pub cycle: Option<u32>,
    pub lead_days: Option<u32>,
    pub status: MessageStatus,
    /// Sends tried (each reached the transport), not counting claims that sent nothing.
    pub attempts: u32,
    /// Times a mailer leased it.
    pub claims: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// Until when a mailer holds the message; only that mailer may record its outcome.
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub payload: Payload,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A queued message's payload as the store holds it: JSON text, parsed by what reads it (the
/// mailer straight into template values, the rest through [`Payload::json`]). A claimed batch
/// then builds no JSON tree per message that rendering would convert again (decoding the
/// claim and converting its payloads were a sixth of the mailer's time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(String);

impl Payload {
    /// The text of a JSON column (PostgreSQL's `jsonb` checked it; SQLite's rows are written
    /// from JSON values).
    pub fn from_stored(text: String) -> Payload {
        Payload(text)
    }

    /// The payload a store would hold for a JSON value, for the tests of its readers.
    #[cfg(test)]
    pub(crate) fn of(value: &serde_json::Value) -> Payload {
        Payload(value.to_string())
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// The payload as a JSON value, its keys in the stored order.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

/// Serialized as the JSON value it holds, as it was when the payload was a JSON value.
impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json()
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}
