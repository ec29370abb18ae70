//! What every command shares: the connection to the daemon (resolved,
//! negotiated, and the daemon started when it is missing and we may), the
//! exit-status error, and docker's wording for errors.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wharf_client::{Client, ClientError, Host, ServerCheck, TlsOptions};

/// Ends the command with an exit code; `message` (if any) goes to stderr.
#[derive(Debug, thiserror::Error)]
#[error("{}", message.as_deref().unwrap_or("exit status"))]
pub struct Exit {
    pub code: i32,
    pub message: Option<String>,
}

impl Exit {
    pub fn code(code: i32) -> anyhow::Error {
        Exit {
            code,
            message: None,
        }
        .into()
    }

    pub fn with(code: i32, message: impl Into<String>) -> anyhow::Error {
        Exit {
            code,
            message: Some(message.into()),
        }
        .into()
    }
}

/// Docker's one-line rendering of an error.
pub fn describe(err: &anyhow::Error) -> String {
    if let Some(c) = err.downcast_ref::<ClientError>() {
        return describe_client(c);
    }
    let mut s = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s
}

pub fn describe_client(c: &ClientError) -> String {
    match c {
        ClientError::Daemon { message, .. } => format!("Error response from daemon: {message}"),
        ClientError::Connect { host, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            format!(
                "permission denied while trying to connect to the wharf daemon socket at {host}: run as root or as a member of the socket's group (wharfd --group)"
            )
        }
        ClientError::Connect { host, .. } => format!(
            "Cannot connect to the wharf daemon at {host}. Is the wharf daemon running? (start it with 'sudo wharf daemon' or 'sudo wharfd')"
        ),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(e) = src {
                s.push_str(": ");
                s.push_str(&e.to_string());
                src = e.source();
            }
            s
        }
    }
}

/// The TLS flags as given (`--tls`, `--tlsverify`, `--tlscacert`,
/// `--tlscert`, `--tlskey`); `None` for a flag not on the command line.
#[derive(Debug, Default, Clone)]
pub struct TlsFlags {
    pub tls: Option<bool>,
    pub verify: Option<bool>,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl TlsFlags {
    /// How to reach a `tcp://` daemon (`None`: plain HTTP), by the docker
    /// CLI's rules. `--tls` defaults to `$DOCKER_TLS` being non-empty and
    /// `--tlsverify` to `$DOCKER_TLS_VERIFY` being non-empty; an explicit
    /// value wins over the variable. `--tlsverify` given at all (even
    /// `=false`) or in effect turns TLS on; TLS without verification skips
    /// the check of the daemon's certificate (and reads no CA). Files
    /// default to `$DOCKER_CERT_PATH` or `~/.docker` (`ca.pem`, `cert.pem`,
    /// `key.pem`; the pair only when present).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Option<TlsOptions> {
        let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
        let verify = self.verify.unwrap_or_else(|| set("DOCKER_TLS_VERIFY"));
        let tls = self.tls.unwrap_or_else(|| set("DOCKER_TLS")) || self.verify.is_some() || verify;
        if !tls {
            return None;
        }
        let dir = env("DOCKER_CERT_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env("HOME").unwrap_or_else(|| "/root".into())).join(".docker")
            });
        let pick = |flag: &Option<String>, name: &str| -> Option<PathBuf> {
            match flag {
                Some(f) => Some(PathBuf::from(f)),
                None => Some(dir.join(name)).filter(|p| p.exists()),
            }
        };
        let server = if verify {
            ServerCheck::Ca(
                self.cacert
                    .as_ref()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| dir.join("ca.pem")),
            )
        } else {
            ServerCheck::InsecureSkipVerify
        };
        Some(TlsOptions {
            server,
            cert: pick(&self.cert, "cert.pem"),
            key: pick(&self.key, "key.pem"),
        })
    }
}

/// The daemon connection, made on first use.
pub struct App {
    host_flag: Option<String>,
    tls: TlsFlags,
    client: Option<Client>,
}

impl App {
    pub fn new(host_flag: Option<String>, tls: TlsFlags) -> App {
        App {
            host_flag,
            tls,
            client: None,
        }
    }

    /// A negotiated client; starts wharfd when the default socket is dead
    /// and we are root.
    pub async fn client(&mut self) -> anyhow::Result<&Client> {
        if self.client.is_none() {
            let (host, explicit) = Host::resolve(self.host_flag.as_deref())?;
            let tls = match &host {
                Host::Tcp(_) => self.tls.resolve(|k| std::env::var(k).ok()),
                Host::Unix(_) => None,
            };
            let c = match Client::connect_tls(host.clone(), tls.as_ref()).await {
                Ok(c) => c,
                Err(ClientError::Connect { source, .. })
                    if !explicit
                        && rustix::process::geteuid().is_root()
                        && source.kind() != std::io::ErrorKind::PermissionDenied =>
                {
                    let Host::Unix(sock) = &host else {
                        unreachable!("the default host is a unix socket")
                    };
                    start_daemon(sock).await?;
                    Client::connect(host).await?
                }
                Err(e) => return Err(e.into()),
            };
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("set above"))
    }
}

/// `wharfd` next to this binary, else on `PATH`.
pub fn wharfd_binary() -> Option<PathBuf> {
    if let Ok(me) = std::env::current_exe()
        && let Some(dir) = me.parent()
    {
        let p = dir.join("wharfd");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("wharfd"))
            .find(|p| p.is_file())
    })
}

/// Starts wharfd in the background (its own process group, log under the
/// exec root) and waits until it answers on `sock`, at most 15 seconds.
async fn start_daemon(sock: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let Some(bin) = wharfd_binary() else {
        anyhow::bail!(
            "no wharf daemon answers at unix://{} and no wharfd binary was found next to wharf or on PATH",
            sock.display()
        );
    };
    let exec_root = sock.parent().unwrap_or(Path::new("/run/wharf"));
    std::fs::create_dir_all(exec_root)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", exec_root.display()))?;
    let log_path = exec_root.join("wharfd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", log_path.display()))?;
    eprintln!(
        "Starting the wharf daemon ({}; log: {})",
        bin.display(),
        log_path.display()
    );
    let mut child = std::process::Command::new(&bin)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::UnixStream::connect(sock).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!(
                "the wharf daemon exited at start ({status}); see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the wharf daemon did not answer within 15s; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Builds docker's `filters` JSON from `-f key=value` flags.
pub fn filters_json(filters: &[String]) -> anyhow::Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>> =
        Default::default();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value)");
        };
        m.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_owned(), true);
    }
    Ok(Some(serde_json::to_string(&m)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert_eq!(
            filters_json(&[
                "status=exited".into(),
                "label=a=b".into(),
                "status=created".into()
            ])
            .unwrap()
            .unwrap(),
            r#"{"label":{"a=b":true},"status":{"created":true,"exited":true}}"#
        );
        assert!(filters_json(&["nope".into()]).is_err());
    }

    #[test]
    fn tls_defaults_as_docker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        std::fs::write(dir.path().join("key.pem"), "x").unwrap();
        let d = dir.path().display().to_string();
        let env = |k: &str| match k {
            "DOCKER_TLS_VERIFY" => Some("1".to_owned()),
            "DOCKER_CERT_PATH" => Some(d.clone()),
            _ => None,
        };
        let o = TlsFlags::default().resolve(env).expect("DOCKER_TLS_VERIFY");
        assert_eq!(o.server, ServerCheck::Ca(dir.path().join("ca.pem")));
        assert_eq!(o.cert, Some(dir.path().join("cert.pem")));
        assert_eq!(o.key, Some(dir.path().join("key.pem")));
        assert_eq!(TlsFlags::default().resolve(|_| None), None);
        let home = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        let o = TlsFlags {
            verify: Some(true),
            cacert: Some("/x/ca.pem".into()),
            ..TlsFlags::default()
        }
        .resolve(home)
        .expect("--tlsverify");
        assert_eq!(o.server, ServerCheck::Ca("/x/ca.pem".into()));
        assert_eq!(o.cert, None, "no pair file under ~/.docker");
        // --tls alone, or DOCKER_TLS: TLS without verification, the pair
        // from the cert path when present.
        let unverified = |cert, key| {
            Some(TlsOptions {
                server: ServerCheck::InsecureSkipVerify,
                cert,
                key,
            })
        };
        let tls_only = TlsFlags {
            tls: Some(true),
            ..TlsFlags::default()
        };
        assert_eq!(tls_only.resolve(home), unverified(None, None));
        let d2 = d.clone();
        let env_tls = move |k: &str| match k {
            "DOCKER_TLS" => Some("1".to_owned()),
            "DOCKER_CERT_PATH" => Some(d2.clone()),
            _ => None,
        };
        let pair = || {
            unverified(
                Some(dir.path().join("cert.pem")),
                Some(dir.path().join("key.pem")),
            )
        };
        assert_eq!(TlsFlags::default().resolve(&env_tls), pair());
        // --tls=false wins over DOCKER_TLS.
        let no_tls = TlsFlags {
            tls: Some(false),
            ..TlsFlags::default()
        };
        assert_eq!(no_tls.resolve(&env_tls), None);
        // --tlsverify wins over --tls; an empty variable is unset.
        let both = TlsFlags {
            tls: Some(true),
            verify: Some(true),
            ..TlsFlags::default()
        };
        assert!(matches!(
            both.resolve(home),
            Some(TlsOptions {
                server: ServerCheck::Ca(_),
                ..
            })
        ));
        assert_eq!(
            TlsFlags::default().resolve(|k| (k == "DOCKER_TLS").then(String::new)),
            None
        );
        // --tlsverify=false: TLS without verification, even with
        // DOCKER_TLS_VERIFY set and with --tls=false; DOCKER_TLS_VERIFY
        // turns TLS on over --tls=false.
        let verify_off = TlsFlags {
            verify: Some(false),
            ..TlsFlags::default()
        };
        assert_eq!(verify_off.resolve(env), pair());
        assert_eq!(verify_off.resolve(home), unverified(None, None));
        let off_off = TlsFlags {
            tls: Some(false),
            verify: Some(false),
            ..TlsFlags::default()
        };
        assert_eq!(off_off.resolve(home), unverified(None, None));
        assert!(matches!(
            no_tls.resolve(env),
            Some(TlsOptions {
                server: ServerCheck::Ca(_),
                ..
            })
        ));
    }

    #[test]
    fn daemon_errors_read_as_docker() {
        let e: anyhow::Error = ClientError::Daemon {
            status: 404,
            message: "No such container: x".into(),
        }
        .into();
        assert_eq!(
            describe(&e),
            "Error response from daemon: No such container: x"
        );
    }
}
