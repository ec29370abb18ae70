//! `run`/`create` flags into the `POST /containers/create` body (Config
//! with HostConfig and NetworkingConfig), applying docker's rules for
//! attach flags, entrypoint reset, env files, health checks and limits.

use serde_json::{Map, Value, json};

use crate::cli::ContainerOpts;
use crate::format::human::parse_go_duration;
use crate::opts::{self, OptsError, env, mounts, ports};

fn read_file(path: &str) -> Result<String, OptsError> {
    std::fs::read_to_string(path).map_err(|e| OptsError::Message(format!("open {path}: {e}")))
}

fn lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The environment from `--env-file` then `-e`, in docker's order.
pub fn environment(env_files: &[String], envs: &[String]) -> Result<Vec<String>, OptsError> {
    let mut out = Vec::new();
    for f in env_files {
        out.extend(env::parse_env_file(f, &read_file(f)?, lookup)?);
    }
    for e in envs {
        out.push(env::env_value(e, lookup)?);
    }
    Ok(out)
}

fn duration_ns(flag: &'static str, v: &Option<String>) -> Result<Option<i64>, OptsError> {
    v.as_deref()
        .map(|s| parse_go_duration(s).map_err(|e| opts::invalid(flag, s, e.to_string())))
        .transpose()
}

/// Builds the create body; `detach` is run's `-d` (create passes false).
pub fn build(o: &ContainerOpts, detach: bool) -> Result<Value, OptsError> {
    // Attach flags as docker sets them.
    let (mut a_in, mut a_out, mut a_err) = (false, false, false);
    if !detach {
        if o.attach.is_empty() {
            a_out = true;
            a_err = true;
            a_in = o.interactive;
        } else {
            for s in &o.attach {
                match s.to_lowercase().as_str() {
                    "stdin" => a_in = true,
                    "stdout" => a_out = true,
                    "stderr" => a_err = true,
                    _ => {
                        return Err(OptsError::Message(format!(
                            "invalid argument \"{s}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                        )));
                    }
                }
            }
        }
    } else if !o.attach.is_empty() {
        return Err(OptsError::Message(
            "conflicting options: cannot specify both --attach and --detach".into(),
        ));
    }
    let env = environment(&o.env_file, &o.env)?;
    let mut labels = Map::new();
    for f in &o.label_file {
        for l in env::parse_env_file(f, &read_file(f)?, |_| None)? {
            let (k, v) = l.split_once('=').unwrap_or((&l, ""));
            labels.insert(k.to_owned(), Value::String(v.to_owned()));
        }
    }
    labels.extend(opts::kv_map(&o.label));

    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for p in &o.publish {
        ports::publish(p, &mut exposed, &mut bindings)?;
    }
    for e in &o.expose {
        ports::expose(e, &mut exposed)?;
    }
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &o.volume {
        match mounts::volume(v)? {
            mounts::Volume::Bind(b) => binds.push(Value::String(b)),
            mounts::Volume::Anonymous(d) => {
                volumes.insert(d, json!({}));
            }
        }
    }
    let mount_list: Vec<Value> = o
        .mount
        .iter()
        .map(|m| mounts::mount(m))
        .collect::<Result<_, _>>()?;
    let mut tmpfs = Map::new();
    for t in &o.tmpfs {
        let (p, opt) = mounts::tmpfs(t)?;
        tmpfs.insert(p, Value::String(opt));
    }
    let ulimits: Vec<Value> = o
        .ulimit
        .iter()
        .map(|u| opts::ulimit(u))
        .collect::<Result<_, _>>()?;
    let devices: Vec<Value> = o
        .device
        .iter()
        .map(|d| opts::device(d))
        .collect::<Result<_, _>>()?;
    let extra_hosts: Vec<String> = o
        .add_host
        .iter()
        .map(|h| opts::extra_host(h))
        .collect::<Result<_, _>>()?;
    let restart = opts::restart_policy(&o.restart)?;
    if o.rm && restart["Name"] != "no" {
        return Err(OptsError::Message(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    if !matches!(o.pull.as_str(), "always" | "missing" | "never") {
        return Err(OptsError::Message(format!(
            "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
            o.pull
        )));
    }

    let mut hc = Map::new();
    let mut set = |k: &str, v: Value| {
        hc.insert(k.to_owned(), v);
    };
    set(
        "Binds",
        if binds.is_empty() {
            Value::Null
        } else {
            Value::Array(binds)
        },
    );
    set("AutoRemove", Value::Bool(o.rm));
    set("RestartPolicy", restart);
    set("PortBindings", Value::Object(bindings));
    set("PublishAllPorts", Value::Bool(o.publish_all));
    if let Some(n) = &o.network {
        set("NetworkMode", Value::String(n.clone()));
    }
    if !mount_list.is_empty() {
        set("Mounts", Value::Array(mount_list));
    }
    if !tmpfs.is_empty() {
        set("Tmpfs", Value::Object(tmpfs));
    }
    if let Some(m) = &o.memory {
        set("Memory", json!(opts::mem("-m, --memory", m)?));
    }
    if let Some(m) = &o.memory_swap {
        set("MemorySwap", json!(opts::memory_swap(m)?));
    }
    if let Some(m) = &o.memory_reservation {
        set(
            "MemoryReservation",
            json!(opts::mem("--memory-reservation", m)?),
        );
    }
    if let Some(c) = &o.cpus {
        set("NanoCpus", json!(opts::nano_cpus(c)?));
    }
    if let Some(c) = o.cpu_shares {
        set("CpuShares", json!(c));
    }
    if let Some(c) = o.cpu_period {
        set("CpuPeriod", json!(c));
    }
    if let Some(c) = o.cpu_quota {
        set("CpuQuota", json!(c));
    }
    if let Some(c) = &o.cpuset_cpus {
        set("CpusetCpus", json!(c));
    }
    if let Some(c) = &o.cpuset_mems {
        set("CpusetMems", json!(c));
    }
    if let Some(p) = o.pids_limit {
        set("PidsLimit", json!(p));
    }
    if !ulimits.is_empty() {
        set("Ulimits", Value::Array(ulimits));
    }
    if !o.cap_add.is_empty() {
        set("CapAdd", json!(o.cap_add));
    }
    if !o.cap_drop.is_empty() {
        set("CapDrop", json!(o.cap_drop));
    }
    set("Privileged", Value::Bool(o.privileged));
    set("ReadonlyRootfs", Value::Bool(o.read_only));
    if !o.security_opt.is_empty() {
        set("SecurityOpt", json!(o.security_opt));
    }
    if o.init {
        set("Init", Value::Bool(true));
    }
    if o.log_driver.is_some() || !o.log_opt.is_empty() {
        set(
            "LogConfig",
            json!({"Type": o.log_driver.clone().unwrap_or_default(), "Config": opts::kv_strict("--log-opt", &o.log_opt)?}),
        );
    }
    if !extra_hosts.is_empty() {
        set("ExtraHosts", json!(extra_hosts));
    }
    if !o.dns.is_empty() {
        set("Dns", json!(o.dns));
    }
    if !o.dns_search.is_empty() {
        set("DnsSearch", json!(o.dns_search));
    }
    if !o.dns_option.is_empty() {
        set("DnsOptions", json!(o.dns_option));
    }
    if let Some(s) = &o.shm_size {
        set("ShmSize", json!(opts::mem("--shm-size", s)?));
    }
    if !o.sysctl.is_empty() {
        set(
            "Sysctls",
            Value::Object(opts::kv_strict("--sysctl", &o.sysctl)?),
        );
    }
    if !devices.is_empty() {
        set("Devices", Value::Array(devices));
    }
    if !o.group_add.is_empty() {
        set("GroupAdd", json!(o.group_add));
    }
    if o.oom_kill_disable {
        set("OomKillDisable", Value::Bool(true));
    }
    if let Some(p) = &o.pid {
        set("PidMode", json!(p));
    }
    if let Some(p) = &o.ipc {
        set("IpcMode", json!(p));
    }

    passthrough(o, &mut hc)?;

    let mut c = Map::new();
    let mut put = |k: &str, v: Value| {
        c.insert(k.to_owned(), v);
    };
    put("Image", Value::String(o.image.clone()));
    put("Hostname", json!(o.hostname.clone().unwrap_or_default()));
    put(
        "Domainname",
        json!(o.domainname.clone().unwrap_or_default()),
    );
    put("User", json!(o.user.clone().unwrap_or_default()));
    put("AttachStdin", Value::Bool(a_in));
    put("AttachStdout", Value::Bool(a_out));
    put("AttachStderr", Value::Bool(a_err));
    put("Tty", Value::Bool(o.tty));
    put("OpenStdin", Value::Bool(o.interactive));
    put("StdinOnce", Value::Bool(o.interactive && a_in));
    put("Env", json!(env));
    put(
        "Cmd",
        if o.command.is_empty() {
            Value::Null
        } else {
            json!(o.command)
        },
    );
    if let Some(e) = &o.entrypoint {
        put("Entrypoint", json!([e]));
    }
    put("WorkingDir", json!(o.workdir.clone().unwrap_or_default()));
    put("Labels", Value::Object(labels));
    put("ExposedPorts", Value::Object(exposed));
    put(
        "Volumes",
        if volumes.is_empty() {
            Value::Null
        } else {
            Value::Object(volumes)
        },
    );
    if let Some(s) = &o.stop_signal {
        put("StopSignal", json!(s));
    }
    if let Some(t) = o.stop_timeout {
        put("StopTimeout", json!(t));
    }
    if o.no_healthcheck {
        if o.health_cmd.is_some() {
            return Err(OptsError::Message(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        put("Healthcheck", json!({"Test": ["NONE"]}));
    } else if o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_retries.is_some()
        || o.health_start_period.is_some()
    {
        let mut h = Map::new();
        if let Some(cmd) = &o.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
        }
        for (k, flag, v) in [
            ("Interval", "--health-interval", &o.health_interval),
            ("Timeout", "--health-timeout", &o.health_timeout),
            (
                "StartPeriod",
                "--health-start-period",
                &o.health_start_period,
            ),
            (
                "StartInterval",
                "--health-start-interval",
                &o.health_start_interval,
            ),
        ] {
            if let Some(ns) = duration_ns(flag, v)? {
                if ns < 0 {
                    return Err(OptsError::Message(format!("{flag} cannot be negative")));
                }
                h.insert(k.into(), json!(ns));
            }
        }
        if let Some(r) = o.health_retries {
            if r < 0 {
                return Err(OptsError::Message(
                    "--health-retries cannot be negative".into(),
                ));
            }
            h.insert("Retries".into(), json!(r));
        }
        put("Healthcheck", Value::Object(h));
    }
    if let Some(m) = &o.mac_address {
        // API < 1.44 read it here; newer daemons from the endpoint.
        c.insert("MacAddress".into(), json!(m));
    }
    c.insert("HostConfig".into(), Value::Object(hc));
    c.insert("NetworkingConfig".into(), networking(o)?);
    Ok(Value::Object(c))
}

/// The flags docker passes to the daemon as they are (the daemon judges
/// them), each into the HostConfig field of the same name.
fn passthrough(o: &ContainerOpts, hc: &mut Map<String, Value>) -> Result<(), OptsError> {
    let mut set = |k: &str, v: Value| {
        hc.insert(k.to_owned(), v);
    };
    if !o.disable_content_trust {
        return Err(OptsError::Message(
            "image verification (content trust) is not supported: leave --disable-content-trust at true"
                .into(),
        ));
    }
    if !o.annotation.is_empty() {
        set("Annotations", Value::Object(opts::kv_map(&o.annotation)));
    }
    if let Some(w) = o.blkio_weight {
        set("BlkioWeight", json!(w));
    }
    let device_list =
        |items: &[String], field: &str, rate: &dyn Fn(&str) -> Result<i64, OptsError>| {
            items
                .iter()
                .map(|s| {
                    let (path, v) = s.split_once(':').unwrap_or((s, ""));
                    Ok(json!({"Path": path, field: rate(v)?}))
                })
                .collect::<Result<Vec<Value>, OptsError>>()
        };
    let weight = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| OptsError::Message(format!("invalid weight for device: {v}")))
    };
    let bps = |v: &str| opts::mem("--device-read-bps", v);
    let iops = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| OptsError::Message(format!("invalid rate for device: {v}")))
    };
    for (flag, items, field, rate) in [
        (
            "BlkioWeightDevice",
            &o.blkio_weight_device,
            "Weight",
            &weight as &dyn Fn(&str) -> Result<i64, OptsError>,
        ),
        ("BlkioDeviceReadBps", &o.device_read_bps, "Rate", &bps),
        ("BlkioDeviceWriteBps", &o.device_write_bps, "Rate", &bps),
        ("BlkioDeviceReadIOps", &o.device_read_iops, "Rate", &iops),
        ("BlkioDeviceWriteIOps", &o.device_write_iops, "Rate", &iops),
    ] {
        if !items.is_empty() {
            set(flag, Value::Array(device_list(items, field, rate)?));
        }
    }
    if let Some(p) = &o.cgroup_parent {
        set("CgroupParent", json!(p));
    }
    if let Some(m) = &o.cgroupns {
        if !matches!(m.as_str(), "" | "host" | "private") {
            return Err(OptsError::Message("--cgroupns: invalid CGROUP mode".into()));
        }
        set("CgroupnsMode", json!(m));
    }
    for (field, v) in [
        ("CpuCount", o.cpu_count),
        ("CpuPercent", o.cpu_percent),
        ("CpuRealtimePeriod", o.cpu_rt_period),
        ("CpuRealtimeRuntime", o.cpu_rt_runtime),
        ("OomScoreAdj", o.oom_score_adj),
    ] {
        if let Some(v) = v {
            set(field, json!(v));
        }
    }
    if !o.device_cgroup_rule.is_empty() {
        set("DeviceCgroupRules", json!(o.device_cgroup_rule));
    }
    if let Some(b) = &o.io_maxbandwidth {
        set(
            "IOMaximumBandwidth",
            json!(opts::mem("--io-maxbandwidth", b)?),
        );
    }
    if let Some(n) = o.io_maxiops {
        set("IOMaximumIOps", json!(n));
    }
    if let Some(k) = &o.kernel_memory {
        set("KernelMemory", json!(opts::mem("--kernel-memory", k)?));
    }
    if o.memory_swappiness != -1 {
        set("MemorySwappiness", json!(o.memory_swappiness));
    }
    if !o.link.is_empty() {
        set("Links", json!(o.link));
    }
    if !o.storage_opt.is_empty() {
        if o.storage_opt.iter().any(|s| !s.contains('=')) {
            return Err(OptsError::Message("invalid storage option".into()));
        }
        set("StorageOpt", Value::Object(opts::kv_map(&o.storage_opt)));
    }
    for (field, v) in [
        ("Isolation", &o.isolation),
        ("Runtime", &o.runtime),
        ("UsernsMode", &o.userns),
        ("UTSMode", &o.uts),
        ("VolumeDriver", &o.volume_driver),
    ] {
        if let Some(v) = v {
            set(field, json!(v));
        }
    }
    if !o.volumes_from.is_empty() {
        set("VolumesFrom", json!(o.volumes_from));
    }
    Ok(())
}

/// `NetworkingConfig`: the endpoint of `--network` (or the default
/// network) when `--ip`, `--ip6`, `--link-local-ip`, `--network-alias` or
/// `--mac-address` configure it.
fn networking(o: &ContainerOpts) -> Result<Value, OptsError> {
    let mut ep = Map::new();
    let mut ipam = Map::new();
    if let Some(ip) = &o.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &o.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    if !o.link_local_ip.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(o.link_local_ip));
    }
    if !ipam.is_empty() {
        ep.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    let network = o.network.clone().unwrap_or_else(|| "default".into());
    if !o.network_alias.is_empty() {
        if matches!(network.as_str(), "default" | "bridge" | "host" | "none")
            || network.starts_with("container:")
        {
            return Err(OptsError::Message(
                "network-scoped aliases are only supported for user-defined networks".into(),
            ));
        }
        ep.insert("Aliases".into(), json!(o.network_alias));
    }
    if let Some(m) = &o.mac_address {
        ep.insert("MacAddress".into(), json!(m));
    }
    if ep.is_empty() {
        return Ok(json!({"EndpointsConfig": {}}));
    }
    Ok(json!({"EndpointsConfig": {network: ep}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};

    fn body(args: &[&str]) -> Result<Value, OptsError> {
        let cli = Cli::parse_args(["wharf", "run"].iter().chain(args)).unwrap();
        let Some(Cmd::Run(r)) = cli.cmd else { panic!() };
        build(&r.opts, r.detach)
    }

    #[test]
    fn run_body() {
        let b = body(&[
            "-i",
            "--rm",
            "--name",
            "x",
            "-e",
            "A=1",
            "-l",
            "k=v",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "-p",
            "8080:80",
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "--tmpfs",
            "/run:size=1m",
            "--ulimit",
            "nofile=1024:2048",
            "--entrypoint",
            "",
            "-w",
            "/tmp",
            "busybox",
            "echo",
            "hi",
        ])
        .unwrap();
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"], json!({"k": "v"}));
        assert_eq!(
            (
                b["AttachStdin"].clone(),
                b["OpenStdin"].clone(),
                b["StdinOnce"].clone()
            ),
            (json!(true), json!(true), json!(true))
        );
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        let hc = &b["HostConfig"];
        assert_eq!(hc["Memory"], json!(536_870_912));
        assert_eq!(hc["NanoCpus"], json!(1_500_000_000));
        assert_eq!(hc["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(hc["AutoRemove"], json!(true));
        assert_eq!(hc["Tmpfs"], json!({"/run": "size=1m"}));
        assert_eq!(
            hc["Ulimits"],
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
        );
        assert_eq!(
            hc["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
    }

    #[test]
    fn detached_and_health() {
        let b = body(&[
            "-d",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "--restart",
            "on-failure:3",
            "busybox",
        ])
        .unwrap();
        assert_eq!(b["AttachStdout"], json!(false));
        assert_eq!(b["Cmd"], Value::Null);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64})
        );
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert!(body(&["--rm", "--restart", "always", "busybox"]).is_err());
        assert!(body(&["-d", "-a", "stdout", "busybox"]).is_err());
        assert!(
            Cli::parse_args(["wharf", "run", "-m", "lots", "busybox"]).is_err(),
            "a bad size stops the command line"
        );
        assert!(body(&["--pull", "sometimes", "busybox"]).is_err());
    }

    #[test]
    fn rare_flags_reach_their_api_fields() {
        let b = body(&[
            "--annotation",
            "a=b",
            "--blkio-weight",
            "300",
            "--blkio-weight-device",
            "/dev/sda:200",
            "--device-read-bps",
            "/dev/sda:1mb",
            "--device-write-iops",
            "/dev/sda:100",
            "--cgroup-parent",
            "/p",
            "--cgroupns",
            "host",
            "--cpu-rt-runtime",
            "950",
            "--device-cgroup-rule",
            "c 1:3 mr",
            "--kernel-memory",
            "64m",
            "--link",
            "db:d",
            "--memory-swappiness",
            "10",
            "--oom-score-adj",
            "-500",
            "--runtime",
            "crun",
            "--storage-opt",
            "size=1G",
            "--userns",
            "host",
            "--uts",
            "host",
            "--volume-driver",
            "local",
            "--volumes-from",
            "other:ro",
            "--network",
            "net1",
            "--ip",
            "10.1.0.5",
            "--network-alias",
            "web",
            "--mac-address",
            "92:d0:c6:0a:29:33",
            "busybox",
        ])
        .unwrap();
        let hc = &b["HostConfig"];
        assert_eq!(hc["Annotations"], json!({"a": "b"}));
        assert_eq!(hc["BlkioWeight"], json!(300));
        assert_eq!(
            hc["BlkioWeightDevice"],
            json!([{"Path": "/dev/sda", "Weight": 200}])
        );
        assert_eq!(
            hc["BlkioDeviceReadBps"],
            json!([{"Path": "/dev/sda", "Rate": 1_048_576}])
        );
        assert_eq!(
            hc["BlkioDeviceWriteIOps"],
            json!([{"Path": "/dev/sda", "Rate": 100}])
        );
        assert_eq!(hc["CgroupParent"], json!("/p"));
        assert_eq!(hc["CgroupnsMode"], json!("host"));
        assert_eq!(hc["CpuRealtimeRuntime"], json!(950));
        assert_eq!(hc["DeviceCgroupRules"], json!(["c 1:3 mr"]));
        assert_eq!(hc["KernelMemory"], json!(67_108_864));
        assert_eq!(hc["Links"], json!(["db:d"]));
        assert_eq!(hc["MemorySwappiness"], json!(10));
        assert_eq!(hc["OomScoreAdj"], json!(-500));
        assert_eq!(hc["Runtime"], json!("crun"));
        assert_eq!(hc["StorageOpt"], json!({"size": "1G"}));
        assert_eq!(
            (&hc["UsernsMode"], &hc["UTSMode"]),
            (&json!("host"), &json!("host"))
        );
        assert_eq!(hc["VolumeDriver"], json!("local"));
        assert_eq!(hc["VolumesFrom"], json!(["other:ro"]));
        assert_eq!(
            b["NetworkingConfig"],
            json!({"EndpointsConfig": {"net1": {
                "IPAMConfig": {"IPv4Address": "10.1.0.5"},
                "Aliases": ["web"],
                "MacAddress": "92:d0:c6:0a:29:33"
            }}})
        );
        // Defaults send nothing new.
        let b = body(&["busybox"]).unwrap();
        assert!(b["HostConfig"].get("MemorySwappiness").is_none());
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
        // docker's post-parse refusals.
        assert!(body(&["--cgroupns", "bad", "busybox"]).is_err());
        assert!(body(&["--storage-opt", "x", "busybox"]).is_err());
        assert!(body(&["--network-alias", "x", "busybox"]).is_err());
        assert!(body(&["--disable-content-trust=false", "busybox"]).is_err());
    }
}
