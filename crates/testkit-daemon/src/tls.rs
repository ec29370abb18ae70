//! Certificates for TLS tests, made with the openssl command line: a CA,
//! a server pair for 127.0.0.1/localhost and a client pair, valid one day.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files [`make_certs`] wrote (PEM).
#[derive(Clone, Debug)]
pub struct Certs {
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    /// wharfd flags serving TLS on `tcp://127.0.0.1:<port>` with this
    /// server pair and requiring client certificates signed by this CA
    /// (`--tlsverify`).
    pub fn daemon_args(&self, port: u16) -> Vec<String> {
        let p = |f: &PathBuf| f.display().to_string();
        vec![
            "-H".into(),
            format!("tcp://127.0.0.1:{port}"),
            "--tlsverify".into(),
            "--tlscacert".into(),
            p(&self.ca),
            "--tlscert".into(),
            p(&self.server_cert),
            "--tlskey".into(),
            p(&self.server_key),
        ]
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes into `dir`, each name starting with `prefix`: `ca.pem` and
/// `ca-key.pem` (CN `wharf-test-ca`, the same for every prefix), a server
/// pair `server.pem`/`server-key.pem` (SAN IP:127.0.0.1 and
/// DNS:localhost, serverAuth) and a client pair
/// `client.pem`/`client-key.pem` (clientAuth), both signed by that CA.
pub fn make_certs(dir: &Path, prefix: &str) -> Certs {
    let ca = format!("{prefix}ca.pem");
    let ca_key = format!("{prefix}ca-key.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "1",
            "-subj",
            "/CN=wharf-test-ca",
        ],
    );
    for (name, cn, ext) in [
        (
            "server",
            "localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let base = format!("{prefix}{name}");
        std::fs::write(dir.join(format!("{base}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{base}-key.pem"),
                "-out",
                &format!("{base}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{base}.csr"),
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &format!("{base}.pem"),
                "-days",
                "1",
                "-extfile",
                &format!("{base}.ext"),
            ],
        );
    }
    let p = |name: &str| dir.join(format!("{prefix}{name}"));
    Certs {
        ca: p("ca.pem"),
        ca_key: p("ca-key.pem"),
        server_cert: p("server.pem"),
        server_key: p("server-key.pem"),
        client_cert: p("client.pem"),
        client_key: p("client-key.pem"),
    }
}
