//! The catalog: products, plans, loyalty tiers, the discount cap, shipping, tax regions, the
//! markets (currency and prices by destination) and the countries the shop ships to.
//!
//! Owns turning the catalog's raw TOML shape ([`RawCatalog`]) into validated types, where every
//! price is exact [`Money`], every percentage is [`BasisPoints`] and every interval an
//! [`Interval`]. Past [`Catalog::from_raw`] a catalog is consistent by construction: plans
//! reference existing products, default intervals are allowed intervals, no plan's own discount
//! exceeds the cap, tax regions are ISO 3166 country or subdivision codes, every amount of a
//! market is in its currency and a country is in one market at most (every other country is
//! the default market's: the top-level currency, plan prices and shipping). Reading files is
//! the config module's job; this module does no IO.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::address::{Address, Country, Subdivision};
use crate::core::money::{BasisPoints, Currency, Money};
use crate::core::schedule::Interval;

/// One invalid catalog or config entry: which key, what value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub key: String,
    pub value: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(
        key: impl Into<String>,
        value: impl fmt::Display,
        problem: impl fmt::Display,
    ) -> Self {
        FieldError {
            key: key.into(),
            value: value.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// A plan's identifier, like `3-pack`: 1 to 32 characters of lowercase letters, digits, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PlanId(String);

impl PlanId {
    pub fn parse(input: &str) -> Result<PlanId, String> {
        let valid = (1..=32).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(PlanId(input.to_owned()))
        } else {
            Err(format!(
                "\"{input}\" is not a plan id: expected 1-32 lowercase letters, digits, '-' or '_', like \"3-pack\""
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub days_of_supply_per_pack: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub id: PlanId,
    pub product_sku: String,
    pub packs: u32,
    /// Price of one shipment of this plan before any discount.
    pub list_price: Money,
    pub subscribe_and_save: BasisPoints,
    pub default_interval: Interval,
    pub allowed_intervals: Vec<Interval>,
    /// The plan's name for customers by language (`de` → "3er-Packung"); a language without
    /// one reads the plan's id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, String>,
}

impl Plan {
    pub fn allows(&self, interval: Interval) -> bool {
        self.allowed_intervals.contains(&interval)
    }
}

/// The longest plan name for customers, in characters.
const PLAN_NAME_CHARS: usize = 60;

/// A plan's names by language (`[plans.ID.names]`): each key a language code (2 or 3
/// lowercase letters), each name printable, trimmed, 1 to 60 characters.
fn plan_names(
    id: &str,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FieldError> {
    for (language, name) in &raw {
        let field = format!("plans.{id}.names.{language}");
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(FieldError::new(
                field,
                quoted(language),
                "a name's key is a language code of 2 or 3 lowercase letters, like de",
            ));
        }
        let chars = name.chars().count();
        if name.trim() != name || !(1..=PLAN_NAME_CHARS).contains(&chars) {
            return Err(FieldError::new(
                field,
                quoted(name),
                format!(
                    "a plan's name has 1 to {PLAN_NAME_CHARS} characters, without spaces around it"
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                quoted(name),
                "a plan's name is printable text: remove the control characters",
            ));
        }
    }
    Ok(raw)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoyaltyTier {
    /// The tier applies once a subscription has at least this many orders.
    pub after_orders: u32,
    pub extra_discount: BasisPoints,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shipping {
    pub flat_fee: Money,
    /// Shipping is free when the discounted subtotal reaches this amount.
    pub free_threshold: Option<Money>,
    pub subscriptions_ship_free: bool,
}

/// A destination zone with its own shipping fee and free-shipping threshold (whether
/// subscriptions always ship free is the catalog's, for every zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingZone {
    pub name: String,
    pub countries: Vec<Country>,
    pub shipping: Shipping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaxMode {
    /// Tax is added on top of the price (US sales tax).
    Exclusive,
    /// Prices contain the tax (EU VAT); the contained part is recorded, the total unchanged.
    Inclusive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaxRegion {
    pub code: String,
    pub name: String,
    pub rate: BasisPoints,
    pub mode: TaxMode,
    pub taxes_shipping: bool,
}

/// A market besides the default one: its destination countries pay its currency, its plan
/// prices and its shipping (whether subscriptions always ship free is the catalog's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Market {
    pub name: String,
    pub currency: Currency,
    pub countries: Vec<Country>,
    /// One price per plan of the catalog, in `currency`.
    pub prices: BTreeMap<PlanId, Money>,
    pub shipping: Shipping,
}

/// What a shipment to one destination is priced in: its market's currency, plan prices and
/// shipping. `name` is `None` for the default market (the catalog's top level).
#[derive(Debug, Clone, Copy)]
pub struct MarketTerms<'a> {
    pub name: Option<&'a str>,
    pub currency: Currency,
    market: Option<&'a Market>,
    catalog: &'a Catalog,
    destination: Option<Country>,
}

impl<'a> MarketTerms<'a> {
    /// The price of one shipment of `plan` in this market (loading refuses a market without a
    /// price for every plan, so only the default market's price is the plan's own).
    pub fn price_of(&self, plan: &Plan) -> Money {
        self.market
            .and_then(|m| m.prices.get(&plan.id).copied())
            .unwrap_or(plan.list_price)
    }

    /// The shipping rules here: the market's, or in the default market the destination's
    /// zone, else the catalog's.
    pub fn shipping(&self) -> &'a Shipping {
        match self.market {
            Some(m) => &m.shipping,
            None => self.catalog.default_shipping_to(self.destination),
        }
    }
}

/// The validated catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    pub currency: Currency,
    pub discount_cap: BasisPoints,
    pub products: Vec<Product>,
    /// Ordered by packs per shipment.
    pub plans: Vec<Plan>,
    /// Ordered by `after_orders`, ascending.
    pub loyalty_tiers: Vec<LoyaltyTier>,
    /// Shipping to a country in no zone, and to subscriptions without an address.
    pub shipping: Shipping,
    /// Shipping by destination: a zone's fee and threshold for its countries.
    pub shipping_zones: Vec<ShippingZone>,
    pub tax_regions: BTreeMap<String, TaxRegion>,
    /// The countries the shop ships to: the catalog's `ships_to`, or else the countries of
    /// its tax regions and shipping zones.
    pub ships_to: Vec<Country>,
    /// The bounds every door enforces (the pages' forms show the same ones).
    pub limits: Limits,
    /// Markets besides the default one (the top-level currency, prices and shipping), by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub markets: Vec<Market>,
}

/// How much one shipment may hold and how far ahead a date may be set: one place for the
/// bounds the CLI, the API and the customer pages all enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// The most units of a plan in one shipment.
    pub max_quantity: u32,
    /// How far ahead of now a renewal may be moved or a pause may end, in days.
    pub horizon_days: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_quantity: 20,
            horizon_days: 730,
        }
    }
}

impl Catalog {
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id.as_str() == id)
    }

    /// The name of the product a plan ships, for emails.
    pub fn product_name(&self, plan: &PlanId) -> Option<String> {
        self.plan(plan.as_str())
            .and_then(|p| self.product(&p.product_sku))
            .map(|p| p.name.clone())
    }

    pub fn product(&self, sku: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.sku == sku)
    }

    pub fn tax_region(&self, code: &str) -> Option<&TaxRegion> {
        self.tax_regions.get(code)
    }

    /// The tax region `code`, or an error naming it and the regions there are.
    pub fn require_tax_region(&self, code: &str) -> Result<&TaxRegion, String> {
        self.tax_region(code).ok_or_else(|| {
            let known: Vec<&str> = self.tax_regions.keys().map(String::as_str).collect();
            format!(
                "\"{code}\": no such tax region; the catalog's regions are: {}",
                known.join(", ")
            )
        })
    }

    /// Why the shop cannot ship to `country`, naming the countries it ships to; `None` when
    /// it can.
    pub fn refuse_destination(&self, country: Country) -> Option<String> {
        (!self.ships_to.contains(&country)).then(|| {
            let list: Vec<&str> = self.ships_to.iter().map(|c| c.code()).collect();
            format!(
                " {country}: the shop does not ship to {}; it ships to {}",
                country.name(),
                list.join(", ")
            )
        })
    }

    /// The market a shipment to `country` is priced in: the one listing that country, else
    /// the default market (also for a subscription without an address).
    pub fn market_for(&self, country: Option<Country>) -> MarketTerms<'_> {
        let market = country.and_then(|c| self.markets.iter().find(|m| m.countries.contains(&c)));
        MarketTerms {
            name: market.map(|m| m.name.as_str()),
            currency: market.map_or(self.currency, |m| m.currency),
            market,
            catalog: self,
            destination: country,
        }
    }

    /// The currencies the catalog prices in: the default market's first, then the markets'.
    pub fn currencies(&self) -> Vec<Currency> {
        let mut all = vec![self.currency];
        for market in &self.markets {
            if !all.contains(&market.currency) {
                all.push(market.currency);
            }
        }
        all
    }

    /// The currency `code` names when the catalog prices in it, or why not (naming those it
    /// does).
    pub fn priced_currency(&self, code: &str) -> Result<Currency, String> {
        let known = || {
            self.currencies()
                .iter()
                .map(|c| c.code())
                .collect::<Vec<_>>()
                .join(", ")
        };
        code.trim()
            .to_ascii_uppercase()
            .parse::<Currency>()
            .ok()
            .filter(|c| self.currencies().contains(c))
            .ok_or_else(|| {
                format!(
                    " \"{code}\": the catalog prices in {}; give one of them",
                    known()
                )
            })
    }

    /// The shipping rules for a shipment to `country`: its market's, else its zone's, else
    /// the catalog's.
    pub fn shipping_to(&self, country: Option<Country>) -> &Shipping {
        self.market_for(country).shipping()
    }

    /// The default market's shipping to `country`: its zone's, else the catalog's.
    fn default_shipping_to(&self, country: Option<Country>) -> &Shipping {
        country
            .and_then(|c| {
                self.shipping_zones
                    .iter()
                    .find(|z| z.countries.contains(&c))
            })
            .map_or(&self.shipping, |z| &z.shipping)
    }

    /// The tax region of a shipment to `address`: its subdivision's (`US-CA`) when the catalog
    /// has one, else its country's (`DE`), else none (no tax is charged there).
    pub fn tax_region_for(&self, address: &Address) -> Option<&TaxRegion> {
        address
            .subdivision
            .and_then(|s| self.tax_region(s.code()))
            .or_else(|| self.tax_region(address.country.code()))
    }

    /// The highest loyalty tier reached with `orders_so_far` orders.
    pub fn loyalty_tier(&self, orders_so_far: u32) -> Option<&LoyaltyTier> {
        self.loyalty_tiers
            .iter()
            .rev()
            .find(|t| orders_so_far >= t.after_orders)
    }

    /// The plans' ids, in catalog order.
    pub fn plan_id_list(&self) -> Vec<&str> {
        self.plans.iter().map(|p| p.id.as_str()).collect()
    }

    /// The plans' ids for a message: "1-pack, 2-pack, 3-pack, 6-pack".
    pub fn plan_ids(&self) -> String {
        self.plan_id_list().join(", ")
    }

    /// Validates the raw TOML shape into a catalog, reporting the first bad entry by key. Each
    /// section is checked in this order, so which error comes first does not depend on how
    /// the steps are split.
    pub fn from_raw(raw: RawCatalog) -> Result<Catalog, FieldError> {
        let currency: Currency = raw
            .currency
            .parse()
            .map_err(|e| FieldError::new("currency", quoted(&raw.currency), e))?;
        let discount_cap = parse_percent("discount_cap".into(), &raw.discount_cap)?;
        let products = parse_products(raw.products)?;
        let plans = parse_plans(raw.plans, &products, currency, discount_cap)?;
        let loyalty_tiers = parse_loyalty_tiers(&raw.loyalty_tiers)?;
        let shipping = parse_shipping(
            "shipping",
            &raw.shipping.flat_fee,
            raw.shipping.free_threshold.as_deref(),
            raw.shipping.subscriptions_ship_free,
            currency,
        )?;
        let shipping_zones = parse_shipping_zones(&raw.shipping_zones, &shipping, currency)?;
        let (tax_regions, region_countries) = parse_tax_regions(raw.tax_regions)?;
        let markets = parse_markets(&raw.markets, &plans, &shipping_zones, &shipping)?;
        let ships_to = parse_ships_to(
            raw.ships_to.as_deref(),
            region_countries,
            &shipping_zones,
            &markets,
        )?;
        let limits = parse_limits(&raw.limits)?;
        Ok(Catalog {
            currency,
            discount_cap,
            products,
            plans,
            loyalty_tiers,
            shipping,
            shipping_zones,
            tax_regions,
            ships_to,
            limits,
            markets,
        })
    }
}

fn parse_money(key: String, text: &str, currency: Currency) -> Result<Money, FieldError> {
    Money::parse(text, currency).map_err(|e| FieldError::new(key, quoted(text), e))
}

fn parse_percent(key: String, text: &str) -> Result<BasisPoints, FieldError> {
    BasisPoints::parse_percent(text).map_err(|e| FieldError::new(key, quoted(text), e))
}

fn parse_interval(key: String, text: &str) -> Result<Interval, FieldError> {
    text.parse::<Interval>()
        .map_err(|e| FieldError::new(key, quoted(text), e))
}

/// `[products.SKU]`: at least one, each pack lasting at least a day.
fn parse_products(raw: BTreeMap<String, RawProduct>) -> Result<Vec<Product>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "products",
            "{}",
            "the catalog needs at least one product",
        ));
    }
    let mut products = Vec::new();
    for (sku, p) in raw {
        if p.days_of_supply_per_pack == 0 {
            return Err(FieldError::new(
                format!("products.{sku}.days_of_supply_per_pack"),
                0,
                "a pack lasts at least one day",
            ));
        }
        products.push(Product {
            sku,
            name: p.name,
            days_of_supply_per_pack: p.days_of_supply_per_pack,
        });
    }
    Ok(products)
}

/// `[plans.ID]`: at least one, sorted by packs then id.
fn parse_plans(
    raw: BTreeMap<String, RawPlan>,
    products: &[Product],
    currency: Currency,
    discount_cap: BasisPoints,
) -> Result<Vec<Plan>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "plans",
            "{}",
            "the catalog needs at least one plan",
        ));
    }
    let mut plans = Vec::new();
    for (id, p) in raw {
        plans.push(parse_plan(id, p, products, currency, discount_cap)?);
    }
    plans.sort_by(|a, b| (a.packs, &a.id).cmp(&(b.packs, &b.id)));
    Ok(plans)
}

/// One plan: its product, packs, a price above zero, a subscribe-and-save discount within the
/// cap, and its intervals (the default one, from the packs' days of supply when not given,
/// always among the allowed ones).
fn parse_plan(
    id: String,
    p: RawPlan,
    products: &[Product],
    currency: Currency,
    discount_cap: BasisPoints,
) -> Result<Plan, FieldError> {
    let key = |field: &str| format!("plans.{id}.{field}");
    let plan_id =
        PlanId::parse(&id).map_err(|e| FieldError::new(format!("plans.{id}"), quoted(&id), e))?;
    let product = products
        .iter()
        .find(|x| x.sku == p.product)
        .ok_or_else(|| {
            FieldError::new(
                key("product"),
                quoted(&p.product),
                format!(
                    "no such product; the catalog's products are: {}",
                    skus(products)
                ),
            )
        })?;
    if p.packs == 0 {
        return Err(FieldError::new(
            key("packs"),
            0,
            "a plan ships at least one pack",
        ));
    }
    let list_price = parse_money(key("price"), &p.price, currency)?;
    if list_price.minor() <= 0 {
        return Err(FieldError::new(
            key("price"),
            quoted(&p.price),
            "a price must be above zero",
        ));
    }
    let subscribe_and_save = parse_percent(key("subscribe_and_save"), &p.subscribe_and_save)?;
    if subscribe_and_save > discount_cap {
        return Err(FieldError::new(
            key("subscribe_and_save"),
            quoted(&p.subscribe_and_save),
            format!("exceeds the catalog's discount_cap of {discount_cap}"),
        ));
    }
    let mut allowed_intervals = Vec::new();
    for (i, text) in p.allowed_intervals.iter().enumerate() {
        allowed_intervals.push(parse_interval(
            format!("{}[{i}]", key("allowed_intervals")),
            text,
        )?);
    }
    let default_interval = match &p.default_interval {
        Some(text) => parse_interval(key("default_interval"), text)?,
        None => Interval::days(p.packs * product.days_of_supply_per_pack).ok_or_else(|| {
            FieldError::new(
                key("packs"),
                p.packs,
                "packs × days of supply is not a valid interval",
            )
        })?,
    };
    if !allowed_intervals.contains(&default_interval) {
        allowed_intervals.insert(0, default_interval);
    }
    let names = plan_names(&id, p.names)?;
    Ok(Plan {
        id: plan_id,
        product_sku: product.sku.clone(),
        packs: p.packs,
        list_price,
        subscribe_and_save,
        default_interval,
        allowed_intervals,
        names,
    })
}

/// `[[loyalty_tiers]]`, sorted by the order count each starts at (no two at the same one).
fn parse_loyalty_tiers(raw: &[RawLoyaltyTier]) -> Result<Vec<LoyaltyTier>, FieldError> {
    let mut loyalty_tiers = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let extra_discount = parse_percent(
            format!("loyalty_tiers[{i}].extra_discount"),
            &t.extra_discount,
        )?;
        loyalty_tiers.push(LoyaltyTier {
            after_orders: t.after_orders,
            extra_discount,
        });
    }
    loyalty_tiers.sort_by_key(|t| t.after_orders);
    if let Some(pair) = loyalty_tiers
        .windows(2)
        .find(|w| w[0].after_orders == w[1].after_orders)
    {
        return Err(FieldError::new(
            "loyalty_tiers",
            pair[0].after_orders,
            "two tiers start at the same order count",
        ));
    }
    Ok(loyalty_tiers)
}

/// `[shipping_zones.NAME]`: each country in one zone at most; amounts in the catalog's
/// currency, shipping free for subscriptions as the default shipping says.
fn parse_shipping_zones(
    raw: &BTreeMap<String, RawShippingZone>,
    shipping: &Shipping,
    currency: Currency,
) -> Result<Vec<ShippingZone>, FieldError> {
    let mut shipping_zones: Vec<ShippingZone> = Vec::new();
    for (name, zone) in raw {
        let key = format!("shipping_zones.{name}");
        let mut countries = Vec::new();
        for (i, code) in zone.countries.iter().enumerate() {
            let country = Country::parse(code).map_err(|e| {
                FieldError::new(format!("{key}.countries[{i}]"), quoted(code), e.trim())
            })?;
            if let Some(other) = shipping_zones
                .iter()
                .find(|z| z.countries.contains(&country))
            {
                return Err(FieldError::new(
                    format!("{key}.countries[{i}]"),
                    quoted(code),
                    format!(
                        "already in zone {}; a country ships by one zone",
                        other.name
                    ),
                ));
            }
            countries.push(country);
        }
        shipping_zones.push(ShippingZone {
            name: name.clone(),
            countries,
            shipping: parse_shipping(
                &key,
                &zone.flat_fee,
                zone.free_threshold.as_deref(),
                shipping.subscriptions_ship_free,
                currency,
            )?,
        });
    }
    Ok(shipping_zones)
}

/// `[tax_regions.CODE]` by code, and each region's country (where the shop ships when
/// `ships_to` is not given).
fn parse_tax_regions(
    raw: BTreeMap<String, RawTaxRegion>,
) -> Result<(BTreeMap<String, TaxRegion>, Vec<Country>), FieldError> {
    let mut tax_regions = BTreeMap::new();
    let mut region_countries = Vec::new();
    for (code, r) in raw {
        // A region is where goods go: a country (`DE`) or a subdivision (`US-CA`), so
        // that a ship-to address finds it.
        let country = match Subdivision::parse_code(&code) {
            Some(s) if s.code() == code => Country::parse(&code[..2]).ok(),
            _ if code.len() == 2 => Country::parse(&code).ok().filter(|c| c.code() == code),
            _ => None,
        }
        .ok_or_else(|| {
            FieldError::new(
                format!("tax_regions.{code}"),
                quoted(&code),
                "a tax region is an ISO 3166 country (DE) or subdivision (US-CA) code, upper-case",
            )
        })?;
        region_countries.push(country);
        let rate = parse_percent(format!("tax_regions.{code}.rate"), &r.rate)?;
        tax_regions.insert(
            code.clone(),
            TaxRegion {
                code,
                name: r.name,
                rate,
                mode: r.mode,
                taxes_shipping: r.taxes_shipping,
            },
        );
    }
    Ok((tax_regions, region_countries))
}

/// `ships_to`, or where the tax regions, shipping zones and markets are; sorted, each once,
/// and holding every market's countries.
fn parse_ships_to(
    raw: Option<&[String]>,
    region_countries: Vec<Country>,
    shipping_zones: &[ShippingZone],
    markets: &[Market],
) -> Result<Vec<Country>, FieldError> {
    let mut ships_to = match raw {
        Some(codes) => codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                Country::parse(code)
                    .map_err(|e| FieldError::new(format!("ships_to[{i}]"), quoted(code), e.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => region_countries
            .into_iter()
            .chain(
                shipping_zones
                    .iter()
                    .flat_map(|z| z.countries.iter().copied()),
            )
            .chain(markets.iter().flat_map(|m| m.countries.iter().copied()))
            .collect(),
    };
    ships_to.sort();
    ships_to.dedup();
    for market in markets {
        if let Some((i, country)) = market
            .countries
            .iter()
            .enumerate()
            .find(|(_, c)| !ships_to.contains(c))
        {
            return Err(FieldError::new(
                format!("markets.{}.countries[{i}]", market.name),
                quoted(country.code()),
                "the shop does not ship there (it is not in ships_to); add it to ships_to or remove it from this market",
            ));
        }
    }
    Ok(ships_to)
}

/// `[limits]`, each within its bounds, the defaults where absent.
fn parse_limits(raw: &RawLimits) -> Result<Limits, FieldError> {
    let defaults = Limits::default();
    let max_quantity = raw.max_quantity.unwrap_or(defaults.max_quantity);
    if !(1..=1000).contains(&max_quantity) {
        return Err(FieldError::new(
            "limits.max_quantity",
            max_quantity.to_string(),
            "expected 1 to 1000 units per shipment",
        ));
    }
    let horizon_days = raw.horizon_days.unwrap_or(defaults.horizon_days);
    if !(1..=3660).contains(&horizon_days) {
        return Err(FieldError::new(
            "limits.horizon_days",
            horizon_days.to_string(),
            "expected 1 to 3660 days",
        ));
    }
    Ok(Limits {
        max_quantity,
        horizon_days,
    })
}

/// A fee and an optional free-shipping threshold, both exact and not negative, under `key`.
fn parse_shipping(
    key: &str,
    flat_fee: &str,
    free_threshold: Option<&str>,
    subscriptions_ship_free: bool,
    currency: Currency,
) -> Result<Shipping, FieldError> {
    let money = |field: &str, text: &str| {
        let key = format!("{key}.{field}");
        let amount =
            Money::parse(text, currency).map_err(|e| FieldError::new(&key, quoted(text), e))?;
        if amount.minor() < 0 {
            let why = if field == "flat_fee" {
                "a fee cannot be negative"
            } else {
                "a threshold cannot be negative (every order would ship free); leave it out for no free shipping"
            };
            return Err(FieldError::new(key, quoted(text), why));
        }
        Ok(amount)
    };
    Ok(Shipping {
        flat_fee: money("flat_fee", flat_fee)?,
        free_threshold: free_threshold
            .map(|t| money("free_threshold", t))
            .transpose()?,
        subscriptions_ship_free,
    })
}

/// The catalog's `[markets.NAME]` tables: each one's currency, countries (each in one market
/// at most, and in no shipping zone, whose amounts are the default market's), a price for every
/// plan and its shipping, all in its currency.
fn parse_markets(
    raw: &BTreeMap<String, RawMarket>,
    plans: &[Plan],
    shipping_zones: &[ShippingZone],
    shipping: &Shipping,
) -> Result<Vec<Market>, FieldError> {
    let mut markets: Vec<Market> = Vec::new();
    for (name, m) in raw {
        let key = |field: &str| format!("markets.{name}.{field}");
        let currency: Currency = m
            .currency
            .parse()
            .map_err(|e| FieldError::new(key("currency"), quoted(&m.currency), e))?;
        let countries = parse_market_countries(name, &m.countries, &markets, shipping_zones)?;
        let prices = parse_market_prices(name, &m.prices, plans, currency)?;
        let market_shipping = parse_shipping(
            &key("shipping"),
            &m.shipping.flat_fee,
            m.shipping.free_threshold.as_deref(),
            shipping.subscriptions_ship_free,
            currency,
        )?;
        markets.push(Market {
            name: name.clone(),
            currency,
            countries,
            prices,
            shipping: market_shipping,
        });
    }
    Ok(markets)
}

/// `markets.NAME.countries`: at least one, none in an earlier market or in a shipping zone.
fn parse_market_countries(
    name: &str,
    codes: &[String],
    earlier: &[Market],
    shipping_zones: &[ShippingZone],
) -> Result<Vec<Country>, FieldError> {
    if codes.is_empty() {
        return Err(FieldError::new(
            format!("markets.{name}.countries"),
            "[]",
            "a market needs at least one country (ISO 3166-1 alpha-2, like \"DE\"); remove the market if no country pays in it",
        ));
    }
    let mut countries = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let field = format!("markets.{name}.countries[{i}]");
        let country =
            Country::parse(code).map_err(|e| FieldError::new(&field, quoted(code), e.trim()))?;
        if let Some(other) = earlier.iter().find(|o| o.countries.contains(&country)) {
            return Err(FieldError::new(
                field,
                quoted(code),
                format!(
                    "already in market {}; a country is in one market, remove it from one of them",
                    other.name
                ),
            ));
        }
        if let Some(zone) = shipping_zones
            .iter()
            .find(|z| z.countries.contains(&country))
        {
            return Err(FieldError::new(
                field,
                quoted(code),
                format!(
                    "also in shipping_zones.{}, whose amounts are the default market's; remove it from that zone (this market's [markets.{name}.shipping] ships there)",
                    zone.name
                ),
            ));
        }
        countries.push(country);
    }
    Ok(countries)
}

/// `[markets.NAME.prices]`: a price above zero in the market's currency for every plan, and
/// for no other.
fn parse_market_prices(
    name: &str,
    raw: &BTreeMap<String, ExactText>,
    plans: &[Plan],
    currency: Currency,
) -> Result<BTreeMap<PlanId, Money>, FieldError> {
    let mut prices = BTreeMap::new();
    for (id, text) in raw {
        let field = format!("markets.{name}.prices.{id}");
        let Some(plan) = plans.iter().find(|p| p.id.as_str() == id) else {
            return Err(FieldError::new(
                field,
                quoted(id),
                format!(
                    "no such plan; the catalog's plans are: {}",
                    plans
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let price = parse_money(field.clone(), text, currency)?;
        if price.minor() <= 0 {
            return Err(FieldError::new(
                field,
                quoted(text),
                "a price must be above zero",
            ));
        }
        prices.insert(plan.id.clone(), price);
    }
    if let Some(missing) = plans.iter().find(|p| !prices.contains_key(&p.id)) {
        return Err(FieldError::new(
            format!("markets.{name}.prices"),
            missing.id.as_str(),
            format!(
                "no price for plan {0} in {currency}; add {0} = \"…\" to [markets.{name}.prices]",
                missing.id
            ),
        ));
    }
    Ok(prices)
}

fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

fn skus(products: &[Product]) -> String {
    products
        .iter()
        .map(|p| p.sku.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The catalog file's shape, as written in `config/catalog.toml`. Amounts and percentages are
/// strings so that they parse exactly; unknown keys are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    pub currency: String,
    pub discount_cap: ExactText,
    pub products: BTreeMap<String, RawProduct>,
    pub plans: BTreeMap<String, RawPlan>,
    #[serde(default)]
    pub loyalty_tiers: Vec<RawLoyaltyTier>,
    pub shipping: RawShipping,
    #[serde(default)]
    pub shipping_zones: BTreeMap<String, RawShippingZone>,
    #[serde(default)]
    pub tax_regions: BTreeMap<String, RawTaxRegion>,
    /// ISO 3166-1 alpha-2 codes; absent: the countries of the tax regions.
    pub ships_to: Option<Vec<String>>,
    #[serde(default)]
    pub limits: RawLimits,
    /// Markets besides the default one, by name.
    #[serde(default)]
    pub markets: BTreeMap<String, RawMarket>,
}

/// `[markets.NAME]`: a currency, the countries that pay in it, a price per plan and shipping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMarket {
    pub currency: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Plan id to the price of one shipment, in the market's currency.
    pub prices: BTreeMap<String, ExactText>,
    pub shipping: RawMarketShipping,
}

/// A market's shipping fee and free-shipping threshold, in its currency.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMarketShipping {
    pub flat_fee: ExactText,
    pub free_threshold: Option<ExactText>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_quantity: Option<u32>,
    pub horizon_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProduct {
    pub name: String,
    pub days_of_supply_per_pack: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub product: String,
    pub packs: u32,
    pub price: ExactText,
    pub subscribe_and_save: ExactText,
    pub default_interval: Option<String>,
    #[serde(default)]
    pub allowed_intervals: Vec<String>,
    /// The plan's names for customers by language: `[plans.3-pack.names] de = "3er-Packung"`.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoyaltyTier {
    pub after_orders: u32,
    pub extra_discount: ExactText,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShipping {
    pub flat_fee: ExactText,
    pub free_threshold: Option<ExactText>,
    #[serde(default)]
    pub subscriptions_ship_free: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShippingZone {
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    pub flat_fee: ExactText,
    pub free_threshold: Option<ExactText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTaxRegion {
    pub name: String,
    pub rate: ExactText,
    pub mode: TaxMode,
    #[serde(default = "yes")]
    pub taxes_shipping: bool,
}

fn yes() -> bool {
    true
}

/// A money amount or percentage as written: a quoted string. An unquoted `49.99` is a TOML
/// float, already inexact, so it is refused with a message that says to quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactText(String);

impl std::ops::Deref for ExactText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ExactText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ExactText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quoted exact value like \"49.99\" or \"15%\" (unquoted numbers are floats, which are not exact)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExactText, E> {
                Ok(ExactText(v.to_owned()))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::money::Currency;

    pub(crate) fn raw_catalog() -> RawCatalog {
        let mut products = BTreeMap::new();
        products.insert(
            "BBP-30".to_owned(),
            RawProduct {
                name: "Black Bala Probiotics".into(),
                days_of_supply_per_pack: 30,
            },
        );
        let mut plans = BTreeMap::new();
        plans.insert(
            "3-pack".to_owned(),
            RawPlan {
                product: "BBP-30".into(),
                packs: 3,
                price: ExactText("134.99".into()),
                subscribe_and_save: ExactText("15%".into()),
                default_interval: None,
                allowed_intervals: vec!["60 days".into()],
                names: BTreeMap::new(),
            },
        );
        RawCatalog {
            currency: "USD".into(),
            discount_cap: ExactText("35%".into()),
            products,
            plans,
            loyalty_tiers: vec![],
            shipping: RawShipping {
                flat_fee: ExactText("5.95".into()),
                free_threshold: None,
                subscriptions_ship_free: false,
            },
            shipping_zones: BTreeMap::new(),
            tax_regions: BTreeMap::new(),
            ships_to: None,
            limits: RawLimits::default(),
            markets: BTreeMap::new(),
        }
    }

    #[test]
    fn plan_names_are_bounded_printable_text_by_language() {
        let with_names = |names: &[(&str, &str)]| {
            let mut raw = raw_catalog();
            let plan = raw.plans.values_mut().next().unwrap();
            plan.names = names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Catalog::from_raw(raw)
        };
        let catalog = with_names(&[("de", "3er-Packung")]).unwrap();
        assert_eq!(catalog.plans[0].names["de"], "3er-Packung");
        assert!(with_names(&[]).unwrap().plans[0].names.is_empty());
        let long = "x".repeat(61);
        for (names, field) in [
            (&[("DE", "3er")][..], "names.DE"),
            (&[("deutsch", "3er")][..], "names.deutsch"),
            (&[("de", "")][..], "names.de"),
            (&[("de", " 3er")][..], "names.de"),
            (&[("de", "3er\u{7}")][..], "names.de"),
            (&[("de", long.as_str())][..], "names.de"),
        ] {
            let error = with_names(names).unwrap_err();
            assert!(error.key.ends_with(field), "{names:?}: {error:?}");
        }
    }

    #[test]
    fn default_interval_is_packs_times_days_of_supply() {
        let catalog = Catalog::from_raw(raw_catalog()).unwrap();
        let plan = catalog.plan("3-pack").unwrap();
        assert_eq!(plan.default_interval, Interval::days(90).unwrap());
        assert_eq!(
            plan.allowed_intervals,
            [Interval::days(90).unwrap(), Interval::days(60).unwrap()]
        );
        assert_eq!(plan.list_price, Money::from_minor(13499, Currency::Usd));
    }

    fn region(rate: &str) -> RawTaxRegion {
        RawTaxRegion {
            name: "tax".into(),
            rate: ExactText(rate.into()),
            mode: TaxMode::Exclusive,
            taxes_shipping: true,
        }
    }

    #[test]
    fn the_shop_ships_to_its_tax_regions_countries_unless_it_lists_them() {
        let mut raw = raw_catalog();
        raw.tax_regions.insert("US-CA".into(), region("7.25%"));
        raw.tax_regions.insert("DE".into(), region("19%"));
        raw.tax_regions.insert("US-NY".into(), region("4%"));
        let catalog = Catalog::from_raw(raw).unwrap();
        let codes: Vec<&str> = catalog.ships_to.iter().map(|c| c.code()).collect();
        assert_eq!(codes, ["DE", "US"]);
        let gb = Country::parse("GB").unwrap();
        assert_eq!(
            catalog.refuse_destination(gb).as_deref(),
            Some(
                " GB: the shop does not ship to United Kingdom of Great Britain and Northern Ireland; it ships to DE, US"
            )
        );
        assert_eq!(
            catalog.refuse_destination(Country::parse("DE").unwrap()),
            None
        );

        let mut raw = raw_catalog();
        raw.ships_to = Some(vec!["fr".into(), "US".into()]);
        let catalog = Catalog::from_raw(raw).unwrap();
        let codes: Vec<&str> = catalog.ships_to.iter().map(|c| c.code()).collect();
        assert_eq!(codes, ["FR", "US"]);
    }

    #[test]
    fn shipping_follows_the_destination_zone() {
        let mut raw = raw_catalog();
        raw.tax_regions.insert("US-CA".into(), region("7.25%"));
        raw.shipping_zones.insert(
            "EU".into(),
            RawShippingZone {
                countries: vec!["DE".into(), "fr".into()],
                flat_fee: ExactText("7.95".into()),
                free_threshold: Some(ExactText("90.00".into())),
            },
        );
        let catalog = Catalog::from_raw(raw).unwrap();
        let de = Country::parse("DE").ok();
        let eu = catalog.shipping_to(de);
        assert_eq!(
            (eu.flat_fee.minor(), eu.free_threshold.map(|t| t.minor())),
            (795, Some(9000))
        );
        let us = catalog.shipping_to(Country::parse("US").ok());
        assert_eq!(us, &catalog.shipping);
        assert_eq!(catalog.shipping_to(None), &catalog.shipping);
        let codes: Vec<&str> = catalog.ships_to.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            ["DE", "FR", "US"],
            "the zones' countries are shipped to"
        );

        let mut twice = raw_catalog();
        for (name, fee) in [("EU", "7.95"), ("DACH", "5.95")] {
            twice.shipping_zones.insert(
                name.into(),
                RawShippingZone {
                    countries: vec!["DE".into()],
                    flat_fee: ExactText(fee.into()),
                    free_threshold: None,
                },
            );
        }
        let error = Catalog::from_raw(twice).unwrap_err();
        assert_eq!(
            error.key, "shipping_zones.EU.countries[0]",
            "{}",
            error.problem
        );
        assert!(
            error.problem.contains("already in zone DACH"),
            "{}",
            error.problem
        );
    }

    /// A EUR market for Germany and France, with a price for the one plan.
    fn eu_market() -> RawMarket {
        RawMarket {
            currency: "EUR".into(),
            countries: vec!["DE".into(), "FR".into()],
            prices: BTreeMap::from([("3-pack".to_owned(), ExactText("123.99".into()))]),
            shipping: RawMarketShipping {
                flat_fee: ExactText("6.95".into()),
                free_threshold: Some(ExactText("80.00".into())),
            },
        }
    }

    #[test]
    fn the_ship_to_country_picks_the_market() {
        let mut raw = raw_catalog();
        raw.tax_regions.insert("US-CA".into(), region("7.25%"));
        raw.markets.insert("EU".into(), eu_market());
        let catalog = Catalog::from_raw(raw).unwrap();
        let plan = catalog.plan("3-pack").unwrap();
        let cases = [
            (
                Some("DE"),
                Some("EU"),
                Money::from_minor(12399, Currency::Eur),
                695,
            ),
            (
                Some("FR"),
                Some("EU"),
                Money::from_minor(12399, Currency::Eur),
                695,
            ),
            (
                Some("US"),
                None,
                Money::from_minor(13499, Currency::Usd),
                595,
            ),
            (None, None, Money::from_minor(13499, Currency::Usd), 595),
        ];
        for (country, name, price, fee) in cases {
            let market = catalog.market_for(country.map(|c| Country::parse(c).unwrap()));
            assert_eq!(
                (market.name, market.currency, market.price_of(plan)),
                (name, price.currency(), price),
                "{country:?}"
            );
            assert_eq!(market.shipping().flat_fee.minor(), fee, "{country:?}");
            assert_eq!(market.shipping().flat_fee.currency(), price.currency());
        }
        let codes: Vec<&str> = catalog.ships_to.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            ["DE", "FR", "US"],
            "a market's countries are shipped to"
        );
    }

    fn market(c: &mut RawCatalog) -> &mut RawMarket {
        c.markets.get_mut("EU").expect("the EU market")
    }

    fn set_eu_price(c: &mut RawCatalog, plan: &str, price: &str) {
        market(c)
            .prices
            .insert(plan.into(), ExactText(price.into()));
    }

    /// Asserts that `raw` is refused at `key` for `value`; the problem it names.
    fn refusal(raw: RawCatalog, key: &str, value: &str) -> String {
        let err = Catalog::from_raw(raw).unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.value.as_str()),
            (key, value),
            "{}",
            err.problem
        );
        err.problem
    }

    #[test]
    fn market_errors_name_the_key_and_the_fix() {
        type Breakage = Box<dyn Fn(&mut RawCatalog)>;
        let cases: Vec<(Breakage, &str, &str, &str)> = vec![
            (
                Box::new(|c| market(c).currency = "EURO".into()),
                "markets.EU.currency",
                "\"EURO\"",
                "currency",
            ),
            (
                Box::new(|c| market(c).countries = vec![]),
                "markets.EU.countries",
                "[]",
                "at least one country",
            ),
            (
                Box::new(|c| market(c).countries.push("Atlantis".into())),
                "markets.EU.countries[2]",
                "\"Atlantis\"",
                "",
            ),
            (
                Box::new(|c| {
                    let mut dach = eu_market();
                    dach.countries = vec!["AT".into(), "DE".into()];
                    c.markets.insert("DACH".into(), dach);
                }),
                "markets.EU.countries[0]",
                "\"DE\"",
                "already in market DACH",
            ),
            (
                Box::new(|c| {
                    c.shipping_zones.insert(
                        "EU".into(),
                        RawShippingZone {
                            countries: vec!["FR".into()],
                            flat_fee: ExactText("7.95".into()),
                            free_threshold: None,
                        },
                    );
                }),
                "markets.EU.countries[1]",
                "\"FR\"",
                "remove it from that zone",
            ),
            (
                Box::new(|c| c.ships_to = Some(vec!["US".into(), "DE".into()])),
                "markets.EU.countries[1]",
                "\"FR\"",
                "add it to ships_to",
            ),
            (
                Box::new(|c| {
                    market(c).prices.clear();
                }),
                "markets.EU.prices",
                "3-pack",
                "add 3-pack = \"…\" to [markets.EU.prices]",
            ),
            (
                Box::new(|c| set_eu_price(c, "12-pack", "9.99")),
                "markets.EU.prices.12-pack",
                "\"12-pack\"",
                "no such plan",
            ),
            (
                Box::new(|c| set_eu_price(c, "3-pack", "123.999")),
                "markets.EU.prices.3-pack",
                "\"123.999\"",
                "",
            ),
            (
                Box::new(|c| {
                    market(c).currency = "JPY".into();
                }),
                "markets.EU.prices.3-pack",
                "\"123.99\"",
                "",
            ),
            (
                Box::new(|c| market(c).shipping.flat_fee = ExactText("-1.00".into())),
                "markets.EU.shipping.flat_fee",
                "\"-1.00\"",
                "cannot be negative",
            ),
            (
                Box::new(|c| market(c).shipping.free_threshold = Some(ExactText("80.001".into()))),
                "markets.EU.shipping.free_threshold",
                "\"80.001\"",
                "",
            ),
        ];
        for (break_it, key, value, problem) in cases {
            let mut raw = raw_catalog();
            raw.markets.insert("EU".into(), eu_market());
            break_it(&mut raw);
            let refused = refusal(raw, key, value);
            assert!(
                !refused.is_empty() && refused.contains(problem),
                "{key}: {refused}"
            );
        }
    }

    #[test]
    fn an_address_is_taxed_by_its_subdivision_then_its_country() {
        let mut raw = raw_catalog();
        raw.tax_regions.insert("US-CA".into(), region("7.25%"));
        raw.tax_regions.insert("DE".into(), region("19%"));
        let catalog = Catalog::from_raw(raw).unwrap();
        let address = |country: &str, subdivision: Option<&str>, postal: &str| {
            Address::parse(&crate::core::address::RawAddress {
                name: "A".into(),
                line1: "1 Main St".into(),
                city: "Town".into(),
                country: country.into(),
                subdivision: subdivision.map(str::to_owned),
                postal_code: Some(postal.into()),
                ..Default::default()
            })
            .unwrap()
        };
        let code = |a: &Address| catalog.tax_region_for(a).map(|r| r.code.clone());
        assert_eq!(
            code(&address("US", Some("CA"), "94105")).as_deref(),
            Some("US-CA")
        );
        assert_eq!(code(&address("US", Some("WA"), "98101")), None);
        assert_eq!(
            code(&address("DE", Some("BY"), "80331")).as_deref(),
            Some("DE")
        );
        assert_eq!(code(&address("DE", None, "10115")).as_deref(), Some("DE"));
    }

    #[test]
    fn errors_name_key_and_value() {
        type Breakage = Box<dyn Fn(&mut RawCatalog)>;
        let cases: Vec<(Breakage, &str, &str)> = vec![
            (
                Box::new(|c| c.plans.get_mut("3-pack").unwrap().price = ExactText("4.999".into())),
                "plans.3-pack.price",
                "\"4.999\"",
            ),
            (
                Box::new(|c| c.plans.get_mut("3-pack").unwrap().product = "NOPE".into()),
                "plans.3-pack.product",
                "\"NOPE\"",
            ),
            (
                Box::new(|c| {
                    c.plans.get_mut("3-pack").unwrap().subscribe_and_save = ExactText("40%".into())
                }),
                "plans.3-pack.subscribe_and_save",
                "\"40%\"",
            ),
            (
                Box::new(|c| {
                    c.plans.get_mut("3-pack").unwrap().allowed_intervals = vec!["30 parsecs".into()]
                }),
                "plans.3-pack.allowed_intervals[0]",
                "\"30 parsecs\"",
            ),
            (
                Box::new(|c| c.currency = "XYZ".into()),
                "currency",
                "\"XYZ\"",
            ),
            (
                Box::new(|c| {
                    c.tax_regions.insert("EU".into(), region("20%"));
                }),
                "tax_regions.EU",
                "\"EU\"",
            ),
            (
                Box::new(|c| {
                    c.tax_regions.insert("us-ca".into(), region("7%"));
                }),
                "tax_regions.us-ca",
                "\"us-ca\"",
            ),
            (
                Box::new(|c| c.ships_to = Some(vec!["Narnia".into()])),
                "ships_to[0]",
                "\"Narnia\"",
            ),
            (
                Box::new(|c| c.discount_cap = ExactText("8.875%".into())),
                "discount_cap",
                "\"8.875%\"",
            ),
        ];
        for (break_it, key, value) in cases {
            let mut raw = raw_catalog();
            break_it(&mut raw);
            assert!(!refusal(raw, key, value).is_empty());
        }
    }
}
