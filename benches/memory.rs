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

/// RSS once the allocator has given back what it freed: the tables grow by doubling, and
/// mimalloc returns the outgrown buffers to the OS after a delay (a running gateway, which
/// allocates all the time, gets there on its own; this idle benchmark asks for it).
fn settled_rss_kib() -> u64 {
    unsafe extern "C" {
        fn mi_collect(force: bool);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: mimalloc's own collection entry point, no arguments beyond a flag.
    unsafe { mi_collect(true) };
    rss_kib()
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
    let filled = rss_kib();
    let after = settled_rss_kib();
    let entries = gw.state.cache.entry_count();
    println!(
        "valid tokens cached: {entries}; RSS {before} KiB -> {filled} KiB, {after} KiB settled"
    );
    let per = |kib: u64| (kib - before) as f64 * 1024.0 / entries as f64;
    println!(
        "bytes per cached valid token: {:.0} (while filling: {:.0})",
        per(after),
        per(filled)
    );

    // The cache's own share: the same number of refusals, which hold no principal.
    let gw = build();
    let cache = &gw.state.cache;
    let before = rss_kib();
    for i in 0..n {
        let key = scopegate::token::hash(&format!("bad-{i}"));
        cache.insert_invalid(key, TokenError::BadSignature);
    }
    let after = settled_rss_kib();
    println!(
        "bytes per cached refusal (the cache's own overhead): {:.0}",
        (after - before) as f64 * 1024.0 / cache.entry_count() as f64
    );
}
