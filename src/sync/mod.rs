//! Background work that keeps the gateway's view of the authorization servers current, and
//! the network half of decisions (key refresh for an unknown `kid`, introspection).

mod breaker;
mod budget;
mod cluster;
mod events;
mod introspect;
mod jwks;
mod org_source;
mod poll;
mod upstreams;

pub use budget::Budget;
pub use cluster::Cluster;
pub use events::{NOT_DURABLE, RevocationSink, SetMetrics, SetReceiver};
pub use introspect::{IntrospectionMetrics, Introspector};
pub use jwks::{KeyMetrics, KeySync, RefreshHandle, http_client};
pub use org_source::OrgSourceSync;
pub use poll::Poller;
pub use upstreams::{UpstreamMetrics, UpstreamSync};

use crate::decision::Backend;
use crate::token::{Cached, TokenHash};
use std::sync::Arc;

/// Largest answer read from an authorization server or policy source: a JWKS, a poll batch
/// or a policy document is far smaller; anything bigger is a fault, not data.
pub const MAX_BODY: usize = 4 << 20;

/// Reads a response body, refusing one over [`MAX_BODY`] before it is all in memory.
pub async fn read_body(mut resp: reqwest::Response) -> Result<bytes::Bytes, String> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(format!("answer over {MAX_BODY} bytes"));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("answer over {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What the proxy engine gives [`Gateway::decide_with`](crate::decision::Gateway::decide_with).
pub struct Network {
    pub keys: RefreshHandle,
    pub introspector: Arc<Introspector>,
}

/// Each call is a span of the request's trace, when traces are on.
impl Backend for Network {
    async fn refresh_keys(&self, issuer: usize) {
        crate::otel::in_span("key fetch", self.keys.refresh(issuer)).await
    }

    async fn introspect(
        &self,
        token: &str,
        digest: TokenHash,
        client: Option<std::net::IpAddr>,
    ) -> Result<Cached, crate::answer::Unreachable> {
        let asked = self.introspector.introspect(token, digest, client);
        crate::otel::in_span("introspection", asked).await
    }

    async fn membership(&self, token: &str, digest: TokenHash, issuer: usize, org: &str) {
        let asked = self.introspector.membership(token, digest, issuer, org);
        crate::otel::in_span("membership", asked).await
    }
}
