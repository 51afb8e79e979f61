//! Why a token is not accepted. Each variant is a 401 `invalid_token`; the descriptions are
//! short and never contain the token. What the network may still fix (keys not fetched yet, an
//! opaque token to introspect) is not an error here: see `authn::Need`.

/// The claims a refusal names. An enum rather than the name itself keeps a [`TokenError`] at
/// two bytes, so a cached refusal costs no more than a cached principal's pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Iss,
    Sub,
    Exp,
    Aud,
    Scope,
    ClientId,
    Azp,
    Orgs,
    SsoOrgs,
    /// GitHub's `user.login`, the subject of its tokens.
    Login,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    /// The token's header or claims repeat a member name (RFC 7515 §5.2).
    DuplicateMember,
    /// Not a JWT, and no introspection is configured that could vouch for it; or a secret
    /// that is no configured legacy credential.
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
    MissingClaim(Claim),
    /// A claim has a value that cannot be used (e.g. a subject with control characters).
    BadClaim(Claim),
    /// The issuer's keys, even freshly fetched, do not include the token's `kid`.
    UnknownKey,
    /// The authorization server says the token is not active (RFC 7662).
    Inactive,
    /// A security event revoked the token, its subject or its client.
    Revoked,
}

impl TokenError {
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Malformed => "the token is malformed",
            TokenError::DuplicateMember => "the token repeats a member name",
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
            TokenError::MissingClaim(Claim::Exp) => "the token has no expiry (exp)",
            TokenError::MissingClaim(Claim::Aud) => "the token has no audience (aud)",
            TokenError::MissingClaim(Claim::Sub) => "the token has no subject (sub)",
            TokenError::MissingClaim(Claim::Iss) => "the token has no issuer (iss)",
            TokenError::MissingClaim(_) => "the token lacks a claim the gateway needs",
            TokenError::BadClaim(_) => "the token has an unusable claim",
            TokenError::UnknownKey => "the token's signing key is unknown",
            TokenError::Inactive => "the token is not active",
            TokenError::Revoked => "the token has been revoked",
        }
    }

    /// Worth remembering for `negative_ttl`: the same token will fail the same way. An
    /// unknown key is not: the issuer may publish it with its next rotation.
    pub fn is_cacheable(self) -> bool {
        self != TokenError::UnknownKey
    }
}
