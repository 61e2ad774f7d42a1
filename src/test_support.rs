//! Fixtures the unit tests share: an instant from RFC 3339 text, and the default catalog as
//! it ships. Compiled for tests only.

use chrono::{DateTime, Utc};

use crate::config::{DEFAULT_CATALOG, load_catalog_text};
use crate::core::catalog::Catalog;

/// The instant an RFC 3339 string names, e.g. `at("2026-01-31T14:00:00Z")`.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The catalog that ships as the embedded default.
pub fn default_catalog() -> Catalog {
    load_catalog_text(DEFAULT_CATALOG).expect("the default catalog loads")
}

/// Customer 3, Ada, in `tz`, with no tax region.
pub fn customer_in(tz: &str) -> crate::core::model::Customer {
    crate::core::model::Customer {
        id: 3,
        email: "ada@example.com".parse().expect("a valid address"),
        name: "Ada".into(),
        time_zone: tz.parse().expect("a known zone"),
        locale: "en-US".into(),
        tax_region: None,
        external_id: None,
        metadata: Default::default(),
        created_at: at("2026-01-01T00:00:00Z"),
        updated_at: at("2026-01-01T00:00:00Z"),
    }
}

/// Subscription 9 of customer 3: one 1-pack every 30 days from `anchor_local` ("YYYY-MM-DDTHH:MM")
/// in `tz`, its first order taken (cycle 0), next renewal cycle 1, created at `created`.
pub fn subscription_in(
    tz: &str,
    anchor_local: &str,
    created: &str,
) -> crate::core::model::Subscription {
    let mut sub = crate::core::model::Subscription {
        id: 9,
        customer_id: 3,
        plan: crate::core::catalog::PlanId::parse("1-pack").expect("a plan id"),
        quantity: 1,
        interval: crate::core::schedule::Interval::days(30).expect("30 days"),
        anchor_local: chrono::NaiveDateTime::parse_from_str(anchor_local, "%Y-%m-%dT%H:%M")
            .expect("YYYY-MM-DDTHH:MM"),
        anchor_cycle: 0,
        time_zone: tz.parse().expect("a known zone"),
        next_cycle: 1,
        next_renewal_at: None,
        status: crate::core::model::Status::Active,
        paused_until: None,
        orders_count: 1,
        coupon: None,
        cancel_reason: None,
        hold_reason: None,
        promise: None,
        error_count: 0,
        created_at: at(created),
        updated_at: at(created),
        notices: Default::default(),
        ship_to: None,
        external_id: None,
        metadata: Default::default(),
    };
    sub.next_renewal_at = sub.instant_of(1);
    sub
}

/// The default reminder window, 09:00-20:00 local.
pub fn day_window() -> crate::core::schedule::DeliveryWindow {
    crate::core::schedule::DeliveryWindow {
        start: "09:00".parse().expect("a time"),
        end: "20:00".parse().expect("a time"),
    }
}

/// Customer 3's address 3 in `country` (a valid one: Oregon in the US, a Paris or Berlin
/// postal code elsewhere).
pub fn address_in(country: &str) -> crate::core::model::CustomerAddress {
    crate::core::model::CustomerAddress {
        id: 3,
        customer_id: 3,
        is_default: true,
        created_at: at("2026-01-01T00:00:00Z"),
        address: crate::core::address::Address::parse(&crate::core::address::RawAddress {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            city: "Town".into(),
            subdivision: (country == "US").then(|| "OR".into()),
            postal_code: Some(if country == "US" { "97201" } else { "75001" }.into()),
            country: country.into(),
            ..Default::default()
        })
        .expect("a valid address"),
    }
}
