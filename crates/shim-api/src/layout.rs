//! The shim's state directory, the on-disk contract with the daemon.
//!
//! ```text
//! <state_dir>/                 given by the daemon (--state-dir), one per container
//!   shim.sock                  the shim's socket (protocol: crate::protocol)
//!   shim.pid                   the shim's pid, decimal, written once it serves
//!   exit.json                  written once when the init exits (ExitFile, version 1)
//!   shim.log                   the shim's own diagnostics (tracing), not the container's
//!   console.sock, exec-N.sock  transient console sockets while a tty is set up
//! ```
//!
//! `shim.pid` and `exit.json` are written atomically (temporary file, then
//! rename). `exit.json` outlives the shim so a daemon that restarts after
//! the container exited and its shim was deleted still learns the exit.
//! The directory normally sits on a tmpfs (`/run`), so nothing is fsynced:
//! the files describe processes, which do not survive a reboot either.
//! Migration rule: a reader rejects an `exit.json` whose `version` it does
//! not know.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::ExitStatus;

pub const SOCKET: &str = "shim.sock";
pub const PID_FILE: &str = "shim.pid";
pub const EXIT_FILE: &str = "exit.json";
pub const SHIM_LOG: &str = "shim.log";
pub const CONSOLE_SOCKET: &str = "console.sock";
/// The `exit.json` schema version this crate writes and reads.
pub const EXIT_FILE_VERSION: u32 = 1;

/// Errors reading or writing the state directory's files.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed {path}: {detail}")]
    Malformed { path: PathBuf, detail: String },
}

/// The content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitFile {
    pub version: u32,
    #[serde(flatten)]
    pub status: ExitStatus,
}

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

pub fn pid_path(state_dir: &Path) -> PathBuf {
    state_dir.join(PID_FILE)
}

pub fn exit_path(state_dir: &Path) -> PathBuf {
    state_dir.join(EXIT_FILE)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let err = |source| LayoutError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn read_optional(path: &Path) -> Result<Option<String>, LayoutError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LayoutError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Records the init's exit in `<state_dir>/exit.json`.
pub fn write_exit(state_dir: &Path, status: &ExitStatus) -> Result<(), LayoutError> {
    let path = exit_path(state_dir);
    let file = ExitFile {
        version: EXIT_FILE_VERSION,
        status: status.clone(),
    };
    let json = serde_json::to_vec(&file).map_err(|e| LayoutError::Malformed {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    write_atomic(&path, &json)
}

/// The init's exit, if the shim recorded one.
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitStatus>, LayoutError> {
    let path = exit_path(state_dir);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let file: ExitFile = serde_json::from_str(&text).map_err(|e| LayoutError::Malformed {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if file.version != EXIT_FILE_VERSION {
        return Err(LayoutError::Malformed {
            path,
            detail: format!("unknown version {}", file.version),
        });
    }
    Ok(Some(file.status))
}

/// Writes `<state_dir>/shim.pid`.
pub fn write_pid(state_dir: &Path, pid: i32) -> Result<(), LayoutError> {
    write_atomic(&pid_path(state_dir), pid.to_string().as_bytes())
}

/// The shim's pid from `<state_dir>/shim.pid`, if present.
pub fn read_pid(state_dir: &Path) -> Result<Option<i32>, LayoutError> {
    let path = pid_path(state_dir);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|e: std::num::ParseIntError| LayoutError::Malformed {
            path,
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_file_round_trips_and_checks_version() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        let st = ExitStatus {
            exit_code: 137,
            exited_at: "2026-11-22T08:00:00.000000001Z".into(),
            oom_killed: true,
        };
        write_exit(dir.path(), &st).unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(st));
        std::fs::write(
            exit_path(dir.path()),
            r#"{"version":2,"exit_code":0,"exited_at":"x","oom_killed":false}"#,
        )
        .unwrap();
        assert!(matches!(
            read_exit(dir.path()),
            Err(LayoutError::Malformed { .. })
        ));
    }

    #[test]
    fn pid_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_pid(dir.path()).unwrap(), None);
        write_pid(dir.path(), 4242).unwrap();
        assert_eq!(read_pid(dir.path()).unwrap(), Some(4242));
        assert!(!dir.path().join("shim.pid.tmp").exists());
    }
}
