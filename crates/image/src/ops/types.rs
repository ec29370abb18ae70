//! The values image operations return, shaped and named like the Docker
//! Engine API's JSON (`ImageSummary`, `ImageInspect`, `HistoryResponseItem`,
//! `ImageDeleteResponseItem`, `ImagePruneResponse`), so the API layer can
//! serialise them as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::ContainerConfig;

/// One image of `GET /images/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// `sha256:<config digest>`.
    pub id: String,
    /// Always empty: wharf keeps no parent links for pulled images.
    pub parent_id: String,
    /// Familiar `name:tag` references.
    pub repo_tags: Vec<String>,
    /// Familiar `name@sha256:...` references.
    pub repo_digests: Vec<String>,
    /// Creation time, Unix seconds (0 when the config has none).
    pub created: i64,
    /// Bytes of all layers.
    pub size: i64,
    /// Bytes of layers shared with other images; -1 unless asked for.
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    /// Containers using the image; -1 when no container source is wired.
    pub containers: i64,
}

/// `GraphDriver` of an inspect: the storage driver and its paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// `RootFS` of an inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsInfo {
    #[serde(rename = "Type")]
    pub typ: String,
    pub layers: Vec<String>,
}

/// `Metadata` of an inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// RFC 3339, or empty when the image was never tagged locally.
    pub last_tag_time: String,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    /// RFC 3339 (empty when the config has none).
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: ContainerConfig,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: i64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsInfo,
    pub metadata: ImageMetadata,
}

/// One entry of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID on the top entry, `<missing>` below (as docker).
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// The image's tags on the top entry, else empty.
    pub tags: Vec<String>,
    /// Bytes of the layer this step created (0 for empty steps).
    pub size: i64,
    pub comment: String,
}

/// One line of `DELETE /images/{name}`: exactly one field is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

impl DeleteItem {
    pub fn untagged(reference: impl Into<String>) -> DeleteItem {
        DeleteItem {
            untagged: Some(reference.into()),
            deleted: None,
        }
    }

    pub fn deleted(id: impl Into<String>) -> DeleteItem {
        DeleteItem {
            untagged: None,
            deleted: Some(id.into()),
        }
    }
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<DeleteItem>,
    /// Bytes of the layer snapshots removed.
    pub space_reclaimed: u64,
}
