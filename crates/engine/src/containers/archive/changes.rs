//! `docker diff`: what a container changed, read from its writable layer
//! (the overlay upper directory) and compared with the image's layers.
//!
//! - an entry of the upper dir that exists in a lower layer is *modified*
//!   (directories are copied up only when something below them changed);
//! - one that does not is *added*;
//! - a whiteout (a 0/0 character device) is a *deletion*;
//! - an opaque directory (`trusted.overlay.opaque=y`) hides everything the
//!   lower layers had in it: each such entry not recreated is a deletion.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Dir, FileType, Mode, OFlags};
use wharf_image::snapshot::Mount;

use super::ArchiveError;
use super::fsops::{lstat_at, open_dir_in};

/// Docker's change kinds (serialised as numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl serde::Serialize for ChangeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

/// One entry of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Kind")]
    pub kind: ChangeKind,
}

fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut v = Vec::new();
    for ent in Dir::read_from(dir)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(n).to_owned());
        }
    }
    Ok(v)
}

/// The writable layer (upper dir) and the image layers (lower dirs, top
/// first) of the container whose root is built from `mounts`.
pub(super) fn layer_dirs(
    container: &str,
    driver: &str,
    mounts: &[Mount],
) -> Result<(String, Vec<String>), ArchiveError> {
    let unsupported = || ArchiveError::ChangesUnsupported {
        container: container.to_owned(),
        driver: driver.to_owned(),
    };
    let m = mounts.first().ok_or_else(unsupported)?;
    match (driver, m.typ.as_str()) {
        ("overlay", "overlay") => {
            let opt = |k: &str| {
                m.options
                    .iter()
                    .find_map(|o| o.strip_prefix(k).map(str::to_owned))
            };
            let upper = opt("upperdir=").ok_or_else(unsupported)?;
            let lowers = opt("lowerdir=")
                .map(|l| l.split(':').map(str::to_owned).collect())
                .unwrap_or_default();
            Ok((upper, lowers))
        }
        // An image without layers: the upper dir is bind-mounted alone.
        ("overlay", "bind") => Ok((m.source.clone(), Vec::new())),
        _ => Err(unsupported()),
    }
}

/// The changes of the container whose root is built from `mounts`.
pub(super) fn changes(
    container: &str,
    driver: &str,
    mounts: &[Mount],
) -> Result<Vec<Change>, ArchiveError> {
    let (upper, lowers) = layer_dirs(container, driver, mounts)?;
    let err = |what, source| ArchiveError::Root {
        container: container.to_owned(),
        what,
        source,
    };
    let upper_fd = open_dir(Path::new(&upper)).map_err(|e| err("open writable layer", e))?;
    let lower_fds: Vec<OwnedFd> = lowers
        .iter()
        .map(|l| open_dir(Path::new(l)))
        .collect::<io::Result<_>>()
        .map_err(|e| err("open image layer", e))?;
    let mut out: BTreeMap<String, (ChangeKind, bool)> = BTreeMap::new();
    let mut w = Walker {
        lowers: &lower_fds,
        out: &mut out,
    };
    w.walk(&upper_fd, &mut Vec::new())
        .map_err(|e| err("read writable layer", e))?;
    Ok(without_init_layer(out))
}

/// What the engine and the runtime create for every container (mount
/// points, generated files): Docker keeps these in an "init" layer that
/// `diff` never shows, so they are left out here too, with the directories
/// that only changed because of them.
const INIT_PATHS: &[&str] = &[
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/dev/console",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
    "/sbin/docker-init",
];

fn without_init_layer(all: BTreeMap<String, (ChangeKind, bool)>) -> Vec<Change> {
    let is_init = |p: &str| INIT_PATHS.contains(&p);
    let under = |p: &str, dir: &str| {
        p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/'
    };
    let kept: Vec<(&String, &(ChangeKind, bool))> =
        all.iter().filter(|(p, _)| !is_init(p)).collect();
    kept.iter()
        .filter(|(p, (_, is_dir))| {
            if !is_dir {
                return true;
            }
            let had = all.keys().any(|q| under(q, p));
            let has = kept.iter().any(|(q, _)| under(q, p));
            // A directory only copied up (or created) for init-layer files.
            !had || has || !all.keys().filter(|q| under(q, p)).all(|q| is_init(q))
        })
        .map(|(p, (k, _))| Change {
            path: (*p).clone(),
            kind: *k,
        })
        .collect()
}

struct Walker<'a> {
    lowers: &'a [OwnedFd],
    out: &'a mut BTreeMap<String, (ChangeKind, bool)>,
}

fn display(comps: &[OsString]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&c.to_string_lossy());
    }
    s
}

impl Walker<'_> {
    fn in_lower(&self, comps: &[OsString]) -> bool {
        let Some((name, parent)) = comps.split_last() else {
            return true;
        };
        self.lowers.iter().any(|l| {
            open_dir_in(l, parent)
                .ok()
                .and_then(|d| lstat_at(&d, name).ok().flatten())
                .is_some()
        })
    }

    /// Names the lower layers hold in directory `comps`.
    fn lower_names(&self, comps: &[OsString]) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        for l in self.lowers {
            if let Ok(d) = open_dir_in(l, comps)
                && let Ok(n) = names(&d)
            {
                v.extend(n);
            }
        }
        v.sort();
        v.dedup();
        v
    }

    fn walk(&mut self, dir: &OwnedFd, comps: &mut Vec<OsString>) -> io::Result<()> {
        let mut entries = names(dir)?;
        entries.sort();
        for n in entries {
            let Some(st) = lstat_at(dir, &n)? else {
                continue;
            };
            comps.push(n.clone());
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft == FileType::CharacterDevice && st.st_rdev == 0 {
                self.out
                    .insert(display(comps), (ChangeKind::Deleted, false));
            } else {
                let kind = if self.in_lower(comps) {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                self.out
                    .insert(display(comps), (kind, ft == FileType::Directory));
                if ft == FileType::Directory {
                    let sub = rustix::fs::openat(
                        dir,
                        n.as_os_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    let mut buf = [0u8; 4];
                    let opaque = matches!(
                        rustix::fs::fgetxattr(&sub, "trusted.overlay.opaque", &mut buf),
                        Ok(1) if buf[0] == b'y'
                    );
                    if opaque && kind == ChangeKind::Modified {
                        let present = names(&sub)?;
                        for hidden in self.lower_names(comps) {
                            if !present.contains(&hidden) {
                                comps.push(hidden);
                                self.out
                                    .insert(display(comps), (ChangeKind::Deleted, false));
                                comps.pop();
                            }
                        }
                    }
                    self.walk(&sub, comps)?;
                }
            }
            comps.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_layer_entries_are_hidden() {
        let mut m = BTreeMap::new();
        for (p, k, d) in [
            ("/dev", ChangeKind::Added, true),
            ("/etc", ChangeKind::Modified, true),
            ("/etc/hostname", ChangeKind::Added, false),
            ("/tmp", ChangeKind::Modified, true),
            ("/tmp/x", ChangeKind::Added, false),
            ("/var", ChangeKind::Modified, true),
        ] {
            m.insert(p.to_owned(), (k, d));
        }
        let paths: Vec<String> = without_init_layer(m).into_iter().map(|c| c.path).collect();
        assert_eq!(paths, ["/tmp", "/tmp/x", "/var"]);
    }
}
