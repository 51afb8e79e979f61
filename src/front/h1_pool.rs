//! A worker's own pool of plain HTTP/1 connections to upstreams (`http://`, `protocol:
//! http1`), the way most requests are forwarded. hyper-util's pooled client does the same
//! job for every kind of upstream, at about a tenth of a proxied request's instructions: a
//! pool keyed by scheme and authority (hashed three times per request), a connect future
//! raced against the checkout, and a task spawned to give back a connection whose answer is
//! still streaming. Here a worker keeps its idle connections per address in a short list,
//! takes the most recent one, and gets it back when the answer body has been passed on in
//! full (a body cut short closes its connection). TLS, HTTP/2 and WebSocket upgrades still
//! go through the pooled client.

use super::bodies::Ended;
use super::retry::CallError;
use super::upstreams::UpstreamBody;
use http::header::HOST;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The idle connections of one worker, by address.
#[derive(Default)]
pub struct H1Pool {
    idle: Mutex<Vec<(SocketAddr, VecDeque<Idle>)>>,
    /// Whether the task that closes connections idle too long runs.
    sweeping: std::sync::atomic::AtomicBool,
}

struct Idle {
    send: SendRequest<UpstreamBody>,
    since: Instant,
    /// The upstream's `timeouts.idle` when it was given back.
    expires: Duration,
}

impl Idle {
    /// Not idle too long, and not closed by the upstream.
    fn usable(&self, now: Instant) -> bool {
        now.duration_since(self.since) < self.expires && !self.send.is_closed()
    }
}

/// How one upstream uses the pool.
#[derive(Clone, Copy)]
pub struct Terms {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
}

/// A connection lent for one exchange: it goes back to the pool when its answer's body was
/// read to the end ([`Ended`]), and is closed when dropped otherwise.
pub struct Lent {
    pool: Weak<H1Pool>,
    addr: SocketAddr,
    send: SendRequest<UpstreamBody>,
    terms: Terms,
}

impl Ended for Lent {
    /// The answer was read to its end: the connection may carry another request.
    fn ended(self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(self.addr, self.send, self.terms);
        }
    }
}

impl H1Pool {
    /// Sends `req` to `addr` on an idle connection, or a new one. A request that an idle
    /// connection could not take (closed by the upstream meanwhile) goes on the next one.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        authority: &http::uri::Authority,
        mut req: Request<UpstreamBody>,
        terms: Terms,
    ) -> Result<(Response<Incoming>, Lent), CallError> {
        // An HTTP/1.0 client may send no Host; an HTTP/1.1 upstream needs one.
        if !req.headers().contains_key(HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            req.headers_mut().insert(HOST, host);
        }
        let lent = |send| Lent {
            pool: Arc::downgrade(self),
            addr,
            send,
            terms,
        };
        while let Some(mut send) = self.take(addr) {
            match send.try_send_request(req).await {
                Ok(resp) => return Ok((resp, lent(send))),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(CallError::Sent(e.into_error())),
                },
            }
        }
        // Boxed: connecting is rare, and its future would otherwise enlarge every request's.
        let mut send = Box::pin(self.connect(addr, terms.connect_timeout)).await?;
        match send.send_request(req).await {
            Ok(resp) => Ok((resp, lent(send))),
            Err(e) => Err(CallError::Sent(e)),
        }
    }

    /// The most recent idle connection to `addr` that is ready for a request and not idle
    /// too long (the sweeper closes those; the list is not walked per request). One not ready
    /// yet is left for later, not waited for: it may still be sending the body of a request
    /// its upstream answered early.
    fn take(&self, addr: SocketAddr) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let (_, list) = idle.iter_mut().find(|(a, _)| *a == addr)?;
        let now = Instant::now();
        let ready = list
            .iter()
            .rposition(|i| i.usable(now) && i.send.is_ready())?;
        list.remove(ready).map(|i| i.send)
    }

    fn give_back(self: &Arc<Self>, addr: SocketAddr, send: SendRequest<UpstreamBody>, t: Terms) {
        if send.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = match idle.iter().position(|(a, _)| *a == addr) {
            Some(i) => &mut idle[i].1,
            None => {
                idle.push((addr, VecDeque::new()));
                &mut idle.last_mut().expect("just pushed").1
            }
        };
        if list.len() >= t.max_idle {
            return;
        }
        list.push_back(Idle {
            send,
            since: Instant::now(),
            expires: t.idle_timeout,
        });
        drop(idle);
        self.sweep_soon();
    }

    async fn connect(
        self: &Arc<Self>,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<SendRequest<UpstreamBody>, CallError> {
        let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(CallError::Connect(e)),
            Err(_) => {
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
                return Err(CallError::Connect(e));
            }
        };
        tcp.set_nodelay(true).map_err(CallError::Connect)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(CallError::Sent)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream connection: {e}");
            }
        });
        Ok(send)
    }

    /// Closes connections idle longer than their upstream's `timeouts.idle` even when no
    /// request comes to take one: one task per pool, running while it keeps any.
    fn sweep_soon(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                for (_, list) in idle.iter_mut() {
                    list.retain(|i| i.usable(now));
                }
                idle.retain(|(_, list)| !list.is_empty());
                if idle.is_empty() {
                    pool.sweeping.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }
}
