//! fd-relative filesystem helpers shared by layer apply and the snapshotters:
//! lexical path cleaning, contained resolution with `openat2`, recursive
//! removal without following symlinks.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, mkdirat, openat, openat2, unlinkat,
};

/// Resolution flags used for every path inside a tree we write.
pub(crate) const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Cleans an archive path lexically: drops empty and `.` components, applies
/// `..` and treats absolute names as relative to the root. `None` when `..`
/// would climb above the root.
pub(crate) fn clean_path(raw: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(OsStr::from_bytes(c).to_owned()),
        }
    }
    Some(out)
}

/// Joins components into a relative path (for `openat2` and messages).
pub(crate) fn join(comps: &[OsString]) -> PathBuf {
    let mut p = PathBuf::new();
    for c in comps {
        p.push(c);
    }
    if p.as_os_str().is_empty() {
        p.push(".");
    }
    p
}

/// Opens a directory inside `root` (resolved as if `root` were `/`).
pub(crate) fn open_dir_in<Fd: AsFd>(root: Fd, rel: &Path) -> io::Result<OwnedFd> {
    Ok(openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )?)
}

/// Opens a directory path outside any container tree (our own state dirs).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens (creating with mode 0755 as needed) the directory `comps` inside `root`.
pub(crate) fn mkdir_all_in<Fd: AsFd>(root: Fd, comps: &[OsString]) -> io::Result<OwnedFd> {
    let root = root.as_fd();
    match open_dir_in(root, &join(comps)) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut cur = open_dir_in(root, Path::new("."))?;
    for (i, c) in comps.iter().enumerate() {
        let prefix = join(&comps[..=i]);
        match open_dir_in(root, &prefix) {
            Ok(fd) => cur = fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                // Created by us in a directory we hold: it is not a symlink.
                cur = open_dir_in(root, &prefix)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Removes `name` in `dir`, recursively when it is a directory, never
/// following symlinks. Missing is fine.
pub(crate) fn remove_all_at<Fd: AsFd>(dir: Fd, name: &OsStr) -> io::Result<()> {
    let dir = dir.as_fd();
    match unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = match openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    clear_dir(&sub)?;
    match unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside the open directory `dir`.
pub(crate) fn clear_dir<Fd: AsFd>(dir: Fd) -> io::Result<()> {
    let dir = dir.as_fd();
    let mut names = Vec::new();
    for ent in Dir::read_from(dir)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push((OsStr::from_bytes(n).to_owned(), ent.file_type()));
    }
    for (n, t) in names {
        if t == FileType::Directory {
            remove_all_at(dir, &n)?;
        } else {
            match unlinkat(dir, &n, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(rustix::io::Errno::ISDIR) => remove_all_at(dir, &n)?,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Removes a directory tree given by a path we own (state dirs), never
/// following symlinks inside it. Missing is fine.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot remove a root path",
        ));
    };
    match open_dir(parent) {
        Ok(p) => remove_all_at(&p, name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<Vec<String>> {
        clean_path(s.as_bytes()).map(|v| v.into_iter().map(|x| x.into_string().unwrap()).collect())
    }

    #[test]
    fn cleans_like_filepath_clean_under_root() {
        assert_eq!(c("./a/b/"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(c("/etc/passwd"), Some(vec!["etc".into(), "passwd".into()]));
        assert_eq!(c("a/../b"), Some(vec!["b".into()]));
        assert_eq!(c("./"), Some(vec![]));
        assert_eq!(c("../x"), None);
        assert_eq!(c("a/../../x"), None);
    }
}
