//! An issuer's verification keys, parsed from its JWKS.
//!
//! Only asymmetric keys are kept: an `oct` key in a JWKS would let anyone who can read the
//! JWKS forge HS* tokens. Keys marked `use: enc` are skipped; a key that fails to parse is
//! skipped with its kid reported, so one odd key cannot take the whole set down.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

pub struct Key {
    pub kid: Option<String>,
    /// The `alg` the JWK pins, if any.
    pub alg: Option<Algorithm>,
    pub family: AlgorithmFamily,
    pub curve: Option<EllipticCurve>,
    pub key: DecodingKey,
}

impl Key {
    /// Whether a token signed with `alg` may be checked with this key.
    pub fn fits(&self, alg: Algorithm) -> bool {
        if alg.family() != self.family || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match (alg, &self.curve) {
            (Algorithm::ES256, Some(c)) => *c == EllipticCurve::P256,
            (Algorithm::ES384, Some(c)) => *c == EllipticCurve::P384,
            (Algorithm::EdDSA, Some(c)) => *c == EllipticCurve::Ed25519,
            _ => true,
        }
    }
}

#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")))
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document; returns the set and the reasons keys were skipped.
    pub fn from_jwks(json: &[u8]) -> Result<(KeySet, Vec<String>), String> {
        let raw: RawSet =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for value in raw.keys {
            let kid_hint = value
                .get("kid")
                .and_then(|k| k.as_str())
                .unwrap_or("-")
                .to_string();
            match serde_json::from_value::<Jwk>(value) {
                Ok(jwk) => match Self::key(&jwk) {
                    Ok(k) => keys.push(k),
                    Err(why) => skipped.push(format!("kid {kid_hint}: {why}")),
                },
                Err(e) => skipped.push(format!("kid {kid_hint}: {e}")),
            }
        }
        Ok((KeySet { keys }, skipped))
    }

    fn key(jwk: &Jwk) -> Result<Key, String> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err("an encryption key".into());
        }
        let (family, curve) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
            AlgorithmParameters::EllipticCurve(p) => (AlgorithmFamily::Ec, Some(p.curve.clone())),
            AlgorithmParameters::OctetKeyPair(p) => (AlgorithmFamily::Ed, Some(p.curve.clone())),
            AlgorithmParameters::OctetKey(_) => {
                return Err("a symmetric key is never accepted from a JWKS".into());
            }
            _ => return Err("unsupported key type".into()),
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(a) => Some(
                a.to_string()
                    .parse::<Algorithm>()
                    .map_err(|_| format!("unsupported alg {a}"))?,
            ),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        Ok(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            family,
            curve,
            key,
        })
    }

    /// The key for a token header: by `kid` when given, else the only key fitting `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Key> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg)),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                let first = fitting.next();
                if fitting.next().is_some() {
                    None
                } else {
                    first
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_KEY: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    fn set(keys: &[&str]) -> (KeySet, Vec<String>) {
        KeySet::from_jwks(format!(r#"{{"keys":[{}]}}"#, keys.join(",")).as_bytes()).unwrap()
    }

    #[test]
    fn symmetric_and_encryption_keys_are_skipped_with_a_reason() {
        let oct = r#"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#;
        let enc = r#"{"kty":"OKP","crv":"Ed25519","kid":"e","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let (s, skipped) = set(&[oct, enc, ED_KEY]);
        assert_eq!(s.len(), 1);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].contains("symmetric"));
    }

    #[test]
    fn keys_are_found_by_kid_only_for_a_fitting_algorithm() {
        let (s, _) = set(&[ED_KEY]);
        assert!(s.find(Some("ed"), Algorithm::EdDSA).is_some());
        assert!(s.find(Some("ed"), Algorithm::RS256).is_none());
        assert!(s.find(Some("other"), Algorithm::EdDSA).is_none());
        assert!(s.find(None, Algorithm::EdDSA).is_some());
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_set() {
        assert!(KeySet::from_jwks(b"<html>").is_err());
    }
}
