//! The crate's error type, [`CgroupError`]: every failure names the file,
//! directory or input line a stranger needs to diagnose it.

use std::path::PathBuf;

/// Everything that can go wrong detecting, creating, configuring, reading or
/// removing cgroups.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// A `/proc` or cgroupfs file could not be read.
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A cgroupfs file could not be written.
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    /// A value was requested but the file that carries it does not exist.
    #[error(
        "{path} does not exist: the kernel lacks the controller or feature needed for the requested {what}"
    )]
    MissingFile { path: PathBuf, what: String },
    /// A resource was requested for a controller that is mounted nowhere.
    #[error(
        "the {controller} controller is not available in any cgroup hierarchy (needed for {what})"
    )]
    NoController { controller: String, what: String },
    /// A resource has no equivalent on the cgroup version that hosts it.
    #[error("{what} is not supported on cgroup {version}")]
    Unsupported { what: String, version: &'static str },
    /// A requested resource value is inconsistent or out of range.
    #[error("invalid resource: {reason}")]
    InvalidResource { reason: String },
    /// A cgroup directory could not be created.
    #[error("create cgroup directory {path}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("remove cgroup directory {path}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Several cleanup steps failed; every failure is listed.
    #[error("{} cgroup cleanup steps failed: {}", .0.len(), join_errors(.0))]
    Multiple(Vec<CgroupError>),
    /// A cgroupfs file held something we could not parse.
    #[error("unexpected content in {path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    /// A line of `/proc/self/mountinfo` could not be parsed.
    #[error("malformed mountinfo line {line:?}: {detail}")]
    Mountinfo { line: String, detail: String },
    /// A line of `/proc/self/cgroup` could not be parsed.
    #[error("malformed /proc/self/cgroup line {line:?}")]
    ProcCgroup { line: String },
    /// No cgroup hierarchy is mounted at all.
    #[error("no cgroup v1 or v2 hierarchy is mounted")]
    NoHierarchy,
    /// The OCI `cgroupsPath` is not usable.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// The freezer did not report FROZEN in time; the cgroup was thawed again.
    #[error("cgroup {path} did not freeze within {millis} ms")]
    FreezeTimeout { path: PathBuf, millis: u64 },
    /// A `bpf(2)` step of the v2 device filter failed.
    #[error("{op} device filter for cgroup {path}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn join_errors(errs: &[CgroupError]) -> String {
    errs.iter()
        .map(|e| {
            let mut s = e.to_string();
            let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
            while let Some(c) = cur {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cur = c.source();
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}
