//! `docker update`: new resource limits and restart policy for a container,
//! applied live through its shim (`Update`) when it runs, and persisted so
//! the next start uses them too.
//!
//! Fields: `Memory*`, `NanoCpus`, `CpuShares`, `CpuPeriod`, `CpuQuota`,
//! `CpuRealtimePeriod`, `CpuRealtimeRuntime`, `CpusetCpus`, `CpusetMems`,
//! `PidsLimit`, `BlkioWeight`, `RestartPolicy`.
//!
//! As in Docker, a zero or empty field means "leave as is"; `PidsLimit`
//! of 0 or less lifts the limit. The updated host config is validated by
//! building the runtime spec from it (the same checks as at create), and
//! the cgroup part of that spec is what the shim applies.

use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::Containers;
use crate::error::EngineError;
use crate::model::RestartPolicy;
use crate::shim::call;

fn nd<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The body of `POST /containers/{id}/update` (Docker's `UpdateConfig`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRequest {
    #[serde(default, deserialize_with = "nd")]
    pub memory: i64,
    #[serde(default, deserialize_with = "nd")]
    pub memory_swap: i64,
    #[serde(default, deserialize_with = "nd")]
    pub memory_reservation: i64,
    #[serde(default, deserialize_with = "nd")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "nd")]
    pub cpuset_mems: String,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "nd")]
    pub blkio_weight: u16,
    #[serde(default, deserialize_with = "nd")]
    pub cpu_realtime_period: i64,
    #[serde(default, deserialize_with = "nd")]
    pub cpu_realtime_runtime: i64,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
}

fn invalid(reason: impl Into<String>) -> EngineError {
    EngineError::InvalidConfig {
        field: "update",
        reason: reason.into(),
    }
}

impl Containers {
    /// Applies an update; returns Docker's warnings.
    pub async fn update(
        self: &Arc<Self>,
        input: &str,
        req: UpdateRequest,
    ) -> Result<Vec<String>, EngineError> {
        let e = self.lookup(input)?;
        let _op = e.op.lock().await;
        let mut rec = e.snapshot();
        let mut warnings = Vec::new();
        let hc = &mut rec.host_config;

        // 1. Restart policy.
        if let Some(rp) = &req.restart_policy
            && !rp.name.is_empty()
        {
            if hc.auto_remove && rp.name != "no" {
                return Err(invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            hc.restart_policy = rp.clone();
        }

        // 2. Resources (zero: unchanged).
        if req.nano_cpus != 0 && (hc.cpu_quota != 0 || req.cpu_quota != 0) {
            return Err(invalid(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        if req.cpu_quota != 0 && hc.nano_cpus != 0 {
            return Err(invalid(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        if req.memory != 0 {
            if req.memory_swap == 0 && hc.memory_swap > 0 && req.memory > hc.memory_swap {
                return Err(invalid(
                    "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
                ));
            }
            hc.memory = req.memory;
        }
        let set = |dst: &mut i64, v: i64| {
            if v != 0 {
                *dst = v;
            }
        };
        set(&mut hc.memory_swap, req.memory_swap);
        set(&mut hc.memory_reservation, req.memory_reservation);
        set(&mut hc.nano_cpus, req.nano_cpus);
        set(&mut hc.cpu_shares, req.cpu_shares);
        set(&mut hc.cpu_period, req.cpu_period);
        set(&mut hc.cpu_quota, req.cpu_quota);
        set(&mut hc.cpu_realtime_period, req.cpu_realtime_period);
        set(&mut hc.cpu_realtime_runtime, req.cpu_realtime_runtime);
        let support = crate::hostconfig::CgroupSupport::probe();
        crate::hostconfig::validate_realtime(
            hc.cpu_realtime_period,
            hc.cpu_realtime_runtime,
            support,
        )?;
        if !req.cpuset_cpus.is_empty() {
            hc.cpuset_cpus = req.cpuset_cpus.clone();
        }
        if !req.cpuset_mems.is_empty() {
            hc.cpuset_mems = req.cpuset_mems.clone();
        }
        let lift_pids = matches!(req.pids_limit, Some(p) if p <= 0);
        if let Some(p) = req.pids_limit {
            hc.pids_limit = Some(if p <= 0 { 0 } else { p });
        }
        if req.blkio_weight != 0 {
            if !support.blkio_weight {
                warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_owned());
            } else if !(10..=1000).contains(&req.blkio_weight) {
                return Err(EngineError::Refused {
                    reason: "Range of blkio weight is from 10 to 1000".into(),
                });
            } else {
                hc.blkio_weight = req.blkio_weight;
            }
        }

        // 3. Validate by building the spec; its cgroup part is what we apply.
        let spec = crate::spec::build(&crate::spec::SpecInputs {
            container: &rec,
            rootfs: &self.cfg.layout.container_rootfs(&rec.id),
            user: &crate::rootfs_files::ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: None,
            },
            default_ulimits: &self.cfg.default_ulimits,
            cgroups_path: String::new(),
        })?;
        // The cgroup part of the spec is applied as a whole: the block I/O
        // throttles and weights, real-time CPU, cpusets, swappiness are
        // rewritten with the values they already have unless updated.
        let mut res = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        res.set_devices(None);
        if lift_pids {
            let mut pids = oci_spec::runtime::LinuxPids::default();
            pids.set_limit(-1);
            res.set_pids(Some(pids));
        }

        // 4. Live, then durable.
        if let Some(shim) = e.shim().filter(|_| rec.state.is_running()) {
            shim.client()
                .update(res)
                .await
                .map_err(call("update"))
                .map_err(|source| EngineError::Shim {
                    id: rec.id.clone(),
                    source,
                })?;
        }
        let new_hc = rec.host_config.clone();
        e.with(|c| c.host_config = new_hc);
        let rec = self.save(&e)?;
        tracing::info!(container_id = %rec.id, "container updated");
        self.event("update", &rec, &[]);
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_bodies_parse() {
        let r: UpdateRequest = serde_json::from_str(
            r#"{"BlkioWeight":0,"CpuShares":512,"Memory":0,"CpusetCpus":"","PidsLimit":null,"Devices":null,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}"#,
        )
        .unwrap();
        assert_eq!(r.cpu_shares, 512);
        assert_eq!(r.pids_limit, None);
        assert_eq!(r.restart_policy.unwrap().name, "");
        let r: UpdateRequest = serde_json::from_str(r#"{"Memory":null}"#).unwrap();
        assert_eq!(r.memory, 0);
    }
}
