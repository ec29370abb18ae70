//! `docker commit`: the container's writable layer as an image layer.
//!
//! The layer is what `docker diff` reports (the same walk of the overlay
//! upper directory against the image layers, without the init-layer
//! entries), written as a tar in the image layer format: added and
//! modified entries with their metadata (and `security.capability`, the one
//! extended attribute Docker's layers carry), deletions as `.wh.<name>`
//! whiteout files (a deleted directory's contents, opaque directories
//! included, appear as individual whiteouts). Entries are read through
//! descriptors opened with `O_NOFOLLOW` relative to their parent, so a
//! symlink in the layer is stored as a symlink and never followed.
//!
//! A running container is paused for the walk unless the client asks not to
//! (`pause=false`), as Docker does.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags, Stat};
use wharf_image::Digest;
use wharf_image::manifest::ContainerConfig as ImageContainerConfig;
use wharf_image::ops::CommitOptions;
use wharf_image::snapshot::Mount;

use super::changes::{ChangeKind, changes, layer_dirs};
use super::fsops::{lstat_at, open_dir_in};
use super::{ArchiveError, blocking};
use crate::containers::Containers;
use crate::error::EngineError;
use crate::model::Status;

/// `POST /commit` parameters.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// `repo[:tag]` to tag the new image with.
    pub reference: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Dockerfile instructions applied to the config (`--change`).
    pub changes: Vec<String>,
    /// Pause a running container during the commit (Docker's default).
    pub pause: bool,
    /// A container config sent in the body (the CLI sends none).
    pub config: Option<serde_json::Value>,
}

impl Containers {
    /// Commits the container's changes as a new image; returns its ID.
    pub async fn commit(
        self: &Arc<Self>,
        input: &str,
        req: CommitRequest,
    ) -> Result<Digest, EngineError> {
        let e = self.lookup(input)?;
        let rec = e.snapshot();
        if matches!(rec.state.status, Status::Removing | Status::Dead) {
            return Err(EngineError::RemovalInProgress { id: e.id.clone() });
        }
        let config_err = |source: serde_json::Error| EngineError::Json {
            what: "container config",
            id: rec.id.clone(),
            source,
        };
        let container_config: ImageContainerConfig = serde_json::to_value(&rec.config)
            .and_then(serde_json::from_value)
            .map_err(config_err)?;
        let config: Option<ImageContainerConfig> = match &req.config {
            Some(v) if !v.is_null() => {
                Some(serde_json::from_value(v.clone()).map_err(|source| {
                    EngineError::InvalidConfig {
                        field: "config",
                        reason: source.to_string(),
                    }
                })?)
            }
            _ => None,
        };
        let parent = if rec.image.is_empty() {
            None
        } else {
            Some(
                rec.image
                    .parse::<Digest>()
                    .map_err(|_| EngineError::NoSuchImage {
                        reference: rec.image.clone(),
                    })?,
            )
        };
        let opts = CommitOptions {
            reference: req.reference.clone().filter(|r| !r.is_empty()),
            container_config,
            config,
            changes: req.changes.clone(),
            comment: req.comment.clone(),
            author: req.author.clone(),
            created_by: rec.config.cmd.clone().unwrap_or_default().join(" "),
            container_id: rec.id.clone(),
            platform: None,
        };
        let mounts = self
            .images
            .snapshots()
            .container_mounts(&rec.snapshot_key)
            .map_err(|source| EngineError::Snapshot {
                id: rec.id.clone(),
                source,
            })?;
        let driver = self.images.snapshots().driver().to_owned();
        let tmp_dir = self.cfg.layout.data_root().to_owned();

        let pause = req.pause && rec.state.status == Status::Running;
        if pause {
            self.pause(&e.id).await?;
        }
        let id = e.id.clone();
        let layer = blocking(move || {
            let mut f = tempfile::tempfile_in(&tmp_dir).map_err(|source| ArchiveError::Root {
                container: id.clone(),
                what: "create a temporary file for the layer",
                source,
            })?;
            write_layer(&id, &driver, &mounts, &mut f)?;
            f.rewind().map_err(|source| ArchiveError::Root {
                container: id.clone(),
                what: "rewind the layer",
                source,
            })?;
            Ok(f)
        })
        .await;
        if pause && let Err(err) = self.unpause(&e.id).await {
            tracing::warn!(container_id = %e.id, error = %err.full_message(), "cannot unpause after commit");
        }
        let layer = layer?;

        let images = wharf_image::ops::Images::new(
            self.images.content().clone(),
            self.images.snapshots().clone(),
            self.images.store().clone(),
        );
        let image_id =
            tokio::task::spawn_blocking(move || images.commit(parent.as_ref(), layer, &opts))
                .await
                .map_err(|source| EngineError::Task {
                    what: "commit",
                    source,
                })??;
        let rec = e.snapshot();
        self.event(
            "commit",
            &rec,
            &[
                ("comment", req.comment.unwrap_or_default()),
                ("imageID", image_id.to_string()),
                ("imageRef", req.reference.unwrap_or_default()),
            ],
        );
        Ok(image_id)
    }
}

/// Writes the layer tar of the container's changes to `w`.
pub(super) fn write_layer(
    container: &str,
    driver: &str,
    mounts: &[Mount],
    w: &mut impl Write,
) -> Result<(), ArchiveError> {
    let list = changes(container, driver, mounts)?;
    let (upper, _) = layer_dirs(container, driver, mounts)?;
    let root_err = |what, source| ArchiveError::Root {
        container: container.to_owned(),
        what,
        source,
    };
    let upper_fd = rustix::fs::open(
        Path::new(&upper),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| root_err("open writable layer", e.into()))?;
    let mut t = LayerTar {
        b: tar::Builder::new(w),
        links: HashMap::new(),
    };
    for c in &list {
        let comps: Vec<OsString> = c
            .path
            .trim_start_matches('/')
            .split('/')
            .map(OsString::from)
            .collect();
        let Some((name, parent)) = comps.split_last() else {
            continue;
        };
        let r = if c.kind == ChangeKind::Deleted {
            let mut wh = parent.to_vec();
            let mut n = OsString::from(".wh.");
            n.push(name);
            wh.push(n);
            t.whiteout(&tar_name(&wh))
        } else {
            match open_dir_in(&upper_fd, parent) {
                Ok(dir) => t.entry(&dir, name, &tar_name(&comps)),
                Err(e) => Err(e),
            }
        };
        match r {
            Ok(()) => {}
            // Changed under us (a container not paused): skip the entry.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ELOOP) | Some(libc::ENOTDIR)
                ) => {}
            Err(e) => {
                return Err(ArchiveError::Io {
                    op: "read",
                    container: container.to_owned(),
                    path: c.path.clone(),
                    source: e,
                });
            }
        }
    }
    t.b.into_inner()
        .and_then(|w| w.flush())
        .map_err(|e| root_err("write the layer", e))
}

fn tar_name(comps: &[OsString]) -> String {
    let parts: Vec<String> = comps
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

struct LayerTar<W: Write> {
    b: tar::Builder<W>,
    /// First name of each multiply-linked file written, by (dev, ino).
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> LayerTar<W> {
    fn header(st: &Stat, typ: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(typ);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn whiteout(&mut self, name: &str) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        self.b.append_data(&mut h, name, io::empty())
    }

    /// `security.capability` of an open file, as a PAX record.
    fn capability(&mut self, fd: &OwnedFd) -> io::Result<()> {
        let mut buf = [0u8; 64];
        match rustix::fs::fgetxattr(fd, "security.capability", &mut buf) {
            Ok(n) => self.b.append_pax_extensions([(
                "SCHILY.xattr.security.capability",
                &buf[..n.min(buf.len())],
            )]),
            Err(_) => Ok(()),
        }
    }

    /// One entry (directories without their contents: those are entries
    /// of their own in the change list).
    fn entry(&mut self, dir: &OwnedFd, name: &OsStr, tar_name: &str) -> io::Result<()> {
        let st = lstat_at(dir, name)?.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let mut h = Self::header(&st, tar::EntryType::Directory);
                self.b
                    .append_data(&mut h, format!("{tar_name}/"), io::empty())
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let mut h = Self::header(&st, tar::EntryType::Link);
                        let first = first.clone();
                        return self.b.append_link(&mut h, tar_name, first);
                    }
                    self.links.insert(key, tar_name.to_owned());
                }
                let fd = rustix::fs::openat(
                    dir.as_fd(),
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.capability(&fd)?;
                let st = rustix::fs::fstat(&fd)?;
                let size = u64::try_from(st.st_size).unwrap_or(0);
                let mut h = Self::header(&st, tar::EntryType::Regular);
                h.set_size(size);
                let f = File::from(fd);
                // A file that changes size meanwhile (an unpaused container)
                // fails the write instead of corrupting the stream.
                self.b
                    .append_data(&mut h, tar_name, io::Read::take(f, size))
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir.as_fd(), name, Vec::new())?;
                let mut h = Self::header(&st, tar::EntryType::Symlink);
                self.b.append_link(
                    &mut h,
                    tar_name,
                    Path::new(OsStr::from_bytes(target.as_bytes())),
                )
            }
            t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let typ = match t {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = Self::header(&st, typ);
                if typ != tar::EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.b.append_data(&mut h, tar_name, io::empty())
            }
            // Sockets have no tar form (Docker skips them too).
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfile(p: &Path, body: &[u8]) {
        std::fs::write(p, body).unwrap();
    }

    #[test]
    fn layer_tar_of_an_overlay_upper_dir() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        for p in [&lower, &upper] {
            std::fs::create_dir_all(p.join("etc")).unwrap();
        }
        mkfile(&lower.join("etc/keep"), b"k");
        mkfile(&lower.join("etc/gone"), b"g");
        std::fs::create_dir_all(lower.join("old")).unwrap();
        mkfile(&lower.join("old/x"), b"x");
        // Upper: a new file, a modified one, a hard link pair, a symlink
        // to the outside, init-layer files, and two whiteouts.
        mkfile(&upper.join("etc/keep"), b"changed");
        mkfile(&upper.join("etc/hostname"), b"init layer");
        mkfile(&upper.join("new"), b"new file");
        std::fs::hard_link(upper.join("new"), upper.join("new2")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", upper.join("link")).unwrap();
        for gone in ["etc/gone", "old"] {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                upper.join(gone),
                FileType::CharacterDevice,
                Mode::from_raw_mode(0),
                0,
            )
            .unwrap();
        }
        let mounts = vec![Mount {
            typ: "overlay".into(),
            source: "overlay".into(),
            target: None,
            options: vec![
                format!("lowerdir={}", lower.display()),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", d.path().join("work").display()),
            ],
        }];
        let mut out = Vec::new();
        write_layer("c1", "overlay", &mounts, &mut out).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for ent in ar.entries().unwrap() {
            let mut ent = ent.unwrap();
            let path = ent.path().unwrap().to_string_lossy().into_owned();
            let mut body = String::new();
            io::Read::read_to_string(&mut ent, &mut body).unwrap();
            let kind = match ent.header().entry_type() {
                tar::EntryType::Link => format!(
                    "link->{}",
                    ent.link_name().unwrap().unwrap().to_string_lossy()
                ),
                tar::EntryType::Symlink => format!(
                    "sym->{}",
                    ent.link_name().unwrap().unwrap().to_string_lossy()
                ),
                _ => body,
            };
            seen.push(format!("{path} {kind}"));
        }
        assert_eq!(
            seen,
            [
                "etc/ ",
                "etc/.wh.gone ",
                "etc/keep changed",
                "link sym->/etc/shadow",
                "new new file",
                "new2 link->new",
                ".wh.old ",
            ]
        );
    }
}
