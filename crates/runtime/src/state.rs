//! Persistent state of the containers one `--root` holds.
//!
//! On-disk layout (state layout version 1), under the runtime root
//! (`--root`, default `/run/wharf-runtime`):
//!
//! ```text
//! <root>/
//!   <id>/
//!     state.json   ContainerRecord, written atomically (temp + rename)
//!     exec.fifo    present from `create` until `start`: the init blocks on it
//! ```
//!
//! `state.json` is written once by `create` (after the init process reported
//! that it is ready) and never rewritten; the live status (created, running,
//! paused, stopped) is derived each time from the process (pid plus its start
//! time, so a recycled pid is not mistaken for the container), the fifo and
//! the freezer. A crash of `create` before the rename leaves a directory
//! without `state.json`, which `delete` and `list` treat as a stopped
//! container to be removed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

/// The layout version written into every record.
pub const STATE_VERSION: u32 = 1;

/// Errors reading or writing container state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id \"{0}\" already exists")]
    Exists(String),
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt state file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub version: u32,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Pid of the container's init process, in the runtime's pid namespace.
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/<pid>/stat), to detect reuse.
    pub pid_start: u64,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    pub cgroups_path: String,
    pub annotations: HashMap<String, String>,
    /// The configuration the container was created with.
    pub spec: Spec,
}

/// The lifecycle status of the OCI runtime spec (plus `paused`, as runc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The state JSON of the runtime spec, printed by `state` and fed to hooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// The directory holding the records of one runtime root.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl StateStore {
    /// Opens (creating if needed, mode 0711) the runtime root.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        if !root.is_dir() {
            std::fs::create_dir_all(root).map_err(io_err(root))?;
            // One subtree per container below: on ext4 without a journal,
            // have them spread over the block groups (a hint; see
            // `wharf_sys::fsflags`).
            let _ = wharf_sys::fsflags::spread_subtrees(root);
        }
        Ok(StateStore {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Path of the exec fifo of container `id`.
    pub fn fifo(&self, id: &str) -> PathBuf {
        self.dir(id).join("exec.fifo")
    }

    /// Reserves `id`: creates its directory, failing if it exists.
    pub fn reserve(&self, id: &str) -> Result<PathBuf, StateError> {
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(id.to_owned()))
            }
            Err(e) => Err(StateError::Io {
                path: dir,
                source: e,
            }),
        }
    }

    /// Writes the record atomically.
    pub fn save(&self, rec: &ContainerRecord) -> Result<(), StateError> {
        self.stage(rec)?.commit()
    }

    /// The first half of [`StateStore::save`]: writes the record to its
    /// temporary file, which `load` ignores; [`StagedRecord::commit`] makes
    /// it the container's state. Lets `create` write while the init
    /// finishes its setup and only rename once it reported "created".
    pub fn stage(&self, rec: &ContainerRecord) -> Result<StagedRecord, StateError> {
        let dir = self.dir(&rec.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join("state.json");
        let bytes = serde_json::to_vec(rec).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        Ok(StagedRecord { tmp, path })
    }

    /// Loads the record of `id`; `Ok(None)` when the directory exists but
    /// `create` never finished (no state.json).
    pub fn load(&self, id: &str) -> Result<Option<ContainerRecord>, StateError> {
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Err(StateError::NotFound(id.to_owned()));
        }
        let path = dir.join("state.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Io { path, source: e }),
        }
    }

    /// Ids of every container directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let e = e.map_err(io_err(&self.root))?;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                ids.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes the directory of `id` and everything in it.
    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::Io {
                path: dir,
                source: e,
            }),
        }
    }
}

/// Start time (clock ticks since boot) of `pid` and whether it is a zombie,
/// from `/proc/<pid>/stat`; `None` when there is no such process.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    // after the state (field 3), starttime is field 22: 18 more fields.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// Whether the recorded init process is still alive (same pid, same start
/// time, not a zombie).
pub fn init_alive(rec: &ContainerRecord) -> bool {
    matches!(proc_start_time(rec.pid), Some((start, false)) if start == rec.pid_start)
}

/// The current time as RFC 3339 with nanoseconds, UTC (Go's RFC3339Nano).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// A record written by [`StateStore::stage`], not visible yet.
#[derive(Debug)]
#[must_use = "a staged record is not the container's state until committed"]
pub struct StagedRecord {
    tmp: PathBuf,
    path: PathBuf,
}

impl StagedRecord {
    /// Renames the record into place (atomically).
    pub fn commit(self) -> Result<(), StateError> {
        std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_700_000_000, 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn own_start_time() {
        let me = std::process::id() as i32;
        let (start, zombie) = proc_start_time(me).expect("self");
        assert!(start > 0);
        assert!(!zombie);
        assert!(proc_start_time(i32::MAX).is_none());
    }

    /// A root the store creates is a top directory exactly where that
    /// pays (ext4 without a journal); an existing one is left as it is.
    #[test]
    fn a_new_root_spreads_its_subtrees_where_it_pays() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let root = dir.path().join("root");
        StateStore::open(&root).unwrap();
        let flag = wharf_sys::fsflags::is_top_directory(&root).unwrap();
        let wanted = wharf_sys::fsflags::ext4_without_journal(&root);
        assert_eq!(flag == Some(true), wanted, "{flag:?}");
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        StateStore::open(&existing).unwrap();
        assert_ne!(
            wharf_sys::fsflags::is_top_directory(&existing).unwrap(),
            Some(true)
        );
    }

    #[test]
    fn reserve_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        s.reserve("a").unwrap();
        assert!(matches!(s.reserve("a"), Err(StateError::Exists(_))));
        assert!(matches!(s.load("a"), Ok(None)));
        assert!(matches!(s.load("b"), Err(StateError::NotFound(_))));
        assert_eq!(s.ids().unwrap(), vec!["a".to_string()]);
    }
}
