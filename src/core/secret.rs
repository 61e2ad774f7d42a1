//! [`Secret`]: a value (a password, a key) that is never shown. `Debug`, `Display` and
//! `Serialize` print `[redacted]`; only [`Secret::expose`] gives the value, for handing to a
//! driver. Owns nothing else and reads nothing.

use std::fmt;

use serde::{Serialize, Serializer};

/// A secret value (a password). Never shown by `Debug`, `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself, for handing to a driver. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// The URL with every credential it can carry replaced by `[redacted]`: the password of
/// `user:password@` (even one holding `/`, `?` or `@`), and query parameters that name a
/// password, secret or token (`?password=…`, `sslpassword=…`).
pub fn redact_url_password(url: &str) -> String {
    // The userinfo ends at the last `@`; the query starts at the first `?` after it.
    let after_userinfo = url.rfind('@').map_or(0, |at| at + 1);
    let query_start = url[after_userinfo..].find('?').map(|i| after_userinfo + i);
    let (head, query) = match query_start {
        Some(i) => (&url[..i], Some(&url[i + 1..])),
        None => (url, None),
    };
    let mut redacted = redact_userinfo(head);
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if is_credential(key) => format!("{key}=[redacted]"),
                _ => param.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&params.join("&"));
    }
    redacted
}

fn is_credential(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token"].iter().any(|k| key.contains(k))
}

/// `scheme://user:password@host/…` with the password redacted.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let Some(at) = url.rfind('@').filter(|at| *at > authority_start) else {
        return url.to_owned();
    };
    match url[authority_start..at].find(':') {
        Some(colon) => format!(
            "{}:[redacted]{}",
            &url[..authority_start + colon],
            &url[at..]
        ),
        None => url.to_owned(),
    }
}
