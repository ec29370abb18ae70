//! The apply step: one uncompressed layer tar → files under a target
//! directory, contained, with whiteouts in overlayfs form.
//!
//! For each entry, in order:
//! 1. clean the name lexically (`..` above the root → [`LayerError::Escape`],
//!    absolute names are relative to the target);
//! 2. open (creating 0755 as needed) the parent directory with
//!    `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on the target's fd,
//!    so symlinks in the path resolve as if the target were `/`. Parent fds
//!    are kept in a small cache keyed by the cleaned path; the cache is
//!    emptied whenever anything is removed from the tree (a replaced entry, a
//!    whiteout), the only way a cached resolution could go stale;
//! 3. whiteouts: `.wh.NAME` becomes a 0/0 character device `NAME`, and
//!    `.wh..wh..opq` sets `trusted.overlay.opaque=y` on the parent;
//! 4. create the entry relative to the parent fd, exclusively (`O_EXCL |
//!    O_NOFOLLOW` for files, `EEXIST` from `mkdirat`/`symlinkat`/...): when
//!    something is already at the name it is removed and the entry created
//!    again, unless both are directories (so we never write through an
//!    existing symlink or device);
//! 5. then owner, then mode (after chown, which clears setuid bits), then
//!    xattrs (`SCHILY.xattr.*`, after chown, which clears
//!    `security.capability`), then times. Directory times are set last, once
//!    their contents are written.
//!
//! Syscalls saved on the common entry: a node is created with its final mode
//! when the umask cannot strip it, it has no setuid/setgid/sticky bit and no
//! default ACL is in play, and its owner is what the kernel gives a new node
//! (our fsuid, and our fsgid or a setgid parent's group): then `chown` and
//! `chmod` are skipped; a regular file costs `openat`, `write`, `futimens`,
//! `close`.
//!
//! `trusted.overlay.*` xattrs inside the archive are dropped: only the
//! opaque marker may set overlay metadata.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags, chmodat, chownat, fchmod, fchown,
    fsetxattr, futimens, linkat, lsetxattr, makedev, mkdirat, mknodat, openat, statat, symlinkat,
    utimensat,
};
use rustix::fs::{Gid, Timespec, Uid};

use super::LayerError;
use super::fsutil::{clean_path, join, mkdir_all_in, open_dir, open_dir_in, remove_all_at};
use crate::digest::{Digest, HashingReader};

/// Name prefix of a whiteout entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker entry.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to make a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Knobs for [`apply_layer_with`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Apply the archive's uid/gid (needs root). Off for rootless unpacking,
    /// where files keep the caller's ownership.
    pub chown: bool,
}

impl Default for ApplyOptions {
    fn default() -> ApplyOptions {
        ApplyOptions { chown: true }
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the whole uncompressed stream (the layer's diff ID).
    pub diff_id: Digest,
    /// Bytes in the uncompressed stream.
    pub size: u64,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
    /// Whiteouts and opaque markers among them.
    pub whiteouts: u64,
}

/// Applies an uncompressed layer tar to `target` with default options.
/// See the [module docs](super) for the contract.
pub fn apply_layer<R: Read>(reader: R, target: &Path) -> Result<ApplyStats, LayerError> {
    apply_layer_with(reader, target, &ApplyOptions::default())
}

/// Applies an uncompressed layer tar to `target`.
pub fn apply_layer_with<R: Read>(
    reader: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    let mut hashing = HashingReader::new(reader);
    let (entries, whiteouts) = apply_entries(&mut hashing, target, options)?;
    let (_, diff_id, size) = hashing.finish();
    tracing::debug!(%diff_id, size, entries, target = %target.display(), "layer applied");
    Ok(ApplyStats {
        diff_id,
        size,
        entries,
        whiteouts,
    })
}

/// Applies the tar read from `reader` to `target` and reads the stream to
/// its end (the diff ID covers the end-of-archive blocks and any padding
/// too; the caller hashes). Returns the entries and whiteouts applied.
pub(super) fn apply_entries<R: Read>(
    mut reader: R,
    target: &Path,
    options: &ApplyOptions,
) -> Result<(u64, u64), LayerError> {
    let root = open_dir(target).map_err(|source| LayerError::OpenTarget {
        path: target.to_owned(),
        source,
    })?;
    // A default ACL replaces the umask for new nodes: then every mode is
    // set explicitly.
    let default_acl = rustix::fs::fgetxattr(&root, ACL_DEFAULT_XATTR, &mut [0u8; 0]).is_ok();
    let mut state = State {
        root,
        options: options.clone(),
        dir_times: Vec::new(),
        buf: vec![0u8; COPY_BUF],
        entries: 0,
        whiteouts: 0,
        dirs: HashMap::new(),
        fsuid: rustix::process::geteuid().as_raw(),
        fsgid: rustix::process::getegid().as_raw(),
        umask: if default_acl { None } else { process_umask() },
    };
    {
        let mut archive = tar::Archive::new(&mut reader);
        let entries = archive
            .entries()
            .map_err(|source| LayerError::Tar { source })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| LayerError::Tar { source })?;
            state.apply(&mut entry)?;
        }
    }
    io::copy(&mut reader, &mut io::sink()).map_err(|source| LayerError::Tar { source })?;
    state.fix_dir_times()?;
    Ok((state.entries, state.whiteouts))
}

/// The xattr holding a directory's default ACL.
const ACL_DEFAULT_XATTR: &str = "system.posix_acl_default";

/// Open parent directories kept at most (fds; emptied when full).
const DIR_CACHE_MAX: usize = 128;

/// This process's umask (`Umask:` in `/proc/self/status`, Linux 4.7+);
/// `None` when unknown, and then every mode is set explicitly.
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let v = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(v.trim(), 8).ok()
}

struct State {
    root: OwnedFd,
    options: ApplyOptions,
    dir_times: Vec<(Vec<OsString>, Timestamps)>,
    buf: Vec<u8>,
    entries: u64,
    whiteouts: u64,
    /// Parent directories opened so far, by cleaned path. Only valid while
    /// nothing is removed from the tree: every removal empties it.
    dirs: HashMap<Vec<OsString>, Rc<ParentDir>>,
    /// Owner of the nodes we create (setgid parents aside).
    fsuid: u32,
    fsgid: u32,
    /// `None` when modes cannot be predicted (unknown umask, default ACLs).
    umask: Option<u32>,
}

/// An open directory entries are created in.
struct ParentDir {
    fd: OwnedFd,
    /// The group new nodes inherit when the directory is setgid.
    setgid_gid: Option<u32>,
}

/// Ownership, mode, xattrs and times of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

fn read_meta<R: Read>(e: &mut tar::Entry<'_, R>, entry: &str) -> Result<Meta, LayerError> {
    let bad = |source: io::Error| LayerError::Entry {
        entry: entry.to_owned(),
        op: "read header",
        source,
    };
    let h = e.header();
    let mut uid = h.uid().map_err(bad)?;
    let mut gid = h.gid().map_err(bad)?;
    let mode = h.mode().map_err(bad)? & 0o7777;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(h.mtime().map_err(bad)?).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = e.pax_extensions().map_err(bad)? {
        for ext in pax {
            let ext = ext.map_err(bad)?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if name.starts_with("trusted.overlay.") {
                    tracing::debug!(entry, name, "dropping overlay xattr from layer archive");
                    continue;
                }
                xattrs.push((name.to_owned(), value.to_vec()));
            } else if key == "uid" {
                uid = parse_decimal(value).ok_or_else(|| bad(invalid("pax uid")))?;
            } else if key == "gid" {
                gid = parse_decimal(value).ok_or_else(|| bad(invalid("pax gid")))?;
            } else if key == "mtime"
                && let Some(t) = parse_pax_time(value)
            {
                mtime = t;
            }
        }
    }
    let id = |v: u64| u32::try_from(v).ok().filter(|v| *v != u32::MAX);
    Ok(Meta {
        uid: id(uid).ok_or_else(|| bad(invalid("uid out of range")))?,
        gid: id(gid).ok_or_else(|| bad(invalid("gid out of range")))?,
        mode,
        mtime,
        xattrs,
    })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// `1700000000.123456789` → seconds and nanoseconds (negative times clamp to 0).
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec {
        tv_sec: tv_sec.max(0),
        tv_nsec,
    })
}

impl State {
    fn apply<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw = e.path_bytes().into_owned();
        let entry = String::from_utf8_lossy(&raw).into_owned();
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = clean_path(&raw).ok_or_else(|| LayerError::Escape {
            entry: entry.clone(),
        })?;
        self.entries += 1;
        let err = |op: &'static str| {
            let entry = entry.clone();
            move |source: io::Error| LayerError::Entry { entry, op, source }
        };
        let meta = read_meta(e, &entry)?;
        if meta.xattrs.iter().any(|(n, _)| n == ACL_DEFAULT_XATTR) {
            // Nodes created below it get the ACL's mode, not the umask's.
            self.umask = None;
        }

        let Some((base, parents)) = comps.split_last() else {
            // The target directory itself ("./").
            if !kind.is_dir() {
                return Err(LayerError::UnsupportedEntry {
                    entry,
                    kind: "non-directory entry for the layer root".into(),
                });
            }
            self.set_fd_meta(&self.root, &meta)
                .map_err(err("set metadata"))?;
            self.note_dir_meta(&meta, Vec::new());
            return Ok(());
        };
        let parent = self
            .parent_dir(parents, true)
            .map_err(err("open parent directory"))?;
        let base = base.as_os_str();

        if let Some(name) = base.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            self.whiteouts += 1;
            let r = self.whiteout(&parent.fd, name, &meta);
            // A whiteout may have removed directories we hold open.
            self.dirs.clear();
            return r.map_err(err("create whiteout"));
        }

        // Created with the final mode (no chmod) when nothing can alter it.
        let exact_mode = self.exact_mode(&meta);
        // Owned by whom the archive says without a chown.
        let owned = !self.options.chown || self.new_node_owner(&parent) == (meta.uid, meta.gid);
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = self
                    .create(&parent, base, |p| {
                        openat(
                            p,
                            base,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(exact_mode.unwrap_or(0o600)),
                        )
                    })
                    .map_err(|(op, e)| err(op.unwrap_or("create file"))(e))?;
                let mut f = File::from(fd);
                copy_buffered(e, &mut f, &mut self.buf).map_err(err("write file"))?;
                if !(owned && exact_mode.is_some() && meta.xattrs.is_empty()) {
                    self.set_fd_meta(&f, &meta).map_err(err("set metadata"))?;
                }
                futimens(&f, &meta.times()).map_err(|e| err("set times")(e.into()))?;
            }
            tar::EntryType::Directory => {
                let created = match mkdirat(
                    &parent.fd,
                    base,
                    Mode::from_raw_mode(exact_mode.unwrap_or(0o700)),
                ) {
                    Ok(()) => true,
                    Err(rustix::io::Errno::EXIST) => {
                        let existing_dir = statat(&parent.fd, base, AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|st| {
                                FileType::from_raw_mode(st.st_mode) == FileType::Directory
                            });
                        if !existing_dir {
                            self.remove(&parent, base)
                                .map_err(err("replace existing entry"))?;
                            mkdirat(&parent.fd, base, Mode::from_raw_mode(0o700))
                                .map_err(|e| err("create directory")(e.into()))?;
                        }
                        // Its owner and mode are not known: set them.
                        false
                    }
                    Err(e) => return Err(err("create directory")(e.into())),
                };
                if !(created && owned && exact_mode.is_some() && meta.xattrs.is_empty()) {
                    let d = openat(
                        &parent.fd,
                        base,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| err("open directory")(e.into()))?;
                    self.set_fd_meta(&d, &meta).map_err(err("set metadata"))?;
                }
                self.note_dir_meta(&meta, comps.clone());
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| err("read link target")(invalid("symlink without target")))?
                    .into_owned();
                self.create(&parent, base, |p| {
                    symlinkat(OsStr::from_bytes(&target), p, base)
                })
                .map_err(|(op, e)| err(op.unwrap_or("create symlink"))(e))?;
                self.set_path_meta(&parent.fd, base, &meta, true, !owned)
                    .map_err(err("set metadata"))?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| err("read link target")(invalid("hardlink without target")))?
                    .into_owned();
                let tcomps = clean_path(&target).ok_or_else(|| LayerError::Escape {
                    entry: entry.clone(),
                })?;
                let Some((tbase, tparents)) = tcomps.split_last() else {
                    return Err(LayerError::Escape { entry });
                };
                let tparent = self
                    .parent_dir(tparents, false)
                    .map_err(err("open hardlink target directory"))?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                self.create(&parent, base, |p| {
                    linkat(&tparent.fd, tbase, p, base, AtFlags::empty())
                })
                .map_err(|(op, e)| err(op.unwrap_or("create hardlink"))(e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let h = e.header();
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = if ft == FileType::Fifo {
                    0
                } else {
                    let major = h
                        .device_major()
                        .map_err(err("read device numbers"))?
                        .unwrap_or(0);
                    let minor = h
                        .device_minor()
                        .map_err(err("read device numbers"))?
                        .unwrap_or(0);
                    makedev(major, minor)
                };
                self.create(&parent, base, |p| {
                    mknodat(p, base, ft, Mode::from_raw_mode(0o600), dev)
                })
                .map_err(|(op, e)| err(op.unwrap_or("create device node"))(e))?;
                self.set_path_meta(&parent.fd, base, &meta, false, self.options.chown)
                    .map_err(err("set metadata"))?;
            }
            other => {
                return Err(LayerError::UnsupportedEntry {
                    entry,
                    kind: format!("{other:?}"),
                });
            }
        }
        Ok(())
    }

    /// The directory `comps` inside the root, from the cache or opened (and
    /// created when `create`) with `openat2(RESOLVE_IN_ROOT)`.
    fn parent_dir(&mut self, comps: &[OsString], create: bool) -> io::Result<Rc<ParentDir>> {
        if let Some(d) = self.dirs.get(comps) {
            return Ok(d.clone());
        }
        let fd = if create {
            mkdir_all_in(&self.root, comps)?
        } else {
            open_dir_in(&self.root, &join(comps))?
        };
        let st = rustix::fs::fstat(&fd)?;
        let d = Rc::new(ParentDir {
            setgid_gid: (st.st_mode & 0o2000 != 0).then_some(st.st_gid),
            fd,
        });
        if self.dirs.len() >= DIR_CACHE_MAX {
            self.dirs.clear();
        }
        self.dirs.insert(comps.to_vec(), d.clone());
        Ok(d)
    }

    /// Creates a node with `make`; when the name is taken, removes what is
    /// there and tries once more. Errors carry the step that failed when it
    /// is not the creation itself.
    fn create<T>(
        &mut self,
        parent: &ParentDir,
        base: &OsStr,
        mut make: impl FnMut(&OwnedFd) -> rustix::io::Result<T>,
    ) -> Result<T, (Option<&'static str>, io::Error)> {
        match make(&parent.fd) {
            Err(rustix::io::Errno::EXIST) => {
                self.remove(parent, base)
                    .map_err(|e| (Some("replace existing entry"), e))?;
                make(&parent.fd).map_err(|e| (None, e.into()))
            }
            r => r.map_err(|e| (None, e.into())),
        }
    }

    /// Removes `base` (recursively) and forgets every cached directory.
    fn remove(&mut self, parent: &ParentDir, base: &OsStr) -> io::Result<()> {
        self.dirs.clear();
        remove_all_at(&parent.fd, base)
    }

    /// Records a directory's times for the end, and drops it from the cache
    /// (its mode, so its setgid bit, may have changed).
    fn note_dir_meta(&mut self, meta: &Meta, comps: Vec<OsString>) {
        self.dirs.remove(&comps);
        self.dir_times.push((comps, meta.times()));
    }

    /// The mode a node can be created with so that no chmod is needed.
    fn exact_mode(&self, meta: &Meta) -> Option<u32> {
        let umask = self.umask?;
        (meta.mode & 0o7000 == 0 && meta.mode & umask == 0).then_some(meta.mode)
    }

    /// Who owns a node we create in `parent`.
    fn new_node_owner(&self, parent: &ParentDir) -> (u32, u32) {
        (self.fsuid, parent.setgid_gid.unwrap_or(self.fsgid))
    }

    /// `.wh.NAME` → 0/0 char device NAME; `.wh..wh..opq` → opaque parent.
    fn whiteout(&self, parent: &OwnedFd, name: &[u8], meta: &Meta) -> io::Result<()> {
        if name == &WHITEOUT_OPAQUE.as_bytes()[WHITEOUT_PREFIX.len()..] {
            return Ok(fsetxattr(
                parent,
                OVERLAY_OPAQUE_XATTR,
                b"y",
                XattrFlags::empty(),
            )?);
        }
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            // Other `.wh..wh.*` names are aufs bookkeeping (e.g. `.wh..wh.plnk`).
            return Ok(());
        }
        if name.is_empty() {
            return Err(invalid("whiteout without a name"));
        }
        let name = OsStr::from_bytes(name);
        remove_all_at(parent, name)?;
        mknodat(
            parent,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            makedev(0, 0),
        )?;
        if self.options.chown {
            chownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }

    /// Owner, mode, xattrs on an open file or directory.
    fn set_fd_meta<Fd: AsFd>(&self, fd: Fd, meta: &Meta) -> io::Result<()> {
        let fd = fd.as_fd();
        if self.options.chown {
            fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )?;
        }
        fchmod(fd, Mode::from_raw_mode(meta.mode))?;
        for (name, value) in &meta.xattrs {
            tolerate_xattr(
                fsetxattr(fd, name.as_str(), value, XattrFlags::empty()),
                name,
            )?;
        }
        Ok(())
    }

    /// Owner (when `chown`), mode (not for symlinks), xattrs and times on a
    /// node we cannot safely open (symlink, device, fifo), addressed as
    /// `parent` + `name`.
    fn set_path_meta(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        symlink: bool,
        chown: bool,
    ) -> io::Result<()> {
        if chown {
            chownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        if !symlink {
            // Not a symlink (we just created it), so this cannot follow one.
            chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )?;
        }
        if !meta.xattrs.is_empty() {
            // The parent is ours and `name` one component: lsetxattr on it via
            // the parent fd's /proc entry never follows the final symlink.
            let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
            p.extend_from_slice(name.as_bytes());
            let p = OsStr::from_bytes(&p);
            for (xname, value) in &meta.xattrs {
                tolerate_xattr(
                    lsetxattr(p, xname.as_str(), value, XattrFlags::empty()),
                    xname,
                )?;
            }
        }
        utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Sets directory times once their contents are final. A directory that
    /// a later entry replaced (by a file, or deleted with its parent) is
    /// skipped: its recorded times no longer describe anything.
    fn fix_dir_times(&mut self) -> Result<(), LayerError> {
        let dir_times = std::mem::take(&mut self.dir_times);
        for (comps, times) in dir_times.iter().rev() {
            let r: io::Result<()> = match comps.split_last() {
                None => futimens(&self.root, times).map_err(Into::into),
                Some((base, parents)) => self.parent_dir(parents, false).and_then(|parent| {
                    utimensat(&parent.fd, base, times, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(Into::into)
                }),
            };
            match r {
                Ok(()) => {}
                Err(e)
                    if [rustix::io::Errno::NOENT, rustix::io::Errno::NOTDIR]
                        .iter()
                        .any(|x| e.raw_os_error() == Some(x.raw_os_error())) => {}
                Err(source) => {
                    return Err(LayerError::Entry {
                        entry: join(comps).display().to_string(),
                        op: "set directory times",
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Size of the buffer file contents are copied through (fewer, larger writes
/// than `io::copy`'s 8 KiB).
const COPY_BUF: usize = 256 * 1024;

fn copy_buffered<R: Read, W: io::Write>(r: &mut R, w: &mut W, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Like Docker: xattrs the filesystem does not support (or that this
/// node type cannot carry, such as `user.*` on symlinks) are skipped.
fn tolerate_xattr(r: rustix::io::Result<()>, name: &str) -> io::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e @ (rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM)) => {
            tracing::warn!(xattr = name, error = %e, "skipping extended attribute the filesystem refused");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        assert!(parse_pax_time(b"x").is_none());
    }
}
