//! Path normalization: the one place that decides what path a request names.
//!
//! The gateway matches routes on the normalized path and forwards exactly that path, so the
//! upstream can never see a path that means something else than what was authorized. Every
//! spelling that could be read two ways by two HTTP stacks is refused instead of guessed.

use std::fmt;

/// A path that passed [`normalize`]: starts with `/`, no dot-segments, no `//`, every
/// character a route's static segment may hold (unreserved, sub-delims, `:` and `@`)
/// decoded, every remaining `%XX` upper-case and valid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath(String);

impl NormalizedPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NormalizedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path was refused (each is a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotOriginForm,
    EncodedSlash,
    Backslash,
    PathParameter,
    Nul,
    InvalidPercentEncoding,
    InvalidUtf8,
    ControlCharacter,
    AboveRoot,
    /// `%3F` or `%23`: a `?` or `#` that an upstream may take for the end of the path.
    EncodedDelimiter,
    /// A `..` that RFC 3986 §5.2.4 (and WHATWG) resolves against an empty segment (`a//..`):
    /// an upstream resolving the client's spelling would serve another path than the one
    /// matched with `//` merged.
    AmbiguousDotSegment,
}

impl PathError {
    pub fn description(self) -> &'static str {
        match self {
            PathError::NotOriginForm => "the path must start with /",
            PathError::EncodedSlash => "encoded / in the path is ambiguous",
            PathError::Backslash => "\\ in the path is ambiguous",
            PathError::PathParameter => "; path parameters are not accepted",
            PathError::Nul => "NUL in the path",
            PathError::InvalidPercentEncoding => "invalid percent-encoding in the path",
            PathError::InvalidUtf8 => "the path is not valid UTF-8",
            PathError::ControlCharacter => "control character in the path",
            PathError::AboveRoot => "the path climbs above the root",
            PathError::EncodedDelimiter => "encoded ? or # in the path is ambiguous",
            PathError::AmbiguousDotSegment => {
                "`..` after an empty segment (`//..`) is resolved differently by different servers"
            }
        }
    }
}

/// Characters decoded wherever they are percent-encoded: the unreserved ones (RFC 3986
/// §6.2.2.2), and the sub-delims, `:` and `@` that a path segment may hold raw (`pchar`).
/// Upstreams commonly decode those too, so `/v1/spaces%3Asetup` and `/v1/spaces:setup` must be
/// one path for matching and for forwarding. A route's static segment holds exactly these.
pub fn is_segment_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Normalizes one segment into `out`; checks that its decoded bytes are valid UTF-8
/// (which also refuses overlong encodings such as `%C0%AE`).
fn push_segment(seg: &[u8], out: &mut String, decoded: &mut Vec<u8>) -> Result<(), PathError> {
    decoded.clear();
    let mut i = 0;
    while i < seg.len() {
        let b = seg[i];
        match b {
            b'%' => {
                let (h, l) = match (
                    seg.get(i + 1).and_then(|&c| hex(c)),
                    seg.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => (h, l),
                    _ => return Err(PathError::InvalidPercentEncoding),
                };
                let v = h << 4 | l;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'?' | b'#' => return Err(PathError::EncodedDelimiter),
                    b'\\' => return Err(PathError::Backslash),
                    b';' => return Err(PathError::PathParameter),
                    0 => return Err(PathError::Nul),
                    0x01..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                    _ => {}
                }
                if is_segment_char(v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(HEX_UPPER[(v >> 4) as usize] as char);
                    out.push(HEX_UPPER[(v & 15) as usize] as char);
                }
                decoded.push(v);
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            0 => return Err(PathError::Nul),
            0x01..=0x20 | 0x7f => return Err(PathError::ControlCharacter),
            0x80..=0xff => return Err(PathError::InvalidUtf8),
            _ => {
                out.push(b as char);
                decoded.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(decoded).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    Ok(())
}

/// Normalizes the path part of a request target (without the query).
///
/// RFC 3986 dot-segment removal, with `%2E` counting as `.`; empty segments (`//`) are
/// merged, as nginx does, so `//admin` cannot slip past a route for `/admin`. A trailing `/`
/// is kept: `/a/` and `/a` are different paths.
///
/// Merging `//` first and resolving `..` per RFC 3986 §5.2.4 (which pops an empty segment
/// like any other) disagree only when a `..` meets an empty segment: such a target is
/// refused, so the path matched is the path any upstream resolves from the client's
/// spelling (a caller of the decision endpoint forwards that spelling).
pub fn normalize(raw: &str) -> Result<NormalizedPath, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    let mut out = String::with_capacity(raw.len());
    // Start offsets in `out` of each kept segment's leading '/', to pop on `..`.
    let mut starts: Vec<usize> = Vec::new();
    // The segments RFC 3986 keeps, empty ones included: `true` for an empty one. Only its
    // top is ever looked at.
    let mut rfc: Vec<bool> = Vec::new();
    let mut decoded = Vec::new();
    let mut trailing_slash = false;
    for seg in bytes[1..].split(|&b| b == b'/') {
        trailing_slash = false;
        if seg.is_empty() {
            rfc.push(true);
            trailing_slash = true;
            continue;
        }
        let start = out.len();
        out.push('/');
        push_segment(seg, &mut out, &mut decoded)?;
        match &out[start + 1..] {
            "." => {
                out.truncate(start);
                trailing_slash = true;
            }
            ".." => {
                out.truncate(start);
                if rfc.pop() == Some(true) {
                    return Err(PathError::AmbiguousDotSegment);
                }
                let prev = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(prev);
                trailing_slash = true;
            }
            _ => {
                starts.push(start);
                rfc.push(false);
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(NormalizedPath(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e:?}")).0
    }

    #[test]
    fn plain_paths_are_unchanged() {
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/orgs/acme/repos"), "/orgs/acme/repos");
        assert_eq!(ok("/a/"), "/a/");
    }

    #[test]
    fn unreserved_characters_are_decoded_and_others_kept_upper_case() {
        assert_eq!(ok("/%61dmin"), "/admin");
        assert_eq!(ok("/a%7eb%2d"), "/a~b-");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/a%22b%3c"), "/a%22b%3C");
        assert_eq!(ok("/caf%C3%A9"), "/caf%C3%A9");
    }

    #[test]
    fn characters_a_static_segment_may_hold_are_decoded_to_one_form() {
        assert_eq!(ok("/v1/spaces%3Asetup"), "/v1/spaces:setup");
        assert_eq!(ok("/v1/spaces%3asetup"), "/v1/spaces:setup");
        assert_eq!(ok("/a%40b%21%24%26%27%28%29%2A%2B%2C%3D"), "/a@b!$&'()*+,=");
    }

    #[test]
    fn an_encoded_query_or_fragment_delimiter_is_refused() {
        assert_eq!(normalize("/a%3fb"), Err(PathError::EncodedDelimiter));
        assert_eq!(normalize("/a%3Fb"), Err(PathError::EncodedDelimiter));
        assert_eq!(normalize("/admin%23x"), Err(PathError::EncodedDelimiter));
    }

    #[test]
    fn dot_segments_are_removed_including_encoded_ones() {
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("/a/b/../c"), "/a/c");
        assert_eq!(ok("/a/%2e%2E/admin"), "/admin");
        assert_eq!(ok("/a/.."), "/");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/."), "/a/");
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(ok("//admin///x"), "/admin/x");
        assert_eq!(ok("/a//"), "/a/");
    }

    #[test]
    fn a_dot_dot_that_rfc_3986_resolves_against_an_empty_segment_is_refused() {
        // Merged first, this is /api/users/42; resolved per RFC 3986 §5.2.4 (the client's
        // spelling at an upstream), /api/users/admin/42.
        assert_eq!(
            normalize("/api/users/admin//../42"),
            Err(PathError::AmbiguousDotSegment)
        );
        assert_eq!(
            normalize("/a//b/../.."),
            Err(PathError::AmbiguousDotSegment)
        );
        assert_eq!(
            normalize("/a//%2e%2e/b"),
            Err(PathError::AmbiguousDotSegment)
        );
        // Where both readings agree, the path is taken.
        assert_eq!(ok("/a//b/../c"), "/a/c");
        assert_eq!(ok("/a//./b"), "/a/b");
        assert_eq!(ok("/a/b//"), "/a/b/");
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        assert_eq!(normalize("/.."), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a/../../etc"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/%2e%2e/x"), Err(PathError::AboveRoot));
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        assert_eq!(normalize("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(normalize("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(normalize("/a%5cb"), Err(PathError::Backslash));
        assert_eq!(normalize("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalize("/a;jsessionid=1"), Err(PathError::PathParameter));
        assert_eq!(normalize("/a%3bb"), Err(PathError::PathParameter));
        assert_eq!(normalize("/a%00"), Err(PathError::Nul));
        assert_eq!(normalize("/a%0a"), Err(PathError::ControlCharacter));
    }

    #[test]
    fn invalid_percent_encoding_is_refused() {
        assert_eq!(normalize("/a%"), Err(PathError::InvalidPercentEncoding));
        assert_eq!(normalize("/a%4"), Err(PathError::InvalidPercentEncoding));
        assert_eq!(normalize("/a%zz"), Err(PathError::InvalidPercentEncoding));
    }

    #[test]
    fn overlong_and_invalid_utf8_is_refused() {
        // %C0%AE is an overlong '.', the classic traversal bypass.
        assert_eq!(normalize("/%C0%AE%C0%AE/x"), Err(PathError::InvalidUtf8));
        assert_eq!(normalize("/%E0%80%AF"), Err(PathError::InvalidUtf8));
        assert_eq!(normalize("/%FF"), Err(PathError::InvalidUtf8));
    }

    #[test]
    fn non_origin_form_is_refused() {
        assert_eq!(normalize("*"), Err(PathError::NotOriginForm));
        assert_eq!(normalize(""), Err(PathError::NotOriginForm));
    }
}
