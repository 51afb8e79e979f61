//! What compiling a configuration needs from outside the file, gathered before the compile
//! step so that compiling stays a pure function: upstream host names resolved, and the
//! organization policy document read when it is a local file.

use crate::clock::unix_now;
use crate::config::{ConfigError, File};
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, Default)]
pub struct Inputs {
    /// Each `upstreams.*.url` host and port, resolved.
    pub addresses: HashMap<(String, u16), SocketAddr>,
    /// The organization policy file (`organization_policy.source.file`), read.
    pub org_document: Option<OrgDocument>,
}

#[derive(Debug)]
pub struct OrgDocument {
    pub text: String,
    /// The path, for errors.
    pub origin: String,
    /// When it was read (Unix seconds): the time of the policies in force.
    pub read_at: u64,
}

/// Host and port of an upstream URL, when it has them (`compile` reports bad URLs).
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some((uri.host()?.to_string(), port))
}

impl Inputs {
    /// Resolves the upstreams' host names and reads a policy file (named in errors).
    pub fn gather(file: &File, origin: &str) -> Result<Inputs, ConfigError> {
        let mut inputs = Inputs::default();
        for (name, u) in &file.upstreams {
            let Some((host, port)) = host_port(&u.url) else {
                continue;
            };
            // Resolved once at load: upstream addresses are part of the configuration.
            let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    ConfigError::new(
                        origin,
                        format!(
                            "upstreams.{name}.url `{}`: the host does not resolve",
                            u.url.0
                        ),
                    )
                })?;
            inputs.addresses.insert((host, port), addr);
        }
        if let Some(path) = file
            .organization_policy
            .source
            .as_ref()
            .and_then(|s| s.file.as_ref())
        {
            let name = path.0.clone();
            let text = std::fs::read_to_string(&name)
                .map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
            inputs.org_document = Some(OrgDocument {
                text,
                origin: name,
                read_at: unix_now(),
            });
        }
        Ok(inputs)
    }
}
