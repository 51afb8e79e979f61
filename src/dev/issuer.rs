//! The development issuer of `scopegate dev`: an ephemeral Ed25519 key, discovery and JWKS
//! on the admin port, and token minting. It exists only in `dev`; `run` never creates one.

use crate::admin::{Extension, response};
use crate::clock::unix_now;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;

/// Path prefix of the issuer on the admin listener.
pub const PREFIX: &str = "/dev";

pub struct DevIssuer {
    /// The `iss` of minted tokens: `http://<admin>/dev`.
    pub issuer: String,
    pub audience: String,
    kid: String,
    key: EncodingKey,
    public: Vec<u8>,
}

/// What `POST /dev/token` accepts; everything but `sub` has a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub sub: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: String,
    /// Seconds from now; negative for an already expired token.
    #[serde(default = "default_expires_in")]
    pub expires_in: i64,
    #[serde(default)]
    pub orgs: Vec<String>,
    /// The token id; random when not given.
    #[serde(default)]
    pub jti: Option<String>,
}

fn default_expires_in() -> i64 {
    3600
}

impl DevIssuer {
    pub fn new(issuer: String, audience: String) -> DevIssuer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("Ed25519 key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("fresh key parses");
        let public = pair.public_key().as_ref().to_vec();
        let kid = URL_SAFE_NO_PAD
            .encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public).as_ref()[..8]);
        DevIssuer {
            issuer,
            audience,
            kid,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public,
        }
    }

    pub fn jwks(&self) -> serde_json::Value {
        json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(&self.public),
        }]})
    }

    /// Any JWT with this key: `typ` and claims as given (e.g. a Security Event Token).
    pub fn sign(&self, typ: &str, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing with a valid key")
    }

    /// An RFC 9068 access token for the request.
    pub fn mint(&self, r: &TokenRequest) -> String {
        let now = unix_now() as i64;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        let client_id = r.client_id.clone().unwrap_or_else(|| "dev-client".into());
        let claims = json!({
            "iss": self.issuer, "aud": self.audience, "sub": r.sub,
            "client_id": client_id, "scope": r.scope, "orgs": r.orgs,
            "iat": now.min(now + r.expires_in), "exp": now + r.expires_in,
            "jti": r.jti.clone().unwrap_or_else(|| format!("{:x}", now as u64 ^ rand_u64())),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing with a valid key")
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut b);
    u64::from_le_bytes(b)
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    response(status, "application/json", v.to_string())
}

impl Extension for DevIssuer {
    fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Option<Response<Full<Bytes>>> {
        let rest = path.strip_prefix(PREFIX)?;
        Some(match (method, rest) {
            (&Method::GET, "/.well-known/openid-configuration") => json_response(
                StatusCode::OK,
                json!({
                    "issuer": self.issuer,
                    "jwks_uri": format!("{}/jwks", self.issuer),
                    "token_endpoint": format!("{}/token", self.issuer),
                    "id_token_signing_alg_values_supported": ["EdDSA"],
                }),
            ),
            (&Method::GET, "/jwks") => json_response(StatusCode::OK, self.jwks()),
            (&Method::POST, "/token") => match serde_json::from_slice::<TokenRequest>(body) {
                Ok(r) => json_response(
                    StatusCode::OK,
                    json!({"access_token": self.mint(&r), "token_type": "Bearer", "expires_in": r.expires_in}),
                ),
                Err(e) => json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid_request", "error_description": e.to_string()}),
                ),
            },
            _ => return None,
        })
    }
}
