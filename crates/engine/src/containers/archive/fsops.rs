//! Contained filesystem steps shared by `cp`, `export` and `diff`: opening
//! a path below a root descriptor with `openat2(RESOLVE_IN_ROOT)`, creating
//! directories inside it, Go's `FileMode` bits, and mounting a stopped
//! container's bind mounts onto its on-demand root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::model::Container;

/// `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`.
pub(super) const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Joins components into a relative path (`.` when empty).
pub(super) fn rel(comps: &[OsString]) -> PathBuf {
    if comps.is_empty() {
        PathBuf::from(".")
    } else {
        comps.iter().collect()
    }
}

/// Opens `comps` below `root`, symlinks resolved as if `root` were `/`.
pub(super) fn open_in<Fd: AsFd>(
    root: Fd,
    comps: &[OsString],
    flags: OFlags,
) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(
        root,
        rel(comps),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )?)
}

/// Opens the directory `comps` below `root`.
pub(super) fn open_dir_in<Fd: AsFd>(root: Fd, comps: &[OsString]) -> io::Result<OwnedFd> {
    open_in(root, comps, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// `lstat` of `name` in the open directory `dir`; `None` when absent.
pub(super) fn lstat_at<Fd: AsFd>(dir: Fd, name: &std::ffi::OsStr) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens (creating with `mode`, owned by `owner`, as needed) the directory
/// `comps` below `root`.
pub(super) fn mkdir_all_in<Fd: AsFd>(
    root: Fd,
    comps: &[OsString],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<OwnedFd> {
    let root = root.as_fd();
    match open_dir_in(root, comps) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut dir = open_dir_in(root, &[])?;
    for (i, name) in comps.iter().enumerate() {
        match rustix::fs::mkdirat(&dir, name.as_os_str(), Mode::from_raw_mode(mode)) {
            Ok(()) => {
                if let Some((uid, gid)) = owner {
                    rustix::fs::chownat(
                        &dir,
                        name.as_os_str(),
                        Some(rustix::fs::Uid::from_raw(uid)),
                        Some(rustix::fs::Gid::from_raw(gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                }
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        // Re-resolve from the root: the component may be a symlink, which
        // must resolve inside the root, never relative to the host.
        dir = open_dir_in(root, &comps[..=i])?;
    }
    Ok(dir)
}

/// Resolves `comps` inside the root the way the kernel would with
/// `RESOLVE_IN_ROOT`, returning the final path (for a symlink's
/// `linkTarget`). Missing components are kept as they are.
pub(super) fn resolve<Fd: AsFd>(root: Fd, comps: &[OsString]) -> io::Result<Vec<OsString>> {
    let root = root.as_fd();
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            done.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        let parent = match open_dir_in(root, &done) {
            Ok(p) => p,
            Err(_) => {
                done.push(c);
                done.extend(todo);
                return Ok(done);
            }
        };
        match rustix::fs::readlinkat(&parent, c.as_os_str(), Vec::new()) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let t = Path::new(OsStr::from_bytes(target.as_bytes()));
                if t.is_absolute() {
                    done.clear();
                }
                for comp in t.components().rev() {
                    match comp {
                        std::path::Component::Normal(n) => todo.push_front(n.to_owned()),
                        std::path::Component::ParentDir => todo.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            Err(_) => done.push(c),
        }
    }
    Ok(done)
}

/// Removes `name` in the open directory `dir`, recursively, never
/// following symlinks.
pub(super) fn remove_all_at<Fd: AsFd>(dir: Fd, name: &OsStr) -> io::Result<()> {
    let dir = dir.as_fd();
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for ent in rustix::fs::Dir::read_from(&sub)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_owned());
        }
    }
    for n in names {
        remove_all_at(&sub, &n)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Go's `os.FileMode` for a stat (what Docker's stat header carries).
pub(super) fn go_mode(st: &Stat) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let raw = st.st_mode;
    let mut m = raw & 0o777;
    m |= match FileType::from_raw_mode(raw) {
        FileType::Directory => DIR,
        FileType::Symlink => SYMLINK,
        FileType::BlockDevice => DEVICE,
        FileType::CharacterDevice => DEVICE | CHAR_DEVICE,
        FileType::Fifo => NAMED_PIPE,
        FileType::Socket => SOCKET,
        _ => 0,
    };
    if raw & 0o4000 != 0 {
        m |= SETUID;
    }
    if raw & 0o2000 != 0 {
        m |= SETGID;
    }
    if raw & 0o1000 != 0 {
        m |= STICKY;
    }
    m
}

/// Mounts the container's bind mounts (`Binds`, `Mounts` of type bind) onto
/// its on-demand root `root`, parents first, each destination resolved
/// inside the root. Read-only binds are remounted read-only.
pub(super) fn mount_binds(root: &OwnedFd, c: &Container) -> io::Result<()> {
    let mut binds: Vec<(String, String, bool)> = Vec::new();
    for b in c.host_config.binds.iter().flatten() {
        let m = crate::spec::parse_bind(b).map_err(|e| io::Error::other(e.to_string()))?;
        let ro = m.options().iter().flatten().any(|o| o == "ro");
        let src = m
            .source()
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        binds.push((src, m.destination().display().to_string(), ro));
    }
    for m in c.host_config.mounts.iter().flatten() {
        if m.typ == "bind" {
            binds.push((m.source.clone(), m.target.clone(), m.read_only));
        }
    }
    binds.sort_by_key(|(_, d, _)| super::CPath::parse(d).comps.len());
    for (src, dest, ro) in binds {
        let d = super::CPath::parse(&dest);
        let target = match open_in(root, &d.comps, OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if Path::new(&src).is_dir() {
                    mkdir_all_in(root, &d.comps, 0o755, None)?
                } else {
                    let (name, parent) = d.comps.split_last().ok_or_else(|| {
                        io::Error::other(format!("cannot bind a file over the root: {src}"))
                    })?;
                    let p = mkdir_all_in(root, parent, 0o755, None)?;
                    drop(rustix::fs::openat(
                        &p,
                        name.as_os_str(),
                        OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )?);
                    open_in(root, &d.comps, OFlags::PATH)?
                }
            }
            Err(e) => return Err(e),
        };
        let at = format!("/proc/self/fd/{}", target.as_raw_fd());
        rustix::mount::mount_bind_recursive(src.as_str(), at.as_str())?;
        if ro {
            let mounted = open_in(root, &d.comps, OFlags::PATH)?;
            let at = format!("/proc/self/fd/{}", mounted.as_raw_fd());
            rustix::mount::mount_remount(
                at.as_str(),
                rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
                "",
            )?;
        }
    }
    Ok(())
}
