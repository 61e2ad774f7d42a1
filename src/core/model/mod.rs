//! The records subsave keeps: customers, coupons, subscriptions, orders, events and outbox
//! messages, payments and API keys, as plain data, one file per record family. Values here are
//! already parsed (`Email`, `PlanId`, `Interval`, `Tz`, `Money`); the store converts rows to
//! and from them at its edge. No IO, no SQL. Every type is re-exported here, so callers name
//! `crate::core::model::X` whichever file holds it.

use chrono_tz::Tz;
use serde::Serializer;

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

        impl ::std::str::FromStr for $name {
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

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod api_key;
mod coupon;
mod customer;
mod event;
mod message;
mod order;
mod payment;
mod subscription;

pub use api_key::*;
pub use coupon::*;
pub use customer::*;
pub use event::*;
pub use message::*;
pub use order::*;
pub use payment::*;
pub use subscription::*;

/// Writes a time zone as its IANA name (`Europe/Berlin`), as the records' JSON shows it.
pub fn serialize_tz<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::str::FromStr;

    use serde::Serialize;

    use super::*;

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
}
