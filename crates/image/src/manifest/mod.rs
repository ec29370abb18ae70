//! Manifests and indexes (Docker schema 2 and OCI), image configs, and
//! platform selection.
//!
//! A registry answers a manifest request with bytes and a `Content-Type`.
//! [`parse_manifest`] turns them into a [`ParsedManifest`]: an image manifest
//! (config + layers) or an index (one manifest per platform). The header wins
//! when it names a manifest type; when it is vague (`application/json`,
//! missing) the body's `mediaType` field decides, then its shape. Schema 1
//! manifests are refused with [`ManifestError::Schema1`]. The caller keeps the
//! original bytes: the manifest's digest is computed over them.
//! [`ImageIndex::select`] picks the manifest for a [`Platform`], skipping
//! attestation entries.
//!
//! Docker and OCI share one JSON shape, so one set of types serves both; the
//! resolved media type tells them apart.

pub mod config;
pub mod platform;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use config::{
    ConfigError, ConfigFile, ContainerConfig, HealthConfig, History, ImageConfig, RootFs,
};
pub use platform::{Platform, PlatformError};

use crate::digest::Digest;

/// Media type constants.
pub mod media_type {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub use crate::layer::media_type::*;

    /// The `Accept` header value a pull sends for manifests.
    pub const MANIFEST_ACCEPT: &[&str] = &[
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST,
    ];
}

/// Annotation BuildKit puts on attestation manifests in an index.
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// Errors parsing manifests or selecting from an index.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The body is not valid JSON of the expected shape.
    #[error("invalid {media_type} manifest")]
    Parse {
        media_type: String,
        #[source]
        source: serde_json::Error,
    },
    /// A schema 1 manifest, which wharf (like current Docker) does not pull.
    #[error(
        "manifest is Docker image manifest version 2, schema 1, which is no longer supported; \
         the image must be re-pushed as Docker schema 2 or OCI"
    )]
    Schema1,
    /// The header or `mediaType` names something that is not a manifest or index.
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    /// The header says one media type and the body another.
    #[error("manifest media type mismatch: response header says {header:?}, body says {body:?}")]
    MediaTypeMismatch { header: String, body: String },
    /// No entry of the index runs on the requested platform.
    #[error(
        "no matching manifest for {platform} in the manifest list entries (available: {available})"
    )]
    NoMatchingPlatform { platform: String, available: String },
}

/// A reference to content: what it is, its digest and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor without urls, annotations or platform.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }

    /// Whether this index entry is an attestation (SBOM, provenance), not an image.
    pub fn is_attestation(&self) -> bool {
        self.annotations.contains_key(ANNOTATION_REFERENCE_TYPE)
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.arch == "unknown")
    }
}

/// An image manifest: a config and the layers, base first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An index / manifest list: one manifest per platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// The best entry for `platform`: compatible, not an attestation, best
    /// [`Platform::match_rank`], earliest in the list on ties. Entries without
    /// a platform are skipped.
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor, ManifestError> {
        self.manifests
            .iter()
            .filter(|d| !d.is_attestation())
            .filter_map(|d| Some((platform.match_rank(d.platform.as_ref()?)?, d)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
            .ok_or_else(|| ManifestError::NoMatchingPlatform {
                platform: platform.to_string(),
                available: self
                    .manifests
                    .iter()
                    .filter(|d| !d.is_attestation())
                    .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// What a manifest request returned.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per pull: boxing would only add noise
pub enum ParsedManifest {
    /// A single image; `media_type` is the resolved type.
    Image {
        media_type: String,
        manifest: ImageManifest,
    },
    /// A multi-platform index.
    Index {
        media_type: String,
        index: ImageIndex,
    },
}

impl ParsedManifest {
    /// The resolved media type.
    pub fn media_type(&self) -> &str {
        match self {
            ParsedManifest::Image { media_type, .. } | ParsedManifest::Index { media_type, .. } => {
                media_type
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

fn is_manifest_type(t: &str) -> bool {
    matches!(
        t,
        media_type::DOCKER_MANIFEST
            | media_type::DOCKER_MANIFEST_LIST
            | media_type::OCI_MANIFEST
            | media_type::OCI_INDEX
            | media_type::DOCKER_SCHEMA1
            | media_type::DOCKER_SCHEMA1_SIGNED
    )
}

/// Parses manifest bytes; `content_type` is the response header, if any.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ParsedManifest, ManifestError> {
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_lowercase())
        .filter(|c| !c.is_empty());
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
        media_type: header.clone().unwrap_or_else(|| "unknown".to_owned()),
        source,
    })?;
    let body_type = probe.media_type.clone().filter(|t| !t.is_empty());
    let resolved = match (&header, &body_type) {
        (Some(h), Some(b)) if is_manifest_type(h) && h != b => {
            return Err(ManifestError::MediaTypeMismatch {
                header: h.clone(),
                body: b.clone(),
            });
        }
        (Some(h), _) if is_manifest_type(h) => h.clone(),
        (_, Some(b)) => b.clone(),
        _ => {
            if probe.schema_version == Some(1) || probe.fs_layers.is_some() {
                return Err(ManifestError::Schema1);
            }
            if probe.manifests.is_some() {
                media_type::OCI_INDEX.to_owned()
            } else if probe.config.is_some() {
                media_type::OCI_MANIFEST.to_owned()
            } else {
                return Err(ManifestError::UnsupportedMediaType {
                    media_type: header.unwrap_or_default(),
                });
            }
        }
    };
    let parse_err = |source| ManifestError::Parse {
        media_type: resolved.clone(),
        source,
    };
    match resolved.as_str() {
        media_type::DOCKER_SCHEMA1 | media_type::DOCKER_SCHEMA1_SIGNED => {
            Err(ManifestError::Schema1)
        }
        _ if probe.schema_version == Some(1) => Err(ManifestError::Schema1),
        media_type::DOCKER_MANIFEST | media_type::OCI_MANIFEST => Ok(ParsedManifest::Image {
            manifest: serde_json::from_slice(bytes).map_err(parse_err)?,
            media_type: resolved,
        }),
        media_type::DOCKER_MANIFEST_LIST | media_type::OCI_INDEX => Ok(ParsedManifest::Index {
            index: serde_json::from_slice(bytes).map_err(parse_err)?,
            media_type: resolved,
        }),
        _ => Err(ManifestError::UnsupportedMediaType {
            media_type: resolved,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":1470,"digest":"sha256:{H1}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2152262,"digest":"sha256:{H2}"}}]}}"#,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_CONFIG
        )
    }

    fn index(entries: &[(&str, Option<&str>)]) -> String {
        let ms: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (plat, ann))| {
                let p: Vec<&str> = plat.split('/').collect();
                let variant = p.get(2).map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
                let ann = ann
                    .map(|a| format!(r#","annotations":{{"vnd.docker.reference.type":"{a}"}}"#))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":100,"platform":{{"os":"{}","architecture":"{}"{variant}}}{ann}}}"#,
                    format!("{i:x}").repeat(64).chars().take(64).collect::<String>(),
                    p[0],
                    p[1]
                )
            })
            .collect();
        format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, ms.join(","))
    }

    #[test]
    fn detects_by_header_body_and_shape() {
        let m = docker_manifest();
        let p = parse_manifest(m.as_bytes(), Some(media_type::DOCKER_MANIFEST)).unwrap();
        assert_eq!(p.media_type(), media_type::DOCKER_MANIFEST);
        let ParsedManifest::Image { manifest, .. } = &p else {
            panic!()
        };
        assert_eq!(manifest.layers[0].size, 2152262);
        assert_eq!(manifest.config.digest.hex(), H1);
        // vague header: body decides
        let p = parse_manifest(m.as_bytes(), Some("application/json; charset=utf-8")).unwrap();
        assert_eq!(p.media_type(), media_type::DOCKER_MANIFEST);
        // no mediaType anywhere: shape decides
        let idx = index(&[("linux/amd64", None)]);
        let p = parse_manifest(idx.as_bytes(), None).unwrap();
        assert_eq!(p.media_type(), media_type::OCI_INDEX);
        let bare = m.replace(
            &format!(r#""mediaType":"{}","#, media_type::DOCKER_MANIFEST),
            "",
        );
        assert_eq!(
            parse_manifest(bare.as_bytes(), None).unwrap().media_type(),
            media_type::OCI_MANIFEST
        );
    }

    #[test]
    fn rejects_schema1_mismatch_and_garbage() {
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}"#;
        assert!(matches!(
            parse_manifest(s1.as_bytes(), None),
            Err(ManifestError::Schema1)
        ));
        assert!(matches!(
            parse_manifest(s1.as_bytes(), Some(media_type::DOCKER_SCHEMA1_SIGNED)),
            Err(ManifestError::Schema1)
        ));
        let m = docker_manifest();
        assert!(matches!(
            parse_manifest(m.as_bytes(), Some(media_type::OCI_MANIFEST)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse_manifest(b"{not json", None),
            Err(ManifestError::Parse { .. })
        ));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":2}"#, None),
            Err(ManifestError::UnsupportedMediaType { .. })
        ));
    }

    #[test]
    fn selects_platform_and_skips_attestations() {
        let idx = index(&[
            ("unknown/unknown", Some("attestation-manifest")),
            ("linux/arm/v6", None),
            ("linux/arm/v7", None),
            ("linux/arm64/v8", None),
            ("linux/amd64", Some("attestation-manifest")),
            ("linux/amd64", None),
        ]);
        let ParsedManifest::Index { index, .. } = parse_manifest(idx.as_bytes(), None).unwrap()
        else {
            panic!()
        };
        let pick = |p: &str| {
            index
                .select(&p.parse().unwrap())
                .map(|d| d.platform.as_ref().unwrap().normalized().to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), "linux/amd64");
        assert!(
            !index
                .select(&"linux/amd64".parse().unwrap())
                .unwrap()
                .is_attestation()
        );
        assert_eq!(pick("linux/arm64").unwrap(), "linux/arm64");
        assert_eq!(pick("linux/arm/v7").unwrap(), "linux/arm/v7");
        assert_eq!(pick("linux/arm/v6").unwrap(), "linux/arm/v6");
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/arm/v7") && !err.contains("unknown"),
            "{err}"
        );
        let only_v6 = index_of(&[("linux/arm/v6", None)]);
        assert_eq!(
            only_v6
                .select(&"linux/arm/v7".parse().unwrap())
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .to_string(),
            "linux/arm/v6"
        );
    }

    fn index_of(entries: &[(&str, Option<&str>)]) -> ImageIndex {
        match parse_manifest(index(entries).as_bytes(), None).unwrap() {
            ParsedManifest::Index { index, .. } => index,
            ParsedManifest::Image { .. } => panic!("expected index"),
        }
    }
}
