//! What reaches the upstream, header by header.

use super::*;
use crate::principal::{Extras, Grant};
use crate::scope::ScopeSet;
use std::sync::Arc;

fn rules(strip_authorization: bool) -> ForwardRules {
    let n = |s: &'static str| HeaderName::from_static(s);
    ForwardRules {
        identity: IdentityNames {
            subject: n("x-auth-subject"),
            client_id: n("x-auth-client-id"),
            scopes: n("x-auth-scopes"),
            org: n("x-auth-org"),
            principal: n("x-auth-principal"),
            issuer: n("x-auth-issuer"),
            claims: vec![n("x-auth-email"), n("x-auth-groups")],
        },
        strip: vec![n("x-original-url"), n("x-forwarded-host")],
        strip_prefixes: vec!["x-envoy-".into()],
        strip_authorization,
        forward_underscores: false,
        credential_schemes: vec!["Bearer".into(), "Zoho-authtoken".into()],
        credential_headers: vec![n("x-api-key")],
        request_id: n("x-request-id"),
        trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        assertion: None,
    }
}

fn policy(strip_authorization: bool) -> ForwardPolicy {
    ForwardPolicy::new(rules(strip_authorization))
}

fn alice() -> Principal {
    Principal {
        subject: HeaderValue::from_static("alice"),
        client_id: Some(Arc::new(HeaderValue::from_static("app"))),
        issuer_id: Arc::new(HeaderValue::from_static("corp")),
        grant: std::sync::Arc::new(Grant {
            scopes: ScopeSet::default(),
            effective: HeaderValue::from_static("a b"),
            token_scopes: HeaderValue::from_static("a"),
        }),
        ..Principal::for_tests()
    }
}

fn client(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn forward_as(p: &ForwardPolicy, c: &HeaderMap, peer: &str, settled: Settled) -> HeaderMap {
    let conn = Connection {
        peer: Some(std::net::SocketAddr::new(peer.parse().unwrap(), 40000)),
        ..Connection::local()
    };
    p.rewrite(c.clone(), &conn, settled)
}

fn forward(p: &ForwardPolicy, c: &HeaderMap, peer: &str, who: Option<&Principal>) -> HeaderMap {
    let settled = Settled {
        principal: who,
        org: None,
        strip_credentials: false,
        request_id: p.request_id(c),
    };
    forward_as(p, c, peer, settled)
}

#[test]
fn headers_with_underscores_are_dropped_by_default() {
    let c = client(&[
        ("x_auth_subject", "root"),
        ("x_custom", "1"),
        ("x-custom", "2"),
    ]);
    let out = forward(&policy(false), &c, "127.0.0.1", None);
    assert!(out.get("x_auth_subject").is_none());
    assert!(out.get("x_custom").is_none());
    assert_eq!(out["x-custom"], "2");
}

#[test]
fn forwarded_underscore_headers_never_include_look_alikes_of_protected_ones() {
    let p = ForwardPolicy::new(ForwardRules {
        forward_underscores: true,
        ..rules(false)
    });
    let c = client(&[
        ("x_auth_subject", "root"),
        ("X_Auth_Org", "evil"),
        ("transfer_encoding", "chunked"),
        ("content_length", "5"),
        ("x_forwarded_for", "1.2.3.4"),
        ("x_request_id", "x"),
        ("x_original_url", "/admin"),
        ("x_envoy_internal", "true"),
        ("x_api_key", "k"),
        ("x_custom", "1"),
    ]);
    let out = forward(&p, &c, "127.0.0.1", Some(&alice()));
    let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
    assert!(
        names.iter().all(|n| !n.contains('_') || *n == "x_custom"),
        "{names:?}"
    );
    assert_eq!(out["x_custom"], "1");
}

#[test]
fn framing_headers_and_prefixed_internal_headers_are_never_copied() {
    let c = client(&[
        ("transfer-encoding", "gzip, chunked"),
        ("content-length", "5"),
        ("x-envoy-internal", "true"),
        ("x-envoyish", "kept"),
    ]);
    let out = forward(&policy(false), &c, "127.0.0.1", None);
    assert!(out.get("transfer-encoding").is_none());
    assert!(out.get("content-length").is_none());
    assert!(out.get("x-envoy-internal").is_none());
    assert_eq!(out["x-envoyish"], "kept");
}

#[test]
fn credentials_on_a_public_route_are_stripped_but_other_authorization_schemes_pass() {
    let strip = |pairs: &[(&str, &str)]| {
        let p = policy(false);
        let c = client(pairs);
        let settled = Settled {
            principal: None,
            org: None,
            strip_credentials: true,
            request_id: p.request_id(&c),
        };
        forward_as(&p, &c, "127.0.0.1", settled)
    };
    let out = strip(&[("authorization", "Bearer t"), ("x-api-key", "k")]);
    assert!(out.get("authorization").is_none());
    assert!(out.get("x-api-key").is_none());
    let out = strip(&[("authorization", "zoho-AUTHTOKEN t")]);
    assert!(out.get("authorization").is_none());
    let out = strip(&[("authorization", "Basic dTpw")]);
    assert_eq!(out["authorization"], "Basic dTpw");
}

#[test]
fn spoofed_identity_headers_are_replaced_by_the_gateways() {
    let c = client(&[
        ("x-auth-subject", "root"),
        ("x-auth-org", "evil"),
        ("x-auth-scopes", "admin"),
    ]);
    let out = forward(&policy(false), &c, "127.0.0.1", Some(&alice()));
    assert_eq!(
        out.get_all("x-auth-subject").iter().collect::<Vec<_>>(),
        vec!["alice"]
    );
    assert_eq!(out["x-auth-scopes"], "a b");
    assert!(out.get("x-auth-org").is_none());
    assert_eq!(out["x-auth-principal"], "user");
}

#[test]
fn claim_headers_carry_the_tokens_values_absent_ones_stay_absent_and_client_copies_go() {
    let c = client(&[
        ("x-auth-email", "root@evil.example"),
        ("x-auth-groups", "admins"),
        ("x_auth_groups", "admins"),
    ]);
    let ada = Principal {
        extras: Some(Box::new(Extras {
            claim_values: vec![Some(HeaderValue::from_static("ada@example.com")), None].into(),
            ..Extras::default()
        })),
        ..alice()
    };
    let out = forward(&policy(false), &c, "127.0.0.1", Some(&ada));
    assert_eq!(
        out.get_all("x-auth-email").iter().collect::<Vec<_>>(),
        vec!["ada@example.com"]
    );
    assert!(out.get("x-auth-groups").is_none());
    assert!(out.get("x_auth_groups").is_none());
    // On a public route, no claim header at all.
    let out = forward(&policy(false), &c, "127.0.0.1", None);
    assert!(out.get("x-auth-email").is_none());
}

#[test]
fn identity_headers_are_removed_on_public_routes_too() {
    let c = client(&[("x-auth-subject", "root")]);
    let out = forward(&policy(false), &c, "127.0.0.1", None);
    assert!(out.get("x-auth-subject").is_none());
}

#[test]
fn headers_named_in_connection_are_dropped_and_connection_too() {
    let c = client(&[
        ("connection", "close, X-Request-Id, x-forwarded-for"),
        ("x-request-id", "abc"),
    ]);
    let out = forward(&policy(false), &c, "127.0.0.1", Some(&alice()));
    assert!(out.get("connection").is_none());
    // Set again by the gateway, after the client's were dropped.
    assert_eq!(out["x-forwarded-for"], "127.0.0.1");
    assert_ne!(out["x-request-id"], "abc");
}

#[test]
fn ordinary_headers_pass_with_all_their_values() {
    let c = client(&[
        ("accept", "a"),
        ("x-custom", "1"),
        ("x-custom", "2"),
        ("host", "api"),
    ]);
    let out = forward(&policy(false), &c, "127.0.0.1", None);
    assert_eq!(
        out.get_all("x-custom").iter().collect::<Vec<_>>(),
        vec!["1", "2"]
    );
    assert_eq!(out["accept"], "a");
    assert_eq!(out["host"], "api");
}

#[test]
fn routing_headers_trusted_by_frameworks_are_stripped() {
    let c = client(&[
        ("x-original-url", "/admin"),
        ("x-forwarded-host", "evil"),
        ("proxy-authorization", "x"),
    ]);
    let out = forward(&policy(false), &c, "127.0.0.1", None);
    assert!(out.get("x-original-url").is_none());
    assert!(out.get("x-forwarded-host").is_none());
    assert!(out.get("proxy-authorization").is_none());
}

#[test]
fn forwarded_for_is_rewritten_unless_the_peer_is_a_trusted_proxy() {
    let c = client(&[("x-forwarded-for", "1.2.3.4")]);
    assert_eq!(
        forward(&policy(false), &c, "192.0.2.9", None)["x-forwarded-for"],
        "192.0.2.9"
    );
    assert_eq!(
        forward(&policy(false), &c, "10.0.0.1", None)["x-forwarded-for"],
        "1.2.3.4, 10.0.0.1"
    );
    assert_eq!(
        forward(&policy(false), &c, "10.0.0.1", None)["x-forwarded-proto"],
        "http"
    );
}

#[test]
fn authorization_is_kept_or_stripped_as_configured() {
    let c = client(&[("authorization", "Bearer t")]);
    assert_eq!(
        forward(&policy(false), &c, "127.0.0.1", None)["authorization"],
        "Bearer t"
    );
    assert!(
        forward(&policy(true), &c, "127.0.0.1", None)
            .get("authorization")
            .is_none()
    );
}

#[test]
fn a_sane_request_id_is_kept_and_a_hostile_one_replaced() {
    let c = client(&[("x-request-id", "req-42")]);
    assert_eq!(
        forward(&policy(false), &c, "127.0.0.1", None)["x-request-id"],
        "req-42"
    );
    let c = client(&[("x-request-id", "a b<script>")]);
    let id = forward(&policy(false), &c, "127.0.0.1", None)["x-request-id"].clone();
    assert_eq!(id.len(), 32);
    let other =
        forward(&policy(false), &HeaderMap::new(), "127.0.0.1", None)["x-request-id"].clone();
    assert_ne!(id, other);
}

#[test]
fn a_caller_is_told_to_drop_what_the_proxy_would_not_forward() {
    let p = ForwardPolicy::new(ForwardRules {
        forward_underscores: false,
        ..rules(false)
    });
    let c = client(&[
        ("x-original-url", "/admin"),
        ("X_auth_org", "evil"),
        ("x-envoy-internal", "true"),
        ("x-auth-subject", "mallory"),
        ("content-length", "5"),
        ("x-forwarded-for", "1.2.3.4"),
        ("authorization", "Bearer t"),
        ("x-api-key", "k"),
        ("x-custom", "kept"),
    ]);
    let names = |v: Vec<HeaderName>| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    // Identity, framing and forwarding headers are the caller's to set: not listed.
    assert_eq!(
        names(p.for_caller(&c, false)),
        ["x-original-url", "x_auth_org", "x-envoy-internal"]
    );
    // On a public route that strips credentials, those too.
    assert_eq!(
        names(p.for_caller(&c, true)),
        [
            "x-original-url",
            "x_auth_org",
            "x-envoy-internal",
            "authorization",
            "x-api-key"
        ]
    );
    let basic = client(&[("authorization", "Basic dTpw")]);
    assert!(p.for_caller(&basic, true).is_empty());
    // `forward.authorization: strip` applies to protected routes too.
    assert_eq!(
        names(policy(true).for_caller(&client(&[("authorization", "Bearer t")]), false)),
        ["authorization"]
    );
}

#[test]
fn addresses_are_written_as_header_values_as_display_would() {
    for ip in [
        "0.0.0.0",
        "10.0.0.1",
        "127.0.0.1",
        "192.168.100.255",
        "8.80.9.99",
        "::1",
        "2001:db8::7",
    ] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        assert_eq!(super::ip_value(ip), ip.to_string().as_str());
    }
}
