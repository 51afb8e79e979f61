//! The proxy engine glue: the only module that knows pingora's types. Each filter is a few
//! lines that hand the request to [`Gateway`] and apply what it decided.

use crate::answer::{Outcome, Refusal};
use crate::forward::HeaderEdit;
use crate::gateway::{Forward, Gateway, Head, Verdict};
use crate::request::{FramingError, raw_head_has_content_length};
use crate::sync::RefreshHandle;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_core::prelude::HttpPeer;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora_core::{Error, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

pub struct ScopegateProxy {
    gateway: Arc<Gateway>,
    keys: RefreshHandle,
    tls: bool,
}

#[derive(Default)]
pub struct Ctx {
    route: Option<usize>,
    forward: Option<Forward>,
    upstream_start: Option<Instant>,
}

struct Edit<'a>(&'a mut RequestHeader);

impl HeaderEdit for Edit<'_> {
    fn remove(&mut self, name: &HeaderName) {
        while self.0.remove_header(name).is_some() {}
    }
    fn set(&mut self, name: HeaderName, value: HeaderValue) {
        // insert_header only fails on invalid names/values, which typed values cannot be.
        let _ = self.0.insert_header(name, value);
    }
}

/// Both `Content-Length` and `Transfer-Encoding` in an HTTP/1 request (pingora hides it).
fn smuggling_attempt(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .contains_key(http::header::TRANSFER_ENCODING)
        && session
            .as_downstream()
            .as_http1()
            .is_some_and(|h1| raw_head_has_content_length(&h1.get_headers_raw_bytes()))
}

async fn send(session: &mut Session, refusal: &Refusal) -> Result<()> {
    let answer = refusal.render();
    let mut resp = ResponseHeader::build(answer.status, Some(answer.headers.len() + 2))?;
    for (name, value) in answer.headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, answer.body.len())?;
    if answer.close {
        resp.insert_header(http::header::CONNECTION, "close")?;
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(answer.body), true).await
}

#[async_trait]
impl ProxyHttp for ScopegateProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let start = Instant::now();
        if smuggling_attempt(session) {
            let r = Refusal::BadFraming(FramingError::ContentLengthAndTransferEncoding);
            self.gateway.metrics.count(None, r.outcome());
            send(session, &r).await?;
            return Ok(true);
        }
        let req = session.req_header();
        let head = Head {
            method: &req.method,
            uri: &req.uri,
            headers: &req.headers,
        };
        let decided = self.gateway.decide_with_refresh(&head, &self.keys).await;
        self.gateway
            .metrics
            .decision_seconds
            .observe(start.elapsed().as_secs_f64());
        ctx.route = decided.route;
        match decided.verdict {
            Verdict::Forward(f) => {
                ctx.forward = Some(f);
                Ok(false)
            }
            Verdict::Refuse(r) => {
                self.gateway.metrics.count(ctx.route, r.outcome());
                send(session, &r).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let f = ctx
            .forward
            .as_ref()
            .ok_or_else(|| Error::explain(pingora_core::ErrorType::InternalError, "no verdict"))?;
        let u = &self.gateway.upstreams[f.upstream];
        Ok(Box::new(HttpPeer::new(u.addr, u.tls, u.host.clone())))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(f) = ctx.forward.as_ref() else {
            return Err(Error::explain(
                pingora_core::ErrorType::InternalError,
                "no verdict",
            ));
        };
        let uri = f
            .path_and_query
            .parse::<http::Uri>()
            .map_err(|_| Error::explain(pingora_core::ErrorType::InternalError, "forward path"))?;
        upstream.set_uri(uri);
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        self.gateway.forward.rewrite(
            &session.req_header().headers,
            peer,
            self.tls,
            f.principal.as_deref(),
            &mut Edit(upstream),
        );
        ctx.upstream_start = Some(Instant::now());
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.esource() {
            pingora_core::ErrorSource::Upstream => 502,
            pingora_core::ErrorSource::Downstream => 0,
            _ => 500,
        };
        if code == 502 {
            let _ = send(session, &Refusal::BadGateway).await;
        } else if code == 500 {
            let _ = session
                .respond_error_with_body(500, Bytes::from_static(b"{\"error\":\"internal_error\"}"))
                .await;
        }
        if code != 0 && ctx.forward.is_some() {
            self.gateway.metrics.count(ctx.route, Outcome::Status(code));
        }
        // Counted here; `logging` must not count it again.
        ctx.forward = None;
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, _session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        if let Some(f) = &ctx.forward {
            self.gateway.metrics.count(ctx.route, Outcome::Allowed);
            if let Some(t) = ctx.upstream_start {
                self.gateway
                    .metrics
                    .observe_upstream(f.upstream, t.elapsed().as_secs_f64());
            }
        }
    }
}

/// Stops the engine when the paired sender fires (or is dropped).
struct StopSignal(tokio::sync::Mutex<Option<oneshot::Receiver<()>>>);

#[async_trait]
impl ShutdownSignalWatch for StopSignal {
    async fn recv(&self) -> ShutdownSignal {
        if let Some(rx) = self.0.lock().await.take() {
            let _ = rx.await;
        }
        ShutdownSignal::GracefulTerminate
    }
}

/// Runs the proxy engine on the calling thread until `stop` fires.
pub fn run(
    gateway: Arc<Gateway>,
    keys: RefreshHandle,
    stop: oneshot::Receiver<()>,
) -> std::result::Result<(), String> {
    let conf = ServerConf {
        threads: gateway.threads,
        // Measured: one thread without work stealing is the cheapest per request. pingora's
        // no-steal runtime cannot be started twice in one process, so the engine runs once
        // per process (tests start the binary, not the library).
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        // Defaults under /tmp collide between instances.
        pid_file: String::new(),
        upgrade_sock: String::new(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let listen = gateway.listen.to_string();
    let tls = gateway.tls.clone();
    let proxy = ScopegateProxy {
        gateway,
        keys,
        tls: tls.is_some(),
    };
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, proxy);
    match tls {
        Some((cert, key)) => {
            let mut settings = pingora_core::listeners::tls::TlsSettings::intermediate(&cert, &key)
                .map_err(|e| format!("server.tls: {e}"))?;
            settings.enable_h2();
            service.add_tls_with_settings(&listen, None, settings);
        }
        None => service.add_tcp(&listen),
    }
    server.add_service(service);
    server.run(RunArgs {
        shutdown_signal: Box::new(StopSignal(tokio::sync::Mutex::new(Some(stop)))),
    });
    Ok(())
}
