//! JSON that says one thing: an object that repeats a member name is refused, because RFC 7515
//! §5.2 leaves it to each parser which value counts, and an upstream that reads the token again
//! might take the other one.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// A JSON value with no object that repeats a member name (names compared after unescaping).
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name) {
                return Err(de::Error::custom("a member name is repeated"));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

/// Whether `json` parses and no object in it repeats a member name.
pub fn has_unique_members(json: &[u8]) -> bool {
    serde_json::from_slice::<Unique>(json).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_member_names_are_found_at_any_depth_and_under_any_escape() {
        assert!(has_unique_members(
            br#"{"a":1,"b":{"c":[{"d":1},{"d":2}]}}"#
        ));
        assert!(!has_unique_members(br#"{"sub":"a","sub":"b"}"#));
        assert!(!has_unique_members(br#"{"sub":"a","\u0073ub":"b"}"#));
        assert!(!has_unique_members(
            br#"{"x":{"alg":"RS256","alg":"none"}}"#
        ));
        assert!(!has_unique_members(br#"[{"k":1,"k":1}]"#));
        assert!(!has_unique_members(b"not json"));
    }
}
