//! The proxies teams already run, from the OS packages, started by the tests in front of the
//! test upstream and configured to ask the gateway's decision endpoint: nginx with
//! `auth_request`, Caddy with `forward_auth`. Their configurations are the README's.

use super::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The identity headers the callers copy from the decision's answer.
pub const IDENTITY: [&str; 6] = [
    "X-Auth-Subject",
    "X-Auth-Client-Id",
    "X-Auth-Scopes",
    "X-Auth-Org",
    "X-Auth-Principal",
    "X-Auth-Issuer",
];

pub struct Proxy {
    child: Child,
    pub url: String,
    dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn workdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopegate-{what}-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_listening(port: u16, child: &mut Child, what: &str, log: &std::path::Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on {port}");
}

/// The nginx `auth_request` configuration of the README, for `decision` (host:port),
/// `upstream` (host:port) and the shared `secret`.
pub fn nginx_site(listen: u16, decision: &str, upstream: &str, secret: &str) -> String {
    let mut set = String::new();
    let mut pass = String::new();
    for h in IDENTITY {
        let var = h.to_ascii_lowercase().replace('-', "_");
        set.push_str(&format!(
            "      auth_request_set ${var} $upstream_http_{var};\n"
        ));
        // An empty value removes the header: a client's copy never passes.
        pass.push_str(&format!("      proxy_set_header {h} ${var};\n"));
    }
    format!(
        r#"  server {{
    listen 127.0.0.1:{listen};
    location / {{
      auth_request /_scopegate;
{set}{pass}      # The refusal's challenge and the decision's reason, to the client.
      auth_request_set $scopegate_www_authenticate $upstream_http_www_authenticate;
      add_header WWW-Authenticate $scopegate_www_authenticate always;
      proxy_pass http://{upstream};
    }}
    location = /_scopegate {{
      internal;
      proxy_pass http://{decision}/nginx;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Scopegate-Secret "{secret}";
    }}
  }}
"#
    )
}

impl Proxy {
    /// nginx (`/usr/sbin/nginx`) in front of `upstream`, asking `decision`.
    pub fn nginx(decision: &str, upstream: &str, secret: &str) -> Proxy {
        let dir = workdir("nginx");
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
{site}}}
"#,
            site = nginx_site(port, decision, upstream, secret)
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let log = dir.join("error.log");
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (apt-get install nginx) is needed for this test");
        wait_listening(port, &mut child, "nginx", &log);
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// Caddy (`/usr/bin/caddy`) in front of `upstream`, asking `decision` by `forward_auth`.
    pub fn caddy(decision: &str, upstream: &str, secret: &str) -> Proxy {
        let dir = workdir("caddy");
        let port = free_port();
        let caddyfile = format!(
            "{{\n  admin off\n  auto_https off\n}}\n\nhttp://127.0.0.1:{port} {{\n{}}}\n",
            caddy_site(decision, upstream, secret)
        );
        std::fs::write(dir.join("Caddyfile"), caddyfile).unwrap();
        let log = dir.join("caddy.log");
        let mut child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(dir.join("Caddyfile"))
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", &dir)
            .env("XDG_CONFIG_HOME", &dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("caddy (apt-get install caddy) is needed for this test");
        wait_listening(port, &mut child, "caddy", &log);
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }
}

/// The Caddy site block of the README.
pub fn caddy_site(decision: &str, upstream: &str, secret: &str) -> String {
    let identity = IDENTITY.join(" ");
    let removed: String = IDENTITY
        .iter()
        .map(|h| format!("    request_header -{h}\n"))
        .collect();
    format!(
        "  route {{\n    # The client's copies go first: copy_headers sets only what the answer has.\n{removed}    forward_auth {decision} {{\n      uri /forward-auth\n      header_up X-Scopegate-Secret \"{secret}\"\n      copy_headers {identity}\n    }}\n    reverse_proxy {upstream}\n  }}\n"
    )
}
