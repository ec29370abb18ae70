//! Image configs (`application/vnd.docker.container.image.v1+json` and the
//! OCI config), kept as their original bytes.
//!
//! An image's ID is the sha256 of its config bytes, so [`ImageConfig`] never
//! re-serialises what it read: [`ImageConfig::bytes`] are the bytes from the
//! registry and [`ImageConfig::id`] their digest. The parsed view
//! ([`ConfigFile`]) covers Docker's fields (Healthcheck, OnBuild, Shell, ...
//! which oci-spec's type drops) and keeps every field it does not know in
//! `extra` maps, so a config built from a parsed one (commit, build) loses
//! nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::platform::Platform;
use crate::digest::Digest;

/// Errors reading or building an image config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The bytes are not a JSON image config.
    #[error("invalid image config {digest}")]
    Parse {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    /// A new config could not be serialised.
    #[error("cannot serialise image config")]
    Serialize {
        #[source]
        source: serde_json::Error,
    },
}

/// An empty JSON object, the value type of Docker's port and volume sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// The parsed image config (Docker's `image.Image` / OCI `ImageConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// RFC 3339 creation time, as written by the builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields this type does not model (`container_config`, `docker_version`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfigFile {
    /// The platform the image was built for.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

/// The default runtime configuration of containers from the image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, EmptyObject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, EmptyObject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Fields this type does not model (`AttachStdin`, `Tty`, `Image`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Docker's healthcheck settings; durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The layer list of the image, as uncompressed-tar digests (diff IDs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub typ: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            typ: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One build step, as `docker history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step produced no layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image config: original bytes, their digest (the image ID), parsed view.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    bytes: Vec<u8>,
    id: Digest,
    file: ConfigFile,
}

impl ImageConfig {
    /// Parses config bytes as fetched; the bytes are kept unchanged.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ImageConfig, ConfigError> {
        let id = Digest::from_bytes(&bytes);
        let file = serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
            digest: id.clone(),
            source,
        })?;
        Ok(ImageConfig { bytes, id, file })
    }

    /// Serialises a new config (commit, build); its ID is the digest of the result.
    pub fn from_file(file: ConfigFile) -> Result<ImageConfig, ConfigError> {
        let bytes =
            serde_json::to_vec(&file).map_err(|source| ConfigError::Serialize { source })?;
        Ok(ImageConfig {
            id: Digest::from_bytes(&bytes),
            bytes,
            file,
        })
    }

    /// The image ID: the digest of [`ImageConfig::bytes`].
    pub fn id(&self) -> &Digest {
        &self.id
    }

    /// The original bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The parsed view.
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// Diff IDs of the layers, base first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.file.rootfs.diff_ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_CONFIG: &str = r#"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"nobody","AttachStdin":false,"ExposedPorts":{"80/tcp":{}},"Tty":false,"Env":["PATH=/usr/bin"],"Cmd":["sh"],"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1000000000,"Retries":3},"ArgsEscaped":true,"Image":"sha256:abc","Volumes":{"/data":{}},"WorkingDir":"/w","Entrypoint":null,"OnBuild":["RUN x"],"Labels":{"a":"b"},"StopSignal":"SIGQUIT","StopTimeout":7,"Shell":["/bin/ash","-c"]},"container":"c0ffee","container_config":{"Cmd":["/bin/sh"]},"created":"2024-09-26T21:31:42.123456789Z","docker_version":"23.0.11","history":[{"created":"2024-09-26T21:31:42Z","created_by":"ADD file:x in / "},{"created":"2024-09-26T21:31:42Z","created_by":"CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;

    #[test]
    fn parses_docker_fields_and_keeps_bytes() {
        let c = ImageConfig::from_bytes(DOCKER_CONFIG.as_bytes().to_vec()).unwrap();
        assert_eq!(c.bytes(), DOCKER_CONFIG.as_bytes());
        assert_eq!(c.id(), &Digest::from_bytes(DOCKER_CONFIG.as_bytes()));
        let f = c.file();
        assert_eq!(f.platform().to_string(), "linux/amd64");
        let cc = f.config.as_ref().unwrap();
        assert_eq!(cc.user.as_deref(), Some("nobody"));
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.healthcheck.as_ref().unwrap().retries, Some(3));
        assert_eq!(
            cc.shell.as_deref(),
            Some(&["/bin/ash".to_owned(), "-c".to_owned()][..])
        );
        assert_eq!(cc.on_build.as_ref().unwrap().len(), 1);
        assert_eq!(cc.stop_timeout, Some(7));
        assert!(cc.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert_eq!(cc.extra["Image"], "sha256:abc");
        assert_eq!(f.extra["docker_version"], "23.0.11");
        assert_eq!(c.diff_ids().len(), 1);
        assert_eq!(f.history[1].empty_layer, Some(true));
    }

    #[test]
    fn rebuilt_config_preserves_unknown_fields() {
        let c = ImageConfig::from_bytes(DOCKER_CONFIG.as_bytes().to_vec()).unwrap();
        let mut f = c.file().clone();
        f.config.as_mut().unwrap().cmd = Some(vec!["true".into()]);
        let n = ImageConfig::from_file(f).unwrap();
        let v: Value = serde_json::from_slice(n.bytes()).unwrap();
        assert_eq!(v["container"], "c0ffee");
        assert_eq!(v["container_config"]["Cmd"][0], "/bin/sh");
        assert_eq!(v["config"]["Image"], "sha256:abc");
        assert_eq!(v["config"]["Tty"], false);
        assert_eq!(v["config"]["Cmd"][0], "true");
        assert_eq!(v["config"]["Healthcheck"]["Interval"], 1_000_000_000i64);
        assert_ne!(n.id(), c.id());
    }

    #[test]
    fn invalid_config_names_its_digest() {
        let err = ImageConfig::from_bytes(b"{not json".to_vec()).unwrap_err();
        assert!(err.to_string().contains("sha256:"), "{err}");
    }
}
