//! The command line: parse arguments, call into the library.

use clap::{Parser, Subcommand};
use scopegate::config;
use scopegate::gateway::Gateway;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    Dev,
    /// Validate a configuration and report likely mistakes; exits non-zero on error.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Dry-run one decision and say why (fetches the issuers' keys); exit 0 when allowed.
    Explain {
        #[arg(long)]
        config: PathBuf,
        /// The bearer token (omit to see what happens without one).
        #[arg(long)]
        token: Option<String>,
        method: String,
        path: String,
    },
}

/// mimalloc: measured cheaper than glibc malloc on the proxy path (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load(path: &Path) -> Result<(config::File, Gateway), String> {
    let file = config::load(path).map_err(|e| e.to_string())?;
    let gateway = Gateway::build(&file, &path.display().to_string()).map_err(|e| e.to_string())?;
    Ok((file, gateway))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SCOPEGATE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Run { config } => load(&config).and_then(|(_, gw)| {
            let mut running = scopegate::server::start(Arc::new(gw), Default::default())?;
            tracing::info!("scopegate serving with {}", config.display());
            scopegate::server::wait_for_signal();
            running.stop();
            Ok(())
        }),
        Command::Dev => scopegate::dev::run(),
        Command::Check { config } => load(&config).map(|(file, _)| {
            let warnings = config::lint(&file);
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
        }),
        Command::Explain {
            config,
            token,
            method,
            path,
        } => load(&config).and_then(|(_, gw)| {
            let (text, allowed) =
                scopegate::explain::explain(Arc::new(gw), token.as_deref(), &method, &path)?;
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
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
