//! OCI resources → cgroup v1 files. Each function writes one controller's
//! settings into that controller's directory and only touches files for
//! values the spec actually sets; a missing file for a requested value is a
//! [`CgroupError::MissingFile`] naming it.
//!
//! Conventions: `-1` means unlimited and is written as `-1` (v1 accepts it);
//! the memory limit and the memory+swap limit are written in the order that
//! keeps `limit <= memsw` true at every step.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxPids,
};

use crate::error::CgroupError;
use crate::fsutil::{exists, read, write};

/// v1 reports "no limit" as the largest page-aligned i64.
const V1_UNLIMITED_MIN: u64 = 0x7fff_ffff_ffff_f000;

/// Reads `memory.limit_in_bytes` as an i64, unlimited → -1.
fn current_memory_limit(dir: &Path) -> Result<i64, CgroupError> {
    let path = dir.join("memory.limit_in_bytes");
    let text = read(&path)?;
    if text.trim() == "-1" {
        return Ok(-1);
    }
    let v: u64 = text.trim().parse().map_err(|_| {
        crate::fsutil::parse_err(
            &path,
            format!("expected a byte count, got {:?}", text.trim()),
        )
    })?;
    Ok(if v >= V1_UNLIMITED_MIN {
        -1
    } else {
        i64::try_from(v).unwrap_or(-1)
    })
}

/// Memory: limit, reservation, memory+swap, swappiness, OOM killer, kernel TCP.
pub(crate) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    if let Some(r) = m.reservation() {
        write(dir, "memory.soft_limit_in_bytes", r, "memory reservation")?;
    }
    match (m.limit(), m.swap()) {
        (None, None) => {}
        (Some(-1), None) => {
            // Unlimited memory with swap unspecified: lift memsw too (first,
            // so it never sits below the memory limit), if swap accounting
            // exists at all.
            if exists(dir, MEMSW) {
                write(dir, MEMSW, -1, "memory+swap limit")?;
            }
            write(dir, LIMIT, -1, "memory limit")?;
        }
        (Some(limit), None) => write(dir, LIMIT, limit, "memory limit")?,
        (limit, Some(swap)) => {
            validate_swap(limit, swap)?;
            // memsw first when that keeps memsw >= the current limit
            // (raising), else the limit first (lowering).
            let swap_first = swap == -1 || memsw_first(current_memory_limit(dir)?, swap);
            if swap_first {
                write(dir, MEMSW, swap, "memory+swap limit")?;
                if let Some(limit) = limit {
                    write(dir, LIMIT, limit, "memory limit")?;
                }
            } else {
                if let Some(limit) = limit {
                    write(dir, LIMIT, limit, "memory limit")?;
                }
                write(dir, MEMSW, swap, "memory+swap limit")?;
            }
        }
    }
    if m.kernel().is_some() {
        tracing::warn!("linux.resources.memory.kernel is deprecated and ignored");
    }
    if let Some(tcp) = m.kernel_tcp() {
        write(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            tcp,
            "kernel TCP memory limit",
        )?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidResource {
                reason: format!("memory swappiness {s} is above 100"),
            });
        }
        write(dir, "memory.swappiness", s, "memory swappiness")?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        write(
            dir,
            "memory.oom_control",
            u8::from(disable),
            "OOM killer setting",
        )?;
    }
    if let Some(h) = m.use_hierarchy() {
        write(
            dir,
            "memory.use_hierarchy",
            u8::from(h),
            "memory hierarchy setting",
        )?;
    }
    Ok(())
}

/// Whether memory+swap must be written before the memory limit: when the new
/// memsw is at least the current limit (raising, or lifting to `-1`), writing
/// it first keeps `limit <= memsw`; otherwise (lowering) the limit goes first.
pub(crate) fn memsw_first(current_limit: i64, new_memsw: i64) -> bool {
    new_memsw == -1 || (current_limit != -1 && current_limit <= new_memsw)
}

/// Checks a v1 memory+swap value against the memory limit.
pub(crate) fn validate_swap(limit: Option<i64>, swap: i64) -> Result<(), CgroupError> {
    if swap == -1 {
        return Ok(());
    }
    if swap < 0 {
        return Err(CgroupError::InvalidResource {
            reason: format!("memory swap {swap} is negative"),
        });
    }
    match limit {
        Some(-1) => Err(CgroupError::InvalidResource {
            reason: format!("memory swap {swap} is limited while the memory limit is unlimited"),
        }),
        Some(l) if swap < l => Err(CgroupError::InvalidResource {
            reason: format!("memory+swap limit {swap} is below the memory limit {l}"),
        }),
        _ => Ok(()),
    }
}

/// CPU bandwidth and weight (the `cpu` hierarchy).
pub(crate) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        write(dir, "cpu.shares", shares, "cpu shares")?;
    }
    if let Some(period) = c.period().filter(|p| *p != 0) {
        write(dir, "cpu.cfs_period_us", period, "cpu period")?;
    }
    if let Some(quota) = c.quota().filter(|q| *q != 0) {
        write(
            dir,
            "cpu.cfs_quota_us",
            if quota < 0 { -1 } else { quota },
            "cpu quota",
        )?;
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.cfs_burst_us", burst, "cpu burst")?;
    }
    if let Some(period) = c.realtime_period().filter(|p| *p != 0) {
        write(dir, "cpu.rt_period_us", period, "realtime period")?;
    }
    if let Some(runtime) = c.realtime_runtime().filter(|r| *r != 0) {
        write(dir, "cpu.rt_runtime_us", runtime, "realtime runtime")?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", idle, "cpu idle")?;
    }
    Ok(())
}

/// `cpuset.cpus` / `cpuset.mems` (same names on v1 and v2).
pub(crate) fn set_cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus, "cpuset cpus")?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems, "cpuset mems")?;
    }
    Ok(())
}

/// `pids.max` (same on v1 and v2); a limit <= 0 means unlimited.
pub(crate) fn set_pids(dir: &Path, p: &LinuxPids) -> Result<(), CgroupError> {
    let limit = p.limit();
    if limit > 0 {
        write(dir, "pids.max", limit, "pids limit")
    } else {
        write(dir, "pids.max", "max", "pids limit")
    }
}

/// blkio: weights (CFQ `blkio.weight`, else BFQ `blkio.bfq.weight`) and
/// throttles.
pub(crate) fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // Kernels without CFQ expose the BFQ weight files instead.
    let (weight_file, weight_dev_file) =
        if !exists(dir, "blkio.weight") && exists(dir, "blkio.bfq.weight") {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        } else {
            ("blkio.weight", "blkio.weight_device")
        };
    if let Some(w) = b.weight() {
        write(dir, weight_file, w, "blkio weight")?;
    }
    if let Some(w) = b.leaf_weight() {
        write(dir, "blkio.leaf_weight", w, "blkio leaf weight")?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                weight_dev_file,
                format!("{}:{} {w}", d.major(), d.minor()),
                "blkio device weight",
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            write(
                dir,
                "blkio.leaf_weight_device",
                line,
                "blkio device leaf weight",
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
            "read bps throttle",
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
            "write bps throttle",
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
            "read iops throttle",
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
            "write iops throttle",
        ),
    ];
    for (file, devs, what) in throttles {
        for d in devs.iter().flatten() {
            write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                what,
            )?;
        }
    }
    Ok(())
}

/// `hugetlb.<size>.limit_in_bytes`.
pub(crate) fn set_hugetlb(dir: &Path, h: &LinuxHugepageLimit) -> Result<(), CgroupError> {
    let size = crate::v2::checked_page_size(h.page_size())?;
    write(
        dir,
        &format!("hugetlb.{size}.limit_in_bytes"),
        h.limit(),
        "hugepage limit",
    )
}

/// `net_cls.classid`, into the net_cls directory.
pub(crate) fn set_net_cls(dir: &Path, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        write(dir, "net_cls.classid", id, "network class id")?;
    }
    Ok(())
}

/// `net_prio.ifpriomap`, one write per interface, into the net_prio directory.
pub(crate) fn set_net_prio(dir: &Path, n: &LinuxNetwork) -> Result<(), CgroupError> {
    for p in n.priorities().iter().flatten() {
        write(
            dir,
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
            "network priority",
        )?;
    }
    Ok(())
}
