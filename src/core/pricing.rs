//! The price of one renewal, itemized: a pure function of the catalog and the renewal's facts.
//!
//! Owns the pricing order of docs/rules.md ("Pricing a renewal"): subtotal, subscribe-and-save,
//! loyalty, coupon, the discount cap (shrinking the coupon first, then loyalty), shipping, and
//! tax (exclusive: added; inclusive: the contained part recorded, the total unchanged). The
//! destination picks the market (its currency, plan price and shipping; none: the default
//! market), and every amount of the quote is in that currency. The same inputs always give the
//! same [`Quote`]; its lines always sum to its total, and the total is never negative. It must
//! not read clocks, databases or config files.

use std::fmt;

use serde::Serialize;

use crate::core::address::Country;
use crate::core::catalog::{Catalog, LoyaltyTier, Plan, Shipping, TaxMode, TaxRegion};
use crate::core::money::{BasisPoints, Currency, Money, MoneyError};

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponValue {
    /// A percentage of what remains after subscribe-and-save and loyalty.
    Percent(BasisPoints),
    /// A fixed amount, at most what remains.
    Amount(Money),
}

/// A coupon applied to this renewal: its code (for the line's label) and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedCoupon {
    pub code: String,
    pub value: CouponValue,
}

/// Everything a renewal's price depends on.
#[derive(Debug, Clone)]
pub struct QuoteRequest<'a> {
    pub plan: &'a Plan,
    /// Shipments of the plan in this order (2 × 3-pack = 6 packs).
    pub quantity: u32,
    pub region: Option<&'a TaxRegion>,
    /// Where it ships: its market (currency, plan price, shipping) and, in the default market,
    /// its zone's shipping fee and threshold (none: the default market, the catalog's shipping).
    pub destination: Option<Country>,
    /// Orders the subscription already has; selects the loyalty tier.
    pub orders_so_far: u32,
    pub coupon: Option<AppliedCoupon>,
    /// The plan price announced in this cycle's reminder. A reminder's price is a promise: a
    /// catalog price that rose since is not charged, a price that fell is passed on. A promise
    /// in another currency than the market's is no promise about this price and is ignored.
    pub promised_price: Option<Money>,
    /// The total announced in this cycle's reminder: the renewal charges at most that, the
    /// difference recorded as a `price_promise` line (after tax). A ceiling only in its own
    /// currency, like `promised_price`.
    pub promised_total: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    Subtotal,
    SubscribeAndSave,
    Loyalty,
    Coupon,
    Shipping,
    Tax,
    /// What a renewal does not charge because its reminder promised a lower total.
    PricePromise,
}

impl AdjustmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentKind::Subtotal => "subtotal",
            AdjustmentKind::SubscribeAndSave => "subscribe_and_save",
            AdjustmentKind::Loyalty => "loyalty",
            AdjustmentKind::Coupon => "coupon",
            AdjustmentKind::Shipping => "shipping",
            AdjustmentKind::Tax => "tax",
            AdjustmentKind::PricePromise => "price_promise",
        }
    }
}

impl fmt::Display for AdjustmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a price: discounts are negative, charges positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adjustment {
    pub kind: AdjustmentKind,
    pub label: String,
    pub amount: Money,
}

/// Tax contained in a tax-inclusive total: recorded, not added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncludedTax {
    pub label: String,
    pub rate: BasisPoints,
    pub amount: Money,
}

/// The itemized price of one renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub lines: Vec<Adjustment>,
    pub total: Money,
    pub included_tax: Option<IncludedTax>,
    /// The plan price this quote charged per shipment (the lower of catalog and promise).
    pub unit_price: Money,
}

impl Quote {
    /// The sum of the lines of one kind (zero when absent).
    pub fn amount_of(&self, kind: AdjustmentKind) -> Money {
        self.lines
            .iter()
            .filter(|l| l.kind == kind)
            .fold(Money::zero(self.total.currency()), |acc, l| {
                Money::from_minor(acc.minor() + l.amount.minor(), acc.currency())
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("quantity must be at least 1")]
    ZeroQuantity,
    #[error(
        "coupon {code} takes off an amount in {coupon}, and this order is in {market}; an amount coupon applies only in its own currency"
    )]
    CouponCurrency {
        code: String,
        coupon: crate::core::money::Currency,
        market: crate::core::money::Currency,
    },
    #[error("a fixed coupon amount cannot be negative")]
    NegativeCoupon,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Prices one renewal. See the module docs for the order of steps.
pub fn quote(catalog: &Catalog, request: &QuoteRequest<'_>) -> Result<Quote, PricingError> {
    if request.quantity == 0 {
        return Err(PricingError::ZeroQuantity);
    }
    let plan = request.plan;
    let market = catalog.market_for(request.destination);
    let currency = market.currency;
    let list_price = market.price_of(plan);
    let same_currency = |m: &Money| m.currency() == currency;

    // 1. subtotal
    let unit_price = match request.promised_price.filter(same_currency) {
        Some(promised) => list_price.min(promised),
        None => list_price,
    };
    let subtotal = unit_price.checked_mul(request.quantity)?;

    // 2.–5. the discounts, capped
    let tier = catalog.loyalty_tier(request.orders_so_far);
    let discounts = Discounts::of(catalog, request, tier, subtotal, currency)?;

    let mut lines = vec![Adjustment {
        kind: AdjustmentKind::Subtotal,
        label: subtotal_label(plan, request.quantity, unit_price),
        amount: subtotal,
    }];
    discounts.push_lines(&mut lines, plan, tier, request.coupon.as_ref())?;
    let discounted = subtotal
        .checked_sub(discounts.subscribe_and_save)?
        .checked_sub(discounts.loyalty)?
        .checked_sub(discounts.coupon)?;

    // 6. shipping, by the destination's zone
    let shipping = shipping_line(market.shipping(), discounted, currency);
    let shipping_amount = shipping.amount;
    lines.push(shipping);

    // 7. tax
    let included_tax = match request.region {
        Some(region) => tax(region, discounted, shipping_amount, &mut lines)?,
        None => None,
    };

    let total = lines.iter().try_fold(Money::zero(currency), |acc, line| {
        acc.checked_add(line.amount)
    })?;
    let mut quote = Quote {
        lines,
        total,
        included_tax,
        unit_price,
    };
    // 8. the reminded total
    if let Some(ceiling) = request.promised_total.filter(same_currency) {
        keep_promise(&mut quote, ceiling, request.region)?;
    }
    Ok(quote)
}

/// Steps 2 to 5 of a quote: subscribe-and-save and loyalty on the subtotal, the coupon on
/// what remains, all three within the catalog's cap.
struct Discounts {
    subscribe_and_save: Money,
    loyalty: Money,
    coupon: Money,
}

impl Discounts {
    fn of(
        catalog: &Catalog,
        request: &QuoteRequest<'_>,
        tier: Option<&LoyaltyTier>,
        subtotal: Money,
        currency: Currency,
    ) -> Result<Discounts, PricingError> {
        // 2. subscribe-and-save and 3. loyalty, both on the subtotal
        let mut subscribe_and_save = subtotal.percent(request.plan.subscribe_and_save);
        let mut loyalty = tier.map_or(Money::zero(currency), |t| {
            subtotal.percent(t.extra_discount)
        });

        // 4. coupon on what remains
        let remaining = subtotal
            .checked_sub(subscribe_and_save)?
            .checked_sub(loyalty)?
            .max_zero();
        let mut coupon = match &request.coupon {
            None => Money::zero(currency),
            Some(c) => coupon_off(c, remaining, currency)?,
        };

        // 5. cap: shrink the coupon first, then loyalty, then (only if the catalog's cap sits
        // below a plan's own discount, which validation refuses) subscribe-and-save.
        let cap = subtotal.percent(catalog.discount_cap);
        let mut excess = subscribe_and_save
            .checked_add(loyalty)?
            .checked_add(coupon)?
            .checked_sub(cap)?
            .max_zero();
        for discount in [&mut coupon, &mut loyalty, &mut subscribe_and_save] {
            let cut = discount.min(excess);
            *discount = discount.checked_sub(cut)?;
            excess = excess.checked_sub(cut)?;
        }
        Ok(Discounts {
            subscribe_and_save,
            loyalty,
            coupon,
        })
    }

    /// The discounts' lines, negative; none for a discount that came to zero.
    fn push_lines(
        &self,
        lines: &mut Vec<Adjustment>,
        plan: &Plan,
        tier: Option<&LoyaltyTier>,
        coupon: Option<&AppliedCoupon>,
    ) -> Result<(), MoneyError> {
        let mut discount_line = |kind, label: String, amount: Money| -> Result<(), MoneyError> {
            if !amount.is_zero() {
                lines.push(Adjustment {
                    kind,
                    label,
                    amount: amount.negated()?,
                });
            }
            Ok(())
        };
        discount_line(
            AdjustmentKind::SubscribeAndSave,
            format!("Subscribe & save {}", plan.subscribe_and_save),
            self.subscribe_and_save,
        )?;
        if let Some(t) = tier {
            discount_line(
                AdjustmentKind::Loyalty,
                format!(
                    "Loyalty {} (after {} orders)",
                    t.extra_discount, t.after_orders
                ),
                self.loyalty,
            )?;
        }
        if let Some(c) = coupon {
            let label = match c.value {
                CouponValue::Percent(rate) => format!("Coupon {} ({rate})", c.code),
                CouponValue::Amount(_) => format!("Coupon {}", c.code),
            };
            discount_line(AdjustmentKind::Coupon, label, self.coupon)?;
        }
        Ok(())
    }
}

/// What a coupon takes off `remaining`: a percentage of it, or an amount in the market's
/// currency (refused in another), at most all of it.
fn coupon_off(
    coupon: &AppliedCoupon,
    remaining: Money,
    currency: Currency,
) -> Result<Money, PricingError> {
    match coupon.value {
        CouponValue::Percent(rate) => Ok(remaining.percent(rate)),
        CouponValue::Amount(amount) => {
            if amount.currency() != currency {
                return Err(PricingError::CouponCurrency {
                    code: coupon.code.clone(),
                    coupon: amount.currency(),
                    market: currency,
                });
            }
            if amount.minor() < 0 {
                return Err(PricingError::NegativeCoupon);
            }
            Ok(amount.min(remaining))
        }
    }
}

/// Step 6: the shipping line, free for subscriptions or from the threshold on.
fn shipping_line(rules: &Shipping, discounted: Money, currency: Currency) -> Adjustment {
    let ships_free = rules.subscriptions_ship_free
        || rules
            .free_threshold
            .is_some_and(|threshold| discounted.minor() >= threshold.minor());
    let shipping = if ships_free {
        Money::zero(currency)
    } else {
        rules.flat_fee
    };
    Adjustment {
        kind: AdjustmentKind::Shipping,
        label: if ships_free {
            "Shipping (free)".into()
        } else {
            "Shipping".into()
        },
        amount: shipping,
    }
}

/// Step 7: the region's tax on the discounted price (and shipping, where taxed): a line when
/// exclusive, the contained part when inclusive.
fn tax(
    region: &TaxRegion,
    discounted: Money,
    shipping: Money,
    lines: &mut Vec<Adjustment>,
) -> Result<Option<IncludedTax>, MoneyError> {
    let base = if region.taxes_shipping {
        discounted.checked_add(shipping)?
    } else {
        discounted
    };
    Ok(match region.mode {
        TaxMode::Exclusive => {
            lines.push(Adjustment {
                kind: AdjustmentKind::Tax,
                label: format!("{} {}", region.name, region.rate),
                amount: base.percent(region.rate),
            });
            None
        }
        TaxMode::Inclusive => Some(IncludedTax {
            label: format!("{} {} (included)", region.name, region.rate),
            rate: region.rate,
            amount: base.contained_part(region.rate),
        }),
    })
}

/// Step 8: the reminded total is a ceiling: whatever changed in the catalog since (a higher
/// shipping fee, a threshold no longer reached), the renewal charges at most that total.
/// The cut comes after tax; a contained tax is then of the smaller total.
fn keep_promise(
    quote: &mut Quote,
    ceiling: Money,
    region: Option<&TaxRegion>,
) -> Result<(), MoneyError> {
    if ceiling.minor() >= quote.total.minor() {
        return Ok(());
    }
    let cut = quote.total.checked_sub(ceiling)?;
    quote.lines.push(Adjustment {
        kind: AdjustmentKind::PricePromise,
        label: "Price as reminded".into(),
        amount: cut.negated()?,
    });
    quote.total = ceiling;
    if let (Some(tax), Some(region)) = (quote.included_tax.as_mut(), region) {
        tax.amount = quote.total.max_zero().contained_part(region.rate);
    }
    Ok(())
}

fn subtotal_label(plan: &Plan, quantity: u32, unit_price: Money) -> String {
    format!(
        "{} × {quantity} at {}",
        plan.id,
        unit_price.to_decimal_string()
    )
}

trait MaxZero {
    fn max_zero(self) -> Self;
}

impl MaxZero for Money {
    fn max_zero(self) -> Money {
        if self.minor() < 0 {
            Money::zero(self.currency())
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::{LoyaltyTier, PlanId, Product, Shipping};
    use crate::core::money::Currency;
    use crate::core::schedule::Interval;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Usd)
    }

    fn bp(n: u32) -> BasisPoints {
        BasisPoints::new(n).unwrap()
    }

    fn plan(id: &str, packs: u32, price: i64, ss: u32) -> Plan {
        Plan {
            id: PlanId::parse(id).unwrap(),
            product_sku: "BBP-30".into(),
            packs,
            list_price: usd(price),
            subscribe_and_save: bp(ss),
            default_interval: Interval::days(30 * packs).unwrap(),
            allowed_intervals: vec![Interval::days(30 * packs).unwrap()],
            names: Default::default(),
        }
    }

    fn catalog() -> Catalog {
        let mut tax_regions = BTreeMap::new();
        tax_regions.insert(
            "US-CA".into(),
            TaxRegion {
                code: "US-CA".into(),
                name: "California".into(),
                rate: bp(725),
                mode: TaxMode::Exclusive,
                taxes_shipping: false,
            },
        );
        tax_regions.insert(
            "DE".into(),
            TaxRegion {
                code: "DE".into(),
                name: "Germany VAT".into(),
                rate: bp(1900),
                mode: TaxMode::Inclusive,
                taxes_shipping: true,
            },
        );
        Catalog {
            currency: Currency::Usd,
            discount_cap: bp(3500),
            products: vec![Product {
                sku: "BBP-30".into(),
                name: "Black Bala Probiotics".into(),
                days_of_supply_per_pack: 30,
            }],
            plans: vec![
                plan("1-pack", 1, 4999, 1000),
                plan("2-pack", 2, 9499, 1200),
                plan("3-pack", 3, 13499, 1500),
                plan("6-pack", 6, 25499, 2000),
            ],
            loyalty_tiers: vec![
                LoyaltyTier {
                    after_orders: 3,
                    extra_discount: bp(500),
                },
                LoyaltyTier {
                    after_orders: 6,
                    extra_discount: bp(1000),
                },
            ],
            shipping: Shipping {
                flat_fee: usd(595),
                free_threshold: Some(usd(7500)),
                subscriptions_ship_free: false,
            },
            tax_regions,
            ships_to: Vec::new(),
            shipping_zones: Vec::new(),
            limits: crate::core::catalog::Limits::default(),
            markets: Vec::new(),
        }
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Eur)
    }

    /// [`catalog`] with a EUR market for Germany: 1-pack 46.99, free shipping from 80.00, else
    /// 6.95.
    fn with_eur_market() -> Catalog {
        let mut c = catalog();
        let de = Country::parse("DE").unwrap();
        c.markets.push(crate::core::catalog::Market {
            name: "EU".into(),
            currency: Currency::Eur,
            countries: vec![de],
            prices: c
                .plans
                .iter()
                .map(|p| (p.id.clone(), eur(p.list_price.minor() - 300)))
                .collect(),
            shipping: Shipping {
                flat_fee: eur(695),
                free_threshold: Some(eur(8000)),
                subscriptions_ship_free: false,
            },
        });
        c.ships_to = vec![de, Country::parse("US").unwrap()];
        c
    }

    /// The destination picks the market: Germany pays the EUR price, EUR shipping and its VAT
    /// contained; the US and a subscription without an address pay the default market's USD.
    #[test]
    fn the_destination_picks_the_market_and_its_currency() {
        let c = with_eur_market();
        let de = Country::parse("DE").ok();
        let mut r = request(&c, "1-pack");
        r.destination = de;
        r.region = c.tax_region("DE");
        let q = quote(&c, &r).unwrap();
        // 46.99 less 10 % (4.699 -> 4.70) = 42.29, below 80.00: 6.95 shipping; 19 % contained
        // in 49.24 = 7.8617 -> 7.86.
        assert_eq!(
            amounts(&q),
            [(Subtotal, 4699), (SubscribeAndSave, -470), (Shipping, 695)]
        );
        assert_eq!(q.total, eur(4924));
        assert_eq!(q.unit_price, eur(4699));
        assert_eq!(q.included_tax.as_ref().map(|t| t.amount), Some(eur(786)));
        assert!(q.lines.iter().all(|l| l.amount.currency() == Currency::Eur));

        for destination in [Country::parse("US").ok(), None] {
            let mut r = request(&c, "1-pack");
            r.destination = destination;
            let q = quote(&c, &r).unwrap();
            assert_eq!(q.total, usd(4499 + 595), "{destination:?}");
        }
        // Without markets, the same request in the same catalog is priced as it always was.
        let mut plain = request(&c, "1-pack");
        plain.destination = Country::parse("US").ok();
        assert_eq!(
            quote(&c, &plain).unwrap(),
            quote(&catalog(), &request(&catalog(), "1-pack")).unwrap()
        );
    }

    /// A reminded price or total is a promise in its own currency: in another market it says
    /// nothing about this price and is not applied (a move of market releases it).
    #[test]
    fn a_promise_in_another_currency_is_no_ceiling() {
        let c = with_eur_market();
        let mut r = request(&c, "1-pack");
        r.destination = Country::parse("DE").ok();
        r.promised_price = Some(usd(100));
        r.promised_total = Some(usd(100));
        let q = quote(&c, &r).unwrap();
        assert_eq!(q.total, eur(4699 - 470 + 695));
        assert_eq!(q.amount_of(PricePromise).minor(), 0);
        r.promised_total = Some(eur(4000));
        let q = quote(&c, &r).unwrap();
        assert_eq!(q.total, eur(4000));
        assert_eq!(q.amount_of(PricePromise), eur(-924));
    }

    /// An amount coupon applies only in its own currency; a percentage applies in any.
    #[test]
    fn an_amount_coupon_applies_only_in_its_currency() {
        let c = with_eur_market();
        let cases = [
            (CouponValue::Amount(eur(500)), "DE", Ok(eur(-500))),
            (CouponValue::Amount(usd(500)), "US", Ok(usd(-500))),
            (CouponValue::Amount(usd(500)), "DE", Err(())),
            (CouponValue::Amount(eur(500)), "US", Err(())),
            (CouponValue::Percent(bp(1000)), "DE", Ok(eur(-423))),
            (CouponValue::Percent(bp(1000)), "US", Ok(usd(-450))),
        ];
        for (value, country, expected) in cases {
            let mut r = request(&c, "1-pack");
            r.destination = Country::parse(country).ok();
            r.coupon = Some(AppliedCoupon {
                code: "TEN".into(),
                value,
            });
            let got = quote(&c, &r);
            match expected {
                Ok(line) => assert_eq!(got.unwrap().amount_of(Coupon), line, "{value:?} {country}"),
                Err(()) => {
                    let error = got.unwrap_err();
                    assert!(
                        matches!(error, PricingError::CouponCurrency { .. }),
                        "{value:?} {country}: {error}"
                    );
                    assert!(error.to_string().contains("only in its own currency"));
                }
            }
        }
    }

    fn request<'a>(catalog: &'a Catalog, plan: &str) -> QuoteRequest<'a> {
        QuoteRequest {
            plan: catalog.plan(plan).unwrap(),
            quantity: 1,
            region: None,
            destination: None,
            orders_so_far: 0,
            coupon: None,
            promised_price: None,
            promised_total: None,
        }
    }

    fn amounts(q: &Quote) -> Vec<(AdjustmentKind, i64)> {
        q.lines.iter().map(|l| (l.kind, l.amount.minor())).collect()
    }

    use AdjustmentKind::*;

    #[test]
    fn three_pack_in_california() {
        let c = catalog();
        let mut r = request(&c, "3-pack");
        r.region = c.tax_region("US-CA");
        let q = quote(&c, &r).unwrap();
        // 134.99; 15 % = 20.2485 -> 20.25; 114.74 >= 75 ships free; 7.25 % of 114.74 = 8.31865 -> 8.32
        assert_eq!(
            amounts(&q),
            [
                (Subtotal, 13499),
                (SubscribeAndSave, -2025),
                (Shipping, 0),
                (Tax, 832)
            ]
        );
        assert_eq!(q.total.minor(), 12306);
    }

    #[test]
    fn one_pack_pays_shipping_below_threshold() {
        let c = catalog();
        let q = quote(&c, &request(&c, "1-pack")).unwrap();
        // 49.99 - 5.00 (4.999 -> 5.00) = 44.99 < 75 -> 5.95 shipping
        assert_eq!(
            amounts(&q),
            [(Subtotal, 4999), (SubscribeAndSave, -500), (Shipping, 595)]
        );
        assert_eq!(q.total.minor(), 5094);
    }

    #[test]
    fn inclusive_tax_is_recorded_not_added() {
        let c = catalog();
        let mut r = request(&c, "2-pack");
        r.region = c.tax_region("DE");
        let q = quote(&c, &r).unwrap();
        // 94.99 - 11.40 (11.3988) = 83.59; contains 19/119 × 83.59 = 13.3463 -> 13.35
        assert_eq!(q.total.minor(), 8359);
        assert_eq!(
            q.included_tax.as_ref().map(|t| t.amount.minor()),
            Some(1335)
        );
        assert!(q.lines.iter().all(|l| l.kind != Tax));
    }

    #[test]
    fn loyalty_takes_the_highest_tier_reached() {
        let c = catalog();
        let loyalty_at = |orders| {
            let mut r = request(&c, "1-pack");
            r.orders_so_far = orders;
            quote(&c, &r).unwrap().amount_of(Loyalty).minor()
        };
        assert_eq!(
            [
                loyalty_at(0),
                loyalty_at(2),
                loyalty_at(3),
                loyalty_at(5),
                loyalty_at(6),
                loyalty_at(40)
            ],
            [0, 0, -250, -250, -500, -500]
        );
    }

    #[test]
    fn coupon_applies_to_what_remains() {
        let c = catalog();
        let mut r = request(&c, "1-pack");
        r.coupon = Some(AppliedCoupon {
            code: "TEN".into(),
            value: CouponValue::Percent(bp(1000)),
        });
        let q = quote(&c, &r).unwrap();
        // remains 44.99 after S&S; 10 % = 4.499 -> 4.50
        assert_eq!(q.amount_of(Coupon).minor(), -450);

        r.coupon = Some(AppliedCoupon {
            code: "BIG".into(),
            value: CouponValue::Amount(usd(100_000)),
        });
        let q = quote(&c, &r).unwrap();
        // A fixed amount takes at most what remains, then the cap (35 % of 49.99 = 17.50) holds.
        assert_eq!(q.amount_of(Coupon).minor(), -(1750 - 500));
    }

    #[test]
    fn cap_shrinks_coupon_first_then_loyalty() {
        let c = catalog();
        let mut r = request(&c, "6-pack");
        r.orders_so_far = 10;
        r.coupon = Some(AppliedCoupon {
            code: "HALF".into(),
            value: CouponValue::Percent(bp(5000)),
        });
        let q = quote(&c, &r).unwrap();
        // 254.99: S&S 20 % = 51.00 (50.998), loyalty 10 % = 25.50 (25.499), cap 35 % = 89.25 (89.2465)
        // coupon shrinks from 89.25 to 89.25 - 76.50 = 12.75
        assert_eq!(
            amounts(&q)[..4],
            [
                (Subtotal, 25499),
                (SubscribeAndSave, -5100),
                (Loyalty, -2550),
                (Coupon, -1275)
            ]
        );

        // A catalog whose cap sits below S&S + loyalty shrinks loyalty after the coupon is gone.
        let mut tight = catalog();
        tight.discount_cap = bp(2500);
        let mut r = request(&tight, "6-pack");
        r.orders_so_far = 10;
        r.coupon = Some(AppliedCoupon {
            code: "HALF".into(),
            value: CouponValue::Percent(bp(5000)),
        });
        let q = quote(&tight, &r).unwrap();
        // cap 63.75 (63.7475): coupon 0, loyalty 63.75 - 51.00 = 12.75
        assert_eq!(
            amounts(&q)[..3],
            [
                (Subtotal, 25499),
                (SubscribeAndSave, -5100),
                (Loyalty, -1275)
            ]
        );
        assert_eq!(q.amount_of(Coupon).minor(), 0);
    }

    #[test]
    fn a_promised_price_holds_against_a_rise_and_yields_to_a_fall() {
        let c = catalog();
        let mut r = request(&c, "1-pack");
        r.promised_price = Some(usd(4499));
        assert_eq!(quote(&c, &r).unwrap().unit_price.minor(), 4499);
        r.promised_price = Some(usd(5999));
        assert_eq!(quote(&c, &r).unwrap().unit_price.minor(), 4999);
    }

    #[test]
    fn subscriptions_can_always_ship_free() {
        let mut c = catalog();
        c.shipping.subscriptions_ship_free = true;
        let q = quote(&c, &request(&c, "1-pack")).unwrap();
        assert_eq!(q.amount_of(Shipping).minor(), 0);
    }

    #[test]
    fn refuses_zero_quantity_and_foreign_coupons() {
        let c = catalog();
        let mut r = request(&c, "1-pack");
        r.quantity = 0;
        assert_eq!(quote(&c, &r), Err(PricingError::ZeroQuantity));
        let mut r = request(&c, "1-pack");
        r.coupon = Some(AppliedCoupon {
            code: "EU".into(),
            value: CouponValue::Amount(Money::from_minor(100, Currency::Eur)),
        });
        assert!(matches!(
            quote(&c, &r),
            Err(PricingError::CouponCurrency { .. })
        ));
    }

    fn arb_coupon() -> impl Strategy<Value = Option<AppliedCoupon>> {
        prop_oneof![
            Just(None),
            (0u32..=10_000).prop_map(|b| Some(AppliedCoupon {
                code: "P".into(),
                value: CouponValue::Percent(bp(b))
            })),
            (0i64..50_000_000).prop_map(|a| Some(AppliedCoupon {
                code: "A".into(),
                value: CouponValue::Amount(usd(a))
            })),
        ]
    }

    prop_compose! {
        fn arb_catalog()(
            cap in 0u32..=10_000,
            ss in 0u32..=10_000,
            tier1 in 0u32..=5_000,
            tier2 in 0u32..=5_000,
            price in 1i64..100_000_000,
            fee in 0i64..10_000,
            threshold in prop::option::of(0i64..100_000),
            ship_free in any::<bool>(),
            rate in 0u32..=3_000,
        ) -> Catalog {
            let mut c = catalog();
            c.discount_cap = bp(cap);
            c.plans[0].subscribe_and_save = bp(ss.min(cap));
            c.plans[0].list_price = usd(price);
            c.loyalty_tiers[0].extra_discount = bp(tier1);
            c.loyalty_tiers[1].extra_discount = bp(tier2);
            c.shipping = Shipping { flat_fee: usd(fee), free_threshold: threshold.map(usd), subscriptions_ship_free: ship_free };
            for region in c.tax_regions.values_mut() {
                region.rate = bp(rate);
            }
            c
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn quote_invariants(
            c in arb_catalog(),
            quantity in 1u32..=20,
            orders in 0u32..=12,
            coupon in arb_coupon(),
            region in prop::sample::select(vec![None, Some("US-CA"), Some("DE")]),
            promised in prop::option::of(1i64..100_000_000),
        ) {
            let r = QuoteRequest {
                plan: &c.plans[0],
                quantity,
                region: region.and_then(|code| c.tax_region(code)),
                destination: None,
                orders_so_far: orders,
                coupon,
                promised_price: promised.map(usd),
                promised_total: None,
            };
            let q = quote(&c, &r).unwrap();
            // Lines sum to the total.
            let sum: i64 = q.lines.iter().map(|l| l.amount.minor()).sum();
            prop_assert_eq!(sum, q.total.minor());
            // The total is never negative.
            prop_assert!(q.total.minor() >= 0);
            // Discounts never exceed the cap, and are never positive.
            let subtotal = q.amount_of(Subtotal);
            let discounts = -(q.amount_of(SubscribeAndSave).minor() + q.amount_of(Loyalty).minor() + q.amount_of(Coupon).minor());
            prop_assert!(discounts >= 0);
            prop_assert!(discounts <= subtotal.percent(c.discount_cap).minor());
            // Each discount line is a discount.
            for line in &q.lines {
                match line.kind {
                    SubscribeAndSave | Loyalty | Coupon => prop_assert!(line.amount.minor() < 0),
                    _ => prop_assert!(line.amount.minor() >= 0),
                }
            }
            // Deterministic: the same request gives the same quote.
            prop_assert_eq!(quote(&c, &r).unwrap(), q.clone());
            // The promise never raises the price.
            prop_assert!(q.unit_price.minor() <= c.plans[0].list_price.minor());
        }
    }
}
