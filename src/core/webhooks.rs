//! Webhooks out: which events a change makes (`subscription.created`, `.updated`,
//! `.cancelled`, `order.created` with its lines, `payment.*` from a charge's outcome,
//! `refund.created` from a credit note, `order.fulfilled` from a shipment, `order.cancelled`
//! from a cancellation before it), one outbox
//! message per subscribed endpoint,
//! written with the change; and the Standard Webhooks signature a receiver checks
//! (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with the `whsec_` secret's
//! bytes). Pure: the delivery (HTTP) is the mail worker's; the time is given.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

use crate::core::model::{Change, NewEvent, NewMessage, NewOrder, Subscription};
use crate::core::secret::Secret;
use crate::core::snapshot::webhook_subscription;

/// The events an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 10] = [
    "subscription.created",
    "subscription.updated",
    "subscription.cancelled",
    "order.created",
    "payment.succeeded",
    "payment.failed",
    "payment.requires_action",
    "refund.created",
    "order.fulfilled",
    "order.cancelled",
];

/// A receiver: its name (the outbox message's recipient), URL, secret and events.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub name: String,
    /// Shown (by `check-config`) with any password or token it carries redacted.
    #[serde(serialize_with = "redacted_url")]
    pub url: String,
    pub secret: Secret,
    pub events: Vec<String>,
}

fn redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::core::secret::redact_url_password(url))
}

impl Endpoint {
    /// Checks the URL (http or https), the secret (`whsec_` + base64 of 24-64 bytes) and the
    /// event types.
    pub fn new(name: &str, url: &str, secret: &str, events: &[String]) -> Result<Endpoint, String> {
        if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
            return Err(format!(
                "endpoint name \"{name}\": 1-64 characters, no spaces"
            ));
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err("expected an http(s):// URL".into());
        }
        check_secret(secret)?;
        if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
            return Err(format!(
                "event \"{unknown}\": expected some of {}",
                EVENT_TYPES.join(", ")
            ));
        }
        Ok(Endpoint {
            name: name.to_owned(),
            url: url.to_owned(),
            secret: Secret::new(secret.to_owned()),
            events: events.to_vec(),
        })
    }

    fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

/// Whether `secret` is a Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let key = decode_secret(secret)?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "the secret has {} bytes; Standard Webhooks secrets have 24 to 64",
            key.len()
        ));
    }
    Ok(())
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("a webhook secret starts with whsec_ (Standard Webhooks)")?;
    STANDARD
        .decode(encoded)
        .map_err(|_| "the webhook secret after whsec_ must be base64".to_owned())
}

/// The `webhook-signature` header's value for a message: `v1,<base64 HMAC-SHA256>` over
/// `{id}.{timestamp}.{body}`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &str) -> String {
    let key = decode_secret(secret.expose()).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Adds to `change` one webhook message per endpoint subscribed to each event it makes.
pub fn attach(change: &mut Change, endpoints: &[Endpoint], now: DateTime<Utc>) {
    if endpoints.is_empty() {
        return;
    }
    let mut events: Vec<(&str, serde_json::Value)> = change
        .events
        .iter()
        .filter_map(|event| told_as(event, &change.after))
        .collect();
    for order in &change.orders {
        events.push(("order.created", order_created(order, &change.after)));
    }
    for (kind, data) in events {
        for endpoint in endpoints.iter().filter(|e| e.wants(kind)) {
            change.messages.push(NewMessage::webhook(
                &endpoint.name,
                change.after.id,
                json!({ "type": kind, "timestamp": now, "data": data }),
            ));
        }
    }
}

/// The webhook event an event of `after` is told as, with its data; none for the engine's
/// own bookkeeping (renewals, missed cycles, holds), which is told as orders.
fn told_as(event: &NewEvent, after: &Subscription) -> Option<(&'static str, serde_json::Value)> {
    let kind = match event.kind.as_str() {
        "created" => "subscription.created",
        "cancel" => "subscription.cancelled",
        "renewed" | "missed" | "held" | "price_held" => return None,
        payment @ ("payment_succeeded" | "payment_failed" | "payment_requires_action") => {
            let kind = match payment {
                "payment_succeeded" => "payment.succeeded",
                "payment_failed" => "payment.failed",
                _ => "payment.requires_action",
            };
            return Some((
                kind,
                json!({ "subscription_id": after.id, "payment": event.detail, "actor": event.actor.0 }),
            ));
        }
        shipment @ ("shipped" | "order_cancelled") => {
            let kind = if shipment == "shipped" {
                "order.fulfilled"
            } else {
                "order.cancelled"
            };
            return Some((
                kind,
                json!({ "subscription_id": after.id, "fulfillment": event.detail, "actor": event.actor.0 }),
            ));
        }
        "refunded" => {
            return Some((
                "refund.created",
                json!({ "subscription_id": after.id, "refund": event.detail, "actor": event.actor.0 }),
            ));
        }
        _ => "subscription.updated",
    };
    Some((
        kind,
        json!({ "subscription": webhook_subscription(after), "change": event.kind, "actor": event.actor.0 }),
    ))
}

/// `order.created`'s data: the order as written, with its lines and ship-to snapshot.
fn order_created(order: &NewOrder, after: &Subscription) -> serde_json::Value {
    json!({
        "order": {
            "order_number": order.order_number,
            "subscription_id": order.subscription_id,
            "customer_id": order.customer_id,
            "cycle": order.cycle,
            "plan": order.plan,
            "packs": order.packs,
            "quantity": order.quantity,
            "total": order.total,
            "tax_included": order.tax_included,
            "scheduled_for": order.scheduled_for,
            "billing_date": order.billing_date,
            "tax_region": order.tax_region,
            "ship_to": crate::core::snapshot::ship_to_snapshot(order),
            "lines": order.lines.iter().map(|l| json!({ "kind": l.kind.as_str(), "label": l.label, "amount": l.amount })).collect::<Vec<_>>(),
            "subscription_external_id": after.external_id,
        }
    })
}
