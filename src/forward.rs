//! What the upstream receives: the identity headers set by the gateway alone, and nothing a
//! client could use to impersonate someone or re-route the request behind the gateway.

use crate::principal::Principal;
use http::header::{AUTHORIZATION, CONNECTION};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The engine-side header editor (pingora's request header, a hyper request, a test map).
pub trait HeaderEdit {
    fn remove(&mut self, name: &HeaderName);
    fn set(&mut self, name: HeaderName, value: HeaderValue);
}

impl HeaderEdit for HeaderMap {
    fn remove(&mut self, name: &HeaderName) {
        HeaderMap::remove(self, name);
    }
    fn set(&mut self, name: HeaderName, value: HeaderValue) {
        self.insert(name, value);
    }
}

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
    pub strip: Vec<HeaderName>,
    pub strip_authorization: bool,
    pub request_id: HeaderName,
    pub trusted_proxies: Vec<IpAddr>,
    ids: RequestIds,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Hop-by-hop headers (RFC 9110 §7.6.1) that must not travel past the gateway.
const HOP_BY_HOP: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
];

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
        ];
        strip.extend(HOP_BY_HOP.iter().map(|h| HeaderName::from_static(h)));
        for h in extra_strip {
            if !strip.contains(&h) {
                strip.push(h);
            }
        }
        ForwardPolicy {
            identity,
            strip,
            strip_authorization,
            request_id,
            trusted_proxies,
            ids: RequestIds::new(),
        }
    }

    /// Rewrites the forwarded headers; returns the request id used.
    pub fn rewrite(
        &self,
        client: &HeaderMap,
        peer: Option<IpAddr>,
        tls: bool,
        principal: Option<&Principal>,
        out: &mut impl HeaderEdit,
    ) -> HeaderValue {
        for name in &self.strip {
            out.remove(name);
        }
        // Headers the client names in `Connection` would be dropped by the next proxy, after
        // the gateway set them: drop them here, before setting ours.
        let mut upgrade = false;
        let mut hop_by_hop = Vec::new();
        for value in client.get_all(CONNECTION) {
            for token in value.to_str().unwrap_or("").split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("upgrade") {
                    upgrade = true;
                } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    out.remove(&name);
                    hop_by_hop.push(name);
                }
            }
        }
        // What the client marked hop-by-hop does not count as sent.
        let sent = |name: &HeaderName| client.get(name).filter(|_| !hop_by_hop.contains(name));
        out.remove(&CONNECTION);
        if upgrade {
            out.set(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        if self.strip_authorization {
            out.remove(&AUTHORIZATION);
        }

        let peer_value = peer.map(|p| p.to_string());
        let xff = match (peer_value, sent(&X_FORWARDED_FOR)) {
            (Some(p), Some(prev)) if peer.is_some_and(|ip| self.trusted_proxies.contains(&ip)) => {
                HeaderValue::from_str(&format!("{}, {p}", prev.to_str().unwrap_or(""))).ok()
            }
            (Some(p), _) => HeaderValue::from_str(&p).ok(),
            (None, _) => None,
        };
        match xff {
            Some(v) => out.set(X_FORWARDED_FOR.clone(), v),
            None => out.remove(&X_FORWARDED_FOR),
        }
        out.set(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(if tls { "https" } else { "http" }),
        );

        if let Some(p) = principal {
            let h = &p.headers;
            out.set(self.identity.subject.clone(), h.subject.clone());
            if let Some(c) = &h.client_id {
                out.set(self.identity.client_id.clone(), c.clone());
            }
            out.set(self.identity.scopes.clone(), h.scopes.clone());
            out.set(self.identity.principal.clone(), h.principal.clone());
            out.set(self.identity.issuer.clone(), h.issuer.clone());
        }

        let id = match sent(&self.request_id) {
            Some(v) if valid_request_id(v) => v.clone(),
            _ => self.ids.next(),
        };
        out.set(self.request_id.clone(), id.clone());
        id
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
    use crate::policy::ScopeSet;
    use crate::principal::{IdentityValues, Kind};

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
            issuer: 0,
            subject: "alice".into(),
            client_id: Some("app".into()),
            kind: Kind::User,
            scopes: ScopeSet::default(),
            expires_at: 0,
            headers: IdentityValues {
                subject: HeaderValue::from_static("alice"),
                client_id: Some(HeaderValue::from_static("app")),
                scopes: HeaderValue::from_static("a b"),
                token_scopes: HeaderValue::from_static("a"),
                principal: HeaderValue::from_static("user"),
                issuer: HeaderValue::from_static("corp"),
            },
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
        let mut out = c.clone();
        p.rewrite(c, Some(peer.parse().unwrap()), false, who, &mut out);
        out
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
