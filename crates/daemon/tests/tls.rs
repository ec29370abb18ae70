//! `-H tcp://` with `--tlsverify`: the docker CLI with a client certificate
//! from the test CA gets in; without one it is refused.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Daemon;

#[test]
fn tcp_with_tlsverify() {
    let port = wharf_testkit_daemon::free_port();
    let d =
        Daemon::start_with_setup(|dir| wharf_testkit_daemon::make_certs(dir, "").daemon_args(port));
    let host = format!("tcp://127.0.0.1:{port}");
    let f = |n: &str| d.dir.join(n).display().to_string();
    let mut ok = d.docker_cmd();
    ok.args([
        "--tlsverify",
        "--tlscacert",
        &f("ca.pem"),
        "--tlscert",
        &f("client.pem"),
        "--tlskey",
        &f("client-key.pem"),
        "-H",
        &host,
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    let out = wharf_testkit::run_bounded(&mut ok, Duration::from_secs(30)).unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        common::tail(&d.log(), 20)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.50");

    // TLS without a client certificate: refused.
    let mut no_cert = d.docker_cmd();
    no_cert.args([
        "--tls",
        "--tlscacert",
        &f("ca.pem"),
        "-H",
        &host,
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    let out = wharf_testkit::run_bounded(&mut no_cert, Duration::from_secs(30)).unwrap();
    assert!(
        !out.status.success(),
        "a client without a certificate got in"
    );

    // The unix socket is served alongside.
    assert_eq!(d.ok(&["version", "--format", "{{.Server.Os}}"]), "linux");
}

#[test]
fn plain_tcp_is_refused() {
    let port = wharf_testkit_daemon::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_wharfd"))
        .args(["--config-file", "/dev/null/none.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wharfd"))
        .arg("--config-file")
        .arg(dir.path().join("d.json"))
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--exec-root")
        .arg(dir.path().join("exec"))
        .args([
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "--shim-binary",
            "/bin/true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tlsverify"), "{err}");
}
