//! `wharf -H tcp://... --tlsverify` against a wharfd serving TLS with
//! client certificates (a test CA made with openssl): version, ps and
//! run --rm work; the same through DOCKER_TLS_VERIFY/DOCKER_CERT_PATH;
//! without a client certificate or with an untrusted CA it fails with one
//! line. `--tls` alone (or DOCKER_TLS, or `--tlsverify=false` over
//! DOCKER_TLS_VERIFY) reaches the same daemon with a CA that did not sign
//! its certificate, which --tlsverify refuses.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::Daemon;

fn run(c: &mut Command) -> Output {
    wharf_testkit::run_bounded(c, Duration::from_secs(60)).unwrap()
}

#[test]
fn tlsverify_against_wharfd() {
    let port = wharf_testkit_daemon::free_port();
    let d =
        Daemon::start_with_setup(|dir| wharf_testkit_daemon::make_certs(dir, "").daemon_args(port));
    let host = format!("tcp://127.0.0.1:{port}");
    let f = |n: &str| d.dir.join(n).display().to_string();
    let flags = [
        "-H".to_owned(),
        host.clone(),
        "--tlsverify".to_owned(),
        "--tlscacert".to_owned(),
        f("ca.pem"),
        "--tlscert".to_owned(),
        f("client.pem"),
        "--tlskey".to_owned(),
        f("client-key.pem"),
    ];
    let wharf = |extra: &[&str]| {
        let mut c = Command::new(common::WHARF);
        c.args(&flags)
            .args(extra)
            .env_remove("WHARF_HOST")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        run(&mut c)
    };
    let o = wharf(&["version", "--format", "{{.Server.ApiVersion}}"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        common::tail(&d.log(), 20)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1.50\n");
    let o = wharf(&["run", "--rm", "busybox", "echo", "over tls"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "over tls\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = wharf(&["ps", "-a"]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("CONTAINER ID   IMAGE"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The environment form: DOCKER_TLS_VERIFY + DOCKER_CERT_PATH with
    // ca.pem, cert.pem, key.pem.
    let certs = d.dir.join("certdir");
    std::fs::create_dir_all(&certs).unwrap();
    for (from, to) in [
        ("ca.pem", "ca.pem"),
        ("client.pem", "cert.pem"),
        ("client-key.pem", "key.pem"),
    ] {
        std::fs::copy(d.dir.join(from), certs.join(to)).unwrap();
    }
    let mut c = Command::new(common::WHARF);
    c.args(["ps", "-q"])
        .env("DOCKER_HOST", &host)
        .env_remove("WHARF_HOST")
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs);
    let o = run(&mut c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // No client certificate: the daemon refuses; one line, exit 1.
    let mut c = Command::new(common::WHARF);
    c.args([
        "-H",
        &host,
        "--tlsverify",
        "--tlscacert",
        &f("ca.pem"),
        "ps",
    ])
    .env_remove("DOCKER_CERT_PATH")
    .env("HOME", d.dir.join("nohome"));
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");

    // A CA that did not sign the server: the handshake fails, one line.
    wharf_testkit_daemon::make_certs(&d.dir, "other-");
    let mut c = Command::new(common::WHARF);
    c.args([
        "-H",
        &host,
        "--tlsverify",
        "--tlscacert",
        &f("other-ca.pem"),
        "--tlscert",
        &f("client.pem"),
        "--tlskey",
        &f("client-key.pem"),
        "version",
    ]);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("tls handshake with the daemon at"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    // `--tls` alone: TLS without checking the daemon's certificate, which
    // no CA the client has signed (other-ca.pem is the client's CA here);
    // the client pair is still sent (the daemon requires it).
    let tls_only = |extra: &[&str]| {
        let mut c = Command::new(common::WHARF);
        c.args([
            "-H",
            &host,
            "--tls",
            "--tlscacert",
            &f("other-ca.pem"),
            "--tlscert",
            &f("client.pem"),
            "--tlskey",
            &f("client-key.pem"),
        ])
        .args(extra)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_TLS");
        run(&mut c)
    };
    let o = tls_only(&["version", "--format", "{{.Server.ApiVersion}}"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1.50\n");
    // A hijacked stream (attach) through the same connection kind.
    let o = tls_only(&["run", "--rm", "busybox", "echo", "tls, unverified"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "tls, unverified\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The same daemon with --tlsverify and that CA: refused.
    let o = {
        let mut c = Command::new(common::WHARF);
        c.args([
            "-H",
            &host,
            "--tls",
            "--tlsverify",
            "--tlscacert",
            &f("other-ca.pem"),
            "--tlscert",
            &f("client.pem"),
            "--tlskey",
            &f("client-key.pem"),
            "version",
        ]);
        run(&mut c)
    };
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("tls handshake with the daemon at"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The environment form: DOCKER_TLS=1, the pair (and an untrusting
    // ca.pem) under DOCKER_CERT_PATH.
    let other = d.dir.join("other-certdir");
    std::fs::create_dir_all(&other).unwrap();
    for (from, to) in [
        ("other-ca.pem", "ca.pem"),
        ("client.pem", "cert.pem"),
        ("client-key.pem", "key.pem"),
    ] {
        std::fs::copy(d.dir.join(from), other.join(to)).unwrap();
    }
    let env_form = |verify: bool, extra: &[&str]| {
        let mut c = Command::new(common::WHARF);
        c.args(extra)
            .args(["ps", "-q"])
            .env("DOCKER_HOST", &host)
            .env_remove("WHARF_HOST")
            .env("DOCKER_TLS", "1")
            .env("DOCKER_CERT_PATH", &other);
        if verify {
            c.env("DOCKER_TLS_VERIFY", "1");
        } else {
            c.env_remove("DOCKER_TLS_VERIFY");
        }
        run(&mut c)
    };
    let o = env_form(false, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env_form(true, &[]);
    assert_eq!(o.status.code(), Some(1), "DOCKER_TLS_VERIFY checks the CA");
    // docker's --tlsverify=false: TLS without verification even with
    // DOCKER_TLS_VERIFY set, and even with --tls=false (naming --tlsverify
    // at all turns TLS on).
    for extra in [
        &["--tlsverify=false"][..],
        &["--tls=false", "--tlsverify=false"],
    ] {
        let o = env_form(true, extra);
        assert!(
            o.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Not a boolean: docker's parse error, exit 125.
    let o = env_form(true, &["--tlsverify=maybe"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).lines().next(),
        Some(
            "invalid argument \"maybe\" for \"--tlsverify\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        )
    );
    // --tls=false alone does not turn DOCKER_TLS_VERIFY off.
    let o = env_form(true, &["--tls=false"]);
    assert_eq!(o.status.code(), Some(1), "DOCKER_TLS_VERIFY checks the CA");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("tls handshake with the daemon at"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // --tls without a client certificate: the daemon refuses; one line.
    let mut c = Command::new(common::WHARF);
    c.args(["-H", &host, "--tls", "ps"])
        .env_remove("DOCKER_CERT_PATH")
        .env("HOME", d.dir.join("nohome"));
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("tls handshake with the daemon at"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    // A missing CA file is named.
    let o = {
        let mut c = Command::new(common::WHARF);
        c.args([
            "-H",
            &host,
            "--tlsverify",
            "--tlscacert",
            "/nonexistent/ca.pem",
            "ps",
        ]);
        run(&mut c)
    };
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent/ca.pem"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
