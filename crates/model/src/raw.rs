//! Lenient serde readers for the raw fields of the specs (the API bodies).
//!
//! Specs carry what the user typed; `validate` turns them into typed values. People write
//! `"vni": 4096` and `"vni": "4096"`, `"local_ports": "80,443"` and
//! `"local_ports": [80, "1000-2000"]`, so these readers accept a string, a
//! number, or (for lists) an array of either, and always yield the text form
//! (lists joined with `,`). Anything else (objects, booleans, nested arrays)
//! is an error, which the API's route decoder reports with the field's name.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::fmt;

/// Reads an optional scalar (string or number) as its text.
pub fn opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(ScalarVisitor { list: false })
}

/// Reads an optional list (string, number, or array of those) as comma-joined text.
pub fn opt_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(ScalarVisitor { list: true })
}

struct ScalarVisitor {
    list: bool,
}

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.list {
            f.write_str("a string, a number, or an array of strings and numbers")
        } else {
            f.write_str("a string or a number")
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if !self.list {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<ListItem>()? {
            items.push(item.0);
        }
        Ok(Some(items.join(",")))
    }
}

/// A field that is one optional string on the wire and a list in the
/// spec (a network's `subnet`): none or one element. A list of several
/// cannot be written (it is refused, not truncated).
pub mod one_of {
    use serde::{ser, Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.into_iter().collect())
    }

    pub fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        match v {
            [] => s.serialize_none(),
            [one] => s.serialize_str(one),
            _ => Err(ser::Error::custom("one value at most")),
        }
    }
}

/// One element of a list: a string or a number, as text.
struct ListItem(String);

impl<'de> de::Deserialize<'de> for ListItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(ScalarVisitor { list: false })? {
            Some(text) => Ok(ListItem(text)),
            None => Err(de::Error::custom("a list item is null")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "super::opt_scalar")]
        one: Option<String>,
        #[serde(default, deserialize_with = "super::opt_list")]
        many: Option<String>,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn scalars_accept_strings_numbers_and_null() {
        assert_eq!(probe(r#"{"one":"7"}"#).unwrap().one.as_deref(), Some("7"));
        assert_eq!(probe(r#"{"one":7}"#).unwrap().one.as_deref(), Some("7"));
        assert_eq!(probe(r#"{"one":-7}"#).unwrap().one.as_deref(), Some("-7"));
        assert_eq!(probe(r#"{"one":null}"#).unwrap().one, None);
        assert_eq!(probe(r#"{}"#).unwrap().one, None);
        assert!(probe(r#"{"one":[1]}"#).is_err());
        assert!(probe(r#"{"one":true}"#).is_err());
    }

    #[test]
    fn lists_are_joined_with_commas() {
        let p = probe(r#"{"many":[80,"1000-2000"]}"#).unwrap();
        assert_eq!(p.many.as_deref(), Some("80,1000-2000"));
        assert_eq!(
            probe(r#"{"many":"80,443"}"#).unwrap().many.as_deref(),
            Some("80,443")
        );
        assert!(probe(r#"{"many":[[1]]}"#).is_err());
        assert!(probe(r#"{"many":[null]}"#).is_err());
        assert!(probe(r#"{"many":{"a":1}}"#).is_err());
    }
}
