//! What the upstream receives: the identity headers set by the gateway alone, and nothing a
//! client could use to impersonate someone or re-route the request behind the gateway.

use crate::principal::Principal;
use crate::request::Connection;
use http::header::{AUTHORIZATION, CONNECTION};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct IdentityNames {
    pub subject: HeaderName,
    pub client_id: HeaderName,
    pub scopes: HeaderName,
    pub org: HeaderName,
    pub principal: HeaderName,
    pub issuer: HeaderName,
}

pub struct ForwardPolicy {
    pub identity: IdentityNames,
    /// Client headers always removed: identity headers, configured strip list, hop-by-hop.
    strip: NameSet,
    pub request_id: HeaderName,
    pub trusted_proxies: Vec<IpAddr>,
    ids: RequestIds,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Hop-by-hop headers (RFC 9110 §7.6.1) that must not travel past the gateway.
const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// A small set of header names, bucketed by length: a membership test is a length index and
/// a few byte comparisons, cheaper than hashing every client header.
struct NameSet(Vec<Vec<HeaderName>>);

impl NameSet {
    fn new(names: Vec<HeaderName>) -> NameSet {
        let mut buckets: Vec<Vec<HeaderName>> = Vec::new();
        for n in names {
            let len = n.as_str().len();
            if buckets.len() <= len {
                buckets.resize(len + 1, Vec::new());
            }
            if !buckets[len].contains(&n) {
                buckets[len].push(n);
            }
        }
        NameSet(buckets)
    }

    fn contains(&self, name: &HeaderName) -> bool {
        self.0
            .get(name.as_str().len())
            .is_some_and(|b| b.iter().any(|n| n == name))
    }
}

impl ForwardPolicy {
    pub fn new(
        identity: IdentityNames,
        extra_strip: Vec<HeaderName>,
        strip_authorization: bool,
        request_id: HeaderName,
        trusted_proxies: Vec<IpAddr>,
    ) -> ForwardPolicy {
        let mut strip = vec![
            identity.subject.clone(),
            identity.client_id.clone(),
            identity.scopes.clone(),
            identity.org.clone(),
            identity.principal.clone(),
            identity.issuer.clone(),
            CONNECTION,
            X_FORWARDED_FOR.clone(),
            X_FORWARDED_PROTO.clone(),
        ];
        strip.extend(HOP_BY_HOP.iter().map(|h| HeaderName::from_static(h)));
        strip.extend(extra_strip);
        if strip_authorization {
            strip.push(AUTHORIZATION);
        }
        ForwardPolicy {
            identity,
            strip: NameSet::new(strip),
            request_id,
            trusted_proxies,
            ids: RequestIds::new(),
        }
    }

    /// The headers to send upstream, built in one pass over the client's; returns them and
    /// the request id used.
    pub fn rewrite(
        &self,
        client: HeaderMap,
        conn: &Connection,
        principal: Option<&Principal>,
        org: Option<&HeaderValue>,
    ) -> (HeaderMap, HeaderValue) {
        // Headers the client names in `Connection` would be dropped by the next proxy, after
        // the gateway set them: they are dropped here, before the gateway sets its own.
        let mut listed: Vec<HeaderName> = Vec::new();
        for value in client.get_all(CONNECTION) {
            for token in value.to_str().unwrap_or("").split(',') {
                if let Ok(name) = HeaderName::from_bytes(token.trim().as_bytes()) {
                    listed.push(name);
                }
            }
        }
        let mut prior_xff = None;
        let mut client_id = None;
        let mut out = HeaderMap::with_capacity(client.len() + 8);
        let mut last: Option<HeaderName> = None;
        for (name, value) in client {
            // `into_iter` names a header once, then yields its further values with `None`.
            let name = match name {
                Some(n) => {
                    last = Some(n.clone());
                    n
                }
                None => match &last {
                    Some(n) => n.clone(),
                    None => continue,
                },
            };
            if listed.contains(&name) {
                continue;
            }
            if name == X_FORWARDED_FOR {
                prior_xff.get_or_insert(value);
                continue;
            }
            if name == self.request_id {
                client_id.get_or_insert(value);
                continue;
            }
            if self.strip.contains(&name) {
                continue;
            }
            out.append(name, value);
        }

        let peer = conn.peer.map(|p| p.ip());
        let trusted = peer.is_some_and(|ip| self.trusted_proxies.contains(&ip));
        if let Some(p) = peer {
            let xff = match prior_xff {
                Some(prev) if trusted => format!("{}, {p}", prev.to_str().unwrap_or("")),
                _ => p.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&xff) {
                out.insert(X_FORWARDED_FOR.clone(), v);
            }
        }
        out.insert(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
        if let Some(p) = principal {
            out.insert(self.identity.subject.clone(), p.subject.clone());
            if let Some(c) = &p.client_id {
                out.insert(self.identity.client_id.clone(), c.clone());
            }
            out.insert(self.identity.scopes.clone(), p.grant.effective.clone());
            out.insert(self.identity.principal.clone(), p.kind.header());
            out.insert(self.identity.issuer.clone(), p.issuer_id.clone());
        }
        if let Some(o) = org {
            out.insert(self.identity.org.clone(), o.clone());
        }
        let id = match client_id {
            Some(v) if valid_request_id(&v) => v,
            _ => self.ids.next(),
        };
        out.insert(self.request_id.clone(), id.clone());
        (out, id)
    }
}

fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// Request ids: a random 64-bit prefix per process and a counter; unique without a syscall.
struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        let mut seed = [0u8; 8];
        // If the system RNG fails, ids stay unique within the process through the counter.
        let _ = aws_lc_rs::rand::fill(&mut seed);
        RequestIds {
            prefix: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:016x}{:016x}", self.prefix, n))
            .expect("hex is a valid header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Grant, Kind};
    use crate::scope::ScopeSet;

    fn policy(strip_authorization: bool) -> ForwardPolicy {
        let n = |s: &'static str| HeaderName::from_static(s);
        ForwardPolicy::new(
            IdentityNames {
                subject: n("x-auth-subject"),
                client_id: n("x-auth-client-id"),
                scopes: n("x-auth-scopes"),
                org: n("x-auth-org"),
                principal: n("x-auth-principal"),
                issuer: n("x-auth-issuer"),
            },
            vec![n("x-original-url"), n("x-forwarded-host")],
            strip_authorization,
            n("x-request-id"),
            vec!["10.0.0.1".parse().unwrap()],
        )
    }

    fn alice() -> Principal {
        Principal {
            issuer: Some(0),
            kind: Kind::User,
            expires_at: 0,
            issued_at: None,
            jti: None,
            orgs: Box::default(),
            sso_orgs: Box::default(),
            subject: HeaderValue::from_static("alice"),
            client_id: Some(HeaderValue::from_static("app")),
            issuer_id: HeaderValue::from_static("corp"),
            grant: std::sync::Arc::new(Grant {
                scopes: ScopeSet::default(),
                effective: HeaderValue::from_static("a b"),
                token_scopes: HeaderValue::from_static("a"),
            }),
        }
    }

    fn client(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn forward(p: &ForwardPolicy, c: &HeaderMap, peer: &str, who: Option<&Principal>) -> HeaderMap {
        let conn = Connection {
            peer: Some(std::net::SocketAddr::new(peer.parse().unwrap(), 40000)),
            ..Connection::local()
        };
        p.rewrite(c.clone(), &conn, who, None).0
    }

    #[test]
    fn spoofed_identity_headers_are_replaced_by_the_gateways() {
        let c = client(&[
            ("x-auth-subject", "root"),
            ("x-auth-org", "evil"),
            ("x-auth-scopes", "admin"),
        ]);
        let out = forward(&policy(false), &c, "127.0.0.1", Some(&alice()));
        assert_eq!(
            out.get_all("x-auth-subject").iter().collect::<Vec<_>>(),
            vec!["alice"]
        );
        assert_eq!(out["x-auth-scopes"], "a b");
        assert!(out.get("x-auth-org").is_none());
        assert_eq!(out["x-auth-principal"], "user");
    }

    #[test]
    fn identity_headers_are_removed_on_public_routes_too() {
        let c = client(&[("x-auth-subject", "root")]);
        let out = forward(&policy(false), &c, "127.0.0.1", None);
        assert!(out.get("x-auth-subject").is_none());
    }

    #[test]
    fn headers_named_in_connection_are_dropped_and_connection_too() {
        let c = client(&[
            ("connection", "close, X-Request-Id, x-forwarded-for"),
            ("x-request-id", "abc"),
        ]);
        let out = forward(&policy(false), &c, "127.0.0.1", Some(&alice()));
        assert!(out.get("connection").is_none());
        // Set again by the gateway, after the client's were dropped.
        assert_eq!(out["x-forwarded-for"], "127.0.0.1");
        assert_ne!(out["x-request-id"], "abc");
    }

    #[test]
    fn ordinary_headers_pass_with_all_their_values() {
        let c = client(&[
            ("accept", "a"),
            ("x-custom", "1"),
            ("x-custom", "2"),
            ("host", "api"),
        ]);
        let out = forward(&policy(false), &c, "127.0.0.1", None);
        assert_eq!(
            out.get_all("x-custom").iter().collect::<Vec<_>>(),
            vec!["1", "2"]
        );
        assert_eq!(out["accept"], "a");
        assert_eq!(out["host"], "api");
    }

    #[test]
    fn routing_headers_trusted_by_frameworks_are_stripped() {
        let c = client(&[
            ("x-original-url", "/admin"),
            ("x-forwarded-host", "evil"),
            ("proxy-authorization", "x"),
        ]);
        let out = forward(&policy(false), &c, "127.0.0.1", None);
        assert!(out.get("x-original-url").is_none());
        assert!(out.get("x-forwarded-host").is_none());
        assert!(out.get("proxy-authorization").is_none());
    }

    #[test]
    fn forwarded_for_is_rewritten_unless_the_peer_is_a_trusted_proxy() {
        let c = client(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            forward(&policy(false), &c, "192.0.2.9", None)["x-forwarded-for"],
            "192.0.2.9"
        );
        assert_eq!(
            forward(&policy(false), &c, "10.0.0.1", None)["x-forwarded-for"],
            "1.2.3.4, 10.0.0.1"
        );
        assert_eq!(
            forward(&policy(false), &c, "10.0.0.1", None)["x-forwarded-proto"],
            "http"
        );
    }

    #[test]
    fn authorization_is_kept_or_stripped_as_configured() {
        let c = client(&[("authorization", "Bearer t")]);
        assert_eq!(
            forward(&policy(false), &c, "127.0.0.1", None)["authorization"],
            "Bearer t"
        );
        assert!(
            forward(&policy(true), &c, "127.0.0.1", None)
                .get("authorization")
                .is_none()
        );
    }

    #[test]
    fn a_sane_request_id_is_kept_and_a_hostile_one_replaced() {
        let c = client(&[("x-request-id", "req-42")]);
        assert_eq!(
            forward(&policy(false), &c, "127.0.0.1", None)["x-request-id"],
            "req-42"
        );
        let c = client(&[("x-request-id", "a b<script>")]);
        let id = forward(&policy(false), &c, "127.0.0.1", None)["x-request-id"].clone();
        assert_eq!(id.len(), 32);
        let other =
            forward(&policy(false), &HeaderMap::new(), "127.0.0.1", None)["x-request-id"].clone();
        assert_ne!(id, other);
    }
}
