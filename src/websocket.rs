//! WebSocket (RFC 6455) as far as the gateway needs it: which requests open a tunnel, the
//! route's rules for closing one, and the frame boundaries of a tunnel's bytes — so a close
//! frame the gateway sends itself lands between frames, never inside one. Frames are not
//! decoded: payloads (and extensions such as permessage-deflate) pass untouched.

use std::time::Duration;

/// When the gateway closes a route's tunnels itself (`routes[].websocket`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub close_on_revoke: bool,
    pub close_at_token_expiry: bool,
    pub max_lifetime: Option<Duration>,
    pub idle_timeout: Option<Duration>,
}

/// Why the gateway closed a tunnel, or which side ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client closed its side (after a close handshake or not).
    Client,
    Upstream,
    /// The token that opened it was revoked (`close_on_revoke`).
    Revoked,
    /// The token that opened it expired (`close_at_token_expiry`).
    Expired,
    /// Open for `max_lifetime`.
    Lifetime,
    /// Nothing went either way for `idle_timeout`.
    Idle,
    /// The process is stopping.
    Shutdown,
}

impl Ending {
    /// The metrics' and logs' word for it.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::Client => "client",
            Ending::Upstream => "upstream",
            Ending::Revoked => "revoked",
            Ending::Expired => "expired",
            Ending::Lifetime => "lifetime",
            Ending::Idle => "idle",
            Ending::Shutdown => "shutdown",
        }
    }

    /// The close frame the gateway sends both sides when it ends the tunnel itself: 1008
    /// (policy violation) when the caller may no longer use it, 1001 (going away) otherwise.
    pub fn close_code(self) -> Option<(u16, &'static str)> {
        match self {
            Ending::Client | Ending::Upstream => None,
            Ending::Revoked => Some((1008, "token revoked")),
            Ending::Expired => Some((1008, "token expired")),
            Ending::Lifetime => Some((1001, "tunnel lifetime reached")),
            Ending::Idle => Some((1001, "tunnel idle")),
            Ending::Shutdown => Some((1001, "gateway stopping")),
        }
    }
}

fn lists(headers: &http::HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether a request asks for WebSocket at all (`Upgrade: websocket`): what a route without
/// `websocket:` refuses, also when a proxy asking the decision endpoint dropped the
/// hop-by-hop `Connection`.
pub fn asks_for_websocket(headers: &http::HeaderMap) -> bool {
    lists(headers, http::header::UPGRADE, "websocket")
}

/// Whether a request is a WebSocket handshake the proxy may tunnel (`Upgrade: websocket`
/// with `Connection: upgrade`, RFC 6455 §4.1); other upgrades (`h2c`) are not tunnelled.
pub fn is_handshake(headers: &http::HeaderMap) -> bool {
    asks_for_websocket(headers) && lists(headers, http::header::CONNECTION, "upgrade")
}

/// Where one direction of a tunnel is in its frames (RFC 6455 §5.2).
#[derive(Debug, Default)]
pub struct Frames {
    /// The current frame's header, while it arrives.
    head: [u8; MAX_HEADER],
    have: usize,
    /// Payload bytes of the current frame still to come.
    left: u64,
    /// A close frame passed (the side began the close handshake, or answered it).
    closed: bool,
}

/// 2 bytes, a 64-bit extended length, a masking key.
const MAX_HEADER: usize = 14;

impl Frames {
    /// Follows `bytes` as they pass.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                let take = self.left.min(bytes.len() as u64);
                self.left -= take;
                bytes = &bytes[take as usize..];
                continue;
            }
            self.head[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if let Some((size, payload)) = header(&self.head[..self.have])
                && self.have == size
            {
                self.closed |= self.head[0] & 0x0f == 0x8;
                self.have = 0;
                self.left = payload;
            }
        }
    }

    /// Whether a close frame passed this way.
    pub fn saw_close(&self) -> bool {
        self.closed
    }

    /// How many bytes end the current frame: 0 between frames; `None` inside a header
    /// (its length is not known yet: read a byte at a time).
    pub fn to_boundary(&self) -> Option<u64> {
        (self.have == 0).then_some(self.left)
    }
}

/// A frame header's size and its payload length, once enough of it is there to say.
fn header(h: &[u8]) -> Option<(usize, u64)> {
    let second = *h.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (ext, payload) = match second & 0x7f {
        126 => {
            let b = h.get(2..4)?;
            (2, u64::from(u16::from_be_bytes([b[0], b[1]])))
        }
        127 => {
            let b: [u8; 8] = h.get(2..10)?.try_into().ok()?;
            (8, u64::from_be_bytes(b))
        }
        n => (0, u64::from(n)),
    };
    Some((2 + ext + mask, payload))
}

/// A close frame with `code` and `reason` (RFC 6455 §5.5.1); masked with `mask` when it goes
/// to the upstream (a client's frames are masked, §5.3).
pub fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    // A control frame's payload is at most 125 bytes.
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    let mut frame = vec![0x88, payload.len() as u8];
    if let Some(key) = mask {
        frame[1] |= 0x80;
        frame.extend_from_slice(&key);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    frame.extend_from_slice(&payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(m | len as u8),
            126..=65535 => {
                f.push(m | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(7u8, len));
        f
    }

    #[test]
    fn frame_boundaries_are_found_for_every_length_encoding_masked_or_not() {
        for (len, masked) in [
            (0, false),
            (5, true),
            (125, false),
            (126, true),
            (70_000, false),
        ] {
            let f = frame(len, masked);
            let mut frames = Frames::default();
            frames.feed(&f[..1]);
            assert_eq!(frames.to_boundary(), None, "inside the header of {len}");
            frames.feed(&f[1..f.len() - 1]);
            if len > 0 {
                assert_eq!(frames.to_boundary(), Some(1), "one byte left of {len}");
            }
            frames.feed(&f[f.len() - 1..]);
            assert_eq!(frames.to_boundary(), Some(0), "after the frame of {len}");
        }
    }

    #[test]
    fn frames_split_anywhere_and_back_to_back_are_followed() {
        let mut bytes = frame(300, true);
        bytes.extend(frame(3, false));
        bytes.extend(frame(0, true));
        for cut in 0..bytes.len() {
            let mut frames = Frames::default();
            frames.feed(&bytes[..cut]);
            frames.feed(&bytes[cut..]);
            assert_eq!(frames.to_boundary(), Some(0), "cut at {cut}");
        }
        let mut frames = Frames::default();
        frames.feed(&bytes[..bytes.len() - 2]);
        assert_ne!(frames.to_boundary(), Some(0));
        let mut frames = Frames::default();
        frames.feed(&bytes);
        assert!(!frames.saw_close());
        frames.feed(&close_frame(1000, "", None));
        assert!(frames.saw_close());
    }

    #[test]
    fn a_close_frame_carries_its_code_and_is_masked_toward_the_upstream() {
        assert_eq!(
            close_frame(1008, "no", None),
            [0x88, 4, 0x03, 0xf0, b'n', b'o']
        );
        let masked = close_frame(1001, "", Some([0xff, 0, 0xff, 0]));
        assert_eq!(masked, [0x88, 0x82, 0xff, 0, 0xff, 0, 0x03 ^ 0xff, 0xe9]);
        assert_eq!(close_frame(1001, &"x".repeat(200), None).len(), 2 + 125);
    }

    #[test]
    fn only_a_websocket_upgrade_with_connection_upgrade_is_a_handshake() {
        let mut h = http::HeaderMap::new();
        h.insert("upgrade", "WebSocket".parse().unwrap());
        assert!(!is_handshake(&h), "Connection: upgrade is required");
        assert!(asks_for_websocket(&h), "but it asks for WebSocket");
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(is_handshake(&h));
        h.insert("upgrade", "h2c".parse().unwrap());
        assert!(!is_handshake(&h), "h2c is not tunnelled");
        assert!(!asks_for_websocket(&h));
    }
}
