//! Where a key of the document is: `routes[3].upstream` → line and column, so errors found
//! after parsing (an unknown upstream, a bad duration) point at the text like parse errors
//! do. The document is read again as a tree of positioned nodes (serde-saphyr's `Spanned`).

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::fmt;

enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

/// A mapping key as text, whatever scalar it is.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(Key(k)) = map.next_key()? {
                    entries.push((k, map.next_value()?));
                }
                Ok(Node::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
        }
        d.deserialize_any(V)
    }
}

/// The position of `key` in `text`: dotted names and `[index]`es (`routes[3].upstream`,
/// `upstreams.api.url`). The deepest part of the key that exists is given when the rest does
/// not (a missing field is reported where its parent is).
pub fn locate(text: &str, key: &str) -> Option<Location> {
    let root: Spanned<Node> = serde_saphyr::from_str(text).ok()?;
    let mut at = &root;
    for part in parts(key) {
        let next = match (&at.value, part) {
            (Node::Map(entries), Part::Name(name)) => {
                entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            (Node::Seq(items), Part::Index(i)) => items.get(i),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    (at.referenced.line() > 0).then_some(at.referenced)
}

enum Part<'a> {
    Name(&'a str),
    Index(usize),
}

fn parts(key: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    for piece in key.split('.') {
        let (name, mut rest) = match piece.find('[') {
            Some(i) => (&piece[..i], &piece[i..]),
            None => (piece, ""),
        };
        if !name.is_empty() {
            out.push(Part::Name(name));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            if let Ok(i) = inner[..end].parse() {
                out.push(Part::Index(i));
            }
            rest = &inner[end + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "server:\n  listen: 127.0.0.1:1\nroutes:\n  - name: a\n    upstream: api\n  - { name: b, upstream: nope }\nupstreams:\n  api: { url: \"http://x\" }\n";

    fn at(key: &str) -> (u64, u64) {
        let l = locate(DOC, key).unwrap();
        (l.line(), l.column())
    }

    #[test]
    fn keys_name_the_line_and_column_of_their_value() {
        assert_eq!(at("server.listen"), (2, 11));
        assert_eq!(at("routes[1].upstream"), (6, 26));
        assert_eq!(at("routes[0]"), (4, 5));
        assert_eq!(at("upstreams.api.url"), (8, 15));
        // A key that is not there: where its parent is.
        assert_eq!(at("routes[1].require"), at("routes[1]"));
    }
}
