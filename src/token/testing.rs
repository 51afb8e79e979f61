//! Test support for the token stage: an issuer with a throwaway Ed25519 key, and tokens
//! signed (or forged) with any header and claims.

use super::issuer::{ClaimNames, Issuer, IssuerState};
use super::keys::KeySet;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::Duration;

pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "https://api.test";

pub struct Signer {
    pub kid: String,
    key: EncodingKey,
    public: Vec<u8>,
}

impl Signer {
    pub fn new(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Signer {
            kid: kid.into(),
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    /// The JWKS that publishes this key.
    pub fn jwks(&self) -> KeySet {
        let doc = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.public)}]});
        KeySet::from_jwks(doc.to_string().as_bytes()).unwrap().0
    }

    /// An EdDSA header with this key's `kid` and `typ` `at+jwt`.
    pub fn header(&self) -> Header {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(self.kid.clone());
        h.typ = Some("at+jwt".into());
        h
    }

    pub fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.key).unwrap()
    }

    /// A token with `header` as written (any JSON, e.g. `alg: none`) and a junk signature.
    pub fn forge(header: &Value, claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", part(header), part(claims))
    }
}

/// Valid claims for [`ISS`] and [`AUD`], issued now and valid for an hour.
pub fn claims(now: u64) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "client_id": "app", "scope": "read",
        "iat": now, "exp": now + 3600})
}

/// An issuer of [`ISS`] for [`AUD`] that accepts EdDSA and RS256, with 30 s of clock skew.
pub fn issuer() -> Issuer {
    Issuer::new(
        "test".into(),
        ISS.into(),
        vec![AUD.into()],
        vec![Algorithm::EdDSA, Algorithm::RS256],
        vec!["at+jwt".into(), "JWT".into()],
        Duration::from_secs(30),
        ClaimNames {
            scope: "scope".into(),
            orgs: "orgs".into(),
            sso_orgs: "sso_orgs".into(),
            client_id: "client_id".into(),
        },
        Some("http://127.0.0.1:1/jwks".into()),
        false,
        Duration::from_secs(300),
    )
}

/// The state of an issuer whose keys were fetched and are `keys`.
pub fn fetched(keys: KeySet) -> IssuerState {
    let s = IssuerState::default();
    s.set_keys(keys);
    s
}
