//! OpenTelemetry traces, exported over OTLP/HTTP to a receiver started by the test: one
//! server span per request with the decision, the introspection it needed and the upstream
//! call as children; `traceparent` continued from a trusted peer only, and propagated to
//! the upstream.

mod support;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::*;

#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver: decodes every export and keeps the spans.
fn receiver() -> (String, Arc<Mutex<Vec<Span>>>, tokio::runtime::Runtime) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let kept = spans.clone();
    let (addr, rt) = serve(move |req: http::Request<hyper::body::Incoming>| {
        let kept = kept.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
            for rs in export.resource_spans {
                for ss in rs.scope_spans {
                    for s in ss.spans {
                        kept.lock().unwrap().push(Span {
                            name: s.name,
                            trace: hex(&s.trace_id),
                            id: hex(&s.span_id),
                            parent: hex(&s.parent_span_id),
                        });
                    }
                }
            }
            Response::new(Full::new(Bytes::new()))
        }
    });
    (format!("http://{addr}/v1/traces"), spans, rt)
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_request_is_one_trace_with_decision_introspection_and_upstream_spans() {
    let (endpoint, spans, _rt) = receiver();
    let auth = AuthServer::start();
    let upstream = Upstream::start();
    let yaml = Template::corp(&[OPAQUE_API])
        .server("trusted_proxies: [127.0.0.1]")
        .issuer("introspection: { client_id: gateway, client_secret: gateway-secret }")
        .section(&format!(
            "traces:\n  otlp_endpoint: \"{endpoint}\"\n  export_interval: 100ms"
        ))
        .routes(
            "  - name: repos\n    match: { path: \"/orgs/{org}/repos\" }\n    upstream: api\n    require: { scopes: repo }",
        );
    let gw = TestGateway::start(&config(&yaml.yaml(), &auth, &upstream));
    let token = auth.user_token("alice", "full", "repo", OPAQUE_API);
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");

    // From a trusted peer (127.0.0.1): the client's trace goes on.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/orgs/acme/repos", gw.url))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = upstream.seen.lock().unwrap().last().cloned().unwrap();
    let forwarded = seen["headers"]["traceparent"][0]
        .as_str()
        .unwrap()
        .to_string();

    eventually("four spans exported", || spans.lock().unwrap().len() >= 4);
    let all = spans.lock().unwrap().clone();
    let by_name: HashMap<&str, &Span> = all.iter().map(|s| (s.name.as_str(), s)).collect();
    let server = by_name["GET"];
    let decision = by_name["decision"];
    let introspection = by_name["introspection"];
    let call = by_name["upstream"];
    assert!(all.iter().all(|s| s.trace == CLIENT_TRACE), "{all:?}");
    assert_eq!(
        server.parent, CLIENT_SPAN,
        "continued from the client's span"
    );
    assert_eq!(decision.parent, server.id);
    assert_eq!(introspection.parent, decision.id);
    assert_eq!(call.parent, server.id);
    // The upstream is told it is called from the upstream span of the same trace.
    assert_eq!(forwarded, format!("00-{CLIENT_TRACE}-{}-01", call.id));
    println!(
        "trace {CLIENT_TRACE}\n  {} (server, parent {CLIENT_SPAN})\n    {} (decision)\n      {} (introspection)\n    {} (upstream)",
        server.id, decision.id, introspection.id, call.id
    );

    // From an untrusted peer (127.0.0.2): a new trace, whatever it claims.
    let before = spans.lock().unwrap().len();
    let untrusted = reqwest::blocking::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let r = untrusted
        .get(format!("{}/orgs/acme/repos", gw.url))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("the second request's spans", || {
        spans.lock().unwrap().len() >= before + 3
    });
    let second: Vec<Span> = spans.lock().unwrap()[before..].to_vec();
    let server = second.iter().find(|s| s.name == "GET").unwrap();
    assert_ne!(
        server.trace, CLIENT_TRACE,
        "not continued from an untrusted peer"
    );
    assert_eq!(server.parent, "", "a root span");
}
