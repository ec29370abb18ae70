//! Launching a shim and finding it again.
//!
//! [`spawn_shim`] runs the `wharf-shim` binary with the flags built by
//! [`ShimConfig::args`]. That process forks the real shim (which calls
//! `setsid` and is not the daemon's child), waits until the real shim has
//! created the container and listens on its socket, then exits: status 0
//! when ready, otherwise non-zero with the reason on stderr. So the daemon
//! reaps only that short-lived launcher, and a shim keeps running when the
//! daemon dies. [`ShimHandle::adopt`] reconnects to such a shim later.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::client::{ClientError, ShimClient};
use crate::layout::{self, LayoutError};

/// How to run one container's shim.
#[derive(Debug, Clone, Default)]
pub struct ShimConfig {
    /// The container id (the runtime's id).
    pub id: String,
    /// The OCI bundle (holds `config.json`).
    pub bundle: PathBuf,
    /// The runtime's state root (`wharf_runtime::Runtime::open`).
    pub runtime_root: PathBuf,
    /// The shim's state directory ([`crate::layout`]); keep its path short:
    /// socket paths must fit in 108 bytes.
    pub state_dir: PathBuf,
    /// The container's json-file log.
    pub log_path: PathBuf,
    /// Rotate the log when it reaches this many bytes (`None`: never).
    pub log_max_size: Option<u64>,
    /// Keep at most this many log files, the current one included (default 1).
    pub log_max_files: Option<u32>,
    /// Give the container a terminal (the bundle's `process.terminal` must agree).
    pub tty: bool,
    /// Keep the container's stdin open (a pipe) for attach clients.
    pub stdin: bool,
    /// Close the container's stdin when an attached client closes its input.
    pub stdin_once: bool,
}

impl ShimConfig {
    /// The shim's command line (without the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--runtime-root".into(),
            self.runtime_root.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--log-path".into(),
            self.log_path.clone().into(),
        ];
        if let Some(n) = self.log_max_size {
            a.push("--log-max-size".into());
            a.push(n.to_string().into());
        }
        if let Some(n) = self.log_max_files {
            a.push("--log-max-files".into());
            a.push(n.to_string().into());
        }
        for (on, flag) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        a
    }
}

/// Errors launching or adopting a shim.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("failed to run shim binary {binary}")]
    Launch {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim for container {id} failed ({status}): {message}")]
    Failed {
        id: String,
        status: std::process::ExitStatus,
        message: String,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("no shim pid file in {state_dir}")]
    NoPid { state_dir: PathBuf },
    #[error("shim in {state_dir} does not answer")]
    Unreachable {
        state_dir: PathBuf,
        #[source]
        source: ClientError,
    },
}

/// A running shim.
#[derive(Debug, Clone)]
pub struct ShimHandle {
    pid: i32,
    state_dir: PathBuf,
    client: ShimClient,
}

impl ShimHandle {
    /// Reconnects to the shim of `state_dir` (after a daemon restart):
    /// reads `shim.pid` and checks that the socket answers.
    pub async fn adopt(state_dir: &Path) -> Result<ShimHandle, SpawnError> {
        let h = ShimHandle::from_pid_file(state_dir)?;
        h.client
            .state()
            .await
            .map_err(|source| SpawnError::Unreachable {
                state_dir: state_dir.to_owned(),
                source,
            })?;
        Ok(h)
    }

    /// The handle of the shim whose `shim.pid` is in `state_dir`.
    fn from_pid_file(state_dir: &Path) -> Result<ShimHandle, SpawnError> {
        let pid = layout::read_pid(state_dir)?.ok_or_else(|| SpawnError::NoPid {
            state_dir: state_dir.to_owned(),
        })?;
        Ok(ShimHandle {
            pid,
            state_dir: state_dir.to_owned(),
            client: ShimClient::for_state_dir(state_dir),
        })
    }

    /// The shim's pid (not the container's).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn client(&self) -> &ShimClient {
        &self.client
    }
}

/// What [`spawn_shim`] executes for `binary`: the read-only view of it
/// once one exists (argv[0] stays `binary`, so `ps` shows the shim as it
/// was installed), else the binary itself.
pub fn launch_path(binary: &Path) -> PathBuf {
    wharf_sys::sealed_view::existing_view(binary).unwrap_or_else(|| binary.to_owned())
}

/// Launches `binary` for `cfg` and returns once the container is created and
/// the shim answers on its socket (see the module documentation).
pub async fn spawn_shim(binary: &Path, cfg: &ShimConfig) -> Result<ShimHandle, SpawnError> {
    // The shim runs from a read-only view of its binary (CVE-2019-5736): once
    // an earlier shim made it, start from it at once, which spares the shim
    // its re-execution (an exec of the binary per container).
    let out = tokio::process::Command::new(launch_path(binary))
        .arg0(binary)
        .args(cfg.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|source| SpawnError::Launch {
            binary: binary.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(SpawnError::Failed {
            id: cfg.id.clone(),
            status: out.status,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    tracing::debug!(container_id = %cfg.id, "shim ready");
    // Ready means serving (the shim reports it after binding its socket and
    // writing its pid file): no round trip to check it on the start path.
    ShimHandle::from_pid_file(&cfg.state_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_carry_every_setting() {
        let cfg = ShimConfig {
            id: "c1".into(),
            bundle: "/b".into(),
            runtime_root: "/r".into(),
            state_dir: "/s".into(),
            log_path: "/l".into(),
            log_max_size: Some(10),
            log_max_files: None,
            tty: true,
            stdin: false,
            stdin_once: true,
        };
        let args: Vec<String> = cfg
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "--id c1 --bundle /b --runtime-root /r --state-dir /s --log-path /l \
             --log-max-size 10 --tty --stdin-once"
        );
    }

    #[tokio::test]
    async fn a_failing_launcher_reports_its_stderr() {
        let cfg = ShimConfig {
            id: "c2".into(),
            ..ShimConfig::default()
        };
        let err = spawn_shim(Path::new("/bin/false"), &cfg).await.unwrap_err();
        assert!(
            matches!(err, SpawnError::Failed { ref id, .. } if id == "c2"),
            "{err}"
        );
        let err = spawn_shim(Path::new("/nonexistent/wharf-shim"), &cfg)
            .await
            .unwrap_err();
        assert!(matches!(err, SpawnError::Launch { .. }), "{err}");
    }
}
