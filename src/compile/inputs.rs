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
    /// The PEM files of `cluster.tls`, read.
    pub redis_tls: Option<RedisTlsFiles>,
}

#[derive(Debug, Default)]
pub struct RedisTlsFiles {
    pub ca: Option<Vec<u8>>,
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
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

/// What a host name that does not resolve is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// An error (starting, reloading: the gateway would have nowhere to forward).
    Refuse,
    /// A warning (`scopegate check` on a machine outside the cluster the names belong to).
    Warn,
}

impl Inputs {
    /// Resolves the upstreams' host names and reads a policy file (named in errors).
    pub fn gather(file: &File, origin: &str) -> Result<Inputs, ConfigError> {
        Inputs::gather_with(file, origin, Unresolved::Refuse).map(|(inputs, _)| inputs)
    }

    /// [`Inputs::gather`], with host names that do not resolve refused or only warned about
    /// (they are then given an unspecified address and the warnings say so).
    pub fn gather_with(
        file: &File,
        origin: &str,
        unresolved: Unresolved,
    ) -> Result<(Inputs, Vec<String>), ConfigError> {
        let mut inputs = Inputs::default();
        let mut warnings = Vec::new();
        for (name, u) in &file.upstreams {
            let Some((host, port)) = host_port(&u.url) else {
                continue;
            };
            // Resolved once at load: upstream addresses are part of the configuration.
            let resolved = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .ok()
                .and_then(|mut a| a.next());
            let why = format!(
                "upstreams.{name}.url `{}`: the host does not resolve",
                u.url.0
            );
            let addr = match (resolved, unresolved) {
                (Some(a), _) => a,
                (None, Unresolved::Refuse) => return Err(ConfigError::new(origin, why)),
                (None, Unresolved::Warn) => {
                    warnings.push(format!("{why} here (it must where the gateway runs)"));
                    SocketAddr::from(([0, 0, 0, 0], port))
                }
            };
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
        if let Some(tls) = file.cluster.as_ref().and_then(|c| c.tls.as_ref()) {
            let read = |f: &Option<crate::config::EnvString>| {
                f.as_ref()
                    .map(|path| {
                        std::fs::read(&path.0)
                            .map_err(|e| ConfigError::new(&path.0, format!("cannot read: {e}")))
                    })
                    .transpose()
            };
            inputs.redis_tls = Some(RedisTlsFiles {
                ca: read(&tls.ca)?,
                cert: read(&tls.cert)?,
                key: read(&tls.key)?,
            });
        }
        Ok((inputs, warnings))
    }
}
