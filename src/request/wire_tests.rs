//! The HTTP/1 wire check, byte by byte.
use super::*;

fn check() -> WireCheck {
    WireCheck::new(100, 1000)
}

/// Feeds `input` in pieces of `step` bytes; returns the bytes released and the refusal.
fn run(input: &[u8], step: usize) -> (Vec<u8>, Option<(u64, FramingError)>) {
    let mut c = check();
    let mut bytes = Vec::new();
    for piece in input.chunks(step) {
        if let Some(r) = c.feed(piece, &mut bytes) {
            return (bytes, Some((r.index, r.error)));
        }
    }
    (bytes, None)
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn clean_requests_pass_unchanged_whatever_the_read_sizes() {
    let mut input = GET.to_vec();
    input.extend(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    input.extend(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n");
    input.extend(GET);
    for step in [1, 2, 3, 7, 64, 4096] {
        assert_eq!(run(&input, step), (input.clone(), None), "step {step}");
    }
}

#[test]
fn released_bytes_are_a_prefix_of_the_input_while_no_head_is_held() {
    let mut input = GET.to_vec();
    input.extend(
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    input.extend(GET);
    for step in [1, 3, 17, 4096] {
        let mut c = check();
        let mut copied = Vec::new();
        for piece in input.chunks(step) {
            if c.holds_head() {
                assert!(c.feed(piece, &mut copied).is_none());
            } else {
                let mut count = Count(0);
                assert!(c.feed(piece, &mut count).is_none());
                copied.extend_from_slice(&piece[..count.0]);
            }
        }
        assert_eq!(copied, input, "step {step}");
    }
}

#[test]
fn a_body_that_looks_like_a_head_is_not_read_as_one() {
    let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut input = format!(
        "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    input.extend(body);
    input.extend(GET);
    assert_eq!(run(&input, 5), (input.clone(), None));
}

#[test]
fn content_length_beside_transfer_encoding_is_refused_in_any_order_and_spelling() {
    for head in [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-LENGTH: 0\r\n\r\n",
    ] {
        let mut input = GET.to_vec();
        input.extend(head.as_bytes());
        let (bytes, refused) = run(&input, 3);
        assert_eq!(bytes, GET, "the request before it passes");
        assert_eq!(
            refused,
            Some((1, FramingError::ContentLengthAndTransferEncoding)),
            "{head:?}"
        );
    }
}

#[test]
fn framing_headers_hyper_would_answer_alone_are_refused_here_with_a_reason() {
    for (head, error) in [
        (
            "Transfer-Encoding: gzip, chunked",
            FramingError::UnsupportedTransferCoding,
        ),
        (
            "Transfer-Encoding: xchunked",
            FramingError::UnsupportedTransferCoding,
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            FramingError::RepeatedTransferEncoding,
        ),
        (
            "Content-Length: 1\r\nContent-Length: 2",
            FramingError::ConflictingContentLength,
        ),
        ("Content-Length: +1", FramingError::InvalidContentLength),
    ] {
        let input = format!("POST / HTTP/1.1\r\nHost: x\r\n{head}\r\n\r\n");
        assert_eq!(run(input.as_bytes(), 7).1, Some((0, error)), "{head}");
    }
}

#[test]
fn a_client_closing_mid_chunk_size_gets_no_byte_released_twice() {
    // Found by tests/fuzz.rs: the chunk-size line was both passed and kept.
    let input = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\x00";
    let mut c = check();
    let mut out = Vec::new();
    assert!(c.feed(input, &mut out).is_none());
    out.extend(c.finish());
    assert_eq!(out, input.to_vec());
}

#[test]
fn a_raw_fragment_in_the_target_is_refused() {
    let (_, refused) = run(b"GET /admin#x HTTP/1.1\r\nHost: x\r\n\r\n", 4);
    assert_eq!(refused, Some((0, FramingError::FragmentInTarget)));
}

#[test]
fn an_overlong_request_line_is_414_before_its_end_and_overlong_fields_431() {
    let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(5000));
    let (bytes, refused) = run(long.as_bytes(), 64);
    assert!(bytes.is_empty());
    assert_eq!(refused, Some((0, FramingError::UriTooLong)));
    let fields = format!("GET / HTTP/1.1\r\nX: {}\r\n", "b".repeat(6000));
    assert_eq!(
        run(fields.as_bytes(), 64).1,
        Some((0, FramingError::HeadersTooLarge))
    );
}

#[test]
fn the_http2_preface_turns_the_check_off() {
    let mut input = PREFACE.to_vec();
    input.extend(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    assert_eq!(run(&input, 5), (input.clone(), None));
}

#[test]
fn a_malformed_chunk_size_line_ends_the_stream_there() {
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for bad in [
        &b"zz\r\n"[..],
        b"5 \r\n",
        b"5\t\r\n",
        b"5;\r\n",
        b"5;a=\r\n",
        b"5;a=\"x\r\n",
        b"11111111111111111\r\n",
    ] {
        let mut input = head.to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice(b"hello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        for step in [1, 7, 4096] {
            let mut c = check();
            let mut out = Vec::new();
            for piece in input.chunks(step) {
                assert_eq!(c.feed(piece, &mut out), None);
            }
            assert!(c.is_cut(), "{:?}", String::from_utf8_lossy(bad));
            let released = head.len() + bad.len();
            assert_eq!(out, input[..released], "step {step}");
        }
    }
}

#[test]
fn chunk_extensions_are_read_as_rfc_9112_writes_them() {
    for (line, size) in [
        (&b"5\r\n"[..], 5),
        (b"A;x\r\n", 10),
        (b"5 ;x\r\n", 5),
        (b"5; x = y\r\n", 5),
        (b"5;x=\"a \\\" b\";y\r\n", 5),
        (b"0\r\n", 0),
    ] {
        assert_eq!(
            chunk_size(line),
            Some(size),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn after_an_upgrade_head_nothing_is_released_until_the_answer_says_tunnel() {
    let head = b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n";
    let frame = b"\x81\x85\x01\x02\x03\x04iiiii";
    let mut c = check().with_tunnels();
    let mut out = Vec::new();
    let mut input = head.to_vec();
    input.extend_from_slice(frame);
    assert!(c.feed(&input, &mut out).is_none());
    assert_eq!(out, head, "the frame sent early is held");
    assert_eq!(c.awaiting_upgrade(), Some(0));
    out.clear();
    assert!(c.upgrade_answered(true, &mut out).is_none());
    assert_eq!(
        out, frame,
        "released as it is once the connection is a tunnel"
    );
    out.clear();
    // Not HTTP: passes unchecked from now on.
    assert!(
        c.feed(
            b"GET / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
            &mut out
        )
        .is_none()
    );
    assert_eq!(c.awaiting_upgrade(), None);
}

#[test]
fn an_upgrade_answered_without_101_leaves_the_connection_checked_with_what_was_held() {
    let head = b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n";
    let smuggled =
        b"GET /x HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut c = check().with_tunnels();
    let mut out = Vec::new();
    let mut input = head.to_vec();
    input.extend_from_slice(smuggled);
    assert!(c.feed(&input, &mut out).is_none());
    assert_eq!(out, head);
    out.clear();
    let refused = c
        .upgrade_answered(false, &mut out)
        .expect("the held head is checked");
    assert_eq!(refused.index, 1);
    assert_eq!(
        refused.error,
        FramingError::ContentLengthAndTransferEncoding
    );
}

#[test]
fn upgrade_heads_are_ordinary_requests_where_no_tunnel_can_be_answered() {
    let input = b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n";
    let mut c = check();
    let mut out = Vec::new();
    assert!(c.feed(input, &mut out).is_none());
    assert_eq!(out, input);
    assert_eq!(c.awaiting_upgrade(), None);
    // HTTP/1.0 has no upgrade, and a head with a body is not switched.
    let mut c = check().with_tunnels();
    let mut out = Vec::new();
    let old = b"GET /ws HTTP/1.0\r\nupgrade: websocket\r\n\r\n";
    assert!(c.feed(old, &mut out).is_none());
    assert_eq!(c.awaiting_upgrade(), None);
    let with_body =
        b"POST /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\ncontent-length: 2\r\n\r\nhi";
    assert!(c.feed(with_body, &mut out).is_none());
    assert_eq!(c.awaiting_upgrade(), None);
}
