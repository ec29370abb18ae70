//! The default OCI spec: Docker's container defaults (capabilities, mounts,
//! namespaces, masked and read-only paths, seccomp) in the shape `runc spec`
//! writes (terminal on, `sh`, read-only `rootfs`).

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxNamespace,
    LinuxNamespaceType, LinuxResources, Mount, PosixRlimitBuilder, PosixRlimitType, Process, Root,
    Spec, User,
};

use crate::{DEFAULT_CAPABILITIES, default_seccomp};

/// The runtime-spec version wharf writes.
pub const OCI_VERSION: &str = "1.2.0";

/// `PATH` given to a container whose image sets none (Docker's value).
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default `RLIMIT_NOFILE` (soft and hard), lowered to the host's hard limit
/// when that is smaller.
pub const DEFAULT_NOFILE: u64 = 1024;

/// Paths Docker hides from containers (bind-mounted over with `/dev/null`
/// or an empty read-only tmpfs), in Docker's order.
pub fn docker_masked_paths() -> Vec<String> {
    [
        "/proc/asound",
        "/proc/acpi",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
    .map(String::from)
    .to_vec()
}

/// Paths Docker remounts read-only inside containers, in Docker's order.
pub fn docker_readonly_paths() -> Vec<String> {
    [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    .map(String::from)
    .to_vec()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
    m
}

/// The standard container mounts (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`,
/// `/dev/mqueue`, `/sys`, `/sys/fs/cgroup`), in mount order.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// This process's `RLIMIT_NOFILE` hard limit, read from
/// `/proc/self/limits` (`None` when unreadable or "unlimited").
fn host_nofile_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_nofile_hard(&limits)
}

fn parse_nofile_hard(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files            1024                 20000                files"
    let mut fields = line["Max open files".len()..].split_whitespace();
    let _soft = fields.next()?;
    fields.next()?.parse().ok()
}

fn cap_set(caps: &[Capability]) -> Capabilities {
    caps.iter().copied().collect()
}

fn default_process() -> Process {
    let nofile = host_nofile_hard_limit().map_or(DEFAULT_NOFILE, |hard| hard.min(DEFAULT_NOFILE));
    // The builder has a default for every field, so `build` cannot fail.
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(nofile)
        .hard(nofile)
        .build()
        .expect("PosixRlimit builder defaults every field");

    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(cap_set(DEFAULT_CAPABILITIES)));
    caps.set_effective(Some(cap_set(DEFAULT_CAPABILITIES)));
    caps.set_permitted(Some(cap_set(DEFAULT_CAPABILITIES)));
    caps.set_inheritable(Some(Capabilities::new()));
    caps.set_ambient(Some(Capabilities::new()));

    let mut user = User::default();
    user.set_uid(0);
    user.set_gid(0);

    let mut process = Process::default();
    process.set_terminal(Some(true));
    process.set_user(user);
    process.set_args(Some(vec!["sh".to_owned()]));
    process.set_env(Some(vec![
        DEFAULT_PATH_ENV.to_owned(),
        "TERM=xterm".to_owned(),
    ]));
    process.set_cwd(PathBuf::from("/"));
    process.set_capabilities(Some(caps));
    process.set_rlimits(Some(vec![rlimit]));
    process.set_no_new_privileges(Some(true));
    process
}

fn namespace(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns
}

fn default_linux() -> Linux {
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_owned()));
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![deny_all]));

    let mut linux = Linux::default();
    linux.set_resources(Some(resources));
    linux.set_namespaces(Some(
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
        ]
        .map(namespace)
        .to_vec(),
    ));
    linux.set_masked_paths(Some(docker_masked_paths()));
    linux.set_readonly_paths(Some(docker_readonly_paths()));
    linux.set_seccomp(Some(default_seccomp(DEFAULT_CAPABILITIES)));
    linux
}

/// The spec `wharf-runtime spec` writes and the engine starts from: Docker's
/// defaults for a root `sh` with a terminal in a read-only `rootfs`.
pub fn default_spec() -> Spec {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(true));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_owned());
    spec.set_process(Some(default_process()));
    spec.set_root(Some(root));
    spec.set_hostname(Some("wharf".to_owned()));
    spec.set_mounts(Some(default_mounts()));
    spec.set_annotations(None);
    spec.set_linux(Some(default_linux()));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_and_parses_back() {
        let spec = default_spec();
        let json = serde_json::to_string_pretty(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["ociVersion"], "1.2.0");
        assert_eq!(value["process"]["terminal"], true);
        assert_eq!(value["process"]["args"][0], "sh");
        assert_eq!(value["process"]["noNewPrivileges"], true);
        assert_eq!(value["root"]["path"], "rootfs");
        assert_eq!(value["root"]["readonly"], true);
        assert_eq!(value["hostname"], "wharf");
        assert_eq!(value["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(value["linux"]["seccomp"]["defaultErrnoRet"], 1);
        assert_eq!(value["linux"]["namespaces"].as_array().unwrap().len(), 6);
        assert_eq!(
            value["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(
            value["process"]["capabilities"]["inheritable"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn mounts_match_docker() {
        let mounts = default_mounts();
        let dests: Vec<_> = mounts
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        let shm = &mounts[3];
        assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
        assert!(
            shm.options()
                .as_ref()
                .unwrap()
                .iter()
                .any(|o| o == "mode=1777")
        );
    }

    #[test]
    fn nofile_never_exceeds_host_hard_limit() {
        let sample = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(parse_nofile_hard(sample), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile_hard(unlimited), None);

        let spec = default_spec();
        let rl = &spec.process().as_ref().unwrap().rlimits().as_ref().unwrap()[0];
        assert_eq!(rl.typ(), PosixRlimitType::RlimitNofile);
        assert!(rl.hard() <= DEFAULT_NOFILE && rl.soft() == rl.hard());
        if let Some(host) = host_nofile_hard_limit() {
            assert!(rl.hard() <= host);
        }
    }

    #[test]
    fn masked_and_readonly_paths() {
        let masked = docker_masked_paths();
        assert!(masked.contains(&"/proc/kcore".to_owned()));
        assert!(masked.contains(&"/sys/firmware".to_owned()));
        assert_eq!(docker_readonly_paths().len(), 5);
    }
}
