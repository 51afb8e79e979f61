//! Method sets as bit masks, so matching a method costs one AND.

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSet(u16);

const NAMES: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];
/// Methods outside the standard nine; only a route without a method list accepts them.
const EXTENSION: u16 = 1 << 9;

fn bit(m: &Method) -> u16 {
    match *m {
        Method::GET => 1,
        Method::HEAD => 1 << 1,
        Method::POST => 1 << 2,
        Method::PUT => 1 << 3,
        Method::DELETE => 1 << 4,
        Method::PATCH => 1 << 5,
        Method::OPTIONS => 1 << 6,
        Method::TRACE => 1 << 7,
        Method::CONNECT => 1 << 8,
        _ => EXTENSION,
    }
}

impl MethodSet {
    pub const ALL: MethodSet = MethodSet(u16::MAX);
    pub const EMPTY: MethodSet = MethodSet(0);
    /// What a read-only document accepts.
    pub const GET_HEAD: MethodSet = MethodSet(0b11);

    /// Parses a route's method list. `GET` brings `HEAD` along, as in nginx and most
    /// frameworks: a HEAD is a GET without the body.
    pub fn parse(names: &[String]) -> Result<MethodSet, String> {
        let mut set = 0u16;
        for name in names {
            let upper = name.to_ascii_uppercase();
            let i = NAMES.iter().position(|n| *n == upper).ok_or_else(|| {
                format!(
                    "unknown method `{name}` (expected one of {})",
                    NAMES.join(", ")
                )
            })?;
            set |= 1 << i;
        }
        if set & 1 != 0 {
            set |= 1 << 1;
        }
        if set == 0 {
            return Err("`methods: []` matches nothing: leave `methods` out to match all".into());
        }
        Ok(MethodSet(set))
    }

    pub fn contains(self, m: &Method) -> bool {
        self.0 & bit(m) != 0
    }

    pub fn union(self, other: MethodSet) -> MethodSet {
        MethodSet(self.0 | other.0)
    }

    pub fn is_superset(self, other: MethodSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The `Allow` header value: the standard methods in this set.
    pub fn allow_header(self) -> String {
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_brings_head_along_and_nothing_else() {
        let s = MethodSet::parse(&["get".into()]).unwrap();
        assert!(s.contains(&Method::GET) && s.contains(&Method::HEAD));
        assert!(!s.contains(&Method::POST));
        assert_eq!(s.allow_header(), "GET, HEAD");
    }

    #[test]
    fn extension_methods_only_match_a_route_without_a_list() {
        let m = Method::from_bytes(b"PROPFIND").unwrap();
        assert!(MethodSet::ALL.contains(&m));
        assert!(!MethodSet::parse(&["POST".into()]).unwrap().contains(&m));
    }

    #[test]
    fn unknown_and_empty_lists_are_errors() {
        assert!(MethodSet::parse(&["FETCH".into()]).is_err());
        assert!(MethodSet::parse(&[]).is_err());
    }
}
