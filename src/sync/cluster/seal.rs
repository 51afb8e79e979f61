//! Authenticated shared state: every value written to Redis and every message published is
//! sealed with an HMAC-SHA256 (keyed by `cluster.hmac_key`, the same on every replica) over
//! what it says, when it was written, and where it belongs — its key name or channel, and
//! the facts it is about (an issuer's `iss` and endpoint, a policy source's URL). A value
//! moved to another key, or about another issuer, fails; so does anything written by whoever
//! lacks the key. Pure: `Cluster` reads and writes, this only seals and opens.
//!
//! Wire form: `v1.<key id>.<ms>.<mac>.<body>`, the MAC (base64url) over
//! `scopegate-cluster-v1 \0 <binding> \0 <key id> \0 <ms> \0 <body>`.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The longest sealed text opened (a revocation record, a lease, an introspection answer or
/// an organization document): a value beyond is refused before it is parsed.
pub const MAX_SEALED: usize = 4 << 20;

const DOMAIN: &[u8] = b"scopegate-cluster-v1";

/// Why a sealed text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    TooLarge,
    Malformed,
    /// Sealed with a key this replica does not have (neither the current nor the previous).
    UnknownKey,
    /// The MAC does not match: forged, altered, or moved from another key or issuer.
    BadMac,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SealError::TooLarge => "too large",
            SealError::Malformed => "not a sealed value",
            SealError::UnknownKey => "sealed with an unknown key",
            SealError::BadMac => "its MAC does not match (forged, altered or moved)",
        })
    }
}

/// A value that passed: when it was sealed (Unix ms) and what it says.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub at_ms: u64,
    pub body: String,
}

struct Key {
    id: String,
    key: hmac::Key,
}

impl Key {
    fn new(secret: &[u8]) -> Key {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
        Key {
            id: digest.as_ref()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn input(&self, binding: &str, at_ms: u64, body: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(DOMAIN.len() + binding.len() + body.len() + 32);
        for part in [
            DOMAIN,
            binding.as_bytes(),
            self.id.as_bytes(),
            at_ms.to_string().as_bytes(),
            body.as_bytes(),
        ] {
            m.extend_from_slice(part);
            m.push(0);
        }
        m
    }
}

/// Seals with the current key; opens what the current or the previous key sealed.
pub struct Seal {
    current: Key,
    previous: Option<Key>,
}

impl Seal {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Seal {
        Seal {
            current: Key::new(current),
            previous: previous.map(Key::new),
        }
    }

    /// `body`, sealed for `binding` at `at_ms`.
    pub fn seal(&self, binding: &str, at_ms: u64, body: &str) -> String {
        let k = &self.current;
        let tag = hmac::sign(&k.key, &k.input(binding, at_ms, body));
        format!(
            "v1.{}.{at_ms}.{}.{body}",
            k.id,
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// What `text` says, if it was sealed for `binding` by a replica with one of the keys.
    pub fn open(&self, binding: &str, text: &str) -> Result<Opened, SealError> {
        if text.len() > MAX_SEALED {
            return Err(SealError::TooLarge);
        }
        let mut parts = text.splitn(5, '.');
        let (Some("v1"), Some(id), Some(at), Some(mac), Some(body)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SealError::Malformed);
        };
        let at_ms: u64 = at.parse().map_err(|_| SealError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| SealError::Malformed)?;
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or(SealError::UnknownKey)?;
        hmac::verify(&key.key, &key.input(binding, at_ms, body), &mac)
            .map_err(|_| SealError::BadMac)?;
        Ok(Opened {
            at_ms,
            body: body.to_string(),
        })
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &[u8] = b"0123456789abcdef0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn a_sealed_value_opens_only_where_it_belongs_and_unaltered() {
        let s = Seal::new(K1, None);
        let text = s.seal("p:revocations", 1_700_000_000_000, r#"{"a":1}"#);
        let opened = s.open("p:revocations", &text).unwrap();
        assert_eq!(opened.body, r#"{"a":1}"#);
        assert_eq!(opened.at_ms, 1_700_000_000_000);
        // Moved to another key, or another deployment's prefix.
        assert_eq!(s.open("q:revocations", &text), Err(SealError::BadMac));
        // Altered: the body, the time.
        let altered = text.replace(r#""a":1"#, r#""a":2"#);
        assert_eq!(s.open("p:revocations", &altered), Err(SealError::BadMac));
        let older = text.replacen("1700000000000", "1600000000000", 1);
        assert_eq!(s.open("p:revocations", &older), Err(SealError::BadMac));
        // Written by whoever lacks the key.
        let forged = Seal::new(K2, None).seal("p:revocations", 1, r#"{"a":1}"#);
        assert_eq!(s.open("p:revocations", &forged), Err(SealError::UnknownKey));
        let guessed = format!("v1.{}.1.AAAA.{{}}", s.current.id);
        assert_eq!(s.open("p:revocations", &guessed), Err(SealError::BadMac));
        for junk in [
            "",
            "v1",
            "v2.x.1.y.z",
            "v1.x.y.z.w",
            r#"{"answer":{"active":true}}"#,
        ] {
            assert!(s.open("p:revocations", junk).is_err(), "{junk}");
        }
        assert_eq!(
            s.open("p", &"x".repeat(MAX_SEALED + 1)),
            Err(SealError::TooLarge)
        );
    }

    #[test]
    fn a_rotation_accepts_the_previous_key_and_writes_with_the_new_one() {
        let old = Seal::new(K1, None);
        let rotating = Seal::new(K2, Some(K1));
        let written_before = old.seal("b", 1, "x");
        assert!(rotating.open("b", &written_before).is_ok());
        let written_now = rotating.seal("b", 2, "y");
        assert_eq!(old.open("b", &written_now), Err(SealError::UnknownKey));
        assert!(Seal::new(K2, None).open("b", &written_now).is_ok());
    }
}
