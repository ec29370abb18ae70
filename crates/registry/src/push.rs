//! Push: upload an image (or a whole index) from the local content store to
//! a registry repository and tag it.
//!
//! [`push_image`] takes the digest of a manifest or index that is in the
//! [`ContentStore`] together with everything it references, and:
//! 1. for an index, pushes each child manifest first (by digest);
//! 2. for each blob of a manifest (layers, bounded concurrency, then the
//!    config): `HEAD` — present means "Layer already exists"; otherwise, when
//!    [`PushOptions::mount_sources`] names other repositories of the same
//!    registry holding it, a cross-repository mount (`POST ?mount=&from=`);
//!    otherwise an upload, monolithic (`POST` + `PUT ?digest=`) or chunked
//!    (`PATCH` with `Content-Range`, then `PUT`), streamed from the blob file;
//! 3. `PUT`s the top manifest under the tag with its media type.
//!
//! Foreign / non-distributable layers are not uploaded (docker's rule).
//! Progress goes to the caller's channel ([`crate::progress`]).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use wharf_image::Digest;
use wharf_image::content::{ContentError, ContentStore};
use wharf_image::manifest::{
    Descriptor, ManifestError, ParsedManifest, media_type, parse_manifest,
};

use crate::client::{ClientError, MountOutcome, RegistryClient, UploadBody};
use crate::progress::{Phase, ProgressEvent, ProgressSink};

/// Default chunk size of chunked uploads.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A blob or manifest the image needs is not in the local store.
    #[error("cannot read {digest} from the local content store")]
    Content {
        digest: Digest,
        #[source]
        source: ContentError,
    },
    /// The local blob's size differs from its descriptor.
    #[error("local blob {digest} has {actual} bytes but the manifest says {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// A local manifest cannot be parsed.
    #[error("invalid local manifest {digest}")]
    Manifest {
        digest: Digest,
        #[source]
        source: ManifestError,
    },
    /// A registry call failed.
    #[error("push of {what} to {repo} failed")]
    Registry {
        repo: String,
        what: String,
        #[source]
        source: ClientError,
    },
    /// The registry stored a manifest under a different digest.
    #[error("registry reported digest {reported} for manifest {expected} in {repo}")]
    DigestMismatch {
        repo: String,
        expected: Digest,
        reported: String,
    },
    /// A blocking task was cancelled.
    #[error("local content task for {digest} did not complete")]
    Task { digest: Digest },
}

/// How blobs are uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// One `PUT` with the whole blob.
    Monolithic,
    /// `PATCH` requests of at most this many bytes, then an empty `PUT`.
    Chunked { chunk_size: u64 },
}

/// What a push may do besides uploading.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Upload style.
    pub upload: UploadMode,
    /// Repositories of the same registry known to hold a blob (for example
    /// where it was pulled from): tried as cross-repository mount sources.
    pub mount_sources: HashMap<Digest, Vec<String>>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            upload: UploadMode::Monolithic,
            mount_sources: HashMap::new(),
        }
    }
}

/// The result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Digest of the top manifest or index.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

/// Pushes the manifest or index `digest` (with everything it references,
/// read from `store`) to `repo` on `client`'s registry, tagged `tag`.
pub async fn push_image(
    client: &RegistryClient,
    store: &ContentStore,
    repo: &str,
    tag: &str,
    digest: &Digest,
    options: &PushOptions,
    progress: Option<mpsc::Sender<ProgressEvent>>,
) -> Result<Pushed, PushError> {
    let ctx = Ctx {
        client: client.clone(),
        store: store.clone(),
        repo: repo.to_owned(),
        options: Arc::new(options.clone()),
        sink: ProgressSink::new(progress),
    };
    ctx.sink
        .status(format!(
            "The push refers to repository [{}/{repo}]",
            client.host()
        ))
        .await;
    let (bytes, parsed) = ctx.load_manifest(digest).await?;
    match &parsed {
        ParsedManifest::Index { index, .. } => {
            for child in &index.manifests {
                let (child_bytes, child_parsed) = ctx.load_manifest(&child.digest).await?;
                if let ParsedManifest::Image { manifest, .. } = &child_parsed {
                    ctx.push_blobs(&manifest.layers, &manifest.config).await?;
                }
                ctx.put_manifest(
                    &child.digest.to_string(),
                    &child.digest,
                    child_parsed.media_type(),
                    child_bytes,
                )
                .await?;
            }
        }
        ParsedManifest::Image { manifest, .. } => {
            ctx.push_blobs(&manifest.layers, &manifest.config).await?;
        }
    }
    let size = bytes.len() as u64;
    let media_type = parsed.media_type().to_owned();
    ctx.put_manifest(tag, digest, &media_type, bytes).await?;
    ctx.sink
        .status(format!("{tag}: digest: {digest} size: {size}"))
        .await;
    ctx.sink.send(ProgressEvent::Digest(digest.clone())).await;
    Ok(Pushed {
        digest: digest.clone(),
        size,
        media_type,
    })
}

#[derive(Clone)]
struct Ctx {
    client: RegistryClient,
    store: ContentStore,
    repo: String,
    options: Arc<PushOptions>,
    sink: ProgressSink,
}

fn is_foreign(media: &str) -> bool {
    matches!(
        media,
        media_type::DOCKER_FOREIGN_LAYER_GZIP
            | media_type::OCI_LAYER_NONDIST
            | media_type::OCI_LAYER_NONDIST_GZIP
            | media_type::OCI_LAYER_NONDIST_ZSTD
    )
}

impl Ctx {
    async fn load_manifest(&self, digest: &Digest) -> Result<(Bytes, ParsedManifest), PushError> {
        let store = self.store.clone();
        let d = digest.clone();
        let bytes = tokio::task::spawn_blocking(move || store.read_bytes(&d))
            .await
            .map_err(|_| PushError::Task {
                digest: digest.clone(),
            })?
            .map_err(|source| PushError::Content {
                digest: digest.clone(),
                source,
            })?;
        // The manifest's own mediaType field says what it is.
        let parsed = parse_manifest(&bytes, None).map_err(|source| PushError::Manifest {
            digest: digest.clone(),
            source,
        })?;
        Ok((Bytes::from(bytes), parsed))
    }

    fn registry_err(&self, what: String) -> impl FnOnce(ClientError) -> PushError + '_ {
        move |source| PushError::Registry {
            repo: self.repo.clone(),
            what,
            source,
        }
    }

    async fn put_manifest(
        &self,
        reference: &str,
        digest: &Digest,
        media: &str,
        bytes: Bytes,
    ) -> Result<(), PushError> {
        let reported = self
            .client
            .put_manifest(&self.repo, reference, media, bytes)
            .await
            .map_err(self.registry_err(format!("manifest {reference}")))?;
        if let Some(r) = reported
            && r != digest.to_string()
        {
            return Err(PushError::DigestMismatch {
                repo: self.repo.clone(),
                expected: digest.clone(),
                reported: r,
            });
        }
        Ok(())
    }

    async fn push_blobs(
        &self,
        layers: &[Descriptor],
        config: &Descriptor,
    ) -> Result<(), PushError> {
        let layers: Vec<Descriptor> = layers
            .iter()
            .filter(|l| !is_foreign(&l.media_type))
            .cloned()
            .collect();
        for l in &layers {
            self.sink.layer(&l.digest, Phase::Preparing).await;
        }
        let limit = self.client.options().max_concurrent_transfers.max(1);
        let results: Vec<Result<(), PushError>> =
            futures_util::stream::iter(layers.into_iter().map(|l| {
                let ctx = self.clone();
                async move { ctx.push_blob(&l, true).await }
            }))
            .buffer_unordered(limit)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        self.push_blob(config, false).await
    }

    async fn push_blob(&self, desc: &Descriptor, report: bool) -> Result<(), PushError> {
        let digest = &desc.digest;
        let d = digest.to_string();
        // Local checks first: the blob must be there with the right size.
        let store = self.store.clone();
        let dd = digest.clone();
        let info = tokio::task::spawn_blocking(move || store.info(&dd))
            .await
            .map_err(|_| PushError::Task {
                digest: digest.clone(),
            })?
            .map_err(|source| PushError::Content {
                digest: digest.clone(),
                source,
            })?;
        if info.size != desc.size {
            return Err(PushError::SizeMismatch {
                digest: digest.clone(),
                expected: desc.size,
                actual: info.size,
            });
        }
        let phase = |p: Phase| async move {
            if report {
                self.sink.layer(digest, p).await;
            }
        };

        if self
            .client
            .head_blob(&self.repo, &d)
            .await
            .map_err(self.registry_err(format!("blob {d} (existence check)")))?
            .is_some()
        {
            phase(Phase::LayerAlreadyExists).await;
            return Ok(());
        }

        let mut session = None;
        let sources = self
            .options
            .mount_sources
            .get(digest)
            .cloned()
            .unwrap_or_default();
        for from in sources.iter().filter(|f| **f != self.repo) {
            match self.client.mount_blob(&self.repo, &d, from).await {
                Ok(MountOutcome::Mounted) => {
                    tracing::debug!(digest = %d, from = %from, repo = %self.repo, "blob mounted");
                    phase(Phase::Mounted { from: from.clone() }).await;
                    return Ok(());
                }
                Ok(MountOutcome::Upload(s)) => {
                    // Not mountable from there; the registry opened an upload.
                    session = Some(s);
                    break;
                }
                Err(e) => {
                    tracing::debug!(digest = %d, from = %from, error = %e, "cross-repository mount failed");
                }
            }
        }
        let mut session = match session {
            Some(s) => s,
            None => self
                .client
                .start_upload(&self.repo)
                .await
                .map_err(self.registry_err(format!("blob {d} (upload start)")))?,
        };
        let path = self.store.blob_path(digest);
        let total = info.size;
        phase(Phase::Pushing { current: 0, total }).await;
        match self.options.upload {
            UploadMode::Monolithic => {
                let body = UploadBody::File {
                    path,
                    offset: 0,
                    len: total,
                };
                self.client
                    .finish_upload(&self.repo, session, &d, Some(body))
                    .await
                    .map_err(self.registry_err(format!("blob {d}")))?;
            }
            UploadMode::Chunked { chunk_size } => {
                let chunk_size = chunk_size.max(1);
                let mut last = 0;
                while session.offset < total {
                    let len = chunk_size.min(total - session.offset);
                    let body = UploadBody::File {
                        path: path.clone(),
                        offset: session.offset,
                        len,
                    };
                    session = self
                        .client
                        .upload_chunk(&self.repo, session, body)
                        .await
                        .map_err(self.registry_err(format!("blob {d} (chunk)")))?;
                    if report {
                        self.sink
                            .bytes(
                                digest,
                                Phase::Pushing {
                                    current: session.offset,
                                    total,
                                },
                                &mut last,
                            )
                            .await;
                    }
                }
                self.client
                    .finish_upload(&self.repo, session, &d, None)
                    .await
                    .map_err(self.registry_err(format!("blob {d}")))?;
            }
        }
        phase(Phase::Pushed).await;
        Ok(())
    }
}
