//! `wharf-engine`: the container engine behind `wharfd`, free of any
//! transport. The API layer (`wharf-api`) parses HTTP into the typed
//! requests of these services and maps [`ErrorKind`] to status codes.
//!
//! - [`containers`]: the container lifecycle service (create .. remove,
//!   attach, logs, exec, reconciliation at start);
//! - [`system`]: `/info` and `/version` figures;
//! - [`events`]: the events bus;
//! - [`networks`]: the predefined `host` and `none` networks ([`filters`]:
//!   Docker's list filters); [`volumes`] and [`build_cache`]: what exists
//!   of volumes and builds (no named volumes, no builder yet);
//! - [`distribution`]: what a registry serves for a reference; [`search`]:
//!   image search on the registry index;
//! - [`images`]: image lookup for containers, and the [`ImageService`]
//!   (pull, push, tag, remove, save/load, import, disk usage);
//! - [`model`]: the container domain types (also the persisted shape);
//! - [`store`]: atomic per-container JSON records; [`layout`]: every path;
//! - [`spec`], [`etc_files`], [`rootfs_files`]: what a start needs;
//! - [`shim`]: the seam to the per-container shims.
//!
//! [`Engine::open`] wires the services for a data root.
#![forbid(unsafe_code)]

pub mod build_cache;
pub mod containers;
pub mod distribution;
pub mod error;
pub mod etc_files;
pub mod events;
pub mod filters;
pub mod hostconfig;
pub mod ids;
pub mod images;
pub mod layout;
pub mod model;
pub mod names;
pub mod networks;
pub mod rootfs_files;
pub mod search;
pub mod shim;
pub mod spec;
pub mod store;
pub mod system;
pub mod time;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

pub use containers::Containers;
pub use error::{EngineError, ErrorKind};
pub use events::Events;
pub use images::{ImageService, Images};
pub use layout::Layout;
pub use networks::Networks;
pub use system::System;
pub use volumes::Volumes;

/// Everything the engine needs from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub layout: Layout,
    pub shim_binary: PathBuf,
    /// The `--init` executable (`wharf-init`), if any.
    pub init_binary: Option<PathBuf>,
    pub default_ulimits: Vec<model::Ulimit>,
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
    pub cgroup_parent: String,
    pub registry: system::RegistrySettings,
    pub snapshot_driver: Option<wharf_image::snapshot::DriverKind>,
    pub debug: bool,
}

/// The wired services.
#[derive(Debug, Clone)]
pub struct Engine {
    pub containers: Arc<Containers>,
    pub system: Arc<System>,
    pub events: Arc<Events>,
    pub images: Images,
    pub image_service: Arc<ImageService>,
    pub networks: Arc<Networks>,
    pub volumes: Arc<Volumes>,
    pub builds: Arc<build_cache::Builds>,
}

impl Engine {
    /// Opens the stores under the data root, restores containers (re-adopting
    /// live shims) and returns the services.
    pub async fn open(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let l = &cfg.layout;
        for d in [
            l.data_root().to_owned(),
            l.containers(),
            l.exec_root().to_owned(),
            l.shims(),
            l.runtime_root(),
        ] {
            std::fs::create_dir_all(&d).map_err(error::io_err("create directory", &d))?;
        }
        // One subtree per container under these: spread them over the
        // filesystem's block groups (see `wharf_sys::fsflags`).
        for d in [l.containers(), l.shims(), l.runtime_root()] {
            spread_subdirectories(&d);
        }
        let content = wharf_image::content::ContentStore::open(l.content()).map_err(|source| {
            EngineError::Image {
                reference: String::new(),
                source: images::ImageError::Content {
                    digest: wharf_image::Digest::from_bytes(b""),
                    source,
                },
            }
        })?;
        let snapshots: Arc<dyn wharf_image::snapshot::Snapshotter> = Arc::from(
            wharf_image::snapshot::open_snapshotter(&l.snapshots(), cfg.snapshot_driver).map_err(
                |source| EngineError::Snapshot {
                    id: String::new(),
                    source,
                },
            )?,
        );
        let images = Images::new(
            wharf_image::image_store::ImageStore::open(l.images()),
            content.clone(),
            snapshots.clone(),
        );
        let events = Arc::new(Events::new());
        let containers = Containers::new(
            containers::ContainersConfig {
                layout: cfg.layout.clone(),
                shim_binary: cfg.shim_binary.clone(),
                init_binary: cfg.init_binary.clone(),
                default_ulimits: cfg.default_ulimits.clone(),
                log_max_size: cfg.log_max_size,
                log_max_files: cfg.log_max_files,
                cgroup_parent: cfg.cgroup_parent.clone(),
            },
            images.clone(),
            events.clone(),
        );
        containers.restore().await?;
        let networks = Arc::new(Networks::open(
            &l.networks(),
            containers.clone(),
            events.clone(),
        )?);
        let image_service = Arc::new(ImageService::new(
            wharf_image::ops::Images::new(
                content,
                snapshots,
                wharf_image::image_store::ImageStore::open(l.images()),
            )
            .with_containers(Arc::new(images::ContainerImages::new(&containers))),
            images::registry_options(&cfg.registry),
            events.clone(),
        ));
        let system = Arc::new(System::new(
            cfg.layout.clone(),
            containers.clone(),
            images.clone(),
            cfg.registry.clone(),
            cfg.debug,
            cfg.default_ulimits.clone(),
        )?);
        Ok(Engine {
            containers,
            system,
            images,
            image_service,
            networks,
            volumes: Arc::new(Volumes::new(events.clone())),
            builds: Arc::new(build_cache::Builds::new(events.clone())),
            events,
        })
    }
}

/// Marks `dir` as the top of directory hierarchies for ext4's allocator
/// (`chattr +T`) where that pays (ext4 without a journal), so that the
/// subtrees created under it (one per container or layer) are spread over
/// the block groups. A hint: failures are logged.
fn spread_subdirectories(dir: &std::path::Path) {
    match wharf_sys::fsflags::spread_subtrees(dir) {
        Ok(true) => tracing::debug!(dir = %dir.display(), "marked as a top directory"),
        Ok(false) => {}
        Err(e) => tracing::debug!(dir = %dir.display(), error = %e, "no top-directory flag"),
    }
}
