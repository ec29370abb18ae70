//! Leaving the daemon: the launched process forks the real shim and exits
//! once that shim reports readiness, so the shim is never the daemon's child
//! and survives it.
//!
//! 1. A pipe carries one status line from the shim to the launcher: `ok`,
//!    or `error: <reason>`.
//! 2. `clone_process` (fork mode; the process is still single-threaded).
//! 3. The launcher reads the line and exits 0, or prints the reason on
//!    stderr and exits 1. It stops at the newline rather than at end of
//!    file: the container's init inherits the pipe until it execs.
//! 4. The shim calls `setsid`, leaving the daemon's session and process group.

use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::pipe::{PipeFlags, pipe_with};
use wharf_sys::process::{CloneResult, clone_process};

/// The shim's end of the readiness pipe.
#[derive(Debug)]
pub struct Ready(OwnedFd);

impl Ready {
    /// Tells the launcher the shim serves.
    pub fn ok(self) {
        let _ = rustix::io::write(&self.0, b"ok\n");
    }

    /// Tells the launcher why the shim gives up.
    pub fn fail(self, reason: &str) {
        let line = format!("error: {}\n", reason.replace('\n', "; "));
        let _ = rustix::io::write(&self.0, line.as_bytes());
    }
}

/// Forks; returns in the shim, never in the launcher.
pub fn detach() -> io::Result<Ready> {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC)?;
    match clone_process(0, None)? {
        CloneResult::Child => {
            drop(r);
            rustix::process::setsid()?;
            Ok(Ready(w))
        }
        CloneResult::Parent { .. } => {
            drop(w);
            std::process::exit(launcher_status(std::fs::File::from(r)))
        }
    }
}

fn launcher_status(mut pipe: std::fs::File) -> i32 {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if line.contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&line);
    let text = text.lines().next().unwrap_or("");
    if text == "ok" {
        return 0;
    }
    let reason = text
        .strip_prefix("error: ")
        .unwrap_or("the shim exited during setup");
    eprintln!("wharf-shim: {reason}");
    1
}
