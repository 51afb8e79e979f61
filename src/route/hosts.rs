//! Routes by host: a route may name the host it serves (`match.host`: `api.example.com`, or
//! `*.example.com` for every host under it), compared with the request's `Host` (HTTP/1.1) or
//! `:authority` (HTTP/2) once the edge has checked them. Each host's routes have their own
//! trie; a request is looked up in the trie of its exact host, those of the wildcards it is
//! under, and the one of routes for any host, and the first route in file order among them
//! wins — so a lookup costs a few tries, each O(path length), whatever the number of routes.

use super::methods::MethodSet;
use super::pattern::Pattern;
use super::table::{Lookup, RouteTable};
use crate::request::NormalizedPath;
use http::Method;
use std::collections::HashMap;

/// The hosts a route serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    /// One host, lower case, without a port.
    Exact(String),
    /// Every host ending with `.` + this (one label or more before it).
    Under(String),
}

impl HostMatch {
    /// `api.example.com`, `*.example.com`; a port or anything else is refused, with why.
    pub fn parse(raw: &str) -> Result<HostMatch, String> {
        let lower = raw.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.contains('*') {
            return Err(format!(
                "host `{raw}`: `*` only as the whole first label (`*.example.com`)"
            ));
        }
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(format!(
                "host `{raw}` is not a host name (letters, digits, `-` and dots; no port)"
            ));
        }
        Ok(if wildcard {
            HostMatch::Under(name.to_string())
        } else {
            HostMatch::Exact(name.to_string())
        })
    }
}

/// A request's host as routes compare it: lower case, without the port or a trailing dot.
pub fn normalize_host(raw: &str) -> String {
    let without_port = match raw.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => raw.rsplit_once(':').map_or(raw, |(h, _)| h),
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Debug)]
pub struct HostTable {
    any: RouteTable,
    exact: HashMap<String, RouteTable>,
    under: HashMap<String, RouteTable>,
}

impl HostTable {
    /// The tables of `routes` (host, pattern, methods) in file order.
    pub fn build(routes: &[(HostMatch, Pattern, MethodSet)]) -> HostTable {
        let group = |keep: &dyn Fn(&HostMatch) -> bool| {
            let picked: Vec<(usize, &Pattern, MethodSet)> = routes
                .iter()
                .enumerate()
                .filter(|(_, (h, _, _))| keep(h))
                .map(|(i, (_, p, m))| (i, p, *m))
                .collect();
            RouteTable::build_indexed(&picked)
        };
        let mut exact = HashMap::new();
        let mut under = HashMap::new();
        for (host, _, _) in routes {
            match host {
                HostMatch::Exact(h) if !exact.contains_key(h) => {
                    exact.insert(h.clone(), group(&|x| x == host));
                }
                HostMatch::Under(h) if !under.contains_key(h) => {
                    under.insert(h.clone(), group(&|x| x == host));
                }
                _ => {}
            }
        }
        HostTable {
            any: group(&|h| *h == HostMatch::Any),
            exact,
            under,
        }
    }

    /// Whether some route names a host (the request's host then matters).
    pub fn by_host(&self) -> bool {
        !self.exact.is_empty() || !self.under.is_empty()
    }

    /// The first route in file order, among those for the request's host and those for
    /// any host, whose pattern and method match; else 405 with the methods of the routes
    /// whose pattern matched, else 404.
    pub fn lookup<'p>(
        &'p self,
        host: Option<&str>,
        method: &Method,
        path: &'p NormalizedPath,
    ) -> Lookup<'p> {
        if !self.by_host() {
            return self.any.lookup(method, path);
        }
        let host = host.map(normalize_host).unwrap_or_default();
        let mut tables: Vec<&RouteTable> = Vec::with_capacity(3);
        if let Some(t) = self.exact.get(&host) {
            tables.push(t);
        }
        // Every suffix after a dot: `a.b.example.com` is under `b.example.com`, `example.com`
        // and `com`.
        let mut rest = host.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(t) = self.under.get(parent) {
                tables.push(t);
            }
            rest = parent;
        }
        tables.push(&self.any);
        let mut found: Option<Lookup<'p>> = None;
        let mut allow = MethodSet::EMPTY;
        for t in tables {
            match t.lookup(method, path) {
                Lookup::Found(m) => {
                    let better = match &found {
                        Some(Lookup::Found(best)) => m.route < best.route,
                        _ => true,
                    };
                    if better {
                        found = Some(Lookup::Found(m));
                    }
                }
                Lookup::MethodNotAllowed(m) => allow = allow.union(m),
                Lookup::NotFound => {}
            }
        }
        match found {
            Some(f) => f,
            None if !allow.is_empty() => Lookup::MethodNotAllowed(allow),
            None => Lookup::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::normalize;

    fn table(routes: &[(&str, &str)]) -> HostTable {
        let routes: Vec<(HostMatch, Pattern, MethodSet)> = routes
            .iter()
            .map(|(h, p)| {
                let host = if h.is_empty() {
                    HostMatch::Any
                } else {
                    HostMatch::parse(h).unwrap()
                };
                (host, Pattern::parse(p).unwrap(), MethodSet::ALL)
            })
            .collect();
        HostTable::build(&routes)
    }

    fn route(t: &HostTable, host: &str, path: &str) -> Option<usize> {
        let path = normalize(path).unwrap();
        match t.lookup(Some(host), &Method::GET, &path) {
            Lookup::Found(m) => Some(m.route),
            _ => None,
        }
    }

    #[test]
    fn each_host_has_its_routes_and_the_first_in_file_order_wins() {
        let t = table(&[
            ("api.example.com", "/v1/{*rest}"),
            ("*.example.com", "/v1/users"),
            ("chat.example.com", "/v1/users"),
            ("", "/health"),
            ("", "/v1/users"),
        ]);
        assert_eq!(route(&t, "api.example.com", "/v1/users"), Some(0));
        assert_eq!(
            route(&t, "API.Example.com:8443", "/v1/users"),
            Some(0),
            "case, port"
        );
        assert_eq!(
            route(&t, "chat.example.com", "/v1/users"),
            Some(1),
            "the wildcard is first"
        );
        assert_eq!(
            route(&t, "a.b.example.com", "/v1/users"),
            Some(1),
            "any depth"
        );
        assert_eq!(
            route(&t, "example.com", "/v1/users"),
            Some(4),
            "not under itself"
        );
        assert_eq!(route(&t, "other.org", "/v1/users"), Some(4));
        assert_eq!(
            route(&t, "api.example.com", "/health"),
            Some(3),
            "routes for any host"
        );
        assert_eq!(route(&t, "other.org", "/v1/x"), None);
    }

    #[test]
    fn hosts_are_names_and_wildcards_are_a_whole_first_label() {
        assert_eq!(
            HostMatch::parse("*.Example.com").unwrap(),
            HostMatch::Under("example.com".into())
        );
        for bad in [
            "api.example.com:443",
            "a*.example.com",
            "*",
            "api..com",
            "-a.com",
        ] {
            assert!(HostMatch::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_host("[::1]:8080"), "::1");
        assert_eq!(normalize_host("Example.COM."), "example.com");
    }
}
