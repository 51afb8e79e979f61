//! Compiling whole configurations: the checks that span sections or need the gathered inputs, each error naming its key.

use super::*;

fn error(yaml: &str) -> String {
    let file = crate::config::parse(yaml, "t").unwrap();
    let inputs = Inputs::gather(&file, "t");
    inputs
        .and_then(|i| compile(&file, &i, "t"))
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn listeners_must_be_socket_addresses() {
    let e = error("server: { listen: localhost }\nupstreams: {}\nroutes: []");
    assert!(
        e.contains("server.listen: `localhost` is not an address"),
        "{e}"
    );
}

#[test]
fn an_upstream_with_an_unclean_path_or_another_scheme_is_refused() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: http://127.0.0.1:2/v1/../x } }\nroutes: []",
    );
    assert!(e.contains("the path must be a plain path"), "{e}");
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: ftp://127.0.0.1 } }\nroutes: []",
    );
    assert!(e.contains("the scheme must be http or https"), "{e}");
}

#[test]
fn a_websocket_route_to_an_http2_upstream_is_refused_naming_the_key() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: http://127.0.0.1:2, protocol: h2c } }\nroutes:\n  - { name: chat, match: { path: /chat }, upstream: api, auth: none, websocket: {} }",
    );
    assert!(
        e.contains("route `chat`: WebSocket is tunnelled to an `http1` upstream only"),
        "{e}"
    );
}

#[test]
fn an_upstream_that_does_not_resolve_is_refused_before_compiling() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: { api: { url: http://no-such-host.invalid } }\nroutes: []",
    );
    assert!(
        e.contains("upstreams.api.url `http://no-such-host.invalid`: the host does not resolve"),
        "{e}"
    );
}

#[test]
fn set_sources_need_exactly_one_key_source() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\ntokens: { revocation: { push: { transmitter: t, audience: a } } }",
    );
    assert!(
        e.contains("tokens.revocation.push: set exactly one of `jwks_uri` and `issuer`"),
        "{e}"
    );
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\ntokens: { revocation: { push: { transmitter: t, audience: a, issuer: nope } } }",
    );
    assert!(
        e.contains("tokens.revocation.push.issuer: no issuer `nope`"),
        "{e}"
    );
}

#[test]
fn organization_sources_are_checked() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\norganization_policy: { source: { url: ftp://x } }",
    );
    assert!(e.contains("is not an http(s) URL"), "{e}");
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\norganization_policy: { source: { url: https://x, refresh: 10ms } }",
    );
    assert!(e.contains("refresh: at least 1s"), "{e}");
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\norganization_policy: { source: { file: /nonexistent/orgs.yaml } }",
    );
    assert!(e.contains("/nonexistent/orgs.yaml: cannot read"), "{e}");
}

#[test]
fn security_urls_must_be_https_unless_loopback_or_allowed() {
    assert!(is_secure_url("https://auth.example.com/jwks", false));
    assert!(is_secure_url("http://127.0.0.1:9/jwks", false));
    assert!(is_secure_url("http://[::1]:9/jwks", false));
    assert!(is_secure_url("http://localhost/jwks", false));
    assert!(!is_secure_url("http://auth.example.com/jwks", false));
    assert!(is_secure_url("http://auth.example.com/jwks", true));
    assert!(!is_secure_url("ftp://auth.example.com/jwks", true));
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\nissuers: [{ id: a, issuer: http://auth.example.com, audiences: [x] }]",
    );
    assert!(
        e.contains("issuer `a`: issuer `http://auth.example.com`: use https"),
        "{e}"
    );
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\norganization_policy: { source: { url: http://policies.example.com/o.json } }",
    );
    assert!(e.contains("organization_policy.source.url"), "{e}");
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\ntokens: { revocation: { poll: { transmitter: t, audience: a, jwks_uri: https://k, endpoint: http://tx.example.com/poll } } }",
    );
    assert!(e.contains("tokens.revocation.poll.endpoint"), "{e}");
}

#[test]
fn schemes_must_be_single_tokens() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\ntokens: { schemes: [] }",
    );
    assert!(
        e.contains("tokens.schemes must name at least one scheme"),
        "{e}"
    );
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\ntokens: { schemes: [\"Bear er\"] }",
    );
    assert!(e.contains("`Bear er` is not a scheme"), "{e}");
}

#[test]
fn identity_header_names_must_be_valid() {
    let e = error(
        "server: { listen: 127.0.0.1:1 }\nupstreams: {}\nroutes: []\nforward: { identity_headers: { subject: \"X Sub\" } }",
    );
    assert!(
        e.contains("forward.identity_headers.subject: `X Sub` is not a valid header name"),
        "{e}"
    );
}
