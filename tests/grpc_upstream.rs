//! gRPC through the gateway, end to end: a real tonic client calls a real tonic service behind
//! the gateway (`protocol: h2c`, and `h2` over TLS with ALPN) — unary, server-streaming,
//! client-streaming and bidirectional calls, a deadline, metadata both ways — and the
//! gateway's refusals reach the client as gRPC status codes. Routes are written per method
//! (`/package.Service/Method`), each with its scopes.

mod support;

use futures_util::StreamExt;
use std::pin::Pin;
use std::time::{Duration, Instant};
use support::*;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Response, Status, Streaming};

/// The one message of the test service.
#[derive(Clone, PartialEq, prost::Message)]
struct Note {
    #[prost(string, tag = "1")]
    text: String,
    #[prost(int32, tag = "2")]
    n: i32,
}

type Codec = tonic_prost::ProstCodec<Note, Note>;
type Notes = Pin<Box<dyn futures_util::Stream<Item = Result<Note, Status>> + Send>>;
type Answer<T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send>>;

/// `Unary`: the note back, with who the gateway said the caller is and the caller's
/// `x-custom` metadata echoed as `x-echo`; `Slow` waits 5 s; `Fail` answers an error with
/// trailing metadata.
struct Unary;
impl tonic::server::UnaryService<Note> for Unary {
    type Response = Note;
    type Future = Answer<Note>;
    fn call(&mut self, req: Request<Note>) -> Self::Future {
        Box::pin(async move {
            let md = req.metadata().clone();
            let who = md
                .get("x-auth-client-id")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let note = req.into_inner();
            if note.text == "fail" {
                let mut status = Status::failed_precondition("the note says fail");
                status
                    .metadata_mut()
                    .insert("x-why", "asked-to".parse().unwrap());
                return Err(status);
            }
            if note.text == "slow" {
                let abandoned = Abandoned;
                tokio::time::sleep(Duration::from_secs(5)).await;
                std::mem::forget(abandoned);
            }
            let mut resp = Response::new(Note {
                text: format!("{} for {who}", note.text),
                n: note.n,
            });
            if let Some(v) = md.get("x-custom") {
                resp.metadata_mut().insert("x-echo", v.clone());
            }
            Ok(resp)
        })
    }
}

/// Calls of `slow` that the service stopped serving before they ended (the client went
/// away, or the deadline passed).
static ABANDONED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The last `grpc-timeout` the service was given.
static DEADLINE_SEEN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

struct Abandoned;
impl Drop for Abandoned {
    fn drop(&mut self) {
        ABANDONED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `Count`: `n` notes, 50 ms apart.
struct Count;
impl tonic::server::ServerStreamingService<Note> for Count {
    type Response = Note;
    type ResponseStream = Notes;
    type Future = Answer<Notes>;
    fn call(&mut self, req: Request<Note>) -> Self::Future {
        let n = req.into_inner().n;
        Box::pin(async move {
            let notes = futures_util::stream::unfold(0, move |i| async move {
                if i == n {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let note = Note {
                    text: format!("note {i}"),
                    n: i,
                };
                Some((Ok(note), i + 1))
            });
            Ok(Response::new(Box::pin(notes) as Notes))
        })
    }
}

/// `Sum`: the sum of the notes' `n`.
struct Sum;
impl tonic::server::ClientStreamingService<Note> for Sum {
    type Response = Note;
    type Future = Answer<Note>;
    fn call(&mut self, req: Request<Streaming<Note>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = req.into_inner();
            let mut sum = 0;
            let mut count = 0;
            while let Some(note) = stream.next().await {
                sum += note?.n;
                count += 1;
            }
            Ok(Response::new(Note {
                text: format!("{count} notes"),
                n: sum,
            }))
        })
    }
}

/// `Chat`: each note back as it comes, upper-cased.
struct Chat;
impl tonic::server::StreamingService<Note> for Chat {
    type Response = Note;
    type ResponseStream = Notes;
    type Future = Answer<Notes>;
    fn call(&mut self, req: Request<Streaming<Note>>) -> Self::Future {
        Box::pin(async move {
            let replies = req.into_inner().map(|n| {
                n.map(|n| Note {
                    text: n.text.to_uppercase(),
                    n: n.n,
                })
            });
            Ok(Response::new(Box::pin(replies) as Notes))
        })
    }
}

/// The service's dispatch by method (whatever the package and service name), with the
/// deadline of `grpc-timeout` enforced as tonic's own server does.
async fn dispatch(
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<tonic::body::Body>, std::convert::Infallible> {
    if let Some(t) = req.headers().get("grpc-timeout") {
        *DEADLINE_SEEN.lock().unwrap() = Some(t.to_str().unwrap().to_string());
    }
    // `grpc-timeout`: digits and a unit (gRPC over HTTP/2, "Timeout").
    let deadline = req
        .headers()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (n, unit) = v.split_at(v.len().checked_sub(1)?);
            let n: u64 = n.parse().ok()?;
            Some(match unit {
                "H" => Duration::from_secs(n * 3600),
                "M" => Duration::from_secs(n * 60),
                "S" => Duration::from_secs(n),
                "m" => Duration::from_millis(n),
                "u" => Duration::from_micros(n),
                "n" => Duration::from_nanos(n),
                _ => return None,
            })
        });
    let method = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let mut grpc = tonic::server::Grpc::new(Codec::default());
    let answer = async move {
        match method.as_str() {
            "Unary" | "Admin" => grpc.unary(Unary, req).await,
            "Count" => grpc.server_streaming(Count, req).await,
            "Sum" => grpc.client_streaming(Sum, req).await,
            "Chat" => grpc.streaming(Chat, req).await,
            _ => Status::unimplemented(method).into_http(),
        }
    };
    Ok(match deadline {
        Some(d) => tokio::time::timeout(d, answer)
            .await
            .unwrap_or_else(|_| Status::deadline_exceeded("deadline passed").into_http()),
        None => answer.await,
    })
}

/// The service over HTTP/2: prior knowledge, or TLS with ALPN `h2` when given a config.
fn start_service(
    rt: &tokio::runtime::Runtime,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let builder =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                let svc = hyper::service::service_fn(dispatch);
                match tls {
                    Some(acceptor) => {
                        let Ok(s) = acceptor.accept(tcp).await else {
                            return;
                        };
                        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// A TLS acceptor with the test CA's `localhost` certificate, offering only `h2`.
fn tls_acceptor(dir: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

struct World {
    auth: AuthServer,
    gw: TestGateway,
    rt: tokio::runtime::Runtime,
}

fn world() -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("grpc-tls-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    support::certs::make(&dir);
    let plain = start_service(&rt, None);
    let secure = start_service(&rt, Some(tls_acceptor(&dir)));
    let auth = AuthServer::start();
    let routes = r#"  - { name: echo-admin, match: { methods: [POST], path: /test.Echo/Admin }, upstream: grpc, require: { scopes: admin } }
  - { name: echo, match: { methods: [POST], path: "/test.Echo/{method}" }, upstream: grpc, require: { scopes: repo } }
  - { name: secure-echo, match: { methods: [POST], path: "/secure.Echo/{method}" }, upstream: grpc-tls, require: { scopes: repo } }"#;
    let yaml = Template::corp(&[API]).routes(routes).yaml().replace(
        "upstreams:\n  api: { url: \"{upstream}\" }\n",
        &format!(
            "upstreams:\n  grpc: {{ url: \"http://{plain}\", protocol: h2c }}\n  grpc-tls: {{ url: \"https://localhost:{}\", protocol: h2, tls: {{ ca: \"{}\" }} }}\n",
            secure.port(),
            dir.join("ca.pem").display()
        ),
    );
    let yaml = config(&yaml, &auth, &Upstream::start());
    let gw = TestGateway::start(&yaml);
    World { auth, gw, rt }
}

/// A tonic client to the gateway (HTTP/2 with prior knowledge).
async fn client(w: &World) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(w.gw.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut req = Request::new(message);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

async fn unary(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    path: &'static str,
    req: Request<Note>,
) -> Result<Response<Note>, Status> {
    grpc.ready().await.unwrap();
    grpc.unary(req, PathAndQuery::from_static(path), Codec::default())
        .await
}

fn note(text: &str, n: i32) -> Note {
    Note {
        text: text.into(),
        n,
    }
}

#[test]
fn unary_and_streaming_calls_of_every_kind_pass_with_metadata_both_ways() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        for service in ["/test.Echo", "/secure.Echo"] {
            let mut grpc = client(&w).await;
            let path = |m: &str| -> &'static str { format!("{service}/{m}").leak() };
            // Unary, with metadata: the caller's comes to the service, the service's back.
            let mut req = with_token(note("hello", 7), Some(&token));
            req.metadata_mut()
                .insert("x-custom", "abc".parse().unwrap());
            let resp = unary(&mut grpc, path("Unary"), req).await.unwrap();
            assert_eq!(resp.metadata().get("x-echo").unwrap(), "abc", "{service}");
            assert_eq!(resp.into_inner(), note("hello for full", 7), "{service}");
            // An error with trailing metadata.
            let e = unary(
                &mut grpc,
                path("Unary"),
                with_token(note("fail", 0), Some(&token)),
            )
            .await
            .unwrap_err();
            assert_eq!(e.code(), Code::FailedPrecondition);
            assert_eq!(e.metadata().get("x-why").unwrap(), "asked-to");

            // Server streaming: notes arrive one by one, 50 ms apart.
            grpc.ready().await.unwrap();
            let started = Instant::now();
            let resp = grpc
                .server_streaming(
                    with_token(note("", 5), Some(&token)),
                    PathAndQuery::from_static(path("Count")),
                    Codec::default(),
                )
                .await
                .unwrap();
            let mut stream = resp.into_inner();
            let mut arrivals = Vec::new();
            while let Some(n) = stream.message().await.unwrap() {
                arrivals.push((n.n, started.elapsed()));
            }
            assert_eq!(
                arrivals.iter().map(|a| a.0).collect::<Vec<_>>(),
                [0, 1, 2, 3, 4]
            );
            assert!(
                arrivals[4].1 - arrivals[0].1 >= Duration::from_millis(150),
                "streamed, not buffered: {arrivals:?}"
            );

            // Client streaming.
            grpc.ready().await.unwrap();
            let notes = futures_util::stream::iter((1..=10).map(|i| note("x", i)));
            let resp = grpc
                .client_streaming(
                    with_token(notes, Some(&token)),
                    PathAndQuery::from_static(path("Sum")),
                    Codec::default(),
                )
                .await
                .unwrap();
            assert_eq!(resp.into_inner(), note("10 notes", 55));

            // Bidirectional: each reply comes before the next note is sent.
            let (tx, rx) = tokio::sync::mpsc::channel::<Note>(1);
            grpc.ready().await.unwrap();
            let outgoing = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|n| (n, rx))
            });
            tx.send(note("one", 1)).await.unwrap();
            let resp = grpc
                .streaming(
                    with_token(outgoing, Some(&token)),
                    PathAndQuery::from_static(path("Chat")),
                    Codec::default(),
                )
                .await
                .unwrap();
            let mut replies = resp.into_inner();
            assert_eq!(replies.message().await.unwrap().unwrap(), note("ONE", 1));
            tx.send(note("two", 2)).await.unwrap();
            assert_eq!(replies.message().await.unwrap().unwrap(), note("TWO", 2));
            drop(tx);
            assert!(replies.message().await.unwrap().is_none());
        }
    });
}

#[test]
fn a_deadline_reaches_the_service_and_a_client_that_gives_up_cancels_the_upstream_call() {
    use std::sync::atomic::Ordering;
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let mut grpc = client(&w).await;
        // The client's deadline (`grpc-timeout`) reaches the service, which stops at it,
        // as the client does: whichever says so first, the call ends at the deadline.
        let mut req = with_token(note("slow", 0), Some(&token));
        req.set_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = unary(&mut grpc, "/test.Echo/Unary", req).await.unwrap_err();
        assert!(
            e.code() == Code::DeadlineExceeded
                || (e.code() == Code::Cancelled && e.message() == "Timeout expired"),
            "{e:?}"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        let seen = DEADLINE_SEEN
            .lock()
            .unwrap()
            .clone()
            .expect("grpc-timeout forwarded");
        let ms: u64 = seen
            .trim_end_matches(|c: char| c.is_alphabetic())
            .parse()
            .unwrap();
        assert!(
            seen.ends_with('u') || seen.ends_with('m') || seen.ends_with('n'),
            "{seen}"
        );
        assert!(ms > 0, "{seen}");
        let gave_up = Instant::now();
        while ABANDONED.load(Ordering::SeqCst) < 1 {
            assert!(
                gave_up.elapsed() < Duration::from_secs(2),
                "the service ran past the deadline"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A client that gives up (its call dropped: RST_STREAM) makes the gateway drop the
        // upstream call, and the service stops serving it.
        let call = unary(
            &mut grpc,
            "/test.Echo/Unary",
            with_token(note("slow", 0), Some(&token)),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), call)
                .await
                .is_err()
        );
        let gave_up = Instant::now();
        while ABANDONED.load(Ordering::SeqCst) < 2 {
            assert!(
                gave_up.elapsed() < Duration::from_secs(2),
                "the upstream call outlived the client's"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "upstream call dropped {:?} after the client gave up",
            gave_up.elapsed()
        );
    });
}

#[test]
fn refusals_reach_a_grpc_client_as_status_codes_per_method() {
    let w = world();
    let token = w.auth.client_token("full", "repo", API);
    w.rt.block_on(async {
        let mut grpc = client(&w).await;
        let e = unary(
            &mut grpc,
            "/test.Echo/Unary",
            with_token(note("hi", 0), None),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        assert!(e.message().starts_with("unauthorized"), "{e:?}");
        let challenge = e
            .metadata()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        // The same service, another method: its own scopes.
        let e = unary(
            &mut grpc,
            "/test.Echo/Admin",
            with_token(note("hi", 0), Some(&token)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = unary(
            &mut grpc,
            "/test.Echo/Unary",
            with_token(note("hi", 0), Some("not-a-token")),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
        let e = unary(
            &mut grpc,
            "/other.Service/Call",
            with_token(note("hi", 0), Some(&token)),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
        // And the allowed method still works on the same connection.
        let ok = unary(
            &mut grpc,
            "/test.Echo/Unary",
            with_token(note("hi", 1), Some(&token)),
        )
        .await
        .unwrap();
        assert_eq!(ok.into_inner(), note("hi for full", 1));
    });
}
