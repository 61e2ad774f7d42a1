//! Events: who caused a change (`Actor`) and the append-only record of it, new and as stored.
//! Plain data; no IO.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who caused a change, as recorded on its event: `cli` (an operator's command), `engine`
/// (a renewal or an ended pause), `api:<key name>` (a storefront or support tool),
/// `customer:link` (the customer, from a signed link in an email), `system` (subsave itself,
/// outside a sweep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    pub fn cli() -> Actor {
        Actor("cli".into())
    }

    pub fn engine() -> Actor {
        Actor("engine".into())
    }

    /// The payment worker and the provider's webhooks: charges, dunning and its final action.
    pub fn payments() -> Actor {
        Actor("payments".into())
    }

    /// The door an actor came through: `cli`, `api`, `customer` (before any `:`).
    pub fn door(&self) -> &str {
        self.0.split(':').next().unwrap_or(&self.0)
    }

    /// A customer, through a signed link in one of their emails.
    pub fn customer_link() -> Actor {
        Actor("customer:link".into())
    }
}

/// An append-only record of one change to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewEvent {
    pub subscription_id: i64,
    pub kind: String,
    pub actor: Actor,
    pub cycle: Option<u32>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    pub subscription_id: i64,
    pub kind: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub cycle: Option<u32>,
    pub detail: serde_json::Value,
}
