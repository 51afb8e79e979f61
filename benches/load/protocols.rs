//! The servers and clients of the protocol load benchmark (`benches/load/protocols.py`):
//! a WebSocket echo server and a client that keeps `conns` tunnels busy with 64-byte text
//! messages (one in flight per tunnel), and a gRPC unary echo service (HTTP/2 without TLS)
//! with a client that keeps `conns` calls in flight. Servers and clients run on one thread,
//! so that what is measured is the proxy between them.
//!
//!     load-protocols ws-server 127.0.0.1:4000
//!     load-protocols ws-client ws://127.0.0.1:8080/ws TOKEN 16 8
//!     load-protocols grpc-server 127.0.0.1:4001
//!     load-protocols grpc-client http://127.0.0.1:8080 TOKEN 16 8
//!
//! A client prints `messages N` (WebSocket echoes, or gRPC calls answered) and the p50 and
//! p99 round trip in µs.

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Clone, PartialEq, prost::Message)]
struct Note {
    #[prost(string, tag = "1")]
    text: String,
}

type Codec = tonic_prost::ProstCodec<Note, Note>;

struct Echo;
impl tonic::server::UnaryService<Note> for Echo {
    type Response = Note;
    type Future = std::future::Ready<Result<tonic::Response<Note>, tonic::Status>>;
    fn call(&mut self, req: tonic::Request<Note>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(req.into_inner())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let number = |i: usize| arg(i).parse::<u64>().expect("a number");
    match arg(0).as_str() {
        "ws-server" => rt.block_on(ws_server(arg(1))),
        "grpc-server" => rt.block_on(grpc_server(arg(1))),
        "ws-client" => {
            let (n, lat) = rt.block_on(ws_client(arg(1), arg(2), number(3), number(4)));
            report(n, lat);
        }
        "grpc-client" => {
            let (n, lat) = rt.block_on(grpc_client(arg(1), arg(2), number(3), number(4)));
            report(n, lat);
        }
        other => panic!("unknown mode `{other}`: ws-server, ws-client, grpc-server, grpc-client"),
    }
}

fn report(n: u64, mut lat: Vec<u32>) {
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    println!("messages {n}");
    println!("p50 {}", pct(0.5).copied().unwrap_or(0));
    println!("p99 {}", pct(0.99).copied().unwrap_or(0));
}

async fn ws_server(addr: String) {
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn ws_client(url: String, token: String, conns: u64, secs: u64) -> (u64, Vec<u32>) {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut req = url.into_client_request().unwrap();
            if !token.is_empty() {
                req.headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            let (mut ws, _) = tokio_tungstenite::connect_async(req)
                .await
                .expect("handshake");
            let payload = "x".repeat(64);
            let mut lat = Vec::new();
            while Instant::now() < end {
                let sent = Instant::now();
                ws.send(Message::text(payload.clone())).await.unwrap();
                match ws.next().await {
                    Some(Ok(m)) if m.is_text() => lat.push(sent.elapsed().as_micros() as u32),
                    other => panic!("no echo: {other:?}"),
                }
            }
            let _ = ws.close(None).await;
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all.len() as u64, all)
}

async fn grpc_server(addr: String) {
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let mut grpc = tonic::server::Grpc::new(Codec::default());
                    Ok::<_, std::convert::Infallible>(grpc.unary(Echo, req).await)
                },
            );
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn grpc_client(url: String, token: String, conns: u64, secs: u64) -> (u64, Vec<u32>) {
    let end = Instant::now() + Duration::from_secs(secs);
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (channel, token) = (channel.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            let path = http::uri::PathAndQuery::from_static("/bench.Echo/Unary");
            let mut lat = Vec::new();
            while Instant::now() < end {
                let mut req = tonic::Request::new(Note {
                    text: "x".repeat(64),
                });
                if !token.is_empty() {
                    req.metadata_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                }
                let sent = Instant::now();
                grpc.ready().await.unwrap();
                grpc.unary(req, path.clone(), Codec::default())
                    .await
                    .expect("an answer");
                lat.push(sent.elapsed().as_micros() as u32);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all.len() as u64, all)
}
