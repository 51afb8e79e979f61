//! The YAML document as written by users (see `design.md`). Every struct rejects unknown
//! keys; defaults are the safe choice. Compilation into the runtime form is `compile/`.

mod claims;
mod cluster;
mod cors;
mod credentials;
mod decision;
mod forward;
mod issuers;
mod log;
mod organizations;
mod rate_limits;
mod resources;
mod server;
mod tokens;
mod websocket;

pub use claims::*;
pub use cluster::*;
pub use cors::*;
pub use credentials::*;
pub use decision::*;
pub use forward::*;
pub use issuers::*;
pub use log::*;
pub use organizations::*;
pub use rate_limits::*;
pub use resources::*;
pub use server::*;
pub use tokens::*;
pub use websocket::*;

use super::values::EnvString;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// The proxy listener: address, TLS, limits, timeouts, reload.
    pub server: Server,
    /// The admin port: `/metrics`, `/healthz`, `/readyz`, pushed SETs on `/events`. Keep it
    /// private.
    #[serde(default)]
    pub admin: Admin,
    /// Who may sign or vouch for tokens (JWTs verified with the issuer's keys, opaque tokens
    /// by introspection).
    #[serde(default)]
    pub issuers: Vec<Issuer>,
    /// How tokens are presented, cached, revoked and introspected.
    #[serde(default)]
    pub tokens: Tokens,
    /// How scopes relate (a scope that implies narrower ones).
    #[serde(default)]
    pub scopes: Scopes,
    /// Where requests go, by name (routes refer to them).
    pub upstreams: BTreeMap<String, Upstream>,
    /// Method + path → what the caller must hold; the first route in file order that matches
    /// decides.
    pub routes: Vec<Route>,
    /// What the upstream receives: identity headers, headers removed, credentials.
    #[serde(default)]
    pub forward: Forward,
    /// Access restrictions per organization; the entry `default` applies to the others.
    #[serde(default)]
    pub organizations: BTreeMap<String, Organization>,
    /// How organization names compare, and a document of policies re-read periodically.
    #[serde(default)]
    pub organization_policy: OrganizationPolicy,
    /// Static keys and legacy tokens, stored as SHA-256 only.
    #[serde(default)]
    pub credentials: Vec<Credential>,
    /// The decision endpoint for nginx, Caddy, Traefik and Envoy.
    pub decision: Option<Decision>,
    /// The request and decision log.
    #[serde(default)]
    pub log: Log,
    /// OpenTelemetry traces; off without it.
    pub traces: Option<Traces>,
    /// Revocations shared by several replicas through Redis.
    pub cluster: Option<Cluster>,
    /// RFC 9728 metadata published for the APIs behind the gateway; none by default.
    #[serde(default)]
    pub protected_resources: Vec<ProtectedResource>,
    /// Rate limits over every route (one bucket per key, whichever route it takes), checked
    /// after a request was allowed and before it is forwarded: over the limit is a 429.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// CORS for browser apps on every route (a route's own `cors:` replaces it); off when
    /// absent: no origin may read an answer.
    pub cors: Option<CorsRules>,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// `host:port` of the admin port.
    #[serde(default = "default_admin_listen")]
    pub listen: EnvString,
    #[serde(default)]
    pub limits: ListenerLimits,
    #[serde(default)]
    pub timeouts: ListenerTimeouts,
}

fn default_admin_listen() -> EnvString {
    EnvString("127.0.0.1:9901".into())
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: default_admin_listen(),
            limits: ListenerLimits::default(),
            timeouts: ListenerTimeouts::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scopes {
    /// A scope and the narrower scopes it grants too (`repo: [repo:status, public_repo]`);
    /// implications chain.
    #[serde(default)]
    pub implies: BTreeMap<String, Vec<String>>,
}

mod upstreams;
pub use upstreams::*;

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A unique name: metrics, logs and `explain` use it.
    pub name: String,
    /// Which requests the route takes.
    #[serde(rename = "match")]
    pub matcher: Match,
    /// The name of an entry of `upstreams`.
    pub upstream: String,
    /// `token`: a credential is required and checked against `require`; `none`: public,
    /// nothing checked.
    #[serde(default)]
    pub auth: Auth,
    /// What the caller must hold (routes with `auth: token`).
    pub require: Option<Require>,
    /// Only credentials of these issuers (ids) are accepted; all when absent.
    pub issuers: Option<Vec<String>>,
    /// The largest request body the route takes (413 beyond); `server.limits.max_body_bytes`
    /// when absent.
    pub max_body_bytes: Option<u64>,
    /// Forward the path without this leading part of the pattern (`/api`: `/api/users` is
    /// forwarded as `/users`).
    pub strip_prefix: Option<String>,
    /// Forward this path instead, with the pattern's parameters filled in
    /// (`/v2/users/{id}`).
    pub rewrite: Option<String>,
    /// `enforce` refuses what the route does not allow; `report` decides the same way but
    /// forwards every request it would refuse for who the caller is (no or a bad credential,
    /// scopes, claims, issuer, organization, an unreachable authorization server), logging
    /// `scopegate.would_refuse` and counting `scopegate_would_refuse_total`: a new rule tried
    /// on live traffic before it is enforced.
    #[serde(default)]
    pub mode: RouteMode,
    /// CORS for this route, instead of the global `cors:`.
    pub cors: Option<CorsRules>,
    /// Rate limits of this route alone (its own buckets), besides the global ones.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Try another address once when the connection fails or is reset before any answer:
    /// for requests without a body whose method is idempotent (GET, HEAD, OPTIONS, PUT,
    /// DELETE), within the upstream's `retry_budget_percent`.
    #[serde(default)]
    pub retry: bool,
    /// WebSocket: an `Upgrade: websocket` request authorized like any other is tunnelled
    /// to the upstream (an `http1` one) both ways once it answers 101. Without it such a
    /// request is refused with 400.
    pub websocket: Option<WebSocket>,
}

impl Route {
    /// Every scope the route names, in order of appearance (for interning and the lint).
    pub fn scopes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(req) = &self.require {
            let alternatives = req.any.iter().flatten().map(|a| &a.scopes);
            for e in std::iter::once(&req.scopes).chain(alternatives).flatten() {
                e.names_into(&mut out);
            }
        }
        out
    }
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The host served: `api.example.com`, or `*.example.com` for every host under it
    /// (compared with `Host` or HTTP/2's `:authority`, without the port); any when absent.
    pub host: Option<String>,
    /// Methods taken (`GET` brings `HEAD`); all when absent.
    pub methods: Option<Vec<String>>,
    /// A path pattern: static segments, `{name}` for one segment, `{*name}` for the rest;
    /// compared with the normalized path.
    pub path: String,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// Refusals are answered.
    #[default]
    Enforce,
    /// Refusals are logged and counted, and the request is forwarded.
    Report,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// A credential is required and checked against `require`.
    #[default]
    Token,
    /// Explicitly public: no credential needed, none checked.
    None,
}

/// `require:` is either one alternative (`scopes` and/or `principal`) or `any:` alternatives.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Require {
    /// The scopes the token must carry.
    pub scopes: Option<ScopeExpr>,
    /// The kind of caller: `user` (a person through an app) or `app` (client credentials).
    pub principal: Option<Principal>,
    /// Conditions on the token's claims (groups, roles, tenant, email domain…); a token
    /// that has the scopes but not these gets a 403 `claims_not_satisfied`.
    pub claims: Option<ClaimRule>,
    /// Alternatives, each a `principal`, `scopes` and/or `claims`: one must hold.
    pub any: Option<Vec<Alternative>>,
    /// The organization the request is about (checked after the scopes).
    pub org: Option<OrgBinding>,
}

#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    /// The kind of caller this alternative is for.
    pub principal: Option<Principal>,
    /// The scopes this alternative needs.
    pub scopes: Option<ScopeExpr>,
    /// The conditions on claims this alternative needs.
    pub claims: Option<ClaimRule>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    User,
    App,
}

/// A scope name, `{ any: [...] }` or `{ all: [...] }`, nested freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeExpr {
    Scope(String),
    Any(Vec<ScopeExpr>),
    All(Vec<ScopeExpr>),
}

impl ScopeExpr {
    fn names_into<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            ScopeExpr::Scope(s) => out.push(s),
            ScopeExpr::Any(xs) | ScopeExpr::All(xs) => xs.iter().for_each(|x| x.names_into(out)),
        }
    }
}

impl Serialize for ScopeExpr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, items) = match self {
            ScopeExpr::Scope(name) => return s.serialize_str(name),
            ScopeExpr::Any(items) => ("any", items),
            ScopeExpr::All(items) => ("all", items),
        };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(key, items)?;
        map.end()
    }
}

impl JsonSchema for ScopeExpr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ScopeExpr".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let list = generator.subschema_for::<Vec<ScopeExpr>>();
        schemars::json_schema!({
            "description": "A scope name (no spaces), `{ any: [...] }` (one of them) or `{ all: [...] }` (every one), nested freely.",
            "oneOf": [
                { "type": "string", "pattern": "^[^ ]+$" },
                { "type": "object", "properties": { "any": list }, "required": ["any"], "additionalProperties": false },
                { "type": "object", "properties": { "all": list }, "required": ["all"], "additionalProperties": false }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for ScopeExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScopeExpr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scope name, `{ any: [...] }` or `{ all: [...] }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScopeExpr, E> {
                if v.is_empty() || v.contains(' ') {
                    return Err(E::custom(format!(
                        "`{v}` is not a scope name (one scope, no spaces: use `{{ all: [...] }}`)"
                    )));
                }
                Ok(ScopeExpr::Scope(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<ScopeExpr, A::Error> {
                Err(de::Error::custom(
                    "a bare list is ambiguous: write `{ any: [...] }` or `{ all: [...] }`",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScopeExpr, A::Error> {
                let key: String = map
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("expected `any:` or `all:`"))?;
                let items: Vec<ScopeExpr> = match key.as_str() {
                    "any" | "all" => map.next_value()?,
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown key `{other}`: expected `any` or `all`"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "one of `any:` or `all:` per level: nest them to combine",
                    ));
                }
                if key == "any" && items.is_empty() {
                    return Err(de::Error::custom("`any: []` can never be satisfied"));
                }
                Ok(if key == "any" {
                    ScopeExpr::Any(items)
                } else {
                    ScopeExpr::All(items)
                })
            }
        }
        d.deserialize_any(V)
    }
}
