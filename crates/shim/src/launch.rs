//! Starting a process through the runtime with the right stdio and signal
//! mask: the container's init (`Runtime::create`) and exec processes
//! (`Runtime::exec`).
//!
//! Contract: the shim is single-threaded (the runtime forks and refuses to
//! run otherwise). The shim normally blocks `SIGCHLD` (it reads it from a
//! signalfd); children inherit the signal mask across `execve`, so the
//! mask is lifted for the duration of the runtime call. A `SIGCHLD` that
//! arrives meanwhile is lost, so the caller reaps afterwards.

use std::path::Path;

use nix::sys::signal::{SigSet, Signal};
use wharf_runtime::{RuntimeError, Started};

use crate::stdio::{self, ConsoleSocket, ShimEnds, StdioError};

/// Errors starting a process.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Stdio(#[from] StdioError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("changing the signal mask failed")]
    SignalMask(#[source] nix::Error),
}

/// A started process and the shim's ends of its streams.
#[derive(Debug)]
pub struct Launched {
    pub pid: i32,
    pub ends: ShimEnds,
}

/// The signal set the shim reads from its signalfd.
pub fn sigchld() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGCHLD);
    s
}

/// Runs `call` (a runtime `create` or `exec`, given the console socket
/// path when `tty`) with the child's stdio installed as fds 0-2.
pub fn launch(
    tty: bool,
    stdin: bool,
    console_path: &Path,
    call: impl FnOnce(Option<&Path>) -> Result<Started, RuntimeError>,
) -> Result<Launched, LaunchError> {
    // 1. The streams: a console socket for a terminal, else pipes.
    let console = if tty {
        Some(ConsoleSocket::bind(console_path)?)
    } else {
        None
    };
    let (child, pipe_ends) = if tty {
        (stdio::null_child()?, None)
    } else {
        let (c, e) = stdio::pipes(stdin)?;
        (c, Some(e))
    };
    // 2. Install them, lift the SIGCHLD block, call the runtime, undo both.
    child.install()?;
    sigchld()
        .thread_unblock()
        .map_err(LaunchError::SignalMask)?;
    let result = call(console.as_ref().map(ConsoleSocket::path));
    let block = sigchld().thread_block();
    let restore = stdio::null_stdio();
    drop(child);
    let started = result?;
    block.map_err(LaunchError::SignalMask)?;
    restore?;
    // 3. The shim's ends: the pipes, or the pty master the container sent.
    let ends = match (console, pipe_ends) {
        (Some(console), _) => {
            let mut ends = match console.receive() {
                Ok(ends) => ends,
                Err(e) => {
                    // A process without its terminal is useless: end it.
                    if let Some(pid) = rustix::process::Pid::from_raw(started.pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    return Err(e.into());
                }
            };
            if !stdin {
                ends.stdin = None;
            }
            ends
        }
        (None, Some(ends)) => ends,
        (None, None) => ShimEnds::default(),
    };
    Ok(Launched {
        pid: started.pid,
        ends,
    })
}
