//! Image lookup for the engine: a reference (`busybox`, `busybox:1.36`,
//! `host/repo@sha256:...`) or an image ID (full, `sha256:`-prefixed, or an
//! unambiguous hex prefix) → the image's record and parsed config.
//!
//! The records live in the image store (`<data-root>/image/images.json`), the
//! configs in the content store. This module is the only place the engine
//! reads them, so moving the store is a change here only.
//!
//! The image operations the API serves (pull, push, tag, remove, save,
//! load, import, disk usage) are the [`ImageService`] in the submodules.

mod error;
mod progress;
mod pull;
mod push;
mod service;
mod usage;

pub use error::ImageServiceError;
pub use progress::{Operation, Outcome, Progress, Step};
pub use pull::{PullRequest, pull_reference};
pub use push::PushRequest;
pub use service::{ImageService, ImportRequest, LoginRequest, registry_options};
pub use usage::{ContainerImages, ContainerSize, DiskUsage};
pub use wharf_registry::Credentials;

use std::sync::Arc;

use wharf_image::content::{ContentError, ContentStore};
use wharf_image::image_store::{ImageRecord, ImageStore, ImageStoreError};
use wharf_image::manifest::{ConfigError, ImageConfig};
use wharf_image::snapshot::Snapshotter;
use wharf_image::{Digest, Reference};

use crate::error::ErrorKind;

/// Why an image could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Nothing matches.
    #[error("no image matches {reference:?}")]
    NotFound { reference: String },
    /// An ID prefix matches several images.
    #[error("multiple images match the ID prefix {prefix:?}")]
    Ambiguous { prefix: String },
    /// The image store could not be read.
    #[error("image store")]
    Store {
        #[source]
        source: ImageStoreError,
    },
    /// The config blob is missing or unreadable.
    #[error("config blob {digest}")]
    Content {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    /// The config blob does not parse.
    #[error("config blob {digest}")]
    Config {
        digest: Digest,
        #[source]
        source: ConfigError,
    },
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound { .. } => ErrorKind::NotFound,
            ImageError::Ambiguous { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

/// A resolved image.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub record: ImageRecord,
    pub config: ImageConfig,
}

/// Read access to the local images.
#[derive(Debug, Clone)]
pub struct Images {
    store: ImageStore,
    content: ContentStore,
    snapshots: Arc<dyn Snapshotter>,
}

impl Images {
    pub fn new(
        store: ImageStore,
        content: ContentStore,
        snapshots: Arc<dyn Snapshotter>,
    ) -> Images {
        Images {
            store,
            content,
            snapshots,
        }
    }

    pub fn snapshots(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshots
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    /// Number of images (distinct IDs).
    pub fn count(&self) -> Result<usize, ImageError> {
        Ok(self
            .store
            .list()
            .map_err(|source| ImageError::Store { source })?
            .len())
    }

    /// Resolves a reference or ID the way `docker run NAME` does.
    pub fn resolve(&self, input: &str) -> Result<ResolvedImage, ImageError> {
        let not_found = || ImageError::NotFound {
            reference: input.to_owned(),
        };
        let st = |source| ImageError::Store { source };
        let hex = input.strip_prefix("sha256:");
        let record = if let Some(hex) = hex {
            self.by_id_prefix(hex)?.ok_or_else(not_found)?
        } else {
            let by_ref = match Reference::parse(input) {
                Ok(r) => self.store.resolve(&r.to_string()).map_err(st)?,
                Err(_) => None,
            };
            match by_ref {
                Some(r) => r,
                None if !input.is_empty()
                    && input.len() <= 64
                    && input.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    self.by_id_prefix(input)?.ok_or_else(not_found)?
                }
                None => return Err(not_found()),
            }
        };
        let bytes = self
            .content
            .read_bytes(&record.id)
            .map_err(|source| ImageError::Content {
                digest: record.id.clone(),
                source,
            })?;
        let config = ImageConfig::from_bytes(bytes).map_err(|source| ImageError::Config {
            digest: record.id.clone(),
            source,
        })?;
        Ok(ResolvedImage { record, config })
    }

    fn by_id_prefix(&self, hex: &str) -> Result<Option<ImageRecord>, ImageError> {
        let all = self
            .store
            .list()
            .map_err(|source| ImageError::Store { source })?;
        let mut hits = all.into_iter().filter(|r| r.id.hex().starts_with(hex));
        let first = hits.next();
        if hits.next().is_some() {
            return Err(ImageError::Ambiguous {
                prefix: hex.to_owned(),
            });
        }
        Ok(first)
    }
}
