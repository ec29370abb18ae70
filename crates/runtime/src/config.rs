//! Loading and validating a bundle: `config.json` plus its root filesystem.
//!
//! The runtime reads the OCI runtime configuration once, in the `create`
//! process, checks everything it can check before any namespace or cgroup
//! exists (so most mistakes fail cleanly with nothing to undo), and hands the
//! parsed [`Bundle`] to the rest of the crate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Errors found while loading or validating a bundle.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// A parsed bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// A namespace request from `linux.namespaces`: create a new one, or join the
/// one at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRequest {
    pub typ: LinuxNamespaceType,
    pub path: Option<PathBuf>,
}

/// The `CLONE_NEW*` flag for a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> u64 {
    // oci-spec encodes each variant as its CLONE_NEW* value.
    t as u64
}

/// The name of a namespace under `/proc/<pid>/ns/`.
pub fn proc_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

impl Bundle {
    /// Reads `<dir>/config.json` and validates it.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let dir = std::path::absolute(dir).map_err(|source| ConfigError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("config.json");
        let bytes = std::fs::read(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let spec: Spec = serde_json::from_slice(&bytes).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Self::from_spec(dir, spec)
    }

    /// Validates an already-parsed spec for the bundle at `dir`.
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Self, ConfigError> {
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| ConfigError::Invalid("root must be set".into()))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        let meta = std::fs::metadata(&rootfs).map_err(|source| ConfigError::Read {
            path: rootfs.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(ConfigError::Invalid(format!(
                "root.path {} is not a directory",
                rootfs.display()
            )));
        }
        let version = spec.version();
        if !version.starts_with("1.") {
            return Err(ConfigError::Invalid(format!(
                "unsupported ociVersion {version:?}"
            )));
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| ConfigError::Invalid("process must be set".into()))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(ConfigError::Invalid(
                "process.args must not be empty".into(),
            ));
        }
        if !process.cwd().is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "process.cwd {:?} must be absolute",
                process.cwd()
            )));
        }
        let bundle = Bundle { dir, rootfs, spec };
        let ns = bundle.namespaces();
        let mut seen = HashSet::new();
        for n in &ns {
            if !seen.insert(n.typ) {
                return Err(ConfigError::Invalid(format!(
                    "namespace {} listed twice",
                    proc_ns_name(n.typ)
                )));
            }
        }
        let has = |t| ns.iter().any(|n| n.typ == t);
        if bundle
            .spec
            .hostname()
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            && !has(LinuxNamespaceType::Uts)
        {
            return Err(ConfigError::Invalid(
                "hostname requires a new uts namespace".into(),
            ));
        }
        if let Some(linux) = bundle.spec.linux() {
            let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
            if maps && !has(LinuxNamespaceType::User) {
                return Err(ConfigError::Invalid(
                    "uidMappings require a user namespace".into(),
                ));
            }
            if let Some(s) = linux.sysctl() {
                for key in s.keys() {
                    if key.contains("..") || key.contains('/') && key.contains('.') {
                        return Err(ConfigError::Invalid(format!("invalid sysctl name {key:?}")));
                    }
                }
            }
        }
        refuse_unsupported(&bundle.spec)?;
        for m in bundle.spec.mounts().iter().flatten() {
            let idmap = m
                .options()
                .iter()
                .flatten()
                .any(|o| o == "idmap" || o == "ridmap");
            if idmap && !has(LinuxNamespaceType::User) {
                return Err(ConfigError::Invalid(format!(
                    "idmap mount {:?} needs a user namespace for the container",
                    m.destination()
                )));
            }
            if idmap && (m.uid_mappings().is_some() || m.gid_mappings().is_some()) {
                return Err(ConfigError::Invalid(format!(
                    "per-mount uidMappings/gidMappings ({:?}) are not supported by wharf-runtime: the container's mappings are used",
                    m.destination()
                )));
            }
            if idmap
                && !m
                    .options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
                && m.typ().as_deref() != Some("bind")
            {
                return Err(ConfigError::Invalid(format!(
                    "idmap mount {:?} must be a bind mount",
                    m.destination()
                )));
            }
            if !m.destination().is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "mount destination {:?} must be absolute",
                    m.destination()
                )));
            }
        }
        Ok(bundle)
    }

    /// The namespaces requested in `linux.namespaces`.
    pub fn namespaces(&self) -> Vec<NamespaceRequest> {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|v| {
                v.iter()
                    .map(|n| NamespaceRequest {
                        typ: n.typ(),
                        path: n.path().clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the container gets (creates or joins) namespace `t`.
    pub fn has_namespace(&self, t: LinuxNamespaceType) -> bool {
        self.namespaces().iter().any(|n| n.typ == t)
    }

    /// `linux.cgroupsPath`, or the default `/wharf/<id>`.
    pub fn cgroups_path(&self, id: &str) -> String {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("/wharf/{id}"))
    }

    /// The process section (validated present in [`Bundle::from_spec`]).
    pub fn process(&self) -> &oci_spec::runtime::Process {
        self.spec
            .process()
            .as_ref()
            .expect("validated in from_spec")
    }
}

/// Parts of the runtime spec wharf-runtime does not implement yet: refused
/// with a clear error rather than silently ignored.
fn refuse_unsupported(spec: &Spec) -> Result<(), ConfigError> {
    let no = |what: &str| {
        Err(ConfigError::Invalid(format!(
            "{what} is not supported by wharf-runtime"
        )))
    };
    if let Some(p) = spec.process() {
        if p.scheduler().is_some() {
            return no("process.scheduler");
        }
        if p.exec_cpu_affinity().is_some() {
            return no("process.execCPUAffinity");
        }
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            return no("linux.intelRdt");
        }
        if l.memory_policy().is_some() {
            return no("linux.memoryPolicy");
        }
        if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return no("linux.netDevices");
        }
        if l.personality()
            .as_ref()
            .and_then(|p| p.flags().as_ref())
            .is_some_and(|f| !f.is_empty())
        {
            return no("linux.personality.flags");
        }
    }
    Ok(())
}

/// Checks a container id: non-empty, at most 1024 bytes, and made of
/// `[A-Za-z0-9_.+-]`, not starting with a dot (so it is a safe file name).
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "invalid container id format: {id:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clone_flags_match_kernel_values() {
        assert_eq!(clone_flag(LinuxNamespaceType::Pid), 0x2000_0000);
        assert_eq!(clone_flag(LinuxNamespaceType::Mount), 0x0002_0000);
        assert_eq!(clone_flag(LinuxNamespaceType::Time), 0x80);
    }
}
