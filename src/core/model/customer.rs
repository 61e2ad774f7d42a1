//! Customers: the `Email` address parsed once, the customer record, a new customer, what a
//! change to one may set (`CustomerUpdate`), and a customer's stored ship-to addresses. Plain
//! data; no IO.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::serialize_tz;
use crate::core::address::Address;
use crate::core::metadata::{ExternalId, Metadata, MetadataUpdate};

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
}
