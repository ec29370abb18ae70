//! Process-level resources of the daemon: the data-root lock (one daemon
//! per data root), the pid file, and the API listeners (`-H`).

use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustix::fs::{FlockOperation, flock};

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DataRootLock {
    _file: File,
}

/// Takes the exclusive lock on `<data-root>/wharfd.lock`; fails at once if
/// another daemon holds it.
pub fn lock_data_root(path: &Path) -> anyhow::Result<DataRootLock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data root {}", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DataRootLock { _file: f }),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(
            "another wharfd is already running with this data root (lock {} is held)",
            path.display()
        ),
        Err(e) => {
            Err(std::io::Error::from(e)).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// The pid file, removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn write(path: &Path) -> anyhow::Result<PidFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A parsed `-H` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

/// Parses `unix:///path`, `tcp://host:port`, `fd://` (refused).
pub fn parse_host(h: &str) -> anyhow::Result<Host> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {h:?}: empty socket path");
        }
        return Ok(Host::Unix(p.into()));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        let a = if a.starts_with(':') {
            format!("0.0.0.0{a}")
        } else {
            a.to_owned()
        };
        if !a.contains(':') {
            bail!("invalid host {h:?}: tcp addresses need a port (tcp://host:2376)");
        }
        return Ok(Host::Tcp(a));
    }
    if h.starts_with('/') {
        return Ok(Host::Unix(h.into()));
    }
    bail!("invalid host {h:?}: use unix:///path or tcp://host:port")
}

/// The gid of `name` from `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// Binds a unix socket with mode 0660, owned by root and `group` (the
/// `docker` group by default when it exists). A stale socket file from a
/// previous daemon is replaced (the data-root lock proves it is stale).
pub fn bind_unix(path: &Path, group: Option<&str>) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot remove old socket {}", path.display()));
        }
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    let gid = match group {
        Some(g) => Some(group_id(g).with_context(|| format!("group {g:?} not found"))?),
        None => group_id("docker"),
    };
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, Some(0), Some(gid))
            .with_context(|| format!("cannot chown {} to group {gid}", path.display()))?;
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_lock() {
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2376").unwrap(),
            Host::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            parse_host("tcp://:2375").unwrap(),
            Host::Tcp("0.0.0.0:2375".into())
        );
        assert!(parse_host("tcp://host").is_err());
        assert!(parse_host("fd://").is_err());
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("wharfd.lock");
        let held = lock_data_root(&lock).unwrap();
        let err = lock_data_root(&lock).unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        drop(held);
        lock_data_root(&lock).unwrap();
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-wharf"), None);
    }
}
