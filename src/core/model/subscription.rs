//! Subscriptions: their `Status`, the full state with its anchor and cycles, the notice state
//! and a reminder's price `Promise` (in the currency a kept amount is in, `kept_currency`), a
//! new subscription, the customer's consents, and the `Change` a lifecycle operation or a
//! renewal makes of one. Plain data; no IO.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{Actor, CouponGrant, CustomerAddress, NewEvent, NewMessage, NewOrder, serialize_tz};
use crate::core::catalog::{Catalog, PlanId};
use crate::core::metadata::{ExternalId, Metadata};
use crate::core::money::{Currency, Money};
use crate::core::schedule::{Anchor, Interval};

string_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Status ("status") {
        Active = "active",
        Paused = "paused",
        Cancelled = "cancelled",
    }
}

/// A subscription's full state. Renewal `k` happens at `anchor.nth(interval, k - anchor_cycle)`:
/// rescheduling or changing the interval moves the anchor, so cycles keep their numbers and
/// later renewals still never drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub id: i64,
    pub customer_id: i64,
    pub plan: PlanId,
    pub quantity: u32,
    pub interval: Interval,
    pub anchor_local: NaiveDateTime,
    /// The cycle number that falls on `anchor_local`.
    pub anchor_cycle: u32,
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    /// The cycle number of the next renewal (cycle 0 is the storefront's first order).
    pub next_cycle: u32,
    /// When the next renewal is due; `None` once cancelled.
    pub next_renewal_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub paused_until: Option<DateTime<Utc>>,
    /// Orders so far, counting the storefront's first order: selects the loyalty tier.
    pub orders_count: u32,
    pub coupon: Option<CouponGrant>,
    pub cancel_reason: Option<String>,
    /// Set when a renewal could not be priced: the engine leaves the subscription alone
    /// until an operator changes it.
    pub hold_reason: Option<String>,
    /// The plan price a reminder announced for a cycle: that renewal charges no more.
    pub promise: Option<Promise>,
    pub error_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the customer notices (annual, price change) are measured from.
    pub notices: NoticeState,
    /// Where it ships, and so where it is taxed; `None` for subscriptions written before
    /// addresses existed (taxed by the customer's region).
    pub ship_to: Option<CustomerAddress>,
    /// The storefront's own id for this subscription; unique among subscriptions.
    pub external_id: Option<ExternalId>,
    /// The storefront's strings; never read by subsave's rules.
    pub metadata: Metadata,
}

/// The state the customer notices keep on a subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NoticeState {
    /// The total of the last order, which a price change is measured against; `None` before
    /// the first order and after the customer changed plan, quantity or interval (their
    /// confirmation showed the new price).
    pub last_total_minor: Option<i64>,
    /// The currency of `last_total_minor`; `None` for a total kept before markets existed
    /// (see [`kept_currency`]).
    pub last_total_currency: Option<Currency>,
    /// The cycle whose price was last checked for a rise.
    pub price_checked_cycle: Option<u32>,
    /// When the next annual notice is due; `None` once cancelled.
    pub annual_notice_at: Option<DateTime<Utc>>,
}

impl NoticeState {
    /// The last order's total in its currency; `catalog_currency` is the catalog's (see
    /// [`kept_currency`]).
    pub fn last_total(&self, catalog_currency: Currency) -> Option<Money> {
        let currency = kept_currency(self.last_total_currency, catalog_currency);
        self.last_total_minor
            .map(|t| Money::from_minor(t, currency))
    }

    /// Keeps `total` as the one the next price check compares with (`None`: none).
    pub fn keep_last_total(&mut self, total: Option<Money>) {
        self.last_total_minor = total.map(Money::minor);
        self.last_total_currency = total.map(Money::currency);
    }
}

impl Subscription {
    /// The country it ships to, which picks its market (currency, prices, shipping); `None`
    /// without an address (the default market).
    pub fn destination(&self) -> Option<crate::core::address::Country> {
        self.ship_to.as_ref().map(|a| a.address.country)
    }

    pub fn anchor(&self) -> Anchor {
        Anchor::new(self.anchor_local, self.time_zone)
    }

    /// The instant of cycle `k` (k ≥ anchor_cycle).
    pub fn instant_of(&self, k: u32) -> Option<DateTime<Utc>> {
        let offset = k.checked_sub(self.anchor_cycle)?;
        self.anchor().nth(self.interval, offset).ok()
    }

    /// The local wall-clock time of cycle `k`.
    pub fn local_of(&self, k: u32) -> Option<NaiveDateTime> {
        let offset = k.checked_sub(self.anchor_cycle)?;
        self.anchor().nth_local(self.interval, offset).ok()
    }
}

/// A reminder's price is a promise: the renewal of `cycle` charges at most `unit_price_minor`
/// per shipment, and at most `total_minor` in all (absent for a promise made before totals
/// were kept), both in `currency` (see [`kept_currency`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Promise {
    pub cycle: u32,
    pub unit_price_minor: i64,
    pub total_minor: Option<i64>,
    /// `None` for a promise made before markets existed.
    pub currency: Option<Currency>,
}

impl Promise {
    /// The promise a quote makes for `cycle`: its unit price and total, in its currency.
    pub fn of(cycle: u32, unit_price: Money, total: Money) -> Promise {
        Promise {
            cycle,
            unit_price_minor: unit_price.minor(),
            total_minor: Some(total.minor()),
            currency: Some(total.currency()),
        }
    }

    /// The promised plan price; `catalog_currency` is the catalog's (see [`kept_currency`]).
    pub fn unit_price(&self, catalog_currency: Currency) -> Money {
        Money::from_minor(
            self.unit_price_minor,
            kept_currency(self.currency, catalog_currency),
        )
    }

    /// The promised total, if one was kept; `catalog_currency` as for [`Promise::unit_price`].
    pub fn total(&self, catalog_currency: Currency) -> Option<Money> {
        let currency = kept_currency(self.currency, catalog_currency);
        self.total_minor.map(|t| Money::from_minor(t, currency))
    }
}

/// The currency of an amount a subscription keeps between renewals (a promise, a last total).
/// The one place that reads an amount written before markets existed (`kept` is `None`): there
/// was one currency then, the catalog's (`Catalog::currency`), and the amount is in it.
pub fn kept_currency(kept: Option<Currency>, catalog_currency: Currency) -> Currency {
    kept.unwrap_or(catalog_currency)
}

/// What a new subscription starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub customer_id: i64,
    pub plan: PlanId,
    pub quantity: u32,
    pub interval: Interval,
    pub anchor_local: NaiveDateTime,
    pub anchor_cycle: u32,
    pub time_zone: Tz,
    /// 0 for "start now" (cycle 0 is billed by the next sweep); 1 when the storefront took
    /// the first order and the first renewal is one interval after the anchor.
    pub next_cycle: u32,
    pub next_renewal_at: DateTime<Utc>,
    /// Orders already taken outside subsave (the storefront's first order).
    pub orders_count: u32,
    pub coupon_code: Option<String>,
    /// The customer's consent to the automatic renewal, recorded with the subscription.
    pub consent: Option<ConsentInput>,
    /// When the first annual notice is due (a year after creation).
    pub annual_notice_at: DateTime<Utc>,
    /// The customer's address it ships to.
    pub address_id: Option<i64>,
    /// The storefront's own id for it; unique among subscriptions.
    pub external_id: Option<ExternalId>,
    pub metadata: Metadata,
    /// The currency it is billed in: its address's market's, else the default market's. An
    /// amount coupon it redeems must be in this currency.
    pub currency: crate::core::money::Currency,
}

impl NewSubscription {
    /// Ships it to `address` (none: taxed by the customer's region), billed in that
    /// destination's market's currency.
    pub fn ship_to(&mut self, address: Option<&CustomerAddress>, catalog: &Catalog) {
        self.address_id = address.map(|a| a.id);
        self.currency = catalog
            .market_for(address.map(|a| a.address.country))
            .currency;
    }
}

/// How a customer agreed to a subscription: the channel (checkout, phone, cli) and the
/// version of the terms shown. When and by whom are recorded by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentInput {
    pub channel: String,
    pub terms_version: String,
}

/// A consent given with a change to an existing subscription, and who recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewConsent {
    pub input: ConsentInput,
    pub actor: Actor,
}

/// A recorded consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub subscription_id: i64,
    pub given_at: DateTime<Utc>,
    pub channel: String,
    pub terms_version: String,
    pub actor: String,
}

/// One state change to persist atomically: the subscription's new state, and the orders,
/// events and messages it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub after: Subscription,
    pub orders: Vec<NewOrder>,
    pub events: Vec<NewEvent>,
    pub messages: Vec<NewMessage>,
    /// A consent the customer gave with this change (a restart), recorded in its transaction.
    pub consent: Option<NewConsent>,
}

impl Change {
    /// The subscription's new state, with no order, event or message yet.
    pub fn of(after: Subscription) -> Change {
        Change {
            after,
            orders: Vec::new(),
            events: Vec::new(),
            messages: Vec::new(),
            consent: None,
        }
    }
}
