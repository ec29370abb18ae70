//! Running a command with a time limit, capturing its output in memory files.
//!
//! stdout and stderr go to `memfd`s rather than pipes: a container started by
//! `create` or a daemonised helper inherits them and may keep them open long
//! after the command exits, which would make a pipe reader wait forever. The
//! command's exit is watched through a pidfd, so the time limit needs no
//! polling loop; on expiry the command is killed and reaped.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{MemfdFlags, memfd_create};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// Default time limit for one runtime command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors from running a bounded command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("failed to create an output file for {program}")]
    OutputFile {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to start {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to wait for {program}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{command} did not finish within {timeout:?} and was killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Timeout {
        command: String,
        timeout: Duration,
        stdout: String,
        stderr: String,
    },
}

/// A memory file to hand to a child as stdout or stderr, readable afterwards.
#[derive(Debug)]
pub struct Capture {
    file: File,
}

impl Capture {
    /// A new empty capture file (close-on-exec in this process; the child
    /// gets its own duplicate through [`Capture::stdio`]).
    pub fn new() -> io::Result<Capture> {
        let fd = memfd_create("wharf-testkit-output", MemfdFlags::CLOEXEC)?;
        Ok(Capture {
            file: File::from(fd),
        })
    }

    /// A duplicate of the file as a child's stdio.
    pub fn stdio(&self) -> io::Result<Stdio> {
        Ok(Stdio::from(self.file.try_clone()?))
    }

    /// Everything written so far.
    pub fn contents(&self) -> io::Result<Vec<u8>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// [`Capture::contents`] as (lossy) text; an unreadable memfd reads as an
    /// explanatory line rather than failing the caller.
    pub fn text(&self) -> String {
        match self.contents() {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => format!("<capture unreadable: {err}>"),
        }
    }
}

/// Runs `cmd` with stdin from `/dev/null` and stdout/stderr captured, killing
/// it after `timeout`. Returns its output whatever its exit status.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output, CommandError> {
    let out = Capture::new().map_err(|source| output_err(cmd, source))?;
    let err = Capture::new().map_err(|source| output_err(cmd, source))?;
    let out_stdio = out.stdio().map_err(|source| output_err(cmd, source))?;
    let err_stdio = err.stdio().map_err(|source| output_err(cmd, source))?;
    cmd.stdin(Stdio::null()).stdout(out_stdio).stderr(err_stdio);
    let status = wait_bounded(cmd, timeout, &out, &err)?;
    Ok(Output {
        status,
        stdout: out.contents().map_err(|source| output_err(cmd, source))?,
        stderr: err.contents().map_err(|source| output_err(cmd, source))?,
    })
}

/// Spawns `cmd` (stdio already configured) and waits at most `timeout` for it;
/// `out`/`err` only feed the timeout message.
pub fn wait_bounded(
    cmd: &mut Command,
    timeout: Duration,
    out: &Capture,
    err: &Capture,
) -> Result<ExitStatus, CommandError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().map_err(|source| CommandError::Spawn {
        program: program.clone(),
        source,
    })?;
    let wait_err = |source| CommandError::Wait {
        program: program.clone(),
        source,
    };
    let pid = Pid::from_child(&child);
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).map_err(|e| wait_err(e.into()))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CommandError::Timeout {
                command: describe_command(cmd),
                timeout,
                stdout: out.text(),
                stderr: err.text(),
            });
        }
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => return child.wait().map_err(wait_err),
            Err(e) => return Err(wait_err(e.into())),
        }
    }
}

fn output_err(cmd: &Command, source: io::Error) -> CommandError {
    CommandError::OutputFile {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    }
}

/// `program arg1 arg2 ...` for messages.
pub fn describe_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_both_streams_and_status() {
        let out = run_bounded(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn background_holder_of_stdout_does_not_block() {
        let start = Instant::now();
        let out = run_bounded(
            Command::new("/bin/sh").args(["-c", "sleep 3 & echo started"]),
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"started\n");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "waited for the background sleep"
        );
    }

    #[test]
    fn timeout_kills_the_command() {
        let start = Instant::now();
        let err = run_bounded(
            Command::new("/bin/sh").args(["-c", "echo partial; exec sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        match err {
            CommandError::Timeout { stdout, .. } => assert_eq!(stdout, "partial\n"),
            other => panic!("expected a timeout, got {other}"),
        }
    }
}
