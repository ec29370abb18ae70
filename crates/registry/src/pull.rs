//! Pull: resolve a reference, fetch every layer concurrently and unpack it
//! while the bytes arrive, verify everything, then record the image.
//!
//! [`pull_image`] steps:
//! 1. fetch the manifest by tag or digest (all four media types accepted);
//!    its sha256 must match the digest asked for or announced
//!    (`Docker-Content-Digest`); an index is resolved to the entry for
//!    [`PullOptions::platform`] (attestations skipped), fetched by digest;
//! 2. fetch the config (verified by the content store) and compute the
//!    layers' chain IDs from its `rootfs.diff_ids`;
//! 3. layers whose snapshot exists are "Already exists"; the others are
//!    fetched concurrently (at most [`RegistryOptions::max_concurrent_transfers`]
//!    at once). Each download is one pass: network bytes → content store
//!    writer (hashing) and, on a blocking thread, → decompression →
//!    [`wharf_image::layer::apply_compressed_layer`] into the layer's
//!    snapshot directory, which computes the diff ID. A partial ingest left by
//!    an interrupted pull is continued with `Range: bytes=N-` (its stored
//!    bytes are replayed to the unpacker from disk); a registry that ignores
//!    the range (200) makes the ingest restart from zero. A connection lost
//!    mid-blob is resumed the same way, a bounded number of times;
//! 4. a layer is committed only when its blob digest (content store commit)
//!    and diff ID (against the config) both check out, and after its parent;
//!    when anything fails, uncommitted unpack directories are removed;
//! 5. the image is recorded in the [`ImageStore`] last, in one atomic write.
//!
//! Progress events ([`crate::progress`]) follow docker's sequence per layer:
//! Pulling fs layer, Downloading, Verifying Checksum, Download complete,
//! Extracting, Pull complete (or Already exists).
//!
//! [`RegistryOptions::max_concurrent_transfers`]: crate::endpoint::RegistryOptions::max_concurrent_transfers

use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, watch};

use wharf_image::content::{ContentError, ContentStore, Ingest, Writer};
use wharf_image::layer::{ApplyOptions, ApplyStats, LayerError, apply_compressed_layer};
use wharf_image::manifest::{
    ConfigError, Descriptor, ImageConfig, ManifestError, ParsedManifest, Platform, parse_manifest,
};
use wharf_image::snapshot::{SnapshotError, Snapshotter, chain_ids};
use wharf_image::{Digest, Reference};

use crate::client::{ClientError, RegistryClient};
use crate::progress::{Phase, ProgressEvent, ProgressSink};
use wharf_image::image_store::{ImageRecord, ImageStore, ImageStoreError};

/// How often a lost connection mid-blob is resumed before the pull fails.
const MAX_RESUMES: u32 = 5;
/// Chunks buffered between the download and the unpacker.
const PIPE_DEPTH: usize = 32;

/// Why a pull failed. Nothing is recorded in the image store when it does.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference's registry differs from the client's.
    #[error("reference {reference} is not on registry {host}")]
    WrongRegistry { reference: String, host: String },
    /// A registry request failed.
    #[error("pull of {what} failed")]
    Registry {
        what: String,
        #[source]
        source: ClientError,
    },
    /// The manifest or index is invalid or has no entry for the platform.
    #[error("invalid manifest for {reference}")]
    Manifest {
        reference: String,
        #[source]
        source: ManifestError,
    },
    /// Content does not hash to the digest it was requested or announced by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: Digest,
    },
    /// The image config is invalid.
    #[error("invalid image config {digest}")]
    Config {
        digest: Digest,
        #[source]
        source: ConfigError,
    },
    /// The config lists a different number of diff IDs than the manifest has layers.
    #[error("image config has {diff_ids} diff IDs but the manifest has {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    /// The content store refused the blob (digest or size mismatch, I/O).
    #[error("cannot store blob {digest}")]
    Content {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    /// The blob ended before its announced size, after every resume.
    #[error("blob {digest} ended after {received} of {size} bytes")]
    Truncated {
        digest: Digest,
        received: u64,
        size: u64,
    },
    /// Unpacking the layer failed.
    #[error("cannot unpack layer {digest}")]
    Layer {
        digest: Digest,
        #[source]
        source: LayerError,
    },
    /// The unpacked layer's diff ID differs from the config's.
    #[error("layer {digest} has diff ID {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    /// A snapshot operation failed.
    #[error("snapshot {chain_id} of layer {digest}")]
    Snapshot {
        digest: Digest,
        chain_id: Digest,
        #[source]
        source: SnapshotError,
    },
    /// A lower layer failed, so this one cannot be committed.
    #[error("layer {digest} not committed: a lower layer failed")]
    ParentFailed { digest: Digest },
    /// Recording the image failed.
    #[error("cannot record pulled image")]
    ImageStore(#[source] ImageStoreError),
    /// Reading the partial ingest or the stored blob failed.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task for {what} did not complete")]
    Task { what: String },
}

/// Where a pull puts what it fetches.
#[derive(Clone)]
pub struct PullTarget {
    /// Blobs (layers compressed, configs, manifests).
    pub content: ContentStore,
    /// Unpacked layers.
    pub snapshots: Arc<dyn Snapshotter>,
    /// Reference → image records.
    pub images: ImageStore,
}

/// Pull settings.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to select from an index.
    pub platform: Platform,
    /// Options of the layer apply (ownership).
    pub apply: ApplyOptions,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            apply: ApplyOptions::default(),
        }
    }
}

/// A completed pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The reference as pulled (full form).
    pub reference: String,
    /// The record written to the image store.
    pub record: ImageRecord,
    /// Digest of what the reference resolved to (index or manifest): the
    /// `Digest:` line docker prints.
    pub digest: Digest,
    /// Whether any layer had to be fetched or unpacked.
    pub downloaded: bool,
}

/// Pulls `reference` through `client` (which must be for its registry) into
/// `target`.
pub async fn pull_image(
    client: &RegistryClient,
    target: &PullTarget,
    reference: &Reference,
    options: &PullOptions,
    progress: Option<mpsc::Sender<ProgressEvent>>,
) -> Result<PulledImage, PullError> {
    if reference.domain() != client.host() {
        return Err(PullError::WrongRegistry {
            reference: reference.to_string(),
            host: client.host().to_owned(),
        });
    }
    let sink = ProgressSink::new(progress);
    let repo = reference.path().to_owned();
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => wharf_image::reference::DEFAULT_TAG.to_owned(),
    };
    sink.status(format!(
        "{tag_or_digest}: Pulling from {}",
        reference.familiar_name()
    ))
    .await;

    // 1. Manifest (and index).
    let top = client
        .get_manifest(&repo, &tag_or_digest)
        .await
        .map_err(|source| PullError::Registry {
            what: format!("manifest {reference}"),
            source,
        })?;
    let top_digest = Digest::from_bytes(&top.bytes);
    let expected = reference
        .digest()
        .map(ToString::to_string)
        .or(top.digest.clone());
    if let Some(exp) = expected
        && exp != top_digest.to_string()
    {
        return Err(PullError::DigestMismatch {
            what: format!("manifest {reference}"),
            expected: exp,
            actual: top_digest,
        });
    }
    let manifest_err = |source| PullError::Manifest {
        reference: reference.to_string(),
        source,
    };
    let parsed = parse_manifest(&top.bytes, top.media_type.as_deref()).map_err(manifest_err)?;
    let content = target.content.clone();
    let (index_digest, manifest_digest, manifest) = match parsed {
        ParsedManifest::Image { manifest, .. } => {
            store_bytes(&content, top.bytes.clone()).await?;
            (None, top_digest.clone(), manifest)
        }
        ParsedManifest::Index { index, .. } => {
            let chosen = index
                .select(&options.platform)
                .map_err(manifest_err)?
                .clone();
            store_bytes(&content, top.bytes.clone()).await?;
            let child = client
                .get_manifest(&repo, &chosen.digest.to_string())
                .await
                .map_err(|source| PullError::Registry {
                    what: format!("manifest {} of {reference}", chosen.digest),
                    source,
                })?;
            let actual = Digest::from_bytes(&child.bytes);
            if actual != chosen.digest {
                return Err(PullError::DigestMismatch {
                    what: format!("manifest for {} of {reference}", options.platform),
                    expected: chosen.digest.to_string(),
                    actual,
                });
            }
            let child_media = child.media_type.clone().or(Some(chosen.media_type.clone()));
            match parse_manifest(&child.bytes, child_media.as_deref()).map_err(manifest_err)? {
                ParsedManifest::Image { manifest, .. } => {
                    store_bytes(&content, child.bytes.clone()).await?;
                    (Some(top_digest.clone()), actual, manifest)
                }
                ParsedManifest::Index { media_type, .. } => {
                    return Err(manifest_err(ManifestError::UnsupportedMediaType {
                        media_type: format!("nested index {media_type}"),
                    }));
                }
            }
        }
    };

    // 2. Config.
    let config_desc = manifest.config.clone();
    fetch_small_blob(client, &content, &repo, &config_desc).await?;
    let config_bytes = read_blob(&content, &config_desc.digest).await?;
    let config = ImageConfig::from_bytes(config_bytes).map_err(|source| PullError::Config {
        digest: config_desc.digest.clone(),
        source,
    })?;
    let diff_ids = config.diff_ids().to_vec();
    if diff_ids.len() != manifest.layers.len() {
        return Err(PullError::LayerCount {
            diff_ids: diff_ids.len(),
            layers: manifest.layers.len(),
        });
    }
    let chains = chain_ids(&diff_ids);

    // 3. Layers, concurrently; gates order the commits base first.
    let n = manifest.layers.len();
    // Only the layer tasks hold the senders: a task that dies closes its gate.
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..n).map(|_| watch::channel(Gate::Pending)).unzip();
    let semaphore = Arc::new(Semaphore::new(
        client.options().max_concurrent_transfers.max(1),
    ));
    let shared = Arc::new(LayerShared {
        client: client.clone(),
        target: target.clone(),
        repo: repo.clone(),
        sink: sink.clone(),
        apply: options.apply.clone(),
        semaphore,
    });
    // Docker announces each layer once, in order: `Already exists` for a
    // layer unpacked before, `Pulling fs layer` for the others (pull_layer
    // checks again, and says nothing more for a present one).
    let snapshots = target.snapshots.clone();
    let present_chains = chains.clone();
    let present: Vec<bool> = tokio::task::spawn_blocking(move || {
        present_chains.iter().map(|c| snapshots.exists(c)).collect()
    })
    .await
    .map_err(|_| PullError::Task {
        what: "snapshot check".into(),
    })?;
    for (l, here) in manifest.layers.iter().zip(&present) {
        let phase = if *here {
            Phase::AlreadyExists
        } else {
            Phase::Waiting
        };
        sink.layer(&l.digest, phase).await;
    }
    let mut tasks = Vec::with_capacity(n);
    for (i, (desc, gate)) in manifest.layers.iter().zip(senders).enumerate() {
        let job = LayerJob {
            desc: desc.clone(),
            diff_id: diff_ids[i].clone(),
            chain_id: chains[i].clone(),
            parent: i.checked_sub(1).map(|p| chains[p].clone()),
            parent_gate: i.checked_sub(1).map(|p| receivers[p].clone()),
            gate,
            present: present[i],
        };
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let r = pull_layer(shared, &job).await;
            job.gate.send_replace(if r.is_ok() {
                Gate::Committed
            } else {
                Gate::Failed
            });
            r
        }));
    }
    let mut downloaded = false;
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(fetched)) => downloaded |= fetched,
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push(PullError::Task {
                what: "layer download".into(),
            }),
        }
    }
    // The root cause is the first failure that is not a consequence of a
    // lower layer failing.
    if let Some(i) = errors
        .iter()
        .position(|e| !matches!(e, PullError::ParentFailed { .. }))
    {
        return Err(errors.swap_remove(i));
    }
    if let Some(e) = errors.pop() {
        return Err(e);
    }

    // 4. Record the image, atomically, last.
    let pinned = format!("{}/{repo}@{top_digest}", reference.domain());
    let record = ImageRecord {
        id: config.id().clone(),
        manifest: manifest_digest,
        index: index_digest,
        chain_id: chains.last().cloned(),
        layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
        repo_digests: vec![pinned.clone()],
        sources: vec![format!("{}/{repo}", reference.domain())],
        last_tag_time: None,
    };
    let mut refs = vec![pinned];
    if reference.digest().is_none() {
        refs.push(reference.to_string());
    }
    let images = target.images.clone();
    let rec = record.clone();
    // Docker says `Downloaded newer image` whenever the name did not point
    // at this image before (a new tag of a present image included).
    let requested = refs.last().cloned().unwrap_or_default();
    let tag_updated = tokio::task::spawn_blocking(move || {
        let before = images.resolve(&requested)?.map(|r| r.id);
        images.record(rec, &refs)?;
        Ok::<_, wharf_image::image_store::ImageStoreError>(before)
    })
    .await
    .map_err(|_| PullError::Task {
        what: "image store".into(),
    })?
    .map_err(PullError::ImageStore)?
    .as_ref()
        != Some(config.id());
    let downloaded = downloaded || tag_updated;
    sink.send(ProgressEvent::Digest(top_digest.clone())).await;
    let familiar = reference.familiar_string();
    sink.status(if downloaded {
        format!("Status: Downloaded newer image for {familiar}")
    } else {
        format!("Status: Image is up to date for {familiar}")
    })
    .await;
    Ok(PulledImage {
        reference: reference.to_string(),
        record,
        digest: top_digest,
        downloaded,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Pending,
    Committed,
    Failed,
}

struct LayerShared {
    client: RegistryClient,
    target: PullTarget,
    repo: String,
    sink: ProgressSink,
    apply: ApplyOptions,
    semaphore: Arc<Semaphore>,
}

struct LayerJob {
    desc: Descriptor,
    diff_id: Digest,
    chain_id: Digest,
    parent: Option<Digest>,
    parent_gate: Option<watch::Receiver<Gate>>,
    gate: watch::Sender<Gate>,
    /// The layer's snapshot existed when the pull began.
    present: bool,
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PullError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| PullError::Task {
            what: what.to_owned(),
        })
}

async fn store_bytes(content: &ContentStore, bytes: Bytes) -> Result<Digest, PullError> {
    let c = content.clone();
    let d = Digest::from_bytes(&bytes);
    blocking("manifest store", move || c.write_bytes(&bytes))
        .await?
        .map_err(|source| PullError::Content { digest: d, source })
}

async fn read_blob(content: &ContentStore, digest: &Digest) -> Result<Vec<u8>, PullError> {
    let c = content.clone();
    let d = digest.clone();
    blocking("blob read", move || c.read_bytes(&d))
        .await?
        .map_err(|source| PullError::Content {
            digest: digest.clone(),
            source,
        })
}

/// Fetches a small blob (the config) into the content store, verified.
async fn fetch_small_blob(
    client: &RegistryClient,
    content: &ContentStore,
    repo: &str,
    desc: &Descriptor,
) -> Result<(), PullError> {
    let c = content.clone();
    let (d, size) = (desc.digest.clone(), desc.size);
    let content_err = |source| PullError::Content {
        digest: desc.digest.clone(),
        source,
    };
    let mut writer = match blocking("content writer", move || c.writer(&d, Some(size)))
        .await?
        .map_err(content_err)?
    {
        Ingest::Exists(_) => return Ok(()),
        Ingest::New(w) => w,
    };
    writer.reset().map_err(content_err)?;
    let mut resp = client
        .get_blob(repo, &desc.digest.to_string(), 0)
        .await
        .map_err(|source| PullError::Registry {
            what: format!("blob {}", desc.digest),
            source,
        })?;
    while let Some(chunk) = resp.chunk().await.map_err(|source| PullError::Registry {
        what: format!("blob {}", desc.digest),
        source,
    })? {
        writer.write_all(&chunk).map_err(|source| PullError::Io {
            path: content.blob_path(&desc.digest),
            source,
        })?;
    }
    blocking("content commit", move || writer.commit())
        .await?
        .map_err(content_err)?;
    Ok(())
}

/// Pulls one layer; `Ok(true)` when anything was downloaded or unpacked.
async fn pull_layer(shared: Arc<LayerShared>, job: &LayerJob) -> Result<bool, PullError> {
    let digest = job.desc.digest.clone();
    if job.present {
        // Checked (and announced as `Already exists`) with the layer list;
        // the parent chain is part of this chain ID, so it exists too.
        return Ok(false);
    }

    let permit = shared
        .semaphore
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| PullError::Task {
            what: format!("layer {digest}"),
        })?;

    // Prepare the unpack directory now (the parent may still be in flight:
    // snapshotters only need it at commit), so this layer streams too; a
    // snapshotter that refuses makes it unpack after the parent commits.
    let snapshots = shared.target.snapshots.clone();
    let (chain, parent) = (job.chain_id.clone(), job.parent.clone());
    let prepared = match blocking("snapshot prepare", move || {
        snapshots.prepare_layer(&chain, parent.as_ref())
    })
    .await?
    {
        Ok(p) => Some(p),
        Err(e) if job.parent.is_some() => {
            tracing::debug!(%digest, error = %e, "layer cannot be prepared before its parent; unpacking after download");
            None
        }
        Err(source) => return Err(snapshot_err(job, source)),
    };

    let content = shared.target.content.clone();
    let (d, size) = (digest.clone(), job.desc.size);
    let ingest = blocking("content writer", move || content.writer(&d, Some(size)))
        .await?
        .map_err(|source| PullError::Content {
            digest: digest.clone(),
            source,
        })?;

    let media = job.desc.media_type.clone();
    let stats = match (ingest, prepared) {
        (Ingest::New(writer), Some(prepared)) => {
            let unpack = prepared.unpack_dir();
            let stats = download(&shared, job, writer, Some(Unpack { dir: unpack, media })).await?;
            drop(permit);
            stats.map(|s| (s, prepared))
        }
        (Ingest::New(writer), None) => {
            download(&shared, job, writer, None).await?;
            drop(permit);
            None
        }
        (Ingest::Exists(_), prepared) => {
            // Blob already stored (an earlier pull or another image).
            shared.sink.layer(&digest, Phase::DownloadComplete).await;
            drop(permit);
            match prepared {
                Some(p) => Some((apply_stored(&shared, job, &p.unpack_dir()).await?, p)),
                None => None,
            }
        }
    };

    // Lower layers commit first.
    if let Some(mut rx) = job.parent_gate.clone() {
        let state =
            *rx.wait_for(|g| *g != Gate::Pending)
                .await
                .map_err(|_| PullError::ParentFailed {
                    digest: digest.clone(),
                })?;
        if state == Gate::Failed {
            return Err(PullError::ParentFailed { digest });
        }
    }
    let (stats, prepared) = match stats {
        Some(s) => s,
        None => {
            let snapshots = shared.target.snapshots.clone();
            let (chain, parent) = (job.chain_id.clone(), job.parent.clone());
            let p = blocking("snapshot prepare", move || {
                snapshots.prepare_layer(&chain, parent.as_ref())
            })
            .await?
            .map_err(|source| snapshot_err(job, source))?;
            (apply_stored(&shared, job, &p.unpack_dir()).await?, p)
        }
    };
    if stats.diff_id != job.diff_id {
        return Err(PullError::DiffIdMismatch {
            digest,
            expected: job.diff_id.clone(),
            actual: stats.diff_id,
        });
    }
    let snapshots = shared.target.snapshots.clone();
    let diff_id = stats.diff_id.clone();
    blocking("snapshot commit", move || {
        snapshots.commit_layer(prepared, &diff_id)
    })
    .await?
    .map_err(|source| snapshot_err(job, source))?;
    shared.sink.layer(&digest, Phase::PullComplete).await;
    Ok(true)
}

fn snapshot_err(job: &LayerJob, source: SnapshotError) -> PullError {
    PullError::Snapshot {
        digest: job.desc.digest.clone(),
        chain_id: job.chain_id.clone(),
        source,
    }
}

struct Unpack {
    dir: PathBuf,
    media: String,
}

/// Applies a layer from its stored blob (no download).
async fn apply_stored(
    shared: &LayerShared,
    job: &LayerJob,
    dir: &std::path::Path,
) -> Result<ApplyStats, PullError> {
    let digest = job.desc.digest.clone();
    let content = shared.target.content.clone();
    let file = {
        let d = digest.clone();
        blocking("blob open", move || content.read(&d))
            .await?
            .map_err(|source| PullError::Content {
                digest: digest.clone(),
                source,
            })?
    };
    let consumed = Arc::new(AtomicU64::new(0));
    let reader = CountingReader {
        inner: file,
        count: consumed.clone(),
    };
    let (dir, media, opts) = (
        dir.to_owned(),
        job.desc.media_type.clone(),
        shared.apply.clone(),
    );
    let handle = tokio::task::spawn_blocking(move || {
        apply_compressed_layer(reader, Some(&media), &dir, &opts)
    });
    let stats = report_extracting(shared, &digest, job.desc.size, &consumed, handle).await?;
    stats.map_err(|source| PullError::Layer { digest, source })
}

async fn report_extracting<T>(
    shared: &LayerShared,
    digest: &Digest,
    total: u64,
    consumed: &AtomicU64,
    mut handle: tokio::task::JoinHandle<T>,
) -> Result<T, PullError> {
    let mut last = 0;
    // Docker shows `Extracting` for every layer, however fast the unpack.
    shared
        .sink
        .layer(digest, Phase::Extracting { current: 0, total })
        .await;
    loop {
        tokio::select! {
            r = &mut handle => {
                return r.map_err(|_| PullError::Task { what: format!("unpack of {digest}") });
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let current = consumed.load(Ordering::Relaxed).min(total);
                shared.sink.bytes(digest, Phase::Extracting { current, total }, &mut last).await;
            }
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The unpacker's input: the bytes of an earlier partial ingest (replayed
/// from disk), then network chunks as they arrive.
struct PipeReader {
    prefix: Option<std::io::Take<std::fs::File>>,
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    consumed: Arc<AtomicU64>,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(p) = &mut self.prefix {
            let n = p.read(buf)?;
            if n > 0 {
                self.consumed.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(n);
            }
            self.prefix = None;
        }
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Path of the bytes an unfinished ingest holds (the content store's
/// documented layout, version 1: `ingest/<hex>/data`).
fn partial_ingest_path(content: &ContentStore, digest: &Digest) -> PathBuf {
    content
        .root()
        .join("ingest")
        .join(digest.hex())
        .join("data")
}

/// Downloads a blob into `writer` (resuming), feeding the unpacker on the
/// same pass when `unpack` is given; commits the blob when its digest checks
/// out. Returns the unpack result.
async fn download(
    shared: &LayerShared,
    job: &LayerJob,
    mut writer: Box<Writer>,
    unpack: Option<Unpack>,
) -> Result<Option<ApplyStats>, PullError> {
    let digest = job.desc.digest.clone();
    let d = digest.to_string();
    let size = job.desc.size;
    let registry_err = |source| PullError::Registry {
        what: format!("blob {d}"),
        source,
    };

    // First request: continue an earlier partial ingest when there is one.
    let mut offset = writer.offset();
    // Every byte stored already (a pull killed before its commit): a Range
    // request would be unsatisfiable (416); replay the bytes and commit.
    let complete_locally = size > 0 && offset >= size;
    let mut resp = if complete_locally {
        tracing::info!(%digest, offset, "partial ingest holds the whole blob; committing it");
        None
    } else {
        Some(
            shared
                .client
                .get_blob(&shared.repo, &d, offset)
                .await
                .map_err(registry_err)?,
        )
    };
    let mut prefix = None;
    if offset > 0 && (complete_locally || resp.as_ref().is_some_and(|r| r.offset == offset)) {
        tracing::info!(%digest, offset, "resuming layer download");
        let path = partial_ingest_path(&shared.target.content, &digest);
        let f = std::fs::File::open(&path).map_err(|source| PullError::Io { path, source })?;
        prefix = Some(f.take(offset));
    } else if offset > 0 {
        tracing::info!(%digest, offset, "registry ignored the range request; restarting the download");
        writer.reset().map_err(|source| PullError::Content {
            digest: digest.clone(),
            source,
        })?;
        offset = 0;
    }

    // The unpacker runs on a blocking thread, reading the same bytes.
    let consumed = Arc::new(AtomicU64::new(0));
    let (tx, unpacker) = match unpack {
        Some(u) => {
            let (tx, rx) = mpsc::channel::<Bytes>(PIPE_DEPTH);
            let reader = PipeReader {
                prefix,
                rx,
                current: Bytes::new(),
                consumed: consumed.clone(),
            };
            let opts = shared.apply.clone();
            let handle = tokio::task::spawn_blocking(move || {
                apply_compressed_layer(reader, Some(&u.media), &u.dir, &opts)
            });
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };

    let mut last = 0;
    let mut resumes = 0;
    let result: Result<(), PullError> = async {
        let Some(mut resp) = resp.take() else {
            return Ok(());
        };
        loop {
            // Bytes of this response already received in an earlier one.
            let mut skip = offset - resp.offset;
            let mut failed = None;
            loop {
                match resp.chunk().await {
                    Ok(Some(mut chunk)) => {
                        if skip > 0 {
                            let k = usize::try_from(skip.min(chunk.len() as u64)).unwrap_or(chunk.len());
                            let _ = chunk.split_to(k);
                            skip -= k as u64;
                            if chunk.is_empty() {
                                continue;
                            }
                        }
                        // The writer refuses bytes beyond the descriptor's size.
                        writer.write_all(&chunk).map_err(|source| PullError::Io {
                            path: partial_ingest_path(&shared.target.content, &digest),
                            source,
                        })?;
                        offset += chunk.len() as u64;
                        if let Some(tx) = &tx {
                            // A closed pipe means the unpacker stopped (its
                            // error is reported below); keep storing bytes.
                            let _ = tx.send(chunk).await;
                        }
                        shared
                            .sink
                            .bytes(&digest, Phase::Downloading { current: offset, total: size }, &mut last)
                            .await;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if offset >= size {
                return Ok(());
            }
            resumes += 1;
            if resumes > MAX_RESUMES {
                return match failed {
                    Some(source) => Err(registry_err(source)),
                    None => Err(PullError::Truncated {
                        digest: digest.clone(),
                        received: offset,
                        size,
                    }),
                };
            }
            tracing::warn!(%digest, offset, size, error = ?failed.as_ref().map(ToString::to_string), "layer download interrupted; resuming");
            writer.flush().map_err(|source| PullError::Io {
                path: partial_ingest_path(&shared.target.content, &digest),
                source,
            })?;
            resp = shared
                .client
                .get_blob(&shared.repo, &d, offset)
                .await
                .map_err(registry_err)?;
        }
    }
    .await;
    drop(tx);

    // Verify and commit the blob; the unpacker is always waited for, so its
    // directory is never removed while it is still being written.
    let committed = match &result {
        Ok(()) => {
            tracing::debug!(%digest, size, "layer blob received");
            shared.sink.layer(&digest, Phase::VerifyingChecksum).await;
            let r = blocking("content commit", move || writer.commit()).await;
            if matches!(r, Ok(Ok(_))) {
                shared.sink.layer(&digest, Phase::DownloadComplete).await;
            }
            Some(r)
        }
        // Keep the partial ingest for the next attempt.
        Err(_) => None,
    };
    let unpacked = match unpacker {
        Some(handle) => Some(report_extracting(shared, &digest, size, &consumed, handle).await?),
        None => None,
    };
    // The download error is the root cause when there is one.
    result?;
    if let Some(c) = committed {
        c?.map_err(|source| PullError::Content {
            digest: digest.clone(),
            source,
        })?;
    }
    match unpacked {
        Some(r) => Ok(Some(
            r.map_err(|source| PullError::Layer { digest, source })?,
        )),
        None => Ok(None),
    }
}
