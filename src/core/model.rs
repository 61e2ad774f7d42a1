//! The records subsave keeps: customers, coupons, subscriptions, orders, events and outbox
//! messages, as plain data. Values here are already parsed (`Email`, `PlanId`, `Interval`,
//! `Tz`, `Money`); the store converts rows to and from them at its edge. No IO, no SQL.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};

use crate::core::address::Address;
use crate::core::catalog::{Catalog, PlanId};
use crate::core::metadata::{ExternalId, Metadata, MetadataUpdate};
use crate::core::money::{BasisPoints, Currency, Money};
use crate::core::pricing::{Adjustment, CouponValue};
use crate::core::schedule::{Anchor, Interval};

/// A fieldless enum whose values each have one string form (in the database, JSON, the CLI):
/// declares it with `ALL` (every value, in order), `as_str`, `FromStr` (any other text is
/// refused naming the kind and every form) and `Display`. Serde's derive, where an enum has
/// one, must give the same forms (`string_forms_agree_with_serde` checks).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.as_str() == input)
                    .ok_or_else(|| {
                        format!(
                            "\"{input}\" is not a {}: expected one of {}",
                            $what,
                            [$($text),+].join(", ")
                        )
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// An email address, lowercased: `local@domain` with a dotted domain and no spaces. Checking
/// deliverability is the mail server's job; this refuses what is plainly not an address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("\"{input}\" is not an email address: expected name@example.com");
        let trimmed = input.trim();
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(invalid)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && domain.len() <= 253
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && trimmed
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control())
            && !local.contains('@')
            && !domain.contains(['<', '>', '(', ')', ',', ';', ':', '"', '[', ']', '\\']);
        if ok {
            Ok(Email(trimmed.to_lowercase()))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn serialize_tz<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: i64,
    pub email: Email,
    pub name: String,
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    pub locale: String,
    pub tax_region: Option<String>,
    /// The storefront's own id for this customer; unique among customers.
    pub external_id: Option<ExternalId>,
    /// The storefront's strings; never read by subsave's rules.
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    /// When the customer's details, external id or metadata last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub email: Email,
    pub name: String,
    pub time_zone: Tz,
    pub locale: String,
    pub tax_region: Option<String>,
    pub external_id: Option<ExternalId>,
    pub metadata: Metadata,
}

/// One of a customer's ship-to addresses, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerAddress {
    pub id: i64,
    pub customer_id: i64,
    /// Where new subscriptions ship unless told otherwise; one per customer at most.
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub address: Address,
}

/// How many orders a coupon discounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "orders")]
pub enum CouponDuration {
    Once,
    Repeating(u32),
    Forever,
}

impl CouponDuration {
    /// Whether a coupon that has discounted `used` orders still applies.
    pub fn applies_after(self, used: u32) -> bool {
        match self {
            CouponDuration::Once => used < 1,
            CouponDuration::Repeating(n) => used < n,
            CouponDuration::Forever => true,
        }
    }
}

impl FromStr for CouponDuration {
    type Err = String;

    /// "once", "forever", or "repeating N" / "repeating:N".
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "\"{input}\" is not a coupon duration: expected once, forever or \"repeating N\""
            )
        };
        match input.trim() {
            "once" => Ok(CouponDuration::Once),
            "forever" => Ok(CouponDuration::Forever),
            other => {
                let n = other
                    .strip_prefix("repeating")
                    .map(|rest| rest.trim_start_matches([' ', ':', '=']))
                    .ok_or_else(invalid)?;
                n.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(CouponDuration::Repeating)
                    .ok_or_else(invalid)
            }
        }
    }
}

impl fmt::Display for CouponDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CouponDuration::Once => f.write_str("once"),
            CouponDuration::Repeating(n) => write!(f, "repeating {n}"),
            CouponDuration::Forever => f.write_str("forever"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coupon {
    pub id: i64,
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<PlanId>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<u32>,
    pub redemptions: u32,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Coupon {
    /// Why this coupon cannot be redeemed now for `plan` by a subscription billed in
    /// `currency` (its market's), if it cannot.
    pub fn refuse_redemption(
        &self,
        plan: &PlanId,
        currency: crate::core::money::Currency,
        now: DateTime<Utc>,
    ) -> Option<String> {
        if let CouponValue::Amount(amount) = self.value
            && amount.currency() != currency
        {
            return Some(format!(
                "coupon {} takes off {} {}, and this subscription is billed in {currency} where it ships; an amount coupon applies only in its own currency, so give a coupon in {currency} or a percentage one",
                self.code,
                amount.to_decimal_string(),
                amount.currency()
            ));
        }
        if self.disabled_at.is_some() {
            return Some(format!("coupon {} is disabled", self.code));
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Some(format!("coupon {} has expired", self.code));
        }
        if self
            .max_redemptions
            .is_some_and(|max| self.redemptions >= max)
        {
            return Some(format!(
                "coupon {} has reached its redemption limit",
                self.code
            ));
        }
        if self.plan.as_ref().is_some_and(|only| only != plan) {
            return Some(format!(
                "coupon {} is for plan {} only",
                self.code,
                self.plan.as_ref().map(PlanId::as_str).unwrap_or_default()
            ));
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    pub code: String,
    /// The catalog's currency: a fixed amount's own, and the one every coupon is recorded in.
    pub currency: crate::core::money::Currency,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<PlanId>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<u32>,
}

/// The coupon a subscription redeemed, and how many orders it has discounted so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouponGrant {
    pub coupon_id: i64,
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<PlanId>,
    pub orders_used: u32,
}

impl CouponGrant {
    /// Whether the coupon discounts the next order of a subscription on `plan`.
    pub fn applies_to(&self, plan: &PlanId) -> bool {
        self.duration.applies_after(self.orders_used)
            && self.plan.as_ref().is_none_or(|only| only == plan)
    }
}

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

/// An order about to be written, with its itemized lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrder {
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub cycle: u32,
    pub plan: PlanId,
    pub packs: u32,
    pub quantity: u32,
    pub tax_region: Option<String>,
    pub coupon_code: Option<String>,
    pub lines: Vec<Adjustment>,
    pub total: Money,
    /// The plan price charged per shipment (the lower of catalog and promise).
    pub unit_price: Money,
    pub tax_included: Option<Money>,
    pub tax_included_rate: Option<BasisPoints>,
    /// The region's tax rate, added or included; `None` without a tax region.
    pub tax_rate: Option<BasisPoints>,
    pub scheduled_for: DateTime<Utc>,
    /// The day finance books it on: `scheduled_for` in the shop's finance time zone (UTC until
    /// the engine sets its own, see `Engine::with_billing_time_zone`).
    pub billing_date: NaiveDate,
    /// Who collects its money: the storefront (`None`: the order is `external`) or a
    /// payment provider, which charges it after the order is written.
    pub collection: ProviderKind,
    /// Where it ships: the subscription's address as it is when the order is written, kept
    /// with the order and never changed; `None` for a subscription without an address.
    pub ship_to: Option<Address>,
}

impl NewOrder {
    /// Order numbers are derived from (subscription, cycle): readable, stable, and unique by
    /// the same key the database enforces.
    pub fn number_for(subscription_id: i64, cycle: u32) -> String {
        format!("BB-{subscription_id:07}-{cycle:03}")
    }

    /// How the order's payment starts, written with the order: the storefront's to collect
    /// (`external`) when no provider collects; `paid` at once when there is nothing to
    /// collect; otherwise `pending`, due for the payment worker from `now`.
    pub fn first_payment(&self, now: DateTime<Utc>) -> FirstPayment {
        let (status, next_attempt_at, paid_at) = match (self.collection, self.total.minor()) {
            (ProviderKind::None, _) => (PaymentStatus::External, None, None),
            (_, 0) => (PaymentStatus::Paid, None, Some(now)),
            _ => (PaymentStatus::Pending, Some(now), None),
        };
        FirstPayment {
            status,
            next_attempt_at,
            paid_at,
        }
    }
}

/// A new order's payment as it is first written (see [`NewOrder::first_payment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPayment {
    pub status: PaymentStatus,
    /// When the payment worker should first try to charge it.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub kind: String,
    pub label: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub cycle: u32,
    pub plan: PlanId,
    pub packs: u32,
    pub quantity: u32,
    pub tax_region: Option<String>,
    pub coupon_code: Option<String>,
    pub total: Money,
    pub tax_included: Option<Money>,
    pub scheduled_for: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The rate of the tax its total contains (inclusive regions).
    pub tax_included_rate: Option<BasisPoints>,
    pub lines: Vec<OrderLine>,
    /// Where it ships, as written with the order.
    pub ship_to: Option<Address>,
}

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

/// What changes on a customer: each field when given; `tax_region: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub time_zone: Option<Tz>,
    pub locale: Option<String>,
    pub tax_region: Option<Option<String>>,
    /// The external id and metadata, merged into what is there.
    pub storefront: MetadataUpdate,
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
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

string_enum! {
    /// Who collects an order's money.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    pub enum ProviderKind ("payment provider") {
        /// The storefront collects; subsave records the order as `external`.
        #[default]
        None = "none",
        /// Stripe PaymentIntents, off-session, with the customer's saved payment method.
        Stripe = "stripe",
        /// An in-process stand-in for the demo: the payment method's name says what happens.
        Simulated = "simulated",
    }
}

string_enum! {
    /// Where an order's payment stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PaymentStatus ("payment status") {
        /// Collected by the storefront, not by subsave.
        External = "external",
        /// Waiting for the payment worker (a first try, or a retry of a network failure).
        Pending = "pending",
        Paid = "paid",
        /// The customer must act (3-D Secure); the payment link in their email completes it.
        RequiresAction = "requires_action",
        /// Declined; retried at `next_attempt_at` when one is set, otherwise given up.
        Failed = "failed",
        Refunded = "refunded",
        PartiallyRefunded = "partially_refunded",
    }
}

impl PaymentStatus {
    /// Whether the money was collected (refunds since included).
    pub fn collected(self) -> bool {
        matches!(
            self,
            PaymentStatus::Paid | PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
        )
    }
}

/// An order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub provider: ProviderKind,
    pub status: PaymentStatus,
    pub amount: Money,
    /// The attempt being made, or the last one made.
    pub attempt: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub provider_payment_ref: Option<String>,
    pub decline_code: Option<String>,
    pub last_error: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fee: Option<Money>,
    pub refunded: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// What may still be refunded: the amount less what was refunded.
    pub fn refundable(&self) -> Money {
        Money::from_minor(
            self.amount.minor() - self.refunded.minor(),
            self.amount.currency(),
        )
    }
}

/// The provider's references for a customer: who they are there, and the saved payment method.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PaymentRefs {
    pub customer_ref: Option<String>,
    pub method_ref: Option<String>,
}

/// A refund or correction of an order, as finance books it: the amount, the tax part of it,
/// and lines that sum to the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditNote {
    pub id: i64,
    pub number: String,
    pub order_id: i64,
    pub order_number: String,
    pub amount: Money,
    pub tax: Money,
    pub reason: String,
    pub provider_refund_ref: Option<String>,
    pub actor: String,
    pub billing_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<OrderLine>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            "Ada@Example.COM".parse::<Email>().unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@exa..mple.com",
            "ada@.example.com",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad}");
        }
    }

    #[test]
    fn coupon_durations() {
        let cases = [
            ("once", CouponDuration::Once),
            ("forever", CouponDuration::Forever),
            ("repeating 3", CouponDuration::Repeating(3)),
            ("repeating:3", CouponDuration::Repeating(3)),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<CouponDuration>(), Ok(expected));
        }
        assert!("repeating 0".parse::<CouponDuration>().is_err());
        assert!("sometimes".parse::<CouponDuration>().is_err());
        assert!(CouponDuration::Once.applies_after(0));
        assert!(!CouponDuration::Once.applies_after(1));
        assert!(CouponDuration::Repeating(3).applies_after(2));
        assert!(!CouponDuration::Repeating(3).applies_after(3));
        assert!(CouponDuration::Forever.applies_after(1000));
    }

    /// Every string enum's forms round-trip through `FromStr`, are what serde writes, and
    /// other text is refused naming the kind and every form.
    #[test]
    fn string_forms_agree_with_serde() {
        fn check<T>(all: &[T], what: &str)
        where
            T: Copy
                + PartialEq
                + std::fmt::Debug
                + Serialize
                + FromStr<Err = String>
                + fmt::Display,
        {
            let forms: Vec<String> = all.iter().map(|v| v.to_string()).collect();
            for (value, form) in all.iter().zip(&forms) {
                assert_eq!(
                    serde_json::to_value(value).unwrap(),
                    serde_json::json!(form)
                );
                assert_eq!(form.parse::<T>(), Ok(*value));
            }
            assert_eq!(
                "nope".parse::<T>(),
                Err(format!(
                    "\"nope\" is not a {what}: expected one of {}",
                    forms.join(", ")
                ))
            );
        }
        check(&Status::ALL, "status");
        check(&MessageKind::ALL, "message kind");
        check(&MessageStatus::ALL, "message status");
        check(&ProviderKind::ALL, "payment provider");
        check(&PaymentStatus::ALL, "payment status");
        check(&Scope::ALL, "scope");
        assert_eq!(Status::Cancelled.as_str(), "cancelled");
        assert_eq!(
            PaymentStatus::PartiallyRefunded.as_str(),
            "partially_refunded"
        );
    }

    #[test]
    fn order_numbers_are_readable_and_stable() {
        assert_eq!(NewOrder::number_for(42, 3), "BB-0000042-003");
    }
}

string_enum! {
    /// What an API key may do. Each scope includes the ones before it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Scope ("scope") {
        /// Read anything.
        Read = "read",
        /// Read, and create or change customers, subscriptions and coupons.
        Write = "write",
        /// Everything, including the outbox.
        Admin = "admin",
    }
}

/// An API key as stored: never the key itself, only its SHA-256 and first characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// The key's first characters, to tell keys apart in a list.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub scope: Scope,
    pub key_hash: [u8; 32],
    pub key_prefix: String,
}
