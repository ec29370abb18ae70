//! The OCI runtime spec of a container: Docker's defaults
//! ([`wharf_spec::default_spec`]) edited by the container's merged config and
//! host config. Built at start time (the root filesystem is mounted then, so
//! the image's `/etc/passwd` can be read), never persisted by the engine.
//!
//! What each `HostConfig` field becomes:
//! - `Privileged`: every capability, no seccomp, no masked or read-only
//!   paths, every host device; `CapAdd`/`CapDrop`: Docker's rules;
//! - `SecurityOpt`: `no-new-privileges[:true|false]`, `seccomp=unconfined`,
//!   `seccomp=builtin` (the default), `seccomp=<profile JSON>` (Docker's
//!   format, converted by [`wharf_spec::SeccompProfile`]; a bad profile is a
//!   create-time error);
//! - `Memory`, `MemorySwap`, `MemoryReservation`, `OomKillDisable`,
//!   `NanoCpus` (period 100ms), `CpuShares`, `CpuQuota`, `CpuPeriod`,
//!   `CpusetCpus`, `CpusetMems`, `PidsLimit` (≤ 0 is unlimited): cgroup limits;
//! - `Binds` (`host:container[:ro|rw,...]`), `Mounts` (bind, tmpfs), `Tmpfs`,
//!   `ShmSize`: mounts; the generated `/etc/{hostname,hosts,resolv.conf}`
//!   are bind-mounted last;
//! - `NetworkMode`: `host` shares the host's network and UTS namespaces;
//!   anything else gets a private network namespace with loopback only;
//! - `Ulimits` (over the daemon's `--default-ulimit`), `Sysctls`, `Devices`;
//! - the rarer fields (`OomScoreAdj`, blkio, real-time CPU, swappiness,
//!   `DeviceCgroupRules`, `UTSMode`, `CgroupnsMode`) through
//!   [`crate::hostconfig`]; `VolumesFrom` through the record's
//!   `inherited_mounts` (resolved at create), before the container's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory,
    LinuxNamespaceType, LinuxPids, Mount, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
    User,
};

use crate::error::EngineError;
use crate::model::{Container, Ulimit};
use crate::rootfs_files::ResolvedUser;

/// What the spec needs beyond the container record.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    pub container: &'a Container,
    /// Where the root filesystem is mounted.
    pub rootfs: &'a Path,
    pub user: &'a ResolvedUser,
    /// The daemon's `--default-ulimit`s (a container's own win per name).
    pub default_ulimits: &'a [Ulimit],
    /// OCI `linux.cgroupsPath`.
    pub cgroups_path: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

fn mount(dest: &str, typ: &str, source: &str, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options));
    m
}

/// Parses a `--ulimit` name into the OCI type.
pub fn rlimit_type(name: &str) -> Result<PosixRlimitType, EngineError> {
    serde_json::from_value(serde_json::Value::String(format!(
        "RLIMIT_{}",
        name.to_ascii_uppercase()
    )))
    .map_err(|_| invalid("Ulimits", format!("invalid ulimit type: {name}")))
}

/// Parses a `Binds` entry: `host-src:container-dest[:options]`.
pub fn parse_bind(b: &str) -> Result<Mount, EngineError> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(invalid(
                "Binds",
                format!("invalid volume specification: '{b}'"),
            ));
        }
    };
    if !src.starts_with('/') {
        return Err(invalid(
            "Binds",
            format!("named volumes are not supported yet ('{src}'); use an absolute host path"),
        ));
    }
    if !dst.starts_with('/') {
        return Err(invalid(
            "Binds",
            format!("invalid mount config: mount path must be absolute: '{dst}'"),
        ));
    }
    if !Path::new(src).exists() {
        // Docker creates a missing bind source directory.
        std::fs::create_dir_all(src)
            .map_err(|e| invalid("Binds", format!("cannot create bind source {src}: {e}")))?;
    }
    let mut options = vec!["rbind".to_owned()];
    let mut ro = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            "z" | "Z" | "nocopy" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                options.push(o.to_owned())
            }
            _ => return Err(invalid("Binds", format!("invalid mode: {o}"))),
        }
    }
    options.push(if ro { "ro" } else { "rw" }.to_owned());
    Ok(mount(dst, "bind", src, options))
}

fn tmpfs_mount(dest: &str, opts: &str) -> Mount {
    let mut options = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(pos) = options.iter().position(|x| x == o.trim_start_matches("no")) {
            options.remove(pos);
        }
        if matches!(o, "exec" | "dev" | "suid") {
            options.retain(|x| x != &format!("no{o}"));
            continue;
        }
        options.push(o.to_owned());
    }
    mount(dest, "tmpfs", "tmpfs", options)
}

fn host_device(path: &str) -> Result<(LinuxDeviceType, i64, i64, u32), EngineError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).map_err(|e| {
        invalid(
            "Devices",
            format!(
                "error gathering device information while adding custom device \"{path}\": {e}"
            ),
        )
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(invalid("Devices", format!("{path} is not a device node")));
    };
    let rdev = md.rdev();
    let major = i64::from(rustix::fs::major(rdev));
    let minor = i64::from(rustix::fs::minor(rdev));
    Ok((typ, major, minor, md.mode() & 0o7777))
}

/// The `seccomp=` security option.
enum Seccomp<'a> {
    /// Docker's default profile (no option, `seccomp=builtin`).
    Builtin,
    /// `seccomp=unconfined`.
    Unconfined,
    /// The JSON of a profile in Docker's format (the CLI reads the file).
    Profile(&'a str),
}

/// Converts a `seccomp=<json>` profile for a container holding `caps`.
fn custom_seccomp(
    json: &str,
    caps: &[Capability],
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, EngineError> {
    use oci_spec::runtime::LinuxSeccompAction;
    use wharf_spec::seccomp_profile::ProfileTarget;
    let bad = |reason: String| invalid("SecurityOpt", reason);
    let section = wharf_spec::SeccompProfile::from_json(json)
        .and_then(|p| p.to_oci(&ProfileTarget::host(caps)))
        .map_err(|e| match e {
            // Docker's wording for JSON it cannot decode.
            wharf_spec::SeccompProfileError::Decode(source) => {
                bad(format!("Decoding seccomp profile failed: {source}"))
            }
            other => bad(format!("invalid seccomp profile: {other}")),
        })?;
    if let Some(s) = &section {
        // The runtime has no seccomp agent support: refuse now, not at start.
        let notify = s.listener_path().is_some()
            || s.default_action() == LinuxSeccompAction::ScmpActNotify
            || s.syscalls()
                .iter()
                .flatten()
                .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
        if notify {
            return Err(bad(
                "seccomp profiles with SCMP_ACT_NOTIFY or a listenerPath are not supported (no seccomp agent)"
                    .into(),
            ));
        }
    }
    Ok(section)
}

/// Builds the spec.
pub fn build(i: &SpecInputs<'_>) -> Result<Spec, EngineError> {
    let c = i.container;
    let hc = &c.host_config;
    let cfg = &c.config;
    let mut spec = wharf_spec::default_spec();

    // 1. Root and hostname.
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(i.rootfs.to_owned());
    root.set_readonly(Some(hc.readonly_rootfs));
    spec.set_root(Some(root));
    let host_net = hc.network_mode == "host";
    let host_uts = host_net || hc.uts_mode == "host";
    spec.set_hostname(if host_uts {
        None
    } else {
        Some(cfg.hostname.clone())
    });
    if !cfg.domainname.is_empty() && !host_uts {
        spec.set_domainname(Some(cfg.domainname.clone()));
    }

    // 2. Process: args, env, cwd, terminal, user, capabilities, rlimits.
    let mut process = spec.process().clone().unwrap_or_default();
    let mut args = vec![c.path.clone()];
    args.extend(c.args.iter().cloned());
    process.set_args(Some(args));
    let mut env = cfg.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, wharf_spec::DEFAULT_PATH_ENV.to_owned());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", cfg.hostname));
    }
    if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", i.user.home.as_deref().unwrap_or("/")));
    }
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(if cfg.working_dir.is_empty() {
        "/"
    } else {
        &cfg.working_dir
    }));
    process.set_terminal(Some(cfg.tty));
    let mut user = User::default();
    user.set_uid(i.user.uid);
    user.set_gid(i.user.gid);
    if !i.user.additional_gids.is_empty() {
        user.set_additional_gids(Some(i.user.additional_gids.clone()));
    }
    process.set_user(user);

    let empty = Vec::new();
    let caps: Vec<Capability> = if hc.privileged {
        // Every capability the daemon itself may hold: one missing from its
        // bounding set (e.g. CAP_SYS_RESOURCE dropped by the host) cannot be
        // granted, and asking for it would fail the start with EPERM.
        let bounding = daemon_bounding_set();
        wharf_spec::ALL_CAPABILITIES
            .iter()
            .filter(|c| bounding & (1u64 << wharf_spec::capability_number(c.capability)) != 0)
            .map(|c| c.capability)
            .collect()
    } else {
        wharf_spec::apply_cap_changes(
            wharf_spec::DEFAULT_CAPABILITIES,
            hc.cap_add.as_ref().unwrap_or(&empty),
            hc.cap_drop.as_ref().unwrap_or(&empty),
        )
        .map_err(|e| invalid("CapAdd/CapDrop", e.to_string()))?
    };
    if let Some(mut pc) = process.capabilities().clone() {
        let set: oci_spec::runtime::Capabilities = caps.iter().copied().collect();
        pc.set_bounding(Some(set.clone()));
        pc.set_effective(Some(set.clone()));
        pc.set_permitted(Some(set));
        process.set_capabilities(Some(pc));
    }

    let mut no_new_privs = false;
    let mut seccomp = Seccomp::Builtin;
    for opt in hc.security_opt.iter().flatten() {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "no-new-privileges" => {
                no_new_privs = match v {
                    "" | "true" => true,
                    "false" => false,
                    _ => {
                        return Err(invalid(
                            "SecurityOpt",
                            format!("invalid --security-opt 2: {opt:?}"),
                        ));
                    }
                }
            }
            "seccomp" => {
                seccomp = match v {
                    "unconfined" => Seccomp::Unconfined,
                    "" | "builtin" => Seccomp::Builtin,
                    json => Seccomp::Profile(json),
                }
            }
            "label" | "apparmor" => {
                tracing::warn!(option = %opt, "no LSM on this host: security option ignored")
            }
            _ => {
                return Err(invalid(
                    "SecurityOpt",
                    format!("invalid --security-opt 1: {opt:?}"),
                ));
            }
        }
    }
    process.set_no_new_privileges(Some(no_new_privs));

    let mut rlimits: BTreeMap<String, PosixRlimit> = BTreeMap::new();
    for r in process.rlimits().clone().unwrap_or_default() {
        rlimits.insert(format!("{:?}", r.typ()), r);
    }
    for u in i.default_ulimits.iter().chain(hc.ulimits.iter().flatten()) {
        let typ = rlimit_type(&u.name)?;
        if u.soft > u.hard || u.soft < 0 && u.soft != -1 {
            return Err(invalid(
                "Ulimits",
                format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                ),
            ));
        }
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(u64::try_from(u.soft).unwrap_or(u64::MAX))
            .hard(u64::try_from(u.hard).unwrap_or(u64::MAX))
            .build()
            .map_err(|e| invalid("Ulimits", e.to_string()))?;
        rlimits.insert(format!("{typ:?}"), r);
    }
    process.set_rlimits(Some(rlimits.into_values().collect()));
    crate::hostconfig::apply_process(hc, &mut process);
    spec.set_process(Some(process));

    // 3. Linux: namespaces, resources, devices, paths, seccomp, sysctls.
    let mut linux = spec.linux().clone().unwrap_or_default();
    if host_net {
        let ns = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| {
                !matches!(
                    n.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::Uts
                )
            })
            .collect();
        linux.set_namespaces(Some(ns));
    }
    crate::hostconfig::apply_namespaces(hc, &mut linux);
    linux.set_cgroups_path(Some(PathBuf::from(&i.cgroups_path)));
    if hc.privileged {
        linux.set_masked_paths(Some(vec![]));
        linux.set_readonly_paths(Some(vec![]));
    }
    // As with Docker, --privileged wins over any seccomp option (a profile
    // is then not even read).
    linux.set_seccomp(match seccomp {
        _ if hc.privileged => None,
        Seccomp::Unconfined => None,
        Seccomp::Builtin => Some(wharf_spec::default_seccomp(&caps)),
        Seccomp::Profile(json) => custom_seccomp(json, &caps)?,
    });
    if let Some(s) = &hc.sysctls
        && !s.is_empty()
    {
        linux.set_sysctl(Some(
            s.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ));
    }

    let mut res = linux.resources().clone().unwrap_or_default();
    let mut mem = LinuxMemory::default();
    let mut mem_set = false;
    if hc.memory < 0 || hc.memory_reservation < 0 || hc.memory_swap < -1 {
        return Err(invalid("Memory", "memory values must not be negative"));
    }
    if hc.memory > 0 {
        if hc.memory < 6 * 1024 * 1024 {
            return Err(invalid("Memory", "Minimum memory limit allowed is 6MB"));
        }
        mem.set_limit(Some(hc.memory));
        mem_set = true;
    }
    if hc.memory_swap != 0 {
        if hc.memory > 0 && hc.memory_swap > 0 && hc.memory_swap < hc.memory {
            return Err(invalid(
                "MemorySwap",
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        mem.set_swap(Some(hc.memory_swap));
        mem_set = true;
    }
    if hc.memory_reservation > 0 {
        mem.set_reservation(Some(hc.memory_reservation));
        mem_set = true;
    }
    if hc.oom_kill_disable == Some(true) {
        mem.set_disable_oom_killer(Some(true));
        mem_set = true;
    }
    if mem_set {
        res.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    let mut cpu_set = false;
    if hc.nano_cpus != 0 && (hc.cpu_quota != 0 || hc.cpu_period != 0) {
        return Err(invalid(
            "NanoCpus",
            "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
        ));
    }
    if hc.nano_cpus < 0 || hc.cpu_shares < 0 || hc.cpu_period < 0 {
        return Err(invalid("NanoCpus", "CPU values must not be negative"));
    }
    if hc.nano_cpus > 0 {
        let ncpu =
            i64::try_from(std::thread::available_parallelism().map_or(1, |n| n.get())).unwrap_or(1);
        if hc.nano_cpus > ncpu * 1_000_000_000 {
            return Err(invalid(
                "NanoCpus",
                format!(
                    "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
                ),
            ));
        }
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(hc.nano_cpus * 100_000 / 1_000_000_000));
        cpu_set = true;
    }
    if hc.cpu_shares > 0 {
        cpu.set_shares(Some(u64::try_from(hc.cpu_shares).unwrap_or(1024)));
        cpu_set = true;
    }
    if hc.cpu_period > 0 {
        cpu.set_period(Some(u64::try_from(hc.cpu_period).unwrap_or(100_000)));
        cpu_set = true;
    }
    if hc.cpu_quota != 0 {
        cpu.set_quota(Some(hc.cpu_quota));
        cpu_set = true;
    }
    if !hc.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(hc.cpuset_cpus.clone()));
        cpu_set = true;
    }
    if !hc.cpuset_mems.is_empty() {
        cpu.set_mems(Some(hc.cpuset_mems.clone()));
        cpu_set = true;
    }
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    if let Some(p) = hc.pids_limit
        && p > 0
    {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        res.set_pids(Some(pids));
    }

    let mut devices: Vec<LinuxDevice> = Vec::new();
    let mut rules: Vec<LinuxDeviceCgroup> = res.devices().clone().unwrap_or_default();
    if hc.privileged {
        let mut allow = LinuxDeviceCgroup::default();
        allow.set_allow(true);
        allow.set_access(Some("rwm".to_owned()));
        rules = vec![allow];
    }
    for d in hc.devices.iter().flatten() {
        let (typ, major, minor, mode) = host_device(&d.path_on_host)?;
        let inside = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        let mut dev = LinuxDevice::default();
        dev.set_path(PathBuf::from(inside));
        dev.set_typ(typ);
        dev.set_major(major);
        dev.set_minor(minor);
        dev.set_file_mode(Some(mode));
        dev.set_uid(Some(0));
        dev.set_gid(Some(0));
        let mut rule = LinuxDeviceCgroup::from(&dev);
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            &d.cgroup_permissions
        };
        if !perms.chars().all(|ch| matches!(ch, 'r' | 'w' | 'm')) {
            return Err(invalid("Devices", format!("invalid device mode: {perms}")));
        }
        rule.set_access(Some(perms.to_owned()));
        rules.push(rule);
        devices.push(dev);
    }
    res.set_devices(Some(rules));
    crate::hostconfig::apply_resources(hc, &mut res)?;
    if !devices.is_empty() {
        linux.set_devices(Some(devices));
    }
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));

    // 4. Mounts: defaults (with ShmSize), user mounts, then the /etc files.
    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    if hc.shm_size < 0 {
        return Err(invalid("ShmSize", "SHM size can not be less than 0"));
    }
    for m in &mut mounts {
        if m.destination() == Path::new("/dev/shm") && hc.shm_size > 0 {
            let mut opts: Vec<String> = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.starts_with("size="))
                .collect();
            opts.push(format!("size={}", hc.shm_size));
            m.set_options(Some(opts));
        }
        if m.destination() == Path::new("/sys") && hc.privileged {
            let opts = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| o != "ro")
                .collect();
            m.set_options(Some(opts));
        }
    }
    let mut user_mounts: Vec<Mount> = Vec::new();
    for b in hc.binds.iter().flatten() {
        user_mounts.push(parse_bind(b)?);
    }
    for m in hc.mounts.iter().flatten() {
        if !m.target.starts_with('/') {
            return Err(invalid(
                "Mounts",
                format!(
                    "invalid mount config: mount path must be absolute: '{}'",
                    m.target
                ),
            ));
        }
        match m.typ.as_str() {
            "bind" => {
                if !Path::new(&m.source).exists() {
                    return Err(invalid(
                        "Mounts",
                        format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        ),
                    ));
                }
                let opts = vec![
                    "rbind".to_owned(),
                    if m.read_only { "ro" } else { "rw" }.to_owned(),
                ];
                user_mounts.push(mount(&m.target, "bind", &m.source, opts));
            }
            "tmpfs" => {
                let mut o = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    if t.size_bytes > 0 {
                        o.push(format!("size={}", t.size_bytes));
                    }
                    if t.mode != 0 {
                        o.push(format!("mode={:o}", t.mode));
                    }
                }
                if m.read_only {
                    o.push("ro".to_owned());
                }
                user_mounts.push(tmpfs_mount(&m.target, &o.join(",")));
            }
            other => {
                return Err(invalid(
                    "Mounts",
                    format!("mount type {other:?} is not supported yet (bind and tmpfs are)"),
                ));
            }
        }
    }
    for (dest, opts) in hc.tmpfs.iter().flatten() {
        user_mounts.push(tmpfs_mount(dest, opts));
    }
    let mut seen = std::collections::HashSet::new();
    for m in &user_mounts {
        if !seen.insert(m.destination().clone()) {
            return Err(invalid(
                "Mounts",
                format!("Duplicate mount point: {}", m.destination().display()),
            ));
        }
    }
    // Mounts from `VolumesFrom` come first; the container's own mounts on
    // the same destination win (later sources win among themselves).
    let mut inherited: Vec<Mount> = Vec::new();
    for m in &c.inherited_mounts {
        if seen.contains(Path::new(&m.destination)) {
            continue;
        }
        inherited.retain(|x| x.destination() != Path::new(&m.destination));
        inherited.push(mount(&m.destination, &m.typ, &m.source, m.options.clone()));
    }
    for m in &inherited {
        seen.insert(m.destination().clone());
    }
    inherited.extend(user_mounts);
    let user_mounts = inherited;
    // A user mount on a default destination (e.g. /dev/shm) replaces it.
    mounts.retain(|m| !seen.contains(m.destination()));
    mounts.extend(user_mounts);
    let etc = [
        ("/etc/resolv.conf", &c.resolv_conf_path),
        ("/etc/hostname", &c.hostname_path),
        ("/etc/hosts", &c.hosts_path),
    ];
    for (dest, src) in etc {
        if !seen.contains(Path::new(dest)) && !src.is_empty() {
            let ro = if hc.readonly_rootfs { "ro" } else { "rw" };
            mounts.push(mount(
                dest,
                "bind",
                src,
                vec!["rbind".into(), "rprivate".into(), ro.into()],
            ));
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(spec)
}

/// The daemon's capability bounding set (`CapBnd` of /proc/self/status);
/// every capability when it cannot be read.
fn daemon_bounding_set() -> u64 {
    static SET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_cap_bnd(&s))
            .unwrap_or(u64::MAX)
    })
}

fn parse_cap_bnd(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn container() -> Container {
        Container {
            version: 1,
            id: "a".repeat(64),
            name: "/t".into(),
            created: String::new(),
            path: "sh".into(),
            args: vec!["-c".into(), "true".into()],
            config: ContainerConfig {
                hostname: "aaaaaaaaaaaa".into(),
                ..Default::default()
            },
            host_config: HostConfig::default(),
            image: String::new(),
            state: State::default(),
            restart_count: 0,
            driver: "overlay".into(),
            snapshot_key: String::new(),
            platform: "linux".into(),
            log_path: String::new(),
            hostname_path: "/x/hostname".into(),
            hosts_path: "/x/hosts".into(),
            resolv_conf_path: "/x/resolv.conf".into(),
            manually_stopped: false,
            inherited_mounts: Vec::new(),
        }
    }

    fn build_with(c: &Container) -> Result<Spec, EngineError> {
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: Some("/root".into()),
        };
        build(&SpecInputs {
            container: c,
            rootfs: Path::new("/r"),
            user: &user,
            default_ulimits: &[Ulimit {
                name: "nproc".into(),
                soft: 100,
                hard: 200,
            }],
            cgroups_path: "/wharf/x".into(),
        })
    }

    #[test]
    fn defaults_and_limits() {
        let mut c = container();
        c.host_config.memory = 64 << 20;
        c.host_config.nano_cpus = 500_000_000;
        c.host_config.pids_limit = Some(10);
        c.host_config.cap_add = Some(vec!["NET_ADMIN".into()]);
        c.host_config.binds = Some(vec!["/tmp:/data:ro".into()]);
        c.host_config.tmpfs = Some([("/scratch".to_owned(), "size=1m".to_owned())].into());
        c.host_config.ulimits = Some(vec![Ulimit {
            name: "nofile".into(),
            soft: 50,
            hard: 60,
        }]);
        c.host_config.security_opt = Some(vec!["no-new-privileges".into()]);
        let s = build_with(&c).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["process"]["args"],
            serde_json::json!(["sh", "-c", "true"])
        );
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert!(
            v["process"]["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "HOME=/root")
        );
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 10);
        assert_eq!(v["linux"]["cgroupsPath"], "/wharf/x");
        assert!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CAP_NET_ADMIN")
        );
        let rl = v["process"]["rlimits"].as_array().unwrap();
        assert!(
            rl.iter()
                .any(|r| r["type"] == "RLIMIT_NOFILE" && r["hard"] == 60)
        );
        assert!(
            rl.iter()
                .any(|r| r["type"] == "RLIMIT_NPROC" && r["soft"] == 100)
        );
        let mounts = v["mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["destination"] == "/data"
            && m["options"].as_array().unwrap().iter().any(|o| o == "ro")));
        assert!(
            mounts
                .iter()
                .any(|m| m["destination"] == "/scratch" && m["type"] == "tmpfs")
        );
        assert_eq!(mounts.last().unwrap()["destination"], "/etc/hosts");
        assert!(v["linux"]["seccomp"].is_object());
        assert_eq!(v["hostname"], "aaaaaaaaaaaa");
    }

    #[test]
    fn cap_bnd_is_read_from_proc_status() {
        let status = "Name:\tx\nCapPrm:\t0\nCapBnd:\t000001fffeffffff\nNoNewPrivs:\t0\n";
        let set = super::parse_cap_bnd(status).unwrap();
        assert_eq!(set & (1 << 24), 0, "CAP_SYS_RESOURCE is out");
        assert_ne!(set & (1 << 21), 0);
        assert_eq!(super::parse_cap_bnd("Name:\tx\n"), None);
    }

    #[test]
    fn privileged_host_network_and_errors() {
        let mut c = container();
        c.host_config.privileged = true;
        c.host_config.network_mode = "host".into();
        let v = serde_json::to_value(build_with(&c).unwrap()).unwrap();
        assert!(v["linux"]["seccomp"].is_null());
        assert_eq!(v["linux"]["maskedPaths"], serde_json::json!([]));
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(!ns.contains(&"network".to_owned()) && !ns.contains(&"uts".to_owned()));
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            (0..41)
                .filter(|b| super::daemon_bounding_set() & (1u64 << b) != 0)
                .count()
        );

        let mut c = container();
        c.host_config.memory = 1024;
        assert!(matches!(
            build_with(&c),
            Err(EngineError::InvalidConfig {
                field: "Memory",
                ..
            })
        ));
        let mut c = container();
        c.host_config.cap_add = Some(vec!["BOGUS".into()]);
        assert!(build_with(&c).is_err());
        let mut c = container();
        c.host_config.ulimits = Some(vec![Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 5,
        }]);
        assert!(build_with(&c).is_err());
        let mut c = container();
        c.host_config.binds = Some(vec!["vol:/x".into()]);
        assert!(build_with(&c).is_err());
        let mut c = container();
        c.host_config.security_opt = Some(vec!["bogus=1".into()]);
        assert!(build_with(&c).is_err());
    }

    fn seccomp_of(opts: &[&str], privileged: bool) -> Result<serde_json::Value, EngineError> {
        let mut c = container();
        c.host_config.privileged = privileged;
        c.host_config.security_opt = Some(opts.iter().map(|o| (*o).to_owned()).collect());
        let v = serde_json::to_value(build_with(&c)?).unwrap();
        Ok(v["linux"]["seccomp"].clone())
    }

    #[test]
    fn seccomp_options() {
        let deny_mkdir = r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#;
        let s = seccomp_of(&[deny_mkdir], false).unwrap();
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(
            s["syscalls"],
            serde_json::json!([{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}])
        );
        // builtin is the default profile for the container's capabilities.
        let builtin = seccomp_of(&["seccomp=builtin"], false).unwrap();
        assert_eq!(builtin, seccomp_of(&[], false).unwrap());
        assert_eq!(
            builtin,
            serde_json::to_value(wharf_spec::default_seccomp(
                wharf_spec::DEFAULT_CAPABILITIES
            ))
            .unwrap()
        );
        assert!(
            seccomp_of(&["seccomp=unconfined"], false)
                .unwrap()
                .is_null()
        );
        // --privileged disables seccomp whatever the option says.
        assert!(seccomp_of(&[deny_mkdir], true).unwrap().is_null());
        assert!(seccomp_of(&["seccomp={broken"], true).unwrap().is_null());
        // A profile with neither defaultAction nor rules disables seccomp.
        assert!(seccomp_of(&["seccomp={}"], false).unwrap().is_null());
    }

    #[test]
    fn bad_seccomp_profiles_are_invalid_config() {
        let msg = |opt: &str| match seccomp_of(&[opt], false) {
            Err(
                e @ EngineError::InvalidConfig {
                    field: "SecurityOpt",
                    ..
                },
            ) => e.to_string(),
            other => panic!("{opt}: {other:?}"),
        };
        assert!(msg("seccomp={broken").contains("Decoding seccomp profile failed"));
        assert!(
            msg(r#"seccomp={"defaultAction":"SCMP_ACT_SOMETIMES"}"#)
                .contains("unknown seccomp action \"SCMP_ACT_SOMETIMES\"")
        );
        assert!(msg(r#"seccomp={"defaultAction":"SCMP_ACT_NOTIFY"}"#).contains("SCMP_ACT_NOTIFY"));
        assert!(
            msg(r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}"#)
                .contains("listenerPath")
        );
    }
}
