//! The overlayfs driver: each committed layer's `diff/` is a lower dir; a
//! container gets an `upper` (`containers/<key>/diff`) and a `work` dir.
//!
//! Lower dirs are named in the mount options through short symlinks
//! (`<root>/l/<16 hex>` → `../snapshots/<chain>/diff`), like Docker's
//! overlay2 `l/` dir, so that about 80 layers fit in the one page of mount
//! data the kernel accepts with a root such as `/var/lib/wharf/snapshots`.

use std::fs;
use std::path::{Path, PathBuf};

use super::store::{Store, usage, validate_key};
use super::{
    Detached, DriverKind, Mount, PreparedLayer, SnapshotError, SnapshotInfo, SnapshotKind,
    Snapshotter, Usage, io_err,
};
use crate::digest::Digest;
use crate::layer::fsutil::remove_tree;

/// Mount data must fit in a page; keep a margin for the kernel's own use.
const MOUNT_DATA_LIMIT: usize = 4000;

/// Overlayfs snapshotter. See [`super`] for the layout.
#[derive(Debug, Clone)]
pub struct OverlaySnapshotter {
    store: Store,
}

impl OverlaySnapshotter {
    /// Opens (creating) an overlay snapshot root.
    pub fn open(root: &Path) -> Result<OverlaySnapshotter, SnapshotError> {
        let store = Store::open(root, DriverKind::Overlay)?;
        let l = root.join("l");
        fs::create_dir_all(&l).map_err(io_err("create directory", &l))?;
        Ok(OverlaySnapshotter { store })
    }

    fn short_name(chain_id: &Digest) -> String {
        chain_id.hex()[..16].to_owned()
    }

    fn link_path(&self, chain_id: &Digest) -> PathBuf {
        self.store.root().join("l").join(Self::short_name(chain_id))
    }

    fn mounts_for(&self, key: &str, parent: Option<&Digest>) -> Result<Vec<Mount>, SnapshotError> {
        let dir = self.store.container_dir(key);
        let upper = dir.join("diff");
        let Some(parent) = parent else {
            return Ok(vec![Mount {
                typ: "bind".into(),
                source: upper.display().to_string(),
                target: None,
                options: vec!["rbind".into(), "rw".into()],
            }]);
        };
        let chain = self.store.chain(parent)?;
        let lowers: Vec<String> = chain
            .iter()
            .map(|c| self.link_path(c).display().to_string())
            .collect();
        let options = vec![
            "index=off".to_owned(),
            format!("lowerdir={}", lowers.join(":")),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", dir.join("work").display()),
        ];
        let bytes = options.iter().map(|o| o.len() + 1).sum::<usize>();
        if bytes > MOUNT_DATA_LIMIT {
            return Err(SnapshotError::TooManyLayers {
                layers: chain.len(),
                bytes,
                limit: MOUNT_DATA_LIMIT,
            });
        }
        Ok(vec![Mount {
            typ: "overlay".into(),
            source: "overlay".into(),
            target: None,
            options,
        }])
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn driver(&self) -> &'static str {
        "overlay"
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
        let chain_id = prepared.chain_id().clone();
        let link = self.link_path(&chain_id);
        let short = Self::short_name(&chain_id);
        self.store.commit_layer(prepared, diff_id, |tmp| {
            let f = tmp.join("link");
            fs::write(&f, &short).map_err(io_err("write", &f))?;
            // Created before the rename so a committed layer always has its
            // link; dangling until then, and harmless if the commit fails.
            let target = format!("../snapshots/{}/diff", chain_id.hex());
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io_err("create link", &link)(e)),
            }
        })
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
        if let Some(p) = parent {
            self.store.chain(p)?;
        }
        let tmp = self.store.new_tmp("containers")?;
        let result = (|| {
            for d in ["diff", "work"] {
                let p = tmp.join(d);
                fs::create_dir(&p).map_err(io_err("create directory", &p))?;
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
        self.mounts_for(key, parent)
    }

    fn container_mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        validate_key(key)?;
        let dir = self.store.container_dir(key);
        if !dir.is_dir() {
            return Err(SnapshotError::NotFound { id: key.to_owned() });
        }
        let parent = Store::read_parent(&dir)?;
        self.mounts_for(key, parent.as_ref())
    }

    fn detach(&self, id: &str) -> Result<Detached, SnapshotError> {
        let (kind, path) = self.store.hide(id)?;
        if kind == SnapshotKind::Layer
            && let Ok(d) = id.parse::<Digest>()
        {
            let link = self.link_path(&d);
            match fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &link)(e)),
            }
        }
        Ok(Detached { path })
    }

    fn usage(&self, id: &str) -> Result<Usage, SnapshotError> {
        let (_, dir, _) = self.store.locate(id)?;
        usage(&dir.join("diff"))
    }

    fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        self.store.list()
    }
}

/// Whether an overlay mount works with directories under `root` (needs
/// privileges and a filesystem overlayfs accepts as upper).
///
/// The superblock is created with the new mount API (`fsopen` +
/// `FSCONFIG_CMD_CREATE`) and never attached: overlayfs validates the upper
/// and work directories when the superblock is created, nothing is mounted
/// (a killed probe cannot leave a mount behind), and the superblock's
/// teardown, which waits for an RCU grace period (100-300 ms here, as does
/// `umount2` after a mount probe), runs on a detached thread instead of
/// delaying the caller. Kernels without `fsopen` (before 5.2) get the mount
/// probe.
pub(crate) fn probe(root: &Path) -> bool {
    let dir = root.join(format!("probe-{}", std::process::id()));
    let result = (|| -> std::io::Result<bool> {
        for d in ["lower", "upper", "work", "merged"] {
            fs::create_dir_all(dir.join(d))?;
        }
        fs::write(dir.join("lower/probe"), b"")?;
        match probe_fs_context(&dir) {
            Err(rustix::io::Errno::NOSYS) => probe_mount(&dir),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(true),
        }
    })();
    let _ = remove_tree(&dir);
    match result {
        Ok(ok) => ok,
        Err(e) => {
            tracing::info!(root = %root.display(), error = %e, "overlayfs unavailable, using the copy snapshotter");
            false
        }
    }
}

/// Creates (and drops) an overlay superblock on `dir`'s lower/upper/work.
fn probe_fs_context(dir: &Path) -> rustix::io::Result<()> {
    use rustix::mount::{FsOpenFlags, fsconfig_create, fsconfig_set_string, fsopen};
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, sub) in [
        ("lowerdir", "lower"),
        ("upperdir", "upper"),
        ("workdir", "work"),
    ] {
        fsconfig_set_string(&fs, key, dir.join(sub).as_path())?;
    }
    let created = fsconfig_create(&fs);
    // The last close tears the superblock down; nobody needs to wait for it.
    if let Err(e) = std::thread::Builder::new()
        .name("overlay-probe".into())
        .spawn(move || drop(fs))
    {
        tracing::debug!(error = %e, "cannot spawn a thread to close the probe; closing inline");
    }
    created
}

/// The classic probe: mount, look for the lower file, detach.
fn probe_mount(dir: &Path) -> std::io::Result<bool> {
    let m = Mount {
        typ: "overlay".into(),
        source: "overlay".into(),
        target: None,
        options: vec![
            format!("lowerdir={}", dir.join("lower").display()),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
        ],
    };
    m.mount_at(&dir.join("merged"))?;
    let seen = dir.join("merged/probe").exists();
    super::unmount(&dir.join("merged"))?;
    Ok(seen)
}
