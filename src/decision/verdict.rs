//! What a decision says: the verdict (forward, with what; or refuse), and what it still needs
//! from the network ([`Ask`], answered through a [`Backend`]).

use crate::answer::{Refusal, Unreachable};
use crate::authn::Need;
use crate::principal::Principal;
use crate::token::{Cached, TokenHash};
use std::sync::Arc;

/// What to do with the request.
pub enum Verdict {
    Forward(Forward),
    Refuse(Refusal),
}

/// Why a WebSocket handshake on a route without `websocket:` is refused.
pub const NO_WEBSOCKET: &str = "this route does not take WebSocket (see routes[].websocket)";

pub struct Forward {
    pub upstream: usize,
    /// The normalized path that was matched.
    pub path: String,
    /// What is forwarded: that path (or the route's rewrite of it), with the query (minus a
    /// query credential).
    pub path_and_query: String,
    /// `None` on a public route.
    pub principal: Option<Arc<Principal>>,
    /// The organization that was checked, for `X-Auth-Org`.
    pub org: Option<http::HeaderValue>,
    /// A public route that does not check credentials: remove those presented.
    pub strip_credentials: bool,
    /// Authenticated by `?access_token=`: the answer must not be cached by shared caches
    /// (RFC 6750 §2.3, `Cache-Control: private`).
    pub query_credential: bool,
    /// The route's body limit, enforced while the body streams (413 beyond).
    pub max_body_bytes: u64,
    /// The SHA-256 of the credential that was checked: what a WebSocket tunnel it opens
    /// looks up in the revocation index while it lasts (`close_on_revoke`).
    pub credential: Option<TokenHash>,
}

/// What a decision needs from the network before it can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// What authentication needs (keys, introspection).
    Authn(Need),
    /// Whether the token's user is a member of the organization the request names, asked of
    /// the issuer's API (GitHub): the organization stage's question, after authentication.
    Membership { issuer: usize },
}

impl Ask {
    /// The answer when the network cannot help.
    pub fn refusal(self) -> Refusal {
        match self {
            Ask::Authn(need) => need.refusal(),
            Ask::Membership { .. } => Refusal::Unavailable(Unreachable::Membership),
        }
    }
}

pub struct Decided {
    /// The matched route, if any (for metrics and logs).
    pub route: Option<usize>,
    pub verdict: Verdict,
    /// Set by [`Gateway::decide`] when the refusal may go away once the network did its part.
    pub need: Option<Ask>,
    /// Who the caller was found to be, also when what it asked was refused afterwards (a
    /// 403 names its principal in the log).
    pub principal: Option<Arc<Principal>>,
    /// Authenticated by an answer served stale while the authorization server failed.
    pub stale: bool,
    /// On a route in report mode: the refusal that was not answered (the request was
    /// forwarded instead).
    pub would_refuse: Option<Refusal>,
}

impl Decided {
    pub(super) fn refuse(route: Option<usize>, r: Refusal) -> Decided {
        Decided {
            route,
            verdict: Verdict::Refuse(r),
            need: None,
            principal: None,
            stale: false,
            would_refuse: None,
        }
    }

    /// Refused until the network did what `need` says.
    pub(super) fn needs(route: usize, need: Ask) -> Decided {
        Decided {
            need: Some(need),
            ..Decided::refuse(Some(route), need.refusal())
        }
    }
}

/// The network side of a decision, provided by the sync tasks.
pub trait Backend {
    /// Fetches an issuer's keys now (rate-limited by the implementation).
    fn refresh_keys(&self, issuer: usize) -> impl Future<Output = ()> + Send;
    /// Introspects an opaque token whose SHA-256 is `digest` (coalesced, cached, bounded per
    /// `client` by the implementation); `Err` says what could not or may not be asked.
    fn introspect(
        &self,
        token: &str,
        digest: TokenHash,
        client: Option<std::net::IpAddr>,
    ) -> impl Future<Output = Result<Cached, Unreachable>> + Send;
    /// Asks `issuer` whether the token's user is a member of `org`, and remembers the answer
    /// in the state's memberships; nothing is remembered when the issuer could not answer.
    fn membership(
        &self,
        token: &str,
        digest: TokenHash,
        issuer: usize,
        org: &str,
    ) -> impl Future<Output = ()> + Send;
}
