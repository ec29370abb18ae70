//! A real `docker-registry serve` on 127.0.0.1 (a free port, storage and
//! config in a temporary directory, deletes enabled), optionally behind
//! htpasswd Basic auth; killed and removed on drop. Images get into it
//! with skopeo ([`Registry::seed`]), never through the daemon under test.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry process and its storage.
pub struct Registry {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The htpasswd user and password, when it requires them.
    pub creds: Option<(String, String)>,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// A registry requiring `user`/`pass` (htpasswd, bcrypt).
    pub fn start_htpasswd(user: &str, pass: &str) -> Registry {
        Registry::start_with(Some((user.to_owned(), pass.to_owned())))
    }

    fn start_with(creds: Option<(String, String)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let auth = match &creds {
            None => String::new(),
            Some((u, p)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .expect("htpasswd (apache2-utils) must be installed");
                assert!(out.status.success(), "htpasswd -Bbn {u} failed");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
                    path.display()
                )
            }
        };
        // The port is free when picked but may be taken before the
        // registry binds it: a few tries.
        for _ in 0..5 {
            let port = crate::free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: wharf-test-secret\n{auth}",
                    storage.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry must be installed");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if wait_ready(&mut child, addr) {
                return Registry {
                    child,
                    addr,
                    dir,
                    creds,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Copies the OCI layout at `layout` (tag `latest`) to `repo:tag` here.
    pub fn seed(&self, layout: &Path, repo: &str, tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.creds {
            cmd.arg("--dest-creds").arg(format!("{u}:{p}"));
        }
        let out = cmd
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()))
            .output()
            .expect("skopeo must be installed");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The manifest digest of `repo:tag` as the registry serves it.
    pub fn digest(&self, repo: &str, tag: &str) -> Option<String> {
        let mut s = TcpStream::connect(self.addr).ok()?;
        let auth = match &self.creds {
            Some((u, p)) => {
                use base64::Engine as _;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Authorization: Basic {b}\r\n")
            }
            None => String::new(),
        };
        write!(
            s,
            "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\n{auth}Connection: close\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        if !text.starts_with("HTTP/1.1 200") {
            return None;
        }
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_owned())
        })
    }
}

/// Waits up to 15 s for `GET /v2/` to answer 200 or 401; false when the
/// process exited or never answered.
fn wait_ready(child: &mut Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if write!(
                s,
                "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .is_ok()
            {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                let head = String::from_utf8_lossy(&buf);
                if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 401") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
