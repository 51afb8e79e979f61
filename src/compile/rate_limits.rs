//! `rate_limits:` (global and per route) — each a bucket per key, its claim keys rendered
//! with the principal like `forward.claim_headers`.

use crate::config::File;
use crate::config::schema;
use crate::policy::{Per, RateLimit};

/// The claims rate limits are keyed by (`per: claim:<path>`), each once, in file order:
/// global limits first, then the routes'.
pub fn claim_keys(file: &File) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all = file
        .rate_limits
        .iter()
        .chain(file.routes.iter().flat_map(|r| &r.rate_limits));
    for l in all {
        if let Some(path) = l.per.strip_prefix("claim:")
            && !out.iter().any(|p| p == path)
        {
            out.push(path.to_string());
        }
    }
    out
}

/// One limit; `owner` names it by default (`global`, or the route's name).
pub fn compile(file: &File, l: &schema::RateLimit, owner: &str) -> Result<RateLimit, String> {
    let per = match l.per.as_str() {
        "client_id" => Per::ClientId,
        "subject" => Per::Subject,
        "org" => Per::Org,
        "client_address" => Per::ClientAddress,
        other => match other.strip_prefix("claim:") {
            Some(path) => {
                let keys = claim_keys(file);
                let i = keys.iter().position(|k| k == path).expect("listed above");
                Per::Claim(file.forward.claim_headers.len() + i)
            }
            None => {
                return Err(format!(
                    "`per: {other}`: one of client_id, subject, org, client_address or claim:<path>"
                ));
            }
        },
    };
    let name = l
        .name
        .clone()
        .unwrap_or_else(|| format!("{owner}-{}", l.per.replace(':', "-")));
    RateLimit::new(name, per, l.requests, l.every.0, l.burst)
}

/// The global limits.
pub fn global(file: &File) -> Result<Vec<RateLimit>, String> {
    file.rate_limits
        .iter()
        .map(|l| compile(file, l, "global"))
        .collect()
}
