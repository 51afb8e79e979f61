//! When a failed upstream call may be tried again on another address: only a request that
//! cannot have been processed (idempotent, no body, nothing answered).

/// Methods whose request may be sent twice (RFC 9110 §9.2.2).
pub const IDEMPOTENT: [http::Method; 5] = [
    http::Method::GET,
    http::Method::HEAD,
    http::Method::OPTIONS,
    http::Method::PUT,
    http::Method::DELETE,
];

/// The connection was closed or reset before any byte of an answer: the upstream did not
/// process the request (or did not get to answer it).
pub fn reset_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    use std::error::Error;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = s.source();
    }
    false
}
