//! The standard streams of the processes the shim starts.
//!
//! The runtime's `create` and `exec` children inherit the shim's fds 0-2,
//! so the shim installs the child's ends there just for the call
//! ([`ChildStdio::install`]) and puts `/dev/null` back afterwards
//! ([`null_stdio`]): outside those calls the shim's own stdio is
//! `/dev/null`, never a descriptor of the daemon.
//!
//! Without a terminal each stream is a pipe (stdin is `/dev/null` unless
//! the process keeps stdin open). With a terminal the runtime connects to a
//! console socket and the container sends the pty master over it
//! (`SCM_RIGHTS`); [`ConsoleSocket`] is that socket's listening end.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::pipe::{PipeFlags, pipe_with};

/// Errors preparing stdio.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("{op} failed")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("console socket {path}")]
    Console {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("console socket {path}: the container sent no terminal")]
    NoTerminal { path: PathBuf },
}

fn sys(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> StdioError {
    move |e| StdioError::Sys {
        op,
        source: e.into(),
    }
}

/// The shim's ends of a process's streams (all non-blocking).
#[derive(Debug, Default)]
pub struct ShimEnds {
    /// Write end of the process's stdin (or a duplicate of the pty master).
    pub stdin: Option<OwnedFd>,
    /// Read end of stdout (or the pty master).
    pub stdout: Option<OwnedFd>,
    /// Read end of stderr (none with a terminal).
    pub stderr: Option<OwnedFd>,
    /// The pty master, for window size changes.
    pub pty: Option<OwnedFd>,
}

/// The process's ends, installed as fds 0-2 around the runtime call.
#[derive(Debug)]
pub struct ChildStdio {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

fn dev_null(flags: OFlags) -> Result<OwnedFd, StdioError> {
    rustix::fs::open("/dev/null", flags | OFlags::CLOEXEC, Mode::empty())
        .map_err(sys("open /dev/null"))
}

fn nonblocking(fd: &OwnedFd) -> Result<(), StdioError> {
    rustix::io::ioctl_fionbio(fd, true).map_err(sys("set O_NONBLOCK"))
}

/// Pipes for a process without a terminal; stdin is `/dev/null` unless
/// `stdin` is set.
pub fn pipes(stdin: bool) -> Result<(ChildStdio, ShimEnds), StdioError> {
    let (child_in, shim_in) = if stdin {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC).map_err(sys("pipe"))?;
        nonblocking(&w)?;
        (r, Some(w))
    } else {
        (dev_null(OFlags::RDONLY)?, None)
    };
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).map_err(sys("pipe"))?;
    let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC).map_err(sys("pipe"))?;
    nonblocking(&out_r)?;
    nonblocking(&err_r)?;
    Ok((
        ChildStdio {
            stdin: child_in,
            stdout: out_w,
            stderr: err_w,
        },
        ShimEnds {
            stdin: shim_in,
            stdout: Some(out_r),
            stderr: Some(err_r),
            pty: None,
        },
    ))
}

/// `/dev/null` for all three streams (a process with a terminal gets its
/// pty from the runtime instead).
pub fn null_child() -> Result<ChildStdio, StdioError> {
    Ok(ChildStdio {
        stdin: dev_null(OFlags::RDONLY)?,
        stdout: dev_null(OFlags::WRONLY)?,
        stderr: dev_null(OFlags::WRONLY)?,
    })
}

impl ChildStdio {
    /// Makes these the calling process's fds 0, 1 and 2.
    pub fn install(&self) -> Result<(), StdioError> {
        rustix::stdio::dup2_stdin(self.stdin.as_fd()).map_err(sys("dup2 stdin"))?;
        rustix::stdio::dup2_stdout(self.stdout.as_fd()).map_err(sys("dup2 stdout"))?;
        rustix::stdio::dup2_stderr(self.stderr.as_fd()).map_err(sys("dup2 stderr"))?;
        Ok(())
    }
}

/// Points fds 0-2 at `/dev/null`.
pub fn null_stdio() -> Result<(), StdioError> {
    null_child()?.install()
}

/// The listening end of a console socket; the file is removed on drop.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens at `path` (a stale file there is replaced).
    pub fn bind(path: &Path) -> Result<ConsoleSocket, StdioError> {
        let err = |source| StdioError::Console {
            path: path.to_owned(),
            source,
        };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After the runtime call returned: accepts the runtime's connection
    /// and receives the pty master (non-blocking on return).
    pub fn receive(self) -> Result<ShimEnds, StdioError> {
        let err = |source| StdioError::Console {
            path: self.path.clone(),
            source,
        };
        // The runtime connected (and the container sent the master) before
        // the call returned: a connection that is not queued means failure.
        self.listener.set_nonblocking(true).map_err(err)?;
        let (stream, _) = self.listener.accept().map_err(err)?;
        stream.set_nonblocking(false).map_err(err)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(err)?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut name = [0u8; 4096];
        rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut name)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| err(e.into()))?;
        let master = anc
            .drain()
            .find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .ok_or_else(|| StdioError::NoTerminal {
                path: self.path.clone(),
            })?;
        nonblocking(&master)?;
        let input = rustix::io::fcntl_dupfd_cloexec(&master, 3).map_err(sys("dup pty master"))?;
        let pty = rustix::io::fcntl_dupfd_cloexec(&master, 3).map_err(sys("dup pty master"))?;
        Ok(ShimEnds {
            stdin: Some(input),
            stdout: Some(master),
            stderr: None,
            pty: Some(pty),
        })
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
