//! HTTP/2 to an upstream (`protocol: h2c`), as gRPC services need: a client speaking HTTP/2
//! to the gateway reaches an HTTP/2 upstream with `TE: trailers`, and the upstream's
//! trailers (`grpc-status`) come back to the client; the gateway's own refusals of a gRPC
//! call are gRPC statuses.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use support::*;

/// An HTTP/2 (prior knowledge) upstream: answers `hello` with `grpc-status: 0` in the
/// trailers, and records each request's version and `te`.
fn h2c_upstream(
    rt: &tokio::runtime::Runtime,
    seen: Arc<Mutex<Vec<(String, String)>>>,
) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let te = req
                            .headers()
                            .get("te")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        seen.lock()
                            .unwrap()
                            .push((format!("{:?}", req.version()), te));
                        async move {
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                                Ok(Frame::data(Bytes::from_static(b"hello"))),
                                Ok(Frame::trailers(trailers)),
                            ];
                            Ok::<_, Infallible>(hyper::Response::new(StreamBody::new(
                                futures_util::stream::iter(frames),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[test]
fn an_http2_client_reaches_an_h2c_upstream_with_te_trailers_and_gets_its_trailers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = h2c_upstream(&rt, seen.clone());
    let gw = TestGateway::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{}" }}
admin: {{ listen: "127.0.0.1:{}" }}
issuers:
  - {{ id: corp, issuer: "https://auth.example", audiences: [greeter], discovery: false, introspection: {{ endpoint: "http://127.0.0.1:9/introspect", client_id: gw, client_secret: s }} }}
upstreams: {{ grpc: {{ url: "http://{upstream}", protocol: h2c }} }}
routes:
  - {{ name: say, match: {{ methods: [POST], path: /helloworld.Greeter/SayHello }}, upstream: grpc, auth: none }}
  - {{ name: admin, match: {{ methods: [POST], path: /helloworld.Admin/Reset }}, upstream: grpc, require: {{}} }}
"#,
        free_port(),
        free_port()
    ));
    let (status, body, trailers) = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://{}/helloworld.Greeter/SayHello", gw.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (status, collected.to_bytes(), trailers)
    });
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"hello");
    assert_eq!(
        trailers.expect("the upstream's trailers came through")["grpc-status"],
        "0"
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [("HTTP/2.0".to_string(), "trailers".to_string())],
        "the upstream got HTTP/2 and TE: trailers"
    );

    // Refusals of a gRPC call are gRPC statuses (Trailers-Only), the challenge kept: no
    // token is UNAUTHENTICATED (16), an unknown method UNIMPLEMENTED (12).
    let refusals = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut out = Vec::new();
        for path in ["/helloworld.Admin/Reset", "/helloworld.Nope/Nothing"] {
            let req = hyper::Request::builder()
                .method("POST")
                .uri(format!("http://{}{path}", gw.addr))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            let h = resp.headers().clone();
            let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_string());
            out.push((
                resp.status().as_u16(),
                get("grpc-status"),
                get("grpc-message"),
                get("www-authenticate"),
            ));
        }
        out
    });
    assert_eq!(refusals[0].0, 200);
    assert_eq!(refusals[0].1.as_deref(), Some("16"));
    assert!(
        refusals[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("unauthorized")
    );
    assert!(
        refusals[0]
            .3
            .as_deref()
            .unwrap()
            .starts_with("Bearer realm=")
    );
    assert_eq!((refusals[1].0, refusals[1].1.as_deref()), (200, Some("12")));
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no refused call reached the upstream"
    );
}
