//! `application/x-www-form-urlencoded` query handling for the `access_token` parameter.

use std::borrow::Cow;

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Form-decodes one name or value; `None` when its percent-encoding is broken.
fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let h = bytes.get(i + 1).copied().and_then(hex)?;
                let l = bytes.get(i + 2).copied().and_then(hex)?;
                out.push(h << 4 | l);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// `name` appears more than once in the query.
#[derive(Debug, PartialEq, Eq)]
pub struct Repeated;

/// The decoded value of `name` in `query`; `Err` when it appears more than once.
pub fn find_param<'q>(query: &'q str, name: &str) -> Result<Option<Cow<'q, str>>, Repeated> {
    let mut found = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k).as_deref() == Some(name) {
            if found.is_some() {
                return Err(Repeated);
            }
            found = Some(decode(v).unwrap_or(Cow::Borrowed("")));
        }
    }
    Ok(found)
}

/// `query` without any `name=` pair (for forwarding without the token); `None` when empty.
pub fn without_param(query: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            decode(k).as_deref() != Some(name)
        })
        .collect();
    let joined = kept.join("&");
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_token_keeps_every_other_pair_in_order() {
        assert_eq!(
            without_param("a=1&access_token=x&b=2", "access_token").as_deref(),
            Some("a=1&b=2")
        );
        assert_eq!(without_param("access%5Ftoken=x", "access_token"), None);
        assert_eq!(
            without_param("a&b=", "access_token").as_deref(),
            Some("a&b=")
        );
    }

    #[test]
    fn broken_percent_encoding_in_a_value_yields_an_empty_token() {
        assert_eq!(
            find_param("access_token=%zz", "access_token"),
            Ok(Some(Cow::Borrowed("")))
        );
    }
}
