//! `scopegate dev`: the gateway on the embedded `config/dev.yaml`, with a development issuer
//! and an echo upstream in the same process, and ready-to-paste curl lines.

mod echo;
mod issuer;

pub use echo::describe as describe_request;
pub use issuer::{DevIssuer, TokenRequest};

use crate::gateway::Gateway;
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
}

fn token(sub: &str, client: Option<&str>, scope: &str, expires_in: i64) -> Option<TokenRequest> {
    Some(TokenRequest {
        sub: sub.into(),
        client_id: client.map(str::to_string),
        scope: scope.into(),
        expires_in,
        orgs: vec!["acme".into()],
    })
}

/// The callers the banner shows, each with the answer it gets.
pub fn personas() -> Vec<Persona> {
    vec![
        Persona {
            what: "member with the needed scope (repo)",
            expect: 200,
            method: "GET",
            path: "/orgs/acme/repos",
            token: token("alice", None, "repo read:org", 3600),
        },
        Persona {
            what: "app token (client credentials) with chat.bot",
            expect: 200,
            method: "GET",
            path: "/v1/spaces/AAAA",
            token: token("chat-bot", Some("chat-bot"), "chat.bot", 3600),
        },
        Persona {
            what: "caller missing the scope (only read:org)",
            expect: 403,
            method: "GET",
            path: "/orgs/acme/repos",
            token: token("bob", None, "read:org", 3600),
        },
        Persona {
            what: "no token",
            expect: 401,
            method: "GET",
            path: "/orgs/acme/repos",
            token: None,
        },
        Persona {
            what: "expired token",
            expect: 401,
            method: "GET",
            path: "/orgs/acme/repos",
            token: token("alice", None, "repo", -300),
        },
    ]
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
    let file =
        crate::config::parse(CONFIG, "config/dev.yaml (embedded)").map_err(|e| e.to_string())?;
    let gateway = Arc::new(Gateway::build(&file, "config/dev.yaml").map_err(|e| e.to_string())?);
    let iss = &gateway.issuers[0];
    let dev = Arc::new(DevIssuer::new(iss.iss.clone(), iss.audiences[0].clone()));
    let echo_addr = gateway.upstreams[0].addr;
    let echo = std::net::TcpListener::bind(echo_addr)
        .map_err(|e| format!("echo upstream {echo_addr}: {e}"))?;
    echo.set_nonblocking(true).map_err(|e| e.to_string())?;
    let echo_task = Box::pin(async move {
        let listener = tokio::net::TcpListener::from_std(echo).expect("echo listener");
        echo::serve(listener).await
    });
    let mut running = server::start(
        gateway.clone(),
        Extras {
            admin: Some(dev.clone()),
            tasks: vec![echo_task],
        },
    )?;
    println!("{BANNER}");
    println!(
        "  gateway  http://{}   (config: config/dev.yaml, embedded)",
        gateway.listen
    );
    println!(
        "  admin    http://{}/metrics  /healthz  /readyz",
        gateway.admin_listen
    );
    println!(
        "  issuer   {}   (mint: POST {}/token with {{\"sub\":\"…\",\"scope\":\"…\"}})",
        dev.issuer, dev.issuer
    );
    println!("  upstream http://{echo_addr} echoes what it receives\n");
    println!("  Try:");
    for p in personas() {
        let auth = p
            .token
            .as_ref()
            .map(|t| format!(" -H 'Authorization: Bearer {}'", dev.mint(t)))
            .unwrap_or_default();
        println!("\n  # {} -> {}", p.what, p.expect);
        println!(
            "  curl -i -X {}{auth} http://{}{}",
            p.method, gateway.listen, p.path
        );
    }
    println!();
    server::wait_for_signal();
    running.stop();
    Ok(())
}
