//! The copying driver: a container's root is a plain directory holding a
//! full copy of its layer chain, merged base first with overlay semantics
//! (a 0/0 character device deletes what is below, an opaque directory hides
//! the lower directory's contents). For hosts where overlayfs cannot be used
//! (no privileges, an unsupported backing filesystem). Slow and space-hungry
//! by design; layers are stored exactly as for the overlay driver.
//!
//! Copies go fd to fd and never follow symlinks: regular files (with
//! `copy_file_range` via `std::io::copy`), hardlinks within a layer,
//! symlinks, devices, fifos; owners, modes, times, and xattrs of files and
//! directories (except `trusted.overlay.*`).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid, XattrFlags,
    chmodat, chownat, fchmod, fchown, fgetxattr, flistxattr, fsetxattr, futimens, linkat, mkdirat,
    mknodat, openat, readlinkat, statat, symlinkat, utimensat,
};

use super::store::{Store, usage, validate_key};
use super::{
    Detached, DriverKind, Mount, PreparedLayer, SnapshotError, SnapshotInfo, Snapshotter, Usage,
    io_err,
};
use crate::digest::Digest;
use crate::layer::OVERLAY_OPAQUE_XATTR;
use crate::layer::fsutil::{clear_dir, join, open_dir, open_dir_in, remove_all_at, remove_tree};

/// Copying snapshotter. See [`super`] for the layout.
#[derive(Debug, Clone)]
pub struct CopySnapshotter {
    store: Store,
}

impl CopySnapshotter {
    /// Opens (creating) a copy snapshot root.
    pub fn open(root: &Path) -> Result<CopySnapshotter, SnapshotError> {
        Ok(CopySnapshotter {
            store: Store::open(root, DriverKind::Copy)?,
        })
    }

    fn mounts(&self, key: &str) -> Vec<Mount> {
        vec![Mount {
            typ: "bind".into(),
            source: self
                .store
                .container_dir(key)
                .join("rootfs")
                .display()
                .to_string(),
            target: None,
            options: vec!["rbind".into(), "rw".into()],
        }]
    }
}

impl Snapshotter for CopySnapshotter {
    fn driver(&self) -> &'static str {
        "copy"
    }

    fn root(&self) -> &Path {
        self.store.root()
    }

    fn prepare_layer(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<PreparedLayer, SnapshotError> {
        self.store.prepare_layer(chain_id, parent)
    }

    fn commit_layer(&self, prepared: PreparedLayer, diff_id: &Digest) -> Result<(), SnapshotError> {
        self.store.commit_layer(prepared, diff_id, |_| Ok(()))
    }

    fn exists(&self, chain_id: &Digest) -> bool {
        self.store.layer_exists(chain_id)
    }

    fn prepare_container(
        &self,
        key: &str,
        parent: Option<&Digest>,
    ) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        let dest = self.store.container_dir(key);
        if dest.exists() {
            return Err(SnapshotError::AlreadyExists { id: key.to_owned() });
        }
        let chain = match parent {
            Some(p) => self.store.chain(p)?,
            None => Vec::new(),
        };
        let tmp = self.store.new_tmp("containers")?;
        let result = (|| {
            let rootfs = tmp.join("rootfs");
            fs::create_dir(&rootfs).map_err(io_err("create directory", &rootfs))?;
            let dst = open_dir(&rootfs).map_err(io_err("open", &rootfs))?;
            for layer in chain.iter().rev() {
                let diff = self.store.layer_dir(layer).join("diff");
                let src = open_dir(&diff).map_err(io_err("open", &diff))?;
                merge_layer(&src, &dst).map_err(io_err("copy layer into", &rootfs))?;
            }
            if let Some(p) = parent {
                let f = tmp.join("parent");
                fs::write(&f, p.to_string()).map_err(io_err("write", &f))?;
            }
            fs::rename(&tmp, &dest).map_err(|e| {
                if dest.exists() {
                    SnapshotError::AlreadyExists { id: key.to_owned() }
                } else {
                    io_err("rename into", &dest)(e)
                }
            })
        })();
        if let Err(e) = result {
            let _ = remove_tree(&tmp);
            return Err(e);
        }
        Ok(self.mounts(key))
    }

    fn container_mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        if !self.store.container_dir(key).is_dir() {
            return Err(SnapshotError::NotFound { id: key.to_owned() });
        }
        Ok(self.mounts(key))
    }

    fn detach(&self, id: &str) -> Result<Detached, SnapshotError> {
        let (_, path) = self.store.hide(id)?;
        Ok(Detached { path })
    }

    fn usage(&self, id: &str) -> Result<Usage, SnapshotError> {
        let (kind, dir, _) = self.store.locate(id)?;
        match kind {
            super::SnapshotKind::Layer => usage(&dir.join("diff")),
            super::SnapshotKind::Container => usage(&dir.join("rootfs")),
        }
    }

    fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        self.store.list()
    }
}

/// Merges one layer's diff tree onto `dst` with overlay semantics.
fn merge_layer(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let st = rustix::fs::fstat(src)?;
    let mut links = HashMap::new();
    let mut ctx = Merge {
        dst_root: dst,
        links: &mut links,
    };
    ctx.merge_dir(src, dst, &mut Vec::new())?;
    copy_owner_mode_xattrs(src, dst, &st)?;
    futimens(dst, &times(&st))?;
    Ok(())
}

struct Merge<'a> {
    dst_root: &'a OwnedFd,
    /// (dev, ino) of a multiply-linked source file → where its copy is.
    links: &'a mut HashMap<(u64, u64), Vec<OsString>>,
}

fn open_sub<Fd: AsFd>(dir: Fd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl Merge<'_> {
    fn merge_dir(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        rel: &mut Vec<OsString>,
    ) -> io::Result<()> {
        let mut names = Vec::new();
        for ent in Dir::read_from(src)? {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_owned());
            }
        }
        for name in names {
            let st = statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            let ft = FileType::from_raw_mode(st.st_mode);
            let existing = statat(dst, &name, AtFlags::SYMLINK_NOFOLLOW).ok();
            if ft == FileType::CharacterDevice && st.st_rdev == 0 {
                // Whiteout: delete what the lower layers put here.
                remove_all_at(dst, &name)?;
                continue;
            }
            if ft == FileType::Directory {
                let s = open_sub(src, &name)?;
                let existing_dir = existing
                    .is_some_and(|e| FileType::from_raw_mode(e.st_mode) == FileType::Directory);
                if existing_dir {
                    if is_opaque(&s) {
                        clear_dir(open_sub(dst, &name)?)?;
                    }
                } else {
                    if existing.is_some() {
                        remove_all_at(dst, &name)?;
                    }
                    mkdirat(dst, &name, Mode::from_raw_mode(0o700))?;
                }
                let d = open_sub(dst, &name)?;
                rel.push(name.clone());
                self.merge_dir(&s, &d, rel)?;
                rel.pop();
                copy_owner_mode_xattrs(&s, &d, &st)?;
                futimens(&d, &times(&st))?;
                continue;
            }
            if existing.is_some() {
                remove_all_at(dst, &name)?;
            }
            match ft {
                FileType::RegularFile => self.copy_file(src, dst, &name, &st, rel)?,
                FileType::Symlink => {
                    let target = readlinkat(src, &name, Vec::new())?;
                    symlinkat(target.as_c_str(), dst, &name)?;
                    chownat(
                        dst,
                        &name,
                        Some(Uid::from_raw(st.st_uid)),
                        Some(Gid::from_raw(st.st_gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                    utimensat(dst, &name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
                }
                _ => {
                    mknodat(dst, &name, ft, Mode::from_raw_mode(0o600), st.st_rdev)?;
                    chownat(
                        dst,
                        &name,
                        Some(Uid::from_raw(st.st_uid)),
                        Some(Gid::from_raw(st.st_gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                    // Just created by us: not a symlink, so this cannot follow one.
                    chmodat(
                        dst,
                        &name,
                        Mode::from_raw_mode(st.st_mode & 0o7777),
                        AtFlags::empty(),
                    )?;
                    utimensat(dst, &name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
                }
            }
        }
        Ok(())
    }

    fn copy_file(
        &mut self,
        src: &OwnedFd,
        dst: &OwnedFd,
        name: &OsStr,
        st: &Stat,
        rel: &[OsString],
    ) -> io::Result<()> {
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key)
                && let Some((fname, fparents)) = first.split_last()
            {
                let fparent = open_dir_in(self.dst_root, &join(fparents))?;
                linkat(&fparent, fname, dst, name, AtFlags::empty())?;
                return Ok(());
            }
            let mut p = rel.to_vec();
            p.push(name.to_owned());
            self.links.insert(key, p);
        }
        let s = File::from(openat(
            src,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        let mut d = File::from(openat(
            dst,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?);
        io::copy(&mut &s, &mut d)?;
        copy_owner_mode_xattrs(&s, &d, st)?;
        futimens(&d, &times(st))?;
        Ok(())
    }
}

fn is_opaque<Fd: AsFd>(fd: Fd) -> bool {
    let mut buf = [0u8; 8];
    matches!(fgetxattr(fd, OVERLAY_OPAQUE_XATTR, &mut buf[..]), Ok(1) if buf[0] == b'y')
}

fn times(st: &Stat) -> Timestamps {
    let ts = |s: u64, ns: u64| Timespec {
        tv_sec: i64::try_from(s).unwrap_or(0),
        tv_nsec: i64::try_from(ns).unwrap_or(0),
    };
    #[allow(clippy::useless_conversion)] // field types differ between architectures
    Timestamps {
        last_access: ts(
            u64::try_from(st.st_atime).unwrap_or(0),
            u64::try_from(st.st_atime_nsec).unwrap_or(0),
        ),
        last_modification: ts(
            u64::try_from(st.st_mtime).unwrap_or(0),
            u64::try_from(st.st_mtime_nsec).unwrap_or(0),
        ),
    }
}

/// Owner, then mode (chown clears setuid), then xattrs (chown clears
/// security.capability), from an open source to an open destination.
fn copy_owner_mode_xattrs<S: AsFd, D: AsFd>(src: S, dst: D, st: &Stat) -> io::Result<()> {
    let (src, dst) = (src.as_fd(), dst.as_fd());
    fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    let mut list = vec![0u8; 64 * 1024];
    let n = match flistxattr(src, &mut list[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let name = OsStr::from_bytes(name);
        let len = match fgetxattr(src, name, &mut value[..]) {
            Ok(len) => len,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match fsetxattr(dst, name, &value[..len], XattrFlags::empty()) {
            Ok(()) => {}
            Err(e @ (rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM)) => {
                tracing::warn!(xattr = %name.to_string_lossy(), error = %e, "skipping xattr the filesystem refused");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
