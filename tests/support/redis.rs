//! A real `redis-server` (Debian's package), started by a test on a free loopback port and
//! stopped with it.

use super::free_port;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub child: Child,
    pub url: String,
    pub port: u16,
    /// Where it persists (appendonly), kept across a restart.
    pub dir: Option<std::path::PathBuf>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    pub fn start() -> Redis {
        Redis::on(free_port(), None)
    }

    /// On `port`; with `dir`, persisted there (appendonly, as a production Redis is).
    pub fn on(port: u16, dir: Option<std::path::PathBuf>) -> Redis {
        let mut cmd = super::tools::command("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &dir {
            Some(d) => {
                std::fs::create_dir_all(d).unwrap();
                cmd.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                    .arg(d);
            }
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        let child = cmd.stdout(Stdio::null()).spawn().unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            port,
            dir,
        }
    }

    /// Stops it, as a crash would; returns its port and directory to start it again.
    pub fn kill(mut self) -> (u16, Option<std::path::PathBuf>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.take())
    }
}
