//! Errors of the image service ([`super::ImageService`]): the library's
//! operation errors (whose messages are already Docker's), registry
//! failures of pulls, pushes and logins, and bad requests. [`kind`] says
//! which HTTP-independent [`ErrorKind`] each is; [`full_message`] renders
//! the chain of causes as Docker prints wrapped errors (`a: b: c`).
//!
//! [`kind`]: ImageServiceError::kind
//! [`full_message`]: ImageServiceError::full_message

use wharf_image::manifest::PlatformError;
use wharf_image::ops::{ErrorKind as OpsKind, OpsError};
use wharf_registry::ClientError;
use wharf_registry::pull::PullError;
use wharf_registry::push::PushError;

use crate::error::ErrorKind;

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageServiceError {
    /// A local image operation failed (resolve, tag, remove, load, ...).
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The `platform` parameter does not parse.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// A pull without a tag means every tag (`docker pull --all-tags`).
    #[error("pulling every tag of {name} (--all-tags) is not supported: name a tag or digest")]
    AllTags { name: String },
    /// Docker reserves `scratch`.
    #[error("'{name}' is a reserved name")]
    ReservedName { name: String },
    /// The registry has no such manifest (tag or digest).
    #[error("manifest for {reference} not found: manifest unknown")]
    ManifestUnknown { reference: String },
    /// The registry refused an anonymous or authenticated pull (Docker
    /// reports it as not found: the repository may not exist).
    #[error(
        "pull access denied for {name}, repository does not exist or may require 'docker login'"
    )]
    PullAccessDenied {
        name: String,
        #[source]
        source: Box<PullError>,
    },
    /// A pull failed after it started.
    #[error("pull of {reference} failed")]
    Pull {
        reference: String,
        #[source]
        source: Box<PullError>,
    },
    /// A push failed.
    #[error("push of {reference} failed")]
    Push {
        reference: String,
        #[source]
        source: Box<PushError>,
    },
    /// A layer a push needs is not stored locally (its pull found the layer
    /// unpacked already) and could not be fetched from where the image came from.
    #[error("cannot fetch layer {digest} from {repo} for the push")]
    FetchLayer {
        digest: wharf_image::Digest,
        repo: String,
        #[source]
        source: Box<ClientError>,
    },
    /// Storing a fetched layer, or reading the manifest to push, failed.
    #[error("cannot store blob {digest}")]
    StoreBlob {
        digest: wharf_image::Digest,
        #[source]
        source: wharf_image::content::ContentError,
    },
    /// Writing a fetched layer into its ingest failed.
    #[error("cannot write blob {digest}")]
    WriteBlob {
        digest: wharf_image::Digest,
        #[source]
        source: std::io::Error,
    },
    /// `docker push NAME:TAG` of a tag that does not exist locally (Docker's wording).
    #[error("An image does not exist locally with the tag: {name}")]
    NoSuchTag { name: String },
    /// The registry refused the credentials of a login, or could not be reached.
    #[error("login to {host} failed")]
    Login {
        host: String,
        #[source]
        source: Box<ClientError>,
    },
    /// No registry client could be built for the host (bad host, TLS setup).
    #[error("registry {host}")]
    Client {
        host: String,
        #[source]
        source: Box<ClientError>,
    },
    /// `fromSrc` other than `-`.
    #[error(
        "importing from {src:?} is not supported: send the tarball as the request body (fromSrc=-)"
    )]
    ImportSource { src: String },
    /// A background task of the service failed (a panic: a bug).
    #[error("image task {what} did not complete")]
    Task { what: &'static str },
}

/// The status a registry answered in a client error, if any.
fn registry_status(e: &ClientError) -> Option<u16> {
    e.status()
}

fn from_status(status: Option<u16>) -> ErrorKind {
    match status {
        Some(404) => ErrorKind::NotFound,
        Some(401 | 403) => ErrorKind::Unauthorized,
        _ => ErrorKind::Internal,
    }
}

impl ImageServiceError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use ImageServiceError as E;
        match self {
            E::Ops(e) => match e.kind() {
                OpsKind::NotFound => ErrorKind::NotFound,
                OpsKind::Conflict => ErrorKind::Conflict,
                OpsKind::InvalidArgument => ErrorKind::InvalidArgument,
                OpsKind::Internal => ErrorKind::Internal,
            },
            E::Platform(_) | E::ImportSource { .. } | E::AllTags { .. } => {
                ErrorKind::InvalidArgument
            }
            E::ReservedName { .. } => ErrorKind::Forbidden,
            E::ManifestUnknown { .. } | E::NoSuchTag { .. } | E::PullAccessDenied { .. } => {
                ErrorKind::NotFound
            }
            E::Pull { source, .. } => match source.as_ref() {
                PullError::Registry { source, .. } => from_status(registry_status(source)),
                _ => ErrorKind::Internal,
            },
            E::Push { source, .. } => match source.as_ref() {
                PushError::Registry { source, .. } => from_status(registry_status(source)),
                PushError::Content { .. } => ErrorKind::NotFound,
                _ => ErrorKind::Internal,
            },
            E::Login { source, .. } => match source.as_ref() {
                ClientError::Unauthorized { .. } => ErrorKind::Unauthorized,
                s => from_status(registry_status(s)),
            },
            E::Client { .. } => ErrorKind::InvalidArgument,
            E::FetchLayer { source, .. } => from_status(registry_status(source)),
            E::StoreBlob { .. } | E::WriteBlob { .. } | E::Task { .. } => ErrorKind::Internal,
        }
    }

    /// The message with every source appended (`a: b: c`).
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        // `transparent` variants forward `source` to their inner error's.
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_messages() {
        let e = ImageServiceError::from(OpsError::NotFound {
            name: "busybox".into(),
        });
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.full_message(), "No such image: busybox");
        let e = ImageServiceError::from(OpsError::Io {
            op: "read",
            what: "request body".into(),
            source: std::io::Error::other("reset"),
        });
        assert_eq!(e.full_message(), "read request body: reset");
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            ImageServiceError::ReservedName {
                name: "scratch".into()
            }
            .kind(),
            ErrorKind::Forbidden
        );
    }
}
