//! When a failed upstream call may be tried again on another address: only a request that
//! cannot have been processed (idempotent, no body, nothing answered).

use std::error::Error;

/// Methods whose request may be sent twice (RFC 9110 §9.2.2).
pub const IDEMPOTENT: [http::Method; 5] = [
    http::Method::GET,
    http::Method::HEAD,
    http::Method::OPTIONS,
    http::Method::PUT,
    http::Method::DELETE,
];

/// Why an upstream call brought no answer, from either way of connecting.
#[derive(Debug)]
pub enum CallError {
    /// hyper-util's pooled client (TLS, HTTP/2, WebSocket upgrades).
    Pooled(hyper_util::client::legacy::Error),
    /// A worker's own HTTP/1 connection could not be made.
    Connect(std::io::Error),
    /// A worker's own HTTP/1 connection failed with the request on it.
    Sent(hyper::Error),
}

impl CallError {
    /// Nothing of the request can have been processed: no connection was made, or it was
    /// closed or reset before any byte of an answer.
    pub fn unanswered(&self) -> bool {
        match self {
            CallError::Pooled(e) => e.is_connect() || reset_before_answer(e),
            CallError::Connect(_) => true,
            CallError::Sent(e) => reset_before_answer(e),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Pooled(e) => write!(f, "{e}"),
            CallError::Connect(e) => write!(f, "connect: {e}"),
            CallError::Sent(e) => write!(f, "{e}"),
        }
    }
}

/// The connection was closed or reset before any byte of an answer: the upstream did not
/// process the request (or did not get to answer it).
fn reset_before_answer(e: &(dyn Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(s) = at {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        at = s.source();
    }
    false
}
