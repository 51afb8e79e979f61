//! What `dev` serves: the embedded `config/dev.yaml`, or the user's own file with the dev
//! issuer (and, for its routes, the echo upstream) added; on the ports asked for.

use crate::config::schema::{File, Upstream};
use crate::config::{self, EnvString};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The shipped development configuration.
pub const CONFIG: &str = include_str!("../../config/dev.yaml");
pub const EMBEDDED: &str = "config/dev.yaml (embedded)";

/// The id of the dev issuer and the name of the echo upstream in the configuration `dev`
/// serves: a user's file must leave them free.
pub const ISSUER_ID: &str = "dev";
pub const ECHO: &str = "echo";

/// `scopegate dev` options.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// The user's configuration: their routes, upstreams and issuers, beside the dev issuer.
    pub config: Option<PathBuf>,
    /// The gateway's port on 127.0.0.1 (default: the file's `server.listen`, 8080 embedded).
    pub port: Option<u16>,
    /// The admin port on 127.0.0.1, where the dev issuer lives too (default: the file's
    /// `admin.listen`, 9901 embedded).
    pub admin_port: Option<u16>,
}

/// The configuration to serve, and the name that stands for it in errors and the banner.
pub struct Setup {
    pub file: File,
    pub origin: String,
    /// Whether it is the embedded one (its personas apply).
    pub embedded: bool,
}

/// Assembles the configuration: `echo` is where the echo upstream already listens.
pub fn configuration(options: &Options, echo: SocketAddr) -> Result<Setup, String> {
    let embedded = config::parse(CONFIG, EMBEDDED).map_err(|e| e.to_string())?;
    let mut setup = match &options.config {
        None => Setup {
            file: embedded,
            origin: EMBEDDED.into(),
            embedded: true,
        },
        Some(path) => {
            let mut file = config::load(path).map_err(|e| e.to_string())?;
            add_dev_issuer(&mut file, embedded)?;
            Setup {
                file,
                origin: path.display().to_string(),
                embedded: false,
            }
        }
    };
    let file = &mut setup.file;
    if let Some(p) = options.port {
        file.server.listen = EnvString(format!("127.0.0.1:{p}"));
    }
    if let Some(p) = options.admin_port {
        file.admin.listen = EnvString(format!("127.0.0.1:{p}"));
    }
    let gateway = reachable(&file.server.listen.0, "server.listen")?;
    let admin = reachable(&file.admin.listen.0, "admin.listen")?;
    // The dev issuer is served on the admin port; tokens are for this gateway.
    let issuer = format!("http://{admin}/dev");
    let audience = format!("http://{gateway}");
    if let Some(dev) = file.issuers.iter_mut().find(|i| i.id == ISSUER_ID) {
        dev.issuer = EnvString(issuer.clone());
        dev.audiences = vec![EnvString(audience.clone())];
    }
    if setup.embedded
        && let Some(push) = file.tokens.revocation.push.as_mut()
    {
        push.transmitter = EnvString(issuer);
        push.audience = EnvString(audience);
    }
    file.upstreams.insert(
        ECHO.into(),
        Upstream::at(EnvString(format!("http://{echo}"))),
    );
    Ok(setup)
}

/// Adds the embedded configuration's dev issuer to the user's file (whose own issuers stay:
/// a route limited to them does not take dev tokens).
fn add_dev_issuer(file: &mut File, embedded: File) -> Result<(), String> {
    if file.issuers.iter().any(|i| i.id == ISSUER_ID) {
        return Err(format!(
            "dev adds an issuer `{ISSUER_ID}`: rename yours (ids must be unique)"
        ));
    }
    if file.upstreams.contains_key(ECHO) {
        return Err(format!(
            "dev adds an upstream `{ECHO}` (the echo server): rename yours"
        ));
    }
    let dev = embedded
        .issuers
        .into_iter()
        .find(|i| i.id == ISSUER_ID)
        .ok_or("the embedded configuration has no dev issuer")?;
    file.issuers.push(dev);
    Ok(())
}

/// The address clients use to reach a listener (`0.0.0.0` is reached on loopback).
fn reachable(listen: &str, what: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("{what}: `{listen}` is not an address such as 127.0.0.1:8080"))?;
    Ok(match addr.ip() {
        ip if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    })
}
