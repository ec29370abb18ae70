//! Writing into a container root: a tar extracted into a directory
//! (`docker cp` to a container, `PUT /containers/{id}/archive`).
//!
//! For each entry:
//! 1. clean its name lexically; a name climbing above the extraction point
//!    is refused ([`ArchiveError::Breakout`]);
//! 2. open (creating 0755 as needed) its parent with `openat2(RESOLVE_IN_ROOT)`
//!    from the container's root, so a symlink on the way resolves inside
//!    the container;
//! 3. remove what is at the name unless both are directories
//!    (`noOverwriteDirNonDir` refuses a directory/non-directory swap);
//! 4. create it relative to the parent descriptor (`O_EXCL|O_NOFOLLOW` for
//!    files), set owner then mode on the open descriptor (never through a
//!    name a container process could swap for a symlink), then times;
//!    directory times last.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, fchmod, fchown, mkdirat,
    mknodat, openat, symlinkat, utimensat,
};

use super::fsops::{lstat_at, mkdir_all_in, open_dir_in, open_in, resolve};
use super::{ArchiveError, CPath, Root};
use crate::model::Container;

/// `PUT` query options.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Give every extracted file the container user's uid/gid (`cp -a`).
    pub copy_uid_gid: bool,
}

struct Ctx<'r> {
    root: &'r OwnedFd,
    container: String,
    dest: Vec<OsString>,
    dest_raw: String,
    owner: Option<(u32, u32)>,
    opts: PutOptions,
    dir_times: Vec<(Vec<OsString>, Timestamps)>,
}

fn clean(name: &[u8], ctx: &Ctx<'_>) -> Result<Vec<OsString>, ArchiveError> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(OsStr::from_bytes(name)).components() {
        match c {
            Component::Normal(n) => out.push(n.to_owned()),
            Component::ParentDir if out.pop().is_none() => {
                return Err(ArchiveError::Breakout {
                    entry: String::from_utf8_lossy(name).into_owned(),
                    dest: ctx.dest_raw.clone(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn writable_mount_covers(rec: &Container, path: &[OsString]) -> bool {
    let under = |dest: &str| {
        let d = CPath::parse(dest).comps;
        path.starts_with(&d)
    };
    rec.host_config.binds.iter().flatten().any(|b| {
        let parts: Vec<&str> = b.split(':').collect();
        parts.len() >= 2
            && under(parts[1])
            && !parts
                .get(2)
                .is_some_and(|o| o.split(',').any(|x| x == "ro"))
    }) || rec
        .host_config
        .mounts
        .iter()
        .flatten()
        .any(|m| !m.read_only && under(&m.target))
        || rec
            .host_config
            .tmpfs
            .iter()
            .flatten()
            .any(|(d, _)| under(d))
}

/// Extracts `body` into the directory `p` of the container.
pub(super) fn extract(
    root: &Root<'_>,
    rec: &Container,
    p: &CPath,
    opts: &PutOptions,
    body: Box<dyn Read + Send>,
) -> Result<(), ArchiveError> {
    let container = rec.id.clone();
    let ioe = |op, path: &str, source| ArchiveError::Io {
        op,
        container: container.clone(),
        path: path.to_owned(),
        source,
    };
    // 1. The extraction point: followed, must be a directory.
    let fd = open_in(&root.fd, &p.comps, OFlags::PATH).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) {
            ArchiveError::NotFound {
                container: container.clone(),
                path: p.raw.clone(),
            }
        } else {
            ioe("open", &p.raw, e)
        }
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| ioe("stat", &p.raw, e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(ArchiveError::NotADirectory {
            path: p.raw.clone(),
        });
    }
    let dest = resolve(&root.fd, &p.comps).map_err(|e| ioe("resolve", &p.raw, e))?;
    if rec.host_config.readonly_rootfs && !writable_mount_covers(rec, &dest) {
        return Err(ArchiveError::ReadOnly { container });
    }
    // 2. Whose files: the container user's with copyUIDGID, else the archive's.
    let owner = if opts.copy_uid_gid && !rec.config.user.is_empty() {
        let u =
            crate::rootfs_files::resolve_user(&root.path, &rec.config.user, &[]).map_err(|e| {
                ioe(
                    "resolve user",
                    &rec.config.user,
                    io::Error::other(e.to_string()),
                )
            })?;
        Some((u.uid, u.gid))
    } else {
        None
    };
    let mut ctx = Ctx {
        root: &root.fd,
        container: container.clone(),
        dest,
        dest_raw: p.raw.clone(),
        owner,
        opts: *opts,
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(body);
    let entries = archive
        .entries()
        .map_err(|source| ArchiveError::Tar { source })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ArchiveError::Tar { source })?;
        ctx.entry(&mut entry)?;
    }
    // Directory times last: writing their contents changed them.
    for (comps, times) in std::mem::take(&mut ctx.dir_times).into_iter().rev() {
        if let Some((name, parent)) = comps.split_last()
            && let Ok(dir) = open_dir_in(ctx.root, parent)
        {
            let _ = utimensat(&dir, name.as_os_str(), &times, AtFlags::SYMLINK_NOFOLLOW);
        }
    }
    Ok(())
}

impl Ctx<'_> {
    fn io(&self, op: &'static str, name: &[u8], source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            op,
            container: self.container.clone(),
            path: format!(
                "{}/{}",
                self.dest_raw.trim_end_matches('/'),
                String::from_utf8_lossy(name)
            ),
            source,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ArchiveError> {
        let raw = entry.path_bytes().into_owned();
        let rel = clean(&raw, self)?;
        if rel.is_empty() {
            return Ok(()); // "./": the extraction point itself
        }
        let h = entry.header().clone();
        let typ = h.entry_type();
        if !matches!(
            typ,
            tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Directory
                | tar::EntryType::Symlink
                | tar::EntryType::Link
                | tar::EntryType::Char
                | tar::EntryType::Block
                | tar::EntryType::Fifo
        ) {
            return Ok(()); // global headers and the like
        }
        let mut full = self.dest.clone();
        full.extend(rel.iter().cloned());
        let (name, parent_comps) = full.split_last().unwrap_or_else(|| unreachable!());
        let name = name.clone();
        let parent = mkdir_all_in(self.root, parent_comps, 0o755, self.owner)
            .map_err(|e| self.io("create parent directories of", &raw, e))?;
        let is_dir = typ == tar::EntryType::Directory;
        if let Some(existing) = lstat_at(&parent, &name).map_err(|e| self.io("stat", &raw, e))? {
            let ex_dir = FileType::from_raw_mode(existing.st_mode) == FileType::Directory;
            if ex_dir != is_dir && self.opts.no_overwrite_dir_non_dir {
                let kind = |d| if d { "directory" } else { "non-directory" };
                return Err(ArchiveError::Overwrite {
                    existing: kind(ex_dir),
                    incoming: kind(is_dir),
                    path: format!("/{}", super::fsops::rel(&full).display()),
                    entry: String::from_utf8_lossy(&raw).into_owned(),
                });
            }
            if !(ex_dir && is_dir) {
                super::fsops::remove_all_at(&parent, &name)
                    .map_err(|e| self.io("remove", &raw, e))?;
            }
        }
        let mode = h.mode().map_err(|source| ArchiveError::Tar { source })? & 0o7777;
        let (uid, gid) = match self.owner {
            Some(o) => o,
            None => (
                u32::try_from(h.uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(h.gid().unwrap_or(0)).unwrap_or(0),
            ),
        };
        let mtime = Timespec {
            tv_sec: i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0),
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: mtime,
            last_modification: mtime,
        };
        let n = name.as_os_str();
        let set_owner_mode = |fd: &OwnedFd| -> io::Result<()> {
            fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
            fchmod(fd, Mode::from_raw_mode(mode))?;
            Ok(())
        };
        match typ {
            tar::EntryType::Directory => {
                match mkdirat(&parent, n, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(self.io("create directory", &raw, e.into())),
                }
                let d = openat(
                    &parent,
                    n,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.io("open directory", &raw, e.into()))?;
                set_owner_mode(&d).map_err(|e| self.io("set owner and mode of", &raw, e))?;
                self.dir_times.push((full.clone(), times));
                return Ok(());
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = openat(
                    &parent,
                    n,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| self.io("create", &raw, e.into()))?;
                let mut f = File::from(fd);
                io::copy(entry, &mut f).map_err(|e| self.io("write", &raw, e))?;
                let fd = OwnedFd::from(f);
                set_owner_mode(&fd).map_err(|e| self.io("set owner and mode of", &raw, e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                symlinkat(OsStr::from_bytes(&target), &parent, n)
                    .map_err(|e| self.io("create symlink", &raw, e.into()))?;
                rustix::fs::chownat(
                    &parent,
                    n,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.io("set owner of", &raw, e.into()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| b.into_owned())
                    .unwrap_or_default();
                let trel = clean(&target, self)?;
                let mut tfull = self.dest.clone();
                tfull.extend(trel);
                let Some((tname, tparent)) = tfull.split_last() else {
                    return Err(self.io("link", &raw, io::Error::from_raw_os_error(libc::EINVAL)));
                };
                let tdir = open_dir_in(self.root, tparent)
                    .map_err(|e| self.io("open hard link target of", &raw, e))?;
                rustix::fs::linkat(&tdir, tname.as_os_str(), &parent, n, AtFlags::empty())
                    .map_err(|e| self.io("create hard link", &raw, e.into()))?;
                return Ok(());
            }
            _ => {
                let ft = match typ {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                );
                mknodat(&parent, n, ft, Mode::from_raw_mode(mode), dev)
                    .map_err(|e| self.io("create device", &raw, e.into()))?;
                rustix::fs::chownat(
                    &parent,
                    n,
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.io("set owner of", &raw, e.into()))?;
            }
        }
        utimensat(&parent, n, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io("set times of", &raw, e.into()))?;
        Ok(())
    }
}
