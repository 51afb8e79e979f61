//! The request as the decision sees it: the head of the HTTP request, and the facts of the
//! connection it came on. Any front end (the proxy engine, `explain`, a benchmark) builds one.

use http::{HeaderMap, Method, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;

/// The request head, borrowed from whatever engine parsed it.
pub struct Head<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub conn: &'a Connection,
}

impl Head<'_> {
    /// The host the request is for: `Host`, else the target's authority (HTTP/2's
    /// `:authority`, an absolute-form target); the framing check made sure they agree.
    pub fn host(&self) -> Option<&str> {
        self.headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| self.uri.authority().map(|a| a.as_str()))
    }
}

/// What the connection says about the caller, apart from the request: where it comes from,
/// how it is protected, and (for credential kinds bound to the connection, such as mutual
/// TLS) the certificate it presented.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `None` when there is no network peer (`explain`, benchmarks).
    pub peer: Option<SocketAddr>,
    pub tls: bool,
    /// The negotiated HTTP version.
    pub version: Version,
    /// The client certificate (DER) of a mutual-TLS connection.
    pub peer_certificate: Option<Arc<[u8]>>,
}

impl Connection {
    /// A request that did not come over the network (a dry run, a benchmark).
    pub fn local() -> Connection {
        Connection {
            peer: None,
            tls: false,
            version: Version::HTTP_11,
            peer_certificate: None,
        }
    }
}
