//! Fuzzing on the stable toolchain: every parser that sees attacker bytes gets arbitrary
//! input (and input shaped like what it expects), must not panic, and must keep its
//! invariants. CI runs the default number of cases; a longer run:
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz`.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use scopegate::credential::{self, Presentation};
use scopegate::request::wire::{Count, WireCheck};
use scopegate::request::{normalize, wire::STAND_IN};

fn rules() -> credential::Rules {
    credential::Rules {
        schemes: vec!["Bearer".into(), "Zoho-oauthtoken".into()],
        query_parameter: true,
        legacy: vec![
            Presentation::Header(HeaderName::from_static("x-api-key")),
            Presentation::Scheme("zoho-authtoken".into()),
            Presentation::Query("authtoken".into()),
        ],
    }
}

/// Paths made of the characters that matter to normalization.
fn path_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("%2F".to_string()),
            Just("%3A".to_string()),
            Just("%".to_string()),
            Just(";".to_string()),
            "[a-z]{1,3}".prop_map(String::from),
            "%[0-9A-Fa-f]{2}".prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|parts| format!("/{}", parts.concat()))
}

/// RFC 3986 §5.2.4, as written there: what an upstream makes of a path.
fn remove_dot_segments(input: &str) -> String {
    let mut input = input.to_string();
    let mut output = String::new();
    while !input.is_empty() {
        if let Some(rest) = input
            .strip_prefix("../")
            .or_else(|| input.strip_prefix("./"))
        {
            input = rest.to_string();
        } else if input.starts_with("/./") {
            input = input[2..].to_string();
        } else if input == "/." {
            input = "/".into();
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." {
                "/".into()
            } else {
                input[3..].to_string()
            };
            match output.rfind('/') {
                Some(i) => output.truncate(i),
                None => output.clear(),
            }
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = input[end..].to_string();
        }
    }
    output
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.is_empty() { "/".into() } else { out }
}

/// HTTP/1 request streams: heads with framing fields in any combination, bodies, garbage.
fn wire_like() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("Host: a".to_string()),
        Just("Content-Length: 5".to_string()),
        Just("Content-Length: 0".to_string()),
        Just("Transfer-Encoding: chunked".to_string()),
        Just("Transfer-Encoding: gzip, chunked".to_string()),
        Just("Transfer-encoding : chunked".to_string()),
        Just("X: y".to_string()),
        "[ -~]{0,20}".prop_map(String::from),
    ];
    let head = (
        prop_oneof![Just("GET"), Just("POST"), Just("PRI")],
        "/[ -~]{0,20}",
        proptest::collection::vec(field, 0..5),
    )
        .prop_map(|(m, t, f)| format!("{m} {t} HTTP/1.1\r\n{}\r\n\r\n", f.join("\r\n")));
    let part = prop_oneof![
        head.prop_map(String::into_bytes),
        Just(b"hello".to_vec()),
        Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..32),
    ];
    proptest::collection::vec(part, 0..5).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn path_normalization_never_panics_and_is_idempotent(raw in "\\PC{0,64}") {
        if let Ok(p) = normalize(&raw) {
            let again = normalize(p.as_str()).expect("a normalized path normalizes");
            prop_assert_eq!(again.as_str(), p.as_str());
            prop_assert!(!p.as_str().contains("//"));
        }
    }

    #[test]
    fn the_matched_path_is_what_rfc_3986_resolves_the_clients_spelling_to(raw in path_like()) {
        // An upstream (or a decision-endpoint caller) resolving the client's spelling per RFC
        // 3986 §5.2.4 must land on the path the gateway matched, `//` merged.
        if let Ok(p) = normalize(&raw) {
            let resolved = remove_dot_segments(&raw.replace("%2e", ".").replace("%2E", "."));
            let merged = merge_slashes(&resolved);
            let again = normalize(&merged);
            prop_assert_eq!(again.as_ref().map(|n| n.as_str()), Ok(p.as_str()), "{} resolves to {}", raw, resolved);
        }
    }

    #[test]
    fn normalized_paths_never_climb_or_keep_dot_segments(raw in path_like()) {
        if let Ok(p) = normalize(&raw) {
            let s = p.as_str();
            prop_assert!(s.starts_with('/'));
            prop_assert!(s.split('/').all(|seg| seg != "." && seg != ".."), "{}", s);
            prop_assert!(!s.to_ascii_lowercase().contains("%2f"), "{}", s);
            prop_assert!(!s.to_ascii_lowercase().contains("%3a"), "{}", s);
        }
    }

    #[test]
    fn credential_extraction_never_panics(
        auth in proptest::option::of("[ -~]{0,40}"),
        key in proptest::option::of("[ -~]{0,20}"),
        query in proptest::option::of("[ -~&=%]{0,40}"),
    ) {
        let mut h = HeaderMap::new();
        if let Some(a) = auth.and_then(|a| HeaderValue::from_str(&a).ok()) {
            h.insert(http::header::AUTHORIZATION, a);
        }
        if let Some(k) = key.and_then(|k| HeaderValue::from_str(&k).ok()) {
            h.insert("x-api-key", k);
        }
        if let Ok(Some(c)) = credential::extract(&h, query.as_deref(), &rules()) {
            prop_assert!(!c.token.is_empty());
        }
    }

    #[test]
    fn query_decoding_never_panics_and_removal_removes(query in "[ -~]{0,60}") {
        let _ = credential::find_param(&query, "access_token");
        if let Some(rest) = credential::without_param(&query, "access_token") {
            prop_assert_eq!(credential::find_param(&rest, "access_token"), Ok(None));
        }
    }

    #[test]
    fn jwt_and_set_parsing_never_panic(
        header in "[A-Za-z0-9_-]{0,40}",
        claims in "[A-Za-z0-9_-]{0,80}",
        sig in "[A-Za-z0-9_-]{0,20}",
        json in "\\PC{0,80}",
    ) {
        let token = format!("{header}.{claims}.{sig}");
        let _ = jsonwebtoken::decode_header(&token);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forged = format!("{}.{}.{sig}", b64.encode(&json), b64.encode(&json));
        let _ = scopegate::token::KeySet::from_jwks(json.as_bytes());
        let rules = scopegate::token::SetRules {
            transmitter: "t".into(),
            audience: "a".into(),
            algorithms: vec![jsonwebtoken::Algorithm::EdDSA],
            keys: scopegate::token::SetKeys::Own("http://127.0.0.1:1".into()),
        };
        let _ = scopegate::token::set::check_header(&token, &rules);
        let _ = scopegate::token::set::check_header(&forged, &rules);
    }

    #[test]
    fn configuration_loading_never_panics(yaml in "\\PC{0,200}") {
        let _ = scopegate::config::parse(&yaml, "fuzz");
    }

    #[test]
    fn the_wire_check_releases_a_prefix_whatever_the_bytes_and_splits(
        stream in wire_like(),
        steps in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut check = WireCheck::new(100, 1000);
        let mut released = Vec::new();
        let mut at = 0;
        let mut i = 0;
        let mut refused = false;
        while at < stream.len() && !refused {
            let end = (at + steps[i % steps.len()]).min(stream.len());
            let piece = &stream[at..end];
            if check.holds_head() {
                refused = check.feed(piece, &mut released).is_some();
            } else {
                let mut count = Count(0);
                refused = check.feed(piece, &mut count).is_some();
                released.extend_from_slice(&piece[..count.0]);
            }
            at = end;
            i += 1;
        }
        released.extend(check.finish());
        // What the engine reads is the client's bytes, in order, up to a refused head.
        prop_assert!(stream.starts_with(&released), "released bytes are not the input's");
        prop_assert!(!STAND_IN.is_empty());
    }
}
