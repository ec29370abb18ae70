//! Driver for a runc-compatible runtime binary (`wharf-runtime`, or `runc` /
//! `crun` for comparison) in tests.
//!
//! A [`Runtime`] owns a fresh `--root` state directory, runs every command
//! with a time limit ([`DEFAULT_TIMEOUT`] unless changed) and remembers every
//! container id it created; dropping it force-deletes those containers and
//! removes the state directory. Commands never inherit the test's stdio: the
//! runtime's (and, for `run`, the container's) stdout/stderr are captured in
//! memory files, so a container outliving the command cannot block the test.
//!
//! ```no_run
//! # use wharf_testkit::{Bundle, Runtime, probe_json};
//! let bundle = Bundle::new().unwrap();
//! // In a test of crates/runtime-cli: Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime"))
//! let rt = Runtime::new("/usr/sbin/runc").unwrap();
//! let out = rt.run(&bundle, bundle.id()).unwrap();
//! let report = probe_json(&out);
//! ```

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::{Bundle, BundleError, test_tmp};
use crate::cleanup::{delete_container, unmount_under};
use crate::command::{
    Capture, CommandError, DEFAULT_TIMEOUT, describe_command, run_bounded, wait_bounded,
};
use crate::ids::unique_id;
use crate::probe::describe;

/// Errors from driving the runtime binary.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to create runtime state directory {path}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("failed to capture output of container {id}")]
    Capture {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed\n{output}")]
    Failed { command: String, output: String },
    #[error("`{command}` printed invalid JSON\n{output}")]
    BadJson {
        command: String,
        output: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("container {id} did not stop within {timeout:?} (last state: {state})")]
    NotStopped {
        id: String,
        timeout: Duration,
        state: String,
    },
}

/// Stdio captures of a container made with [`Runtime::create`].
#[derive(Debug)]
struct ContainerIo {
    stdout: Capture,
    stderr: Capture,
}

/// A runtime binary plus a private state directory; see the module docs.
#[derive(Debug)]
pub struct Runtime {
    binary: PathBuf,
    root: PathBuf,
    timeout: Duration,
    created: Mutex<Vec<String>>,
    io: Mutex<HashMap<String, ContainerIo>>,
}

impl Runtime {
    /// Drives `binary` (e.g. `env!("CARGO_BIN_EXE_wharf-runtime")`) with a
    /// new empty `--root` under the test temp directory.
    pub fn new(binary: impl Into<PathBuf>) -> Result<Runtime, RuntimeError> {
        let root = test_tmp().join(format!("wharf-rtroot-{}", unique_id("r")));
        fs::create_dir_all(&root).map_err(|source| RuntimeError::Root {
            path: root.clone(),
            source,
        })?;
        Ok(Runtime {
            binary: binary.into(),
            root,
            timeout: DEFAULT_TIMEOUT,
            created: Mutex::new(Vec::new()),
            io: Mutex::new(HashMap::new()),
        })
    }

    /// Changes the time limit for each command.
    pub fn with_timeout(mut self, timeout: Duration) -> Runtime {
        self.timeout = timeout;
        self
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<binary> --root <root> <args...>`, not yet run.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs `<binary> --root <root> <args...>` with the time limit; any exit
    /// status is returned as output (time-outs and spawn failures are errors).
    pub fn output<I, S>(&self, args: I) -> Result<Output, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(run_bounded(&mut self.cmd(args), self.timeout)?)
    }

    /// Like [`Runtime::output`] but a non-zero exit is an error.
    pub fn ok<I, S>(&self, args: I) -> Result<Output, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.cmd(args);
        let out = run_bounded(&mut cmd, self.timeout)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(RuntimeError::Failed {
                command: describe_command(&cmd),
                output: describe(&out),
            })
        }
    }

    fn remember(&self, id: &str) {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        if !created.iter().any(|c| c == id) {
            created.push(id.to_owned());
        }
    }

    /// Writes the bundle's config and runs `run --bundle <bundle> <id>` to
    /// completion; the output holds the container's stdout/stderr.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Result<Output, RuntimeError> {
        bundle.write_config()?;
        self.remember(id);
        self.output([
            OsStr::new("run"),
            OsStr::new("--bundle"),
            bundle.path().as_os_str(),
            OsStr::new(id),
        ])
    }

    /// Writes the bundle's config and runs `create --bundle <bundle> <id>`.
    /// The container's stdio is captured for [`Runtime::container_output`];
    /// the returned output is what the runtime printed up to its exit.
    pub fn create(&self, bundle: &Bundle, id: &str) -> Result<Output, RuntimeError> {
        bundle.write_config()?;
        self.remember(id);
        let capture_err = |source| RuntimeError::Capture {
            id: id.to_owned(),
            source,
        };
        let io = ContainerIo {
            stdout: Capture::new().map_err(capture_err)?,
            stderr: Capture::new().map_err(capture_err)?,
        };
        let mut cmd = self.cmd([
            OsStr::new("create"),
            OsStr::new("--bundle"),
            bundle.path().as_os_str(),
            OsStr::new(id),
        ]);
        cmd.stdin(std::process::Stdio::null())
            .stdout(io.stdout.stdio().map_err(capture_err)?)
            .stderr(io.stderr.stdio().map_err(capture_err)?);
        let status = wait_bounded(&mut cmd, self.timeout, &io.stdout, &io.stderr)?;
        let out = Output {
            status,
            stdout: io.stdout.contents().map_err(capture_err)?,
            stderr: io.stderr.contents().map_err(capture_err)?,
        };
        self.io
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), io);
        Ok(out)
    }

    /// Everything written so far to stdout and stderr by the runtime and the
    /// container made with [`Runtime::create`] under `id`.
    pub fn container_output(&self, id: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let io = io.get(id)?;
        Some((io.stdout.contents().ok()?, io.stderr.contents().ok()?))
    }

    /// `start <id>`.
    pub fn start(&self, id: &str) -> Result<Output, RuntimeError> {
        self.output(["start", id])
    }

    /// `kill <id> <signal>` (a name like `KILL` or `SIGTERM`, or a number).
    pub fn kill(&self, id: &str, signal: &str) -> Result<Output, RuntimeError> {
        self.output(["kill", id, signal])
    }

    /// `delete <id>`.
    pub fn delete(&self, id: &str) -> Result<Output, RuntimeError> {
        self.output(["delete", id])
    }

    /// `delete --force <id>`.
    pub fn delete_force(&self, id: &str) -> Result<Output, RuntimeError> {
        self.output(["delete", "--force", id])
    }

    /// `state <id>` parsed as JSON; a non-zero exit is an error.
    pub fn state(&self, id: &str) -> Result<Value, RuntimeError> {
        let mut cmd = self.cmd(["state", id]);
        let out = run_bounded(&mut cmd, self.timeout)?;
        if !out.status.success() {
            return Err(RuntimeError::Failed {
                command: describe_command(&cmd),
                output: describe(&out),
            });
        }
        serde_json::from_slice(&out.stdout).map_err(|source| RuntimeError::BadJson {
            command: describe_command(&cmd),
            output: describe(&out),
            source,
        })
    }

    /// Polls `state <id>` until its status is `stopped`, for at most `timeout`.
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<Value, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            let state = self.state(id)?;
            if state["status"] == "stopped" {
                return Ok(state);
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::NotStopped {
                    id: id.to_owned(),
                    timeout,
                    state: state.to_string(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let created = std::mem::take(self.created.get_mut().unwrap_or_else(|e| e.into_inner()));
        let mut messages = Vec::new();
        for id in created.iter().rev() {
            if let Err(err) = delete_container(&self.binary, &self.root, id) {
                messages.push(err.to_string());
            }
        }
        messages.extend(unmount_under(&self.root).iter().map(ToString::to_string));
        if let Err(err) = fs::remove_dir_all(&self.root)
            && err.kind() != io::ErrorKind::NotFound
        {
            messages.push(format!("failed to remove {}: {err}", self.root.display()));
        }
        if !messages.is_empty() {
            eprintln!(
                "wharf-testkit: runtime {} cleanup failed:\n  {}",
                self.binary.display(),
                messages.join("\n  ")
            );
        }
    }
}
