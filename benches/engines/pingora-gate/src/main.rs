//! `pingora-gate UPSTREAM THREADS PLAIN_ADDR [TLS_ADDR CERT KEY]`: proxies to UPSTREAM every
//! request that carries `Authorization: Bearer <something>` and answers 401 otherwise. The
//! least a gateway does, so its CPU per request is a floor for any pingora-based scopegate.
use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::{http_proxy_service, ProxyHttp, Session};

struct Gate {
    upstream: String,
}

fn has_bearer(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

#[async_trait]
impl ProxyHttp for Gate {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        if has_bearer(session) {
            return Ok(false);
        }
        let mut resp = ResponseHeader::build(401, Some(2))?;
        resp.insert_header("WWW-Authenticate", "Bearer")?;
        resp.insert_header("Content-Length", "0")?;
        session.write_response_header(Box::new(resp), true).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _s: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 7 {
        eprintln!("usage: pingora-gate UPSTREAM THREADS PLAIN_ADDR [TLS_ADDR CERT KEY]");
        std::process::exit(2);
    }
    let mut conf = ServerConf::default();
    conf.threads = args[2].parse().expect("THREADS is a number");
    conf.work_stealing = false;
    conf.grace_period_seconds = Some(0);
    conf.graceful_shutdown_timeout_seconds = Some(0);
    let dir = std::env::temp_dir();
    conf.pid_file = dir
        .join(format!("pingora-gate-{}.pid", std::process::id()))
        .display()
        .to_string();
    conf.upgrade_sock = dir
        .join(format!("pingora-gate-{}.sock", std::process::id()))
        .display()
        .to_string();
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = http_proxy_service(
        &server.configuration,
        Gate {
            upstream: args[1].clone(),
        },
    );
    svc.add_tcp(&args[3]);
    if args.len() == 7 {
        // HTTP/2 offered by ALPN too, as scopegate and nginx do.
        let mut tls = TlsSettings::intermediate(&args[5], &args[6]).expect("certificate and key");
        tls.enable_h2();
        svc.add_tls_with_settings(&args[4], None, tls);
    }
    server.add_service(svc);
    server.run_forever();
}
