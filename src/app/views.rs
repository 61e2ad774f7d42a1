//! What doors show: the JSON shapes `--json` prints and the HTTP API returns.
//!
//! These types are apart from the records the store reads (`model`) and from the outbox
//! payloads, so that renaming a field in one cannot silently change another. Their field
//! names and meanings are stable (docs/json.md): fields may be added, never renamed or
//! removed. Amounts are `{ "amount_minor": …, "currency": … }`; instants are RFC 3339 UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::core::address::Address;
use crate::core::catalog::{Catalog, Plan};
use crate::core::model::{
    Coupon, CouponDuration, CouponGrant, Customer, CustomerAddress, Event, Message, Order, Promise,
    Subscription,
};
use crate::core::money::{BasisPoints, Currency, Money, MoneyError};
use crate::core::pricing::{CouponValue, Quote};
use crate::core::schedule::Interval;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// IANA time zone name.
    pub time_zone: String,
    pub locale: String,
    pub tax_region: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The storefront's own id for the customer (unique among customers), or null.
    pub external_id: Option<String>,
    /// The storefront's strings (at most 50 keys); `{}` when none.
    pub metadata: BTreeMap<String, String>,
    /// When its details, external id or metadata last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        CustomerView {
            id: c.id,
            email: c.email.to_string(),
            name: c.name.clone(),
            time_zone: c.time_zone.name().to_owned(),
            locale: c.locale.clone(),
            tax_region: c.tax_region.clone(),
            created_at: c.created_at,
            external_id: c.external_id.as_ref().map(ToString::to_string),
            metadata: c.metadata.as_map().clone(),
            updated_at: c.updated_at,
        }
    }
}

/// Where something ships: an address's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ShipToView {
    /// The name on the parcel.
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// ISO 3166-2 code with its country, e.g. US-CA.
    pub subdivision: Option<String>,
    /// In the country's own format, e.g. 94105, K1A 0B1, SW1A 1AA.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. US.
    pub country: String,
    pub phone: Option<String>,
}

impl From<&Address> for ShipToView {
    fn from(a: &Address) -> Self {
        let raw = a.raw();
        ShipToView {
            name: raw.name,
            line1: raw.line1,
            line2: raw.line2,
            city: raw.city,
            subdivision: raw.subdivision,
            postal_code: raw.postal_code,
            country: raw.country,
            phone: raw.phone,
        }
    }
}

impl ShipToView {
    /// The address on one line, for lists: "Ada Lovelace, 1 Market St, San Francisco, US-CA,
    /// 94105, US".
    pub fn one_line(&self) -> String {
        let mut parts = vec![self.name.as_str(), self.line1.as_str()];
        parts.extend(self.line2.as_deref());
        parts.push(self.city.as_str());
        parts.extend(self.subdivision.as_deref());
        parts.extend(self.postal_code.as_deref());
        parts.push(self.country.as_str());
        parts.extend(self.phone.as_deref());
        parts.join(", ")
    }
}

/// One of a customer's ship-to addresses: its fields, and which customer's it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub id: i64,
    pub customer_id: i64,
    /// Where new subscriptions ship unless told otherwise.
    pub is_default: bool,
    #[serde(flatten)]
    pub address: ShipToView,
    pub created_at: DateTime<Utc>,
}

impl From<&CustomerAddress> for AddressView {
    fn from(a: &CustomerAddress) -> Self {
        AddressView {
            id: a.id,
            customer_id: a.customer_id,
            is_default: a.is_default,
            address: ShipToView::from(&a.address),
            created_at: a.created_at,
        }
    }
}

/// A customer with their subscriptions (`customers show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CustomerDetail {
    pub customer: CustomerView,
    pub subscriptions: Vec<SubscriptionView>,
}

/// The coupon a subscription redeemed, and how many orders it has discounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CouponGrantView {
    pub coupon_id: i64,
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<String>,
    pub orders_used: u32,
}

impl From<&CouponGrant> for CouponGrantView {
    fn from(g: &CouponGrant) -> Self {
        CouponGrantView {
            coupon_id: g.coupon_id,
            code: g.code.clone(),
            value: g.value,
            duration: g.duration,
            plan: g.plan.as_ref().map(|p| p.to_string()),
            orders_used: g.orders_used,
        }
    }
}

/// The price a reminder announced for a cycle: that renewal charges no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PromiseView {
    pub cycle: u32,
    pub unit_price_minor: i64,
    /// The reminded total, the most the renewal charges.
    pub total_minor: Option<i64>,
    /// The ISO 4217 code of both amounts; null for a promise made before markets existed (in
    /// the catalog's currency). A promise is a ceiling only in its own currency.
    #[schema(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

impl From<&Promise> for PromiseView {
    fn from(p: &Promise) -> Self {
        PromiseView {
            cycle: p.cycle,
            unit_price_minor: p.unit_price_minor,
            total_minor: p.total_minor,
            currency: p.currency,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: i64,
    pub customer_id: i64,
    pub plan: String,
    pub quantity: u32,
    pub interval: Interval,
    /// The local date and time the schedule counts from, and the cycle that falls on it.
    #[schema(value_type = String, example = "2026-11-20T09:00:00")]
    pub anchor_local: NaiveDateTime,
    pub anchor_cycle: u32,
    pub time_zone: String,
    pub next_cycle: u32,
    pub next_renewal_at: Option<DateTime<Utc>>,
    /// active, paused or cancelled.
    pub status: String,
    pub paused_until: Option<DateTime<Utc>>,
    pub orders_count: u32,
    pub coupon: Option<CouponGrantView>,
    pub cancel_reason: Option<String>,
    pub hold_reason: Option<String>,
    pub promise: Option<PromiseView>,
    pub error_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the next annual notice is due; none once cancelled.
    pub next_annual_notice_at: Option<DateTime<Utc>>,
    /// Where it ships and is taxed; none for a subscription written before addresses
    /// existed (taxed by its customer's region).
    pub shipping_address: Option<AddressView>,
    /// The storefront's own id for the subscription (unique among subscriptions), or null.
    pub external_id: Option<String>,
    /// The storefront's strings (at most 50 keys); `{}` when none.
    pub metadata: BTreeMap<String, String>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        SubscriptionView {
            id: s.id,
            customer_id: s.customer_id,
            plan: s.plan.to_string(),
            quantity: s.quantity,
            interval: s.interval,
            anchor_local: s.anchor_local,
            anchor_cycle: s.anchor_cycle,
            time_zone: s.time_zone.name().to_owned(),
            next_cycle: s.next_cycle,
            next_renewal_at: s.next_renewal_at,
            status: s.status.to_string(),
            paused_until: s.paused_until,
            orders_count: s.orders_count,
            coupon: s.coupon.as_ref().map(CouponGrantView::from),
            cancel_reason: s.cancel_reason.clone(),
            hold_reason: s.hold_reason.clone(),
            promise: s.promise.as_ref().map(PromiseView::from),
            error_count: s.error_count,
            created_at: s.created_at,
            updated_at: s.updated_at,
            next_annual_notice_at: s.notices.annual_notice_at,
            shipping_address: s.ship_to.as_ref().map(AddressView::from),
            external_id: s.external_id.as_ref().map(ToString::to_string),
            metadata: s.metadata.as_map().clone(),
        }
    }
}

/// A change of plan, quantity, interval or address with what it does to the price of the next
/// renewal (`PATCH /v1/subscriptions/{id}`, `subs change --json`): the subscription (as changed,
/// or as it would be for a preview), the next renewal's itemized quote before and after (the
/// email snapshot's shape; null when it is not active or cannot be priced) and whether its
/// total differs. A renewal already reminded keeps its reminded total as a ceiling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChangeView {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    #[schema(value_type = Option<Object>)]
    pub quote_before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub quote: Option<serde_json::Value>,
    /// The next renewal's total differs from what it was.
    pub price_changes: bool,
    /// false for a preview: nothing was changed.
    pub applied: bool,
}

/// A subscription with its history (`subs show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SubscriptionDetail {
    pub subscription: SubscriptionView,
    pub events: Vec<EventView>,
    pub orders: Vec<OrderView>,
    pub messages: Vec<MessageView>,
    /// The consent recorded when it was created (none for subscriptions created before
    /// consents were recorded).
    pub consents: Vec<ConsentView>,
    /// Its orders' payments, by id.
    pub payments: Vec<PaymentView>,
}

/// A customer's recorded consent to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub given_at: DateTime<Utc>,
    pub channel: String,
    pub terms_version: String,
    pub actor: String,
}

impl From<&crate::core::model::Consent> for ConsentView {
    fn from(c: &crate::core::model::Consent) -> Self {
        ConsentView {
            given_at: c.given_at,
            channel: c.channel.clone(),
            terms_version: c.terms_version.clone(),
            actor: c.actor.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: i64,
    pub subscription_id: i64,
    pub kind: String,
    /// Who caused it: `cli`, `engine`, `api:<key name>`, `customer:link`, `system`.
    pub actor: String,
    pub at: DateTime<Utc>,
    pub cycle: Option<u32>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            id: e.id,
            subscription_id: e.subscription_id,
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            at: e.at,
            cycle: e.cycle,
            detail: e.detail.clone(),
        }
    }
}

/// An order's shipment (who carries it, its tracking, when it left), or its cancellation
/// before it shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FulfillmentView {
    pub order_number: String,
    /// fulfilled (shipped) or cancelled (before it shipped).
    pub status: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// The carrier's tracking page (made for USPS, UPS, FedEx and DHL when not given).
    pub tracking_url: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub reason: Option<String>,
    /// Who recorded it (`cli`, `api:<key name>`).
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
}

impl From<&crate::core::fulfillment::Fulfillment> for FulfillmentView {
    fn from(f: &crate::core::fulfillment::Fulfillment) -> Self {
        use crate::core::fulfillment::Outcome;
        let (status, shipment, reason) = match &f.outcome {
            Outcome::Fulfilled(s) => ("fulfilled", Some(s), None),
            Outcome::Cancelled { reason } => ("cancelled", None, Some(reason.clone())),
        };
        FulfillmentView {
            order_number: f.order_number.clone(),
            status: status.into(),
            carrier: shipment.map(|s| s.carrier.clone()),
            tracking_number: shipment.map(|s| s.tracking_number.clone()),
            tracking_url: shipment.and_then(|s| s.tracking_url.clone()),
            shipped_at: shipment.map(|s| s.shipped_at),
            reason,
            actor: f.actor.clone(),
            recorded_at: f.created_at,
        }
    }
}

/// One itemized step of a price: discounts negative, charges positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub kind: String,
    pub label: String,
    pub amount: Money,
}

impl From<&crate::core::model::OrderLine> for LineView {
    fn from(l: &crate::core::model::OrderLine) -> Self {
        LineView {
            kind: l.kind.clone(),
            label: l.label.clone(),
            amount: l.amount,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub cycle: u32,
    pub plan: String,
    pub packs: u32,
    pub quantity: u32,
    pub tax_region: Option<String>,
    pub coupon_code: Option<String>,
    pub total: Money,
    pub tax_included: Option<Money>,
    pub scheduled_for: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<LineView>,
    /// Where it ships, as written with the order (never changed); none for an order of a
    /// subscription without an address.
    pub ship_to: Option<ShipToView>,
    /// Whether it has shipped: on a single order's read (`orders show --json`, `GET
    /// /v1/orders/{number}`, `customers export-data`); null in lists, which do not read it.
    pub fulfillment: Option<OrderFulfillmentView>,
}

/// An order's fulfillment state as its own JSON shows it: `unfulfilled` (not shipped yet, or
/// billed before shipments were recorded), `fulfilled` with its carrier, tracking number,
/// tracking URL and when it shipped, or `cancelled` before it shipped with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderFulfillmentView {
    /// unfulfilled, fulfilled or cancelled.
    pub status: String,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub reason: Option<String>,
}

impl OrderFulfillmentView {
    /// The state of an order, from its recorded shipment or cancellation if it has one.
    pub fn of(recorded: Option<&crate::core::fulfillment::Fulfillment>) -> Self {
        match recorded.map(FulfillmentView::from) {
            Some(f) => OrderFulfillmentView {
                status: f.status,
                carrier: f.carrier,
                tracking_number: f.tracking_number,
                tracking_url: f.tracking_url,
                shipped_at: f.shipped_at,
                reason: f.reason,
            },
            None => OrderFulfillmentView {
                status: "unfulfilled".into(),
                carrier: None,
                tracking_number: None,
                tracking_url: None,
                shipped_at: None,
                reason: None,
            },
        }
    }
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id,
            order_number: o.order_number.clone(),
            subscription_id: o.subscription_id,
            customer_id: o.customer_id,
            cycle: o.cycle,
            plan: o.plan.to_string(),
            packs: o.packs,
            quantity: o.quantity,
            tax_region: o.tax_region.clone(),
            coupon_code: o.coupon_code.clone(),
            total: o.total,
            tax_included: o.tax_included,
            scheduled_for: o.scheduled_for,
            created_at: o.created_at,
            lines: o.lines.iter().map(LineView::from).collect(),
            ship_to: o.ship_to.as_ref().map(ShipToView::from),
            fulfillment: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CouponView {
    pub id: i64,
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<u32>,
    pub redemptions: u32,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&Coupon> for CouponView {
    fn from(c: &Coupon) -> Self {
        CouponView {
            id: c.id,
            code: c.code.clone(),
            value: c.value,
            duration: c.duration,
            plan: c.plan.as_ref().map(|p| p.to_string()),
            expires_at: c.expires_at,
            max_redemptions: c.max_redemptions,
            redemptions: c.redemptions,
            disabled_at: c.disabled_at,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subscription_id: Option<i64>,
    pub order_id: Option<i64>,
    pub cycle: Option<u32>,
    pub lead_days: Option<u32>,
    /// pending, sent, failed or suppressed.
    pub status: String,
    /// Sends tried.
    pub attempts: u32,
    /// Times a mailer leased it (a crashed mailer's lease counts here, not in `attempts`).
    pub claims: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        MessageView {
            id: m.id,
            kind: m.kind.to_string(),
            recipient: m.recipient.clone(),
            subscription_id: m.subscription_id,
            order_id: m.order_id,
            cycle: m.cycle,
            lead_days: m.lead_days,
            status: m.status.to_string(),
            attempts: m.attempts,
            claims: m.claims,
            next_attempt_at: m.next_attempt_at,
            lease_until: m.lease_until,
            last_error: m.last_error.clone(),
            // A payload that is not JSON (a row edited by hand) shows as null.
            payload: m.payload.json().unwrap_or_default(),
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

/// A message and the email it renders to (`outbox show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RenderedMessage {
    pub message: MessageView,
    /// The whole email as it would be sent: headers and both parts.
    pub rendered: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    pub plan: String,
    pub product: String,
    pub packs: u32,
    pub list_price: Money,
    pub subscribe_and_save: BasisPoints,
    pub subscribe_and_save_price: Money,
    pub price_per_pack: Money,
    pub default_interval: Interval,
    pub allowed_intervals: Vec<Interval>,
}

impl PlanView {
    /// `plan` at the default market's prices.
    pub fn of(catalog: &Catalog, plan: &Plan) -> Result<PlanView, MoneyError> {
        PlanView::in_market(catalog, plan, catalog.market_for(None))
    }

    /// `plan` at `market`'s prices, in its currency.
    pub fn in_market(
        catalog: &Catalog,
        plan: &Plan,
        market: crate::core::catalog::MarketTerms<'_>,
    ) -> Result<PlanView, MoneyError> {
        let list_price = market.price_of(plan);
        let saving = list_price.percent(plan.subscribe_and_save);
        let price = list_price.checked_sub(saving)?;
        Ok(PlanView {
            plan: plan.id.to_string(),
            product: catalog
                .product(&plan.product_sku)
                .map_or_else(|| plan.product_sku.clone(), |p| p.name.clone()),
            packs: plan.packs,
            list_price,
            subscribe_and_save: plan.subscribe_and_save,
            subscribe_and_save_price: price,
            price_per_pack: price.divided_by(plan.packs),
            default_interval: plan.default_interval,
            allowed_intervals: plan.allowed_intervals.clone(),
        })
    }
}

/// Tax contained in a tax-inclusive total: recorded beside the lines, not in them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IncludedTaxView {
    pub label: String,
    pub rate: BasisPoints,
    pub amount: Money,
}

/// The itemized price of one renewal, and what it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuoteView {
    pub plan: String,
    pub quantity: u32,
    pub region: Option<String>,
    pub orders_so_far: u32,
    pub lines: Vec<LineView>,
    pub total: Money,
    pub included_tax: Option<IncludedTaxView>,
    pub unit_price: Money,
}

impl QuoteView {
    pub fn of(
        plan: &str,
        quantity: u32,
        region: Option<&str>,
        orders_so_far: u32,
        q: &Quote,
    ) -> QuoteView {
        QuoteView {
            plan: plan.to_owned(),
            quantity,
            region: region.map(str::to_owned),
            orders_so_far,
            lines: q
                .lines
                .iter()
                .map(|l| LineView {
                    kind: l.kind.as_str().to_owned(),
                    label: l.label.clone(),
                    amount: l.amount,
                })
                .collect(),
            total: q.total,
            included_tax: q.included_tax.as_ref().map(|t| IncludedTaxView {
                label: t.label.clone(),
                rate: t.rate,
                amount: t.amount,
            }),
            unit_price: q.unit_price,
        }
    }
}

/// An API key as listed: never the key, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&crate::core::model::ApiKey> for ApiKeyView {
    fn from(k: &crate::core::model::ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name.clone(),
            scope: k.scope.as_str().to_owned(),
            key_prefix: k.key_prefix.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// An order's payment (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    /// `none` (the storefront collects), `stripe` or `simulated`.
    pub provider: String,
    /// `external`, `pending`, `paid`, `requires_action`, `failed`, `refunded` or
    /// `partially_refunded`.
    pub status: String,
    pub amount: Money,
    /// The attempt being made, or the last one made.
    pub attempt: u32,
    /// When the worker tries again (a retry after a decline, or now).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub provider_payment_ref: Option<String>,
    pub decline_code: Option<String>,
    pub last_error: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fee: Option<Money>,
    pub refunded: Money,
    pub created_at: DateTime<Utc>,
}

impl From<&crate::core::model::Payment> for PaymentView {
    fn from(p: &crate::core::model::Payment) -> Self {
        PaymentView {
            id: p.id,
            order_number: p.order_number.clone(),
            subscription_id: p.subscription_id,
            customer_id: p.customer_id,
            provider: p.provider.as_str().into(),
            status: p.status.as_str().into(),
            amount: p.amount,
            attempt: p.attempt,
            next_attempt_at: p.next_attempt_at,
            provider_payment_ref: p.provider_payment_ref.clone(),
            decline_code: p.decline_code.clone(),
            last_error: p.last_error.clone(),
            paid_at: p.paid_at,
            fee: p.fee,
            refunded: p.refunded,
            created_at: p.created_at,
        }
    }
}

/// A refund or correction of an order, with its lines (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreditNoteView {
    pub number: String,
    pub order_number: String,
    pub amount: Money,
    /// The tax part of `amount`.
    pub tax: Money,
    pub reason: String,
    pub provider_refund_ref: Option<String>,
    pub actor: String,
    pub billing_date: chrono::NaiveDate,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<LineView>,
}

impl From<&crate::core::model::CreditNote> for CreditNoteView {
    fn from(n: &crate::core::model::CreditNote) -> Self {
        CreditNoteView {
            number: n.number.clone(),
            order_number: n.order_number.clone(),
            amount: n.amount,
            tax: n.tax,
            reason: n.reason.clone(),
            provider_refund_ref: n.provider_refund_ref.clone(),
            actor: n.actor.clone(),
            billing_date: n.billing_date,
            created_at: n.created_at,
            lines: n.lines.iter().map(LineView::from).collect(),
        }
    }
}

/// A customer's provider references, and how many of their payments are tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentMethodView {
    pub customer_id: i64,
    pub payment_customer_ref: Option<String>,
    pub payment_method_ref: Option<String>,
    /// Declined or waiting payments of active subscriptions, tried again at once.
    pub payments_retried: u64,
}
