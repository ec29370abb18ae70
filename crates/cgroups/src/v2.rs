//! OCI resources → cgroup v2 files, with the standard conversions:
//!
//! - `cpu.shares` (2..262144) → `cpu.weight` (1..10000):
//!   `1 + ((shares - 2) * 9999) / 262142` ([`shares_to_weight`]);
//! - blkio weight (10..1000) → `io.weight` (1..10000):
//!   `1 + ((weight - 10) * 9999) / 990` ([`blkio_weight_to_io`]), unless BFQ's
//!   `io.bfq.weight` exists, which takes the v1 range as is;
//! - OCI `memory.swap` is memory+swap; v2 `memory.swap.max` is swap alone:
//!   `swap - limit` ([`swap_max`]);
//! - `-1` (and a pids limit <= 0) is written as `max`.
//!
//! Settings with no v2 equivalent (swappiness, disabling the OOM killer,
//! kernel TCP memory, realtime CPU, blkio leaf weights) are an
//! [`CgroupError::Unsupported`] error when requested.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use crate::error::CgroupError;
use crate::fsutil::{exists, read_opt, write};

const V2: &str = "v2";

fn unsupported(what: &str) -> CgroupError {
    CgroupError::Unsupported {
        what: what.to_owned(),
        version: V2,
    }
}

/// Formats a byte limit where `-1` means unlimited.
fn limit_str(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// `cpu.shares` → `cpu.weight`.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio weight (10..1000) → `io.weight` (1..10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// What to write to `memory.swap.max` for OCI `limit` and `swap`
/// (memory+swap); `None` leaves it alone, `Some(-1)` means `max`.
pub fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<i64>, CgroupError> {
    match (limit, swap) {
        // Unlimited memory with swap unspecified: unlimited swap too, as v1
        // behaves when both are lifted.
        (Some(-1), None) => Ok(Some(-1)),
        (_, None) => Ok(None),
        (_, Some(-1)) => Ok(Some(-1)),
        (_, Some(s)) if s < 0 => Err(CgroupError::InvalidResource {
            reason: format!("memory swap {s} is negative"),
        }),
        (None | Some(-1) | Some(0), Some(s)) => Err(CgroupError::InvalidResource {
            reason: format!("memory swap {s} needs a memory limit (memory.swap is memory+swap)"),
        }),
        (Some(l), Some(s)) if s < l => Err(CgroupError::InvalidResource {
            reason: format!("memory+swap limit {s} is below the memory limit {l}"),
        }),
        (Some(l), Some(s)) => Ok(Some(s - l)),
    }
}

/// memory.max, memory.low, memory.swap.max.
pub(crate) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    if m.swappiness().is_some() {
        return Err(unsupported("memory swappiness"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported("disabling the OOM killer"));
    }
    if m.kernel_tcp().is_some() {
        return Err(unsupported("kernel TCP memory limit"));
    }
    if m.kernel().is_some() {
        tracing::warn!("linux.resources.memory.kernel is deprecated and ignored");
    }
    let swap = swap_max(m.limit(), m.swap())?;
    if let Some(r) = m.reservation() {
        write(dir, "memory.low", limit_str(r), "memory reservation")?;
    }
    if let Some(l) = m.limit() {
        write(dir, "memory.max", limit_str(l), "memory limit")?;
    }
    if let Some(s) = swap {
        // memory.swap.max does not exist without swap accounting; lifting a
        // limit that cannot exist is not an error.
        if s == -1 && m.swap().is_none() && !exists(dir, "memory.swap.max") {
            return Ok(());
        }
        write(dir, "memory.swap.max", limit_str(s), "memory swap limit")?;
    }
    Ok(())
}

/// cpu.weight, cpu.max, cpu.max.burst, cpu.idle.
pub(crate) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return Err(unsupported("realtime cpu scheduling"));
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        write(dir, "cpu.weight", shares_to_weight(shares), "cpu shares")?;
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        let quota = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_owned(),
            // Only the period changes: keep the current quota.
            None => read_opt(&dir.join("cpu.max"))?
                .and_then(|s| s.split_whitespace().next().map(str::to_owned))
                .unwrap_or_else(|| "max".to_owned()),
        };
        let value = match period {
            Some(p) => format!("{quota} {p}"),
            None => quota,
        };
        write(dir, "cpu.max", value, "cpu quota/period")?;
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.max.burst", burst, "cpu burst")?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", idle, "cpu idle")?;
    }
    Ok(())
}

/// io.weight / io.bfq.weight and io.max.
pub(crate) fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    if b.leaf_weight().is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some())
    {
        return Err(unsupported("blkio leaf weight"));
    }
    let bfq = exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight() {
        if bfq {
            write(dir, "io.bfq.weight", w, "blkio weight")?;
        } else {
            write(
                dir,
                "io.weight",
                format!("default {}", blkio_weight_to_io(w)),
                "blkio weight",
            )?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            if bfq {
                write(
                    dir,
                    "io.bfq.weight",
                    format!("{}:{} {w}", d.major(), d.minor()),
                    "blkio device weight",
                )?;
            } else {
                let line = format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io(w));
                write(dir, "io.weight", line, "blkio device weight")?;
            }
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devs) in throttles {
        for d in devs.iter().flatten() {
            // A rate of 0 means "no limit" in the OCI spec.
            let rate = if d.rate() == 0 {
                "max".to_owned()
            } else {
                d.rate().to_string()
            };
            write(
                dir,
                "io.max",
                format!("{}:{} {key}={rate}", d.major(), d.minor()),
                "blkio throttle",
            )?;
        }
    }
    Ok(())
}

/// Checks an OCI hugepage size (`2MB`, `1GB`) before it becomes part of a
/// file name.
pub(crate) fn checked_page_size(size: &str) -> Result<&str, CgroupError> {
    if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CgroupError::InvalidResource {
            reason: format!("hugepage size {size:?} is not like \"2MB\""),
        });
    }
    Ok(size)
}

/// `hugetlb.<size>.max`.
pub(crate) fn set_hugetlb(dir: &Path, h: &LinuxHugepageLimit) -> Result<(), CgroupError> {
    let size = checked_page_size(h.page_size())?;
    write(
        dir,
        &format!("hugetlb.{size}.max"),
        limit_str(h.limit()),
        "hugepage limit",
    )
}

/// Writes the `unified` map: each key is a file in the cgroup directory.
pub(crate) fn set_unified<'a>(
    dir: &Path,
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), CgroupError> {
    let mut entries: Vec<_> = entries.into_iter().collect();
    entries.sort();
    for (key, value) in entries {
        if key.is_empty() || key.contains('/') || key == "." || key == ".." {
            return Err(CgroupError::InvalidResource {
                reason: format!("unified key {key:?} is not a cgroup file name"),
            });
        }
        write(dir, key, value, "unified resource")?;
    }
    Ok(())
}

/// `rdma.max` lines (same format on v1 and v2).
pub(crate) fn set_rdma<'a>(
    dir: &Path,
    entries: impl IntoIterator<Item = (&'a String, &'a oci_spec::runtime::LinuxRdma)>,
) -> Result<(), CgroupError> {
    for (device, limits) in entries {
        let mut line = device.clone();
        if let Some(h) = limits.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limits.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() > device.len() {
            write(dir, "rdma.max", line, "rdma limit")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_weight_conversion() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // Out-of-range values clamp.
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 30), 10_000);
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(500), 1 + (490 * 9999) / 990);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
    }

    #[test]
    fn swap_math() {
        assert_eq!(swap_max(Some(100), Some(300)).unwrap(), Some(200));
        assert_eq!(swap_max(Some(100), Some(100)).unwrap(), Some(0));
        assert_eq!(swap_max(Some(100), Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(-1), None).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(100), None).unwrap(), None);
        assert_eq!(swap_max(None, None).unwrap(), None);
        assert!(swap_max(Some(300), Some(100)).is_err());
        assert!(swap_max(None, Some(100)).is_err());
        assert!(swap_max(Some(-1), Some(100)).is_err());
        assert!(swap_max(Some(100), Some(-5)).is_err());
    }

    #[test]
    fn page_size_is_checked() {
        assert!(checked_page_size("2MB").is_ok());
        assert!(checked_page_size("../x").is_err());
        assert!(checked_page_size("").is_err());
    }
}
