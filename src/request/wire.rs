//! The HTTP/1 wire, checked before the engine parses it: what only the raw bytes show.
//!
//! hyper drops a `Content-Length` that comes with `Transfer-Encoding` without saying so, and
//! the `http` crate drops a raw `#` from the request target; a request line over the limit
//! fills hyper's buffer and gets its 431. So each request head is held back until it is
//! complete, checked, and only then released to the engine; a head that fails is replaced by
//! a stand-in request that the engine answers with the refusal (see `proxy`), after which the
//! connection ends. Bodies pass through, tracked (`Content-Length` or chunked) only to know
//! where the next head starts.

use super::framing::{self, FramingError};

/// Requests HTTP/1 may carry this many header fields (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// What the engine reads instead of a refused head: a request it parses without trouble and
/// that closes the connection. The refusal itself is looked up by the request's index.
pub const STAND_IN: &[u8] =
    b"GET / HTTP/1.1\r\nhost: scopegate.invalid\r\nconnection: close\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// `n` bytes of a `Content-Length` body left.
    Body(u64),
    /// A chunked body: reading a chunk-size line.
    ChunkSize,
    /// `n` bytes of chunk data left, then CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data (`n` bytes of it left).
    ChunkEnd(u8),
    /// The trailer section after the last chunk, up to an empty line.
    Trailers,
    /// Not HTTP/1 framing (the HTTP/2 preface), or the engine will refuse what follows and
    /// close: bytes pass as they are.
    Off,
}

/// What to hand the engine after some bytes were read.
#[derive(Debug, PartialEq, Eq)]
pub enum Release {
    /// These bytes, as they came.
    Bytes(Vec<u8>),
    /// The head of request number `index` (0-based on the connection) is refused: hand the
    /// engine [`STAND_IN`], then end the stream.
    Refuse { index: u64, error: FramingError },
}

pub struct WireCheck {
    state: State,
    /// The head being collected, or the chunk-size / trailer line.
    line: Vec<u8>,
    /// Heads released so far (the index of the next one).
    heads: u64,
    max_uri: usize,
    max_head: usize,
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

impl WireCheck {
    /// `max_uri`: longest request target (414 beyond); `max_headers`: the header fields'
    /// bytes (431 beyond).
    pub fn new(max_uri: usize, max_headers: usize) -> WireCheck {
        WireCheck {
            state: State::Head,
            line: Vec::new(),
            heads: 0,
            max_uri,
            // The request line, the fields, and their line ends.
            max_head: max_uri + max_headers + 4096,
        }
    }

    /// Takes bytes read from the client; returns what the engine may read now, in order.
    pub fn feed(&mut self, mut input: &[u8]) -> Vec<Release> {
        let mut out = Vec::new();
        let pass = |out: &mut Vec<Release>, b: &[u8]| {
            if b.is_empty() {
                return;
            }
            match out.last_mut() {
                Some(Release::Bytes(v)) => v.extend_from_slice(b),
                _ => out.push(Release::Bytes(b.to_vec())),
            }
        };
        while !input.is_empty() {
            match self.state {
                State::Off => {
                    pass(&mut out, input);
                    input = &[];
                }
                State::Body(n) => {
                    let take = (n.min(input.len() as u64)) as usize;
                    pass(&mut out, &input[..take]);
                    input = &input[take..];
                    self.state = if n == take as u64 {
                        State::Head
                    } else {
                        State::Body(n - take as u64)
                    };
                }
                State::ChunkData(n) => {
                    let take = (n.min(input.len() as u64)) as usize;
                    pass(&mut out, &input[..take]);
                    input = &input[take..];
                    self.state = if n == take as u64 {
                        State::ChunkEnd(2)
                    } else {
                        State::ChunkData(n - take as u64)
                    };
                }
                State::ChunkEnd(left) => {
                    let expected = &b"\r\n"[2 - left as usize..];
                    let take = (left as usize).min(input.len());
                    let ok = input[..take] == expected[..take];
                    pass(&mut out, &input[..take]);
                    input = &input[take..];
                    self.state = match (ok, left as usize - take) {
                        (false, _) => State::Off, // the engine refuses the body and closes
                        (true, 0) => State::ChunkSize,
                        (true, rest) => State::ChunkEnd(rest as u8),
                    };
                }
                State::ChunkSize | State::Trailers => {
                    // Lines pass through as they come; only their ends matter here.
                    let (line, rest, complete) = match find_crlf_across(&self.line, input) {
                        Some(end) => (&input[..end], &input[end..], true),
                        None => (input, &[][..], false),
                    };
                    pass(&mut out, line);
                    self.line.extend_from_slice(line);
                    input = rest;
                    if self.line.len() > 4096 {
                        self.state = State::Off;
                    } else if complete {
                        self.end_of_line();
                    }
                }
                State::Head => {
                    let before = self.line.len();
                    self.line.extend_from_slice(input);
                    input = &[];
                    // Where the head ends, looking from just before the new bytes.
                    let from = before.saturating_sub(3);
                    let end = self.line[from..]
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|p| from + p + 4);
                    match end {
                        Some(end) => {
                            let rest = self.line.split_off(end);
                            let head = std::mem::take(&mut self.line);
                            match self.head(&head) {
                                Ok(()) => pass(&mut out, &head),
                                Err(error) => {
                                    out.push(Release::Refuse {
                                        index: self.heads,
                                        error,
                                    });
                                    self.state = State::Off;
                                    return out;
                                }
                            }
                            self.heads += 1;
                            // What followed the head is read again in the new state.
                            if !rest.is_empty() {
                                out.extend(self.feed(&rest));
                            }
                            return merge(out);
                        }
                        None => {
                            if let Some(error) = self.too_long() {
                                out.push(Release::Refuse {
                                    index: self.heads,
                                    error,
                                });
                                self.state = State::Off;
                                return out;
                            }
                            if self.heads == 0 && is_h2_preface_start(&self.line) {
                                // Prior-knowledge HTTP/2: not HTTP/1 framing.
                                let held = std::mem::take(&mut self.line);
                                if held.len() >= PREFACE.len() {
                                    self.state = State::Off;
                                    pass(&mut out, &held);
                                } else {
                                    self.line = held;
                                }
                            }
                        }
                    }
                }
            }
        }
        merge(out)
    }

    /// What is held back when the client closes: released, so the engine sees the partial
    /// head it would have seen.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.line)
    }

    /// A head that cannot end within the limits: 414 when the request line alone is too long.
    fn too_long(&self) -> Option<FramingError> {
        let line_end = find_crlf(&self.line);
        let request_line = line_end.unwrap_or(self.line.len());
        // "METHOD SP target SP HTTP/1.1": the target is at most a few bytes shorter.
        if request_line > self.max_uri + 32 {
            return Some(FramingError::UriTooLong);
        }
        if self.line.len() > self.max_head {
            return Some(FramingError::HeadersTooLarge);
        }
        None
    }

    /// A chunk-size or trailer line ended (it is in `self.line`, with its CRLF).
    fn end_of_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.state = match self.state {
            State::ChunkSize => match httparse::parse_chunk_size(&line) {
                Ok(httparse::Status::Complete((_, 0))) => State::Trailers,
                Ok(httparse::Status::Complete((_, n))) => State::ChunkData(n),
                _ => State::Off,
            },
            State::Trailers if line == b"\r\n" => State::Head,
            State::Trailers => State::Trailers,
            other => other,
        };
    }

    /// Checks a complete head and sets how its body is framed.
    fn head(&mut self, head: &[u8]) -> Result<(), FramingError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            // The engine refuses it too, and closes: nothing to track after it.
            _ => {
                self.state = State::Off;
                return Ok(());
            }
        }
        let target = req.path.unwrap_or("");
        if target.len() > self.max_uri {
            return Err(FramingError::UriTooLong);
        }
        if target.contains('#') {
            return Err(FramingError::FragmentInTarget);
        }
        fn named<'h, 'b>(
            headers: &'h [httparse::Header<'b>],
            n: &'static str,
        ) -> impl Iterator<Item = &'h httparse::Header<'b>> {
            headers
                .iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(n))
        }
        let te: Vec<&[u8]> = named(req.headers, "transfer-encoding")
            .map(|h| h.value)
            .collect();
        let cl = framing::length(named(req.headers, "content-length").map(|h| h.value))?;
        if !te.is_empty() && cl.is_some() {
            return Err(FramingError::ContentLengthAndTransferEncoding);
        }
        self.state = match (te.as_slice(), cl) {
            ([], None | Some(0)) => State::Head,
            ([], Some(n)) => State::Body(n),
            ([one], _) => {
                framing::codings(one)?;
                if req.version == Some(0) {
                    // HTTP/1.0 has no chunked coding.
                    return Err(FramingError::InvalidTransferEncoding);
                }
                State::ChunkSize
            }
            _ => return Err(FramingError::RepeatedTransferEncoding),
        };
        Ok(())
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn is_h2_preface_start(b: &[u8]) -> bool {
    let n = b.len().min(PREFACE.len());
    b[..n] == PREFACE[..n]
}

/// The end (exclusive) in `input` of a line whose start is `held` + `input`.
fn find_crlf_across(held: &[u8], input: &[u8]) -> Option<usize> {
    if held.last() == Some(&b'\r') && input.first() == Some(&b'\n') {
        return Some(1);
    }
    find_crlf(input).map(|p| p + 2)
}

/// Joins adjacent byte releases.
fn merge(releases: Vec<Release>) -> Vec<Release> {
    let mut out: Vec<Release> = Vec::with_capacity(releases.len());
    for r in releases {
        match (out.last_mut(), r) {
            (Some(Release::Bytes(a)), Release::Bytes(b)) => a.extend_from_slice(&b),
            (_, r) => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> WireCheck {
        WireCheck::new(100, 1000)
    }

    /// Feeds `input` in pieces of `step` bytes; returns the bytes released and the refusal.
    fn run(input: &[u8], step: usize) -> (Vec<u8>, Option<(u64, FramingError)>) {
        let mut c = check();
        let mut bytes = Vec::new();
        for piece in input.chunks(step) {
            for r in c.feed(piece) {
                match r {
                    Release::Bytes(b) => bytes.extend(b),
                    Release::Refuse { index, error } => return (bytes, Some((index, error))),
                }
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
    fn malformed_chunks_pass_to_the_engine_which_refuses_them() {
        let input = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /next#x HTTP/1.1\r\n\r\n";
        assert_eq!(run(input, 8), (input.to_vec(), None));
    }
}
