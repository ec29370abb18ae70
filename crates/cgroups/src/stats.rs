//! Resource usage of a cgroup, shaped after what `docker stats` reports.
//!
//! [`Stats`] has one optional section per controller; a section is `None`
//! when the controller is not available for the cgroup. Numbers are bytes,
//! nanoseconds or counts; a limit of `None` means unlimited. The readers here
//! take the controller's directory and its version; the manager decides which
//! directory serves which controller.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::CgroupVersion;
use crate::error::CgroupError;
use crate::fsutil::{parse_devno, read_flat_keyed, read_opt, read_u64_opt};

/// Usage of one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub memory: Option<MemoryStats>,
    pub cpu: Option<CpuStats>,
    pub pids: Option<PidsStats>,
    pub blkio: Option<BlkioStats>,
    /// Per page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// Memory usage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// Current usage in bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` when the
    /// kernel has it).
    pub max_usage: Option<u64>,
    /// The memory limit; `None` = unlimited.
    pub limit: Option<u64>,
    /// Page cache (v1 `cache`, v2 `file` of memory.stat).
    pub cache: u64,
    /// Anonymous memory (v1 `rss`, v2 `anon`).
    pub rss: u64,
    /// Swap in use, when swap accounting exists.
    pub swap: Option<u64>,
    /// Times the limit was hit (v1 `memory.failcnt`, v2 `max` in memory.events).
    pub failcnt: u64,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kill: u64,
    /// The raw `memory.stat` map.
    pub stat: BTreeMap<String, u64>,
}

/// CPU usage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    pub total_usage_ns: u64,
    /// Per CPU (v1 `cpuacct.usage_percpu`); empty on v2.
    pub percpu_usage_ns: Vec<u64>,
    pub user_ns: u64,
    pub system_ns: u64,
    pub throttling: ThrottlingStats,
}

/// CFS bandwidth throttling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ThrottlingStats {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// Process count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` = unlimited.
    pub limit: Option<u64>,
}

/// Block I/O, as `docker stats` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One device/operation counter. `op` is the v1 name (`Read`, `Write`,
/// `Sync`, `Async`, `Discard`, `Total`) or on v2 `read`/`write`/`discard`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Hugepage usage for one page size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: Option<u64>,
    pub failcnt: u64,
}

/// v1 reports "no limit" as a value this large or larger.
const V1_UNLIMITED_MIN: u64 = 0x7fff_ffff_ffff_f000;

pub(crate) fn memory_v1(dir: &Path) -> Result<Option<MemoryStats>, CgroupError> {
    let Some(usage) = read_u64_opt(dir, "memory.usage_in_bytes")? else {
        return Ok(None);
    };
    let stat = read_flat_keyed(dir, "memory.stat")?.unwrap_or_default();
    let pick = |hier: &str, local: &str| {
        stat.get(hier)
            .or_else(|| stat.get(local))
            .copied()
            .unwrap_or(0)
    };
    let oom_kill = read_flat_keyed(dir, "memory.oom_control")?
        .and_then(|m| m.get("oom_kill").copied())
        .unwrap_or(0);
    let swap =
        read_u64_opt(dir, "memory.memsw.usage_in_bytes")?.map(|memsw| memsw.saturating_sub(usage));
    Ok(Some(MemoryStats {
        usage,
        max_usage: read_u64_opt(dir, "memory.max_usage_in_bytes")?,
        limit: read_u64_opt(dir, "memory.limit_in_bytes")?.filter(|l| *l < V1_UNLIMITED_MIN),
        cache: pick("total_cache", "cache"),
        rss: pick("total_rss", "rss"),
        swap,
        failcnt: read_u64_opt(dir, "memory.failcnt")?.unwrap_or(0),
        oom_kill,
        stat,
    }))
}

/// The OOM killer's kill count in the memory cgroup `dir`.
pub(crate) fn oom_kills(dir: &Path, version: CgroupVersion) -> Result<u64, CgroupError> {
    let file = match version {
        CgroupVersion::V1 => "memory.oom_control",
        CgroupVersion::V2 => "memory.events",
    };
    Ok(read_flat_keyed(dir, file)?
        .and_then(|m| m.get("oom_kill").copied())
        .unwrap_or(0))
}

pub(crate) fn memory_v2(dir: &Path) -> Result<Option<MemoryStats>, CgroupError> {
    let Some(usage) = read_u64_opt(dir, "memory.current")? else {
        return Ok(None);
    };
    let stat = read_flat_keyed(dir, "memory.stat")?.unwrap_or_default();
    let events = read_flat_keyed(dir, "memory.events")?.unwrap_or_default();
    Ok(Some(MemoryStats {
        usage,
        max_usage: read_u64_opt(dir, "memory.peak")?,
        limit: read_u64_opt(dir, "memory.max")?,
        cache: stat.get("file").copied().unwrap_or(0),
        rss: stat.get("anon").copied().unwrap_or(0),
        swap: read_u64_opt(dir, "memory.swap.current")?,
        failcnt: events.get("max").copied().unwrap_or(0),
        oom_kill: events.get("oom_kill").copied().unwrap_or(0),
        stat,
    }))
}

/// v1 CPU usage from the cpuacct directory plus throttling from the cpu one.
pub(crate) fn cpu_v1(
    cpuacct: Option<&Path>,
    cpu: Option<&Path>,
) -> Result<Option<CpuStats>, CgroupError> {
    let mut out = CpuStats::default();
    let mut any = false;
    if let Some(dir) = cpuacct
        && let Some(total) = read_u64_opt(dir, "cpuacct.usage")?
    {
        any = true;
        out.total_usage_ns = total;
        let percpu_path = dir.join("cpuacct.usage_percpu");
        if let Some(text) = read_opt(&percpu_path)? {
            out.percpu_usage_ns = text
                .split_whitespace()
                .map(|v| {
                    v.parse().map_err(|_| {
                        crate::fsutil::parse_err(&percpu_path, format!("bad number {v:?}"))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        match (
            read_u64_opt(dir, "cpuacct.usage_user")?,
            read_u64_opt(dir, "cpuacct.usage_sys")?,
        ) {
            (Some(u), Some(s)) => (out.user_ns, out.system_ns) = (u, s),
            _ => {
                // Older kernels: clock ticks in cpuacct.stat.
                let stat = read_flat_keyed(dir, "cpuacct.stat")?.unwrap_or_default();
                let ns_per_tick = 1_000_000_000 / rustix::param::clock_ticks_per_second();
                out.user_ns = stat.get("user").copied().unwrap_or(0) * ns_per_tick;
                out.system_ns = stat.get("system").copied().unwrap_or(0) * ns_per_tick;
            }
        }
    }
    if let Some(dir) = cpu
        && let Some(stat) = read_flat_keyed(dir, "cpu.stat")?
    {
        any = true;
        out.throttling = ThrottlingStats {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time_ns: stat.get("throttled_time").copied().unwrap_or(0),
        };
    }
    Ok(any.then_some(out))
}

pub(crate) fn cpu_v2(dir: &Path) -> Result<Option<CpuStats>, CgroupError> {
    let Some(stat) = read_flat_keyed(dir, "cpu.stat")? else {
        return Ok(None);
    };
    let us = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
    Ok(Some(CpuStats {
        total_usage_ns: us("usage_usec"),
        percpu_usage_ns: Vec::new(),
        user_ns: us("user_usec"),
        system_ns: us("system_usec"),
        throttling: ThrottlingStats {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time_ns: us("throttled_usec"),
        },
    }))
}

/// pids.current / pids.max (same on both versions).
pub(crate) fn pids(dir: &Path) -> Result<Option<PidsStats>, CgroupError> {
    let Some(current) = read_u64_opt(dir, "pids.current")? else {
        return Ok(None);
    };
    Ok(Some(PidsStats {
        current,
        limit: read_u64_opt(dir, "pids.max")?,
    }))
}

/// Parses v1 blkio lines `MAJ:MIN Op value` (the `Total` summary line, which
/// has no device, is skipped).
pub(crate) fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (major, minor) = parse_devno(it.next()?)?;
            let op = it.next()?.to_owned();
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

pub(crate) fn blkio_v1(dir: &Path) -> Result<Option<BlkioStats>, CgroupError> {
    // CFQ's files when they have data, else the throttle layer's (which
    // counts all I/O on kernels without CFQ).
    let read_pair = |bytes: &str, ios: &str| -> Result<Option<BlkioStats>, CgroupError> {
        let Some(b) = read_opt(&dir.join(bytes))? else {
            return Ok(None);
        };
        let s = read_opt(&dir.join(ios))?.unwrap_or_default();
        Ok(Some(BlkioStats {
            io_service_bytes_recursive: parse_blkio_v1(&b),
            io_serviced_recursive: parse_blkio_v1(&s),
        }))
    };
    let cfq = read_pair(
        "blkio.io_service_bytes_recursive",
        "blkio.io_serviced_recursive",
    )?;
    if let Some(s) = &cfq
        && (!s.io_service_bytes_recursive.is_empty() || !s.io_serviced_recursive.is_empty())
    {
        return Ok(cfq);
    }
    let throttle = read_pair(
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    )?;
    Ok(throttle.or(cfq))
}

/// Parses v2 `io.stat` lines `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`.
pub(crate) fn parse_io_stat(text: &str) -> BlkioStats {
    let mut out = BlkioStats::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(parse_devno) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes_recursive, "read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "write"),
                "dbytes" => (&mut out.io_service_bytes_recursive, "discard"),
                "rios" => (&mut out.io_serviced_recursive, "read"),
                "wios" => (&mut out.io_serviced_recursive, "write"),
                "dios" => (&mut out.io_serviced_recursive, "discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    out
}

pub(crate) fn io_v2(dir: &Path) -> Result<Option<BlkioStats>, CgroupError> {
    Ok(read_opt(&dir.join("io.stat"))?.map(|t| parse_io_stat(&t)))
}

/// Hugepage sizes with a usage file in `dir` (`hugetlb.2MB.usage_in_bytes`
/// on v1, `hugetlb.2MB.current` on v2).
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut sizes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
            && !size.contains('.')
        {
            sizes.push(size.to_owned());
        }
    }
    sizes.sort();
    Ok(sizes)
}

pub(crate) fn hugetlb_v1(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut out = BTreeMap::new();
    for size in hugetlb_sizes(dir, ".usage_in_bytes")? {
        let f = |what: &str| read_u64_opt(dir, &format!("hugetlb.{size}.{what}"));
        let stats = HugetlbStats {
            usage: f("usage_in_bytes")?.unwrap_or(0),
            max_usage: f("max_usage_in_bytes")?,
            failcnt: f("failcnt")?.unwrap_or(0),
        };
        out.insert(size, stats);
    }
    Ok(out)
}

pub(crate) fn hugetlb_v2(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut out = BTreeMap::new();
    for size in hugetlb_sizes(dir, ".current")? {
        let usage = read_u64_opt(dir, &format!("hugetlb.{size}.current"))?.unwrap_or(0);
        let events = read_flat_keyed(dir, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
        out.insert(
            size,
            HugetlbStats {
                usage,
                max_usage: None,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
