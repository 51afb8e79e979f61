//! The signed identity assertion: a short-lived JWT (EdDSA or ES256) the gateway mints per
//! principal and sends upstream, verifiable with the gateway's JWKS, so an upstream reachable
//! by other paths can tell the gateway's identity headers from a forgery. Minted once per
//! principal and reused until half its life is spent.

use crate::principal::Principal;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Map, Value, json};

/// The longest life an assertion may have.
pub const MAX_LIFETIME_SECS: u64 = 60;

pub struct AssertionSigner {
    pub header: HeaderName,
    /// Where the proxy listener publishes the JWKS, if anywhere.
    pub jwks_path: Option<String>,
    issuer: String,
    audience: String,
    lifetime: u64,
    alg: Algorithm,
    key: EncodingKey,
    kid: String,
    /// `{"keys": [current, previous]}`.
    jwks: Bytes,
}

/// What a signer is made of, as configured.
pub struct AssertionRules<'a> {
    pub key_pem: &'a [u8],
    pub previous_key_pem: Option<&'a [u8]>,
    pub issuer: String,
    pub audience: String,
    pub lifetime_secs: u64,
    pub header: HeaderName,
    pub jwks_path: Option<String>,
}

/// A PKCS#8 PEM key: its algorithm (by its kind), the key, and its public JWK with an
/// RFC 7638 thumbprint as `kid`.
fn load(pem: &[u8], what: &str) -> Result<(Algorithm, EncodingKey, Value, String), String> {
    let der = match PrivateKeyDer::from_pem_slice(pem) {
        Ok(PrivateKeyDer::Pkcs8(k)) => k.secret_pkcs8_der().to_vec(),
        Ok(_) => {
            return Err(format!(
                "{what}: a PKCS#8 key (`BEGIN PRIVATE KEY`) is needed"
            ));
        }
        Err(e) => return Err(format!("{what}: {e}")),
    };
    // An Ed25519 PKCS#8 document is 48 bytes (RFC 8410); anything else is tried as P-256.
    let (alg, key) = if der.len() == 48 {
        (Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
    } else {
        (Algorithm::ES256, EncodingKey::from_ec_der(&der))
    };
    let jwk = Jwk::from_encoding_key(&key, alg)
        .map_err(|e| format!("{what}: not an Ed25519 or P-256 key ({e})"))?;
    // RFC 7638: the required members, in lexicographic order, no whitespace.
    let canonical = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(k) => {
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, k.x)
        }
        AlgorithmParameters::EllipticCurve(k) => {
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                k.x, k.y
            )
        }
        _ => return Err(format!("{what}: not an Ed25519 or P-256 key")),
    };
    let kid = URL_SAFE_NO_PAD.encode(crate::token::hash(&canonical));
    let mut public = serde_json::to_value(&jwk).map_err(|e| e.to_string())?;
    if let Some(o) = public.as_object_mut() {
        o.insert("kid".into(), json!(kid));
        o.insert("use".into(), json!("sig"));
    }
    Ok((alg, key, public, kid))
}

impl AssertionSigner {
    pub fn new(r: AssertionRules) -> Result<AssertionSigner, String> {
        if r.lifetime_secs == 0 || r.lifetime_secs > MAX_LIFETIME_SECS {
            return Err(format!("lifetime: between 1 s and {MAX_LIFETIME_SECS} s"));
        }
        let (alg, key, public, kid) = load(r.key_pem, "key")?;
        let mut keys = vec![public];
        if let Some(pem) = r.previous_key_pem {
            keys.push(load(pem, "previous_key")?.2);
        }
        let signer = AssertionSigner {
            header: r.header,
            jwks_path: r.jwks_path,
            issuer: r.issuer,
            audience: r.audience,
            lifetime: r.lifetime_secs,
            alg,
            key,
            kid,
            jwks: Bytes::from(json!({ "keys": keys }).to_string()),
        };
        // A key that cannot sign is a load error, not a failure on the first request.
        signer.sign(&Principal::for_signing_check(), 0)?;
        Ok(signer)
    }

    /// The JWKS document upstreams verify with.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The assertion for `p`: the one minted before while it has more than half its life
    /// left, else a new one.
    pub fn assertion(&self, p: &Principal, now: u64) -> Option<HeaderValue> {
        let mint = || HeaderValue::from_str(&self.sign(p, now).ok()?).ok();
        // A principal cached before a reload turned minting on has no slot: minted each time.
        let Some(extras) = &p.extras else {
            return mint();
        };
        let mut slot = extras.minted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((until, v)) = &*slot
            && now < *until
        {
            return Some(v.clone());
        }
        let v = mint()?;
        *slot = Some((now + self.lifetime / 2, v.clone()));
        Some(v)
    }

    fn sign(&self, p: &Principal, now: u64) -> Result<String, String> {
        let text = |v: &HeaderValue| v.to_str().unwrap_or_default().to_string();
        let mut claims = Map::new();
        // The token's own claims first: the gateway's then take precedence.
        for (name, value) in p.assertion_claims() {
            claims.insert(name.to_string(), value.clone());
        }
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("aud".into(), json!(self.audience));
        claims.insert("sub".into(), json!(text(&p.subject)));
        claims.insert("iat".into(), json!(now));
        claims.insert(
            "exp".into(),
            json!((now + self.lifetime).min(p.expires_at.max(now + 1))),
        );
        claims.insert("scope".into(), json!(text(&p.grant.effective)));
        claims.insert("principal".into(), json!(text(&p.kind.header())));
        claims.insert("token_issuer".into(), json!(text(&p.issuer_id)));
        if let Some(c) = &p.client_id {
            claims.insert("client_id".into(), json!(text(c)));
        }
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| format!("signing: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Extras;
    use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
    use std::sync::Arc;

    /// `openssl genpkey -algorithm ed25519`, made for these tests.
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBPpwuX76VCTTmfetHg/Zb37FQCCzsmAHoaRGUSiVJLs
-----END PRIVATE KEY-----
";

    fn signer(lifetime: u64) -> AssertionSigner {
        AssertionSigner::new(AssertionRules {
            key_pem: ED25519.as_bytes(),
            previous_key_pem: None,
            issuer: "https://gateway.test".into(),
            audience: "https://api.internal".into(),
            lifetime_secs: lifetime,
            header: HeaderName::from_static("x-auth-assertion"),
            jwks_path: None,
        })
        .unwrap()
    }

    #[test]
    fn an_assertion_verifies_with_the_published_jwks_and_says_who_for_whom() {
        let s = signer(60);
        let p = Principal {
            subject: HeaderValue::from_static("alice"),
            client_id: Some(Arc::new(HeaderValue::from_static("app"))),
            extras: Some(Box::new(Extras {
                assertion_claims: vec![("email".into(), json!("alice@example.com"))].into(),
                ..Extras::default()
            })),
            ..Principal::for_tests()
        };
        let now = crate::clock::unix_now();
        let token = s.assertion(&p, now).unwrap();
        let set: JwkSet = serde_json::from_slice(&s.jwks()).unwrap();
        let header = jsonwebtoken::decode_header(token.to_str().unwrap()).unwrap();
        let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&["https://api.internal"]);
        v.set_issuer(&["https://gateway.test"]);
        let claims = jsonwebtoken::decode::<Value>(
            token.to_str().unwrap(),
            &DecodingKey::from_jwk(jwk).unwrap(),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["client_id"], "app");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["exp"].as_u64().unwrap(), now + 60);
    }

    #[test]
    fn an_assertion_is_reused_for_half_its_life_and_never_outlives_the_token() {
        let s = signer(60);
        let p = Principal {
            expires_at: 1_000 + 20,
            extras: Extras::default().boxed(true),
            ..Principal::for_tests()
        };
        let first = s.assertion(&p, 1_000).unwrap();
        assert_eq!(s.assertion(&p, 1_029).unwrap(), first);
        assert_ne!(s.assertion(&p, 1_030).unwrap(), first);
        // A principal cached before minting was turned on has no slot: a new one each time.
        let unslotted = Principal {
            expires_at: 1_000 + 20,
            ..Principal::for_tests()
        };
        let once = s.assertion(&unslotted, 1_000).unwrap();
        assert_ne!(s.assertion(&unslotted, 1_001).unwrap(), once);
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(first.to_str().unwrap().split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["exp"], 1_020, "the token's exp bounds it");
    }

    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, made for these tests.
    const P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTreSrECzP2dX8B34
Fb/pAMF2h5mMfx2qzqN1ZR5OOOehRANCAASXywmIy+pG3u2i3oc1qzmMks5dp9wt
+fjenaTg7nNxPKNY/ttBkvryDqhq/WIYlw0WR6NDvI986palXXoiEgpS
-----END PRIVATE KEY-----
";

    #[test]
    fn a_p256_key_signs_es256_and_the_previous_key_stays_published() {
        let s = AssertionSigner::new(AssertionRules {
            key_pem: P256.as_bytes(),
            previous_key_pem: Some(ED25519.as_bytes()),
            issuer: "i".into(),
            audience: "a".into(),
            lifetime_secs: 30,
            header: HeaderName::from_static("x-auth-assertion"),
            jwks_path: None,
        })
        .unwrap();
        let token = s.assertion(&Principal::for_tests(), 1_000).unwrap();
        let header = jsonwebtoken::decode_header(token.to_str().unwrap()).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        let set: JwkSet = serde_json::from_slice(&s.jwks()).unwrap();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[0].common.key_id, header.kid);
    }

    #[test]
    fn keys_and_lifetimes_that_cannot_work_are_refused_at_load() {
        let bad = |pem: &str, lifetime| {
            AssertionSigner::new(AssertionRules {
                key_pem: pem.as_bytes(),
                previous_key_pem: None,
                issuer: "i".into(),
                audience: "a".into(),
                lifetime_secs: lifetime,
                header: HeaderName::from_static("x-auth-assertion"),
                jwks_path: None,
            })
            .err()
            .unwrap()
        };
        assert!(bad(ED25519, 61).contains("lifetime"));
        assert!(bad("not a key", 60).contains("key"));
    }
}
