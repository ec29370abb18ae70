//! `wharf-cgroups`: places containers in cgroups, applies OCI
//! `linux.resources` to them, freezes them, reads their usage, removes them.
//! Works on pure cgroup v1, pure v2 and hybrid hosts.
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> Result<(), wharf_cgroups::CgroupError> {
//! use wharf_cgroups::{CgroupSetup, manager};
//! let setup = CgroupSetup::detect()?;            // once per process: parses /proc
//! let cg = manager(&setup, "/wharf/0123abcd")?;  // OCI linux.cgroupsPath
//! cg.create()?;                                  // mkdir in every hierarchy
//! # let resources = oci_spec::runtime::LinuxResources::default(); let pid = 1;
//! cg.set(&resources)?;                           // write the limits
//! cg.add_process(pid)?;                          // move the container's init in
//! let usage = cg.stats()?;                       // for `docker stats`
//! cg.destroy()?;                                 // after every process is gone
//! # let _ = usage; Ok(()) }
//! ```
//!
//! # Contract
//!
//! - **Layout.** [`CgroupSetup`] records, per controller, whether it is used
//!   on v1 or v2 and where its hierarchy is mounted, plus this process's own
//!   cgroup in each hierarchy. A controller bound to a v1 hierarchy is used
//!   there; otherwise on the cgroup2 mount if that offers it (on a hybrid host
//!   `hugetlb` typically lives on `/sys/fs/cgroup/unified`).
//! - **Paths.** `cgroups_path` is OCI `linux.cgroupsPath`. An absolute path
//!   (`/wharf/<id>`) is placed under each hierarchy's mount point; a relative
//!   one (`wharf/<id>`) under this process's own cgroup in each hierarchy.
//!   `..` is rejected; an empty or absent path is for the caller to replace
//!   with a default before calling [`manager`]. The manager owns one
//!   directory per mounted hierarchy, named v1 hierarchies such as
//!   `name=systemd` included (best effort: failures there are logged, not
//!   returned).
//! - **Resources.** [`CgroupManager::set`] writes only what the spec sets.
//!   A value whose file does not exist (a controller or feature the kernel
//!   lacks, e.g. memory+swap without swap accounting) fails with
//!   [`CgroupError::MissingFile`] naming the file; a setting with no
//!   equivalent on its cgroup version fails with [`CgroupError::Unsupported`].
//!   `-1` means unlimited. The mappings are documented in the `v1`, `v2` and
//!   `devices` modules; device rules become `devices.allow`/`devices.deny`
//!   writes on v1 and an eBPF program on v2 (last matching rule wins,
//!   unmatched accesses are denied).
//! - **Teardown.** [`CgroupManager::destroy`] kills nothing: the caller
//!   stops the processes first. It removes every owned directory (and any
//!   child cgroups), retrying briefly while the kernel still reports them
//!   busy, treats an already removed directory as success, and reports every
//!   failure.
//! - **clone3.** [`CgroupManager::v2_dir`] is `Some` only on a pure v2 host,
//!   where a child can be started directly in the cgroup with
//!   `CLONE_INTO_CGROUP`; elsewhere use [`CgroupManager::add_process`].
#![forbid(unsafe_code)]

mod devices;
mod error;
mod fsutil;
mod manager;
pub mod setup;
pub mod stats;
mod v1;
pub mod v2;

use std::path::PathBuf;

pub use error::CgroupError;
pub use setup::{
    CgroupSetup, CgroupVersion, Controller, ControllerLocation, V1Hierarchy, V2Hierarchy,
};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats, ThrottlingStats,
};

/// Whether a cgroup's processes are frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum FreezerState {
    /// Running (also reported while a freeze is still in progress).
    Thawed,
    /// Every process is frozen.
    Frozen,
}

/// One container's cgroup(s). Implementations hold only paths, so several
/// managers for the same path may coexist (one per command invocation).
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    /// Creates the cgroup directory in every hierarchy, with its parents.
    /// v1: a new cpuset level inherits its parent's cpus and mems. v2: the
    /// controllers are enabled in each ancestor's `cgroup.subtree_control`.
    /// Existing directories are fine.
    fn create(&self) -> Result<(), CgroupError>;
    /// [`CgroupManager::create`] for the hierarchies of one version only:
    /// lets a runtime create the v2 directory a `clone3(CLONE_INTO_CGROUP)`
    /// needs before the clone, and the v1 ones while the child starts.
    fn create_version(&self, version: CgroupVersion) -> Result<(), CgroupError>;
    /// Moves `pid` (a whole process) into the cgroup in every hierarchy.
    fn add_process(&self, pid: i32) -> Result<(), CgroupError>;
    /// Applies resource limits (see the crate docs for the rules).
    fn set(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError>;
    /// Freezes every process, waiting (at most a few seconds) until the
    /// kernel reports the cgroup frozen; on timeout it thaws again and fails.
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Thaws the cgroup.
    fn thaw(&self) -> Result<(), CgroupError>;
    /// The current freezer state.
    fn freezer_state(&self) -> Result<FreezerState, CgroupError>;
    /// Pids of every process in the cgroup and its child cgroups, sorted.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Current resource usage.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// How many processes the kernel's OOM killer killed in this cgroup
    /// (the `oom_kill` count of `memory.oom_control` on v1, `memory.events`
    /// on v2; 0 without a memory controller): one file read, where
    /// [`CgroupManager::stats`] reads a dozen.
    fn oom_kills(&self) -> Result<u64, CgroupError>;
    /// Removes every owned directory; kills nothing; ok if already gone.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// The v2 directory for `clone3(CLONE_INTO_CGROUP)`, on pure v2 hosts only.
    fn v2_dir(&self) -> Option<PathBuf>;
    /// Every directory this manager owns (one per mounted hierarchy).
    fn paths(&self) -> Vec<PathBuf>;
    /// [`CgroupManager::paths`] with each hierarchy's version (on a hybrid
    /// host the v2 directory is there too, unlike [`CgroupManager::v2_dir`]).
    fn versioned_paths(&self) -> Vec<(CgroupVersion, PathBuf)>;
}

/// The one factory: a manager for OCI `cgroups_path` on the layout `setup`.
/// Fails only when the path is invalid (empty, `..`, systemd slice syntax).
pub fn manager(
    setup: &CgroupSetup,
    cgroups_path: &str,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    Ok(Box::new(manager::FsManager::new(setup, cgroups_path)?))
}
