//! Distribution inspect (`GET /distribution/{name}/json`): what a registry
//! serves for a reference, without pulling it. The answer is the manifest's
//! descriptor (media type, digest, size of the manifest bytes) and its
//! platforms: every entry of an index or manifest list, or, for a single
//! image manifest, the platform its config blob names.
//!
//! As dockerd: a reference without tag or digest means `:latest`; a full
//! image ID is refused ("no manifest found for full image ID"); Docker Hub
//! mirrors are tried first; the request's credentials are used when the
//! registry asks. The manifest is fetched once by tag or digest (dockerd
//! sends a HEAD for a tag, then a GET by the digest: the same descriptor)
//! and its bytes are checked against the digest. Unlike dockerd, whose
//! registry library looks at Docker schema 2 configs only, the platform of
//! an OCI image manifest is reported too.

pub use wharf_image::manifest::Platform;
use wharf_image::manifest::{ManifestError, ParsedManifest, parse_manifest};
use wharf_image::reference::ReferenceError;
use wharf_image::{Digest, Reference};
use wharf_registry::{ClientError, Credentials};

use crate::error::ErrorKind;
use crate::images::{ImageService, ImageServiceError};

/// Largest config blob read for its platform.
const MAX_CONFIG_SIZE: usize = 4 << 20;

/// What a registry serves for a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct DistributionInspect {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Index entries without a platform appear as an empty one (dockerd's
    /// zero value).
    pub platforms: Vec<Platform>,
}

/// Why a distribution inspect failed.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// A 64-hex image ID names no repository (dockerd's wording).
    #[error("no manifest found for full image ID")]
    FullImageId,
    /// The name is not a reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No client for the registry (bad host or configuration).
    #[error(transparent)]
    Client(Box<ImageServiceError>),
    /// The registry refused or failed the request; rendered as dockerd
    /// renders registry errors (`manifest unknown: manifest unknown`).
    #[error("{}", registry_text(cause))]
    Registry {
        reference: String,
        cause: Box<ClientError>,
    },
    /// The manifest bytes do not hash to the digest asked for or announced.
    #[error("manifest of {reference} has digest {actual}, the registry named {expected}")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: Digest,
    },
    /// The manifest does not parse (schema 1 included).
    #[error("manifest of {reference}")]
    Manifest {
        reference: String,
        #[source]
        source: ManifestError,
    },
    /// The config blob is larger than any real one.
    #[error("config blob {digest} of {reference} exceeds {MAX_CONFIG_SIZE} bytes")]
    ConfigTooLarge { reference: String, digest: Digest },
}

/// `code words: message` for a registry's error answer (dockerd prints
/// distribution's `errcode` this way), the error chain otherwise.
fn registry_text(e: &ClientError) -> String {
    match e {
        ClientError::Status {
            code: Some(code),
            message,
            ..
        } => format!("{}: {message}", code.to_lowercase().replace('_', " ")),
        other => {
            let mut s = other.to_string();
            let mut cur = std::error::Error::source(other);
            while let Some(c) = cur {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cur = c.source();
            }
            s
        }
    }
}

impl DistributionError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use DistributionError as E;
        match self {
            E::Reference(_) => ErrorKind::InvalidArgument,
            E::Client(e) => e.kind(),
            E::Registry { cause, .. } => match cause.status() {
                Some(404) => ErrorKind::NotFound,
                Some(401 | 403) => ErrorKind::Unauthorized,
                _ => ErrorKind::Internal,
            },
            E::FullImageId
            | E::DigestMismatch { .. }
            | E::Manifest { .. }
            | E::ConfigTooLarge { .. } => ErrorKind::Internal,
        }
    }
}

/// A full image ID as `ParseAnyReference` sees one: 64 hex, with or without `sha256:`.
fn is_full_image_id(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ImageService {
    /// `GET /distribution/{name}/json`.
    pub async fn distribution_inspect(
        &self,
        name: &str,
        credentials: Option<Credentials>,
    ) -> Result<DistributionInspect, DistributionError> {
        if is_full_image_id(name) {
            return Err(DistributionError::FullImageId);
        }
        let reference = Reference::parse(name)?;
        let shown = reference.familiar_string();
        let client = self
            .client(reference.domain(), credentials)
            .map_err(|e| DistributionError::Client(Box::new(e)))?;
        let registry = |cause: ClientError| DistributionError::Registry {
            reference: shown.clone(),
            cause: Box::new(cause),
        };
        let wanted = match reference.digest() {
            Some(d) => d.to_string(),
            None => reference.tag().unwrap_or("latest").to_owned(),
        };
        let resp = client
            .get_manifest(reference.path(), &wanted)
            .await
            .map_err(registry)?;
        let digest = Digest::from_bytes(&resp.bytes);
        let expected = reference
            .digest()
            .map(ToString::to_string)
            .or(resp.digest.clone());
        if let Some(expected) = expected
            && expected != digest.to_string()
        {
            return Err(DistributionError::DigestMismatch {
                reference: shown,
                expected,
                actual: digest,
            });
        }
        let parsed = parse_manifest(&resp.bytes, resp.media_type.as_deref()).map_err(|source| {
            DistributionError::Manifest {
                reference: shown.clone(),
                source,
            }
        })?;
        let platforms = match &parsed {
            ParsedManifest::Index { index, .. } => index
                .manifests
                .iter()
                .map(|d| d.platform.clone().unwrap_or_default())
                .collect(),
            ParsedManifest::Image { manifest, .. } => {
                let cfg = &manifest.config;
                let mut blob = client
                    .get_blob(reference.path(), &cfg.digest.to_string(), 0)
                    .await
                    .map_err(registry)?;
                let mut bytes = Vec::new();
                while let Some(chunk) = blob.chunk().await.map_err(registry)? {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_CONFIG_SIZE {
                        return Err(DistributionError::ConfigTooLarge {
                            reference: shown,
                            digest: cfg.digest.clone(),
                        });
                    }
                }
                // dockerd ignores a config it cannot read or parse here.
                match serde_json::from_slice::<Platform>(&bytes) {
                    Ok(p)
                        if Digest::from_bytes(&bytes) == cfg.digest
                            && (!p.os.is_empty() || !p.arch.is_empty()) =>
                    {
                        vec![p]
                    }
                    _ => Vec::new(),
                }
            }
        };
        Ok(DistributionInspect {
            media_type: parsed.media_type().to_owned(),
            digest,
            size: resp.bytes.len() as u64,
            platforms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_and_registry_errors() {
        assert!(is_full_image_id(&"a".repeat(64)));
        assert!(is_full_image_id(&format!("sha256:{}", "0".repeat(64))));
        assert!(!is_full_image_id("busybox"));
        assert!(!is_full_image_id(&"A".repeat(64)));
        let e = ClientError::Status {
            method: reqwest::Method::GET,
            url: "http://r/v2/x/manifests/nope".into(),
            status: 404,
            code: Some("MANIFEST_UNKNOWN".into()),
            message: "manifest unknown".into(),
        };
        assert_eq!(registry_text(&e), "manifest unknown: manifest unknown");
        let d = DistributionError::Registry {
            reference: "x".into(),
            cause: Box::new(e),
        };
        assert_eq!(d.kind(), ErrorKind::NotFound);
        assert_eq!(d.to_string(), "manifest unknown: manifest unknown");
    }
}
