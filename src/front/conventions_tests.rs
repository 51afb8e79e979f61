//! How each caller's conventions name the original request.

use super::*;
use crate::compile::CallerSecret;
use http::HeaderMap;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn call(path: &str, pairs: &[(&str, &str)]) -> Result<(FrontEnd, Original), CallError> {
    let uri: Uri = path.parse().unwrap();
    let peer = "10.0.0.2:40000".parse().ok();
    original(&Method::GET, &uri, &headers(pairs), peer, None)
}

#[test]
fn nginx_names_the_original_by_x_original_uri_and_method() {
    let (fe, o) = call(
        "/nginx",
        &[
            ("x-original-uri", "/orgs/acme?x=1"),
            ("x-original-method", "DELETE"),
            ("x-original-host", "api.example.com"),
            ("x-forwarded-for", "192.0.2.1, 203.0.113.9"),
            ("authorization", "Bearer t"),
        ],
    )
    .unwrap();
    assert_eq!(fe, FrontEnd::Nginx);
    assert_eq!(o.method, Method::DELETE);
    assert_eq!(o.uri, "/orgs/acme?x=1");
    assert_eq!(o.headers["host"], "api.example.com");
    assert_eq!(o.conn.peer.unwrap().ip().to_string(), "203.0.113.9");
    // The convention's headers are the call's, not the client's.
    assert!(o.headers.get("x-original-uri").is_none());
    assert_eq!(o.headers["authorization"], "Bearer t");
    assert_eq!(
        call("/nginx", &[]).err(),
        Some(CallError::Missing("X-Original-URI"))
    );
    // A caller that leaves the method out is told so: the call's own GET is never assumed.
    assert_eq!(
        call("/nginx", &[("x-original-uri", "/orgs/acme")]).err(),
        Some(CallError::Missing("X-Original-Method"))
    );
}

#[test]
fn the_clients_body_length_is_named_by_a_convention_header() {
    let (_, o) = call(
        "/nginx",
        &[
            ("x-original-uri", "/upload"),
            ("x-original-method", "POST"),
            ("x-original-content-length", "1048576"),
            ("content-length", "0"),
        ],
    )
    .unwrap();
    assert_eq!(o.headers["content-length"], "1048576");
    assert!(o.headers.get("x-original-content-length").is_none());
    assert_eq!(
        call(
            "/nginx",
            &[
                ("x-original-uri", "/"),
                ("x-original-method", "GET"),
                ("x-original-content-length", "a b")
            ]
        )
        .err(),
        Some(CallError::BadOriginal("X-Original-Content-Length"))
    );
}

#[test]
fn forward_auth_needs_method_and_uri_and_reads_host_and_proto() {
    let (fe, o) = call(
        "/forward-auth",
        &[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/r"),
            ("x-forwarded-host", "api.example.com"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .unwrap();
    assert_eq!(fe, FrontEnd::ForwardAuth);
    assert_eq!(o.method, Method::POST);
    assert!(o.conn.tls);
    assert_eq!(o.headers["host"], "api.example.com");
    // Without X-Forwarded-For, the caller's own address.
    assert_eq!(o.conn.peer.unwrap().ip().to_string(), "10.0.0.2");
    assert_eq!(
        call("/forward-auth", &[("x-forwarded-uri", "/r")]).err(),
        Some(CallError::Missing("X-Forwarded-Method"))
    );
}

#[test]
fn envoy_http_names_the_original_path_after_its_prefix() {
    let (fe, o) = call("/envoy/orgs/acme?page=2", &[]).unwrap();
    assert_eq!(fe, FrontEnd::EnvoyHttp);
    assert_eq!(o.uri, "/orgs/acme?page=2");
    assert_eq!(call("/envoy", &[]).unwrap().1.uri, "/");
    assert_eq!(call("/envoyx/a", &[]).err(), Some(CallError::UnknownPath));
}

#[test]
fn only_origin_form_targets_and_real_methods_are_questions() {
    for target in ["http://evil.example/", "*", "orgs/acme"] {
        assert_eq!(
            call(
                "/nginx",
                &[("x-original-uri", target), ("x-original-method", "GET")]
            )
            .err(),
            Some(CallError::BadOriginal("the original request target")),
            "{target}"
        );
    }
    assert_eq!(
        call(
            "/nginx",
            &[("x-original-uri", "/"), ("x-original-method", "GE T")]
        )
        .err(),
        Some(CallError::BadOriginal("the original method"))
    );
}

#[test]
fn the_shared_secret_is_required_once_and_exactly() {
    let secret = CallerSecret {
        header: HeaderName::from_static("x-scopegate-secret"),
        value: "0123456789abcdef".to_string(),
    };
    let s = Some(&secret);
    assert!(trusted(
        &headers(&[("x-scopegate-secret", "0123456789abcdef")]),
        s
    ));
    assert!(!trusted(&headers(&[]), s));
    assert!(!trusted(
        &headers(&[("x-scopegate-secret", "0123456789abcdeF")]),
        s
    ));
    assert!(!trusted(
        &headers(&[
            ("x-scopegate-secret", "0123456789abcdef"),
            ("x-scopegate-secret", "0123456789abcdef")
        ]),
        s
    ));
    // Without a configured secret (loopback, unix socket), every caller is the trusted one.
    assert!(trusted(&headers(&[]), None));
    let uri: Uri = "/nginx".parse().unwrap();
    let call = original(
        &Method::GET,
        &uri,
        &headers(&[
            ("x-original-uri", "/"),
            ("x-original-method", "GET"),
            ("x-scopegate-secret", "0123456789abcdef"),
        ]),
        None,
        s,
    )
    .unwrap();
    assert!(
        call.1.headers.get("x-scopegate-secret").is_none(),
        "the secret is not part of what is decided"
    );
}
