//! API keys: a key is `ssk_` and 43 characters of base64url (256 random bits from the OS);
//! only its SHA-256 is stored, so a leaked database leaks no key. Pure but for the random
//! bytes: no storage, no clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked key is recognisable (secret scanners look for it).
pub const KEY_PREFIX: &str = "ssk_";

/// Characters of a key kept to tell keys apart: the prefix and 6 more.
const SHOWN: usize = KEY_PREFIX.len() + 6;

/// A new key: the key itself (shown once), its hash and its shown prefix.
pub fn generate() -> std::io::Result<(String, [u8; 32], String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let shown = key[..SHOWN].to_owned();
    let hashed = hash(&key);
    Ok((key, hashed, shown))
}

/// The SHA-256 of a key, as stored and looked up.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_stored_hashed() {
        let (key, hashed, shown) = generate().unwrap();
        let (other, _, _) = generate().unwrap();
        assert_ne!(key, other);
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 43);
        assert!(key.starts_with(&shown) && shown.len() == 10);
        assert_eq!(hash(&key), hashed);
        assert_ne!(hash(&other), hashed);
    }
}
