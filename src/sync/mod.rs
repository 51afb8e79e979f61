//! Background work that keeps the gateway's view of the authorization servers current, and
//! the network half of decisions (key refresh for an unknown `kid`, introspection).

mod events;
mod introspect;
mod jwks;
mod org_source;
mod poll;

pub use events::{SetError, SetReceiver};
pub use introspect::Introspector;
pub use jwks::{KeySync, RefreshHandle, http_client};
pub use org_source::OrgSourceSync;
pub use poll::Poller;

use crate::gateway::Backend;
use crate::token::Answer;

/// What the proxy engine gives [`Gateway::decide_with`](crate::gateway::Gateway::decide_with).
pub struct Network {
    pub keys: RefreshHandle,
    pub introspector: Introspector,
}

impl Backend for Network {
    async fn refresh_keys(&self, issuer: usize) {
        self.keys.refresh(issuer).await
    }

    async fn introspect(&self, token: &str) -> Option<Answer> {
        self.introspector.introspect(token).await
    }
}
