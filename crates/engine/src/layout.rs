//! Where the engine keeps its state: one [`Layout`] computed from the data
//! root and the exec root, so every path is decided in one place.
//!
//! ```text
//! <data-root>/                    (default /var/lib/wharf)
//!   wharfd.lock                   flock(2) held by the running daemon
//!   content/                      blobs by digest (wharf-image ContentStore)
//!   snapshots/                    unpacked layers, container writable layers
//!   image/images.json             references -> images (ImageStore)
//!   network/predefined.json       IDs of the host and none networks (crate::networks)
//!   containers/<id>/
//!     config.v2.json              the container record (crate::store), version 1
//!     hostname hosts resolv.conf  generated, bind-mounted into the container
//!     <id>-json.log[.N]           json-file log, written by the shim
//!     rootfs/                     mount point of the container's root (while started)
//! <exec-root>/                    (default /run/wharf; tmpfs: gone on reboot)
//!   wharf.sock                    the API socket (default -H)
//!   wharfd.pid                    default --pidfile
//!   shims/<id>/                   the shim's socket and status files
//! ```

use std::path::{Path, PathBuf};

/// The paths of one daemon's state.
#[derive(Debug, Clone)]
pub struct Layout {
    data_root: PathBuf,
    exec_root: PathBuf,
}

impl Layout {
    /// The layout below `data_root` and `exec_root`.
    pub fn new(data_root: impl Into<PathBuf>, exec_root: impl Into<PathBuf>) -> Layout {
        Layout {
            data_root: data_root.into(),
            exec_root: exec_root.into(),
        }
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    pub fn exec_root(&self) -> &Path {
        &self.exec_root
    }

    pub fn lock_file(&self) -> PathBuf {
        self.data_root.join("wharfd.lock")
    }

    pub fn content(&self) -> PathBuf {
        self.data_root.join("content")
    }

    pub fn snapshots(&self) -> PathBuf {
        self.data_root.join("snapshots")
    }

    pub fn images(&self) -> PathBuf {
        self.data_root.join("image")
    }

    pub fn networks(&self) -> PathBuf {
        self.data_root.join("network")
    }

    pub fn containers(&self) -> PathBuf {
        self.data_root.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    pub fn container_rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    pub fn container_log(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    pub fn shims(&self) -> PathBuf {
        self.exec_root.join("shims")
    }

    /// The OCI runtime's state root (one directory per container).
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }

    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.shims().join(id)
    }

    pub fn default_socket(&self) -> PathBuf {
        self.exec_root.join("wharf.sock")
    }
}
