//! Files of a container through the API: `docker cp` (stat, read a path as a
//! tar, extract a tar into a directory), `docker export` (the whole root
//! filesystem as a tar), `docker diff` (changes in the writable layer) and
//! `docker commit` (those changes as an image layer).
//!
//! # Which root
//! - A **running** (or paused) container is reached through
//!   `/proc/<pid>/root`: the root as its processes see it, with every bind
//!   mount and tmpfs of the container in place (Docker mounts volumes for
//!   `cp` the same way).
//! - A **stopped** container gets its overlay mounted on demand at
//!   `containers/<id>/rootfs`, with its bind mounts (`Binds`, `Mounts` of
//!   type bind) mounted on top, under the container's operation lock (so no
//!   start or remove runs meanwhile); everything is detached afterwards.
//! - `export` and `changes` read the merged overlay and the writable layer
//!   only, never volumes (as Docker).
//!
//! # Containment
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` on a descriptor of the container's root, and
//! every further step is relative to an open directory descriptor with
//! `O_NOFOLLOW`: a symlink in the container (to `/`, to `../../..`, swapped
//! in while we walk) resolves inside the container or not at all; nothing
//! on the host outside the root is ever read or written.

mod changes;
mod commit;
mod fsops;
mod tar_in;
mod tar_out;

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::{Mode, OFlags};
use tokio::sync::{mpsc, oneshot};

pub use changes::{Change, ChangeKind};
pub use commit::CommitRequest;
pub use tar_in::PutOptions;

use super::{Containers, Entry};
use crate::error::{EngineError, ErrorKind};
use crate::model::Container;

/// Why a `cp`, `export` or `diff` failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The path does not exist in the container (Docker's wording).
    #[error("Could not find the file {path} in container {container}")]
    NotFound { container: String, path: String },
    /// `PUT` to something that is not a directory (Docker's wording).
    #[error("extraction point is not a directory")]
    NotADirectory { path: String },
    /// `PUT` into a read-only root filesystem.
    #[error("container rootfs is marked read-only")]
    ReadOnly { container: String },
    /// An archive entry would land outside the extraction point.
    #[error("archive entry {entry:?} would escape the extraction point {dest}")]
    Breakout { entry: String, dest: String },
    /// `noOverwriteDirNonDir`: a directory would replace a file or the reverse.
    #[error("cannot overwrite {existing} {path:?} with {incoming} {entry:?}")]
    Overwrite {
        existing: &'static str,
        incoming: &'static str,
        path: String,
        entry: String,
    },
    /// The uploaded archive is not a readable tar stream.
    #[error("reading the uploaded archive")]
    Tar {
        #[source]
        source: io::Error,
    },
    /// A filesystem operation inside the container's root failed.
    #[error("{op} {path} in container {container}")]
    Io {
        op: &'static str,
        container: String,
        path: String,
        #[source]
        source: io::Error,
    },
    /// Preparing access to the container's root failed.
    #[error("container {container}: {what}")]
    Root {
        container: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// `changes` needs a writable layer to compare (the overlay driver).
    #[error("changes of container {container} need the overlay driver (this daemon uses {driver})")]
    ChangesUnsupported { container: String, driver: String },
}

impl ArchiveError {
    /// The kind of failure, for the API's status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::NotFound { .. } => ErrorKind::NotFound,
            ArchiveError::NotADirectory { .. }
            | ArchiveError::Breakout { .. }
            | ArchiveError::Overwrite { .. }
            | ArchiveError::Tar { .. } => ErrorKind::InvalidArgument,
            ArchiveError::ReadOnly { .. } => ErrorKind::Forbidden,
            ArchiveError::Io { source, .. } => match source.raw_os_error() {
                Some(libc::EROFS) => ErrorKind::Forbidden,
                Some(libc::ENOENT) => ErrorKind::NotFound,
                Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::EXDEV) => {
                    ErrorKind::InvalidArgument
                }
                _ => ErrorKind::Internal,
            },
            ArchiveError::Root { .. } => ErrorKind::Internal,
            ArchiveError::ChangesUnsupported { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// What `HEAD /containers/{id}/archive` reports (the
/// `X-Docker-Container-Path-Stat` header, base64 JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits high, permissions low).
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink: the fully resolved path inside the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// A chunked byte stream (a tar being produced).
pub type ByteStream = mpsc::Receiver<Result<Bytes, io::Error>>;

/// A container path, cleaned lexically (`..` cannot climb above `/`).
#[derive(Debug, Clone)]
pub(crate) struct CPath {
    /// The components below `/`.
    pub comps: Vec<OsString>,
    /// The path ended in `/` or `/.`: follow a final symlink.
    pub follow: bool,
    /// As the client wrote it (for messages).
    pub raw: String,
}

impl CPath {
    pub fn parse(raw: &str) -> CPath {
        let mut comps: Vec<OsString> = Vec::new();
        for c in Path::new(raw).components() {
            match c {
                Component::Normal(n) => comps.push(n.to_owned()),
                Component::ParentDir => {
                    comps.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        CPath {
            comps,
            follow: raw.ends_with('/') || raw.ends_with("/.") || raw == ".",
            raw: raw.to_owned(),
        }
    }

    /// The name the path's tar entries are rebased on.
    pub fn base_name(&self) -> String {
        if self.raw.ends_with("/.") {
            return ".".into();
        }
        self.comps
            .last()
            .map_or_else(|| "/".into(), |n| n.to_string_lossy().into_owned())
    }
}

/// An open container root, and what keeps it valid.
pub(crate) struct Root<'a> {
    pub fd: OwnedFd,
    /// The root as a path (for reading `/etc/passwd`).
    pub path: PathBuf,
    /// Set when the root was mounted for this operation.
    mounted: Option<PathBuf>,
    _op: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl Drop for Root<'_> {
    fn drop(&mut self) {
        if let Some(p) = &self.mounted
            && let Err(e) = wharf_image::snapshot::unmount(p)
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot detach on-demand root mount");
        }
    }
}

fn open_dir_path(p: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl Containers {
    /// Opens the container's root: through its init while it runs, else by
    /// mounting it (and its bind mounts) under the operation lock. With
    /// `volumes: false` the plain root filesystem is wanted (export):
    /// a running container's overlay is read at its host mount point.
    /// Blocking: call from a blocking thread.
    pub(crate) fn open_root<'a>(
        &self,
        e: &'a Entry,
        volumes: bool,
    ) -> Result<Root<'a>, ArchiveError> {
        let root_err = |what, source| ArchiveError::Root {
            container: e.id.clone(),
            what,
            source,
        };
        for _ in 0..3 {
            let (running, pid) = e.with(|c| (c.state.is_running() && c.state.pid > 0, c.state.pid));
            if running && e.shim().is_some() {
                let path = if volumes {
                    PathBuf::from(format!("/proc/{pid}/root"))
                } else {
                    self.cfg.layout.container_rootfs(&e.id)
                };
                if let Ok(fd) = open_dir_path(&path) {
                    // The process may have exited (and its pid been reused)
                    // between reading the pid and opening its root.
                    if e.with(|c| c.state.is_running() && c.state.pid == pid) {
                        return Ok(Root {
                            fd,
                            path,
                            mounted: None,
                            _op: None,
                        });
                    }
                }
            }
            let guard = e.op.blocking_lock();
            if e.with(|c| c.state.is_running() && c.state.pid > 0) && e.shim().is_some() {
                continue; // started meanwhile: use the running root
            }
            let rec = e.snapshot();
            let target = self.cfg.layout.container_rootfs(&e.id);
            self.mount_rootfs(&rec).map_err(|err| {
                root_err(
                    "mount root filesystem",
                    io::Error::other(err.full_message()),
                )
            })?;
            let fd = match open_dir_path(&target) {
                Ok(fd) => fd,
                Err(s) => {
                    let _ = wharf_image::snapshot::unmount(&target);
                    return Err(root_err("open root filesystem", s));
                }
            };
            // From here on, dropping `root` detaches the mount (and the bind
            // mounts below it).
            let root = Root {
                fd,
                path: target.clone(),
                mounted: Some(target),
                _op: Some(guard),
            };
            if volumes {
                fsops::mount_binds(&root.fd, &rec).map_err(|s| root_err("mount bind mounts", s))?;
            }
            return Ok(root);
        }
        Err(root_err(
            "open root",
            io::Error::other("the container kept changing state"),
        ))
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn archive_stat(
        self: &Arc<Self>,
        input: &str,
        path: &str,
    ) -> Result<PathStat, EngineError> {
        let e = self.lookup(input)?;
        let this = self.clone();
        let p = CPath::parse(path);
        let name = input.to_owned();
        blocking(move || {
            let root = this.open_root(&e, true)?;
            tar_out::stat(&root, &p, &e.id).map_err(|err| as_named(err, &name))
        })
        .await
    }

    /// `GET /containers/{id}/archive?path=`: the path's stat and a tar of it
    /// (entries rebased on the path's base name, as Docker).
    pub async fn archive_get(
        self: &Arc<Self>,
        input: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream), EngineError> {
        let e = self.lookup(input)?;
        let this = self.clone();
        let p = CPath::parse(path);
        let name = input.to_owned();
        let (stat_tx, stat_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(8);
        std::thread::Builder::new()
            .name("archive-get".into())
            .spawn(move || {
                let root = match this.open_root(&e, true) {
                    Ok(r) => r,
                    Err(err) => {
                        let _ = stat_tx.send(Err(err));
                        return;
                    }
                };
                match tar_out::stat(&root, &p, &e.id).map_err(|err| as_named(err, &name)) {
                    Ok(st) => {
                        let _ = stat_tx.send(Ok(st));
                    }
                    Err(err) => {
                        let _ = stat_tx.send(Err(err));
                        return;
                    }
                }
                let mut w = tar_out::ChannelWriter::new(tx.clone());
                if let Err(err) = tar_out::write_path(&root, &p, &mut w) {
                    tracing::warn!(container_id = %e.id, path = %p.raw, error = %err, "archive stream failed");
                    let _ = tx.blocking_send(Err(io::Error::other(err.to_string())));
                }
            })
            .map_err(|source| EngineError::Io {
                op: "spawn archive thread for",
                path: path.into(),
                source,
            })?;
        let stat = stat_rx
            .await
            .map_err(|_| EngineError::Io {
                op: "archive",
                path: path.into(),
                source: io::Error::other("archive thread ended early"),
            })?
            .map_err(EngineError::from)?;
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive?path=`: extracts `body` (a tar) into
    /// the directory at `path`.
    pub async fn archive_put(
        self: &Arc<Self>,
        input: &str,
        path: &str,
        opts: PutOptions,
        body: Box<dyn Read + Send>,
    ) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let this = self.clone();
        let p = CPath::parse(path);
        let name = input.to_owned();
        blocking(move || {
            let rec = e.snapshot();
            let root = this.open_root(&e, true)?;
            tar_in::extract(&root, &rec, &p, &opts, body).map_err(|err| as_named(err, &name))
        })
        .await?;
        let rec = self.lookup(input)?.snapshot();
        self.event("extract-to-dir", &rec, &[("path", path.to_owned())]);
        Ok(())
    }

    /// `GET /containers/{id}/export`: the root filesystem as a tar.
    pub async fn export(self: &Arc<Self>, input: &str) -> Result<ByteStream, EngineError> {
        let e = self.lookup(input)?;
        let this = self.clone();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(8);
        let rec = e.snapshot();
        std::thread::Builder::new()
            .name("export".into())
            .spawn(move || {
                let root = match this.open_root(&e, false) {
                    Ok(r) => r,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut w = tar_out::ChannelWriter::new(tx.clone());
                if let Err(err) = tar_out::write_tree(&root, &mut w) {
                    tracing::warn!(container_id = %e.id, error = %err, "export stream failed");
                    let _ = tx.blocking_send(Err(io::Error::other(err.to_string())));
                }
            })
            .map_err(|source| EngineError::Io {
                op: "spawn export thread for",
                path: rec.id.clone().into(),
                source,
            })?;
        ready_rx
            .await
            .map_err(|_| EngineError::Io {
                op: "export",
                path: rec.id.clone().into(),
                source: io::Error::other("export thread ended early"),
            })?
            .map_err(EngineError::from)?;
        self.event("export", &rec, &[]);
        Ok(rx)
    }

    /// `GET /containers/{id}/changes`: what the container changed in its
    /// writable layer, sorted by path.
    pub async fn changes(self: &Arc<Self>, input: &str) -> Result<Vec<Change>, EngineError> {
        let e = self.lookup(input)?;
        let rec: Container = e.snapshot();
        let mounts = self.rootfs_mounts(&rec)?;
        let driver = self.images.snapshots().driver().to_owned();
        blocking(move || changes::changes(&rec.id, &driver, &mounts)).await
    }
}

/// Docker names the container as the client did in "Could not find the file".
fn as_named(err: ArchiveError, input: &str) -> ArchiveError {
    match err {
        ArchiveError::NotFound { path, .. } => ArchiveError::NotFound {
            container: input.to_owned(),
            path,
        },
        other => other,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, EngineError> {
    super::on_blocking_thread("archive", move || f().map_err(EngineError::from)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_lexically() {
        let p = CPath::parse("/../../etc/./x/../passwd");
        assert_eq!(p.comps, ["etc", "passwd"]);
        assert!(!p.follow);
        assert_eq!(p.base_name(), "passwd");
        let p = CPath::parse("/tmp/dir/.");
        assert!(p.follow);
        assert_eq!(p.base_name(), ".");
        let p = CPath::parse("/");
        assert!(p.comps.is_empty());
        assert_eq!(p.base_name(), "/");
        assert!(CPath::parse("/link/").follow);
    }

    #[test]
    fn kinds() {
        let e = ArchiveError::NotFound {
            container: "c".into(),
            path: "/x".into(),
        };
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "Could not find the file /x in container c");
        let e = ArchiveError::Io {
            op: "create",
            container: "c".into(),
            path: "/x".into(),
            source: io::Error::from_raw_os_error(libc::EROFS),
        };
        assert_eq!(e.kind(), ErrorKind::Forbidden);
    }
}
