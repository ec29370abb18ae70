//! The on-disk layout shared by both drivers (see the module docs of
//! [`super`]): version and driver files, layer directories keyed by chain
//! ID, temporary directories, container directories, parent links.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Dir, FileType, statat};

use super::{
    DriverKind, LAYOUT_VERSION, PreparedLayer, SnapshotError, SnapshotInfo, SnapshotKind, Usage,
    io_err,
};
use crate::digest::Digest;
use crate::layer::fsutil::{open_dir, remove_tree};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The driver recorded in an existing root, if any.
pub(crate) fn recorded_driver(root: &Path) -> Result<Option<DriverKind>, SnapshotError> {
    let p = root.join("driver");
    match fs::read_to_string(&p) {
        Ok(s) => Ok(Some(DriverKind::parse(&s)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &p)(e)),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn open(root: &Path, driver: DriverKind) -> Result<Store, SnapshotError> {
        fs::create_dir_all(root).map_err(io_err("create directory", root))?;
        let version = root.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == LAYOUT_VERSION => {}
            Ok(v) => {
                return Err(SnapshotError::UnsupportedVersion {
                    path: root.to_owned(),
                    found: v.trim().to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::write(&version, format!("{LAYOUT_VERSION}\n"))
                    .map_err(io_err("write", &version))?;
            }
            Err(e) => return Err(io_err("read", &version)(e)),
        }
        match recorded_driver(root)? {
            Some(d) if d != driver => {
                return Err(SnapshotError::DriverMismatch {
                    path: root.to_owned(),
                    found: d.name().to_owned(),
                    wanted: driver.name().to_owned(),
                });
            }
            Some(_) => {}
            None => {
                let p = root.join("driver");
                fs::write(&p, format!("{}\n", driver.name())).map_err(io_err("write", &p))?;
            }
        }
        let store = Store {
            root: root.to_owned(),
        };
        for d in ["snapshots", "containers"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
            // One subtree per layer or container below: let ext4 spread them
            // over its block groups (a hint; see `wharf_sys::fsflags`).
            if let Err(e) = wharf_sys::fsflags::spread_subtrees(&p) {
                tracing::debug!(dir = %p.display(), error = %e, "no top-directory flag");
            }
        }
        store.remove_dead_tmp_dirs();
        Ok(store)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain_id.hex())
    }

    pub(crate) fn container_dir(&self, key: &str) -> PathBuf {
        self.root.join("containers").join(key)
    }

    /// A new, empty, uniquely named temporary directory under `area`.
    pub(crate) fn new_tmp(&self, area: &str) -> Result<PathBuf, SnapshotError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = self
            .root
            .join(area)
            .join(format!("tmp-{}-{n}", std::process::id()));
        fs::create_dir(&p).map_err(io_err("create directory", &p))?;
        Ok(p)
    }

    /// Removes `tmp-<pid>-*` dirs whose process is gone (crashed unpacks).
    fn remove_dead_tmp_dirs(&self) {
        for area in ["snapshots", "containers"] {
            let Ok(rd) = fs::read_dir(self.root.join(area)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix("tmp-").and_then(|r| r.split('-').next()) else {
                    continue;
                };
                if Path::new("/proc").join(pid).exists() {
                    continue;
                }
                tracing::info!(path = %e.path().display(), "removing leftover snapshot temp dir");
                if let Err(err) = remove_tree(&e.path()) {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove leftover temp dir");
                }
            }
        }
    }

    pub(crate) fn read_parent(dir: &Path) -> Result<Option<Digest>, SnapshotError> {
        let p = dir.join("parent");
        match fs::read_to_string(&p) {
            Ok(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| io_err("parse", &p)(io::Error::new(io::ErrorKind::InvalidData, e))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    pub(crate) fn layer_exists(&self, chain_id: &Digest) -> bool {
        self.layer_dir(chain_id).join("diff").is_dir()
    }

    /// The chain from `top` down to the base layer (top first).
    pub(crate) fn chain(&self, top: &Digest) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        let mut cur = Some(top.clone());
        while let Some(c) = cur {
            if !self.layer_exists(&c) {
                return Err(SnapshotError::NotFound { id: c.to_string() });
            }
            cur = Self::read_parent(&self.layer_dir(&c))?;
            out.push(c);
            if out.len() > 4096 {
                return Err(io_err("walk parents of", &self.layer_dir(top))(
                    io::Error::new(io::ErrorKind::InvalidData, "parent cycle"),
                ));
            }
        }
        Ok(out)
    }

    pub(crate) fn prepare_layer(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<PreparedLayer, SnapshotError> {
        let tmp = self.new_tmp("snapshots")?;
        let prepared = PreparedLayer {
            chain_id: chain_id.clone(),
            parent: parent.cloned(),
            tmp: tmp.clone(),
            done: false,
        };
        let diff = tmp.join("diff");
        fs::create_dir(&diff).map_err(io_err("create directory", &diff))?;
        if let Some(p) = parent {
            let f = tmp.join("parent");
            fs::write(&f, p.to_string()).map_err(io_err("write", &f))?;
        }
        Ok(prepared)
    }

    /// Verifies (chain ID, parent committed), runs `finish` on the temp
    /// dir, then renames it into place.
    pub(crate) fn commit_layer(
        &self,
        mut prepared: PreparedLayer,
        diff_id: &Digest,
        finish: impl FnOnce(&Path) -> Result<(), SnapshotError>,
    ) -> Result<(), SnapshotError> {
        // Layers unpack independently (each into its own directory), so a
        // child may finish first; it may only become visible on top of a
        // committed parent, so committed chains are always complete.
        if let Some(p) = &prepared.parent
            && !self.layer_exists(p)
        {
            return Err(SnapshotError::ParentNotCommitted {
                chain_id: prepared.chain_id.clone(),
                parent: p.clone(),
            });
        }
        let actual = super::chain_id(prepared.parent.as_ref(), diff_id);
        if actual != prepared.chain_id {
            return Err(SnapshotError::ChainIdMismatch {
                expected: prepared.chain_id.clone(),
                actual,
                diff_id: diff_id.clone(),
            });
        }
        let f = prepared.tmp.join("diff-id");
        fs::write(&f, diff_id.to_string()).map_err(io_err("write", &f))?;
        finish(&prepared.tmp)?;
        // The layer's files reach the disk before its name does (see the
        // module docs of `snapshot`: one syncfs per layer, no fsync per file).
        open_dir(&prepared.tmp)
            .and_then(|d| rustix::fs::syncfs(&d).map_err(Into::into))
            .map_err(io_err("sync filesystem of", &prepared.tmp))?;
        let dest = self.layer_dir(&prepared.chain_id);
        match fs::rename(&prepared.tmp, &dest) {
            Ok(()) => {
                prepared.done = true;
                tracing::debug!(chain_id = %prepared.chain_id, "layer snapshot committed");
                Ok(())
            }
            // Committed by a concurrent pull: ours is dropped (and removed).
            Err(e) if self.layer_exists(&prepared.chain_id) => {
                tracing::debug!(chain_id = %prepared.chain_id, error = %e, "layer already committed");
                Ok(())
            }
            Err(e) => Err(io_err("rename into", &dest)(e)),
        }
    }

    pub(crate) fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut out = Vec::new();
        for (area, kind) in [
            ("snapshots", SnapshotKind::Layer),
            ("containers", SnapshotKind::Container),
        ] {
            let dir = self.root.join(area);
            for e in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
                let e = e.map_err(io_err("read directory", &dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("tmp-") {
                    continue;
                }
                let id = match kind {
                    SnapshotKind::Layer => match Digest::from_hex(&name) {
                        Ok(d) => d.to_string(),
                        Err(_) => continue,
                    },
                    SnapshotKind::Container => name,
                };
                out.push(SnapshotInfo {
                    id,
                    kind,
                    parent: Self::read_parent(&e.path())?,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Snapshots whose parent is `chain_id`.
    pub(crate) fn children(&self, chain_id: &Digest) -> Result<Vec<String>, SnapshotError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|s| s.parent.as_ref() == Some(chain_id))
            .map(|s| s.id)
            .collect())
    }

    /// Resolves an id to (kind, directory).
    pub(crate) fn locate(
        &self,
        id: &str,
    ) -> Result<(SnapshotKind, PathBuf, Option<Digest>), SnapshotError> {
        if let Ok(d) = id.parse::<Digest>() {
            let dir = self.layer_dir(&d);
            if dir.is_dir() {
                return Ok((SnapshotKind::Layer, dir, Some(d)));
            }
        } else if validate_key(id).is_ok() {
            let dir = self.container_dir(id);
            if dir.is_dir() {
                return Ok((SnapshotKind::Container, dir, None));
            }
        }
        Err(SnapshotError::NotFound { id: id.to_owned() })
    }

    /// Takes a layer or container directory out of the store after the
    /// checks: one rename to a temp name, so no half-removed snapshot is ever
    /// visible; the caller deletes the returned tree (a crash before that
    /// leaves it to [`Self::remove_dead_tmp_dirs`]).
    pub(crate) fn hide(&self, id: &str) -> Result<(SnapshotKind, PathBuf), SnapshotError> {
        let (kind, dir, chain) = self.locate(id)?;
        if let Some(c) = &chain {
            let children = self.children(c)?;
            if !children.is_empty() {
                return Err(SnapshotError::InUse {
                    id: id.to_owned(),
                    children,
                });
            }
        }
        let area = if kind == SnapshotKind::Layer {
            "snapshots"
        } else {
            "containers"
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let hidden = self
            .root
            .join(area)
            .join(format!("tmp-{}-rm{n}", std::process::id()));
        fs::rename(&dir, &hidden).map_err(io_err("rename", &dir))?;
        Ok((kind, hidden))
    }
}

/// Container keys become directory names: keep them boring.
pub(crate) fn validate_key(key: &str) -> Result<(), SnapshotError> {
    let b = key.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        && !key.starts_with("tmp-")
        && key.parse::<Digest>().is_err();
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// Allocated size and inode count of a tree, never following symlinks.
pub(crate) fn usage(path: &Path) -> Result<Usage, SnapshotError> {
    fn walk(
        dir: &rustix::fd::OwnedFd,
        seen: &mut HashSet<(u64, u64)>,
        u: &mut Usage,
    ) -> io::Result<()> {
        for ent in Dir::read_from(dir)? {
            let ent = ent?;
            let name = ent.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if seen.insert((st.st_dev, st.st_ino)) {
                u.inodes += 1;
                u.size += u64::try_from(st.st_blocks).unwrap_or(0) * 512;
            }
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    rustix::fs::OFlags::RDONLY
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::NOFOLLOW
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?;
                walk(&sub, seen, u)?;
            }
        }
        Ok(())
    }
    let fd = open_dir(path).map_err(io_err("open", path))?;
    let md = fs::metadata(path).map_err(io_err("stat", path))?;
    let mut u = Usage {
        size: md.blocks() * 512,
        inodes: 1,
    };
    let mut seen = HashSet::new();
    walk(&fd, &mut seen, &mut u).map_err(io_err("walk", path))?;
    Ok(u)
}
