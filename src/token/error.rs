//! Why a token was not accepted. Every variant but the two about keys is a 401
//! `invalid_token`; the descriptions are short and never contain the token.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    /// Not a JWT, and no introspection is configured that could vouch for it.
    Unknown,
    UnknownIssuer,
    UnknownCritical,
    WrongType,
    AlgorithmNotAllowed,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    WrongAudience,
    MissingClaim(&'static str),
    /// A claim has a value that cannot be used (e.g. a subject with control characters).
    BadClaim(&'static str),
    /// The issuer's keys (index) do not include the token's `kid`: refresh, then retry.
    UnknownKey(usize),
    /// The issuer's keys (index) were never fetched: the authorization server is unreachable.
    KeysUnavailable(usize),
    /// The authorization server says the token is not active (RFC 7662).
    Inactive,
    /// A security event revoked the token, its subject or its client.
    Revoked,
    /// An opaque token that only introspection can vouch for: ask, then decide again.
    NeedsIntrospection,
    /// A legacy credential past its `not_after`.
    Retired,
    /// A valid token from an issuer the route does not accept.
    IssuerNotAccepted,
}

impl TokenError {
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Malformed => "the token is malformed",
            TokenError::Unknown => "the token is not recognized",
            TokenError::UnknownIssuer => "the token's issuer is not accepted",
            TokenError::UnknownCritical => "the token has an unsupported critical header",
            TokenError::WrongType => "the token is not an access token (typ)",
            TokenError::AlgorithmNotAllowed => "the token's algorithm is not accepted",
            TokenError::BadSignature => "the token's signature is invalid",
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::IssuedInFuture => "the token is issued in the future",
            TokenError::WrongAudience => "the token is not meant for this API (aud)",
            TokenError::MissingClaim("exp") => "the token has no expiry (exp)",
            TokenError::MissingClaim("aud") => "the token has no audience (aud)",
            TokenError::MissingClaim("sub") => "the token has no subject (sub)",
            TokenError::MissingClaim(_) => "the token has no issuer (iss)",
            TokenError::BadClaim(_) => "the token has an unusable claim",
            TokenError::UnknownKey(_) => "the token's signing key is unknown",
            TokenError::KeysUnavailable(_) => "the token's issuer is unreachable",
            TokenError::Inactive => "the token is not active",
            TokenError::Revoked => "the token has been revoked",
            TokenError::NeedsIntrospection => "the token could not be checked",
            TokenError::Retired => {
                "this legacy credential is no longer accepted: use an OAuth 2.0 access token"
            }
            TokenError::IssuerNotAccepted => "the token's issuer is not accepted for this resource",
        }
    }

    /// Worth remembering for `negative_ttl`: the same token will fail the same way.
    pub fn is_cacheable(self) -> bool {
        !matches!(
            self,
            TokenError::UnknownKey(_)
                | TokenError::KeysUnavailable(_)
                | TokenError::NeedsIntrospection
        )
    }
}
