//! Pushes (`POST /images/{name}/push?tag=`): every blob of the image's
//! manifest is checked, mounted from another repository of the registry
//! that holds it (where the image was pulled from or pushed to before), or
//! uploaded; then the manifest is put under the tag. A successful push
//! records the repository as a mount source and its digest as a repo
//! digest, so the next push elsewhere on that registry mounts instead of
//! uploading.
//!
//! A pull that found a layer already unpacked (`Already exists`) does not
//! download its compressed blob, but a push needs it: such blobs are first
//! fetched from the repositories the image was pulled from (exactly the
//! bytes the manifest names), with the request's credentials when that is
//! the registry pushed to.
//!
//! Progress follows Docker's push: `The push refers to repository [...]`,
//! per layer `Preparing`, `Pushing` (bytes), `Pushed` / `Layer already
//! exists` / `Mounted from ...`, then `<tag>: digest: sha256:... size: N`
//! and an aux message with the tag, digest and size.

use std::sync::Arc;

use std::io::Write as _;

use tokio::sync::mpsc;
use wharf_image::Reference;
use wharf_image::content::Ingest;
use wharf_image::image_store::ImageRecord;
use wharf_image::manifest::{Descriptor, ParsedManifest, parse_manifest};
use wharf_image::ops::OpsError;
use wharf_registry::Credentials;
use wharf_registry::progress::ProgressEvent;
use wharf_registry::push::{PushOptions, push_image};

use super::error::ImageServiceError;
use super::progress::{Broadcast, Operation, Progress};
use super::service::ImageService;

/// `POST /images/{name}/push?tag=`.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// The repository (a tag here is used when `tag` is empty).
    pub name: String,
    /// The tag; empty with an untagged name pushes every local tag of it.
    pub tag: String,
    /// From `X-Registry-Auth`.
    pub credentials: Option<Credentials>,
}

impl ImageService {
    /// Fetches the manifest's layer blobs that are not stored locally from
    /// the image's source repositories.
    async fn fetch_missing_layers(
        &self,
        target: &Reference,
        record: &ImageRecord,
        credentials: &Option<Credentials>,
    ) -> Result<(), ImageServiceError> {
        let content = self.ops.content().clone();
        let manifest = record.manifest.clone();
        let (content, bytes) = tokio::task::spawn_blocking(move || {
            let b = content.read_bytes(&manifest);
            (content, b)
        })
        .await
        .map_err(|_| ImageServiceError::Task { what: "push" })?;
        let bytes = bytes.map_err(|source| ImageServiceError::StoreBlob {
            digest: record.manifest.clone(),
            source,
        })?;
        // An unparsable manifest is reported by the push itself.
        let Ok(ParsedManifest::Image { manifest, .. }) = parse_manifest(&bytes, None) else {
            return Ok(());
        };
        for layer in manifest
            .layers
            .iter()
            .filter(|l| !content.exists(&l.digest))
        {
            let mut last = None;
            for src in &record.sources {
                let Some((host, repo)) = src.split_once('/') else {
                    continue;
                };
                let creds = (host == target.domain())
                    .then(|| credentials.clone())
                    .flatten();
                match self.fetch_blob(host, repo, creds, layer).await {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Downloads one blob into the content store (digest and size checked
    /// by the store's commit).
    async fn fetch_blob(
        &self,
        host: &str,
        repo: &str,
        credentials: Option<Credentials>,
        desc: &Descriptor,
    ) -> Result<(), ImageServiceError> {
        let client = self.client(host, credentials)?;
        let fetch_err = |source| ImageServiceError::FetchLayer {
            digest: desc.digest.clone(),
            repo: format!("{host}/{repo}"),
            source: Box::new(source),
        };
        let mut resp = client
            .get_blob(repo, &desc.digest.to_string(), 0)
            .await
            .map_err(fetch_err)?;
        let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(16);
        let content = self.ops.content().clone();
        let digest = desc.digest.clone();
        let size = desc.size;
        let writer = tokio::task::spawn_blocking(move || {
            let store_err = |source| ImageServiceError::StoreBlob {
                digest: digest.clone(),
                source,
            };
            let mut w = match content.writer(&digest, Some(size)).map_err(store_err)? {
                Ingest::Exists(_) => return Ok(()),
                Ingest::New(w) => w,
            };
            w.reset().map_err(store_err)?;
            while let Some(chunk) = rx.blocking_recv() {
                w.write_all(&chunk)
                    .map_err(|source| ImageServiceError::WriteBlob {
                        digest: digest.clone(),
                        source,
                    })?;
            }
            w.commit().map_err(store_err)?;
            tracing::debug!(digest = %digest, "blob fetched for a push");
            Ok(())
        });
        let sent = async {
            while let Some(chunk) = resp.chunk().await.map_err(fetch_err)? {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Ok::<_, ImageServiceError>(())
        }
        .await;
        drop(tx);
        let written = writer
            .await
            .map_err(|_| ImageServiceError::Task { what: "push" })?;
        sent?;
        written
    }

    /// The local tags a push request names, each with its image record.
    fn push_targets(
        &self,
        req: &PushRequest,
    ) -> Result<Vec<(Reference, ImageRecord)>, ImageServiceError> {
        let r = Reference::parse_normalized(&req.name).map_err(OpsError::from)?;
        let contents = self.ops.store().contents().map_err(OpsError::from)?;
        let refs: Vec<Reference> = if !req.tag.is_empty() {
            vec![r.name_only().with_tag(&req.tag).map_err(OpsError::from)?]
        } else if r.tag().is_some() || r.digest().is_some() {
            vec![r.clone()]
        } else {
            let name = r.name();
            contents
                .refs
                .keys()
                .filter_map(|k| Reference::parse_full(k).ok())
                .filter(|k| k.name() == name && k.digest().is_none())
                .collect()
        };
        if refs.is_empty() {
            return Err(ImageServiceError::NoSuchTag {
                name: r.familiar_name(),
            });
        }
        refs.into_iter()
            .map(|reference| {
                let rec = contents
                    .refs
                    .get(&reference.to_string())
                    .and_then(|id| contents.images.get(id))
                    .cloned()
                    .ok_or_else(|| ImageServiceError::NoSuchTag {
                        name: reference.familiar_string(),
                    })?;
                Ok((reference, rec))
            })
            .collect()
    }

    /// Starts a push; errors here are about the request itself.
    pub fn push(self: &Arc<Self>, req: PushRequest) -> Result<Operation, ImageServiceError> {
        let targets = self.push_targets(&req)?;
        let out = Broadcast::new();
        let op = out.subscribe();
        let this = self.clone();
        tokio::spawn(async move {
            // The blobs being uploaded stay until the push ends.
            let _lease = this.gc_lease().await;
            let mut result = Ok(());
            for (reference, record) in targets {
                result = this
                    .push_one(&reference, &record, req.credentials.clone(), &out)
                    .await;
                match &result {
                    Ok(()) => this.event(
                        "push",
                        &reference.familiar_string(),
                        &reference.familiar_name(),
                    ),
                    Err(e) => {
                        tracing::warn!(reference = %reference, error = %e.full_message(), "push failed");
                        break;
                    }
                }
            }
            out.finish(result.err().map(Arc::new));
        });
        Ok(op)
    }

    async fn push_one(
        &self,
        reference: &Reference,
        record: &ImageRecord,
        credentials: Option<Credentials>,
        out: &Broadcast,
    ) -> Result<(), ImageServiceError> {
        let domain = reference.domain().to_owned();
        let store = self.ops.store().clone();
        let d = domain.clone();
        let mount_sources = tokio::task::spawn_blocking(move || store.mount_sources(&d))
            .await
            .map_err(|_| ImageServiceError::Task { what: "push" })?
            .map_err(OpsError::from)?;
        self.fetch_missing_layers(reference, record, &credentials)
            .await?;
        let client = self.client(&domain, credentials)?;
        let tag = reference.tag().unwrap_or("latest").to_owned();
        let options = PushOptions {
            mount_sources,
            ..PushOptions::default()
        };
        let (tx, mut rx) = mpsc::channel::<ProgressEvent>(64);
        let forward = async {
            while let Some(ev) = rx.recv().await {
                // Docker's push shows the digest in the `<tag>: digest:` line only.
                if !matches!(ev, ProgressEvent::Digest(_)) {
                    out.send(Progress::from(ev)).await;
                }
            }
        };
        let push = push_image(
            &client,
            self.ops.content(),
            reference.path(),
            &tag,
            &record.manifest,
            &options,
            Some(tx),
        );
        let (result, ()) = tokio::join!(push, forward);
        let pushed = result.map_err(|source| ImageServiceError::Push {
            reference: reference.familiar_string(),
            source: Box::new(source),
        })?;
        out.send(Progress::Pushed {
            tag,
            digest: pushed.digest.to_string(),
            size: pushed.size,
        })
        .await;
        // 4. Remember where the image now is: a mount source for later
        // pushes, and a repo digest.
        let repo = reference.name();
        let pinned = format!("{repo}@{}", pushed.digest);
        let id = record.id.clone();
        let store = self.ops.store().clone();
        tokio::task::spawn_blocking(move || {
            store.update(|c| {
                if let Some(rec) = c.images.get_mut(&id) {
                    if !rec.sources.contains(&repo) {
                        rec.sources.push(repo);
                    }
                    if !rec.repo_digests.contains(&pinned) {
                        rec.repo_digests.push(pinned);
                    }
                }
                Ok::<_, wharf_image::image_store::ImageStoreError>(())
            })
        })
        .await
        .map_err(|_| ImageServiceError::Task { what: "push" })?
        .map_err(OpsError::from)?;
        Ok(())
    }
}
