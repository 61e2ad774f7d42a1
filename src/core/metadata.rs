//! What a storefront keeps on customers and subscriptions for its own use: an
//! [`ExternalId`] (its own id for the record, unique per kind) and [`Metadata`] (a bounded map
//! of strings). subsave stores and shows them and never decides anything by them.
//!
//! The bounds are Stripe's, which storefronts already know: at most [`KEYS_MAX`] keys, a key
//! of at most [`KEY_MAX`] characters, a value of at most [`VALUE_MAX`], no control characters.
//! A change is a [`MetadataPatch`] merged into what is there: a key given a value is set, a key
//! given `""` or null is removed, a key not named is kept. Pure: no IO.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The longest external id, in characters.
pub const EXTERNAL_ID_MAX: usize = 255;
/// The most keys a metadata map holds.
pub const KEYS_MAX: usize = 50;
/// The longest metadata key, in characters.
pub const KEY_MAX: usize = 40;
/// The longest metadata value, in characters.
pub const VALUE_MAX: usize = 500;

/// Why an external id or a metadata map was refused; each message names the key at fault and
/// the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("external_id must not be empty; omit it (or send null) to have none")]
    EmptyId,
    #[error("external_id has {given} characters; at most {EXTERNAL_ID_MAX}")]
    IdTooLong { given: usize },
    #[error(
        "external_id contains the character U+{0:04X}; use printable characters without spaces at either end"
    )]
    IdCharacter(u32),
    #[error(
        "metadata would have {given} keys; at most {KEYS_MAX} (remove a key with \"\" or null)"
    )]
    TooManyKeys { given: usize },
    #[error("metadata has an empty key; keys have 1 to {KEY_MAX} characters")]
    EmptyKey,
    #[error("metadata key \"{key}\" has {given} characters; at most {KEY_MAX}")]
    KeyTooLong { key: String, given: usize },
    #[error("metadata key \"{key}\" contains the character U+{code:04X}; use printable characters")]
    KeyCharacter { key: String, code: u32 },
    #[error("metadata value of \"{key}\" has {given} characters; at most {VALUE_MAX}")]
    ValueTooLong { key: String, given: usize },
    #[error(
        "metadata value of \"{key}\" contains the character U+{code:04X}; use plain text on one line"
    )]
    ValueCharacter { key: String, code: u32 },
}

/// Control characters, and the bidirectional formatting ones that can disguise text.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// A storefront's own id for a customer or a subscription: 1 to [`EXTERNAL_ID_MAX`]
/// characters, no control or bidirectional formatting characters, no spaces at either end
/// (an id is matched exactly, so it is refused rather than trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(input: &str) -> Result<ExternalId, MetadataError> {
        if input.is_empty() {
            return Err(MetadataError::EmptyId);
        }
        if let Some(c) = input
            .chars()
            .find(|c| unsafe_char(*c))
            .or_else(|| input.chars().next().filter(|c| c.is_whitespace()))
            .or_else(|| input.chars().last().filter(|c| c.is_whitespace()))
        {
            return Err(MetadataError::IdCharacter(u32::from(c)));
        }
        let given = input.chars().count();
        if given > EXTERNAL_ID_MAX {
            return Err(MetadataError::IdTooLong { given });
        }
        Ok(ExternalId(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A storefront's key-value strings on a record, within the bounds; keys in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// A map read back (from storage): the same bounds as a change, values not empty.
    pub fn parse(map: BTreeMap<String, String>) -> Result<Metadata, MetadataError> {
        let patch = MetadataPatch::parse(map.into_iter().map(|(k, v)| (k, Some(v))).collect())?;
        Metadata::default().merged(&patch)
    }

    /// This map with `patch` applied: keys with values set, keys with none removed; refused
    /// when the result would have more than [`KEYS_MAX`] keys.
    pub fn merged(&self, patch: &MetadataPatch) -> Result<Metadata, MetadataError> {
        let mut map = self.0.clone();
        for (key, value) in &patch.0 {
            match value {
                Some(value) => map.insert(key.clone(), value.clone()),
                None => map.remove(key),
            };
        }
        if map.len() > KEYS_MAX {
            return Err(MetadataError::TooManyKeys { given: map.len() });
        }
        Ok(Metadata(map))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A change of metadata, keys checked: `Some(value)` sets a key, `None` (given as `""` or
/// null) removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPatch(BTreeMap<String, Option<String>>);

impl MetadataPatch {
    pub fn parse(map: BTreeMap<String, Option<String>>) -> Result<MetadataPatch, MetadataError> {
        // More keys than a map may hold cannot be a valid change, however many it removes.
        if map.len() > KEYS_MAX {
            return Err(MetadataError::TooManyKeys { given: map.len() });
        }
        let mut checked = BTreeMap::new();
        for (key, value) in map {
            if key.is_empty() {
                return Err(MetadataError::EmptyKey);
            }
            if let Some(c) = key.chars().find(|c| unsafe_char(*c)) {
                return Err(MetadataError::KeyCharacter {
                    key: key.escape_default().to_string(),
                    code: u32::from(c),
                });
            }
            let given = key.chars().count();
            if given > KEY_MAX {
                return Err(MetadataError::KeyTooLong { key, given });
            }
            let value = value.filter(|v| !v.is_empty());
            if let Some(value) = &value {
                if let Some(c) = value.chars().find(|c| unsafe_char(*c)) {
                    return Err(MetadataError::ValueCharacter {
                        key,
                        code: u32::from(c),
                    });
                }
                let given = value.chars().count();
                if given > VALUE_MAX {
                    return Err(MetadataError::ValueTooLong { key, given });
                }
            }
            checked.insert(key, value);
        }
        Ok(MetadataPatch(checked))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A change of a record's external id and metadata: `external_id: Some(None)` clears it, an
/// empty `metadata` patch keeps the map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    pub external_id: Option<Option<ExternalId>>,
    pub metadata: MetadataPatch,
}

impl MetadataUpdate {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.external_id.is_none() && self.metadata.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(pairs: &[(&str, Option<&str>)]) -> Result<MetadataPatch, MetadataError> {
        MetadataPatch::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        )
    }

    #[test]
    fn an_external_id_is_exact_printable_and_bounded() {
        assert_eq!(ExternalId::parse("shop-42").unwrap().as_str(), "shop-42");
        assert_eq!(
            ExternalId::parse("gid://shopify/Customer/1 2")
                .unwrap()
                .to_string(),
            "gid://shopify/Customer/1 2"
        );
        assert_eq!(ExternalId::parse(""), Err(MetadataError::EmptyId));
        assert_eq!(
            ExternalId::parse(" a"),
            Err(MetadataError::IdCharacter(0x20))
        );
        assert_eq!(
            ExternalId::parse("a\n"),
            Err(MetadataError::IdCharacter(0x0A))
        );
        assert_eq!(
            ExternalId::parse("a\u{202E}b"),
            Err(MetadataError::IdCharacter(0x202E))
        );
        assert!(ExternalId::parse(&"é".repeat(EXTERNAL_ID_MAX)).is_ok());
        assert_eq!(
            ExternalId::parse(&"x".repeat(EXTERNAL_ID_MAX + 1)),
            Err(MetadataError::IdTooLong { given: 256 })
        );
    }

    #[test]
    fn a_patch_sets_keeps_and_removes_keys() {
        let start = Metadata::default()
            .merged(&patch(&[("a", Some("1")), ("b", Some("2"))]).unwrap())
            .unwrap();
        let after = start
            .merged(
                &patch(&[
                    ("a", Some("")),
                    ("b", Some("3")),
                    ("c", None),
                    ("d", Some("4")),
                ])
                .unwrap(),
            )
            .unwrap();
        let expected: BTreeMap<String, String> = [("b", "3"), ("d", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(after.as_map(), &expected);
        assert_eq!(
            serde_json::to_string(&after).unwrap(),
            r#"{"b":"3","d":"4"}"#
        );
    }

    #[test]
    fn bounds_are_refused_naming_the_key() {
        let long_key = "k".repeat(KEY_MAX + 1);
        assert_eq!(
            patch(&[(&long_key, Some("v"))]),
            Err(MetadataError::KeyTooLong {
                key: long_key.clone(),
                given: 41
            })
        );
        assert!(patch(&[(&"k".repeat(KEY_MAX), Some(&"v".repeat(VALUE_MAX)))]).is_ok());
        let err = patch(&[("note", Some(&"v".repeat(VALUE_MAX + 1)))]).unwrap_err();
        assert!(err.to_string().contains("\"note\""), "{err}");
        assert_eq!(
            patch(&[("note", Some("a\u{1b}[2J"))]),
            Err(MetadataError::ValueCharacter {
                key: "note".into(),
                code: 0x1B
            })
        );
        assert_eq!(patch(&[("", Some("v"))]), Err(MetadataError::EmptyKey));
        assert!(
            patch(&[("a\tb", Some("v"))])
                .unwrap_err()
                .to_string()
                .contains("a\\tb")
        );
    }

    #[test]
    fn at_most_fifty_keys_after_the_merge() {
        let fifty: Vec<(String, Option<&str>)> = (0..KEYS_MAX)
            .map(|i| (format!("k{i}"), Some("v")))
            .collect();
        let pairs: Vec<(&str, Option<&str>)> =
            fifty.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let full = Metadata::default().merged(&patch(&pairs).unwrap()).unwrap();
        assert_eq!(
            full.merged(&patch(&[("one-more", Some("v"))]).unwrap()),
            Err(MetadataError::TooManyKeys { given: 51 })
        );
        // Replacing one key with another keeps it at fifty.
        assert!(
            full.merged(&patch(&[("k0", None), ("other", Some("v"))]).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn a_stored_map_is_checked_like_a_change() {
        let map: BTreeMap<String, String> = [("ok".to_owned(), "v".to_owned())].into();
        assert!(Metadata::parse(map).is_ok());
        let bad: BTreeMap<String, String> = [("bad\u{7}".to_owned(), "v".to_owned())].into();
        assert!(Metadata::parse(bad).is_err());
    }
}
