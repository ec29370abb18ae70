//! Resolving paths inside a container root without ever leaving it.
//!
//! Every lookup below a rootfs goes through `openat2(2)` with
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` on a descriptor of the root: an
//! absolute symlink or `..` inside the image resolves against the rootfs, not
//! the host, so a hostile image cannot make a mount, device node or file land
//! outside it. Directories are created one component at a time with
//! `mkdirat` on an already-resolved parent. Mounts then target
//! `/proc/self/fd/N` of the resolved descriptor, so nothing can swap the path
//! between resolution and use.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

fn rflags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// `path` made relative (leading `/` removed), `.` for the root itself.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Opens `path` inside `root` with `flags` (close-on-exec is always added).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = relative(path);
    loop {
        match rustix::fs::openat2(root, &rel, flags | OFlags::CLOEXEC, Mode::empty(), rflags()) {
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(Into::into),
        }
    }
}

/// Creates every missing directory of `path` inside `root` (mode `mode`) and
/// returns an `O_PATH` descriptor of the last one. A dangling symlink on the
/// way is followed by creating its target, resolved inside the root.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    mkdir_all_depth(root, path, mode, 0)
}

fn mkdir_all_depth(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    depth: u32,
) -> io::Result<OwnedFd> {
    // The kernel's own limit on symlink nesting.
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let rel = relative(path);
    // Fast paths (one or three syscalls instead of one per component): the
    // directory exists, or only its last component is missing. Anything else
    // (`..`, dangling symlinks, deeper gaps) takes the walk below.
    if rel.components().all(|c| matches!(c, Component::Normal(_))) {
        match open_in_root(root, &rel, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if let (Some(parent), Some(name)) = (rel.parent(), rel.file_name())
                    && let Ok(pfd) = open_in_root(
                        root,
                        if parent.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            parent
                        },
                        OFlags::PATH | OFlags::DIRECTORY,
                    )
                {
                    match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(mode)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    if let Ok(fd) = open_in_root(root, &rel, OFlags::PATH | OFlags::DIRECTORY) {
                        return Ok(fd);
                    }
                }
            }
            Err(_) => {}
        }
    }
    let mut cur = open_in_root(root, Path::new("."), OFlags::PATH | OFlags::DIRECTORY)?;
    let mut prefix = PathBuf::new();
    for comp in rel.components() {
        let name = match comp {
            Component::Normal(n) => n,
            Component::CurDir => continue,
            // `..` is resolved by openat2 within the root; rebuild from the prefix.
            Component::ParentDir => OsStr::from_bytes(b".."),
            _ => continue,
        };
        let parent = prefix.clone();
        prefix.push(name);
        match open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => cur = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(mode)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                cur = match open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY) {
                    Ok(fd) => fd,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        // `name` is a dangling symlink: create what it points to.
                        let target = rustix::fs::readlinkat(&cur, name, Vec::new())?;
                        let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                        let resolved = if target.is_absolute() {
                            target.to_owned()
                        } else {
                            parent.join(target)
                        };
                        mkdir_all_depth(root, &resolved, mode, depth + 1)?;
                        open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY)?
                    }
                    Err(e) => return Err(e),
                };
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Ensures a regular file exists at `path` inside `root` (creating parents)
/// and returns an `O_PATH` descriptor of it (following symlinks inside the root).
pub fn touch_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    if let Ok(fd) = open_in_root(root, path, OFlags::PATH) {
        return Ok(fd);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dir = mkdir_all_in_root(root, parent, 0o755)?;
    match rustix::fs::openat(
        &dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, path, OFlags::PATH)
}

/// The magic-link path naming `fd`, for syscalls that take paths (mount).
pub fn fd_path(fd: impl AsFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // absolute symlink pointing at the host's outside dir, and a relative escape
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("rel")).unwrap();
        let rfd = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        mkdir_all_in_root(rfd.as_fd(), Path::new("/abs/sub"), 0o755).unwrap();
        mkdir_all_in_root(rfd.as_fd(), Path::new("rel/sub2"), 0o755).unwrap();
        touch_in_root(rfd.as_fd(), Path::new("/abs/file")).unwrap();
        mkdir_all_in_root(rfd.as_fd(), Path::new("/../../x/y"), 0o755).unwrap();
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing may be created outside"
        );
        // the symlink targets were created inside the root instead
        assert!(
            root.join(outside.strip_prefix("/").unwrap())
                .join("sub")
                .is_dir()
        );
        assert!(root.join("x/y").is_dir());
    }
}
