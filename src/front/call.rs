//! One request's call to its upstream: an address picked by the upstream's balancer, the
//! request sent on the worker's own HTTP/1 connections or through the pooled client, within
//! the response timeout, and sent once more to another address when nothing of it can have
//! been processed (an idempotent request without a body, on a route that asks for it, within
//! the retry budget). Each address's outcome feeds its ejection.

use super::h1_pool::{H1Pool, Lent, Terms};
use super::retry::CallError;
use super::upstreams::{UpstreamBody, UpstreamClient};
use crate::balance::Outcome;
use crate::decision::Upstream;
use crate::generation::Generation;
use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Instant;

/// Why no upstream answer came.
pub enum UpstreamError {
    Timeout,
    /// No address to send to, or the error of the last try.
    Failed(Option<CallError>),
}
use UpstreamError::{Failed, Timeout};

/// The upstream's answer, and the worker's own connection it came on (given back when its
/// body has ended).
pub type Answered = (Response<Incoming>, Option<Lent>);

/// Where a request goes and how.
pub struct Call<'a> {
    pub upstream: &'a Upstream,
    /// The upstream's index in the generation's rules.
    pub index: usize,
    pub generation: &'a Generation,
    /// The pooled client, for TLS, HTTP/2 and WebSocket upgrades; `None`: the worker's own
    /// HTTP/1 connections.
    pub client: Option<UpstreamClient>,
    pub h1: &'a Arc<H1Pool>,
}

impl Call<'_> {
    /// Sends `parts` and `body` to `target` on one of the upstream's addresses; `retry`: it
    /// may be sent once more to another when the first did not process it.
    pub async fn send(
        &self,
        parts: Parts,
        body: UpstreamBody,
        target: PathAndQuery,
        retry: bool,
    ) -> Result<Answered, UpstreamError> {
        let upstream = self.upstream;
        let requests = &self.generation.requests;
        let pool = &self.generation.gateway.state.upstreams[self.index];
        let again = retry.then(|| (parts.method.clone(), parts.headers.clone(), parts.version));
        pool.retries.earn();
        let mut attempt = Some((parts, body));
        let mut avoid = None;
        loop {
            let Some((parts, body)) = attempt.take() else {
                return Err(Failed(None));
            };
            let Some(lease) = pool.pick(avoid, Instant::now()) else {
                return Err(Failed(None));
            };
            let asked = self.once(parts, body, &lease.endpoint, &target);
            let failed = match tokio::time::timeout(upstream.response_timeout, asked).await {
                Ok(Ok(answered)) => {
                    lease.report(Outcome::Answered, Instant::now());
                    return Ok(answered);
                }
                Ok(Err(None)) => return Err(Failed(None)),
                Ok(Err(Some(e))) => Some(e),
                Err(_) => None,
            };
            if lease.report(Outcome::Failed, Instant::now()) {
                requests.ejected(self.index);
            }
            let Some(failed) = failed else {
                return Err(Timeout);
            };
            match &again {
                Some((method, headers, version))
                    if avoid.is_none() && failed.unanswered() && pool.retries.spend() =>
                {
                    requests.retried(self.index);
                    tracing::info!(upstream = %upstream.name, address = %lease.endpoint.addr, "upstream: {failed}; trying another address");
                    avoid = Some(lease.endpoint.addr);
                    let (mut next, ()) = Request::new(()).into_parts();
                    next.method = method.clone();
                    next.headers = headers.clone();
                    next.version = *version;
                    attempt = Some((next, Either::Right(Empty::new())));
                }
                _ => return Err(Failed(Some(failed))),
            }
        }
    }

    /// One try on one address (`None`: no URI could be made of it).
    async fn once(
        &self,
        mut parts: Parts,
        body: UpstreamBody,
        endpoint: &crate::balance::Endpoint,
        target: &PathAndQuery,
    ) -> Result<Answered, Option<CallError>> {
        let upstream = self.upstream;
        let Some(client) = &self.client else {
            parts.uri = Uri::from(target.clone());
            let terms = Terms {
                connect_timeout: upstream.connect_timeout,
                idle_timeout: upstream.idle_timeout,
                max_idle: upstream.max_idle,
            };
            let req = Request::from_parts(parts, body);
            let (resp, lent) = self
                .h1
                .send(endpoint.addr, &endpoint.authority, req, terms)
                .await?;
            return Ok((resp, Some(lent)));
        };
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(if upstream.tls {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        });
        uri.authority = Some(endpoint.authority.clone());
        uri.path_and_query = Some(target.clone());
        parts.uri = Uri::from_parts(uri).map_err(|_| None)?;
        match client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => Ok((resp, None)),
            Err(e) => Err(Some(CallError::Pooled(e))),
        }
    }
}
