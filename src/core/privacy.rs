//! Erasure of a customer's personal data: what replaces it, in the records and in the JSON
//! the outbox keeps beside each message. Names, email, street lines and phone are replaced;
//! amounts, tax region, country, subdivision, city and postal code stay (they are the books:
//! where a sale is taxed), and so do consents (the record of what the customer agreed to).
//!
//! Pure: the store writes what this says.

use serde_json::Value;

use crate::core::model::Email;

/// What a name or street line reads after an erasure.
pub const ERASED: &str = "[erased]";

/// The address an erased customer's record holds instead of theirs: unique per customer (the
/// column is unique) and undeliverable (`.invalid` is reserved, RFC 2606).
pub fn erased_email(customer_id: i64) -> Email {
    format!("erased-{customer_id}@erased.invalid")
        .parse()
        .unwrap_or_else(|_| unreachable_email())
}

/// `erased-N@erased.invalid` always parses; this is never reached, and still an address that
/// reaches no one.
fn unreachable_email() -> Email {
    "erased@erased.invalid"
        .parse()
        .unwrap_or_else(|_| unreachable!("a constant address parses"))
}

/// The keys of a message's JSON whose object is a person or an address.
const PERSON_KEYS: [&str; 4] = ["customer", "ship_to", "address", "shipping_address"];

/// A message payload with the customer's personal data replaced: every `email` field, and in
/// every object under a key of [`PERSON_KEYS`] (`customer`, `ship_to`, …), `name`, `line1`
/// (replaced by [`ERASED`]), `line2` and `phone` (removed, as null). Everything else (amounts,
/// lines, plan, country, postal code) is kept as it was.
pub fn erase_payload(payload: &Value, customer_id: i64) -> Value {
    let email = erased_email(customer_id);
    let mut value = payload.clone();
    walk(&mut value, email.as_str(), false);
    value
}

fn walk(value: &mut Value, email: &str, personal: bool) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match key.as_str() {
                    "email" if field.is_string() => *field = Value::String(email.to_owned()),
                    "name" | "line1" if personal && field.is_string() => {
                        *field = Value::String(ERASED.to_owned())
                    }
                    "line2" | "phone" if personal => *field = Value::Null,
                    // A storefront's metadata may hold anything about the person.
                    "metadata" if field.is_object() => *field = Value::Object(Default::default()),
                    _ => walk(field, email, PERSON_KEYS.contains(&key.as_str())),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| walk(item, email, false)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_erased_address_is_unique_and_undeliverable() {
        assert_eq!(erased_email(42).as_str(), "erased-42@erased.invalid");
        assert_ne!(erased_email(1), erased_email(2));
    }

    #[test]
    fn a_payload_loses_names_addresses_and_phone_and_keeps_the_books() {
        let payload = json!({
            "customer": { "id": 7, "name": "Ada Lovelace", "email": "ada@example.com", "locale": "de-DE" },
            "order": {
                "order_number": "SS-1",
                "lines": [{ "kind": "subtotal", "label": "Coffee", "amount": "10.00 USD" }],
                "total": "10.00 USD",
                "ship_to": { "name": "Ada Lovelace", "line1": "1 Main St", "line2": "Apt 2",
                             "city": "Berlin", "postal_code": "10115", "country": "DE", "phone": "+4930123" }
            },
            "plan": { "name": "Coffee monthly" },
            "subscription": { "id": 3, "external_id": "shop-3", "metadata": { "gift_note": "for Ada" } }
        });
        let erased = erase_payload(&payload, 7);
        assert_eq!(erased["customer"]["name"], ERASED);
        assert_eq!(erased["customer"]["email"], "erased-7@erased.invalid");
        assert_eq!(erased["customer"]["locale"], "de-DE");
        let ship_to = &erased["order"]["ship_to"];
        assert_eq!(ship_to["name"], ERASED);
        assert_eq!(ship_to["line1"], ERASED);
        assert_eq!(ship_to["line2"], Value::Null);
        assert_eq!(ship_to["phone"], Value::Null);
        assert_eq!(ship_to["city"], "Berlin");
        assert_eq!(ship_to["postal_code"], "10115");
        assert_eq!(ship_to["country"], "DE");
        assert_eq!(erased["order"]["total"], "10.00 USD");
        assert_eq!(erased["order"]["lines"], payload["order"]["lines"]);
        // A plan's name is not a person's.
        assert_eq!(erased["plan"]["name"], "Coffee monthly");
        // A storefront's metadata may name the person; its own id does not.
        assert_eq!(erased["subscription"]["metadata"], json!({}));
        assert_eq!(erased["subscription"]["external_id"], "shop-3");
        assert!(!erased.to_string().contains("Ada"));
        assert!(!erased.to_string().contains("Main St"));
    }
}
