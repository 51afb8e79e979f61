//! The programs the tests run besides the gateway and the authorization server: found on
//! PATH (or `/usr/sbin`, or `target/tools/bin` for the Python ones), else installed by
//! `scripts/test-tools` — the script `.ci/run` runs too — once per test process. A tool still
//! missing fails its test with the command that installs it; no test is skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(root().join("target/tools/bin"))
        .chain(std::env::split_paths(&path))
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// What `scripts/test-tools` said, run at most once per test process.
fn provisioned() -> &'static Result<(), String> {
    static RAN: OnceLock<Result<(), String>> = OnceLock::new();
    RAN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/test-tools"))
            .output()
            .map_err(|e| format!("bash scripts/test-tools: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
}

/// The path of `tool`, installing the test tools first when it is missing.
pub fn need(tool: &str) -> PathBuf {
    if let Some(p) = find(tool) {
        return p;
    }
    let said = match provisioned() {
        Ok(()) => String::new(),
        Err(e) => format!("\n{e}"),
    };
    find(tool).unwrap_or_else(|| {
        panic!(
            "{tool} is needed for this test and scripts/test-tools could not install it; run \
             `scripts/test-tools` (or install the package that has `{tool}`){said}"
        )
    })
}

/// A command for `tool` (see [`need`]).
pub fn command(tool: &str) -> Command {
    Command::new(need(tool))
}
