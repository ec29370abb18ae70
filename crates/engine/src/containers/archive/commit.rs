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

use std::ffi::OsString;
use std::io::{self, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};
use wharf_image::Digest;
use wharf_image::manifest::ContainerConfig as ImageContainerConfig;
use wharf_image::ops::CommitOptions;
use wharf_image::snapshot::Mount;

use super::changes::{ChangeKind, changes, layer_dirs};
use super::fsops::{lstat_at, open_dir_in};
use super::tar_out::Tar;
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
        let mounts = self.rootfs_mounts(&rec)?;
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
    let mut t = Tar::layer(w);
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
            open_dir_in(&upper_fd, parent).and_then(|dir| {
                let st = lstat_at(&dir, name)?
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
                t.entry(&dir, name, &st, &tar_name(&comps))
            })
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
    t.finish().map_err(|e| root_err("write the layer", e))
}

fn tar_name(comps: &[OsString]) -> String {
    let parts: Vec<String> = comps
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::FileType;

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
