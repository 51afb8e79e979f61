//! The command line: parse arguments, call into the library.

use clap::{Parser, Subcommand};
use scopegate::compile::{self, Compiled};
use scopegate::config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "scopegate",
    version,
    about = "A reverse-proxy authorization gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a configuration file.
    Run {
        #[arg(long, default_value = "config/scopegate.yaml")]
        config: PathBuf,
    },
    /// Run everything on one machine with no setup (development only).
    Dev {
        /// Your configuration: its routes, upstreams and issuers, with the dev issuer (and an
        /// echo upstream named `echo`) added, and a curl line per route.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The gateway's port on 127.0.0.1 (default 8080, or the file's `server.listen`).
        #[arg(long)]
        port: Option<u16>,
        /// The admin port on 127.0.0.1, which also serves the dev issuer (default 9901, or
        /// the file's `admin.listen`).
        #[arg(long)]
        admin_port: Option<u16>,
    },
    /// Validate a configuration and report likely mistakes; exits non-zero on error.
    Check {
        #[arg(long)]
        config: PathBuf,
        /// An OpenAPI 3 document: report its operations no route serves, and the routes no
        /// operation reaches.
        #[arg(long)]
        openapi: Option<PathBuf>,
    },
    /// Write configuration from another description of the API.
    #[command(subcommand)]
    Import(Import),
    /// Print the configuration's JSON Schema (for editors), or with `--markdown` its
    /// reference (docs/configuration.md).
    Schema {
        #[arg(long)]
        markdown: bool,
    },
    /// Dry-run one decision and say why (fetches the issuers' keys); exit 0 when allowed.
    Explain {
        #[arg(long)]
        config: PathBuf,
        /// A file holding the bearer token, `-` for stdin (omit to see what happens without
        /// one). Never the token itself: a command line is visible to every user of the host.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Another request header, `Name: value`; repeatable. A secret (a legacy credential)
        /// belongs in `--header-file`.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// A file of request headers, one `Name: value` per line, `-` for stdin.
        #[arg(long)]
        header_file: Option<PathBuf>,
        method: String,
        path: String,
    },
    /// Read a legacy credential's secret from stdin and print its `sha256:` line for the
    /// `credentials:` section (the secret itself is never written to the configuration).
    HashCredential,
    /// Exit 0 when the admin port answers 200 at `--url` (the container's HEALTHCHECK: the
    /// image has no curl).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:9901/healthz")]
        url: String,
    },
}

/// The contents of `path` (`-`: stdin), without the line break at its end.
fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// mimalloc: measured cheaper than glibc malloc on the proxy path (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load(path: &Path) -> Result<(config::File, Compiled), String> {
    compile::load(path).map_err(|e| e.to_string())
}

/// The secret on stdin, without the line break a shell `echo` or a terminal adds.
fn hash_credential() -> Result<(), String> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
        .map_err(|e| format!("cannot read the secret from stdin: {e}"))?;
    let secret = input.strip_suffix('\n').unwrap_or(&input);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the secret must be one line of visible ASCII without spaces (as it is presented)"
                .into(),
        );
    }
    println!("sha256: {}", scopegate::authn::sha256_hex(secret));
    Ok(())
}

/// One `GET` over plain HTTP/1.1 to the admin port, 200 or an error saying what came back.
fn health(url: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("`{url}`: only http:// (the admin port)"));
    }
    let authority = uri.authority().ok_or_else(|| format!("`{url}`: no host"))?;
    let addr = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let timeout = std::time::Duration::from_secs(2);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("`{addr}` does not resolve"))?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
        uri.path()
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.lines().next().unwrap_or_default().to_string();
    if status.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("{url}: {status}"))
    }
}

/// Serves until SIGINT/SIGTERM; SIGHUP reads the configuration again and puts it in force
/// once ready, or keeps the current one (and says why) when the new one is bad.
fn run(config: &Path) -> Result<(), String> {
    use scopegate::metrics::CONFIG_RELOADS;
    use scopegate::server::{self, Signal};
    // Installed first: a SIGHUP during the start must not end the process.
    let mut signals = server::Signals::install()?;
    let (mut in_force, compiled) = load(config)?;
    let mut file = server::ConfigFile::new(config);
    let mut running = server::start(compiled, Default::default())?;
    tracing::info!("scopegate serving with {}", config.display());
    loop {
        let every = running.current().serving.watch_config;
        let why = match signals.wait_or_change(every, || file.changed()) {
            Signal::Stop => break,
            Signal::Reload => {
                // What SIGHUP reads now is not a change to read again.
                file.taken();
                "SIGHUP"
            }
            Signal::Changed => "the file changed",
        };
        let reloaded = load(config).and_then(|(next_file, next)| {
            running.reload(next)?;
            Ok(next_file)
        });
        match reloaded {
            Ok(next_file) => {
                CONFIG_RELOADS.with_label_values(&["ok"]).inc();
                for warning in compile::lint(&next_file) {
                    tracing::warn!("{}: {warning}", config.display());
                }
                tracing::info!(
                    "configuration reloaded from {} ({why}): {}",
                    config.display(),
                    compile::changes(&in_force, &next_file)
                );
                in_force = next_file;
            }
            Err(e) => {
                CONFIG_RELOADS.with_label_values(&["error"]).inc();
                tracing::error!(
                    "configuration not reloaded ({why}), the previous one keeps serving: {e}"
                );
            }
        }
    }
    running.stop();
    Ok(())
}

#[derive(Subcommand)]
enum Import {
    /// Routes from an OpenAPI 3.0/3.1 document (JSON or YAML), printed: each operation's
    /// path template and method, and the scopes its `security` requirements name.
    Openapi {
        file: PathBuf,
        /// The upstream every route goes to (define it in `upstreams:`).
        #[arg(long, default_value = "api")]
        upstream: String,
    },
}

fn read_openapi(path: &std::path::Path) -> Result<scopegate::openapi::Spec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    scopegate::openapi::read(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `scopegate check`: the configuration's errors and warnings, and with `--openapi` how its
/// routes compare with the document's operations (reported as warnings).
fn check(config: &std::path::Path, openapi: Option<&std::path::Path>) -> Result<(), String> {
    let (file, compiled, mut warnings) = compile::check(config).map_err(|e| e.to_string())?;
    if let Some(path) = openapi {
        let spec = read_openapi(path)?;
        let c = scopegate::openapi::compare(&spec, &compiled.rules);
        for op in &c.unrouted {
            warnings.push(format!("{}: no route serves {op}", path.display()));
        }
        for name in &c.unused {
            warnings.push(format!(
                "route `{name}`: no operation of {} reaches it",
                path.display()
            ));
        }
        println!(
            "{}: {} operations, {} without a route; {} routes without an operation",
            path.display(),
            c.operations,
            c.unrouted.len(),
            c.unused.len()
        );
    }
    for w in &warnings {
        eprintln!("{}: warning: {w}", config.display());
    }
    println!(
        "{}: ok ({} routes, {} issuers, {} warnings)",
        config.display(),
        file.routes.len(),
        file.issuers.len(),
        warnings.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SCOPEGATE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: log collectors would store escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Run { config } => run(&config),
        Command::Dev {
            config,
            port,
            admin_port,
        } => scopegate::dev::run(&scopegate::dev::Options {
            config,
            port,
            admin_port,
        }),
        Command::HashCredential => hash_credential(),
        Command::Schema { markdown } => {
            use scopegate::config::reference;
            match markdown {
                true => print!("{}", reference::markdown()),
                false => print!("{}", reference::schema_text()),
            }
            Ok(())
        }
        Command::Health { url } => health(&url),
        Command::Check { config, openapi } => check(&config, openapi.as_deref()),
        Command::Import(Import::Openapi { file, upstream }) => read_openapi(&file).map(|spec| {
            print!(
                "{}",
                scopegate::openapi::routes_yaml(&spec, &upstream, &file.display().to_string())
            )
        }),
        Command::Explain {
            config,
            token_file,
            mut headers,
            header_file,
            method,
            path,
        } => load(&config).and_then(|(_, compiled)| {
            let token = token_file.map(|f| read_secret(&f)).transpose()?;
            if let Some(f) = header_file {
                headers.extend(read_secret(&f)?.lines().map(str::to_string));
            }
            let (text, allowed) =
                scopegate::explain::explain(compiled, token.as_deref(), &headers, &method, &path)?;
            print!("{text}");
            if allowed {
                Ok(())
            } else {
                Err("refused".into())
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line per error (`check` reports every error of a file).
            for line in e.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}
