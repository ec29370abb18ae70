//! Pulls (`POST /images/create?fromImage=`): one transfer per reference and
//! platform, shared by every request that asks for it while it runs.
//!
//! The transfer runs in its own task and reports Docker's progress lines:
//! `<tag>: Pulling from <repository path>` once the manifest and config are
//! fetched (so a missing image fails the request before any output, as with
//! Docker), then per layer `Pulling fs layer`, `Downloading` (bytes),
//! `Verifying Checksum`, `Download complete`, `Extracting` (bytes),
//! `Pull complete` or `Already exists`, then `Digest: ...` and
//! `Status: Downloaded newer image for ...` / `Status: Image is up to date
//! for ...`. The image is recorded only when everything is verified.

use std::sync::Arc;

use tokio::sync::mpsc;
use wharf_image::manifest::Platform;
use wharf_image::ops::OpsError;
use wharf_image::{Digest, Reference};
use wharf_registry::Credentials;
use wharf_registry::progress::ProgressEvent;
use wharf_registry::pull::{PullError, PullOptions, PullTarget, pull_image};

use super::error::ImageServiceError;
use super::progress::{Broadcast, Operation, Progress};
use super::service::ImageService;

/// `POST /images/create?fromImage=&tag=&platform=`.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage`: a name, possibly with a tag or digest.
    pub image: String,
    /// `tag`: a tag or a digest (`sha256:...`); empty keeps the image's own.
    pub tag: String,
    /// `os/arch[/variant]`; the host's when empty.
    pub platform: Option<String>,
    /// From `X-Registry-Auth`.
    pub credentials: Option<Credentials>,
}

/// The reference a pull request names, by Docker's rules: a trailing `:` is
/// ignored, `tag` may be a digest, `scratch` is reserved.
pub fn pull_reference(image: &str, tag: &str) -> Result<Reference, ImageServiceError> {
    let image = image.strip_suffix(':').unwrap_or(image);
    let r = Reference::parse_normalized(image).map_err(OpsError::from)?;
    let r = if tag.is_empty() {
        if r.tag().is_none() && r.digest().is_none() {
            return Err(ImageServiceError::AllTags {
                name: r.familiar_name(),
            });
        }
        r
    } else if let Ok(d) = tag.parse::<Digest>() {
        r.name_only().with_digest(d)
    } else {
        r.with_tag(tag).map_err(OpsError::from)?
    };
    if r.familiar_name() == "scratch" {
        return Err(ImageServiceError::ReservedName {
            name: "scratch".into(),
        });
    }
    Ok(r)
}

impl ImageService {
    /// Starts (or joins) a pull; errors here are about the request itself.
    pub fn pull(self: &Arc<Self>, req: PullRequest) -> Result<Operation, ImageServiceError> {
        let reference = pull_reference(&req.image, &req.tag)?;
        let platform = match req.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => p.parse::<Platform>()?,
            None => Platform::host(),
        };
        let key = format!("{reference} {platform}");
        let mut table = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = table.get(&key) {
            tracing::debug!(reference = %reference, "joining a pull in progress");
            return Ok(running.subscribe());
        }
        let out = Broadcast::new();
        let op = out.subscribe();
        table.insert(key.clone(), out.clone());
        drop(table);
        let this = self.clone();
        tokio::spawn(async move {
            let r = this
                .run_pull(&reference, platform, req.credentials, &out)
                .await;
            this.pulls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            match &r {
                Ok(()) => {
                    this.event(
                        "pull",
                        &reference.familiar_string(),
                        &reference.familiar_name(),
                    );
                }
                Err(e) => {
                    tracing::warn!(reference = %reference, error = %e.full_message(), "pull failed");
                }
            }
            out.finish(r.err().map(Arc::new));
        });
        Ok(op)
    }

    async fn run_pull(
        &self,
        reference: &Reference,
        platform: Platform,
        credentials: Option<Credentials>,
        out: &Broadcast,
    ) -> Result<(), ImageServiceError> {
        // No removal deletes a layer this pull is about to reference.
        let _lease = self.gc_lease().await;
        let client = self.client(reference.domain(), credentials)?;
        let target = PullTarget {
            content: self.ops.content().clone(),
            snapshots: self.ops.snapshots().clone(),
            images: self.ops.store().clone(),
        };
        let options = PullOptions {
            platform,
            ..PullOptions::default()
        };
        let id = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => wharf_image::reference::DEFAULT_TAG.to_owned(),
        };
        let (tx, mut rx) = mpsc::channel::<ProgressEvent>(64);
        let forward = async {
            let mut first = true;
            let mut header_sent = false;
            while let Some(ev) = rx.recv().await {
                // The library's own header comes before the manifest is
                // fetched; Docker's (below) comes after.
                if std::mem::take(&mut first) && matches!(ev, ProgressEvent::Status(_)) {
                    continue;
                }
                if !std::mem::replace(&mut header_sent, true) {
                    out.send(Progress::Status {
                        id: Some(id.clone()),
                        status: format!("Pulling from {}", reference.path()),
                    })
                    .await;
                }
                out.send(Progress::from(ev)).await;
            }
        };
        let pull = pull_image(&client, &target, reference, &options, Some(tx));
        let (result, ()) = tokio::join!(pull, forward);
        result.map(|_| ()).map_err(|source| match &source {
            PullError::Registry { what, source: e }
                if e.is_not_found() && what.starts_with("manifest") =>
            {
                ImageServiceError::ManifestUnknown {
                    reference: reference.familiar_string(),
                }
            }
            PullError::Registry { source: e, .. } if matches!(e.status(), Some(401 | 403)) => {
                ImageServiceError::PullAccessDenied {
                    name: reference.familiar_name(),
                    source: Box::new(source),
                }
            }
            _ => ImageServiceError::Pull {
                reference: reference.familiar_string(),
                source: Box::new(source),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_by_docker_rules() {
        let r = pull_reference("busybox", "latest").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = pull_reference("127.0.0.1:5000/busybox", "1.36").unwrap();
        assert_eq!(r.familiar_string(), "127.0.0.1:5000/busybox:1.36");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("busybox", &d).unwrap();
        assert_eq!(r.digest().map(ToString::to_string), Some(d));
        assert!(pull_reference("busybox:1.0:", "").is_ok());
        assert!(matches!(
            pull_reference("busybox", ""),
            Err(ImageServiceError::AllTags { .. })
        ));
        let e = pull_reference("Busybox", "latest").unwrap_err();
        assert!(e.to_string().starts_with("invalid reference format"), "{e}");
        assert!(matches!(
            pull_reference("scratch", "latest"),
            Err(ImageServiceError::ReservedName { .. })
        ));
    }
}
