//! Teardown guard for what a test creates outside its own memory: mounts,
//! cgroups, processes, directories and runtime containers.
//!
//! A test registers each resource on a [`Cleanup`] right after creating it.
//! When the guard drops (also while the test panics) it undoes them in
//! reverse registration order, keeps going past failures and prints every
//! failure together; [`Cleanup::run`] does the same and returns the failures
//! for tests that want to assert a clean teardown. The free functions
//! ([`unmount_under`], [`remove_cgroup`], [`kill_pid`]) are the same steps
//! for callers with their own guards (`Bundle`, `Runtime`).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::mount::{UnmountFlags, unmount};
use rustix::process::{Pid, Signal, WaitOptions, getpid, kill_process, waitpid};

use crate::command::{DEFAULT_TIMEOUT, describe_command, run_bounded};

/// How long an emptied cgroup may stay busy (exiting tasks) before giving up.
const CGROUP_RMDIR_PATIENCE: Duration = Duration::from_secs(10);

/// One failed teardown step.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("failed to unmount {path}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read the mount table")]
    MountTable(#[source] io::Error),
    #[error("failed to kill pid {pid}")]
    Kill {
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error("failed to empty cgroup {dir}")]
    EmptyCgroup {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to remove cgroup {dir}")]
    RemoveCgroup {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to remove directory {path}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    DeleteContainer { command: String, detail: String },
}

/// Every failure of one teardown, shown one per line (with causes).
#[derive(Debug, Default)]
pub struct CleanupFailures(pub Vec<CleanupError>);

impl fmt::Display for CleanupFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} cleanup step(s) failed:", self.0.len())?;
        for err in &self.0 {
            write!(f, "  - {err}")?;
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for CleanupFailures {}

#[derive(Debug)]
enum Action {
    Mount(PathBuf),
    Cgroup(String),
    Pid(i32),
    Dir(PathBuf),
    Container {
        runtime: PathBuf,
        root: PathBuf,
        id: String,
    },
}

/// Drop guard undoing registered resources in reverse order.
#[derive(Debug, Default)]
pub struct Cleanup {
    actions: Vec<Action>,
}

impl Cleanup {
    /// An empty guard.
    pub fn new() -> Cleanup {
        Cleanup::default()
    }

    /// Unmount `path` (lazily, the topmost mount there) at teardown; register
    /// stacked mounts once each.
    pub fn mount(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.actions.push(Action::Mount(path.into()));
        self
    }

    /// Remove the cgroup `path` (an OCI `cgroupsPath`, relative to each
    /// hierarchy's root) from every mounted hierarchy, after killing its tasks.
    pub fn cgroup(&mut self, path: impl Into<String>) -> &mut Self {
        self.actions.push(Action::Cgroup(path.into()));
        self
    }

    /// SIGKILL `pid` (and reap it when it is this process's child).
    pub fn pid(&mut self, pid: u32) -> &mut Self {
        self.actions
            .push(Action::Pid(i32::try_from(pid).unwrap_or(i32::MAX)));
        self
    }

    /// Remove directory `path` recursively (unmounting anything under it first).
    pub fn dir(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.actions.push(Action::Dir(path.into()));
        self
    }

    /// Run `<runtime> --root <root> delete --force <id>`.
    pub fn container(
        &mut self,
        runtime: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
        id: impl Into<String>,
    ) -> &mut Self {
        self.actions.push(Action::Container {
            runtime: runtime.into(),
            root: root.into(),
            id: id.into(),
        });
        self
    }

    /// Runs every registered action now (newest first) and forgets them.
    pub fn run(&mut self) -> Result<(), CleanupFailures> {
        let mut failures = Vec::new();
        while let Some(action) = self.actions.pop() {
            match action {
                Action::Mount(path) => failures.extend(unmount_once(&path).err()),
                Action::Cgroup(path) => failures.extend(remove_cgroup(&path)),
                Action::Pid(pid) => failures.extend(kill_pid(pid).err()),
                Action::Dir(path) => failures.extend(remove_dir(&path)),
                Action::Container { runtime, root, id } => {
                    failures.extend(delete_container(&runtime, &root, &id).err());
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(CleanupFailures(failures))
        }
    }

    /// Panics when a mount point whose path contains `prefix` is still in
    /// this process's mount table.
    pub fn check_no_leaks(prefix: &str) {
        let table = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
        let leaked: Vec<String> = mount_points(&table)
            .into_iter()
            .filter(|(_, mp)| mp.to_string_lossy().contains(prefix))
            .map(|(_, mp)| mp.display().to_string())
            .collect();
        assert!(
            leaked.is_empty(),
            "mounts containing {prefix:?} leaked: {leaked:#?}"
        );
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(failures) = self.run() {
            eprintln!("wharf-testkit: {failures}");
        }
    }
}

/// `(mount id, mount point)` of every line of a mountinfo table.
fn mount_points(table: &str) -> Vec<(u64, PathBuf)> {
    table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let mount_point = fields.nth(3)?;
            Some((id, PathBuf::from(unescape(mount_point))))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` and friends).
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4).unwrap_or_default();
        if bytes[i] == b'\\'
            && digits.len() == 3
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts the topmost mount at `path`; a path that is not (or no
/// longer) a mount point is fine. Exactly one mount is removed, so a mount
/// that was already there before the test is never touched.
pub fn unmount_once(path: &Path) -> Result<(), CleanupError> {
    match unmount(path, UnmountFlags::DETACH) {
        // EINVAL: not (or no longer) a mount point; ENOENT: the path is gone.
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(CleanupError::Unmount {
            path: path.to_owned(),
            source: e.into(),
        }),
    }
}

/// Lazily unmounts every mount at or below `dir`, deepest (and newest) first.
pub fn unmount_under(dir: &Path) -> Vec<CleanupError> {
    let table = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(table) => table,
        Err(err) => return vec![CleanupError::MountTable(err)],
    };
    let mut under: Vec<(u64, PathBuf)> = mount_points(&table)
        .into_iter()
        .filter(|(_, mp)| mp.starts_with(dir))
        .collect();
    under.sort_by(|(id_a, a), (id_b, b)| {
        b.components()
            .count()
            .cmp(&a.components().count())
            .then(id_b.cmp(id_a))
    });
    // One unmount per table entry: stacked mounts at one path each count.
    under
        .iter()
        .filter_map(|(_, mp)| unmount_once(mp).err())
        .collect()
}

fn remove_dir(path: &Path) -> Vec<CleanupError> {
    let mut failures = unmount_under(path);
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(source) => failures.push(CleanupError::RemoveDir {
            path: path.to_owned(),
            source,
        }),
    }
    failures
}

/// SIGKILLs `pid`; reaps it when it is this process's child. An already
/// gone process is fine.
pub fn kill_pid(pid: i32) -> Result<(), CleanupError> {
    let Some(target) = Pid::from_raw(pid) else {
        return Err(CleanupError::Kill {
            pid,
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a valid pid"),
        });
    };
    let our_child = parent_of(pid) == Some(getpid().as_raw_nonzero().get());
    match kill_process(target, Signal::KILL) {
        Ok(()) => {}
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(e) => {
            return Err(CleanupError::Kill {
                pid,
                source: e.into(),
            });
        }
    }
    if our_child {
        // ECHILD means someone (e.g. a std::process::Child) already reaped it.
        let _ = waitpid(Some(target), WaitOptions::empty());
    }
    Ok(())
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Directories of every mounted cgroup hierarchy (v1 and v2), each once.
pub fn cgroup_mounts() -> io::Result<Vec<PathBuf>> {
    let table = fs::read_to_string("/proc/self/mountinfo")?;
    let mut mounts: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mut fields = left.split(' ');
            let root = fields.nth(3)?;
            let mount_point = fields.next()?;
            (matches!(fstype, "cgroup" | "cgroup2") && root == "/")
                .then(|| PathBuf::from(unescape(mount_point)))
        })
        .collect();
    mounts.sort();
    mounts.dedup();
    Ok(mounts)
}

/// Removes cgroup `path` (relative to each hierarchy root; a leading `/` is
/// ignored) and everything below it from every mounted hierarchy: thaws it,
/// SIGKILLs its tasks, then removes directories deepest first, waiting a
/// little for exiting tasks. A cgroup that does not exist is fine.
pub fn remove_cgroup(path: &str) -> Vec<CleanupError> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return vec![CleanupError::RemoveCgroup {
            dir: PathBuf::from(path),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to remove a root or escaping cgroup path",
            ),
        }];
    }
    let mounts = match cgroup_mounts() {
        Ok(mounts) => mounts,
        Err(err) => return vec![CleanupError::MountTable(err)],
    };
    let mut failures = Vec::new();
    let mut dirs = Vec::new();
    for mount in mounts {
        let top = mount.join(rel);
        if top.is_dir() {
            collect_dirs(&top, &mut dirs);
        }
    }
    // Empty every cgroup first (across hierarchies), then remove.
    for dir in &dirs {
        failures.extend(empty_cgroup(dir).err());
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in &dirs {
        failures.extend(rmdir_patiently(dir).err());
    }
    failures
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_owned());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

fn empty_cgroup(dir: &Path) -> Result<(), CleanupError> {
    let fail = |source| CleanupError::EmptyCgroup {
        dir: dir.to_owned(),
        source,
    };
    // Frozen tasks cannot die: thaw first (v1 freezer, v2 cgroup.freeze).
    let freezer = dir.join("freezer.state");
    if freezer.exists() {
        fs::write(&freezer, "THAWED").map_err(fail)?;
    }
    let freeze = dir.join("cgroup.freeze");
    if freeze.exists() {
        fs::write(&freeze, "0").map_err(fail)?;
    }
    let kill = dir.join("cgroup.kill");
    if kill.exists() {
        return fs::write(&kill, "1").map_err(fail);
    }
    let procs = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(procs) => procs,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(fail(err)),
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        kill_pid(pid)?;
    }
    Ok(())
}

fn rmdir_patiently(dir: &Path) -> Result<(), CleanupError> {
    let deadline = Instant::now() + CGROUP_RMDIR_PATIENCE;
    let mut pause = Duration::from_millis(1);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err)
                if err.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                    && Instant::now() < deadline =>
            {
                // Tasks still exiting, or new ones raced in: kill again and retry.
                let _ = empty_cgroup(dir);
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CleanupError::RemoveCgroup {
                    dir: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

/// `<runtime> --root <root> delete --force <id>`; a container the runtime
/// does not know is fine.
pub fn delete_container(runtime: &Path, root: &Path, id: &str) -> Result<(), CleanupError> {
    let mut cmd = Command::new(runtime);
    cmd.arg("--root").arg(root).args(["delete", "--force", id]);
    let command = describe_command(&cmd);
    match run_bounded(&mut cmd, DEFAULT_TIMEOUT) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if stderr.contains("does not exist") || stderr.contains("not found") {
                Ok(())
            } else {
                Err(CleanupError::DeleteContainer {
                    command,
                    detail: format!("{}: {stderr}", out.status),
                })
            }
        }
        Err(err) => Err(CleanupError::DeleteContainer {
            command,
            detail: err.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_unescape_and_keep_ids() {
        let table = "22 27 0:21 / /proc rw - proc proc rw\n\
                     40 22 0:30 / /tmp/a\\040b rw shared:1 - tmpfs tmpfs rw\n";
        let mps = mount_points(table);
        assert_eq!(
            mps,
            vec![
                (22, PathBuf::from("/proc")),
                (40, PathBuf::from("/tmp/a b"))
            ]
        );
    }

    #[test]
    fn refuses_to_remove_root_cgroup() {
        assert_eq!(remove_cgroup("/").len(), 1);
        assert_eq!(remove_cgroup("/a/../..").len(), 1);
    }

    #[test]
    fn failures_list_every_error_with_causes() {
        let failures = CleanupFailures(vec![
            CleanupError::Kill {
                pid: 7,
                source: io::Error::other("boom"),
            },
            CleanupError::DeleteContainer {
                command: "rt delete".into(),
                detail: "exit 1".into(),
            },
        ]);
        let text = failures.to_string();
        assert!(text.contains("2 cleanup step(s) failed"), "{text}");
        assert!(text.contains("failed to kill pid 7: boom"), "{text}");
        assert!(text.contains("`rt delete` failed: exit 1"), "{text}");
    }
}
