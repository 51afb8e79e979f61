//! `scopegate dev`: the gateway on the embedded `config/dev.yaml`, with a development issuer
//! and an echo upstream in the same process, and ready-to-paste curl lines.

mod echo;
mod issuer;

pub use echo::describe as describe_request;
pub use issuer::{DevIssuer, TokenRequest};

use crate::compile;
use crate::generation::Generation;
use crate::server::{self, Extras};
use std::sync::Arc;

/// The shipped development configuration.
pub const CONFIG: &str = include_str!("../../config/dev.yaml");

pub struct Persona {
    pub what: &'static str,
    pub expect: u16,
    pub method: &'static str,
    pub path: &'static str,
    pub token: Option<TokenRequest>,
    /// A legacy credential header instead of a token.
    pub header: Option<(&'static str, &'static str)>,
}

/// The `jti` of the token `dev` revokes at start.
const REVOKED_JTI: &str = "dev-revoked-token";

fn token(sub: &str, client: &str, scope: &str, expires_in: i64) -> Option<TokenRequest> {
    Some(TokenRequest {
        sub: sub.into(),
        client_id: Some(client.into()),
        scope: scope.into(),
        expires_in,
        orgs: vec!["acme".into()],
        jti: None,
    })
}

/// The callers the banner shows, each with the answer it gets.
pub fn personas() -> Vec<Persona> {
    let persona = |what, expect, path, token| Persona {
        what,
        expect,
        method: "GET",
        path,
        token,
        header: None,
    };
    let mut revoked = token("alice", "dev-dashboard", "repo", 3600);
    if let Some(t) = revoked.as_mut() {
        t.jti = Some(REVOKED_JTI.into());
    }
    vec![
        persona(
            "member of acme through an app acme approved (repo)",
            200,
            "/orgs/acme/repos",
            token("alice", "dev-dashboard", "repo read:org", 3600),
        ),
        persona(
            "the same member through a third-party app acme did not approve",
            403,
            "/orgs/acme/repos",
            token("alice", "third-party-app", "repo", 3600),
        ),
        persona(
            "app token (client credentials) with chat.bot",
            200,
            "/v1/spaces/AAAA",
            token("chat-bot", "chat-bot", "chat.bot", 3600),
        ),
        persona(
            "caller missing the scope (only read:org)",
            403,
            "/orgs/acme/repos",
            token("bob", "dev-dashboard", "read:org", 3600),
        ),
        persona("no token", 401, "/orgs/acme/repos", None),
        persona(
            "expired token",
            401,
            "/orgs/acme/repos",
            token("alice", "dev-dashboard", "repo", -300),
        ),
        persona(
            "token revoked by a Security Event Token pushed at start",
            401,
            "/orgs/acme/repos",
            revoked,
        ),
        Persona {
            header: Some(("X-API-Key", "dev-api-key-not-a-secret")),
            ..persona(
                "legacy API key (credentials: in the config)",
                200,
                "/orgs/acme/repos",
                None,
            )
        },
    ]
}

/// Revokes the token of the "revoked" persona the way an authorization server would: a
/// Security Event Token pushed to the admin port's `/events` (RFC 8935).
fn revoke_at_start(generation: &Generation, dev: &DevIssuer) -> Result<(), String> {
    // The SET is checked with the dev issuer's keys, fetched by the key sync at start.
    let start = std::time::Instant::now();
    while !generation.gateway.state.issuers[0].has_fetched() {
        if start.elapsed() > std::time::Duration::from_secs(5) {
            return Err("the dev issuer's keys were not fetched within 5 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let now = crate::clock::unix_now();
    let set = dev.sign(
        "secevent+jwt",
        &serde_json::json!({
            "iss": dev.issuer, "aud": dev.audience, "iat": now, "jti": format!("dev-{now}"),
            "events": {"https://schemas.openid.net/secevent/oauth/event-type/token-revoked":
                {"subject": {"format": "jwt_id", "iss": dev.issuer, "jti": REVOKED_JTI}}},
        }),
    );
    let request = format!(
        "POST /events HTTP/1.1\r\nHost: {0}\r\nContent-Type: application/secevent+jwt\r\nContent-Length: {1}\r\nConnection: close\r\n\r\n{set}",
        generation.serving.at_start.admin.listen,
        set.len()
    );
    let mut stream = std::net::TcpStream::connect(generation.serving.at_start.admin.listen)
        .map_err(|e| format!("admin port: {e}"))?;
    std::io::Write::write_all(&mut stream, request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 202") {
        return Err(format!(
            "the dev revocation was refused: {}",
            answer.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}

const BANNER: &str = r#"
  ==================================================================
   scopegate dev: DEVELOPMENT ONLY. NOT FOR PRODUCTION.
   A throwaway issuer signs tokens with a key that lives in memory
   and mints any token for anyone on the admin port.
  ==================================================================
"#;

/// Runs `dev` until interrupted.
pub fn run() -> Result<(), String> {
    let compiled =
        compile::from_text(CONFIG, "config/dev.yaml (embedded)").map_err(|e| e.to_string())?;
    let iss = &compiled.rules.issuers[0];
    let dev = Arc::new(DevIssuer::new(iss.iss.clone(), iss.audiences[0].clone()));
    let echo_addr = compiled.rules.upstreams[0].addr;
    let serving = compiled.serving.clone();
    let echo = std::net::TcpListener::bind(echo_addr)
        .map_err(|e| format!("echo upstream {echo_addr}: {e}"))?;
    echo.set_nonblocking(true).map_err(|e| e.to_string())?;
    let echo_task = Box::pin(async move {
        let listener = tokio::net::TcpListener::from_std(echo).expect("echo listener");
        echo::serve(listener).await
    });
    let mut signals = server::Signals::install()?;
    let mut running = server::start(
        compiled,
        Extras {
            admin: Some(dev.clone()),
            tasks: vec![echo_task],
        },
    )?;
    println!("{BANNER}");
    println!(
        "  gateway  http://{}   (config: config/dev.yaml, embedded)",
        serving.at_start.server.listen
    );
    println!(
        "  admin    http://{}/metrics  /healthz  /readyz",
        serving.at_start.admin.listen
    );
    println!(
        "  issuer   {}   (mint: POST {}/token with {{\"sub\":\"…\",\"scope\":\"…\"}})",
        dev.issuer, dev.issuer
    );
    println!("  upstream http://{echo_addr} echoes what it receives\n");
    revoke_at_start(&running.current(), &dev)?;
    println!("  Try:");
    for p in personas() {
        let mut auth = p
            .token
            .as_ref()
            .map(|t| format!(" -H 'Authorization: Bearer {}'", dev.mint(t)))
            .unwrap_or_default();
        if let Some((name, value)) = p.header {
            auth.push_str(&format!(" -H '{name}: {value}'"));
        }
        println!("\n  # {} -> {}", p.what, p.expect);
        println!(
            "  curl -i -X {}{auth} http://{}{}",
            p.method, serving.at_start.server.listen, p.path
        );
    }
    println!();
    // The embedded configuration cannot change: SIGHUP has nothing to reload.
    while signals.wait() == server::Signal::Reload {}
    running.stop();
    Ok(())
}
