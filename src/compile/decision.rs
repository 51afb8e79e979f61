//! `decision:` — where the decision endpoint listens and how its callers are trusted. The
//! endpoint decides whatever URI its caller names, so a caller nobody vouched for must never
//! reach it: a TCP address beyond loopback needs a shared secret.

use super::listener::SideListener;
use super::socket_addr;
use crate::config::schema::TraceContext;
use crate::config::{ConfigError, File};
use http::HeaderName;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the HTTP front ends listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Bind {
    Tcp(SocketAddr),
    /// A unix socket and its permissions.
    Unix {
        path: PathBuf,
        mode: u32,
    },
}

/// The secret every call must carry, in one header (gRPC: metadata) and only once.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct CallerSecret {
    #[serde(serialize_with = "header_name")]
    pub header: HeaderName,
    pub value: String,
}

impl std::fmt::Debug for CallerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallerSecret({}: <redacted>)", self.header)
    }
}

fn header_name<S: serde::Serializer>(name: &HeaderName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name.as_str())
}

/// The compiled `decision:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionServing {
    pub listen: Option<Bind>,
    pub grpc_listen: Option<SocketAddr>,
    pub secret: Option<CallerSecret>,
    /// Continue a trace from the `traceparent` of an HTTP call (the caller sets it itself).
    pub continue_traces: bool,
    #[serde(flatten)]
    pub bounds: SideListener,
}

pub fn compile(file: &File, origin: &str) -> Result<Option<DecisionServing>, ConfigError> {
    let Some(d) = &file.decision else {
        return Ok(None);
    };
    let here = |msg: String| ConfigError::new(origin, format!("decision: {msg}"));
    let mode = match u32::from_str_radix(&d.socket_mode, 8) {
        Ok(m) if m <= 0o777 && d.socket_mode.len() <= 4 => m,
        _ => {
            return Err(here(format!(
                "`socket_mode: {}` is not an octal permission such as \"0660\"",
                d.socket_mode
            )));
        }
    };
    let listen = match d.listen.as_ref().map(|l| l.0.as_str()) {
        None => None,
        Some(l) => Some(match l.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => Bind::Unix {
                path: PathBuf::from(path),
                mode,
            },
            Some(_) => return Err(here("`listen: unix:` needs a socket path".into())),
            None => Bind::Tcp(socket_addr(origin, "decision.listen", l)?),
        }),
    };
    let grpc_listen = d
        .grpc_listen
        .as_ref()
        .map(|l| socket_addr(origin, "decision.grpc_listen", &l.0))
        .transpose()?;
    if listen.is_none() && grpc_listen.is_none() {
        return Err(here("set `listen`, `grpc_listen` or both".into()));
    }
    let secret = match &d.shared_secret {
        Some(s) if s.0.len() < 16 => {
            return Err(here(
                "`shared_secret` must be at least 16 characters".into(),
            ));
        }
        Some(s) => {
            let name = HeaderName::from_bytes(d.secret_header.as_bytes()).map_err(|_| {
                here(format!(
                    "`secret_header` `{}` is not a header name",
                    d.secret_header
                ))
            })?;
            Some(CallerSecret {
                header: name,
                value: s.0.clone(),
            })
        }
        None => None,
    };
    let exposed = |a: &SocketAddr| !a.ip().is_loopback();
    let open = match (&listen, &grpc_listen) {
        (Some(Bind::Tcp(a)), _) if exposed(a) => Some(("listen", *a)),
        (_, Some(a)) if exposed(a) => Some(("grpc_listen", *a)),
        _ => None,
    };
    if let (Some((what, addr)), None) = (open, &secret) {
        return Err(here(format!(
            "`{what}: {addr}` is reachable beyond this host: set `shared_secret` (or listen on loopback or a unix socket), so that only your proxy can ask for decisions"
        )));
    }
    Ok(Some(DecisionServing {
        listen,
        grpc_listen,
        secret,
        continue_traces: d.trace_context == TraceContext::Continue,
        bounds: SideListener::compile(
            SideListener::DECISION,
            &d.limits,
            &d.timeouts,
            file.server.limits.max_uri_bytes,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(decision: &str) -> Result<Option<DecisionServing>, String> {
        let yaml = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{}}\nroutes: []\ndecision: {decision}"
        );
        let file = crate::config::parse(&yaml, "t").unwrap();
        compile(&file, "t").map_err(|e| e.to_string())
    }

    #[test]
    fn an_endpoint_reachable_beyond_loopback_needs_a_shared_secret() {
        let e = compiled("{ listen: 0.0.0.0:9100 }").unwrap_err();
        assert!(e.contains("set `shared_secret`"), "{e}");
        let e = compiled("{ grpc_listen: 10.0.0.5:9101 }").unwrap_err();
        assert!(e.contains("`grpc_listen: 10.0.0.5:9101`"), "{e}");
        let d = compiled("{ listen: 0.0.0.0:9100, shared_secret: 0123456789abcdef0123 }")
            .unwrap()
            .unwrap();
        assert_eq!(d.secret.unwrap().header, "x-scopegate-secret");
        // Loopback and unix sockets are this host's.
        assert!(compiled("{ listen: 127.0.0.1:9100, grpc_listen: \"[::1]:9101\" }").is_ok());
        let d = compiled("{ listen: \"unix:/run/scopegate/decision.sock\" }")
            .unwrap()
            .unwrap();
        assert_eq!(
            d.listen,
            Some(Bind::Unix {
                path: "/run/scopegate/decision.sock".into(),
                mode: 0o600
            })
        );
        let d = compiled("{ listen: \"unix:/run/d.sock\", socket_mode: \"0660\" }")
            .unwrap()
            .unwrap();
        assert!(matches!(d.listen, Some(Bind::Unix { mode: 0o660, .. })));
        let e = compiled("{ listen: \"unix:/run/d.sock\", socket_mode: \"rw\" }").unwrap_err();
        assert!(e.contains("is not an octal permission"), "{e}");
        // The secret never shows in a debug print.
        let d = compiled("{ listen: 127.0.0.1:9100, shared_secret: 0123456789abcdef0123 }")
            .unwrap()
            .unwrap();
        assert!(!format!("{d:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn a_short_secret_or_no_listener_is_refused() {
        let e = compiled("{ listen: 127.0.0.1:9100, shared_secret: short }").unwrap_err();
        assert!(e.contains("at least 16 characters"), "{e}");
        let e = compiled("{ shared_secret: 0123456789abcdef0123 }").unwrap_err();
        assert!(e.contains("set `listen`, `grpc_listen` or both"), "{e}");
    }
}
