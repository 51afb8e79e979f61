//! What the upstream receives: the identity headers set by the gateway alone, and nothing a
//! client could use to impersonate someone or re-route the request behind the gateway.

use crate::principal::Principal;
use crate::request::Connection;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
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
    /// Client headers always removed: identity headers, configured strip list, hop-by-hop,
    /// framing (the engine frames the forwarded body itself).
    strip: NameSet,
    /// Client headers starting with one of these (lowercase) are removed.
    strip_prefixes: Vec<String>,
    /// Forward client headers whose name has `_` (unless they read as a stripped one).
    forward_underscores: bool,
    /// Where credentials are presented, removed on public routes: `Authorization` schemes
    /// (lowercase) and legacy credential headers.
    credential_schemes: Vec<String>,
    credential_headers: Vec<HeaderName>,
    pub request_id: HeaderName,
    pub trusted_proxies: Vec<IpAddr>,
    ids: RequestIds,
}

/// What the gateway settles about the request it forwards.
pub struct Settled<'a> {
    /// `None` on a public route.
    pub principal: Option<&'a Principal>,
    /// The organization that was checked, for `X-Auth-Org`.
    pub org: Option<&'a HeaderValue>,
    /// Remove the credentials the client presented (a public route that does not check them).
    pub strip_credentials: bool,
}

/// How a configuration shapes the forwarded headers.
pub struct ForwardRules {
    pub identity: IdentityNames,
    /// Headers removed besides the gateway's own list.
    pub strip: Vec<HeaderName>,
    pub strip_prefixes: Vec<String>,
    pub strip_authorization: bool,
    pub forward_underscores: bool,
    /// Schemes that carry credentials (bearer aliases, legacy schemes).
    pub credential_schemes: Vec<String>,
    /// Headers that carry legacy credentials.
    pub credential_headers: Vec<HeaderName>,
    pub request_id: HeaderName,
    pub trusted_proxies: Vec<IpAddr>,
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

    fn contains(&self, name: &str) -> bool {
        self.0
            .get(name.len())
            .is_some_and(|b| b.iter().any(|n| n.as_str() == name))
    }
}

impl ForwardPolicy {
    pub fn new(r: ForwardRules) -> ForwardPolicy {
        let identity = r.identity;
        let mut strip = vec![
            identity.subject.clone(),
            identity.client_id.clone(),
            identity.scopes.clone(),
            identity.org.clone(),
            identity.principal.clone(),
            identity.issuer.clone(),
            CONNECTION,
            TRANSFER_ENCODING,
            CONTENT_LENGTH,
            X_FORWARDED_FOR.clone(),
            X_FORWARDED_PROTO.clone(),
        ];
        strip.extend(HOP_BY_HOP.iter().map(|h| HeaderName::from_static(h)));
        strip.extend(r.strip);
        if r.strip_authorization {
            strip.push(AUTHORIZATION);
        }
        ForwardPolicy {
            identity,
            strip: NameSet::new(strip),
            strip_prefixes: r
                .strip_prefixes
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
            forward_underscores: r.forward_underscores,
            credential_schemes: r
                .credential_schemes
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            credential_headers: r.credential_headers,
            request_id: r.request_id,
            trusted_proxies: r.trusted_proxies,
            ids: RequestIds::new(),
        }
    }

    /// Whether a client header never reaches the upstream: stripped by name or prefix, or
    /// named with `_` (dropped; or, when forwarded, read with `-` for `_` so that
    /// `X_Auth_Subject` is the stripped `X-Auth-Subject` to a CGI-style upstream).
    fn removes(&self, name: &HeaderName) -> bool {
        let n = name.as_str();
        if self.strip.contains(n) || self.strip_prefixes.iter().any(|p| n.starts_with(p)) {
            return true;
        }
        if !n.contains('_') {
            return false;
        }
        if !self.forward_underscores {
            return true;
        }
        let dashed = n.replace('_', "-");
        self.strip.contains(&dashed)
            || self.strip_prefixes.iter().any(|p| dashed.starts_with(p))
            || [self.request_id.as_str(), HOST.as_str(), "x-forwarded-for"]
                .contains(&dashed.as_str())
            || self.credential_headers.iter().any(|h| h.as_str() == dashed)
            || dashed == AUTHORIZATION.as_str()
    }

    /// Whether `value` of `Authorization` presents a credential the gateway knows.
    fn is_credential(&self, value: &HeaderValue) -> bool {
        let scheme = value.as_bytes().split(|&b| b == b' ').next().unwrap_or(b"");
        self.credential_schemes
            .iter()
            .any(|s| s.as_bytes().eq_ignore_ascii_case(scheme))
    }

    /// The headers to send upstream, built in one pass over the client's; returns them and
    /// the request id used.
    pub fn rewrite(
        &self,
        client: HeaderMap,
        conn: &Connection,
        settled: Settled,
    ) -> (HeaderMap, HeaderValue) {
        let Settled {
            principal,
            org,
            strip_credentials,
        } = settled;
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
            if self.removes(&name) {
                continue;
            }
            if strip_credentials
                && ((name == AUTHORIZATION && self.is_credential(&value))
                    || self.credential_headers.contains(&name))
            {
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

    fn rules(strip_authorization: bool) -> ForwardRules {
        let n = |s: &'static str| HeaderName::from_static(s);
        ForwardRules {
            identity: IdentityNames {
                subject: n("x-auth-subject"),
                client_id: n("x-auth-client-id"),
                scopes: n("x-auth-scopes"),
                org: n("x-auth-org"),
                principal: n("x-auth-principal"),
                issuer: n("x-auth-issuer"),
            },
            strip: vec![n("x-original-url"), n("x-forwarded-host")],
            strip_prefixes: vec!["x-envoy-".into()],
            strip_authorization,
            forward_underscores: false,
            credential_schemes: vec!["Bearer".into(), "Zoho-authtoken".into()],
            credential_headers: vec![n("x-api-key")],
            request_id: n("x-request-id"),
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    fn policy(strip_authorization: bool) -> ForwardPolicy {
        ForwardPolicy::new(rules(strip_authorization))
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

    fn forward_as(p: &ForwardPolicy, c: &HeaderMap, peer: &str, settled: Settled) -> HeaderMap {
        let conn = Connection {
            peer: Some(std::net::SocketAddr::new(peer.parse().unwrap(), 40000)),
            ..Connection::local()
        };
        p.rewrite(c.clone(), &conn, settled).0
    }

    fn forward(p: &ForwardPolicy, c: &HeaderMap, peer: &str, who: Option<&Principal>) -> HeaderMap {
        let settled = Settled {
            principal: who,
            org: None,
            strip_credentials: false,
        };
        forward_as(p, c, peer, settled)
    }

    #[test]
    fn headers_with_underscores_are_dropped_by_default() {
        let c = client(&[
            ("x_auth_subject", "root"),
            ("x_custom", "1"),
            ("x-custom", "2"),
        ]);
        let out = forward(&policy(false), &c, "127.0.0.1", None);
        assert!(out.get("x_auth_subject").is_none());
        assert!(out.get("x_custom").is_none());
        assert_eq!(out["x-custom"], "2");
    }

    #[test]
    fn forwarded_underscore_headers_never_include_look_alikes_of_protected_ones() {
        let p = ForwardPolicy::new(ForwardRules {
            forward_underscores: true,
            ..rules(false)
        });
        let c = client(&[
            ("x_auth_subject", "root"),
            ("X_Auth_Org", "evil"),
            ("transfer_encoding", "chunked"),
            ("content_length", "5"),
            ("x_forwarded_for", "1.2.3.4"),
            ("x_request_id", "x"),
            ("x_original_url", "/admin"),
            ("x_envoy_internal", "true"),
            ("x_api_key", "k"),
            ("x_custom", "1"),
        ]);
        let out = forward(&p, &c, "127.0.0.1", Some(&alice()));
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert!(
            names.iter().all(|n| !n.contains('_') || *n == "x_custom"),
            "{names:?}"
        );
        assert_eq!(out["x_custom"], "1");
    }

    #[test]
    fn framing_headers_and_prefixed_internal_headers_are_never_copied() {
        let c = client(&[
            ("transfer-encoding", "gzip, chunked"),
            ("content-length", "5"),
            ("x-envoy-internal", "true"),
            ("x-envoyish", "kept"),
        ]);
        let out = forward(&policy(false), &c, "127.0.0.1", None);
        assert!(out.get("transfer-encoding").is_none());
        assert!(out.get("content-length").is_none());
        assert!(out.get("x-envoy-internal").is_none());
        assert_eq!(out["x-envoyish"], "kept");
    }

    #[test]
    fn credentials_on_a_public_route_are_stripped_but_other_authorization_schemes_pass() {
        let strip = |pairs: &[(&str, &str)]| {
            let settled = Settled {
                principal: None,
                org: None,
                strip_credentials: true,
            };
            forward_as(&policy(false), &client(pairs), "127.0.0.1", settled)
        };
        let out = strip(&[("authorization", "Bearer t"), ("x-api-key", "k")]);
        assert!(out.get("authorization").is_none());
        assert!(out.get("x-api-key").is_none());
        let out = strip(&[("authorization", "zoho-AUTHTOKEN t")]);
        assert!(out.get("authorization").is_none());
        let out = strip(&[("authorization", "Basic dTpw")]);
        assert_eq!(out["authorization"], "Basic dTpw");
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
