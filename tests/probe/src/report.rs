//! The default report: one JSON object describing the process's view of its
//! container (identity, namespaces, credentials, capabilities, limits,
//! mounts, cgroups, environment, descriptors, terminal).
//!
//! Conventions the tests rely on:
//! - a value the probe could not read is `null` (never a made-up default);
//! - an unlimited rlimit is `null` (`RLIM_INFINITY`), both for `soft` and `hard`;
//! - capability sets appear twice: as the raw `u64` mask under `caps.<set>` and
//!   as sorted names under `caps.<set>_names`;
//! - cgroup limit values are the raw trimmed file contents (`"max"`,
//!   `"9223372036854771712"`, `"100000 100000"`), keyed by file name.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::process::{Resource, getrlimit};
use serde_json::{Map, Value, json};

use crate::procfs::{self, put};

/// Builds the whole report.
pub fn report() -> Value {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let stat_fields = procfs::stat_fields(&stat);
    let stat_num = |i: usize| stat_fields.get(i).and_then(|f| f.parse::<i64>().ok());

    let mut out = Map::new();
    put(&mut out, "pid", std::process::id());
    put(&mut out, "ppid", stat_num(1));
    put(&mut out, "pgid", stat_num(2));
    put(&mut out, "sid", stat_num(3));
    put(&mut out, "namespaces", namespaces());
    put(
        &mut out,
        "hostname",
        read_trimmed("/proc/sys/kernel/hostname"),
    );
    put(
        &mut out,
        "domainname",
        read_trimmed("/proc/sys/kernel/domainname"),
    );
    credentials(&status, &mut out);
    put(&mut out, "umask", procfs::status_field(&status, "Umask"));
    put(&mut out, "caps", caps(&status));
    put(
        &mut out,
        "no_new_privs",
        procfs::status_field(&status, "NoNewPrivs").map(|v| v == "1"),
    );
    put(
        &mut out,
        "seccomp",
        procfs::status_field(&status, "Seccomp").and_then(|v| v.parse::<u64>().ok()),
    );
    put(
        &mut out,
        "seccomp_filters",
        procfs::status_field(&status, "Seccomp_filters").and_then(|v| v.parse::<u64>().ok()),
    );
    put(&mut out, "rlimits", rlimits());
    put(
        &mut out,
        "mounts",
        procfs::parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()),
    );
    put(&mut out, "cgroup", cgroup());
    put(&mut out, "env", env());
    put(
        &mut out,
        "cwd",
        std::env::current_dir()
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
    );
    put(&mut out, "fds", fds());
    put(
        &mut out,
        "oom_score_adj",
        read_trimmed("/proc/self/oom_score_adj").and_then(|v| v.parse::<i64>().ok()),
    );
    put(&mut out, "tty", tty());
    Value::Object(out)
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
}

fn namespaces() -> Value {
    let mut ns = Map::new();
    for kind in ["pid", "mnt", "uts", "ipc", "net", "user", "cgroup", "time"] {
        let inode = fs::read_link(format!("/proc/self/ns/{kind}"))
            .ok()
            .and_then(|target| procfs::ns_inode(&target.to_string_lossy()));
        put(&mut ns, kind, inode);
    }
    Value::Object(ns)
}

fn credentials(status: &str, out: &mut Map<String, Value>) {
    // Status order: real, effective, saved, filesystem.
    let uids = procfs::status_numbers(status, "Uid");
    let gids = procfs::status_numbers(status, "Gid");
    for (i, (u, g)) in [
        ("uid", "gid"),
        ("euid", "egid"),
        ("suid", "sgid"),
        ("fsuid", "fsgid"),
    ]
    .into_iter()
    .enumerate()
    {
        put(out, u, uids.get(i).copied());
        put(out, g, gids.get(i).copied());
    }
    put(out, "groups", procfs::status_numbers(status, "Groups"));
}

fn caps(status: &str) -> Value {
    let mut caps = Map::new();
    for (name, key) in [
        ("bounding", "CapBnd"),
        ("effective", "CapEff"),
        ("inheritable", "CapInh"),
        ("permitted", "CapPrm"),
        ("ambient", "CapAmb"),
    ] {
        let mask = procfs::status_hex(status, key);
        put(&mut caps, name, mask);
        put(
            &mut caps,
            &format!("{name}_names"),
            mask.map(procfs::cap_names),
        );
    }
    Value::Object(caps)
}

/// Every resource limit, named like the `RLIMIT_*` constant, as
/// `{"soft": n|null, "hard": n|null}` with `null` meaning unlimited.
fn rlimits() -> Value {
    let mut limits = Map::new();
    for (name, resource) in [
        ("RLIMIT_AS", Resource::As),
        ("RLIMIT_CORE", Resource::Core),
        ("RLIMIT_CPU", Resource::Cpu),
        ("RLIMIT_DATA", Resource::Data),
        ("RLIMIT_FSIZE", Resource::Fsize),
        ("RLIMIT_LOCKS", Resource::Locks),
        ("RLIMIT_MEMLOCK", Resource::Memlock),
        ("RLIMIT_MSGQUEUE", Resource::Msgqueue),
        ("RLIMIT_NICE", Resource::Nice),
        ("RLIMIT_NOFILE", Resource::Nofile),
        ("RLIMIT_NPROC", Resource::Nproc),
        ("RLIMIT_RSS", Resource::Rss),
        ("RLIMIT_RTPRIO", Resource::Rtprio),
        ("RLIMIT_RTTIME", Resource::Rttime),
        ("RLIMIT_SIGPENDING", Resource::Sigpending),
        ("RLIMIT_STACK", Resource::Stack),
    ] {
        let limit = getrlimit(resource);
        put(
            &mut limits,
            name,
            json!({"soft": limit.current, "hard": limit.maximum}),
        );
    }
    Value::Object(limits)
}

/// Files read for the `limits` object, per v1 controller (v2 names follow).
const V1_LIMIT_FILES: &[(&str, &[&str])] = &[
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
        ],
    ),
    ("pids", &["pids.max"]),
    (
        "cpu",
        &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"],
    ),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    ("blkio", &["blkio.weight"]),
];
const V2_LIMIT_FILES: &[&str] = &[
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "pids.max",
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
    "cpuset.mems",
    "io.weight",
];

/// `/proc/self/cgroup` plus the limits readable under `/sys/fs/cgroup`.
///
/// A limit file is looked up first in the process's own cgroup directory
/// (`/sys/fs/cgroup/<controller>/<path>`, right on the host), then at the
/// hierarchy's mount root (right in a container, where the runtime mounts the
/// container's own cgroup there). `limits_dirs` records which directory was used.
fn cgroup() -> Value {
    let lines = procfs::parse_cgroup(&fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
    let json_lines: Vec<Value> = lines
        .iter()
        .map(|l| json!({"hierarchy": l.hierarchy, "controllers": l.controllers, "path": l.path}))
        .collect();

    let mut limits = BTreeMap::new();
    let mut dirs = BTreeMap::new();
    for (controller, files) in V1_LIMIT_FILES {
        let own = lines
            .iter()
            .find(|l| l.controllers.iter().any(|c| c == controller))
            .map(|l| l.path.as_str());
        let base = PathBuf::from("/sys/fs/cgroup").join(controller);
        if let Some(dir) = limits_dir(&base, own, files[0]) {
            read_limits(&dir, files, &mut limits);
            dirs.insert((*controller).to_owned(), dir.to_string_lossy().into_owned());
        }
    }
    let own_v2 = lines
        .iter()
        .find(|l| l.hierarchy == 0)
        .map(|l| l.path.as_str());
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let base = Path::new(base);
        if !is_cgroup2_root(base) {
            continue;
        }
        // Pick the deepest directory that is ours, then read every v2 file there.
        let dir = limits_dir(base, own_v2, "cgroup.procs").unwrap_or_else(|| base.to_owned());
        read_limits(&dir, V2_LIMIT_FILES, &mut limits);
        dirs.insert("unified".to_owned(), dir.to_string_lossy().into_owned());
        break;
    }
    json!({"lines": json_lines, "limits": limits, "limits_dirs": dirs})
}

fn is_cgroup2_root(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}

fn limits_dir(base: &Path, own: Option<&str>, probe_file: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(own) = own {
        let rel = own.trim_start_matches('/');
        if !rel.is_empty() {
            candidates.push(base.join(rel));
        }
    }
    candidates.push(base.to_owned());
    candidates
        .into_iter()
        .find(|dir| dir.join(probe_file).exists())
}

fn read_limits(dir: &Path, files: &[&str], limits: &mut BTreeMap<String, String>) {
    for file in files {
        if let Some(value) = read_trimmed(dir.join(file)) {
            limits.insert((*file).to_owned(), value);
        }
    }
}

fn env() -> Value {
    let map: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    json!(map)
}

/// Open descriptors with their link targets. The directory handle used for
/// listing is closed before the links are read, so its entry fails with
/// `ENOENT` and is left out.
fn fds() -> Value {
    let numbers: Vec<u32> = match fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect(),
        Err(_) => return Value::Null,
    };
    let mut fds: Vec<(u32, String)> = numbers
        .into_iter()
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    Value::Array(
        fds.into_iter()
            .map(|(fd, target)| json!({"fd": fd, "target": target}))
            .collect(),
    )
}

fn tty() -> Value {
    let one = |fd: u32, isatty: bool| {
        let name = if isatty {
            fs::read_link(format!("/proc/self/fd/{fd}"))
                .ok()
                .map(|t| t.to_string_lossy().into_owned())
        } else {
            None
        };
        json!({"isatty": isatty, "ttyname": name})
    };
    json!({
        "stdin": one(0, rustix::termios::isatty(io::stdin().as_fd())),
        "stdout": one(1, rustix::termios::isatty(io::stdout().as_fd())),
        "stderr": one(2, rustix::termios::isatty(io::stderr().as_fd())),
    })
}
