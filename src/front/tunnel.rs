//! A WebSocket tunnel, once the client and the upstream both switched (101): bytes copied
//! both ways as they come, with backpressure (nothing more is read from one side until it
//! was written to the other), frame boundaries followed so that when the gateway ends the
//! tunnel itself — the token revoked or expired, `max_lifetime`, `idle_timeout`, the process
//! stopping — its close frame reaches each side between two frames.

use super::listen::Peer;
use crate::answer::Refusal;
use crate::generation::Current;
use crate::principal::Principal;
use crate::token::TokenHash;
use crate::websocket::{self, Ending, Frames};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a tunnel looks at the revocation index, the token's expiry and its own clocks:
/// a revocation closes it at most this long after the gateway learnt it.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// How long a side may take to finish the frame in flight before the gateway's close frame.
const FINISH_FRAME: Duration = Duration::from_secs(1);

/// How long the tunnel lasts after one side ended (the other's close handshake), or after
/// the gateway closed it, before it is dropped.
const LINGER: Duration = Duration::from_secs(5);

/// What a tunnel knows of the request that opened it.
pub struct Tunnel {
    pub rules: websocket::Rules,
    pub route: String,
    pub principal: Option<Arc<Principal>>,
    /// The issuer's `iss` (revocations name it).
    pub iss: Option<String>,
    pub credential: Option<TokenHash>,
    pub current: Current,
    /// Holds the connection's slot under `max_connections`; its `stop` ends the tunnel.
    pub peer: Arc<Peer>,
}

/// Bytes each way, and when the last one went.
struct Traffic {
    opened: Instant,
    /// Milliseconds since `opened`.
    last: AtomicU64,
    to_upstream: AtomicU64,
    to_client: AtomicU64,
    /// Which side sent the first close frame: 0 none yet, 1 the client, 2 the upstream.
    first_close: std::sync::atomic::AtomicU8,
}

impl Traffic {
    fn passed(&self, n: usize, to_upstream: bool) {
        let counter = if to_upstream {
            &self.to_upstream
        } else {
            &self.to_client
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    fn closing(&self, by_client: bool) {
        let side = if by_client { 1 } else { 2 };
        let _ = self
            .first_close
            .compare_exchange(0, side, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The side that began the close handshake, if one did.
    fn closed_by(&self) -> Option<Ending> {
        match self.first_close.load(Ordering::Relaxed) {
            1 => Some(Ending::Client),
            2 => Some(Ending::Upstream),
            _ => None,
        }
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }
}

/// Whether `req` opens a tunnel: a WebSocket handshake on a route that takes them, on a
/// connection that may switch (an HTTP/1.1 request without a body); its side of the switch.
pub fn handshake(
    req: &mut http::Request<hyper::body::Incoming>,
    rules: Option<&websocket::Rules>,
    may_switch: bool,
) -> Result<Option<OnUpgrade>, Refusal> {
    if !websocket::is_handshake(req.headers()) {
        return Ok(None);
    }
    match (rules, may_switch) {
        (None, _) => Err(Refusal::WebSocketRefused(crate::decision::NO_WEBSOCKET)),
        (Some(_), false) => Err(Refusal::WebSocketRefused(
            "a WebSocket handshake is an HTTP/1.1 request without a body",
        )),
        (Some(_), true) => Ok(Some(hyper::upgrade::on(req))),
    }
}

/// Puts back the hop-by-hop fields of a WebSocket switch that the forward policy removed.
pub fn ask_upgrade(headers: &mut http::HeaderMap) {
    use http::header::{CONNECTION, UPGRADE};
    headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, http::HeaderValue::from_static("websocket"));
}

impl Tunnel {
    pub fn new(
        gw: &crate::decision::Gateway,
        route: usize,
        principal: Option<Arc<Principal>>,
        credential: Option<TokenHash>,
        current: Current,
        peer: Arc<Peer>,
    ) -> Tunnel {
        let r = &gw.rules.routes[route];
        let iss = principal
            .as_ref()
            .and_then(|p| p.issuer)
            .map(|i| gw.rules.issuers[i].iss.clone());
        Tunnel {
            rules: r.websocket.clone().unwrap_or_default(),
            route: r.name.clone(),
            principal,
            iss,
            credential,
            current,
            peer,
        }
    }

    /// Waits for both sides to switch, then copies until the tunnel ends.
    pub async fn run(self, client: OnUpgrade, upstream: OnUpgrade) {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(route = %self.route, "websocket: no tunnel: {e}");
                return;
            }
        };
        crate::metrics::WEBSOCKET_TUNNELS.inc();
        let traffic = Traffic {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            to_upstream: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            first_close: Default::default(),
        };
        let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
        let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
        let (end, ended) = watch::channel(None);
        let up = pump(client_read, upstream_write, true, ended.clone(), &traffic);
        let down = pump(upstream_read, client_write, false, ended, &traffic);
        let ending = self.watch(up, down, &end, &traffic).await;
        crate::metrics::WEBSOCKET_TUNNELS.dec();
        crate::metrics::WEBSOCKET_CLOSED
            .with_label_values(&[self.route.as_str(), ending.reason()])
            .inc();
        tracing::info!(
            route = %self.route,
            reason = ending.reason(),
            seconds = traffic.opened.elapsed().as_secs_f64(),
            bytes_to_upstream = traffic.to_upstream.load(Ordering::Relaxed),
            bytes_to_client = traffic.to_client.load(Ordering::Relaxed),
            "websocket tunnel closed"
        );
    }

    /// Runs both directions until they end, telling them to close when a rule says so.
    async fn watch(
        &self,
        up: impl Future<Output = ()>,
        down: impl Future<Output = ()>,
        end: &watch::Sender<Option<Ending>>,
        traffic: &Traffic,
    ) -> Ending {
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        let mut ending = None;
        let mut deadline: Option<Instant> = None;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        let mut stop = self.peer.stop.clone();
        loop {
            tokio::select! {
                // The side that began the close handshake ended it; else the first to go.
                _ = &mut up, if !up_done => {
                    up_done = true;
                    ending.get_or_insert(traffic.closed_by().unwrap_or(Ending::Client));
                }
                _ = &mut down, if !down_done => {
                    down_done = true;
                    ending.get_or_insert(traffic.closed_by().unwrap_or(Ending::Upstream));
                }
                _ = tick.tick() => {
                    if ending.is_none()
                        && let Some(e) = self.due(traffic, *stop.borrow_and_update())
                    {
                        ending = Some(e);
                        let _ = end.send(Some(e));
                    }
                }
                _ = stop.changed(), if ending.is_none() => {
                    if *stop.borrow() {
                        ending = Some(Ending::Shutdown);
                        let _ = end.send(Some(Ending::Shutdown));
                    }
                }
                _ = sleep_until(deadline) => break,
            }
            if up_done && down_done {
                break;
            }
            if ending.is_some() && deadline.is_none() {
                deadline = Some(Instant::now() + LINGER);
            }
        }
        ending.unwrap_or(Ending::Client)
    }

    /// Whether a rule ends the tunnel now.
    fn due(&self, traffic: &Traffic, stopping: bool) -> Option<Ending> {
        let rules = &self.rules;
        if stopping {
            return Some(Ending::Shutdown);
        }
        if rules.close_on_revoke && self.revoked() {
            return Some(Ending::Revoked);
        }
        if rules.close_at_token_expiry
            && let Some(p) = &self.principal
            && crate::clock::unix_now() >= p.expires_at
        {
            return Some(Ending::Expired);
        }
        if rules
            .max_lifetime
            .is_some_and(|l| traffic.opened.elapsed() >= l)
        {
            return Some(Ending::Lifetime);
        }
        if rules.idle_timeout.is_some_and(|i| traffic.quiet_for() >= i) {
            return Some(Ending::Idle);
        }
        None
    }

    /// The revocation index in force names the token, its id, subject or client.
    fn revoked(&self) -> bool {
        let generation = self.current.load();
        let revocations = &generation.gateway.state.revocations;
        self.credential
            .is_some_and(|c| revocations.is_token_revoked(&c))
            || matches!((&self.principal, &self.iss), (Some(p), Some(iss)) if revocations.is_principal_revoked(p, iss))
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Copies one direction until its side closes, or until the gateway ends the tunnel: then
/// the frame in flight is finished (within [`FINISH_FRAME`]) and a close frame follows.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    to_upstream: bool,
    mut ended: watch::Receiver<Option<Ending>>,
    traffic: &Traffic,
) {
    let mut frames = Frames::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            r = from.read(&mut buf) => Ok(r),
            e = ended.wait_for(Option::is_some) => Err(e.ok().and_then(|e| *e)),
        };
        let n = match read {
            Err(ending) => {
                return close(
                    &mut from,
                    &mut to,
                    &mut frames,
                    &mut buf,
                    ending,
                    to_upstream,
                )
                .await;
            }
            Ok(Ok(0) | Err(_)) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(Ok(n)) => n,
        };
        frames.feed(&buf[..n]);
        if frames.saw_close() {
            traffic.closing(to_upstream);
        }
        traffic.passed(n, to_upstream);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Ends one direction the gateway's way: the frame in flight finished (within
/// [`FINISH_FRAME`]), then the close frame, then the end of the stream.
async fn close(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    frames: &mut Frames,
    buf: &mut [u8],
    ending: Option<Ending>,
    to_upstream: bool,
) {
    let finished = tokio::time::timeout(FINISH_FRAME, finish_frame(from, to, frames, buf)).await;
    if let (Ok(Ok(())), Some((code, reason))) = (finished, ending.and_then(Ending::close_code)) {
        // A client's frames are masked (RFC 6455 §5.3).
        let mask = to_upstream.then(mask_key);
        let _ = to
            .write_all(&websocket::close_frame(code, reason, mask))
            .await;
    }
    let _ = to.shutdown().await;
}

/// Copies the rest of the frame in flight, so what follows starts a frame.
async fn finish_frame(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    frames: &mut Frames,
    buf: &mut [u8],
) -> std::io::Result<()> {
    loop {
        let want = match frames.to_boundary() {
            Some(0) => return Ok(()),
            Some(n) => n.min(buf.len() as u64) as usize,
            // Inside a header: its length is not known yet.
            None => 1,
        };
        let n = from.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        frames.feed(&buf[..n]);
        to.write_all(&buf[..n]).await?;
    }
}

fn mask_key() -> [u8; 4] {
    let mut key = [0u8; 4];
    // A fixed key would still be a valid frame: masking protects intermediaries, not data.
    let _ = aws_lc_rs::rand::fill(&mut key);
    key
}
