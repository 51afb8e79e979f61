//! What the upstream receives: the identity headers set by the gateway alone, and nothing a
//! client could use to impersonate someone or re-route the request behind the gateway.

use crate::principal::Principal;
use crate::request::Connection;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue};
use names::NameSet;
use request_id::{RequestIds, valid_request_id};
use std::net::IpAddr;

mod assertion;
mod names;
mod request_id;

pub use assertion::{AssertionRules, AssertionSigner, MAX_LIFETIME_SECS};

pub struct IdentityNames {
    pub subject: HeaderName,
    pub client_id: HeaderName,
    pub scopes: HeaderName,
    pub org: HeaderName,
    pub principal: HeaderName,
    pub issuer: HeaderName,
    /// `forward.claim_headers`, in the order of the first of the principal's `claim_values`.
    pub claims: Vec<HeaderName>,
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
    /// The signed identity assertion, when configured.
    pub assertion: Option<AssertionSigner>,
}

/// What the gateway settles about the request it forwards.
pub struct Settled<'a> {
    /// `None` on a public route.
    pub principal: Option<&'a Principal>,
    /// The organization that was checked, for `X-Auth-Org`.
    pub org: Option<&'a HeaderValue>,
    /// Remove the credentials the client presented (a public route that does not check them).
    pub strip_credentials: bool,
    /// The request's id ([`ForwardPolicy::request_id`]).
    pub request_id: HeaderValue,
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
    pub assertion: Option<AssertionSigner>,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// An address as a header value; IPv4 written by hand (one per request, `fmt` is the slow
/// way).
fn ip_value(ip: std::net::IpAddr) -> HeaderValue {
    let std::net::IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).expect("an address is a header value");
    };
    let mut buf = [0u8; 15];
    let mut at = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[at] = b'.';
            at += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            buf[at] = b'0' + d;
            at += 1;
        }
    }
    HeaderValue::from_bytes(&buf[..at]).expect("an address is a header value")
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) that must not travel past the gateway.
const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

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
        ];
        strip.extend(identity.claims.iter().cloned());
        strip.extend(r.assertion.as_ref().map(|a| a.header.clone()));
        strip.extend([
            CONNECTION,
            TRANSFER_ENCODING,
            CONTENT_LENGTH,
            X_FORWARDED_FOR.clone(),
            X_FORWARDED_PROTO.clone(),
        ]);
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
            assertion: r.assertion,
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

    /// The request's id: the client's `X-Request-Id` when it is sane, a new one otherwise.
    /// Taken once per request, so the log line, the answer and the upstream agree.
    pub fn request_id(&self, client: &HeaderMap) -> HeaderValue {
        // A client's id that it names in `Connection` is one the next hop would drop.
        let listed = client.get_all(CONNECTION).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(self.request_id.as_str()))
        });
        match client.get(&self.request_id) {
            Some(v) if valid_request_id(v) && !listed => v.clone(),
            _ => self.ids.next(),
        }
    }

    /// The client's headers that a caller of the decision endpoint must drop before it
    /// forwards (each name once, lower case): what [`rewrite`](Self::rewrite) would not pass,
    /// except the identity headers (answered, so overwritten), the framing and hop-by-hop
    /// headers and the forwarding headers the caller rewrites itself.
    pub fn for_caller(&self, client: &HeaderMap, strip_credentials: bool) -> Vec<HeaderName> {
        let handled_by_caller = |n: &HeaderName| {
            self.identity_names().any(|i| i == n)
                || [
                    &CONNECTION,
                    &TRANSFER_ENCODING,
                    &CONTENT_LENGTH,
                    &HOST,
                    &X_FORWARDED_FOR,
                    &X_FORWARDED_PROTO,
                    &self.request_id,
                ]
                .contains(&n)
                || HOP_BY_HOP.contains(&n.as_str())
        };
        let mut out: Vec<HeaderName> = Vec::new();
        for name in client.keys() {
            if handled_by_caller(name) || out.contains(name) {
                continue;
            }
            let credential = strip_credentials
                && ((name == AUTHORIZATION
                    && client.get_all(name).iter().any(|v| self.is_credential(v)))
                    || self.credential_headers.contains(name));
            if credential || self.removes(name) {
                out.push(name.clone());
            }
        }
        out
    }

    /// Whether `value` of `Authorization` presents a credential the gateway knows.
    fn is_credential(&self, value: &HeaderValue) -> bool {
        let scheme = value.as_bytes().split(|&b| b == b' ').next().unwrap_or(b"");
        self.credential_schemes
            .iter()
            .any(|s| s.as_bytes().eq_ignore_ascii_case(scheme))
    }

    /// The identity headers the gateway sets for `principal` and `org` (also what the
    /// decision endpoint hands its caller to copy).
    pub fn identity_headers(
        &self,
        principal: Option<&Principal>,
        org: Option<&HeaderValue>,
    ) -> impl Iterator<Item = (&HeaderName, HeaderValue)> {
        let id = &self.identity;
        let signed = self.assertion.as_ref().and_then(|a| {
            let p = principal?;
            Some((&a.header, a.assertion(p, crate::clock::unix_now())?))
        });
        let who = principal.into_iter().flat_map(move |p| {
            [
                Some((&id.subject, p.subject.clone())),
                p.client_id.as_deref().map(|c| (&id.client_id, c.clone())),
                Some((&id.scopes, p.grant.effective.clone())),
                Some((&id.principal, p.kind.header())),
                Some((&id.issuer, (*p.issuer_id).clone())),
            ]
            .into_iter()
            .flatten()
            .chain(
                id.claims
                    .iter()
                    .zip(p.claim_values().iter())
                    .filter_map(|(name, v)| Some((name, v.clone()?))),
            )
        });
        who.chain(org.map(|o| (&id.org, o.clone()))).chain(signed)
    }

    /// Every identity header's name: a caller of the decision endpoint removes the client's
    /// copies of those the gateway did not set.
    pub fn identity_names(&self) -> impl Iterator<Item = &HeaderName> {
        let id = &self.identity;
        [
            &id.subject,
            &id.client_id,
            &id.scopes,
            &id.org,
            &id.principal,
            &id.issuer,
        ]
        .into_iter()
        .chain(&id.claims)
        .chain(self.assertion.as_ref().map(|a| &a.header))
    }

    /// The headers to send upstream, built in one pass over the client's.
    pub fn rewrite(&self, client: HeaderMap, conn: &Connection, settled: Settled) -> HeaderMap {
        let Settled {
            principal,
            org,
            strip_credentials,
            request_id,
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
                Some(prev) if trusted => {
                    HeaderValue::from_str(&format!("{}, {p}", prev.to_str().unwrap_or(""))).ok()
                }
                _ => Some(ip_value(p)),
            };
            if let Some(v) = xff {
                out.insert(X_FORWARDED_FOR.clone(), v);
            }
        }
        out.insert(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
        for (name, value) in self.identity_headers(principal, org) {
            out.insert(name.clone(), value);
        }
        out.insert(self.request_id.clone(), request_id);
        out
    }
}

#[cfg(test)]
mod tests;
