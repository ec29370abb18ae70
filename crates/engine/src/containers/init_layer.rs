//! The init layer: Docker's `<id>-init` layer, shared by every container.
//!
//! Every container needs the same mount points in its root (`/proc`,
//! `/sys`, `/dev`, and the files `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf` that wharf bind-mounts), and Docker's `/.dockerenv`
//! and `/etc/mtab`. Created by the runtime at start, each of them is an
//! overlayfs `mkdir`/`create` in the container's writable layer (a copy-up
//! of the parent, an entry in the work dir and a rename: about 15% of the
//! shim's CPU time per start). Docker puts them in a per-container init
//! layer below the writable one; their content never depends on the
//! container, so wharf keeps one such directory per data root and puts it
//! on top of every overlay root's lower dirs. The runtime then finds every
//! mount point present and creates nothing.
//!
//! As in Docker, the layer shadows what the image has at these paths (an
//! image's `/etc/resolv.conf` symlink, for instance, no longer decides
//! where the bind mount lands), and `diff`/`commit` never see it (it is a
//! lower layer, not the writable one).
//!
//! The directory is written once, under a temporary name renamed into
//! place, and never changed afterwards: overlayfs forbids changing a lower
//! dir under a mounted overlay. A change of content gets a new name
//! ([`NAME`]); older ones are removed at start-up when no container still
//! has them mounted.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use wharf_image::snapshot::Mount;

/// The directory below the data root; the suffix is the content version.
pub const NAME: &str = "init-v1";

/// Directories of the layer (mode 0755, as Docker's).
const DIRS: &[&str] = &["dev", "proc", "sys", "etc"];
/// Empty files of the layer.
const FILES: &[&str] = &[".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// Mount data must fit in a page (the snapshotter's own limit).
const MOUNT_DATA_LIMIT: usize = 4000;

/// Makes sure the init layer exists below `data_root` and returns its path.
pub fn ensure(data_root: &Path) -> io::Result<PathBuf> {
    let dir = data_root.join(NAME);
    if dir.is_dir() {
        return Ok(dir);
    }
    fs::create_dir_all(data_root)?;
    let tmp = data_root.join(format!(".{NAME}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let built = (|| {
        let mut b = fs::DirBuilder::new();
        b.mode(0o755);
        b.create(&tmp)?;
        for d in DIRS {
            b.create(tmp.join(d))?;
        }
        for f in FILES {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(tmp.join(f))?;
        }
        symlink("/proc/mounts", tmp.join("etc/mtab"))?;
        // Durable before it is named: a crash never leaves a partial layer
        // under the final name.
        for d in [tmp.join("etc"), tmp.clone()] {
            fs::File::open(d)?.sync_all()?;
        }
        match fs::rename(&tmp, &dir) {
            Ok(()) => fs::File::open(data_root)?.sync_all(),
            // Another daemon process built it first.
            Err(_) if dir.is_dir() => {
                fs::remove_dir_all(&tmp)?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    })();
    if built.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    built.map(|()| dir)
}

/// Removes init layers of other versions and crashed builds (called at
/// start-up, before any container is mounted by this daemon; an old layer
/// still mounted by a running container's root is kept: the removal of a
/// lower dir under a live overlay would break it).
pub fn remove_stale(data_root: &Path, in_use: &dyn Fn(&Path) -> bool) {
    let Ok(entries) = fs::read_dir(data_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = (name.starts_with("init-v") && name != NAME)
            || name.starts_with(&format!(".{NAME}.tmp-"))
            || (name.starts_with(".init-v") && name.contains(".tmp-"));
        if stale && !in_use(&entry.path()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// `mounts` with the init layer as the top lower dir of their overlay
/// mount. Unchanged when there is no overlay (the copy snapshotter) or when
/// the longer mount data would not fit in a page (the runtime then creates
/// the mount points in the writable layer, as without the layer).
pub fn apply(mut mounts: Vec<Mount>, layer: &Path) -> Vec<Mount> {
    for m in mounts.iter_mut().filter(|m| m.typ == "overlay") {
        let Some(i) = m.options.iter().position(|o| o.starts_with("lowerdir=")) else {
            continue;
        };
        let lower = &m.options[i]["lowerdir=".len()..];
        let new = format!("lowerdir={}:{lower}", layer.display());
        let bytes: usize =
            m.options.iter().map(|o| o.len() + 1).sum::<usize>() + new.len() - m.options[i].len();
        if bytes <= MOUNT_DATA_LIMIT && !layer.as_os_str().as_encoded_bytes().contains(&b':') {
            m.options[i] = new;
        }
    }
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(lower: &str) -> Mount {
        Mount {
            typ: "overlay".into(),
            source: "overlay".into(),
            target: None,
            options: vec![
                "index=off".into(),
                format!("lowerdir={lower}"),
                "upperdir=/u".into(),
                "workdir=/w".into(),
            ],
        }
    }

    #[test]
    fn the_layer_holds_the_mount_points_and_is_built_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = ensure(root.path()).unwrap();
        assert_eq!(dir, root.path().join(NAME));
        for d in DIRS {
            assert!(dir.join(d).is_dir(), "{d}");
        }
        for f in FILES {
            let md = fs::symlink_metadata(dir.join(f)).unwrap();
            assert!(md.is_file() && md.len() == 0, "{f}");
        }
        assert_eq!(
            fs::read_link(dir.join("etc/mtab")).unwrap(),
            Path::new("/proc/mounts")
        );
        // A second call keeps the layer (a lower dir must never change).
        let marker = dir.join("etc/hosts");
        let before = fs::metadata(&marker).unwrap().modified().unwrap();
        assert_eq!(ensure(root.path()).unwrap(), dir);
        assert_eq!(fs::metadata(&marker).unwrap().modified().unwrap(), before);
        let names: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![NAME.to_owned()], "no temporary left behind");
    }

    #[test]
    fn stale_layers_go_unless_mounted() {
        let root = tempfile::tempdir().unwrap();
        ensure(root.path()).unwrap();
        for d in ["init-v0", "init-v00", ".init-v1.tmp-42", "containers"] {
            fs::create_dir(root.path().join(d)).unwrap();
        }
        let keep = root.path().join("init-v00");
        remove_stale(root.path(), &|p| p == keep);
        let mut names: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["containers", "init-v00", NAME]);
    }

    #[test]
    fn the_layer_goes_on_top_of_the_lower_dirs() {
        let m = apply(vec![overlay("/l/a:/l/b")], Path::new("/data/init-v1"));
        assert_eq!(m[0].options[1], "lowerdir=/data/init-v1:/l/a:/l/b");
        assert_eq!(m[0].options[2], "upperdir=/u");
        let bind = Mount {
            typ: "bind".into(),
            source: "/u".into(),
            target: None,
            options: vec!["rbind".into()],
        };
        assert_eq!(apply(vec![bind.clone()], Path::new("/i"))[0], bind);
    }

    #[test]
    fn mount_data_over_a_page_or_a_colon_keeps_the_mount_as_it_was() {
        let long = vec!["/l/0123456789abcdef"; 200].join(":");
        let m = overlay(&long[..3975]);
        assert_eq!(apply(vec![m.clone()], Path::new("/data/init-v1"))[0], m);
        let m = overlay("/l/a");
        assert_eq!(apply(vec![m.clone()], Path::new("/da:ta/init-v1"))[0], m);
    }
}
