//! How Security Event Tokens (RFC 8417) pushed to the gateway are verified: who signs them,
//! for whom, with which keys. Compiled from `tokens.revocation.push`.

use jsonwebtoken::Algorithm;

/// Where the transmitter's keys come from.
#[derive(Debug, Clone)]
pub enum SetKeys {
    /// A configured issuer's keys (by index).
    Issuer(usize),
    Own(String),
}

/// The compiled `tokens.revocation.push` settings.
#[derive(Debug, Clone)]
pub struct SetRules {
    pub transmitter: String,
    pub audience: String,
    pub algorithms: Vec<Algorithm>,
    pub keys: SetKeys,
}

/// The compiled `tokens.revocation.poll` settings.
#[derive(Debug, Clone)]
pub struct PollRules {
    pub set: SetRules,
    pub endpoint: String,
    pub interval: std::time::Duration,
    pub access_token: Option<String>,
    pub max_events: u32,
}
