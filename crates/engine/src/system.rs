//! Facts about the host and the daemon for `/info` and `/version`: read
//! from the kernel and the stores each time they are asked for (nothing is
//! cached that could go stale).

use std::sync::Arc;

use crate::containers::{Containers, StateCounts};
use crate::error::{EngineError, io_err};
use crate::images::Images;
use crate::layout::Layout;

/// The wharf version reported as the server version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Registry settings as configured (`--insecure-registry`, `--registry-mirror`).
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    pub insecure_registries: Vec<String>,
    pub mirrors: Vec<String>,
}

/// Everything `/info` reports.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub id: String,
    pub name: String,
    pub containers: StateCounts,
    pub images: usize,
    pub driver: String,
    pub cgroup_version: String,
    pub cgroup_driver: String,
    pub kernel_version: String,
    pub operating_system: String,
    pub os_version: String,
    pub architecture: String,
    pub ncpu: usize,
    pub mem_total: u64,
    pub data_root: String,
    pub exec_root: String,
    pub registry: RegistrySettings,
    pub debug: bool,
    pub server_version: String,
    pub default_ulimits: Vec<crate::model::Ulimit>,
    pub warnings: Vec<String>,
}

/// The system service.
#[derive(Debug)]
pub struct System {
    id: String,
    layout: Layout,
    containers: Arc<Containers>,
    images: Images,
    registry: RegistrySettings,
    debug: bool,
    default_ulimits: Vec<crate::model::Ulimit>,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
pub fn mem_total() -> u64 {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
}

fn parse_meminfo(s: &str) -> u64 {
    s.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn os_release() -> (String, String) {
    let s = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let pretty = get("PRETTY_NAME");
    (
        if pretty.is_empty() {
            "Linux".into()
        } else {
            pretty
        },
        get("VERSION_ID"),
    )
}

impl System {
    /// The system service; the daemon ID is kept in `<data-root>/engine-id`.
    pub fn new(
        layout: Layout,
        containers: Arc<Containers>,
        images: Images,
        registry: RegistrySettings,
        debug: bool,
        default_ulimits: Vec<crate::model::Ulimit>,
    ) -> Result<System, EngineError> {
        let path = layout.data_root().join("engine-id");
        let id = match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => {
                let id = crate::ids::new_id().map_err(io_err("read", "/dev/urandom"))?;
                std::fs::write(&path, &id).map_err(io_err("write", &path))?;
                id
            }
        };
        Ok(System {
            id,
            layout,
            containers,
            images,
            registry,
            debug,
            default_ulimits,
        })
    }

    /// Gathers the current figures.
    pub fn info(&self) -> SystemInfo {
        let mut warnings = Vec::new();
        let (cgroup_version, cgroup_driver) = match wharf_cgroups::CgroupSetup::detect() {
            Ok(s) => (
                if s.is_pure_v2() { "2" } else { "1" }.to_owned(),
                "cgroupfs".to_owned(),
            ),
            Err(e) => {
                warnings.push(format!("WARNING: cannot detect cgroups: {e}"));
                (String::new(), "none".to_owned())
            }
        };
        let images = self.images.count().unwrap_or_else(|e| {
            warnings.push(format!("WARNING: image store unreadable: {e}"));
            0
        });
        warnings.push("WARNING: bridge networking is not available yet; containers in the default network have loopback only".into());
        let (os, os_version) = os_release();
        SystemInfo {
            id: self.id.clone(),
            name: read_trim("/proc/sys/kernel/hostname"),
            containers: self.containers.counts(),
            images,
            driver: self.images.snapshots().driver().to_owned(),
            cgroup_version,
            cgroup_driver,
            kernel_version: read_trim("/proc/sys/kernel/osrelease"),
            operating_system: os,
            os_version,
            architecture: std::env::consts::ARCH.to_owned(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            data_root: self.layout.data_root().display().to_string(),
            exec_root: self.layout.exec_root().display().to_string(),
            registry: self.registry.clone(),
            debug: self.debug,
            server_version: VERSION.to_owned(),
            default_ulimits: self.default_ulimits.clone(),
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo() {
        assert_eq!(
            super::parse_meminfo("MemTotal:        2000 kB\nMemFree: 1 kB\n"),
            2_048_000
        );
        assert!(super::mem_total() > 0);
    }
}
