//! Fulfillment: what a shipment is and what recording one does.
//!
//! Owns parsing a shipment as a warehouse sends it (order number, carrier, tracking number,
//! an optional tracking URL, when it shipped), the tracking link of the known carriers (USPS,
//! UPS, FedEx, DHL), and the change that a recorded shipment makes: the `shipped` event, the
//! customer's "your order has shipped" email and, through `webhooks::attach`, the
//! `order.fulfilled` webhook; and cancelling an order before it ships. Whether a shipment (or
//! a cancellation) is new, the same one sent again, or one that contradicts what is recorded
//! is [`compare`]'s to say. No IO, no clock.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use crate::core::model::{
    Actor, Change, Customer, MessageKind, NewEvent, NewMessage, Order, Subscription,
};
use crate::core::snapshot::{customer_snapshot, state_summary};
use crate::core::text::FreeText;

/// The longest tracking number, in characters.
pub const TRACKING_MAX: usize = 64;
/// The longest carrier name, in characters.
pub const CARRIER_MAX: usize = 32;
/// The longest tracking URL, in characters.
pub const URL_MAX: usize = 500;

/// A carrier: one whose tracking page subsave knows, or another one by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    Usps,
    Ups,
    Fedex,
    Dhl,
    Other(String),
}

impl Carrier {
    /// `USPS`, `ups`, `FedEx`, `DHL Express`…; any other plain name up to 32 characters.
    pub fn parse(input: &str) -> Result<Carrier, String> {
        let name = FreeText::parse(input, CARRIER_MAX).map_err(|e| e.to_string())?;
        let key: String = name
            .as_str()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        Ok(match key.as_str() {
            "usps" => Carrier::Usps,
            "ups" => Carrier::Ups,
            "fedex" => Carrier::Fedex,
            "dhl" | "dhlexpress" => Carrier::Dhl,
            _ => Carrier::Other(name.into_string()),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Carrier::Usps => "USPS",
            Carrier::Ups => "UPS",
            Carrier::Fedex => "FedEx",
            Carrier::Dhl => "DHL",
            Carrier::Other(name) => name,
        }
    }

    /// The key its tracking page is configured under: `usps`, `ups`, `fedex`, `dhl`, or
    /// another carrier's name in lower-case letters and digits.
    pub fn key(&self) -> String {
        match self {
            Carrier::Usps => "usps".into(),
            Carrier::Ups => "ups".into(),
            Carrier::Fedex => "fedex".into(),
            Carrier::Dhl => "dhl".into(),
            Carrier::Other(name) => name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase(),
        }
    }
}

/// Where a carrier's tracking page is: an `https://` template in which `{tracking}` stands for
/// the tracking number, by carrier key. USPS, UPS, FedEx and DHL are known; the configuration
/// (`fulfillment.tracking_urls`) replaces them or adds others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TrackingUrls(BTreeMap<String, String>);

impl Default for TrackingUrls {
    fn default() -> Self {
        TrackingUrls(
            [
                (
                    "usps",
                    "https://tools.usps.com/go/TrackConfirmAction?tLabels={tracking}",
                ),
                ("ups", "https://www.ups.com/track?tracknum={tracking}"),
                (
                    "fedex",
                    "https://www.fedex.com/fedextrack/?trknbr={tracking}",
                ),
                (
                    "dhl",
                    "https://www.dhl.com/global-en/home/tracking.html?tracking-id={tracking}",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
    }
}

impl TrackingUrls {
    /// The known carriers' pages with `configured` ones over them; a template that is not
    /// `https://…{tracking}…` is refused, naming its carrier key.
    pub fn with(configured: &BTreeMap<String, String>) -> Result<TrackingUrls, (String, String)> {
        let mut urls = TrackingUrls::default();
        for (carrier, template) in configured {
            let key = Carrier::Other(carrier.clone()).key();
            let fits = template.starts_with("https://")
                && template.contains("{tracking}")
                && !template
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control());
            if key.is_empty() || !fits {
                return Err((
                    carrier.clone(),
                    "expected an https:// address with {tracking} where the tracking number goes"
                        .into(),
                ));
            }
            urls.0.insert(key, template.clone());
        }
        Ok(urls)
    }

    /// The carrier's tracking page for `tracking` (letters, digits and hyphens, so it needs
    /// no escaping); none for a carrier without a template.
    pub fn url(&self, carrier: &Carrier, tracking: &str) -> Option<String> {
        self.0
            .get(&carrier.key())
            .map(|template| template.replace("{tracking}", tracking))
    }
}

/// A shipment as received, field by field (a CSV row, a JSON body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawShipment {
    pub carrier: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    /// RFC 3339 or a date (`YYYY-MM-DD`, midnight UTC); absent: now.
    pub shipped_at: Option<String>,
}

/// A valid shipment of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
    pub shipped_at: DateTime<Utc>,
}

/// Why a shipment was refused: the field and the problem, which reads after its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}{problem}")]
pub struct ShipmentError {
    pub field: &'static str,
    pub problem: String,
}

impl Shipment {
    /// Parses a shipment received at `now`: the carrier's tracking URL is made from `urls`
    /// when none is given; a given one must be `https://`; it cannot have shipped more than a
    /// day from now (clocks differ, days do not).
    pub fn parse(
        raw: &RawShipment,
        now: DateTime<Utc>,
        urls: &TrackingUrls,
    ) -> Result<Shipment, ShipmentError> {
        let error = |field: &'static str| move |problem: String| ShipmentError { field, problem };
        let carrier = Carrier::parse(&raw.carrier).map_err(error("carrier"))?;
        let tracking = raw.tracking_number.trim();
        if tracking.is_empty()
            || tracking.chars().count() > TRACKING_MAX
            || !tracking
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(error("tracking_number")(format!(
                " \"{}\": 1 to {TRACKING_MAX} letters, digits or hyphens",
                crate::core::text::printable(tracking)
            )));
        }
        let tracking_url = match raw.tracking_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                let url = FreeText::parse(url, URL_MAX)
                    .map_err(|e| error("tracking_url")(e.to_string()))?
                    .into_string();
                if !url.starts_with("https://") || url.contains(char::is_whitespace) {
                    return Err(error("tracking_url")(
                        ": an https:// address without spaces".into(),
                    ));
                }
                Some(url)
            }
            _ => urls.url(&carrier, tracking),
        };
        let shipped_at = match raw.shipped_at.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => parse_instant(text).ok_or_else(|| {
                error("shipped_at")(format!(
                    " \"{}\": expected a date (2026-12-01) or an RFC 3339 time (2026-12-01T14:30:00Z)",
                    crate::core::text::printable(text)
                ))
            })?,
            _ => now,
        };
        if shipped_at > now + chrono::TimeDelta::days(1) {
            return Err(error("shipped_at")(format!(
                " {shipped_at}: in the future; a shipment is recorded once it has left"
            )));
        }
        Ok(Shipment {
            carrier: carrier.name().to_owned(),
            tracking_number: tracking.to_owned(),
            tracking_url,
            shipped_at,
        })
    }
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })
}

/// How an order left the unfulfilled state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// It shipped.
    Fulfilled(Shipment),
    /// It was cancelled before it shipped.
    Cancelled { reason: String },
}

/// What is recorded for an order: its shipment, or its cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fulfillment {
    pub order_id: i64,
    pub order_number: String,
    pub outcome: Outcome,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// What a shipment received for an order that already has one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The same carrier and tracking number: sent again; nothing to do.
    Same,
    /// Another carrier or tracking number: refused, with the reason.
    Contradicts(String),
}

/// Compares what is asked for an order (a shipment, a cancellation) with what is recorded.
pub fn compare(recorded: &Fulfillment, asked: &Outcome) -> Comparison {
    let number = &recorded.order_number;
    match (&recorded.outcome, asked) {
        (Outcome::Fulfilled(was), Outcome::Fulfilled(now))
            if was.carrier.eq_ignore_ascii_case(&now.carrier)
                && was.tracking_number == now.tracking_number =>
        {
            Comparison::Same
        }
        (Outcome::Fulfilled(was), _) => Comparison::Contradicts(format!(
            "order {number} already shipped with {} {}; a shipment is recorded once",
            was.carrier, was.tracking_number
        )),
        (Outcome::Cancelled { .. }, Outcome::Cancelled { .. }) => Comparison::Same,
        (Outcome::Cancelled { reason }, Outcome::Fulfilled(_)) => Comparison::Contradicts(format!(
            "order {number} was cancelled before it shipped ({reason}); it must not ship"
        )),
    }
}

/// What cancelling an unshipped `order` does: an `order_cancelled` event on its subscription
/// (the webhooks turn it into `order.cancelled`). Its refund or credit note is the payments'.
pub fn cancelled(order: &Order, reason: &str, sub: &Subscription, actor: &Actor) -> Change {
    let mut change = Change::of(sub.clone());
    change.events.push(NewEvent {
        subscription_id: sub.id,
        kind: "order_cancelled".into(),
        actor: actor.clone(),
        cycle: Some(order.cycle),
        detail: json!({ "order_number": order.order_number, "reason": reason }),
    });
    change
}

/// What recording a shipment of `order` does: a `shipped` event on its subscription (the
/// webhooks turn it into `order.fulfilled`) and the customer's "shipped" email with the
/// tracking link. The subscription itself does not change.
pub fn shipped(
    order: &Order,
    shipment: &Shipment,
    sub: &Subscription,
    customer: &Customer,
    actor: &Actor,
) -> Change {
    let detail = json!({
        "order_number": order.order_number,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
        "shipped_at": shipment.shipped_at,
    });
    let mut change = Change::of(sub.clone());
    change.events.push(NewEvent {
        subscription_id: sub.id,
        kind: "shipped".into(),
        actor: actor.clone(),
        cycle: Some(order.cycle),
        detail: detail.clone(),
    });
    change.messages.push(NewMessage::now(
        MessageKind::OrderShipped,
        customer.email.clone(),
        sub.id,
        Some(order.cycle),
        json!({
            "customer": customer_snapshot(customer),
            "subscription": state_summary(sub),
            "order": {
                "order_number": order.order_number,
                "plan": order.plan,
                "packs": order.packs,
                "quantity": order.quantity,
                "ship_to": order.ship_to,
            },
            "shipment": detail,
        }),
    ));
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-05T12:00:00Z".parse().unwrap()
    }

    fn raw(carrier: &str, tracking: &str) -> RawShipment {
        RawShipment {
            carrier: carrier.into(),
            tracking_number: tracking.into(),
            ..Default::default()
        }
    }

    #[test]
    fn known_carriers_get_their_tracking_link() {
        let cases = [
            (
                "usps",
                "USPS",
                "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111",
            ),
            ("UPS", "UPS", "https://www.ups.com/track?tracknum=9400111"),
            (
                "Fed Ex",
                "FedEx",
                "https://www.fedex.com/fedextrack/?trknbr=9400111",
            ),
            (
                "DHL Express",
                "DHL",
                "https://www.dhl.com/global-en/home/tracking.html?tracking-id=9400111",
            ),
        ];
        for (given, name, url) in cases {
            let s =
                Shipment::parse(&raw(given, "9400111"), now(), &TrackingUrls::default()).unwrap();
            assert_eq!(
                (s.carrier.as_str(), s.tracking_url.as_deref()),
                (name, Some(url))
            );
            assert_eq!(s.shipped_at, now());
        }
        let other =
            Shipment::parse(&raw("Hermes", "H-1"), now(), &TrackingUrls::default()).unwrap();
        assert_eq!(
            (other.carrier.as_str(), other.tracking_url),
            ("Hermes", None)
        );
        let given = RawShipment {
            tracking_url: Some("https://track.example/H-1".into()),
            shipped_at: Some("2026-12-04".into()),
            ..raw("Hermes", "H-1")
        };
        let s = Shipment::parse(&given, now(), &TrackingUrls::default()).unwrap();
        assert_eq!(s.tracking_url.as_deref(), Some("https://track.example/H-1"));
        assert_eq!(
            s.shipped_at,
            "2026-12-04T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn tracking_pages_are_configurable_per_carrier() {
        let configured: BTreeMap<String, String> = [
            (
                "Hermes".to_owned(),
                "https://track.example/h/{tracking}".to_owned(),
            ),
            (
                "UPS".to_owned(),
                "https://ups.example/?n={tracking}".to_owned(),
            ),
        ]
        .into();
        let urls = TrackingUrls::with(&configured).unwrap();
        let url = |carrier: &str| {
            Shipment::parse(&raw(carrier, "A-1"), now(), &urls)
                .unwrap()
                .tracking_url
        };
        assert_eq!(
            url("hermes").as_deref(),
            Some("https://track.example/h/A-1")
        );
        assert_eq!(url("ups").as_deref(), Some("https://ups.example/?n=A-1"));
        assert_eq!(
            url("DHL").as_deref(),
            Some("https://www.dhl.com/global-en/home/tracking.html?tracking-id=A-1")
        );
        assert_eq!(url("GLS"), None);
        for bad in [
            "http://x.example/{tracking}",
            "https://x.example/",
            "https://x.example/{tracking} x",
        ] {
            let configured: BTreeMap<String, String> = [("gls".to_owned(), bad.to_owned())].into();
            assert_eq!(
                TrackingUrls::with(&configured).unwrap_err().0,
                "gls",
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_shipments_name_their_field() {
        type Breakage = fn(&mut RawShipment);
        let cases: [(Breakage, &str); 7] = [
            (|r| r.carrier = String::new(), "carrier"),
            (|r| r.carrier = "UPS\r\nX".into(), "carrier"),
            (|r| r.tracking_number = "1Z 999".into(), "tracking_number"),
            (|r| r.tracking_number = "9".repeat(65), "tracking_number"),
            (
                |r| r.tracking_url = Some("http://x.example/1".into()),
                "tracking_url",
            ),
            (|r| r.shipped_at = Some("yesterday".into()), "shipped_at"),
            (|r| r.shipped_at = Some("2026-12-09".into()), "shipped_at"),
        ];
        for (break_it, field) in cases {
            let mut r = raw("UPS", "1Z999");
            break_it(&mut r);
            let error = Shipment::parse(&r, now(), &TrackingUrls::default()).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn a_shipment_sent_again_is_the_same_and_another_contradicts() {
        let shipped = |carrier: &str, tracking: &str| {
            Outcome::Fulfilled(
                Shipment::parse(&raw(carrier, tracking), now(), &TrackingUrls::default()).unwrap(),
            )
        };
        let cancel = Outcome::Cancelled {
            reason: "moved abroad".into(),
        };
        let recorded = |outcome: Outcome| Fulfillment {
            order_id: 1,
            order_number: "BB-0000001-001".into(),
            outcome,
            actor: "cli".into(),
            created_at: now(),
        };
        let sent = recorded(shipped("UPS", "1Z999"));
        assert_eq!(compare(&sent, &shipped("ups", "1Z999")), Comparison::Same);
        assert!(matches!(
            compare(&sent, &shipped("UPS", "1Z000")),
            Comparison::Contradicts(m) if m.contains("already shipped with UPS 1Z999")
        ));
        assert!(matches!(
            compare(&sent, &cancel),
            Comparison::Contradicts(_)
        ));
        let stopped = recorded(cancel.clone());
        assert_eq!(compare(&stopped, &cancel), Comparison::Same);
        assert!(matches!(
            compare(&stopped, &shipped("UPS", "1Z999")),
            Comparison::Contradicts(m) if m.contains("was cancelled before it shipped (moved abroad)")
        ));
    }
}
