//! Signed links: the credential in a customer email that opens that subscription's pages, or
//! (a customer link) the page of all of one customer's subscriptions.
//!
//! A link token is `KID.SUBSCRIPTION.EXPIRES.MAC`: the key id, the subscription id, the expiry
//! (Unix seconds) and an HMAC-SHA256 over the three, base64url. A customer link has the same
//! shape with the customer id, its MAC over another purpose: neither kind opens the other's
//! pages. Several keys verify (the
//! first signs), so keys rotate without breaking emails already sent. A page's form carries a
//! CSRF token derived from the link token with the same key, so only someone holding the link
//! can post to its pages. Owns signing and verification; pure: the time is given, nothing is
//! read or logged (a token is a credential and is never logged).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::core::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The fewest bytes a link key may have: HMAC-SHA256's own strength.
pub const KEY_MIN_BYTES: usize = 32;

/// One signing key and its id (which tokens name, so a listed old key still verifies).
#[derive(Clone)]
pub struct LinkKey {
    id: String,
    /// The MAC with the secret already absorbed (what a first use of the secret computes),
    /// cloned for each token: signing one costs two fewer SHA-256 blocks.
    keyed: HmacSha256,
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkKey({}, [redacted])", self.id)
    }
}

impl LinkKey {
    /// A key id is 1-16 letters, digits, `-` or `_`; the secret has at least
    /// [`KEY_MIN_BYTES`] bytes.
    pub fn new(id: &str, secret: Secret) -> Result<LinkKey, String> {
        if id.is_empty()
            || id.len() > 16
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "key id \"{id}\": expected 1-16 letters, digits, '-' or '_'"
            ));
        }
        if secret.expose().len() < KEY_MIN_BYTES {
            return Err(format!(
                "key \"{id}\": the secret has {} bytes; a link key needs at least {KEY_MIN_BYTES} (e.g. `openssl rand -base64 32`)",
                secret.expose().len()
            ));
        }
        let keyed = HmacSha256::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        Ok(LinkKey {
            id: id.to_owned(),
            keyed,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, purpose: &str, message: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(message.as_bytes());
        mac
    }
}

/// Parses a key list as written in config: `ID:SECRET` entries separated by commas, spaces
/// or new lines (a key file holds one per line; `#` starts a comment line). The first signs.
pub fn parse_keys(text: &str) -> Result<Vec<LinkKey>, String> {
    let mut keys = Vec::new();
    for entry in text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split([',', ' ', '\t']))
        .filter(|entry| !entry.is_empty())
    {
        let Some((id, secret)) = entry.split_once(':') else {
            return Err("expected ID:SECRET entries, like \"k1:<32 or more random bytes>\"".into());
        };
        if keys.iter().any(|k: &LinkKey| k.id == id) {
            return Err(format!("key id \"{id}\" is listed twice"));
        }
        keys.push(LinkKey::new(id, Secret::new(secret.to_owned()))?);
    }
    if keys.is_empty() {
        return Err("no key is listed; expected ID:SECRET entries, the first signs".into());
    }
    Ok(keys)
}

/// A key file's line for the key `secret`: `ID:SECRET`, the secret in base64url. The caller
/// draws the 32 random bytes (randomness is IO, and the core does none).
pub fn key_line(id: &str, secret: &[u8; 32]) -> String {
    format!("{id}:{}", URL_SAFE_NO_PAD.encode(secret))
}

/// What a genuine token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkClaim {
    pub subscription_id: i64,
    pub expires_at: DateTime<Utc>,
}

/// What a genuine customer link grants: the page of all of that customer's subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerClaim {
    pub customer_id: i64,
    pub expires_at: DateTime<Utc>,
}

/// Why a customer link opens nothing (an expired one names no one: its page asks for an
/// address, which answers the same whether it is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerRefusal {
    Invalid,
    Expired,
}

/// Why a token opens nothing. Only a genuine token can be `Expired`, so only then is its
/// subscription known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not a token, a tampered one, or signed by a key no longer listed.
    Invalid,
    /// Genuine, but past its expiry.
    Expired(LinkClaim),
}

/// The keys links are signed and verified with.
#[derive(Debug, Clone)]
pub struct LinkSigner {
    keys: Vec<LinkKey>,
}

const LINK_PURPOSE: &str = "subsave link v1";
const CSRF_PURPOSE: &str = "subsave form v1";
const CUSTOMER_PURPOSE: &str = "subsave customer link v1";

impl LinkSigner {
    /// The first key signs; all verify.
    pub fn new(keys: Vec<LinkKey>) -> Option<LinkSigner> {
        (!keys.is_empty()).then_some(LinkSigner { keys })
    }

    /// A token for `subscription_id` valid until `expires_at`.
    pub fn sign(&self, subscription_id: i64, expires_at: DateTime<Utc>) -> String {
        self.sign_for(LINK_PURPOSE, subscription_id, expires_at)
    }

    /// A customer link's token for `customer_id`, valid until `expires_at`.
    pub fn sign_customer(&self, customer_id: i64, expires_at: DateTime<Utc>) -> String {
        self.sign_for(CUSTOMER_PURPOSE, customer_id, expires_at)
    }

    fn sign_for(&self, purpose: &str, id: i64, expires_at: DateTime<Utc>) -> String {
        let key = &self.keys[0];
        let body = format!("{}.{id}.{}", key.id, expires_at.timestamp());
        let tag = key.mac(purpose, &body).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// What the token grants at `now`, checked in constant time against its key.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaim, LinkRefusal> {
        let (subscription_id, expires_at) = self
            .genuine(LINK_PURPOSE, token)
            .ok_or(LinkRefusal::Invalid)?;
        let claim = LinkClaim {
            subscription_id,
            expires_at,
        };
        if now >= expires_at {
            return Err(LinkRefusal::Expired(claim));
        }
        Ok(claim)
    }

    /// What a customer link grants at `now`, checked as [`LinkSigner::verify`] checks a
    /// subscription's (whose tokens it refuses, as they refuse it).
    pub fn verify_customer(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<CustomerClaim, CustomerRefusal> {
        let (customer_id, expires_at) = self
            .genuine(CUSTOMER_PURPOSE, token)
            .ok_or(CustomerRefusal::Invalid)?;
        if now >= expires_at {
            return Err(CustomerRefusal::Expired);
        }
        Ok(CustomerClaim {
            customer_id,
            expires_at,
        })
    }

    /// The id and expiry a token of `purpose` was signed with, if its MAC is genuine.
    fn genuine(&self, purpose: &str, token: &str) -> Option<(i64, DateTime<Utc>)> {
        let (key, body, tag) = self.split(token)?;
        key.mac(purpose, body).verify_slice(&tag).ok()?;
        let mut fields = body.split('.').skip(1);
        let id = fields.next()?.parse::<i64>().ok()?;
        let expires_at = DateTime::from_timestamp(fields.next()?.parse::<i64>().ok()?, 0)?;
        Some((id, expires_at))
    }

    /// The CSRF token of the forms opened by `token` (which must have verified).
    pub fn form_token(&self, token: &str) -> String {
        match self.split(token) {
            Some((key, _, _)) => {
                URL_SAFE_NO_PAD.encode(key.mac(CSRF_PURPOSE, token).finalize().into_bytes())
            }
            None => String::new(),
        }
    }

    /// Whether `given` is the CSRF token of `token`'s forms, compared in constant time.
    pub fn verify_form_token(&self, token: &str, given: &str) -> bool {
        let Some((key, _, _)) = self.split(token) else {
            return false;
        };
        let Ok(given) = URL_SAFE_NO_PAD.decode(given) else {
            return false;
        };
        key.mac(CSRF_PURPOSE, token).verify_slice(&given).is_ok()
    }

    /// The key a token names, its signed part and its decoded tag.
    fn split<'t>(&self, token: &'t str) -> Option<(&LinkKey, &'t str, Vec<u8>)> {
        if token.len() > 128 {
            return None;
        }
        let (body, tag) = token.rsplit_once('.')?;
        let id = body.split('.').next()?;
        let key = self.keys.iter().find(|k| k.id == id)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        Some((key, body, tag))
    }
}

/// The actions a customer page offers, as they appear in its URLs (`/s/TOKEN/skip`).
pub const ACTIONS: [&str; 10] = [
    "skip", "move", "change", "pause", "resume", "cancel", "renew", "restart", "address", "coupon",
];

/// Links as emails carry them: the public base URL, the signer, and how long a link works.
#[derive(Debug, Clone)]
pub struct Links {
    base_url: String,
    signer: LinkSigner,
    ttl: chrono::TimeDelta,
}

/// The URLs of one subscription's pages, valid until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionLinks {
    /// The subscription's page.
    pub page: String,
    pub skip: String,
    #[serde(rename = "move")]
    pub move_: String,
    pub change: String,
    pub pause: String,
    pub resume: String,
    pub cancel: String,
    pub renew: String,
    /// The page that takes a new card (and lists the unpaid orders).
    pub payment_method: String,
    pub expires_at: DateTime<Utc>,
}

/// The URL of the page of all of one customer's subscriptions, valid until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CustomerLink {
    pub page: String,
    pub expires_at: DateTime<Utc>,
}

impl Links {
    pub fn new(base_url: &str, signer: LinkSigner, ttl: chrono::TimeDelta) -> Links {
        Links {
            base_url: base_url.trim_end_matches('/').to_owned(),
            signer,
            ttl,
        }
    }

    pub fn signer(&self) -> &LinkSigner {
        &self.signer
    }

    /// Fresh links to `subscription_id`'s pages, working for the configured time from `now`.
    pub fn for_subscription(&self, subscription_id: i64, now: DateTime<Utc>) -> SubscriptionLinks {
        let expires_at = now + self.ttl;
        let page = format!(
            "{}/s/{}",
            self.base_url,
            self.signer.sign(subscription_id, expires_at)
        );
        let action = |name: &str| format!("{page}/{name}");
        SubscriptionLinks {
            skip: action("skip"),
            move_: action("move"),
            change: action("change"),
            pause: action("pause"),
            resume: action("resume"),
            cancel: action("cancel"),
            renew: action("renew"),
            payment_method: action("payment-method"),
            page,
            expires_at,
        }
    }

    /// A fresh link to the page of all of `customer_id`'s subscriptions, working for the
    /// configured time from `now`.
    pub fn for_customer(&self, customer_id: i64, now: DateTime<Utc>) -> CustomerLink {
        let expires_at = now + self.ttl;
        CustomerLink {
            page: format!(
                "{}/c/{}",
                self.base_url,
                self.signer.sign_customer(customer_id, expires_at)
            ),
            expires_at,
        }
    }

    /// The page that asks for a fresh link by email.
    pub fn request_page(&self) -> String {
        format!("{}/s", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, fill: char) -> LinkKey {
        LinkKey::new(id, Secret::new(fill.to_string().repeat(40))).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let signer = LinkSigner::new(vec![key("k1", 'a')]).unwrap();
        let token = signer.sign(42, at(1_000));
        let claim = LinkClaim {
            subscription_id: 42,
            expires_at: at(1_000),
        };
        assert_eq!(signer.verify(&token, at(999)), Ok(claim));
        assert_eq!(
            signer.verify(&token, at(1_000)),
            Err(LinkRefusal::Expired(claim))
        );
    }

    #[test]
    fn any_change_to_a_token_invalidates_it() {
        let signer = LinkSigner::new(vec![key("k1", 'a')]).unwrap();
        let token = signer.sign(42, at(1_000));
        let other_subscription = token.replacen(".42.", ".43.", 1);
        let later_expiry = token.replacen(".1000.", ".9000.", 1);
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            other_subscription.as_str(),
            later_expiry.as_str(),
            flipped.as_str(),
            "",
            "k1",
            "k1.42.1000.",
            "nonsense.42.1000.AAAA",
        ] {
            assert_eq!(
                signer.verify(bad, at(0)),
                Err(LinkRefusal::Invalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_old_key_verifies_while_it_is_listed() {
        let old = LinkSigner::new(vec![key("k1", 'a')]).unwrap();
        let token = old.sign(7, at(1_000));
        let rotated = LinkSigner::new(vec![key("k2", 'b'), key("k1", 'a')]).unwrap();
        assert!(rotated.verify(&token, at(0)).is_ok());
        assert!(rotated.sign(7, at(1_000)).starts_with("k2."));
        let dropped = LinkSigner::new(vec![key("k2", 'b')]).unwrap();
        assert_eq!(dropped.verify(&token, at(0)), Err(LinkRefusal::Invalid));
        // A key listed under the old id with another secret does not verify it either.
        let replaced = LinkSigner::new(vec![key("k1", 'c')]).unwrap();
        assert_eq!(replaced.verify(&token, at(0)), Err(LinkRefusal::Invalid));
    }

    #[test]
    fn customer_and_subscription_links_do_not_open_each_other() {
        let signer = LinkSigner::new(vec![key("k1", 'a')]).unwrap();
        let customer = signer.sign_customer(42, at(1_000));
        let subscription = signer.sign(42, at(1_000));
        assert_eq!(
            signer.verify_customer(&customer, at(999)),
            Ok(CustomerClaim {
                customer_id: 42,
                expires_at: at(1_000)
            })
        );
        assert_eq!(
            signer.verify_customer(&customer, at(1_000)),
            Err(CustomerRefusal::Expired)
        );
        assert_eq!(
            signer.verify_customer(&subscription, at(0)),
            Err(CustomerRefusal::Invalid)
        );
        assert_eq!(signer.verify(&customer, at(0)), Err(LinkRefusal::Invalid));
        let another = customer.replacen(".42.", ".43.", 1);
        assert_eq!(
            signer.verify_customer(&another, at(0)),
            Err(CustomerRefusal::Invalid)
        );
        let links = Links::new("https://example.com/", signer, chrono::TimeDelta::days(1));
        let link = links.for_customer(7, at(0));
        assert!(
            link.page.starts_with("https://example.com/c/k1.7.86400."),
            "{}",
            link.page
        );
        assert_eq!(link.expires_at, at(86_400));
    }

    #[test]
    fn the_form_token_is_bound_to_its_link() {
        let signer = LinkSigner::new(vec![key("k1", 'a')]).unwrap();
        let one = signer.sign(1, at(1_000));
        let two = signer.sign(2, at(1_000));
        let csrf = signer.form_token(&one);
        assert!(signer.verify_form_token(&one, &csrf));
        assert!(!signer.verify_form_token(&two, &csrf));
        assert!(!signer.verify_form_token(&one, ""));
        assert!(!signer.verify_form_token(&one, "not base64!"));
    }

    #[test]
    fn key_lists_parse_and_refuse_weak_or_repeated_keys() {
        let long = "x".repeat(32);
        let keys = parse_keys(&format!(
            "# rotated 2026-12\nk2:{long}\nk1:{long}, k0:{long}"
        ))
        .unwrap();
        let ids: Vec<&str> = keys.iter().map(LinkKey::id).collect();
        assert_eq!(ids, ["k2", "k1", "k0"]);
        assert!(parse_keys("k1:short").unwrap_err().contains("at least 32"));
        assert!(
            parse_keys(&format!("k1:{long} k1:{long}"))
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse_keys("").unwrap_err().contains("no key"));
        assert!(parse_keys(&long).unwrap_err().contains("ID:SECRET"));
        assert!(parse_keys(&format!("bad id!:{long}")).is_err());
        let generated = key_line("k9", &[7; 32]);
        assert_eq!(parse_keys(&generated).unwrap()[0].id(), "k9");
    }
}
