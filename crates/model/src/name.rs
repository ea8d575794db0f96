//! Names and ids.
//!
//! A [`Name`] is 1–63 characters of `[a-zA-Z0-9_.-]`: safe as a file name, a
//! key and a log field, and never interpreted by a shell. Ids are UUIDs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{InvalidValue, Result};

/// What a name may hold, in the words of every name error.
pub const NAME_ALLOWED: &str = "1-63 characters of a-z, A-Z, 0-9, '_', '.', '-'";

/// A validated object name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Validates `value` as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let ok = (1..=63).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && value != "."
            && value != "..";
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(field, value, NAME_ALLOWED))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("name", &value)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

impl FromStr for Name {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse("name", s)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UUID identifying a network, namespace or endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(uuid::Uuid);

impl Id {
    /// A fresh random id. Randomness is the caller's only side effect here;
    /// tests that need stable ids use [`Id::from_u128`].
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub const fn from_u128(v: u128) -> Self {
        Self(uuid::Uuid::from_u128(v))
    }

    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let trimmed = value.trim_start_matches('{').trim_end_matches('}');
        uuid::Uuid::parse_str(trimmed).map(Self).map_err(|_| {
            InvalidValue::new(
                field,
                value,
                "a UUID such as 8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e0a",
            )
        })
    }

    /// The first `n` (≤ 32) lowercase hex digits, for kernel object names.
    pub fn short_hex(&self, n: usize) -> String {
        let mut s = self.0.simple().to_string();
        s.truncate(n.min(32));
        s
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        for ok in ["a", "web-1", "db_2.prod", &"x".repeat(63)] {
            assert!(Name::parse("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "..", "é", &"x".repeat(64), "a;rm"] {
            let e = Name::parse("name", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid name "), "{e}");
        }
    }

    #[test]
    fn ids_parse_with_or_without_braces() {
        let id = Id::parse("id", "{8D2F1E1C-5B0A-4C1E-9A51-0F4B3C2D1E0A}").unwrap();
        assert_eq!(id.to_string(), "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e0a");
        assert_eq!(id.short_hex(10), "8d2f1e1c5b");
        assert!(Id::parse("id", "nope").is_err());
    }
}
