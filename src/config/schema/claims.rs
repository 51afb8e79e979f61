//! `require: { claims: … }`: conditions on a token's claims beyond its scopes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A condition on one claim (`claim:` and one test), or `any:` / `all:` of conditions,
/// nested freely.
#[derive(Debug, Default, Deserialize, JsonSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// One of these conditions holds.
    pub any: Option<Vec<ClaimRule>>,
    /// Every one of these conditions holds.
    pub all: Option<Vec<ClaimRule>>,
    /// The claim: `groups`; `realm_access.roles` (dots walk into objects); a URL-named
    /// claim (`https://example.com/roles`) is one name; a name with dots in it is written as
    /// a list: `[resource_access, my.client, roles]`.
    pub claim: Option<ClaimName>,
    /// The claim is this string, number or boolean.
    pub equals: Option<serde_json::Value>,
    /// The claim is one of these strings, numbers or booleans.
    pub one_of: Option<Vec<serde_json::Value>>,
    /// The claim is an array holding this value (or a space-delimited string holding it as
    /// a word).
    pub contains: Option<serde_json::Value>,
    /// The claim is a string starting with this (or an array holding one).
    pub prefix: Option<String>,
    /// The claim is a string ending with this, such as an email domain `@example.com` (or
    /// an array holding one).
    pub suffix: Option<String>,
    /// The whole string matches this regular expression (or one string of an array does).
    pub matches: Option<String>,
}

/// A claim path as dotted text or as a list of member names.
#[derive(Debug, Deserialize, JsonSchema, Serialize)]
#[serde(untagged)]
pub enum ClaimName {
    Path(String),
    Parts(Vec<String>),
}
