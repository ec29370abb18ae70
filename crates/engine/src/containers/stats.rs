//! `top` and `stats`: what runs in a container and what it uses, read from
//! its cgroup (`<cgroup-parent>/<id>`) with `wharf-cgroups`, and from `ps`
//! for `top` (as Docker does: `ps` on the host, rows filtered by the
//! container's pids).

use std::sync::Arc;
use std::time::SystemTime;

pub use wharf_cgroups::{BlkioEntry, Stats as CgroupStats};

use super::Containers;
use crate::error::{EngineError, io_err};

/// One `stats` sample.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub read: SystemTime,
    pub stats: wharf_cgroups::Stats,
    /// Host CPU time of all CPUs, in nanoseconds (`/proc/stat`).
    pub system_cpu_ns: u64,
    pub online_cpus: usize,
    /// The host's memory, the ceiling for "no limit".
    pub mem_total: u64,
}

/// `top`'s table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopTable {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Total CPU time from `/proc/stat`'s `cpu` line, in nanoseconds (USER_HZ = 100).
fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
                * 10_000_000
        })
        .unwrap_or(0)
}

/// Rows of `ps` output whose PID column is one of `pids`.
pub fn filter_ps(output: &str, pids: &[i32]) -> Result<TopTable, String> {
    let mut lines = output.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("couldn't find PID field in ps output")?;
    let mut processes = Vec::new();
    for l in lines {
        // The last column (the command) may contain spaces.
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        processes.push(row);
    }
    Ok(TopTable { titles, processes })
}

impl Containers {
    fn cgroup(
        &self,
        id: &str,
        hc: &crate::model::HostConfig,
    ) -> Result<Box<dyn wharf_cgroups::CgroupManager>, EngineError> {
        let cg_err = |source| EngineError::Cgroup {
            id: id.to_owned(),
            source,
        };
        let setup = wharf_cgroups::CgroupSetup::detect().map_err(cg_err)?;
        wharf_cgroups::manager(
            &setup,
            &crate::hostconfig::cgroups_path(&self.cfg.cgroup_parent, hc, id),
        )
        .map_err(cg_err)
    }

    /// One resource sample of a running container.
    pub async fn stats(self: &Arc<Self>, input: &str) -> Result<StatsSample, EngineError> {
        let e = self.lookup(input)?;
        if !e.with(|c| c.state.is_running()) {
            return Err(EngineError::NotRunning { id: e.id.clone() });
        }
        let this = self.clone();
        let id = e.id.clone();
        let hc = e.with(|c| c.host_config.clone());
        tokio::task::spawn_blocking(move || {
            let stats = this
                .cgroup(&id, &hc)?
                .stats()
                .map_err(|source| EngineError::Cgroup {
                    id: id.clone(),
                    source,
                })?;
            Ok(StatsSample {
                read: SystemTime::now(),
                stats,
                system_cpu_ns: system_cpu_ns(),
                online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                mem_total: crate::system::mem_total(),
            })
        })
        .await
        .map_err(|source| EngineError::Task {
            what: "stats",
            source,
        })?
    }

    /// The container's processes as `ps <ps_args>` shows them.
    pub async fn top(
        self: &Arc<Self>,
        input: &str,
        ps_args: &str,
    ) -> Result<TopTable, EngineError> {
        let e = self.lookup(input)?;
        if !e.with(|c| c.state.is_running()) {
            return Err(EngineError::NotRunning { id: e.id.clone() });
        }
        let pids = {
            let this = self.clone();
            let id = e.id.clone();
            let hc = e.with(|c| c.host_config.clone());
            tokio::task::spawn_blocking(move || {
                this.cgroup(&id, &hc)?
                    .pids()
                    .map_err(|source| EngineError::Cgroup { id, source })
            })
            .await
            .map_err(|source| EngineError::Task {
                what: "top",
                source,
            })??
        };
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(io_err("run", "ps"))?;
        if !out.status.success() {
            return Err(EngineError::InvalidConfig {
                field: "ps_args",
                reason: format!("ps failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        filter_ps(&String::from_utf8_lossy(&out.stdout), &pids).map_err(|reason| {
            EngineError::InvalidConfig {
                field: "ps_args",
                reason,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_by_pid() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 42 1 0 10:01 ? 00:00:00 sleep 300\n";
        let t = filter_ps(out, &[42]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(
            t.processes,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 300"
            ]]
        );
        assert!(filter_ps("USER CMD\n", &[1]).is_err());
        assert!(system_cpu_ns() > 0);
    }
}
