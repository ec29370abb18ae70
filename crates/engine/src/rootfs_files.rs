//! Files inside a container's root read and created safely: every path is
//! resolved with `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image (say
//! `/etc/passwd -> /etc/shadow` of the host, or `..` chains) cannot reach
//! outside the root.
//!
//! Used at start time, with the root mounted, to resolve `User` from the
//! image's `/etc/passwd` and `/etc/group` and to create `WorkingDir`.

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Why a file in the root could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum RootfsFileError {
    #[error("{op} {path} in container root {root}")]
    Io {
        op: &'static str,
        root: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `User` names a user or group the image does not define.
    #[error("unable to find {what} {name}: no matching entries in {file} file")]
    UnknownUser {
        what: &'static str,
        name: String,
        file: &'static str,
    },
}

fn open_root(root: &Path) -> Result<OwnedFd, RootfsFileError> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsFileError::Io {
        op: "open",
        root: root.to_owned(),
        path: "/".into(),
        source: e.into(),
    })
}

fn open_in(root_fd: &OwnedFd, path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root_fd,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Reads a small file inside `root`; `None` when it does not exist.
pub fn read_in_root(root: &Path, path: &Path) -> Result<Option<String>, RootfsFileError> {
    let fd = open_root(root)?;
    let io = |op, e: std::io::Error| RootfsFileError::Io {
        op,
        root: root.to_owned(),
        path: path.to_owned(),
        source: e,
    };
    let f = match open_in(&fd, path, OFlags::RDONLY) {
        Ok(f) => f,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io("open", e.into())),
    };
    let mut s = String::new();
    std::fs::File::from(f)
        .take(4 << 20)
        .read_to_string(&mut s)
        .map_err(|e| io("read", e))?;
    Ok(Some(s))
}

/// Creates `path` and its missing parents inside `root` (mode 0755), like
/// Docker does for `WorkingDir`.
pub fn mkdir_all_in_root(root: &Path, path: &Path) -> Result<(), RootfsFileError> {
    let fd = open_root(root)?;
    let mut cur = PathBuf::from("/");
    for comp in path.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        let parent = open_in(&fd, &cur, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| {
            RootfsFileError::Io {
                op: "open",
                root: root.to_owned(),
                path: cur.clone(),
                source: e.into(),
            }
        })?;
        cur.push(name);
        match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(RootfsFileError::Io {
                    op: "create directory",
                    root: root.to_owned(),
                    path: cur,
                    source: e.into(),
                });
            }
        }
    }
    Ok(())
}

/// A resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's home from `/etc/passwd` (for `HOME`).
    pub home: Option<String>,
}

/// Resolves Docker's `User` (`name`, `uid`, `name:group`, `uid:gid`, empty
/// for root) and `GroupAdd` against the image's `/etc/passwd` and
/// `/etc/group`. Numeric IDs need no entry; names do.
pub fn resolve_user(
    root: &Path,
    user: &str,
    group_add: &[String],
) -> Result<ResolvedUser, RootfsFileError> {
    let passwd = read_in_root(root, Path::new("/etc/passwd"))?.unwrap_or_default();
    let groups = read_in_root(root, Path::new("/etc/group"))?.unwrap_or_default();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, mut gid, home, uname) = match (&entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(f[5].to_owned()),
            Some(f[0].to_owned()),
        ),
        (None, Ok(n)) => (n, 0, None, None),
        (None, Err(_)) => {
            return Err(RootfsFileError::UnknownUser {
                what: "user",
                name: u.to_owned(),
                file: "passwd",
            });
        }
    };
    let group_lines: Vec<Vec<&str>> = groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let lookup_group = |name: &str| -> Result<u32, RootfsFileError> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        group_lines
            .iter()
            .find(|f| f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| RootfsFileError::UnknownUser {
                what: "group",
                name: name.to_owned(),
                file: "group",
            })
    };
    if let Some(g) = g {
        gid = lookup_group(g)?;
    }
    let mut additional = Vec::new();
    if let Some(uname) = &uname
        && g.is_none()
    {
        for f in &group_lines {
            if f.len() >= 4
                && f[3].split(',').any(|m| m == uname)
                && let Ok(n) = f[2].parse::<u32>()
                && n != gid
                && !additional.contains(&n)
            {
                additional.push(n);
            }
        }
    }
    for g in group_add {
        let n = lookup_group(g)?;
        if !additional.contains(&n) {
            additional.push(n);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_groups_and_containment() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nweb:x:33:\nextra:x:50:web\n",
        )
        .unwrap();
        let r = resolve_user(root, "", &[]).unwrap();
        assert_eq!((r.uid, r.gid), (0, 0));
        let r = resolve_user(root, "web", &[]).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone()),
            (33, 33, vec![50])
        );
        assert_eq!(r.home.as_deref(), Some("/var/www"));
        let r = resolve_user(root, "1000:extra", &["7".into()]).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (1000, 50, vec![7]));
        assert!(matches!(
            resolve_user(root, "nobody", &[]),
            Err(RootfsFileError::UnknownUser { what: "user", .. })
        ));

        // A symlink pointing out of the root resolves inside it.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("etc/link")).unwrap();
        assert_eq!(read_in_root(root, Path::new("/etc/link")).unwrap(), None);

        mkdir_all_in_root(root, Path::new("/a/b/c")).unwrap();
        assert!(root.join("a/b/c").is_dir());
        std::os::unix::fs::symlink(outside.path(), root.join("esc")).unwrap();
        let _ = mkdir_all_in_root(root, Path::new("/esc/inner"));
        assert!(!outside.path().join("inner").exists());
    }
}
