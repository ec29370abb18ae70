//! The filesystem cgroup manager: one directory per mounted hierarchy for a
//! given OCI `cgroupsPath`, with every resource routed to the hierarchy that
//! hosts its controller (see [`crate::setup`]). It covers pure v1, pure v2
//! and hybrid hosts with the same code.
//!
//! The manager holds only paths: building one for an existing cgroup (to read
//! stats, freeze or destroy it after a restart) is the same call as for a new
//! one.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::error::CgroupError;
use crate::fsutil::{self, join_cgroup, read, read_opt, write};
use crate::setup::{CgroupSetup, CgroupVersion, Controller};
use crate::stats::{self, Stats};
use crate::{CgroupManager, FreezerState, devices, v1, v2};

/// How long [`CgroupManager::freeze`] waits for the freezer to settle.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// One directory the manager owns.
#[derive(Clone, Debug)]
struct OwnedDir {
    version: CgroupVersion,
    /// Controllers of the hierarchy (v1); empty for a named v1 hierarchy and
    /// for v2.
    controllers: Vec<String>,
    /// A named v1 hierarchy (`name=systemd`): best effort only.
    named: bool,
    mountpoint: PathBuf,
    path: PathBuf,
}

/// cgroupfs-backed [`CgroupManager`].
#[derive(Debug)]
pub(crate) struct FsManager {
    setup: CgroupSetup,
    dirs: Vec<OwnedDir>,
}

/// Checks an OCI `cgroupsPath` and returns it with the leading `/` removed,
/// plus whether it was absolute.
pub(crate) fn parse_cgroups_path(path: &str) -> Result<(PathBuf, bool), CgroupError> {
    let bad = |reason| CgroupError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if !path.contains('/') && path.matches(':').count() == 2 {
        return Err(bad(
            "systemd slice syntax (slice:prefix:name) needs the systemd driver, which wharf does not have",
        ));
    }
    let p = Path::new(path);
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => return Err(bad("contains \"..\"")),
            Component::Prefix(_) => return Err(bad("has a prefix")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("names the hierarchy root"));
    }
    Ok((rel, p.is_absolute()))
}

impl FsManager {
    pub(crate) fn new(setup: &CgroupSetup, cgroups_path: &str) -> Result<Self, CgroupError> {
        let (rel, absolute) = parse_cgroups_path(cgroups_path)?;
        let place = |mountpoint: &Path, own: &Path| {
            if absolute {
                join_cgroup(mountpoint, &rel)
            } else {
                join_cgroup(&join_cgroup(mountpoint, own), &rel)
            }
        };
        let mut dirs = Vec::new();
        for h in setup.v1_hierarchies() {
            dirs.push(OwnedDir {
                version: CgroupVersion::V1,
                controllers: h.controllers.clone(),
                named: h.controllers.is_empty(),
                mountpoint: h.mountpoint.clone(),
                path: place(&h.mountpoint, &h.own_path),
            });
        }
        if let Some(v2) = setup.v2() {
            dirs.push(OwnedDir {
                version: CgroupVersion::V2,
                controllers: Vec::new(),
                named: false,
                mountpoint: v2.mountpoint.clone(),
                path: place(&v2.mountpoint, &v2.own_path),
            });
        }
        Ok(Self {
            setup: setup.clone(),
            dirs,
        })
    }

    /// The directory and version serving `controller`, if any.
    fn dir_for(&self, controller: Controller) -> Option<(CgroupVersion, &Path)> {
        let loc = self.setup.locate(controller)?;
        self.dirs
            .iter()
            .find(|d| d.version == loc.version && d.mountpoint == loc.mountpoint)
            .map(|d| (d.version, d.path.as_path()))
    }

    /// Like [`Self::dir_for`], but an error naming `what` when absent.
    fn require(
        &self,
        controller: Controller,
        what: &str,
    ) -> Result<(CgroupVersion, &Path), CgroupError> {
        self.dir_for(controller)
            .ok_or_else(|| CgroupError::NoController {
                controller: controller.v1_name().to_owned(),
                what: what.to_owned(),
            })
    }

    fn v2_owned(&self) -> Option<&OwnedDir> {
        self.dirs.iter().find(|d| d.version == CgroupVersion::V2)
    }

    /// v1: create each missing level; in the cpuset hierarchy a level with
    /// empty cpus or mems gets its parent's (an empty cpuset refuses tasks).
    fn create_v1(&self, d: &OwnedDir) -> Result<(), CgroupError> {
        let is_cpuset = d.controllers.iter().any(|c| c == "cpuset");
        let rel = d.path.strip_prefix(&d.mountpoint).unwrap_or(Path::new(""));
        let mut cur = d.mountpoint.clone();
        for comp in rel.components() {
            let parent = cur.clone();
            cur.push(comp);
            let created = mkdir(&cur)?;
            // Also for existing levels: one left empty by an earlier,
            // interrupted create would refuse tasks. A level just made is
            // empty: no need to read it.
            if is_cpuset {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let empty = created || read(&cur.join(file))?.trim().is_empty();
                    if empty {
                        let theirs = read(&parent.join(file))?;
                        write(
                            &cur,
                            file,
                            theirs.trim(),
                            "cpuset inherited from the parent",
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// v2: enable our controllers in every ancestor's `cgroup.subtree_control`
    /// (from the mount down), creating each level. A controller that cannot be
    /// enabled (not offered, or the parent has processes) is logged; setting a
    /// resource of it fails later with the missing file named.
    fn create_v2(&self, d: &OwnedDir) -> Result<(), CgroupError> {
        let wanted: Vec<String> = self
            .setup
            .v2()
            .map(|v| v.controllers.iter().cloned().collect())
            .unwrap_or_default();
        let rel = d.path.strip_prefix(&d.mountpoint).unwrap_or(Path::new(""));
        let mut cur = d.mountpoint.clone();
        for comp in rel.components() {
            enable_controllers(&cur, &wanted)?;
            cur.push(comp);
            mkdir(&cur)?;
        }
        Ok(())
    }

    fn set_devices(
        &self,
        rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    ) -> Result<(), CgroupError> {
        match self.require(Controller::Devices, "device rules")? {
            (CgroupVersion::V1, dir) => devices::apply_v1(dir, rules),
            (CgroupVersion::V2, dir) => devices::apply_v2(dir, rules),
        }
    }

    fn freezer(&self) -> Result<(CgroupVersion, &Path), CgroupError> {
        self.require(Controller::Freezer, "freezing")
    }

    /// The directory listing the cgroup's processes: the freezer's when
    /// there is one (it is what pause acts on), else the first owned one.
    fn procs_dir(&self) -> Option<&Path> {
        self.dir_for(Controller::Freezer)
            .map(|(_, p)| p)
            .or_else(|| {
                self.dirs
                    .iter()
                    .find(|d| !d.named)
                    .map(|d| d.path.as_path())
            })
    }
}

/// Creates `dir` unless it exists; whether it was created.
fn mkdir(dir: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::Mkdir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Enables in `dir/cgroup.subtree_control` every controller of `wanted` that
/// `dir/cgroup.controllers` offers and that is not enabled yet.
fn enable_controllers(dir: &Path, wanted: &[String]) -> Result<(), CgroupError> {
    let available = read_opt(&dir.join("cgroup.controllers"))?.unwrap_or_default();
    let enabled = read_opt(&dir.join("cgroup.subtree_control"))?.unwrap_or_default();
    for c in wanted {
        if available.split_whitespace().any(|a| a == c)
            && !enabled.split_whitespace().any(|e| e == c)
            && let Err(err) = write(
                dir,
                "cgroup.subtree_control",
                format!("+{c}"),
                "controller delegation",
            )
        {
            tracing::debug!(dir = %dir.display(), controller = %c, %err, "cannot enable controller");
        }
    }
    Ok(())
}

/// Removes `dir` and any child cgroups under it (children first), retrying
/// on EBUSY for a bounded time (tasks may still be exiting). A missing
/// directory is fine.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // Usually a leaf whose processes are gone: one rmdir. Otherwise (child
    // cgroups, or tasks still exiting: both EBUSY) walk and retry below.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let children: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(it) => it
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    for child in children {
        remove_tree(&child)?;
    }
    let mut delay = Duration::from_millis(5);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

const EBUSY: i32 = rustix::io::Errno::BUSY.raw_os_error();

/// Pids in `dir` and every cgroup below it.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = read(&path)?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.push(
            line.trim()
                .parse()
                .map_err(|_| fsutil::parse_err(&path, format!("bad pid {line:?}")))?,
        );
    }
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_owned(),
        source,
    })?;
    for e in entries {
        let e = e.map_err(|source| CgroupError::Read {
            path: dir.to_owned(),
            source,
        })?;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// Reads the freezer state; `FREEZING` counts as thawed (not all tasks are
/// stopped yet).
fn read_freezer(version: CgroupVersion, dir: &Path) -> Result<FreezerState, CgroupError> {
    match version {
        CgroupVersion::V1 => {
            let path = dir.join("freezer.state");
            match read(&path)?.trim() {
                "FROZEN" => Ok(FreezerState::Frozen),
                "THAWED" | "FREEZING" => Ok(FreezerState::Thawed),
                other => Err(fsutil::parse_err(
                    &path,
                    format!("unknown freezer state {other:?}"),
                )),
            }
        }
        CgroupVersion::V2 => {
            let path = dir.join("cgroup.events");
            let events = fsutil::parse_flat_keyed(&read(&path)?);
            match events.get("frozen") {
                Some(1) => Ok(FreezerState::Frozen),
                Some(0) => Ok(FreezerState::Thawed),
                _ => Err(fsutil::parse_err(&path, "no \"frozen\" key")),
            }
        }
    }
}

impl CgroupManager for FsManager {
    fn create(&self) -> Result<(), CgroupError> {
        self.create_version(CgroupVersion::V1)?;
        self.create_version(CgroupVersion::V2)
    }

    fn create_version(&self, version: CgroupVersion) -> Result<(), CgroupError> {
        for d in self.dirs.iter().filter(|d| d.version == version) {
            let res = match d.version {
                CgroupVersion::V1 => self.create_v1(d),
                CgroupVersion::V2 => self.create_v2(d),
            };
            match res {
                Err(err) if d.named => {
                    tracing::warn!(dir = %d.path.display(), %err, "cannot create cgroup in named hierarchy; continuing");
                }
                other => other?,
            }
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            match write(&d.path, "cgroup.procs", pid, "process placement") {
                Err(err) if d.named => {
                    tracing::warn!(dir = %d.path.display(), pid, %err, "cannot join named hierarchy; continuing");
                }
                other => other?,
            }
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        // 1. memory
        if let Some(m) = r.memory()
            && (m.limit().is_some()
                || m.reservation().is_some()
                || m.swap().is_some()
                || m.kernel_tcp().is_some()
                || m.swappiness().is_some()
                || m.disable_oom_killer().is_some()
                || m.use_hierarchy().is_some())
        {
            match self.require(Controller::Memory, "memory limits")? {
                (CgroupVersion::V1, dir) => v1::set_memory(dir, m)?,
                (CgroupVersion::V2, dir) => v2::set_memory(dir, m)?,
            }
        }
        // 2. cpu bandwidth/weight, then cpuset
        if let Some(c) = r.cpu() {
            let wants_cpu = c.shares().is_some_and(|v| v != 0)
                || c.quota().is_some_and(|v| v != 0)
                || c.period().is_some_and(|v| v != 0)
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_runtime().is_some_and(|v| v != 0)
                || c.realtime_period().is_some_and(|v| v != 0);
            if wants_cpu {
                match self.require(Controller::Cpu, "cpu limits")? {
                    (CgroupVersion::V1, dir) => v1::set_cpu(dir, c)?,
                    (CgroupVersion::V2, dir) => v2::set_cpu(dir, c)?,
                }
            }
            let wants_cpuset = c.cpus().as_deref().is_some_and(|s| !s.is_empty())
                || c.mems().as_deref().is_some_and(|s| !s.is_empty());
            if wants_cpuset {
                let (_, dir) = self.require(Controller::Cpuset, "cpuset")?;
                v1::set_cpuset(dir, c)?;
            }
        }
        // 3. pids
        if let Some(p) = r.pids() {
            let (_, dir) = self.require(Controller::Pids, "pids limit")?;
            v1::set_pids(dir, p)?;
        }
        // 4. block I/O
        if let Some(b) = r.block_io() {
            let wants = b.weight().is_some()
                || b.leaf_weight().is_some()
                || [
                    b.weight_device().as_ref().map(Vec::len),
                    b.throttle_read_bps_device().as_ref().map(Vec::len),
                    b.throttle_write_bps_device().as_ref().map(Vec::len),
                    b.throttle_read_iops_device().as_ref().map(Vec::len),
                    b.throttle_write_iops_device().as_ref().map(Vec::len),
                ]
                .iter()
                .any(|n| n.unwrap_or(0) > 0);
            if wants {
                match self.require(Controller::Blkio, "block I/O limits")? {
                    (CgroupVersion::V1, dir) => v1::set_blkio(dir, b)?,
                    (CgroupVersion::V2, dir) => v2::set_io(dir, b)?,
                }
            }
        }
        // 5. hugepages
        for h in r.hugepage_limits().iter().flatten() {
            match self.require(Controller::Hugetlb, "hugepage limits")? {
                (CgroupVersion::V1, dir) => v1::set_hugetlb(dir, h)?,
                (CgroupVersion::V2, dir) => v2::set_hugetlb(dir, h)?,
            }
        }
        // 6. network class and priorities (v1 only)
        if let Some(n) = r.network() {
            if n.class_id().is_some() {
                match self.dir_for(Controller::NetCls) {
                    Some((CgroupVersion::V1, dir)) => v1::set_net_cls(dir, n)?,
                    _ => tracing::debug!("net_cls not mounted; network class id ignored"),
                }
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                match self.dir_for(Controller::NetPrio) {
                    Some((CgroupVersion::V1, dir)) => v1::set_net_prio(dir, n)?,
                    _ => tracing::debug!("net_prio not mounted; network priorities ignored"),
                }
            }
        }
        // 7. rdma
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let (_, dir) = self.require(Controller::Rdma, "rdma limits")?;
            v2::set_rdma(dir, rdma)?;
        }
        // 8. devices
        if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
            self.set_devices(rules)?;
        }
        // 9. unified (last: it may override what the mapped fields wrote)
        if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            let Some(d) = self.v2_owned() else {
                return Err(CgroupError::Unsupported {
                    what: "unified resources".to_owned(),
                    version: "v1",
                });
            };
            v2::set_unified(&d.path, u)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        let (version, dir) = self.freezer()?;
        let write_freeze = |frozen: bool| match version {
            CgroupVersion::V1 => write(
                dir,
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
                "freezing",
            ),
            CgroupVersion::V2 => write(dir, "cgroup.freeze", u8::from(frozen), "freezing"),
        };
        write_freeze(true)?;
        let start = Instant::now();
        let mut delay = Duration::from_micros(100);
        loop {
            if read_freezer(version, dir)? == FreezerState::Frozen {
                return Ok(());
            }
            if start.elapsed() >= FREEZE_TIMEOUT {
                // Do not leave a half-frozen cgroup behind.
                if let Err(err) = write_freeze(false) {
                    tracing::warn!(dir = %dir.display(), %err, "cannot thaw after freeze timeout");
                }
                let millis = u64::try_from(FREEZE_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
                return Err(CgroupError::FreezeTimeout {
                    path: dir.to_owned(),
                    millis,
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer()? {
            (CgroupVersion::V1, dir) => write(dir, "freezer.state", "THAWED", "thawing"),
            (CgroupVersion::V2, dir) => write(dir, "cgroup.freeze", 0, "thawing"),
        }
    }

    fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        let (version, dir) = self.freezer()?;
        read_freezer(version, dir)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn oom_kills(&self) -> Result<u64, CgroupError> {
        match self.dir_for(Controller::Memory) {
            Some((version, d)) => stats::oom_kills(d, version),
            None => Ok(0),
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        // Missing files mean "controller not available"; a missing cgroup
        // is an error, not a cgroup with no statistics.
        if let Some(d) = self.dirs.iter().find(|d| !d.named)
            && !d.path.is_dir()
        {
            return Err(CgroupError::Read {
                path: d.path.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let memory = match self.dir_for(Controller::Memory) {
            Some((CgroupVersion::V1, d)) => stats::memory_v1(d)?,
            Some((CgroupVersion::V2, d)) => stats::memory_v2(d)?,
            None => None,
        };
        let cpu = match self.dir_for(Controller::Cpuacct) {
            Some((CgroupVersion::V2, d)) => stats::cpu_v2(d)?,
            acct => {
                let cpu = self
                    .dir_for(Controller::Cpu)
                    .filter(|(v, _)| *v == CgroupVersion::V1)
                    .map(|(_, p)| p);
                stats::cpu_v1(acct.map(|(_, p)| p), cpu)?
            }
        };
        let pids = match self.dir_for(Controller::Pids) {
            Some((_, d)) => stats::pids(d)?,
            None => None,
        };
        let blkio = match self.dir_for(Controller::Blkio) {
            Some((CgroupVersion::V1, d)) => stats::blkio_v1(d)?,
            Some((CgroupVersion::V2, d)) => stats::io_v2(d)?,
            None => None,
        };
        let hugetlb = match self.dir_for(Controller::Hugetlb) {
            Some((CgroupVersion::V1, d)) => stats::hugetlb_v1(d)?,
            Some((CgroupVersion::V2, d)) => stats::hugetlb_v2(d)?,
            None => Default::default(),
        };
        Ok(Stats {
            memory,
            cpu,
            pids,
            blkio,
            hugetlb,
        })
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let mut errors = Vec::new();
        for d in &self.dirs {
            if let Err(err) = remove_tree(&d.path) {
                if d.named {
                    tracing::warn!(dir = %d.path.display(), %err, "cannot remove cgroup in named hierarchy");
                } else {
                    errors.push(err);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(CgroupError::Multiple(errors)),
        }
    }

    fn v2_dir(&self) -> Option<PathBuf> {
        if self.setup.is_pure_v2() {
            self.v2_owned().map(|d| d.path.clone())
        } else {
            None
        }
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    fn versioned_paths(&self) -> Vec<(CgroupVersion, PathBuf)> {
        self.dirs
            .iter()
            .map(|d| (d.version, d.path.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
