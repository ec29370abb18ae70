//! Discovery of the host's cgroup layout: which controller lives on which
//! hierarchy (v1 or v2), where each hierarchy is mounted, and where this
//! process sits in each of them.
//!
//! [`CgroupSetup::detect`] reads `/proc/self/cgroup` once, checks with `statfs`
//! that each hierarchy is where hosts conventionally mount it, and reads
//! `/proc/self/mountinfo` only when one is not (plus the v2 root's
//! `cgroup.controllers` when cgroup2 is mounted). Managers are then built
//! from the result without touching `/proc` again. [`CgroupSetup::from_parts`] does the same from strings, for tests.
//!
//! The three layouts are handled alike: pure v1 (one `cgroup` mount per
//! hierarchy, no `0::` line), pure v2 (one `cgroup2` mount, only a `0::`
//! line) and hybrid (v1 hierarchies plus a `cgroup2` mount, usually
//! `/sys/fs/cgroup/unified`, holding whatever controllers v1 does not bind).
//! A controller bound to a v1 hierarchy is always used there; otherwise it is
//! used on the v2 mount if that mount offers it.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::error::CgroupError;

/// A cgroup hierarchy version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CgroupVersion {
    /// Legacy: one hierarchy per (group of) controller(s).
    V1,
    /// Unified hierarchy.
    V2,
}

impl CgroupVersion {
    /// `"v1"` or `"v2"`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// The controllers wharf routes resources and statistics to, by their v1
/// names. On v2, `cpuacct` is part of `cpu`, `blkio` is `io`, and `devices`
/// and `freezer` are core features of every cgroup (eBPF and `cgroup.freeze`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Devices,
    Freezer,
    Blkio,
    Pids,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
}

impl Controller {
    /// Every controller, in a fixed order.
    pub const ALL: [Controller; 12] = [
        Self::Cpu,
        Self::Cpuacct,
        Self::Cpuset,
        Self::Memory,
        Self::Devices,
        Self::Freezer,
        Self::Blkio,
        Self::Pids,
        Self::Hugetlb,
        Self::NetCls,
        Self::NetPrio,
        Self::Rdma,
    ];

    /// Name of the controller on a v1 hierarchy (as in `/proc/self/cgroup`).
    pub fn v1_name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Cpuset => "cpuset",
            Self::Memory => "memory",
            Self::Devices => "devices",
            Self::Freezer => "freezer",
            Self::Blkio => "blkio",
            Self::Pids => "pids",
            Self::Hugetlb => "hugetlb",
            Self::NetCls => "net_cls",
            Self::NetPrio => "net_prio",
            Self::Rdma => "rdma",
        }
    }

    /// How the controller shows up on v2.
    fn v2_presence(self) -> V2Presence {
        match self {
            Self::Cpu => V2Presence::Controller("cpu"),
            // cpu.stat (usage, user, system) exists in every v2 cgroup.
            Self::Cpuacct | Self::Devices | Self::Freezer => V2Presence::Core,
            Self::Cpuset => V2Presence::Controller("cpuset"),
            Self::Memory => V2Presence::Controller("memory"),
            Self::Blkio => V2Presence::Controller("io"),
            Self::Pids => V2Presence::Controller("pids"),
            Self::Hugetlb => V2Presence::Controller("hugetlb"),
            Self::Rdma => V2Presence::Controller("rdma"),
            Self::NetCls | Self::NetPrio => V2Presence::Absent,
        }
    }
}

enum V2Presence {
    /// Built into every v2 cgroup.
    Core,
    /// A controller listed in `cgroup.controllers` under this name.
    Controller(&'static str),
    /// No v2 equivalent.
    Absent,
}

/// Controllers the kernel can offer on v2, assumed present on the v2 mount
/// (when not bound to v1) if the mount's `cgroup.controllers` is not known.
const KNOWN_V2_CONTROLLERS: [&str; 9] = [
    "cpuset",
    "cpu",
    "io",
    "memory",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "perf_event",
];

/// One mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers bound to it (`["cpu", "cpuacct"]`); empty for a named
    /// hierarchy without controllers such as `name=systemd`.
    pub controllers: Vec<String>,
    /// The `name=` of a named hierarchy (`systemd`).
    pub name: Option<String>,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// This process's cgroup, relative to `mountpoint` (`/` at the top).
    pub own_path: PathBuf,
}

impl V1Hierarchy {
    /// The hierarchy of a `/proc/self/cgroup` line's controller list (a
    /// `name=` entry is the hierarchy's name, not a controller).
    fn new(
        line_controllers: &[String],
        name: Option<String>,
        mountpoint: PathBuf,
        own_path: PathBuf,
    ) -> Self {
        V1Hierarchy {
            controllers: line_controllers
                .iter()
                .filter(|c| !c.starts_with("name="))
                .cloned()
                .collect(),
            name,
            mountpoint,
            own_path,
        }
    }
}

/// The mounted v2 (unified) hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Hierarchy {
    /// Where it is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
    pub mountpoint: PathBuf,
    /// This process's cgroup, relative to `mountpoint` (`/` at the top).
    pub own_path: PathBuf,
    /// Controllers available at the mount's root.
    pub controllers: BTreeSet<String>,
}

/// Where a controller is used: its version and the mountpoint of its hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerLocation {
    pub version: CgroupVersion,
    pub mountpoint: PathBuf,
}

/// The host's cgroup layout as seen by this process. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupSetup {
    v1: Vec<V1Hierarchy>,
    v2: Option<V2Hierarchy>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

impl CgroupSetup {
    /// Reads this process's view of the cgroup layout.
    pub fn detect() -> Result<Self, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Read {
                path: p.into(),
                source,
            })
        };
        let cgroup = read(PROC_CGROUP)?;
        let mut setup = match Self::from_conventional_mounts(&cgroup, &probe_host) {
            Some(setup) => setup,
            None => Self::from_parts(&read(MOUNTINFO)?, &cgroup)?,
        };
        if let Some(v2) = setup.v2.as_mut() {
            let path = v2.mountpoint.join("cgroup.controllers");
            match std::fs::read_to_string(&path) {
                Ok(s) => v2.controllers = s.split_whitespace().map(str::to_owned).collect(),
                Err(err) => {
                    tracing::debug!(path = %path.display(), %err, "cannot read v2 root controllers; assuming the usual set");
                }
            }
        }
        tracing::debug!(?setup, "detected cgroup layout");
        Ok(setup)
    }

    /// The layout when every hierarchy in `/proc/self/cgroup` is mounted
    /// where systemd, OpenRC and container runtimes mount them: v1 at
    /// `/sys/fs/cgroup/<controllers or name>`, v2 at `/sys/fs/cgroup` or
    /// `/sys/fs/cgroup/unified`, each at the root of its hierarchy. `None`
    /// (read `/proc/self/mountinfo` instead) as soon as anything differs: a
    /// path that is not a cgroup filesystem of the right version, or whose
    /// directory for our own cgroup does not exist (a mount of a subtree, as
    /// in a container without a cgroup namespace).
    ///
    /// The mount table grows with every running container (each root is a
    /// long overlay line); reading and parsing it was 4% of a shim's CPU
    /// time per start with 50 containers running, this is a few `statfs`.
    pub fn from_conventional_mounts(
        proc_self_cgroup: &str,
        probe: &dyn Fn(&Path) -> Probe,
    ) -> Option<Self> {
        const ROOT: &str = "/sys/fs/cgroup";
        let lines = parse_proc_cgroup(proc_self_cgroup).ok()?;
        let mut v1 = Vec::new();
        let mut v2 = None;
        let own_dir = |mountpoint: &Path, own: &str| mountpoint.join(own.trim_start_matches('/'));
        for line in &lines {
            if line.hierarchy_id == 0 && line.controllers.is_empty() {
                let mountpoint = [PathBuf::from(ROOT), Path::new(ROOT).join("unified")]
                    .into_iter()
                    .find(|m| probe(m) == Probe::Cgroup2)?;
                if line.path != "/" && probe(&own_dir(&mountpoint, &line.path)) != Probe::Cgroup2 {
                    return None;
                }
                v2 = Some(V2Hierarchy {
                    mountpoint,
                    own_path: PathBuf::from(&line.path),
                    controllers: BTreeSet::new(),
                });
                continue;
            }
            let names: Vec<&str> = line.controllers.iter().map(String::as_str).collect();
            let name = match names.as_slice() {
                [one] if one.starts_with("name=") => Some(one["name=".len()..].to_owned()),
                list if list
                    .iter()
                    .any(|c| c.starts_with("name=") || c.contains('/')) =>
                {
                    return None;
                }
                _ => None,
            };
            let dir = name.clone().unwrap_or_else(|| names.join(","));
            if dir.is_empty() || dir.contains('/') || dir == "unified" {
                return None;
            }
            let mountpoint = Path::new(ROOT).join(&dir);
            if probe(&mountpoint) != Probe::Cgroup1
                || (line.path != "/" && probe(&own_dir(&mountpoint, &line.path)) != Probe::Cgroup1)
            {
                return None;
            }
            v1.push(V1Hierarchy::new(
                &line.controllers,
                name,
                mountpoint,
                PathBuf::from(&line.path),
            ));
        }
        if v1.is_empty() && v2.is_none() {
            return None;
        }
        let mut setup = Self { v1, v2 };
        setup.assume_v2_controllers();
        Some(setup)
    }

    /// Builds the layout from the text of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`. The v2 mount is assumed to offer every v2-capable
    /// controller that no v1 hierarchy binds (`detect` refines this by reading
    /// the mount's `cgroup.controllers`).
    pub fn from_parts(mountinfo: &str, proc_self_cgroup: &str) -> Result<Self, CgroupError> {
        let mounts = parse_mountinfo(mountinfo)?;
        let lines = parse_proc_cgroup(proc_self_cgroup)?;

        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in &lines {
            if line.hierarchy_id == 0 && line.controllers.is_empty() {
                let candidates = mounts.iter().filter(|m| m.fstype == "cgroup2");
                if let Some(m) = pick_mount(candidates, &line.path) {
                    v2 = Some(V2Hierarchy {
                        mountpoint: m.mountpoint.clone(),
                        own_path: relative_to_root(&line.path, &m.root),
                        controllers: BTreeSet::new(),
                    });
                }
                continue;
            }
            let candidates = mounts.iter().filter(|m| {
                m.fstype == "cgroup"
                    && line
                        .controllers
                        .iter()
                        .all(|c| m.super_opts.iter().any(|o| o == c))
            });
            let Some(m) = pick_mount(candidates, &line.path) else {
                tracing::debug!(controllers = ?line.controllers, "v1 hierarchy not mounted; ignored");
                continue;
            };
            let name = line
                .controllers
                .iter()
                .find_map(|c| c.strip_prefix("name="))
                .map(str::to_owned);
            v1.push(V1Hierarchy::new(
                &line.controllers,
                name,
                m.mountpoint.clone(),
                relative_to_root(&line.path, &m.root),
            ));
        }
        if v1.is_empty() && v2.is_none() {
            return Err(CgroupError::NoHierarchy);
        }
        let mut setup = Self { v1, v2 };
        setup.assume_v2_controllers();
        Ok(setup)
    }

    /// The v2 mount's controllers as the kernel would offer them: every one
    /// no v1 hierarchy binds (`detect` then reads the real list).
    fn assume_v2_controllers(&mut self) {
        let v1 = &self.v1;
        if let Some(v2) = self.v2.as_mut() {
            let bound: BTreeSet<&str> = v1
                .iter()
                .flat_map(|h| h.controllers.iter().map(String::as_str))
                .collect();
            v2.controllers = KNOWN_V2_CONTROLLERS
                .iter()
                .filter(|c| {
                    // v1 names of the same controllers.
                    let v1_name = match **c {
                        "io" => "blkio",
                        other => other,
                    };
                    !bound.contains(v1_name)
                })
                .map(|c| (*c).to_owned())
                .collect();
        }
    }

    /// Replaces the set of controllers the v2 mount offers (what its root
    /// `cgroup.controllers` lists). No effect without a v2 mount.
    pub fn with_v2_controllers<I, S>(mut self, controllers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if let Some(v2) = self.v2.as_mut() {
            v2.controllers = controllers.into_iter().map(Into::into).collect();
        }
        self
    }

    /// The mounted v1 hierarchies (controller ones and named ones).
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The v2 mount, if cgroup2 is mounted.
    pub fn v2(&self) -> Option<&V2Hierarchy> {
        self.v2.as_ref()
    }

    /// True when there is no v1 hierarchy at all (only cgroup2).
    pub fn is_pure_v2(&self) -> bool {
        self.v1.is_empty() && self.v2.is_some()
    }

    /// Where `controller` is used, if anywhere: a v1 hierarchy binding it
    /// wins; otherwise the v2 mount when it offers it.
    pub fn locate(&self, controller: Controller) -> Option<ControllerLocation> {
        if let Some(h) = self.v1_for(controller) {
            return Some(ControllerLocation {
                version: CgroupVersion::V1,
                mountpoint: h.mountpoint.clone(),
            });
        }
        let v2 = self.v2.as_ref()?;
        let offered = match controller.v2_presence() {
            V2Presence::Core => true,
            V2Presence::Controller(name) => v2.controllers.contains(name),
            V2Presence::Absent => false,
        };
        offered.then(|| ControllerLocation {
            version: CgroupVersion::V2,
            mountpoint: v2.mountpoint.clone(),
        })
    }

    pub(crate) fn v1_for(&self, controller: Controller) -> Option<&V1Hierarchy> {
        let name = controller.v1_name();
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == name))
    }
}

/// One cgroup-relevant field set of a mountinfo line.
#[derive(Debug)]
struct Mount {
    root: String,
    mountpoint: PathBuf,
    fstype: String,
    super_opts: Vec<String>,
}

/// Parses the cgroup and cgroup2 mounts out of mountinfo text.
fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, CgroupError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = |detail: &str| CgroupError::Mountinfo {
            line: line.to_owned(),
            detail: detail.to_owned(),
        };
        let (pre, post) = line
            .split_once(" - ")
            .ok_or_else(|| bad("no \" - \" separator"))?;
        let pre: Vec<&str> = pre.split(' ').collect();
        if pre.len() < 6 {
            return Err(bad("fewer than 6 fields before the separator"));
        }
        let mut post = post.split(' ');
        let fstype = post.next().ok_or_else(|| bad("no filesystem type"))?;
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let _source = post.next();
        let super_opts = post.next().unwrap_or("");
        out.push(Mount {
            root: unescape(pre[3]),
            mountpoint: PathBuf::from(unescape(pre[4])),
            fstype: fstype.to_owned(),
            super_opts: super_opts.split(',').map(str::to_owned).collect(),
        });
    }
    Ok(out)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (b[i] == b'\\' && i + 3 < b.len())
            .then(|| &b[i + 1..i + 4])
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                u8::try_from(d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'))).ok()
            });
        if let Some(v) = octal {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct ProcCgroupLine {
    hierarchy_id: u32,
    controllers: Vec<String>,
    path: String,
}

fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroupLine>, CgroupError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || CgroupError::ProcCgroup {
                line: line.to_owned(),
            };
            let mut it = line.splitn(3, ':');
            let id = it
                .next()
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or_else(bad)?;
            let controllers = it.next().ok_or_else(bad)?;
            let path = it.next().ok_or_else(bad)?;
            if !path.starts_with('/') {
                return Err(bad());
            }
            Ok(ProcCgroupLine {
                hierarchy_id: id,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// What a path of the host is, for [`CgroupSetup::from_conventional_mounts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A path on a cgroup v1 filesystem.
    Cgroup1,
    /// A path on a cgroup2 filesystem.
    Cgroup2,
    /// Anything else, or nothing.
    Other,
}

/// [`Probe`] of a host path: its filesystem type (`statfs`), `Other` when
/// it does not exist.
pub fn probe_host(path: &Path) -> Probe {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let Ok(st) = rustix::fs::statfs(path) else {
        return Probe::Other;
    };
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    match st.f_type as i64 {
        CGROUP_SUPER_MAGIC => Probe::Cgroup1,
        CGROUP2_SUPER_MAGIC => Probe::Cgroup2,
        _ => Probe::Other,
    }
}

/// Among mounts of one hierarchy, prefers one whose root contains our cgroup,
/// the shortest such root (the whole hierarchy) first.
fn pick_mount<'a>(candidates: impl Iterator<Item = &'a Mount>, own: &str) -> Option<&'a Mount> {
    let all: Vec<&Mount> = candidates.collect();
    all.iter()
        .filter(|m| Path::new(own).starts_with(&m.root))
        .min_by_key(|m| m.root.len())
        .or_else(|| all.first())
        .copied()
}

/// `own` relative to the mount's `root`, as an absolute-looking path.
fn relative_to_root(own: &str, root: &str) -> PathBuf {
    let rel = Path::new(own).strip_prefix(root).unwrap_or(Path::new(""));
    let mut out = PathBuf::from("/");
    out.extend(
        rel.components()
            .filter(|c| matches!(c, Component::Normal(_))),
    );
    out
}

#[cfg(test)]
pub(crate) mod tests;
