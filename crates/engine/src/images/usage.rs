//! What containers use and what everything occupies on disk:
//! [`ContainerImages`] answers the image library's "which containers use
//! this image" (so `rmi` refuses images in use and prune skips them), and
//! [`ImageService::disk_usage`] gathers `/system/df`'s figures from the
//! snapshots themselves (allocated bytes, each inode once).

use std::sync::{Arc, Weak};

use wharf_image::Digest;
use wharf_image::ops::{ContainerUsage, ContainerUse, ImageSummary, ListOptions};
use wharf_image::snapshot::SnapshotKind;

use super::error::ImageServiceError;
use super::service::ImageService;
use crate::containers::Containers;
use crate::model::{Container, Status};

/// The container service seen as the image library's [`ContainerUsage`].
/// Weak: the container service does not depend on the image service.
#[derive(Debug, Clone)]
pub struct ContainerImages(pub Weak<Containers>);

impl ContainerImages {
    pub fn new(containers: &Arc<Containers>) -> ContainerImages {
        ContainerImages(Arc::downgrade(containers))
    }
}

impl ContainerUsage for ContainerImages {
    fn containers_using(&self, id: &Digest) -> Vec<ContainerUse> {
        let Some(containers) = self.0.upgrade() else {
            return Vec::new();
        };
        let id = id.to_string();
        containers
            .list()
            .into_iter()
            .filter(|c| c.image == id)
            .map(|c| ContainerUse {
                running: matches!(
                    c.state.status,
                    Status::Running | Status::Paused | Status::Restarting
                ),
                id: c.id,
            })
            .collect()
    }
}

/// A container's disk use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerSize {
    /// Bytes of its writable layer.
    pub size_rw: u64,
    /// Bytes of its whole root filesystem: image layers plus writable layer.
    pub size_root_fs: u64,
}

/// `/system/df`.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Bytes of every image layer, each counted once.
    pub layers_size: u64,
    /// Every image, with `SharedSize` and its container count.
    pub images: Vec<ImageSummary>,
    /// Every container with its sizes, newest first.
    pub containers: Vec<(Container, ContainerSize)>,
}

fn container_size(ops: &wharf_image::ops::Images, c: &Container) -> ContainerSize {
    let size_rw = ops
        .snapshots()
        .usage(&c.snapshot_key)
        .map(|u| u.size)
        .unwrap_or(0);
    let image = ops
        .inspect(&c.image)
        .map(|i| u64::try_from(i.size).unwrap_or(0))
        .unwrap_or(0);
    ContainerSize {
        size_rw,
        size_root_fs: size_rw + image,
    }
}

impl ImageService {
    /// Sizes of these containers (`?size=1` of the container endpoints).
    pub async fn container_sizes(
        &self,
        containers: Vec<Container>,
    ) -> Result<Vec<ContainerSize>, ImageServiceError> {
        self.blocking("container sizes", move |ops| {
            Ok(containers.iter().map(|c| container_size(&ops, c)).collect())
        })
        .await
    }

    /// Everything `/system/df` reports.
    pub async fn disk_usage(
        &self,
        containers: Vec<Container>,
    ) -> Result<DiskUsage, ImageServiceError> {
        self.blocking("disk usage", move |ops| {
            let snaps = ops.snapshots();
            let layers_size = snaps
                .list()
                .map_err(|source| wharf_image::ops::OpsError::Snapshot {
                    id: "*".into(),
                    source,
                })?
                .iter()
                .filter(|s| s.kind == SnapshotKind::Layer)
                .map(|s| snaps.usage(&s.id).map(|u| u.size).unwrap_or(0))
                .sum();
            let images = ops.list(&ListOptions {
                shared_size: true,
                ..ListOptions::default()
            })?;
            let containers = containers
                .into_iter()
                .map(|c| {
                    let s = container_size(&ops, &c);
                    (c, s)
                })
                .collect();
            Ok(DiskUsage {
                layers_size,
                images,
                containers,
            })
        })
        .await
    }
}
