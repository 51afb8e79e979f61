//! Upstream host names to addresses: the overrides of the file `SCOPEGATE_HOSTS_FILE` names
//! (the format of `/etc/hosts`, read at every resolution, so a deployment or a test can point
//! a name elsewhere without a DNS server), else the system's resolver. Every address a name
//! has is returned: an upstream balances over all of them.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The environment variable naming the overrides file.
pub const HOSTS_FILE: &str = "SCOPEGATE_HOSTS_FILE";

/// The addresses of `host:port`, in the order found (duplicates removed). Blocking.
pub fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some(path) = std::env::var_os(HOSTS_FILE) {
        let text = std::fs::read_to_string(&path)?;
        let found = overrides(&text, host, port);
        if !found.is_empty() {
            return Ok(found);
        }
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in (host, port).to_socket_addrs()? {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// The addresses `text` (hosts-file lines: `address name...`, `#` comments) gives `host`.
fn overrides(text: &str, host: &str, port: u16) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|name| name.eq_ignore_ascii_case(host)) {
            let a = SocketAddr::new(ip, port);
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_file_gives_every_address_of_a_name_and_comments_are_ignored() {
        let text = "127.0.0.2 api.internal other\n# 10.0.0.1 api.internal\n::1 api.internal\n";
        let got = overrides(text, "API.internal", 8080);
        assert_eq!(
            got,
            vec![
                "127.0.0.2:8080".parse::<SocketAddr>().unwrap(),
                "[::1]:8080".parse().unwrap()
            ]
        );
        assert!(overrides(text, "nowhere", 1).is_empty());
        assert_eq!(
            resolve("127.0.0.9", 80).unwrap(),
            vec!["127.0.0.9:80".parse::<SocketAddr>().unwrap()]
        );
    }
}
