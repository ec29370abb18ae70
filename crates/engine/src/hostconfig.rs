//! Docker's rarer `HostConfig` fields: their validation (in dockerd's
//! words, so the docker CLI prints the same errors) and what each becomes
//! in the OCI runtime spec. [`crate::spec::build`] calls the `apply_*`
//! functions; create calls [`validate`] first and [`fill_defaults`] before
//! the record is saved.
//!
//! What each field becomes:
//! - `OomScoreAdj` (-1000..1000): `process.oomScoreAdj`;
//! - `CgroupParent`: `linux.cgroupsPath` = `<parent>/<id>` (cgroupfs; a
//!   relative parent hangs below the root, as for dockerd in the root cgroup);
//! - `BlkioWeight` (10..1000), `BlkioWeightDevice`, `BlkioDevice{Read,Write}{Bps,IOps}`:
//!   `linux.resources.blockIO`, devices by the major:minor of `stat(path)`;
//! - `CpuRealtimePeriod`/`CpuRealtimeRuntime`: `linux.resources.cpu.realtime*`
//!   (the parent's real-time budget is left as it is, as dockerd does
//!   without `--cpu-rt-runtime`);
//! - `MemorySwappiness` (0..100, -1 = unset), `KernelMemoryTCP`: `linux.resources.memory`;
//! - `KernelMemory`: dropped at create, as dockerd does for API ≥ 1.42;
//! - `DeviceCgroupRules` (`[acb] <major|*>:<minor|*> [rwm]{1,3}`): device
//!   cgroup allow rules (ignored with `Privileged`, which allows all);
//! - `UTSMode=host`: no UTS namespace; `CgroupnsMode=private`: a cgroup
//!   namespace (the default is `host` on cgroup v1, `private` on v2);
//! - `Runtime` (`runc`, `wharf`), `Isolation` (`default`), `UsernsMode`
//!   (`host`; there is no remapping), `StorageOpt` (refused: no quota):
//!   checked only.

use oci_spec::runtime::{
    Linux, LinuxBlockIo, LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespace, LinuxNamespaceType,
    LinuxResources, LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
    Process,
};

use crate::error::EngineError;
use crate::model::{HostConfig, ThrottleDevice};

fn refused(reason: impl Into<String>) -> EngineError {
    EngineError::Refused {
        reason: reason.into(),
    }
}

/// The runtimes a container may name: the built-in one answers to both.
pub const RUNTIMES: &[&str] = &["runc", "wharf"];

/// What the host's cgroups offer (dockerd's `sysinfo`), read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupSupport {
    /// cgroup v2 only (no v1 controllers mounted).
    pub unified: bool,
    /// `cpu.rt_period_us` and `cpu.rt_runtime_us` exist.
    pub cpu_realtime: bool,
    /// `memory.swappiness` exists.
    pub swappiness: bool,
    /// A blkio weight file (`blkio.weight` or BFQ's `blkio.bfq.weight`).
    pub blkio_weight: bool,
    /// The blkio throttle files.
    pub blkio_throttle: bool,
}

impl CgroupSupport {
    /// Probes `/sys/fs/cgroup`.
    pub fn probe() -> CgroupSupport {
        static SUPPORT: std::sync::OnceLock<CgroupSupport> = std::sync::OnceLock::new();
        *SUPPORT.get_or_init(|| CgroupSupport::probe_at(std::path::Path::new("/sys/fs/cgroup")))
    }

    /// Probes a cgroup mount tree rooted at `root`.
    pub fn probe_at(root: &std::path::Path) -> CgroupSupport {
        let unified = root.join("cgroup.controllers").exists();
        if unified {
            return CgroupSupport {
                unified,
                cpu_realtime: false,
                swappiness: false,
                blkio_weight: root.join("io.weight").exists()
                    || root.join("io.bfq.weight").exists(),
                blkio_throttle: true,
            };
        }
        let cpu = root.join("cpu");
        let blkio = root.join("blkio");
        CgroupSupport {
            unified,
            cpu_realtime: cpu.join("cpu.rt_period_us").exists()
                && cpu.join("cpu.rt_runtime_us").exists(),
            swappiness: root.join("memory/memory.swappiness").exists(),
            blkio_weight: blkio_weight_file(&blkio),
            blkio_throttle: blkio.join("blkio.throttle.read_bps_device").exists(),
        }
    }
}

/// Whether the blkio hierarchy has a weight file. BFQ shows
/// `blkio.bfq.weight` only below the root, so a child cgroup is looked at
/// too (dockerd looks at the root only and would discard the weight).
fn blkio_weight_file(blkio: &std::path::Path) -> bool {
    let has = |d: &std::path::Path| {
        d.join("blkio.weight").exists() || d.join("blkio.bfq.weight").exists()
    };
    has(blkio)
        || std::fs::read_dir(blkio).is_ok_and(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .any(|e| has(&e.path()))
        })
}

/// Checks the fields this module owns; `hostname` is the hostname the
/// client asked for (empty when it did not). Returns dockerd's warnings.
pub fn validate(
    hc: &HostConfig,
    hostname: &str,
    support: CgroupSupport,
) -> Result<Vec<String>, EngineError> {
    let mut warnings = Vec::new();
    // 1. runconfig: network/UTS conflicts, isolation, real-time.
    if hc.uts_mode == "host" && !hostname.is_empty() {
        return Err(refused("conflicting options: hostname and the UTS mode"));
    }
    if hc.network_mode == "host" && hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(refused(
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        ));
    }
    if !matches!(hc.isolation.as_str(), "" | "default") {
        return Err(refused(format!(
            "invalid isolation ({}): linux only supports 'default'",
            hc.isolation
        )));
    }
    validate_realtime(hc.cpu_realtime_period, hc.cpu_realtime_runtime, support)?;

    // 2. Resources (verifyPlatformContainerResources).
    if let Some(s) = hc.memory_swappiness.filter(|s| *s != -1) {
        if !support.swappiness {
            warnings.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".to_owned());
        } else if !(0..=100).contains(&s) {
            return Err(refused(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    if hc.blkio_weight > 0 {
        if !support.blkio_weight {
            warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_owned());
        } else if !(10..=1000).contains(&hc.blkio_weight) {
            return Err(refused("Range of blkio weight is from 10 to 1000"));
        }
    }
    if hc
        .blkio_weight_device
        .as_ref()
        .is_some_and(|v| !v.is_empty())
        && !support.blkio_weight
    {
        warnings.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".to_owned());
    }
    for d in hc.blkio_weight_device.iter().flatten() {
        if !(10..=1000).contains(&d.weight) {
            return Err(refused(format!(
                "invalid weight for device: {}:{}: weight must be between 10 and 1000",
                d.path, d.weight
            )));
        }
    }

    // 3. Platform settings (verifyPlatformContainerSettings).
    if !matches!(hc.uts_mode.as_str(), "" | "host") {
        return Err(refused(format!("invalid UTS mode: {}", hc.uts_mode)));
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return Err(refused(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        )));
    }
    if !hc.runtime.is_empty() && !RUNTIMES.contains(&hc.runtime.as_str()) {
        return Err(refused(format!(
            "unknown or invalid runtime name: {}",
            hc.runtime
        )));
    }
    if !matches!(hc.cgroupns_mode.as_str(), "" | "private" | "host") {
        return Err(refused(format!(
            "invalid cgroup namespace mode: {}",
            hc.cgroupns_mode
        )));
    }
    if !matches!(hc.userns_mode.as_str(), "" | "host") {
        return Err(refused(format!(
            "invalid userns mode: {}: this daemon has no user namespace remapping (only \"host\" is supported)",
            hc.userns_mode
        )));
    }
    for rule in hc.device_cgroup_rules.iter().flatten() {
        parse_device_cgroup_rule(rule)?;
    }
    // 4. The writable layer (overlay without project quotas).
    if let Some(opts) = &hc.storage_opt {
        if opts.keys().any(|k| k.eq_ignore_ascii_case("size")) {
            return Err(refused(
                "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
            ));
        }
        if let Some(k) = opts.keys().next() {
            return Err(refused(format!(
                "Unknown option {}",
                k.to_ascii_lowercase()
            )));
        }
    }
    Ok(warnings)
}

/// dockerd's real-time checks (create and update).
pub fn validate_realtime(
    period: i64,
    runtime: i64,
    support: CgroupSupport,
) -> Result<(), EngineError> {
    if (period != 0 || runtime != 0) && !support.cpu_realtime {
        return Err(refused("kernel does not support CPU real-time scheduler"));
    }
    if period != 0 && runtime != 0 && runtime > period {
        return Err(refused(
            "cpu real-time runtime cannot be higher than cpu real-time period",
        ));
    }
    Ok(())
}

/// Sets defaults dockerd records at create: the cgroup namespace mode
/// (`host` on cgroup v1 and for privileged containers there, `private` on
/// v2) and a zero `KernelMemory` (ignored since API 1.42).
pub fn fill_defaults(hc: &mut HostConfig, support: CgroupSupport) {
    if hc.cgroupns_mode.is_empty() {
        hc.cgroupns_mode = if support.unified { "private" } else { "host" }.to_owned();
    }
    if let Some(v) = hc.extra.get_mut("KernelMemory") {
        *v = serde_json::Value::from(0);
    }
    if !support.swappiness {
        hc.memory_swappiness = None;
    }
    if !support.blkio_weight {
        hc.blkio_weight = 0;
        hc.blkio_weight_device = None;
    }
}

/// The container's `linux.cgroupsPath`: `<parent>/<id>`, where the parent
/// is the container's `CgroupParent` or else the daemon's. The parent is
/// cleaned lexically (`..` cannot climb above the root) and made absolute.
pub fn cgroups_path(daemon_parent: &str, hc: &HostConfig, id: &str) -> String {
    let parent = if hc.cgroup_parent.is_empty() {
        daemon_parent
    } else {
        &hc.cgroup_parent
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in parent.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.push(id);
    format!("/{}", parts.join("/"))
}

/// Parses `--device-cgroup-rule`: `[acb] <major|*>:<minor|*> [rwm]{1,3}`.
pub fn parse_device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, EngineError> {
    let bad = || refused(format!("invalid device cgroup rule format: '{rule}'"));
    let mut it = rule.split(' ');
    let (Some(typ), Some(nums), Some(access), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let num = |s: &str| -> Result<Option<i64>, EngineError> {
        if s == "*" {
            return Ok(None);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map(Some).map_err(|_| {
            refused(format!(
                "invalid major value in device cgroup rule format: '{rule}'"
            ))
        })
    };
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let (major, minor) = (num(major)?, num(minor)?);
    if !(1..=3).contains(&access.len()) || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(bad());
    }
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    Ok(r)
}

/// The major and minor numbers of the device at `path` (dockerd stats the
/// path, so a symlink to a device works; the error is `stat <path>: ...`).
fn device_numbers(path: &str) -> Result<(i64, i64), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).map_err(|e| {
        let e = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            _ => e.to_string(),
        };
        refused(format!("stat {path}: {e}"))
    })?;
    let rdev = md.rdev();
    Ok((
        i64::from(rustix::fs::major(rdev)),
        i64::from(rustix::fs::minor(rdev)),
    ))
}

fn throttles(
    devs: &Option<Vec<ThrottleDevice>>,
) -> Result<Option<Vec<LinuxThrottleDevice>>, EngineError> {
    let Some(devs) = devs.as_ref().filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(devs.len());
    for d in devs {
        let (major, minor) = device_numbers(&d.path)?;
        let t = LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(d.rate)
            .build()
            .map_err(|e| refused(format!("throttle device {}: {e}", d.path)))?;
        out.push(t);
    }
    Ok(Some(out))
}

/// A setter of one of the four throttle lists of [`LinuxBlockIo`].
type SetThrottle = fn(&mut LinuxBlockIo, Option<Vec<LinuxThrottleDevice>>);

/// Block I/O, real-time CPU, swappiness, kernel TCP memory and device
/// cgroup rules into `res` (after the rest of the resources are set).
pub fn apply_resources(hc: &HostConfig, res: &mut LinuxResources) -> Result<(), EngineError> {
    // Block I/O.
    let mut bio = res.block_io().clone().unwrap_or_default();
    let mut bio_set = false;
    if hc.blkio_weight > 0 {
        bio.set_weight(Some(hc.blkio_weight));
        bio_set = true;
    }
    if let Some(devs) = hc.blkio_weight_device.as_ref().filter(|d| !d.is_empty()) {
        let mut out = Vec::with_capacity(devs.len());
        for d in devs {
            let (major, minor) = device_numbers(&d.path)?;
            let w = LinuxWeightDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .weight(d.weight)
                .build()
                .map_err(|e| refused(format!("weight device {}: {e}", d.path)))?;
            out.push(w);
        }
        bio.set_weight_device(Some(out));
        bio_set = true;
    }
    let sets: [(&Option<Vec<ThrottleDevice>>, SetThrottle); 4] = [
        (&hc.blkio_device_read_bps, |b, v| {
            b.set_throttle_read_bps_device(v);
        }),
        (&hc.blkio_device_write_bps, |b, v| {
            b.set_throttle_write_bps_device(v);
        }),
        (&hc.blkio_device_read_iops, |b, v| {
            b.set_throttle_read_iops_device(v);
        }),
        (&hc.blkio_device_write_iops, |b, v| {
            b.set_throttle_write_iops_device(v);
        }),
    ];
    for (devs, set) in sets {
        if let Some(t) = throttles(devs)? {
            set(&mut bio, Some(t));
            bio_set = true;
        }
    }
    if bio_set {
        res.set_block_io(Some(bio));
    }

    // Real-time CPU.
    if hc.cpu_realtime_period < 0 || hc.cpu_realtime_runtime < -1 {
        return Err(refused("CPU real-time values must not be negative"));
    }
    if hc.cpu_realtime_period != 0 || hc.cpu_realtime_runtime != 0 {
        let mut cpu = res.cpu().clone().unwrap_or_default();
        if hc.cpu_realtime_period > 0 {
            cpu.set_realtime_period(u64::try_from(hc.cpu_realtime_period).ok());
        }
        if hc.cpu_realtime_runtime != 0 {
            cpu.set_realtime_runtime(Some(hc.cpu_realtime_runtime));
        }
        res.set_cpu(Some(cpu));
    }

    // Memory: swappiness and kernel TCP.
    let swappiness = hc.memory_swappiness.filter(|s| *s != -1);
    if swappiness.is_some() || hc.kernel_memory_tcp != 0 {
        let mut mem = (*res.memory()).unwrap_or_default();
        if let Some(s) = swappiness {
            let s = u64::try_from(s).ok().filter(|s| *s <= 100).ok_or_else(|| {
                refused(format!(
                    "Invalid value: {s}, valid memory swappiness range is 0-100"
                ))
            })?;
            mem.set_swappiness(Some(s));
        }
        if hc.kernel_memory_tcp != 0 {
            mem.set_kernel_tcp(Some(hc.kernel_memory_tcp));
        }
        res.set_memory(Some(mem));
    }

    // Device cgroup rules (a privileged container already allows all).
    if !hc.privileged
        && let Some(rules) = hc.device_cgroup_rules.as_ref().filter(|r| !r.is_empty())
    {
        let mut devs = res.devices().clone().unwrap_or_default();
        for r in rules {
            devs.push(parse_device_cgroup_rule(r)?);
        }
        res.set_devices(Some(devs));
    }
    Ok(())
}

/// `process.oomScoreAdj`.
pub fn apply_process(hc: &HostConfig, process: &mut Process) {
    if hc.oom_score_adj != 0 {
        process.set_oom_score_adj(i32::try_from(hc.oom_score_adj).ok());
    }
}

/// UTS and cgroup namespaces; returns whether the host's UTS namespace is
/// shared (then the spec sets no hostname).
pub fn apply_namespaces(hc: &HostConfig, linux: &mut Linux) -> bool {
    let mut ns = linux.namespaces().clone().unwrap_or_default();
    let host_uts = hc.uts_mode == "host" || hc.network_mode == "host";
    if hc.uts_mode == "host" {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Uts);
    }
    let has_cgroupns = ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup);
    if hc.cgroupns_mode == "private" && !has_cgroupns {
        let mut n = LinuxNamespace::default();
        n.set_typ(LinuxNamespaceType::Cgroup);
        ns.push(n);
    } else if hc.cgroupns_mode == "host" {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);
    }
    linux.set_namespaces(Some(ns));
    host_uts
}

/// Parses a `--link` value: `name[:alias]` (dockerd's `ParseLink`).
pub fn parse_link(link: &str) -> Result<(String, String), EngineError> {
    if link.is_empty() {
        return Err(refused("empty string specified for links"));
    }
    let parts: Vec<&str> = link.split(':').collect();
    match parts.as_slice() {
        [name] => Ok((
            name.trim_start_matches('/').to_owned(),
            name.trim_start_matches('/').to_owned(),
        )),
        [name, alias] => Ok((
            name.trim_start_matches('/').to_owned(),
            alias.trim_start_matches('/').to_owned(),
        )),
        _ => Err(refused(format!("bad format for links: {link}"))),
    }
}

/// Parses a `--volumes-from` value: `container[:mode]`; returns the
/// container and whether the mounts stay writable.
pub fn parse_volumes_from(spec: &str) -> Result<(String, bool), EngineError> {
    if spec.is_empty() {
        return Err(refused(
            "volume-from specification cannot be an empty string",
        ));
    }
    let (name, mode) = spec.split_once(':').unwrap_or((spec, ""));
    let mut rw = true;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" | "nocopy" | "private" | "rprivate" | "shared" | "rshared" | "slave"
            | "rslave" => {}
            _ => return Err(refused(format!("invalid mode: {mode}"))),
        }
    }
    Ok((name.to_owned(), rw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WeightDevice;

    const V1: CgroupSupport = CgroupSupport {
        unified: false,
        cpu_realtime: true,
        swappiness: true,
        blkio_weight: true,
        blkio_throttle: true,
    };

    fn err(hc: &HostConfig, hostname: &str) -> String {
        match validate(hc, hostname, V1) {
            Err(e) => e.to_string(),
            Ok(w) => panic!("accepted ({w:?}): {hc:?}"),
        }
    }

    #[test]
    fn dockerd_refusals() {
        let hc = |f: &dyn Fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            h
        };
        assert_eq!(
            err(&hc(&|h| h.oom_score_adj = 1001), ""),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
        assert!(validate(&hc(&|h| h.oom_score_adj = -1000), "", V1).is_ok());
        assert_eq!(
            err(&hc(&|h| h.memory_swappiness = Some(101)), ""),
            "Invalid value: 101, valid memory swappiness range is 0-100"
        );
        assert!(validate(&hc(&|h| h.memory_swappiness = Some(-1)), "", V1).is_ok());
        assert_eq!(
            err(&hc(&|h| h.blkio_weight = 5), ""),
            "Range of blkio weight is from 10 to 1000"
        );
        assert_eq!(
            err(&hc(&|h| h.runtime = "crun".into()), ""),
            "unknown or invalid runtime name: crun"
        );
        assert!(validate(&hc(&|h| h.runtime = "runc".into()), "", V1).is_ok());
        assert_eq!(
            err(&hc(&|h| h.isolation = "hyperv".into()), ""),
            "invalid isolation (hyperv): linux only supports 'default'"
        );
        assert_eq!(
            err(&hc(&|h| h.uts_mode = "host".into()), "box"),
            "conflicting options: hostname and the UTS mode"
        );
        assert_eq!(
            err(&hc(&|h| h.uts_mode = "private".into()), ""),
            "invalid UTS mode: private"
        );
        assert_eq!(
            err(&hc(&|h| h.cgroupns_mode = "shared".into()), ""),
            "invalid cgroup namespace mode: shared"
        );
        assert!(
            err(&hc(&|h| h.userns_mode = "private".into()), "").contains("invalid userns mode")
        );
        assert_eq!(
            err(
                &hc(&|h| {
                    h.network_mode = "host".into();
                    h.links = Some(vec!["a:b".into()]);
                }),
                ""
            ),
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
        );
        assert_eq!(
            err(
                &hc(&|h| {
                    h.cpu_realtime_period = 1000;
                    h.cpu_realtime_runtime = 2000;
                }),
                ""
            ),
            "cpu real-time runtime cannot be higher than cpu real-time period"
        );
        let no_rt = CgroupSupport {
            cpu_realtime: false,
            ..V1
        };
        assert_eq!(
            validate(&hc(&|h| h.cpu_realtime_period = 1000), "", no_rt)
                .unwrap_err()
                .to_string(),
            "kernel does not support CPU real-time scheduler"
        );
        assert_eq!(
            err(
                &hc(&|h| h.storage_opt = Some([("size".into(), "1G".into())].into())),
                ""
            ),
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        );
        assert_eq!(
            err(
                &hc(&|h| h.device_cgroup_rules = Some(vec!["c 1:3".into()])),
                ""
            ),
            "invalid device cgroup rule format: 'c 1:3'"
        );
        // Without the swappiness file dockerd warns and discards.
        let no_swap = CgroupSupport {
            swappiness: false,
            ..V1
        };
        let w = validate(&hc(&|h| h.memory_swappiness = Some(500)), "", no_swap).unwrap();
        assert!(w[0].contains("Memory swappiness discarded"));
    }

    #[test]
    fn device_cgroup_rules() {
        let r = parse_device_cgroup_rule("c 1:3 mr").unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "mr"})
        );
        let r = parse_device_cgroup_rule("b *:* rwm").unwrap();
        assert_eq!(r.major(), None);
        assert_eq!(r.minor(), None);
        assert_eq!(r.typ(), Some(LinuxDeviceType::B));
        for bad in [
            "x 1:3 r",
            "c 1:3 rwmw",
            "c 1:3 q",
            "c 1 r",
            "c a:3 r",
            "c 1:3  r",
            "",
        ] {
            assert!(parse_device_cgroup_rule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cgroup_paths() {
        let mut hc = HostConfig::default();
        assert_eq!(cgroups_path("/wharf", &hc, "abc"), "/wharf/abc");
        hc.cgroup_parent = "custom/sub".into();
        assert_eq!(cgroups_path("/wharf", &hc, "abc"), "/custom/sub/abc");
        hc.cgroup_parent = "/../../x/./y/".into();
        assert_eq!(cgroups_path("/wharf", &hc, "abc"), "/x/y/abc");
    }

    #[test]
    fn resources_mapping() {
        let mut hc = HostConfig {
            blkio_weight: 300,
            blkio_weight_device: Some(vec![WeightDevice {
                path: "/dev/null".into(),
                weight: 200,
            }]),
            blkio_device_read_bps: Some(vec![ThrottleDevice {
                path: "/dev/zero".into(),
                rate: 1 << 20,
            }]),
            blkio_device_write_iops: Some(vec![ThrottleDevice {
                path: "/dev/null".into(),
                rate: 50,
            }]),
            cpu_realtime_period: 500_000,
            cpu_realtime_runtime: 1000,
            memory_swappiness: Some(20),
            kernel_memory_tcp: 8 << 20,
            device_cgroup_rules: Some(vec!["c 42:* rw".into()]),
            oom_score_adj: 300,
            ..Default::default()
        };
        let mut res = LinuxResources::default();
        apply_resources(&hc, &mut res).unwrap();
        let v = serde_json::to_value(&res).unwrap();
        assert_eq!(v["blockIO"]["weight"], 300);
        // /dev/null is 1:3, /dev/zero 1:5.
        assert_eq!(
            v["blockIO"]["weightDevice"],
            serde_json::json!([{"major": 1, "minor": 3, "weight": 200}])
        );
        assert_eq!(
            v["blockIO"]["throttleReadBpsDevice"],
            serde_json::json!([{"major": 1, "minor": 5, "rate": 1048576}])
        );
        assert_eq!(
            v["blockIO"]["throttleWriteIOPSDevice"],
            serde_json::json!([{"major": 1, "minor": 3, "rate": 50}])
        );
        assert_eq!(v["cpu"]["realtimePeriod"], 500_000);
        assert_eq!(v["cpu"]["realtimeRuntime"], 1000);
        assert_eq!(v["memory"]["swappiness"], 20);
        assert_eq!(v["memory"]["kernelTCP"], 8 << 20);
        assert_eq!(
            v["devices"],
            serde_json::json!([{"allow": true, "type": "c", "major": 42, "access": "rw"}])
        );
        let mut p = Process::default();
        apply_process(&hc, &mut p);
        assert_eq!(p.oom_score_adj(), Some(300));

        hc.blkio_device_read_bps = Some(vec![ThrottleDevice {
            path: "/dev/wharf-no-such-device".into(),
            rate: 1,
        }]);
        assert_eq!(
            apply_resources(&hc, &mut LinuxResources::default())
                .unwrap_err()
                .to_string(),
            "stat /dev/wharf-no-such-device: no such file or directory"
        );
    }

    #[test]
    fn namespaces_and_defaults() {
        let mut linux = Linux::default();
        let mut uts = LinuxNamespace::default();
        uts.set_typ(LinuxNamespaceType::Uts);
        linux.set_namespaces(Some(vec![uts]));
        let mut hc = HostConfig {
            uts_mode: "host".into(),
            ..Default::default()
        };
        fill_defaults(&mut hc, V1);
        assert_eq!(hc.cgroupns_mode, "host");
        assert!(apply_namespaces(&hc, &mut linux));
        assert!(linux.namespaces().as_ref().unwrap().is_empty());
        hc.cgroupns_mode = "private".into();
        hc.uts_mode.clear();
        apply_namespaces(&hc, &mut linux);
        assert_eq!(
            linux.namespaces().as_ref().unwrap()[0].typ(),
            LinuxNamespaceType::Cgroup
        );
        let mut v2 = HostConfig::default();
        v2.extra.insert("KernelMemory".into(), 1_000_000.into());
        fill_defaults(
            &mut v2,
            CgroupSupport {
                unified: true,
                ..V1
            },
        );
        assert_eq!(v2.cgroupns_mode, "private");
        assert_eq!(v2.extra["KernelMemory"], 0);
    }

    #[test]
    fn links_and_volumes_from() {
        assert_eq!(
            parse_link("/db:alias").unwrap(),
            ("db".to_owned(), "alias".to_owned())
        );
        assert!(parse_link("a:b:c").is_err());
        assert_eq!(
            parse_volumes_from("c1:ro").unwrap(),
            ("c1".to_owned(), false)
        );
        assert_eq!(parse_volumes_from("c1").unwrap(), ("c1".to_owned(), true));
        assert!(parse_volumes_from("c1:xx").is_err());
        assert!(parse_volumes_from("").is_err());
    }
}
