//! WebSocket through the gateway: a real tokio-tungstenite server behind it and a real
//! client in front. The handshake is decided like any request; the tunnel then carries text,
//! binary, ping/pong, large messages and close codes both ways, and is closed by the gateway
//! only when the route asks (revocation, lifetime). Behind nginx with the shipped
//! configuration, the decision endpoint decides the handshake and nginx tunnels it.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::proxies::Proxy;
use support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const SECRET: &str = "decision-secret-0123456789";

/// A WebSocket echo server that records each handshake's headers.
struct EchoServer {
    addr: SocketAddr,
    handshakes: Arc<Mutex<Vec<http::HeaderMap>>>,
    _runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    fn start() -> EchoServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
        let record = handshakes.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let callback = Recorder(record);
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    // Pings are answered by the library; data is echoed; a close is
                    // answered with the same code.
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        EchoServer {
            addr,
            handshakes,
            _runtime: runtime,
        }
    }

    fn count(&self) -> usize {
        self.handshakes.lock().unwrap().len()
    }
}

/// Records the headers of each handshake the echo server accepts.
struct Recorder(Arc<Mutex<Vec<http::HeaderMap>>>);

impl tokio_tungstenite::tungstenite::handshake::server::Callback for Recorder {
    fn on_request(
        self,
        request: &tokio_tungstenite::tungstenite::handshake::server::Request,
        response: tokio_tungstenite::tungstenite::handshake::server::Response,
    ) -> Result<
        tokio_tungstenite::tungstenite::handshake::server::Response,
        tokio_tungstenite::tungstenite::handshake::server::ErrorResponse,
    > {
        self.0.lock().unwrap().push(request.headers().clone());
        Ok(response)
    }
}

struct World {
    auth: AuthServer,
    echo: EchoServer,
    tx: scopegate::dev::DevIssuer,
    _jwks: JsonServer,
    gw: TestGateway,
    decision: String,
    rt: tokio::runtime::Runtime,
}

fn world() -> World {
    let auth = AuthServer::start();
    let echo = EchoServer::start();
    let tx = scopegate::dev::DevIssuer::new(TRANSMITTER.into(), GATEWAY_AUD.into());
    let jwks = JsonServer::start(tx.jwks());
    let decision = format!("127.0.0.1:{}", free_port());
    let route = |name: &str, path: &str, ws: &str| {
        format!(
            "  - name: {name}\n    match: {{ methods: [GET], path: \"{path}\" }}\n    upstream: api\n    require: {{ scopes: repo }}\n{ws}"
        )
    };
    let routes = [
        route("chat", "/chat", "    websocket: {}\n"),
        route(
            "chat-revocable",
            "/chat/revocable",
            "    websocket: { close_on_revoke: true }\n",
        ),
        route(
            "chat-short",
            "/chat/short",
            "    websocket: { max_lifetime: 1s }\n",
        ),
        route(
            "chat-expiring",
            "/chat/expiring",
            "    websocket: { close_at_token_expiry: true }\n",
        ),
        route(
            "chat-idle",
            "/chat/idle",
            "    websocket: { idle_timeout: 600ms }\n",
        ),
        route("feed", "/feed", ""),
        "  - name: admin\n    match: { path: /admin }\n    upstream: api\n    require: { scopes: admin }\n    websocket: {}\n".into(),
    ]
    .concat();
    let yaml = Template::corp(&[API])
        .section(&format!(
            "decision:\n  listen: \"{decision}\"\n  shared_secret: \"{SECRET}\""
        ))
        .section(
            "tokens:\n  revocation:\n    push:\n      transmitter: \"https://transmitter.scopegate.test\"\n      jwks_uri: \"{jwks}\"\n      audience: \"https://gateway.scopegate.test\"",
        )
        .routes(&routes)
        .yaml()
        .replace("{listen}", &format!("127.0.0.1:{}", free_port()))
        .replace("{admin}", &format!("127.0.0.1:{}", free_port()))
        .replace("{issuer}", &auth.url)
        .replace("{upstream}", &format!("http://{}", echo.addr))
        .replace("{jwks}", &jwks.url);
    let gw = TestGateway::start(&yaml);
    World {
        auth,
        echo,
        tx,
        _jwks: jwks,
        gw,
        decision,
        rt: tokio::runtime::Runtime::new().unwrap(),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `url` (http:// turned into ws://) with `token`.
async fn open(url: &str, token: Option<&str>) -> Result<Socket, WsError> {
    let mut req = url.replacen("http", "ws", 1).into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The next message that is not a pong, within 5 s.
async fn next(ws: &mut Socket) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the tunnel is open")
            .expect("a message");
        if !m.is_pong() {
            return m;
        }
    }
}

/// The status a refused handshake got, and its body.
fn refused(e: WsError) -> (u16, String, Value) {
    match e {
        WsError::Http(resp) => {
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = resp
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (resp.status().as_u16(), challenge, body)
        }
        other => panic!("not an HTTP refusal: {other}"),
    }
}

#[test]
fn text_binary_ping_large_messages_and_close_codes_pass_through_the_tunnel_with_the_identity() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let mut ws = open(&format!("{}/chat", w.gw.url), Some(&token))
            .await
            .unwrap();
        ws.send(Message::text("hello")).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text("hello"));
        ws.send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap();
        assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2, 255]));
        // A ping is answered by the upstream, through the tunnel.
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
        // 8 MiB each way, in one message: the tunnel streams it.
        let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        ws.send(Message::binary(big.clone())).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::binary(big));
        eprintln!("8 MiB echoed through the tunnel in {:?}", started.elapsed());
        ws.close(Some(CloseFrame {
            code: CloseCode::Library(4000),
            reason: "done here".into(),
        }))
        .await
        .unwrap();
        match next(&mut ws).await {
            Message::Close(Some(f)) => {
                assert_eq!(
                    f.code,
                    CloseCode::Library(4000),
                    "the upstream's close reply"
                );
            }
            other => panic!("expected a close, got {other:?}"),
        }
    });
    let seen = w.echo.handshakes.lock().unwrap()[0].clone();
    let subject = seen
        .get("x-auth-client-id")
        .expect("identity headers on the upgrade");
    assert_eq!(subject, "full");
    assert_eq!(seen.get("x-auth-scopes").unwrap(), "repo");
    assert!(seen.get("sec-websocket-key").is_some());
    assert_eq!(seen.get("upgrade").unwrap(), "websocket");
    eventually("the tunnel counted as closed by the client", || {
        w.gw.metrics().contains(
            "scopegate_websocket_tunnels_closed_total{reason=\"client\",route=\"chat\"} 1",
        )
    });
    assert!(w.gw.metrics().contains("scopegate_websocket_tunnels 0"));
}

#[test]
fn a_handshake_refused_before_the_upgrade_gets_its_status_and_no_tunnel() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let (status, challenge, body) =
            refused(open(&format!("{}/chat", w.gw.url), None).await.unwrap_err());
        assert_eq!(status, 401);
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(body["error"], "unauthorized");
        let (status, challenge, body) = refused(
            open(&format!("{}/admin", w.gw.url), Some(&token))
                .await
                .unwrap_err(),
        );
        assert_eq!(status, 403);
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
        assert_eq!(body["error"], "insufficient_scope");
        let (status, _, body) = refused(
            open(&format!("{}/feed", w.gw.url), Some(&token))
                .await
                .unwrap_err(),
        );
        assert_eq!(status, 400, "a route without websocket: takes no handshake");
        assert_eq!(body["error"], "websocket_refused");
    });
    assert_eq!(
        w.echo.count(),
        0,
        "no refused handshake reached the upstream"
    );
    // The connection of a refused handshake stays HTTP/1, checked: a smuggling attempt
    // after it is refused like any other.
    let (status, text) = raw(
        w.gw.addr,
        "GET /chat HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /feed HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("both Content-Length and Transfer-Encoding"),
        "the held request was checked after the refusal: {text}"
    );
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn a_revoked_token_closes_only_the_tunnels_whose_route_asks_and_within_the_check_interval() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    let jti = claims(&token)["jti"].as_str().unwrap().to_string();
    let (mut kept, mut closed) = w.rt.block_on(async {
        let kept = open(&format!("{}/chat", w.gw.url), Some(&token))
            .await
            .unwrap();
        let mut closed = open(&format!("{}/chat/revocable", w.gw.url), Some(&token))
            .await
            .unwrap();
        closed.send(Message::text("before")).await.unwrap();
        assert_eq!(next(&mut closed).await, Message::text("before"));
        (kept, closed)
    });
    let now = scopegate::clock::unix_now();
    let set = w.tx.sign(
        "secevent+jwt",
        &json!({"iss": TRANSMITTER, "aud": GATEWAY_AUD, "iat": now, "jti": "set-ws",
            "events": {"https://schemas.openid.net/secevent/oauth/event-type/token-revoked":
                {"subject": {"format": "jwt_id", "iss": w.auth.url, "jti": jti}}}}),
    );
    let (code, body) = w.gw.push_set(&set);
    assert_eq!(code, 202, "{body}");
    let revoked_at = Instant::now();
    w.rt.block_on(async {
        match next(&mut closed).await {
            Message::Close(Some(f)) => {
                assert_eq!(f.code, CloseCode::Policy, "1008");
                assert_eq!(f.reason.as_str(), "token revoked");
            }
            other => panic!("expected the gateway's close, got {other:?}"),
        }
        let took = revoked_at.elapsed();
        eprintln!("tunnel closed {took:?} after the revocation was accepted");
        assert!(took < Duration::from_secs(1), "{took:?}");
        // The other tunnel stays open: its route did not ask.
        kept.send(Message::text("still here")).await.unwrap();
        assert_eq!(next(&mut kept).await, Message::text("still here"));
    });
    // A new handshake with the revoked token is refused.
    let e =
        w.rt.block_on(open(&format!("{}/chat", w.gw.url), Some(&token)))
            .unwrap_err();
    assert_eq!(refused(e).0, 401);
    assert!(w.gw.metrics().contains(
        "scopegate_websocket_tunnels_closed_total{reason=\"revoked\",route=\"chat-revocable\"} 1"
    ));
}

#[test]
fn a_tunnel_is_closed_at_its_routes_max_lifetime_with_going_away() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let mut ws = open(&format!("{}/chat/short", w.gw.url), Some(&token))
            .await
            .unwrap();
        let opened = Instant::now();
        ws.send(Message::text("quick")).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text("quick"));
        match next(&mut ws).await {
            Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::Away, "1001"),
            other => panic!("expected the gateway's close, got {other:?}"),
        }
        let lived = opened.elapsed();
        assert!(
            lived >= Duration::from_millis(900) && lived < Duration::from_millis(2000),
            "{lived:?}"
        );
    });
}

#[test]
fn behind_nginx_the_decision_endpoint_decides_the_handshake_and_nginx_tunnels_it() {
    let w = world();
    let nginx = Proxy::nginx(&w.decision, &w.echo.addr.to_string(), SECRET);
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let mut ws = open(&format!("{}/chat", nginx.url), Some(&token))
            .await
            .unwrap();
        ws.send(Message::text("through nginx")).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text("through nginx"));
        ws.close(None).await.unwrap();
        let (status, _, _) = refused(
            open(&format!("{}/chat", nginx.url), None)
                .await
                .unwrap_err(),
        );
        assert_eq!(status, 401);
        let (status, _, _) = refused(
            open(&format!("{}/feed", nginx.url), Some(&token))
                .await
                .unwrap_err(),
        );
        // The decision's 400: nginx's auth_request turns every status but 2xx, 401 and 403
        // into a 500 (docs/decision-endpoint.md) — closed either way, no tunnel.
        assert_eq!(
            status, 500,
            "the decision endpoint refuses a handshake the route does not take"
        );
    });
    let seen = w.echo.handshakes.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        1,
        "only the allowed handshake reached the upstream"
    );
    assert_eq!(seen[0].get("x-auth-client-id").unwrap(), "full");
}

/// The close frame the gateway sent, and how long after `since` it came.
async fn gateway_close(ws: &mut Socket, since: Instant) -> (CloseCode, String, Duration) {
    loop {
        match next(ws).await {
            Message::Close(Some(f)) => return (f.code, f.reason.to_string(), since.elapsed()),
            Message::Close(None) => panic!("a close frame without a code"),
            _ => {}
        }
    }
}

#[test]
fn a_tunnel_closes_when_its_token_expires_or_when_idle_and_traffic_keeps_an_idle_one_open() {
    let w = world();
    // The `short` client's tokens live 1 s.
    let short = w.auth.client_token("short", "repo", API);
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let opened = Instant::now();
        let mut expiring = open(&format!("{}/chat/expiring", w.gw.url), Some(&short))
            .await
            .unwrap();
        let mut idle = open(&format!("{}/chat/idle", w.gw.url), Some(&token))
            .await
            .unwrap();
        // Traffic every 300 ms keeps the idle one open past its 600 ms.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            idle.send(Message::text("tick")).await.unwrap();
            assert_eq!(next(&mut idle).await, Message::text("tick"));
        }
        let (code, reason, after) = gateway_close(&mut expiring, opened).await;
        assert_eq!(
            (code, reason.as_str()),
            (CloseCode::Policy, "token expired")
        );
        assert!(after < Duration::from_secs(3), "{after:?}");
        let quiet = Instant::now();
        let (code, reason, after) = gateway_close(&mut idle, quiet).await;
        assert_eq!((code, reason.as_str()), (CloseCode::Away, "tunnel idle"));
        assert!(after < Duration::from_millis(1500), "{after:?}");
    });
}

#[test]
fn a_stopping_gateway_closes_its_tunnels_with_going_away_and_exits() {
    let mut w = world();
    let token = w.auth.client_token("full", "repo", API);
    let mut ws =
        w.rt.block_on(open(&format!("{}/chat", w.gw.url), Some(&token)))
            .unwrap();
    let stopped = Instant::now();
    let status = w.gw.terminate();
    assert!(status.success(), "{status:?}");
    eprintln!(
        "the gateway stopped {:?} after SIGTERM with a tunnel open",
        stopped.elapsed()
    );
    assert!(stopped.elapsed() < Duration::from_secs(5));
    w.rt.block_on(async {
        let (code, reason, _) = gateway_close(&mut ws, stopped).await;
        assert_eq!(
            (code, reason.as_str()),
            (CloseCode::Away, "gateway stopping")
        );
    });
}
