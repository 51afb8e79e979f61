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
    /// After a head that asks to switch protocols (`Upgrade`, `CONNECT`): what follows is
    /// held, unread, until the engine's answer says whether the connection became a tunnel
    /// (bytes pass as they are from then on) or stays HTTP/1 (checked as before).
    Upgrade,
    /// Not HTTP/1 framing (the HTTP/2 preface), or the engine will refuse what follows and
    /// close: bytes pass as they are.
    Off,
    /// A chunk-size line broke RFC 9112 §7.1 where the engine would have been lenient: nothing
    /// more is released, so the engine meets the end of the stream inside the body (a 400,
    /// the connection closed, the upstream's copy never complete).
    Cut,
}

/// Where released bytes go.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts released bytes instead of copying them: while no head is held
/// ([`WireCheck::holds_head`] is false), what `feed` releases is always a prefix of its input,
/// so the engine can read it where it already is.
pub struct Count(pub usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// A head the check refused: the stand-in for request number `index` (0-based on the
/// connection) is what the engine reads instead, then the stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub index: u64,
    pub error: FramingError,
}

pub struct WireCheck {
    state: State,
    /// A head being collected across reads, or a chunk-size / trailer line.
    line: Vec<u8>,
    /// Heads released so far (the index of the next one).
    heads: u64,
    max_uri: usize,
    max_head: usize,
    /// Whether the engine may answer an upgrade with 101 (the proxy); elsewhere a head
    /// that asks for one is an ordinary request.
    tunnels: bool,
}

/// The size of a chunk-size line (with its CRLF) written as RFC 9112 §7.1 has it:
/// `1*HEXDIG *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ) CRLF`. Whitespace
/// is allowed only around an extension, never alone before the CRLF (`5 \r\n`), which hyper
/// would take.
pub fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
    let mut rest = &line[digits..];
    let bws = |r: &mut &[u8]| {
        while let [b' ' | b'\t', tail @ ..] = *r {
            *r = tail;
        }
    };
    let token = |r: &mut &[u8]| {
        let n = r.iter().take_while(|&&b| framing::is_tchar(b)).count();
        *r = &r[n..];
        n > 0
    };
    while !rest.is_empty() {
        bws(&mut rest);
        rest = rest.strip_prefix(b";")?;
        bws(&mut rest);
        if !token(&mut rest) {
            return None;
        }
        let mut after = rest;
        bws(&mut after);
        if let Some(value) = after.strip_prefix(b"=") {
            rest = value;
            bws(&mut rest);
            if let Some(quoted) = rest.strip_prefix(b"\"") {
                rest = quoted_string_tail(quoted)?;
            } else if !token(&mut rest) {
                return None;
            }
        }
    }
    Some(size)
}

/// What follows a quoted string whose opening quote was taken (RFC 9110 §5.6.4).
fn quoted_string_tail(mut r: &[u8]) -> Option<&[u8]> {
    loop {
        match *r {
            [b'"', ref tail @ ..] => return Some(tail),
            [b'\\', c, ref tail @ ..] if c == b'\t' || c >= 0x20 && c != 0x7f => r = tail,
            [c, ref tail @ ..] if c == b'\t' || (c >= 0x20 && c != 0x7f && c != b'\\') => r = tail,
            _ => return None,
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    memchr::memmem::find(b, b"\r\n")
}

/// How much of a buffer a head takes, once complete.
enum Head {
    /// The head is `n` bytes long and acceptable.
    Complete(usize),
    Partial,
    /// Not a head hyper would take: it refuses it and closes, so nothing to check or track.
    Unparsable,
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
            tunnels: false,
        }
    }

    /// A check for a connection whose requests may become tunnels (WebSocket).
    pub fn with_tunnels(mut self) -> WireCheck {
        self.tunnels = true;
        self
    }

    /// The index of the request that asked to switch protocols, while its answer is awaited
    /// (nothing more is read meanwhile).
    pub fn awaiting_upgrade(&self) -> Option<u64> {
        (self.state == State::Upgrade).then(|| self.heads - 1)
    }

    /// The engine answered the upgrade: `switched` (101) makes the connection a tunnel whose
    /// bytes pass unchecked; otherwise it stays HTTP/1 and what was held is checked now.
    pub fn upgrade_answered<S: Sink>(&mut self, switched: bool, out: &mut S) -> Option<Refused> {
        let held = std::mem::take(&mut self.line);
        if switched {
            self.state = State::Off;
            out.put(&held);
            None
        } else {
            self.state = State::Head;
            self.feed(&held, out)
        }
    }

    /// Takes bytes read from the client and appends to `out` what the engine may read now;
    /// `Some` when a head was refused (nothing after it is released).
    pub fn feed<S: Sink>(&mut self, mut input: &[u8], out: &mut S) -> Option<Refused> {
        while !input.is_empty() {
            match self.state {
                State::Off => {
                    out.put(input);
                    input = &[];
                }
                State::Cut => return None,
                State::Upgrade => {
                    self.line.extend_from_slice(input);
                    input = &[];
                }
                State::Body(n) | State::ChunkData(n) => {
                    let take = n.min(input.len() as u64) as usize;
                    out.put(&input[..take]);
                    input = &input[take..];
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), left) => State::Body(left),
                        (_, 0) => State::ChunkEnd(2),
                        (_, left) => State::ChunkData(left),
                    };
                }
                State::ChunkEnd(left) => {
                    let expected = &b"\r\n"[2 - left as usize..];
                    let take = (left as usize).min(input.len());
                    let ok = input[..take] == expected[..take];
                    out.put(&input[..take]);
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
                    out.put(line);
                    self.line.extend_from_slice(line);
                    input = rest;
                    if self.line.len() > 4096 {
                        self.state = State::Off;
                    } else if complete {
                        self.end_of_line();
                    }
                }
                State::Head if self.line.is_empty() => {
                    // The common case: the head is whole in what was read, checked in place.
                    match self.head(input) {
                        Ok(Head::Complete(n)) => {
                            out.put(&input[..n]);
                            input = &input[n..];
                        }
                        Ok(Head::Unparsable) => self.state = State::Off,
                        Ok(Head::Partial) => {
                            self.line.extend_from_slice(input);
                            input = &[];
                            if let Some(r) = self.held(out) {
                                return Some(r);
                            }
                        }
                        Err(error) => return Some(self.refuse(error)),
                    }
                }
                State::Head => {
                    self.line.extend_from_slice(input);
                    input = &[];
                    let held = std::mem::take(&mut self.line);
                    match self.head(&held) {
                        Ok(Head::Complete(n)) => {
                            out.put(&held[..n]);
                            // What followed the head is read again in the new state.
                            return self.feed(&held[n..], out);
                        }
                        Ok(Head::Unparsable) => {
                            self.state = State::Off;
                            out.put(&held);
                        }
                        Ok(Head::Partial) => {
                            self.line = held;
                            if let Some(r) = self.held(out) {
                                return Some(r);
                            }
                        }
                        Err(error) => return Some(self.refuse(error)),
                    }
                }
            }
        }
        None
    }

    /// Whether the stream was cut inside a body: nothing more reaches the engine.
    pub fn is_cut(&self) -> bool {
        self.state == State::Cut
    }

    /// Whether part of a head is held back (then released bytes are not a prefix of the next
    /// input).
    pub fn holds_head(&self) -> bool {
        self.state == State::Head && !self.line.is_empty()
    }

    /// What is held back when the client closes: released, so the engine sees the partial
    /// head it would have seen.
    pub fn finish(&mut self) -> Vec<u8> {
        if self.holds_head() {
            std::mem::take(&mut self.line)
        } else {
            // A chunk-size or trailer line was passed through as it came.
            self.line.clear();
            Vec::new()
        }
    }

    fn refuse(&mut self, error: FramingError) -> Refused {
        self.state = State::Off;
        self.line.clear();
        Refused {
            index: self.heads,
            error,
        }
    }

    /// A partial head is held: refused when it cannot end within the limits (414 when the
    /// request line alone is too long); released when it is the HTTP/2 preface.
    fn held<S: Sink>(&mut self, out: &mut S) -> Option<Refused> {
        let request_line = find_crlf(&self.line).unwrap_or(self.line.len());
        // "METHOD SP target SP HTTP/1.1": the target is at most a few bytes shorter.
        if request_line > self.max_uri + 32 {
            return Some(self.refuse(FramingError::UriTooLong));
        }
        if self.line.len() > self.max_head {
            return Some(self.refuse(FramingError::HeadersTooLarge));
        }
        if self.heads == 0 && self.line.len() >= PREFACE.len() && self.line.starts_with(PREFACE) {
            // Prior-knowledge HTTP/2: not HTTP/1 framing.
            self.state = State::Off;
            out.put(&std::mem::take(&mut self.line));
        }
        None
    }

    /// A chunk-size or trailer line ended (it is in `self.line`, with its CRLF).
    fn end_of_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.state = match self.state {
            State::ChunkSize => match chunk_size(&line) {
                Some(0) => State::Trailers,
                Some(n) => State::ChunkData(n),
                None => State::Cut,
            },
            State::Trailers if line == b"\r\n" => State::Head,
            State::Trailers => State::Trailers,
            other => other,
        };
    }

    /// Parses and checks the head at the start of `buf`; sets how its body is framed.
    fn head(&mut self, buf: &[u8]) -> Result<Head, FramingError> {
        if self.heads == 0 && buf.starts_with(&PREFACE[..buf.len().min(PREFACE.len())]) {
            return Ok(Head::Partial);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let n = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(Head::Partial),
            Err(_) => return Ok(Head::Unparsable),
        };
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
        // As hyper has it: `Upgrade` counts on HTTP/1.1 only; a body-less one may switch.
        let upgrade = req.method == Some("CONNECT")
            || (req.version == Some(1) && named(req.headers, "upgrade").next().is_some());
        if self.tunnels && upgrade && self.state == State::Head {
            self.state = State::Upgrade;
        }
        self.heads += 1;
        Ok(Head::Complete(n))
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The end (exclusive) in `input` of a line whose start is `held` + `input`.
fn find_crlf_across(held: &[u8], input: &[u8]) -> Option<usize> {
    if held.last() == Some(&b'\r') && input.first() == Some(&b'\n') {
        return Some(1);
    }
    find_crlf(input).map(|p| p + 2)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
