//! What compiling a configuration needs from outside the file, gathered before the compile
//! step so that compiling stays a pure function: upstream host names resolved, and the
//! organization policy document read when it is a local file.

use crate::clock::unix_now;
use crate::config::{ConfigError, File};
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, Default)]
pub struct Inputs {
    /// Each upstream host and port (of `url`, or of `addresses`), resolved: every address.
    pub addresses: HashMap<(String, u16), Vec<SocketAddr>>,
    /// The PEM files of each upstream's `tls`, read (reloading reads them again).
    pub upstream_tls: HashMap<String, TlsFiles>,
    /// The organization policy file (`organization_policy.source.file`), read.
    pub org_document: Option<OrgDocument>,
    /// The PEM files of `cluster.tls`, read.
    pub redis_tls: Option<TlsFiles>,
    /// `forward.identity_assertion`'s key, and the previous one, read.
    pub assertion_keys: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

/// PEM files of a TLS client: a CA bundle, a certificate chain and its key.
#[derive(Debug, Default, Clone)]
pub struct TlsFiles {
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

/// `host:port` (an IPv6 address in brackets).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// A file named in the configuration, read.
fn read_file(path: &Option<crate::config::EnvString>) -> Result<Option<Vec<u8>>, ConfigError> {
    path.as_ref()
        .map(|p| {
            std::fs::read(&p.0).map_err(|e| ConfigError::new(&p.0, format!("cannot read: {e}")))
        })
        .transpose()
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
            // Resolved at load (every address a name has); sync tasks resolve them again.
            let mut targets: Vec<(String, u16, String)> = Vec::new();
            match &u.addresses {
                Some(list) => {
                    for a in list {
                        let text = a.text();
                        match split_host_port(text) {
                            Some((h, p)) => {
                                targets.push((h, p, format!("upstreams.{name}.addresses `{text}`")))
                            }
                            None => {
                                return Err(ConfigError::new(
                                    origin,
                                    format!("upstreams.{name}.addresses `{text}`: write host:port"),
                                )
                                .key(format!("upstreams.{name}.addresses")));
                            }
                        }
                    }
                }
                None => {
                    if let Some((host, port)) = host_port(&u.url) {
                        targets.push((host, port, format!("upstreams.{name}.url `{}`", u.url.0)));
                    }
                }
            }
            for (host, port, what) in targets {
                let resolved = crate::dns::resolve(&host, port)
                    .ok()
                    .filter(|a| !a.is_empty());
                let why = format!("{what}: the host does not resolve");
                let addrs = match (resolved, unresolved) {
                    (Some(a), _) => a,
                    (None, Unresolved::Refuse) => {
                        return Err(ConfigError::new(origin, why).key(format!("upstreams.{name}")));
                    }
                    (None, Unresolved::Warn) => {
                        warnings.push(format!("{why} here (it must where the gateway runs)"));
                        vec![SocketAddr::from(([0, 0, 0, 0], port))]
                    }
                };
                inputs.addresses.insert((host, port), addrs);
            }
            if let Some(tls) = &u.tls {
                inputs.upstream_tls.insert(
                    name.clone(),
                    TlsFiles {
                        ca: read_file(&tls.ca)?,
                        cert: read_file(&tls.cert)?,
                        key: read_file(&tls.key)?,
                    },
                );
            }
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
            inputs.redis_tls = Some(TlsFiles {
                ca: read_file(&tls.ca)?,
                cert: read_file(&tls.cert)?,
                key: read_file(&tls.key)?,
            });
        }
        if let Some(a) = &file.forward.identity_assertion {
            let key = read_file(&Some(a.key.clone()))?.unwrap_or_default();
            inputs.assertion_keys = Some((key, read_file(&a.previous_key)?));
        }
        Ok((inputs, warnings))
    }
}
