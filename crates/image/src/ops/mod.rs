//! Image operations: the library API the daemon serves for `/images/*`.
//!
//! [`Images`] ties the three stores together (blobs in a
//! [`ContentStore`], unpacked layers in a [`Snapshotter`], references and
//! records in an [`ImageStore`]) and offers docker's operations on them:
//! [`Images::resolve`] (names as docker resolves them: `name:tag`,
//! `name@digest`, a full or short image ID), [`Images::tag`],
//! [`Images::list`] with filters, [`Images::inspect`], [`Images::history`],
//! [`Images::remove`] and [`Images::prune`], [`Images::save`] and
//! [`Images::load`] (`docker save`/`docker load` archives), and
//! [`Images::import`] (a root filesystem tarball becomes an image). Pulls and
//! pushes live in `wharf-registry` and write the same stores.
//!
//! The engine tells the operations which images containers use through the
//! [`ContainerUsage`] role trait (removal refuses such images unless forced,
//! and never while a container runs; prune skips them). Results are
//! docker-shaped values ([`types`]); errors carry an [`ErrorKind`] that the
//! API maps to a status code in one place. Every write keeps the stores
//! consistent: an image record is written only after its blobs and layer
//! snapshots are committed, and removed before they are.

mod archive;
mod changes;
mod commit;
mod import;
mod ingest;
mod list;
mod remove;
pub mod time;
pub mod types;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

pub use archive::LoadReport;
pub use changes::apply_changes;
pub use commit::CommitOptions;
pub use import::ImportOptions;
pub use list::{ImageFilters, ListOptions};
pub use remove::{PruneOptions, RemoveOptions};
pub use types::{
    DeleteItem, GraphDriver, HistoryItem, ImageInspect, ImageMetadata, ImageSummary, PruneReport,
    RootFsInfo,
};

use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::image_store::{ImageRecord, ImageStore, ImageStoreError, StoreContents};
use crate::layer::{ApplyOptions, LayerError};
use crate::manifest::{ConfigError, ImageConfig, ManifestError};
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{SnapshotError, Snapshotter, chain_ids};

/// What kind of failure an [`OpsError`] is: the API turns this (and only
/// this) into an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Internal,
}

/// Errors of the image operations.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No image has this name or ID (docker's wording, which clients match).
    #[error("No such image: {name}")]
    NotFound { name: String },
    /// A short ID matches more than one image.
    #[error("image ID prefix {prefix} is ambiguous: it matches {count} images")]
    AmbiguousId { prefix: String, count: usize },
    /// Not a valid reference (docker's messages).
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// Tags cannot carry digests.
    #[error("refusing to create a tag with a digest reference: {target}")]
    TagWithDigest { target: String },
    /// A container uses the image.
    #[error(
        "conflict: unable to delete {image} ({}) - image is being used by {} container {container}",
        if *running { "cannot be forced" } else { "must be forced" },
        if *running { "running" } else { "stopped" }
    )]
    InUse {
        image: String,
        container: String,
        running: bool,
    },
    /// Deleting by ID an image tagged in several repositories needs force.
    #[error(
        "conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories"
    )]
    MultipleRepositories { image: String },
    /// An unknown filter name.
    #[error("invalid filter '{name}'")]
    InvalidFilter { name: String },
    /// A filter value that cannot be used.
    #[error("invalid filter '{name}={value}'")]
    InvalidFilterValue { name: String, value: String },
    /// An import change that is not allowed or not understood.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    /// A `docker load` archive that does not hold what it should.
    #[error("invalid image archive: {reason}")]
    InvalidArchive { reason: String },
    /// The config lists a different number of layers than were given.
    #[error("image config {id} has {diff_ids} diff IDs but the image has {layers} layers")]
    LayerCount {
        id: Digest,
        diff_ids: usize,
        layers: usize,
    },
    /// A layer's content does not hash to the diff ID the config gives.
    #[error("layer {layer} has diff ID {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        layer: String,
        expected: Digest,
        actual: Digest,
    },
    /// The image metadata could not be read or written.
    #[error("image metadata")]
    Store(#[from] ImageStoreError),
    /// A blob could not be read or written.
    #[error("blob {digest}")]
    Content {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    /// A layer snapshot operation failed.
    #[error("layer snapshot {id}")]
    Snapshot {
        id: String,
        #[source]
        source: SnapshotError,
    },
    /// Applying a layer failed.
    #[error("cannot unpack layer {layer}")]
    Layer {
        layer: String,
        #[source]
        source: LayerError,
    },
    /// An image config is invalid.
    #[error("image config {id}")]
    Config {
        id: String,
        #[source]
        source: ConfigError,
    },
    /// A manifest is invalid.
    #[error("manifest {digest}")]
    Manifest {
        digest: String,
        #[source]
        source: ManifestError,
    },
    /// Reading or writing an archive or a temporary file failed.
    #[error("{op} {what}")]
    Io {
        op: &'static str,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl OpsError {
    /// The kind the API maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpsError::NotFound { .. } => ErrorKind::NotFound,
            OpsError::InUse { .. } | OpsError::MultipleRepositories { .. } => ErrorKind::Conflict,
            OpsError::AmbiguousId { .. }
            | OpsError::InvalidReference(_)
            | OpsError::TagWithDigest { .. }
            | OpsError::InvalidFilter { .. }
            | OpsError::InvalidFilterValue { .. }
            | OpsError::InvalidChange { .. }
            | OpsError::InvalidArchive { .. }
            | OpsError::LayerCount { .. }
            | OpsError::DiffIdMismatch { .. }
            | OpsError::Layer { .. }
            | OpsError::Config { .. }
            | OpsError::Manifest { .. } => ErrorKind::InvalidArgument,
            OpsError::Store(_)
            | OpsError::Content { .. }
            | OpsError::Snapshot { .. }
            | OpsError::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_err(
    op: &'static str,
    what: impl std::fmt::Display,
) -> impl FnOnce(std::io::Error) -> OpsError {
    let what = what.to_string();
    move |source| OpsError::Io { op, what, source }
}

pub(crate) fn content_err(digest: &Digest) -> impl FnOnce(ContentError) -> OpsError + '_ {
    move |source| OpsError::Content {
        digest: digest.clone(),
        source,
    }
}

pub(crate) fn snapshot_err(id: &Digest) -> impl FnOnce(SnapshotError) -> OpsError + '_ {
    move |source| OpsError::Snapshot {
        id: id.to_string(),
        source,
    }
}

/// One container's use of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    /// The container ID.
    pub id: String,
    /// Running (or paused): the image cannot be removed even by force.
    pub running: bool,
}

/// The engine's answer to "which containers use this image?".
pub trait ContainerUsage: Send + Sync {
    /// Containers created from image `id`.
    fn containers_using(&self, id: &Digest) -> Vec<ContainerUse>;
}

/// A [`ContainerUsage`] for tools without containers: nothing is in use.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContainers;

impl ContainerUsage for NoContainers {
    fn containers_using(&self, _id: &Digest) -> Vec<ContainerUse> {
        Vec::new()
    }
}

/// An image a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub id: Digest,
    pub record: ImageRecord,
    /// The full reference the name matched, when it was a name (not an ID).
    pub reference: Option<String>,
}

/// The image operations over one set of stores.
#[derive(Clone)]
pub struct Images {
    content: ContentStore,
    snapshots: Arc<dyn Snapshotter>,
    store: ImageStore,
    containers: Arc<dyn ContainerUsage>,
    apply: ApplyOptions,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("content", &self.content.root())
            .field("snapshots", &self.snapshots)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Images {
    /// Operations over these stores; no container uses any image until
    /// [`Images::with_containers`] says otherwise.
    pub fn new(content: ContentStore, snapshots: Arc<dyn Snapshotter>, store: ImageStore) -> Self {
        Images {
            content,
            snapshots,
            store,
            containers: Arc::new(NoContainers),
            apply: ApplyOptions::default(),
        }
    }

    /// Uses `containers` to learn which images are in use.
    pub fn with_containers(mut self, containers: Arc<dyn ContainerUsage>) -> Self {
        self.containers = containers;
        self
    }

    /// Options for layers unpacked by load and import.
    pub fn with_apply_options(mut self, apply: ApplyOptions) -> Self {
        self.apply = apply;
        self
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn snapshots(&self) -> &Arc<dyn Snapshotter> {
        &self.snapshots
    }

    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    /// Finds the image `name` means, as docker does: a full ID
    /// (`sha256:<hex>` or 64 hex), then a reference (`busybox` is
    /// `docker.io/library/busybox:latest`; `name@sha256:...` by digest),
    /// then a unique ID prefix (`3f5`, `sha256:3f5`).
    pub fn resolve(&self, name: &str) -> Result<Resolved, OpsError> {
        let contents = self.store.contents()?;
        resolve_in(&contents, name)
    }

    /// Points `target` (tag `latest` when none) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), OpsError> {
        let target_ref = parse_reference(target)?;
        if target_ref.digest().is_some() {
            return Err(OpsError::TagWithDigest {
                target: target.to_owned(),
            });
        }
        let now = time::now_rfc3339();
        self.store.update(|c| {
            let r = resolve_in(c, source)?;
            c.refs.insert(target_ref.to_string(), r.id.clone());
            if let Some(rec) = c.images.get_mut(&r.id) {
                rec.last_tag_time = Some(now);
            }
            tracing::debug!(image = %r.id, target = %target_ref, "tagged");
            Ok::<_, OpsError>(())
        })
    }

    /// The image config of a record.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig, OpsError> {
        let bytes = self.content.read_bytes(id).map_err(content_err(id))?;
        ImageConfig::from_bytes(bytes).map_err(|source| OpsError::Config {
            id: id.to_string(),
            source,
        })
    }

    /// `docker image inspect`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect, OpsError> {
        let contents = self.store.contents()?;
        let r = resolve_in(&contents, name)?;
        let config = self.config(&r.id)?;
        let file = config.file();
        let chains = chain_ids(config.diff_ids());
        let size: u64 = self.layer_sizes(&chains).iter().sum();
        let extra_str = |k: &str| {
            file.extra
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(ImageInspect {
            id: r.id.to_string(),
            repo_tags: repo_tags(&contents, &r.id),
            repo_digests: repo_digests(&contents, &r.record),
            parent: extra_str("parent"),
            comment: extra_str("comment"),
            created: file.created.clone().unwrap_or_default(),
            docker_version: extra_str("docker_version"),
            author: file.author.clone().unwrap_or_default(),
            config: file.config.clone().unwrap_or_default(),
            architecture: file.architecture.clone(),
            variant: file.variant.clone(),
            os: file.os.clone(),
            os_version: file.os_version.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            graph_driver: self.graph_driver(&chains),
            root_fs: RootFsInfo {
                typ: file.rootfs.typ.clone(),
                layers: config.diff_ids().iter().map(ToString::to_string).collect(),
            },
            metadata: ImageMetadata {
                last_tag_time: r.record.last_tag_time.clone().unwrap_or_default(),
            },
        })
    }

    /// `docker history`: build steps, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, OpsError> {
        let contents = self.store.contents()?;
        let r = resolve_in(&contents, name)?;
        let config = self.config(&r.id)?;
        let file = config.file();
        let sizes = self.layer_sizes(&chain_ids(config.diff_ids()));
        let mut out = Vec::new();
        let mut layer = 0usize;
        if file.history.is_empty() {
            // No recorded steps: one anonymous step per layer.
            for s in &sizes {
                out.push(HistoryItem {
                    id: "<missing>".into(),
                    created: file
                        .created
                        .as_deref()
                        .and_then(time::parse_rfc3339)
                        .unwrap_or(0),
                    created_by: String::new(),
                    tags: Vec::new(),
                    size: i64::try_from(*s).unwrap_or(i64::MAX),
                    comment: String::new(),
                });
            }
        }
        for h in &file.history {
            let size = if h.empty_layer == Some(true) {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            out.push(HistoryItem {
                id: "<missing>".into(),
                created: h
                    .created
                    .as_deref()
                    .and_then(time::parse_rfc3339)
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size: i64::try_from(size).unwrap_or(i64::MAX),
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = r.id.to_string();
            top.tags = repo_tags(&contents, &r.id);
        }
        Ok(out)
    }

    /// Bytes of each layer snapshot's own files (0 for a missing one).
    fn layer_sizes(&self, chains: &[Digest]) -> Vec<u64> {
        chains
            .iter()
            .map(|c| {
                self.snapshots
                    .usage(&c.to_string())
                    .map(|u| u.size)
                    .unwrap_or(0)
            })
            .collect()
    }

    fn graph_driver(&self, chains: &[Digest]) -> GraphDriver {
        let mut data = std::collections::BTreeMap::new();
        let dir = |c: &Digest| -> PathBuf {
            self.snapshots
                .root()
                .join("snapshots")
                .join(c.hex())
                .join("diff")
        };
        if let Some((top, lower)) = chains.split_last() {
            data.insert("UpperDir".to_owned(), dir(top).display().to_string());
            if !lower.is_empty() {
                let l: Vec<String> = lower
                    .iter()
                    .rev()
                    .map(|c| dir(c).display().to_string())
                    .collect();
                data.insert("LowerDir".to_owned(), l.join(":"));
            }
        }
        GraphDriver {
            name: self.snapshots.driver().to_owned(),
            data,
        }
    }
}

pub(crate) fn parse_reference(s: &str) -> Result<Reference, OpsError> {
    Ok(Reference::parse(s)?)
}

/// Docker's short form of a full stored reference.
pub(crate) fn familiar(full: &str) -> String {
    Reference::parse_full(full)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| full.to_owned())
}

/// Familiar `name:tag` references of image `id`, sorted.
pub(crate) fn repo_tags(c: &StoreContents, id: &Digest) -> Vec<String> {
    let mut v: Vec<String> = c
        .refs
        .iter()
        .filter(|(r, i)| *i == id && !r.contains('@'))
        .map(|(r, _)| familiar(r))
        .collect();
    v.sort();
    v
}

/// Familiar `name@sha256:...` references of an image.
pub(crate) fn repo_digests(c: &StoreContents, rec: &ImageRecord) -> Vec<String> {
    let mut out: BTreeSet<String> = rec.repo_digests.iter().map(|r| familiar(r)).collect();
    for (r, i) in &c.refs {
        if *i == rec.id && r.contains('@') {
            out.insert(familiar(r));
        }
    }
    out.into_iter().collect()
}

/// [`Images::resolve`] over already-read contents.
pub(crate) fn resolve_in(c: &StoreContents, name: &str) -> Result<Resolved, OpsError> {
    let not_found = || OpsError::NotFound {
        name: name.to_owned(),
    };
    let by_id = |id: &Digest| {
        c.images.get(id).map(|rec| Resolved {
            id: id.clone(),
            record: rec.clone(),
            reference: None,
        })
    };
    // 1. A full ID.
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex && hex.len() == 64 {
        let id = Digest::from_hex(hex).map_err(|_| not_found())?;
        return by_id(&id).ok_or_else(not_found);
    }
    // 2. A reference.
    if let Ok(r) = Reference::parse(name) {
        let key = match r.digest() {
            Some(d) => r.name_only().with_digest(d.clone()).to_string(),
            None => r.to_string(),
        };
        if let Some(id) = c.refs.get(&key)
            && let Some(found) = by_id(id)
        {
            return Ok(Resolved {
                reference: Some(key),
                ..found
            });
        }
        if r.digest().is_some()
            && let Some(rec) = c
                .images
                .values()
                .find(|rec| rec.repo_digests.contains(&key))
        {
            return Ok(Resolved {
                id: rec.id.clone(),
                record: rec.clone(),
                reference: Some(key),
            });
        }
    }
    // 3. A unique ID prefix.
    if is_hex {
        let matches: Vec<&Digest> = c
            .images
            .keys()
            .filter(|d| d.hex().starts_with(hex))
            .collect();
        return match matches.as_slice() {
            [] => Err(not_found()),
            [one] => by_id(one).ok_or_else(not_found),
            many => Err(OpsError::AmbiguousId {
                prefix: hex.to_owned(),
                count: many.len(),
            }),
        };
    }
    Err(not_found())
}
