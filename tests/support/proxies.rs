//! The proxies teams already run, from the OS packages, started by the tests in front of the
//! test upstream with the shipped configurations (`config/proxies/`) as they are — only the
//! addresses, the port and the secret filled in — asking the gateway's decision endpoint:
//! nginx with `auth_request`, Caddy with `forward_auth`. Each is stopped the way its
//! documentation says, and waited for, so no process outlives the test.

use super::free_port;
use std::path::{Path, PathBuf};
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

/// The secret the shipped nginx configuration carries, replaced by the test's.
const SHIPPED_SECRET: &str = "change-me-to-the-shared-secret";
/// The decision endpoint and the API of the shipped configurations.
const SHIPPED_DECISION: &str = "127.0.0.1:9100";
const SHIPPED_API: &str = "10.0.0.10:3000";

pub struct Proxy {
    child: Child,
    pub url: String,
    dir: PathBuf,
    /// How the process is asked to stop (nginx: SIGQUIT, a graceful shutdown; Caddy: SIGINT).
    stop_signal: &'static str,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([self.stop_signal, &pid]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

fn wait_listening(port: u16, child: &mut Child, what: &str, log: &Path) {
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

/// A shipped configuration file.
pub fn shipped(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/proxies")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Proxy {
    /// nginx in front of `upstream`, asking `decision`, with `config/proxies/nginx.conf`.
    pub fn nginx(decision: &str, upstream: &str, secret: &str) -> Proxy {
        let dir = workdir("nginx");
        let port = free_port();
        let site = shipped("nginx.conf")
            .replace(SHIPPED_DECISION, decision)
            .replace(SHIPPED_API, upstream)
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
            .replace(SHIPPED_SECRET, secret);
        let d = dir.display();
        // One process (no master and worker to leave behind), in the foreground.
        let conf = format!(
            r#"daemon off;
master_process off;
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
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let log = dir.join("error.log");
        let mut child = super::tools::command("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port, &mut child, "nginx", &log);
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            stop_signal: "-QUIT",
        }
    }

    /// Caddy in front of `upstream`, asking `decision`, with `config/proxies/Caddyfile`.
    pub fn caddy(decision: &str, upstream: &str, secret: &str) -> Proxy {
        let dir = workdir("caddy");
        let port = free_port();
        let site = shipped("Caddyfile")
            .replace(SHIPPED_DECISION, decision)
            .replace(SHIPPED_API, upstream)
            .replace("api.example.com {", &format!("http://127.0.0.1:{port} {{"));
        let caddyfile = format!("{{\n  admin off\n  auto_https off\n}}\n\n{site}");
        std::fs::write(dir.join("Caddyfile"), caddyfile).unwrap();
        let log = dir.join("caddy.log");
        let mut child = super::tools::command("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(dir.join("Caddyfile"))
            .env("SCOPEGATE_DECISION_SECRET", secret)
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", &dir)
            .env("XDG_CONFIG_HOME", &dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_listening(port, &mut child, "caddy", &log);
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            stop_signal: "-INT",
        }
    }
}
