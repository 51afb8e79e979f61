//! A private CA made with openssl for a test: a server certificate for `localhost` and
//! 127.0.0.1, and a client certificate, each signed by it (in `dir`: `ca.pem`, `server.pem`
//! and `server.key`, `client.pem` and `client.key`).

use std::path::Path;
use std::process::Stdio;

pub fn make(dir: &Path) {
    let run = |args: &[&str]| {
        let ok = super::tools::command("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed for this test")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=scopegate test CA",
    ]);
    for (name, subject, ext) in [
        ("server", "/CN=localhost", "san.ext"),
        ("client", "/CN=scopegate gateway", "client.ext"),
    ] {
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "1",
            "-extfile",
            ext,
        ]);
    }
}
