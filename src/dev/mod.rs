//! `scopegate dev`: the gateway on the embedded `config/dev.yaml` (or the user's own file),
//! with a development issuer and an echo upstream in the same process, and ready-to-paste
//! curl lines.

mod echo;
mod issuer;
mod personas;
mod setup;

pub use echo::describe as describe_request;
pub use issuer::{DevIssuer, TokenRequest};
pub use setup::{CONFIG, Options};

use crate::compile;
use crate::generation::Generation;
use crate::server::{self, Extras};
use std::sync::Arc;

/// Revokes the token of the "revoked" persona the way an authorization server would: a
/// Security Event Token pushed to the admin port's `/events` (RFC 8935).
fn revoke_at_start(generation: &Generation, issuer: usize, dev: &DevIssuer) -> Result<(), String> {
    // The SET is checked with the dev issuer's keys, fetched by the key sync at start.
    let start = std::time::Instant::now();
    while !generation.gateway.state.issuers[issuer].has_fetched() {
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
                {"subject": {"format": "jwt_id", "iss": dev.issuer, "jti": personas::REVOKED_JTI}}},
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
pub fn run(options: &Options) -> Result<(), String> {
    // The echo upstream first: its address goes into the configuration.
    let echo =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("echo upstream: {e}"))?;
    let echo_addr = echo.local_addr().map_err(|e| e.to_string())?;
    echo.set_nonblocking(true).map_err(|e| e.to_string())?;
    let setup = setup::configuration(options, echo_addr)?;
    let inputs = compile::Inputs::gather(&setup.file, &setup.origin).map_err(|e| e.to_string())?;
    let compiled =
        compile::compile(&setup.file, &inputs, &setup.origin).map_err(|e| e.to_string())?;
    let issuer = compiled
        .rules
        .issuers
        .iter()
        .position(|i| i.id == setup::ISSUER_ID)
        .ok_or("no dev issuer")?;
    let iss = &compiled.rules.issuers[issuer];
    let dev = Arc::new(DevIssuer::new(iss.iss.clone(), iss.audiences[0].clone()));
    let serving = compiled.serving.clone();
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
        "  gateway  http://{}   (config: {})",
        serving.at_start.server.listen, setup.origin
    );
    println!(
        "  admin    http://{}/metrics  /healthz  /readyz",
        serving.at_start.admin.listen
    );
    println!(
        "  issuer   {}   (mint: POST {}/token with {{\"sub\":\"…\",\"scope\":\"…\"}})",
        dev.issuer, dev.issuer
    );
    println!("  upstream http://{echo_addr} (`echo`) echoes what it receives\n");
    let callers = if setup.embedded {
        revoke_at_start(&running.current(), issuer, &dev)?;
        personas::personas()
    } else {
        personas::for_routes(&setup.file)
    };
    println!("  Try:");
    for p in callers {
        let mut auth = p
            .token
            .as_ref()
            .map(|t| format!(" -H 'Authorization: Bearer {}'", dev.mint(t)))
            .unwrap_or_default();
        if let Some((name, value)) = p.header {
            auth.push_str(&format!(" -H '{name}: {value}'"));
        }
        match p.expect {
            Some(code) => println!("\n  # {} -> {code}", p.what),
            None => println!("\n  # {}", p.what),
        }
        println!(
            "  curl -i -X {}{auth} http://{}{}",
            p.method, serving.at_start.server.listen, p.path
        );
    }
    println!();
    // Nothing to reload: the configuration was assembled at start (restart `dev` to pick
    // up a change to `--config`).
    while signals.wait() == server::Signal::Reload {}
    running.stop();
    Ok(())
}
