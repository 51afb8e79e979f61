//! Memory per cached token: RSS before and after filling the token cache with distinct
//! principals, the way 1 000 000 distinct valid tokens would. `cargo bench --bench memory`
//! (prints; no criterion). Idle RSS of the running binary is measured by the load script.

use scopegate::decision::Gateway;
use scopegate::token::TokenError;
use std::sync::Arc;

/// The allocator of the `scopegate` binary, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:18080" }
issuers:
  - { id: corp, issuer: "https://auth.example.com", audiences: [api], discovery: false, jwks_uri: "http://127.0.0.1:1/jwks" }
scopes: { implies: { repo: [repo:status, public_repo] } }
upstreams: { api: { url: "http://127.0.0.1:3000" } }
routes:
  - { name: r, match: { path: /r }, upstream: api, require: { scopes: repo } }
"#;

fn build() -> Gateway {
    let compiled = scopegate::compile::from_text(CONFIG, "memory").unwrap();
    compiled.gateway(&prometheus::Registry::new()).0
}

fn main() {
    let n: usize = std::env::var("ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let gw = build();
    let now = scopegate::clock::unix_now();
    let before = rss_kib();
    for i in 0..n {
        // A realistic access token's claims: a user, a client, a few scopes.
        let claims = serde_json::json!({
            "sub": format!("user-{i:08}"), "client_id": "dashboard-app",
            "scope": "repo read:org", "exp": now + 3600,
        });
        let p = gw
            .rules
            .principals
            .build(0, &gw.rules.issuers[0], claims.as_object().unwrap())
            .unwrap();
        let key = scopegate::token::hash(&format!("token-{i}"));
        gw.state.cache.insert_valid(key, Arc::new(p), now, None);
    }
    let after = rss_kib();
    let entries = gw.state.cache.entry_count();
    println!("valid tokens cached: {entries}; RSS {before} KiB -> {after} KiB");
    println!(
        "bytes per cached valid token: {:.0}",
        (after - before) as f64 * 1024.0 / entries as f64
    );

    // The cache's own share: the same number of refusals, which hold no principal.
    let gw = build();
    let cache = &gw.state.cache;
    let before = rss_kib();
    for i in 0..n {
        let key = scopegate::token::hash(&format!("bad-{i}"));
        cache.insert_invalid(key, TokenError::BadSignature);
    }
    let after = rss_kib();
    println!(
        "bytes per cached refusal (the cache's own overhead): {:.0}",
        (after - before) as f64 * 1024.0 / cache.entry_count() as f64
    );
}
