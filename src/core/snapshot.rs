//! What messages and events carry of a subscription, a customer and an order: the JSON payloads
//! that the outbox keeps beside each message (so an email renders what was true when it was
//! written) and that events record as "before" and "after".
//!
//! Owns the shape of those payloads; no rule decides anything here. Pure, like the rest of the
//! core.

use serde_json::json;

use crate::core::model::{Customer, NewOrder, Subscription};

/// The parts of a subscription's state that an event or message records.
pub fn state_summary(sub: &Subscription) -> serde_json::Value {
    json!({
        "id": sub.id,
        "status": sub.status,
        "plan": sub.plan,
        "quantity": sub.quantity,
        "interval": sub.interval,
        "next_cycle": sub.next_cycle,
        "next_renewal_at": sub.next_renewal_at,
        "next_renewal_local": sub.next_renewal_at.map(|at| at.with_timezone(&sub.time_zone).to_rfc3339()),
        "paused_until": sub.paused_until,
        "time_zone": sub.time_zone.name(),
    })
}

/// A subscription as a webhook carries it: [`state_summary`]'s fields, then the storefront's
/// `external_id` and `metadata`, which a receiver matches on. (Emails keep the summary alone:
/// the outbox stores every email's payload, and no template reads metadata.)
pub fn webhook_subscription(sub: &Subscription) -> serde_json::Value {
    let mut summary = state_summary(sub);
    if let Some(fields) = summary.as_object_mut() {
        fields.insert("external_id".into(), json!(sub.external_id));
        fields.insert("metadata".into(), json!(sub.metadata));
    }
    summary
}

/// The customer as a message records it: who it is for and how to speak to them.
pub fn customer_snapshot(customer: &Customer) -> serde_json::Value {
    json!({
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "locale": customer.locale,
        "time_zone": customer.time_zone.name(),
    })
}

/// Where an order ships, as messages and webhooks carry it: `name`, `line1`, `line2`, `city`,
/// `subdivision` (`US-CA`), `postal_code`, `country` (`US`), `phone`; null without an address.
pub fn ship_to_snapshot(order: &NewOrder) -> serde_json::Value {
    serde_json::to_value(&order.ship_to).unwrap_or(serde_json::Value::Null)
}

/// What an email shows of an order, or of the order a reminder announces: plan, packs,
/// quantity, each line's kind, label and amount, the total and any contained tax and its
/// rate, and where it ships. Nothing more: the outbox keeps this for every message, and the
/// order itself is in its own tables.
pub fn email_snapshot(order: &NewOrder) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = order
        .lines
        .iter()
        .map(|l| json!({ "kind": l.kind, "label": l.label, "amount": l.amount }))
        .collect();
    json!({
        "order_number": order.order_number,
        "plan": order.plan,
        "packs": order.packs,
        "quantity": order.quantity,
        "lines": lines,
        "total": order.total,
        "tax_included": order.tax_included,
        "tax_included_rate": order.tax_included_rate,
        "ship_to": ship_to_snapshot(order),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metadata::{ExternalId, Metadata, MetadataPatch};
    use crate::test_support::subscription_in;

    #[test]
    fn a_webhook_carries_the_summary_unchanged_then_the_storefronts_fields() {
        let mut sub = subscription_in("Europe/Berlin", "2026-01-10T09:00", "2026-01-10T08:00:00Z");
        let summary = serde_json::to_string(&state_summary(&sub)).unwrap();
        let plain = webhook_subscription(&sub);
        assert_eq!(plain["external_id"], serde_json::Value::Null);
        assert_eq!(plain["metadata"], json!({}));
        sub.external_id = Some(ExternalId::parse("shop-9").unwrap());
        sub.metadata = Metadata::default()
            .merged(
                &MetadataPatch::parse([("gift".to_owned(), Some("yes".to_owned()))].into())
                    .unwrap(),
            )
            .unwrap();
        let text = serde_json::to_string(&webhook_subscription(&sub)).unwrap();
        // The summary's fields, byte for byte and in their order, then the two new ones.
        assert_eq!(
            text,
            format!(
                "{},\"external_id\":\"shop-9\",\"metadata\":{{\"gift\":\"yes\"}}}}",
                summary.strip_suffix('}').unwrap()
            )
        );
        // Emails keep the summary alone.
        assert!(state_summary(&sub).get("metadata").is_none());
    }
}
