//! `cluster:` — the Redis the replicas share, and the key their shared state is
//! authenticated with. A `cluster:` that cannot be built is a configuration error (at start,
//! on reload and in `check`, which builds the client without connecting): a cluster never
//! switches itself off. Credentials never appear in an error or a debug print.

use super::Inputs;
use crate::config::{ConfigError, File};

/// The compiled `cluster:` section.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The Redis URL without credentials (for logs and errors).
    pub redis: String,
    username: Option<String>,
    password: Option<String>,
    /// CA, client certificate and key (PEM) for `rediss://`.
    tls: Option<RedisTls>,
    pub key_prefix: String,
    /// The keys shared values are authenticated with.
    pub hmac: HmacKeys,
    /// Become ready without Redis (serving with local state) instead of waiting for it.
    pub start_without_redis: bool,
    /// Introspection answers shared between replicas.
    pub share_introspection: bool,
    /// The most shared revocations loaded from Redis.
    pub max_revocations: usize,
}

#[derive(Clone, PartialEq, Eq)]
struct RedisTls {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The HMAC keys of the shared state: the one written with, and one still accepted during a
/// rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKeys {
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("redis", &self.redis)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .field("key_prefix", &self.key_prefix)
            .field("hmac", &"<redacted>")
            .field("start_without_redis", &self.start_without_redis)
            .field("share_introspection", &self.share_introspection)
            .field("max_revocations", &self.max_revocations)
            .finish()
    }
}

/// Serialized only to compare what is bound at start: never the secrets themselves.
impl serde::Serialize for ClusterSettings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{self:?}"))
    }
}

/// Shortest HMAC key accepted (bytes): as long as the MAC.
const MIN_KEY: usize = 32;

/// The URL without its userinfo, and the userinfo (user, password) it carried.
fn split_userinfo(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None, None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_string(), None, None);
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let decode = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1..i + 3)) {
                (b'%', Some(h))
                    if std::str::from_utf8(h).is_ok_and(|h| u8::from_str_radix(h, 16).is_ok()) =>
                {
                    out.push(
                        u8::from_str_radix(std::str::from_utf8(h).unwrap_or("0"), 16).unwrap_or(0),
                    );
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let user = (!user.is_empty()).then(|| decode(user));
    let password = password.filter(|p| !p.is_empty()).map(decode);
    (format!("{scheme}://{host}"), user, password)
}

/// `cluster:` compiled, its client built (not connected) to prove it can be.
pub fn compile(
    file: &File,
    inputs: &Inputs,
    origin: &str,
) -> Result<Option<ClusterSettings>, ConfigError> {
    let Some(c) = &file.cluster else {
        return Ok(None);
    };
    let here = |msg: String| ConfigError::new(origin, format!("cluster.{msg}"));
    let (redis, url_user, url_password) = split_userinfo(&c.redis.0);
    let tls_scheme = redis.starts_with("rediss://");
    if !(redis.starts_with("redis://") || tls_scheme) {
        return Err(here(format!(
            "redis: `{redis}` is not a redis:// or rediss:// URL"
        )));
    }
    let set = |v: &Option<crate::config::EnvString>| v.as_ref().map(|s| s.0.clone());
    if (url_user.is_some() && c.username.is_some())
        || (url_password.is_some() && c.password.is_some())
    {
        return Err(here(
            "redis: credentials in the URL and in `username`/`password`: give them once".into(),
        ));
    }
    let current = c.hmac_key.0.as_bytes().to_vec();
    let previous = c
        .hmac_key_previous
        .as_ref()
        .map(|k| k.0.as_bytes().to_vec());
    if current.len() < MIN_KEY || previous.as_ref().is_some_and(|p| p.len() < MIN_KEY) {
        return Err(here(format!(
            "hmac_key: at least {MIN_KEY} characters, the same on every replica (e.g. `openssl rand -base64 48`)"
        )));
    }
    let tls = match (&c.tls, tls_scheme) {
        (Some(_), false) => {
            return Err(here("tls: needs a rediss:// URL".into()));
        }
        (Some(_), true) => {
            let files = inputs.redis_tls.as_ref();
            let client = match files.map(|f| (&f.cert, &f.key)) {
                Some((Some(cert), Some(key))) => Some((cert.clone(), key.clone())),
                Some((None, None)) | None => None,
                _ => return Err(here("tls: `cert` and `key` go together".into())),
            };
            Some(RedisTls {
                ca: files.and_then(|f| f.ca.clone()),
                client,
            })
        }
        (None, _) => None,
    };
    if c.max_revocations == 0 {
        return Err(here("max_revocations: at least 1".into()));
    }
    let settings = ClusterSettings {
        redis,
        username: set(&c.username).or(url_user),
        password: set(&c.password).or(url_password),
        tls,
        key_prefix: c.key_prefix.clone(),
        hmac: HmacKeys { current, previous },
        start_without_redis: c.start_without_redis,
        share_introspection: c.share_introspection,
        max_revocations: c.max_revocations,
    };
    settings.client().map_err(|e| ConfigError::new(origin, e))?;
    Ok(Some(settings))
}

impl ClusterSettings {
    /// The Redis client (no connection is made); errors name the URL without credentials.
    pub fn client(&self) -> Result<redis::Client, String> {
        use redis::IntoConnectionInfo;
        let fail = |e: redis::RedisError| format!("cluster.redis `{}`: {e}", self.redis);
        let info = self.redis.as_str().into_connection_info().map_err(fail)?;
        let mut settings = info.redis_settings().clone();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let info = info.set_redis_settings(settings);
        match &self.tls {
            None => redis::Client::open(info).map_err(fail),
            Some(t) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: t.client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.clone(),
                    }),
                    root_cert: t.ca.clone(),
                },
            )
            .map_err(fail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(cluster: &str) -> Result<ClusterSettings, String> {
        let yaml = format!(
            "server: {{ listen: 127.0.0.1:1 }}\nupstreams: {{}}\nroutes: []\ncluster: {cluster}"
        );
        let file = crate::config::parse(&yaml, "t").map_err(|e| e.to_string())?;
        let inputs = Inputs::gather(&file, "t").map_err(|e| e.to_string())?;
        compile(&file, &inputs, "t")
            .map(Option::unwrap)
            .map_err(|e| e.to_string())
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn credentials_in_the_url_move_out_of_it_and_never_show() {
        let c = compiled(&format!(
            "{{ redis: \"redis://app:s3cr%40t@redis:6379/2\", hmac_key: {KEY} }}"
        ))
        .unwrap();
        assert_eq!(c.redis, "redis://redis:6379/2");
        assert_eq!(c.username.as_deref(), Some("app"));
        assert_eq!(c.password.as_deref(), Some("s3cr@t"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr") && !shown.contains(KEY), "{shown}");
        assert!(!serde_json::to_string(&c).unwrap().contains("s3cr"));
    }

    #[test]
    fn a_cluster_that_cannot_be_built_is_an_error_naming_no_secret() {
        let e = compiled(&format!(
            "{{ redis: \"redis://:pw-123@\", hmac_key: {KEY} }}"
        ))
        .unwrap_err();
        assert!(e.contains("cluster.redis"), "{e}");
        assert!(!e.contains("pw-123"), "{e}");
        let e = compiled(&format!("{{ redis: \"http://x\", hmac_key: {KEY} }}")).unwrap_err();
        assert!(e.contains("not a redis:// or rediss:// URL"), "{e}");
        let e = compiled("{ redis: \"redis://x\", hmac_key: short }").unwrap_err();
        assert!(e.contains("at least 32 characters"), "{e}");
        let e = compiled(&format!(
            "{{ redis: \"redis://x\", hmac_key: {KEY}, tls: {{ ca: /dev/null }} }}"
        ))
        .unwrap_err();
        assert!(e.contains("needs a rediss:// URL"), "{e}");
        let e = compiled("{ redis: \"redis://x\" }").unwrap_err();
        assert!(e.contains("hmac_key"), "{e}");
    }
}
