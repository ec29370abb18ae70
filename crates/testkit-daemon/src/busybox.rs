//! The busybox image every test daemon starts with: one uncompressed layer
//! (static busybox, its applet links, /etc/passwd, /etc/group) written
//! straight into the daemon's content, snapshot and image stores and
//! tagged `busybox:latest`, so no registry is needed. [`Busybox`] says
//! what goes into the layer; the same description always gives the same
//! bytes (fixed mtimes and owners), hence the same image id.

use std::path::Path;

use wharf_image::content::ContentStore;
use wharf_image::image_store::{ImageRecord, ImageStore};
use wharf_image::snapshot::{chain_ids, open_snapshotter};

/// What the busybox layer holds.
#[derive(Clone, Copy, Debug)]
pub struct Busybox {
    /// Directories (ending in `/`), created before anything else.
    pub dirs: &'static [&'static str],
    /// Names linked to `bin/busybox` as `bin/<name>`.
    pub applets: &'static [&'static str],
    /// Contents of `/etc/passwd`.
    pub passwd: &'static str,
    /// Contents of `/etc/group`.
    pub group: &'static str,
    /// The one history entry's `created_by`.
    pub created_by: &'static str,
}

impl Busybox {
    /// Root only, with the applets the CLI suite uses.
    pub const ROOT_ONLY: Busybox = Busybox {
        dirs: &["bin/", "etc/", "tmp/", "root/"],
        applets: &[
            "sh", "echo", "cat", "sleep", "ls", "true", "false", "env", "stty", "printf", "id",
            "hostname", "ps", "wc",
        ],
        passwd: "root:x:0:0:root:/root:/bin/sh\n",
        group: "root:x:0:\n",
        created_by: "wharf cli test fixture",
    };

    /// Root plus user `web` (1000:1000, home `/home/web`) and group
    /// `extra` (2000, member `web`), and more applets (the daemon suite's
    /// user, group and workdir tests).
    pub const WITH_WEB_USER: Busybox = Busybox {
        dirs: &["bin/", "etc/", "tmp/", "root/", "home/", "home/web/"],
        applets: &[
            "sh", "echo", "cat", "sleep", "ls", "true", "false", "id", "env", "pwd", "hostname",
            "ps", "kill", "head", "wc", "grep", "touch", "mkdir", "seq", "tr", "printf", "stty",
        ],
        passwd: "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\n",
        group: "root:x:0:\nweb:x:1000:\nextra:x:2000:web\n",
        created_by: "wharf test fixture",
    };

    /// The layer as an uncompressed tar.
    pub fn layer(&self) -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        for d in self.dirs {
            entry(&mut t, d, Entry::Dir);
        }
        let busybox = wharf_testkit::busybox_path();
        let bytes =
            std::fs::read(&busybox).unwrap_or_else(|e| panic!("read {}: {e}", busybox.display()));
        entry(&mut t, "bin/busybox", Entry::File(&bytes, 0o755));
        for applet in self.applets {
            entry(&mut t, &format!("bin/{applet}"), Entry::Link("bin/busybox"));
        }
        entry(
            &mut t,
            "etc/passwd",
            Entry::File(self.passwd.as_bytes(), 0o644),
        );
        entry(
            &mut t,
            "etc/group",
            Entry::File(self.group.as_bytes(), 0o644),
        );
        t.into_inner().expect("finish the busybox layer")
    }
}

enum Entry<'a> {
    Dir,
    File(&'a [u8], u32),
    Link(&'a str),
}

/// Appends one entry owned by root with a fixed mtime.
fn entry(t: &mut tar::Builder<Vec<u8>>, path: &str, kind: Entry<'_>) {
    let mut h = tar::Header::new_gnu();
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    let res = match kind {
        Entry::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            t.append_data(&mut h, path, std::io::empty())
        }
        Entry::File(data, mode) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            t.append_data(&mut h, path, data)
        }
        Entry::Link(target) => {
            h.set_entry_type(tar::EntryType::Link);
            h.set_mode(0o755);
            h.set_size(0);
            t.append_link(&mut h, path, target)
        }
    };
    res.unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
}

/// A tar of regular files (`path`, contents; mode 0644) and directories
/// (`path` ending in `/`; mode 0755), owned by root.
pub fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let kind = if path.ends_with('/') {
            Entry::Dir
        } else {
            Entry::File(data, 0o644)
        };
        entry(&mut t, path, kind);
    }
    t.into_inner().expect("finish the tar")
}

/// Writes `image` as `docker.io/library/busybox:latest` into the stores
/// under `data_root` (a daemon's `--data-root`, before it starts).
pub fn install_busybox(data_root: &Path, image: &Busybox) {
    let layer = image.layer();
    let content = ContentStore::open(data_root.join("content")).unwrap();
    let snaps = open_snapshotter(&data_root.join("snapshots"), None).unwrap();
    // Uncompressed: the layer digest is its diff id.
    let layer_digest = content.write_bytes(&layer).unwrap();
    let chain = chain_ids(std::slice::from_ref(&layer_digest))
        .pop()
        .expect("one chain id per layer");
    let prepared = snaps.prepare_layer(&chain, None).unwrap();
    let stats = wharf_image::layer::apply_layer(&layer[..], &prepared.unpack_dir()).unwrap();
    snaps.commit_layer(prepared, &stats.diff_id).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": image.created_by}]
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = content.write_bytes(&config_bytes).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_bytes.len(), "digest": config_digest.to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": layer.len(), "digest": layer_digest.to_string()}]
    });
    let manifest_digest = content
        .write_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    ImageStore::open(data_root.join("image"))
        .record(
            ImageRecord::new(
                config_digest,
                manifest_digest,
                Some(chain),
                vec![layer_digest],
            ),
            &["docker.io/library/busybox:latest".to_owned()],
        )
        .unwrap();
}
