//! Docker's JSON shapes for responses, built from engine values: `/info`,
//! `/version`, container summaries (`ps`), container inspect, exec inspect,
//! and the human-readable `Status` column.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wharf_engine::containers::ExecSnapshot;
use wharf_engine::model::{Container, Status};
use wharf_engine::system::SystemInfo;
use wharf_engine::time;

use crate::version::{MAX_API_VERSION, MIN_API_VERSION};

/// Go's architecture name (`amd64`) for Rust's (`x86_64`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// `GET /version`.
pub fn version(info: &SystemInfo) -> Value {
    let details = json!({
        "ApiVersion": MAX_API_VERSION.to_string(),
        "Arch": go_arch(),
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": "",
        "KernelVersion": info.kernel_version,
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "Os": "linux",
    });
    json!({
        "Platform": {"Name": format!("wharf {}", info.server_version)},
        "Components": [{"Name": "Engine", "Version": info.server_version, "Details": details}],
        "Version": info.server_version,
        "ApiVersion": MAX_API_VERSION.to_string(),
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": info.kernel_version,
        "BuildTime": "",
    })
}

/// `GET /info`.
pub fn info(i: &SystemInfo) -> Value {
    let mirrors = &i.registry.mirrors;
    let mut insecure = vec!["127.0.0.0/8".to_owned()];
    let mut index_configs = serde_json::Map::new();
    index_configs.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}),
    );
    for r in &i.registry.insecure_registries {
        if r.contains('/') {
            insecure.push(r.clone());
        } else {
            index_configs.insert(
                r.clone(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    json!({
        "ID": i.id,
        "Containers": i.containers.total,
        "ContainersRunning": i.containers.running,
        "ContainersPaused": i.containers.paused,
        "ContainersStopped": i.containers.stopped,
        "Images": i.images,
        "Driver": i.driver,
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "1").unwrap_or(false),
        "Debug": i.debug,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "OomKillDisable": i.cgroup_version == "1",
        "NGoroutines": 0,
        "SystemTime": time::rfc3339_nano(SystemTime::now()),
        "LoggingDriver": "json-file",
        "CgroupDriver": i.cgroup_driver,
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": i.kernel_version,
        "OperatingSystem": i.operating_system,
        "OSVersion": i.os_version,
        "OSType": "linux",
        "Architecture": i.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": insecure,
            "IndexConfigs": index_configs,
            "Mirrors": mirrors,
        },
        "NCPU": i.ncpu,
        "MemTotal": i.mem_total,
        "GenericResources": null,
        "DockerRootDir": i.data_root,
        "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
        "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
        "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
        "Name": i.name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": i.server_version,
        "Runtimes": {"wharf": {"path": "wharf-shim"}},
        "DefaultRuntime": "wharf",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", format!("name=cgroupns")],
        "DefaultAddressPools": [],
        "CDISpecDirs": [],
        "Warnings": i.warnings,
    })
}

/// Go-units' `HumanDuration`, as `docker ps` prints it.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    // Hours rounded to the nearest, as Go's int(d.Hours() + 0.5).
    let hours_rounded = (secs + 1800) / 3600;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if secs / 60 == 1 {
        "About a minute".into()
    } else if secs / 60 < 60 {
        format!("{} minutes", secs / 60)
    } else if hours_rounded == 1 {
        "About an hour".into()
    } else if hours_rounded < 48 {
        format!("{hours_rounded} hours")
    } else if hours_rounded < 24 * 7 * 2 {
        format!("{} days", hours_rounded / 24)
    } else if hours_rounded < 24 * 30 * 2 {
        format!("{} weeks", hours_rounded / 24 / 7)
    } else if hours_rounded < 24 * 365 * 2 {
        format!("{} months", hours_rounded / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    }
}

fn since(ts: &str) -> Duration {
    time::parse_time(ts)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// The `Status` column of `docker ps`.
pub fn status_text(c: &Container) -> String {
    let s = &c.state;
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let health = match s.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)",
                Some("healthy") => " (healthy)",
                Some("unhealthy") => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", human_duration(since(&s.started_at)))
        }
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&s.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Exited => {
            if s.finished_at == time::ZERO_TIME {
                format!("Exited ({})", s.exit_code)
            } else {
                format!(
                    "Exited ({}) {} ago",
                    s.exit_code,
                    human_duration(since(&s.finished_at))
                )
            }
        }
    }
}

fn unix_secs(ts: &str) -> i64 {
    time::parse_time(ts)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn command(c: &Container) -> String {
    let mut parts = vec![c.path.clone()];
    parts.extend(c.args.iter().cloned());
    parts.join(" ")
}

fn network_settings(c: &Container) -> Value {
    let mode = if c.host_config.network_mode == "bridge" {
        "none"
    } else {
        c.host_config.network_mode.as_str()
    };
    json!({
        "Networks": {
            mode: {
                "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null
            }
        }
    })
}

fn mounts(c: &Container) -> Value {
    let mut v = Vec::new();
    // Taken with --volumes-from (as dockerd copies them: no Mode, RW only
    // when rw in both containers), unless a mount of this container's own
    // has the same destination.
    let hc = &c.host_config;
    let own: Vec<&str> = hc
        .binds
        .iter()
        .flatten()
        .filter_map(|b| b.split(':').nth(1))
        .chain(hc.mounts.iter().flatten().map(|m| m.target.as_str()))
        .chain(hc.tmpfs.iter().flatten().map(|(k, _)| k.as_str()))
        .collect();
    for m in &c.inherited_mounts {
        if own.contains(&m.destination.as_str()) {
            continue;
        }
        let bind = m.typ == "bind";
        v.push(json!({
            "Type": m.typ,
            "Source": if bind { m.source.as_str() } else { "" },
            "Destination": m.destination,
            "Mode": "",
            "RW": !m.options.iter().any(|o| o == "ro"),
            "Propagation": if bind { "rprivate" } else { "" },
        }));
    }
    for b in c.host_config.binds.iter().flatten() {
        let p: Vec<&str> = b.split(':').collect();
        if p.len() >= 2 {
            let rw = !p.get(2).is_some_and(|o| o.split(',').any(|x| x == "ro"));
            v.push(json!({"Type": "bind", "Source": p[0], "Destination": p[1], "Mode": p.get(2).copied().unwrap_or(""), "RW": rw, "Propagation": "rprivate"}));
        }
    }
    for m in c.host_config.mounts.iter().flatten() {
        v.push(json!({"Type": m.typ, "Source": m.source, "Destination": m.target, "Mode": "", "RW": !m.read_only, "Propagation": if m.typ == "bind" { "rprivate" } else { "" }}));
    }
    for dest in c.host_config.tmpfs.iter().flatten().map(|(k, _)| k) {
        v.push(json!({"Type": "tmpfs", "Source": "", "Destination": dest, "Mode": "", "RW": true, "Propagation": ""}));
    }
    Value::Array(v)
}

/// One row of `GET /containers/json`.
pub fn summary(c: &Container) -> Value {
    json!({
        "Id": c.id,
        "Names": [c.name],
        "Image": c.config.image,
        "ImageID": c.image,
        "Command": command(c),
        "Created": unix_secs(&c.created),
        "Ports": [],
        "Labels": c.config.labels,
        "State": c.state.status.as_str(),
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode},
        "NetworkSettings": network_settings(c),
        "Mounts": mounts(c),
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container, exec_ids: &[String]) -> Value {
    let mut host_config = serde_json::to_value(&c.host_config).unwrap_or(Value::Null);
    if let Some(o) = host_config.as_object_mut() {
        o.entry("PortBindings").or_insert(json!({}));
        o.entry("ContainerIDFile").or_insert(json!(""));
        o.entry("VolumeDriver").or_insert(json!(""));
        o.entry("VolumesFrom").or_insert(Value::Null);
        o.entry("IpcMode").or_insert(json!("private"));
        o.entry("PidMode").or_insert(json!(""));
        o.entry("UTSMode").or_insert(json!(""));
        o.entry("UsernsMode").or_insert(json!(""));
        o.entry("CgroupnsMode").or_insert(json!("private"));
        o.entry("Runtime").or_insert(json!("wharf"));
        o.entry("Isolation").or_insert(json!(""));
        o.entry("ConsoleSize").or_insert(json!([0, 0]));
    }
    let config = serde_json::to_value(&c.config).unwrap_or(Value::Null);
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": c.state,
        "Image": c.image,
        "ResolvConfPath": c.resolv_conf_path,
        "HostnamePath": c.hostname_path,
        "HostsPath": c.hosts_path,
        "LogPath": c.log_path,
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": c.driver,
        "Platform": c.platform,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) },
        "HostConfig": host_config,
        "GraphDriver": {"Data": null, "Name": c.driver},
        "Mounts": mounts(c),
        "Config": config,
        "NetworkSettings": network_settings(c),
    })
}

/// `GET /exec/{id}/json`.
pub fn exec_inspect(x: &ExecSnapshot) -> Value {
    let cmd = x.config.cmd.clone().unwrap_or_default();
    json!({
        "ID": x.id,
        "Running": x.running,
        "ExitCode": x.exit_code,
        "ProcessConfig": {
            "tty": x.config.tty,
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": x.config.privileged,
            "user": x.config.user,
        },
        "OpenStdin": x.config.attach_stdin,
        "OpenStderr": x.config.attach_stderr,
        "OpenStdout": x.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": x.container_id,
        "DetachKeys": x.config.detach_keys,
        "Pid": x.pid,
    })
}

fn cpu_json(s: &wharf_engine::containers::StatsSample) -> Value {
    let cpu = s.stats.cpu.clone().unwrap_or_default();
    json!({
        "cpu_usage": {
            "total_usage": cpu.total_usage_ns,
            "percpu_usage": cpu.percpu_usage_ns,
            "usage_in_kernelmode": cpu.system_ns,
            "usage_in_usermode": cpu.user_ns,
        },
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": cpu.throttling.periods,
            "throttled_periods": cpu.throttling.throttled_periods,
            "throttled_time": cpu.throttling.throttled_time_ns,
        },
    })
}

/// One `GET /containers/{id}/stats` object (cgroup v1 shape), `pre` being
/// the previous sample for CPU percentages.
pub fn stats(
    c: &Container,
    s: &wharf_engine::containers::StatsSample,
    pre: Option<&wharf_engine::containers::StatsSample>,
) -> Value {
    let mem = s.stats.memory.clone().unwrap_or_default();
    let limit = mem.limit.unwrap_or(u64::MAX).min(s.mem_total);
    let blkio = s.stats.blkio.clone().unwrap_or_default();
    let entries = |v: &[wharf_engine::containers::BlkioEntry]| -> Value {
        v.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect()
    };
    let pids = s.stats.pids.clone().unwrap_or_default();
    json!({
        "name": c.name,
        "id": c.id,
        "read": time::rfc3339_nano(s.read),
        "preread": pre.map_or_else(|| time::ZERO_TIME.to_owned(), |p| time::rfc3339_nano(p.read)),
        "pids_stats": {"current": pids.current, "limit": pids.limit},
        "blkio_stats": {
            "io_service_bytes_recursive": entries(&blkio.io_service_bytes_recursive),
            "io_serviced_recursive": entries(&blkio.io_serviced_recursive),
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(s),
        "precpu_stats": pre.map_or_else(|| json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}), cpu_json),
        "memory_stats": {
            "usage": mem.usage,
            "max_usage": mem.max_usage,
            "failcnt": mem.failcnt,
            "limit": limit,
            "stats": mem.stat,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_docker_prints_them() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(45)), "45 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3700)), "About an hour");
        assert_eq!(human_duration(Duration::from_secs(5 * 3600)), "5 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }
}
