//! The introspection dialects an issuer may speak: how its endpoint is asked about a token
//! and what the endpoint's HTTP statuses mean. The issuer's rules name one; what an answer
//! means is `introspection/`.

/// Google's tokeninfo endpoint.
pub const GOOGLE_TOKENINFO: &str = "https://oauth2.googleapis.com/tokeninfo";
/// GitHub's REST API root.
pub const GITHUB_API: &str = "https://api.github.com";

/// How an issuer's endpoint is asked about a token, and how its answer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// RFC 7662: `POST token=…` with the gateway's client credentials; `active`, `scope`,
    /// `client_id`, `sub`, `exp`, `aud`, `iss`.
    #[default]
    Rfc7662,
    /// Google's tokeninfo: the access token in, `scope`, `aud`/`azp`, `exp`/`expires_in`,
    /// `sub` out; 400 for a token it does not know.
    GoogleTokeninfo,
    /// GitHub's "check a token" (`POST /applications/{client_id}/token` with the OAuth app's
    /// Basic credentials): `scopes`, `user.login`, `app.client_id`, `expires_at` out; 404
    /// for a token that is not the app's. Organization membership is asked separately.
    Github,
}

/// What an HTTP status from a dialect's endpoint means (429 is handled before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The body is the answer.
    Answer,
    /// The endpoint says it does not know the token: 401 `invalid_token`.
    Inactive,
    /// The endpoint failed: 503, nothing remembered.
    Failed,
}

impl Dialect {
    pub fn status(self, code: u16) -> Status {
        match (self, code) {
            (_, 200) => Status::Answer,
            // Google answers `{"error": "invalid_token"}` with 400.
            (Dialect::GoogleTokeninfo, 400) => Status::Inactive,
            // GitHub: 404 "Invalid tokens will return 404"; 422 a malformed one.
            (Dialect::Github, 404 | 422) => Status::Inactive,
            _ => Status::Failed,
        }
    }

    /// Where the dialect's provider answers when no endpoint is configured.
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Dialect::Rfc7662 => None,
            Dialect::GoogleTokeninfo => Some(GOOGLE_TOKENINFO),
            Dialect::Github => Some(GITHUB_API),
        }
    }

    /// Whether the dialect's endpoint needs the gateway's client credentials.
    pub fn needs_client_credentials(self) -> bool {
        !matches!(self, Dialect::GoogleTokeninfo)
    }
}
