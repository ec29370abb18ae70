//! The shim's event loop: one thread, one `poll(2)` over every descriptor
//! the shim owns.
//!
//! Descriptors: the listening socket, a signalfd for `SIGCHLD`, the output
//! ends (stdout/stderr pipes or pty master) and stdin ends of the init and
//! of each exec process, and the client connections. Each iteration reaps
//! exited children (`waitpid(-1)`: the shim is a subreaper and owns no
//! other children), finishes processes whose output is drained, builds the
//! poll set, waits, and handles what is ready. Nothing blocks except the
//! runtime calls themselves (start, exec, kill, delete), which are short.
//!
//! Flow control: output of a process is not read while one of its attached
//! clients has more than [`MAX_CLIENT_BACKLOG`] bytes unsent (so a slow
//! attach client slows the container, as with Docker); input from clients
//! is not read while the process's stdin has more than [`MAX_STDIN_BACKLOG`]
//! bytes pending.
//!
//! A process is *finished* once it was reaped and its output reached end of
//! file (or [`DRAIN_GRACE`] passed, when some other process still holds the
//! stream): then its waiters get their reply, its attach streams close, and
//! for the init `exit.json` is written.
//!
//! Submodules: [`procs`] (reaping, output, stdin, finishing), [`requests`]
//! (connections and the protocol's requests).

mod procs;
mod requests;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signalfd::{SfdFlags, SignalFd};
use oci_spec::runtime::Process;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::SendFlags;
use tracing::warn;
use wharf_runtime::Runtime;
use wharf_shim_api::{ExitStatus, StreamKind};

use crate::launch::sigchld;
use crate::logfile::{JsonLog, LineSplitter};
use crate::stdio::ShimEnds;

/// Unsent bytes an attached client may accumulate before the process's
/// output is no longer read.
pub const MAX_CLIENT_BACKLOG: usize = 1 << 20;
/// Pending stdin bytes before clients' input is no longer read.
pub const MAX_STDIN_BACKLOG: usize = 1 << 20;
/// How long after a process exited its output may stay open.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 32 * 1024;

/// Errors that end the event loop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("poll failed")]
    Poll(#[source] io::Error),
    #[error("creating the SIGCHLD signalfd failed")]
    SignalFd(#[source] nix::Error),
}

/// `None` is the container's init, `Some(id)` an exec process.
type Target = Option<String>;

/// A process and the shim's ends of its streams.
#[derive(Debug, Default)]
struct Proc {
    pid: Option<i32>,
    started_at: Option<String>,
    /// Set when reaped (`oom_killed` is filled in when finished).
    exit: Option<ExitStatus>,
    reaped_at: Option<Instant>,
    finished: bool,
    ends: ShimEnds,
    stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written.
    close_stdin: bool,
    tty: bool,
}

#[derive(Debug)]
struct Exec {
    proc_: Proc,
    process: Process,
    stdin: bool,
}

#[derive(Debug)]
enum Mode {
    /// Reading the request line.
    Request,
    /// Waiting for the target to finish, then replying.
    Waiting(Target),
    /// Streaming.
    Attached {
        target: Target,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Sending what is left, then closing.
    Closing,
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    mode: Mode,
    read_eof: bool,
    dead: bool,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) {
        self.outbuf.extend_from_slice(bytes);
        self.flush();
    }

    fn flush(&mut self) {
        while !self.outbuf.is_empty() && !self.dead {
            match rustix::net::send(
                &self.stream,
                &self.outbuf,
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(Errno::WOULDBLOCK) => return,
                Err(Errno::INTR) => {}
                Err(_) => self.dead = true,
            }
        }
    }

    fn attached_to(&self, t: &Target) -> bool {
        matches!(&self.mode, Mode::Attached { target, .. } if target == t)
    }
}

#[derive(Debug, Clone)]
enum Token {
    Listener,
    Signal,
    Output(Target, StreamKind),
    Stdin(Target),
    Conn(u64),
}

/// What the shim was started with (see `main`).
#[derive(Debug)]
pub struct Settings {
    pub id: String,
    pub state_dir: PathBuf,
    pub tty: bool,
    pub stdin_once: bool,
}

/// The shim's state.
pub struct Shim {
    rt: Runtime,
    settings: Settings,
    listener: UnixListener,
    sigfd: SignalFd,
    log: JsonLog,
    log_lines: [LineSplitter; 2],
    log_failed: bool,
    /// The buffer container output is read into.
    read_buf: Vec<u8>,
    init: Proc,
    started: bool,
    paused: bool,
    execs: BTreeMap<String, Exec>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    next_console: u32,
    reap_needed: bool,
    exiting: bool,
}

impl Shim {
    /// The shim around a created container whose init is `init_pid`.
    pub fn new(
        rt: Runtime,
        settings: Settings,
        listener: UnixListener,
        log: JsonLog,
        init_pid: i32,
        ends: ShimEnds,
    ) -> Result<Shim, ServerError> {
        // SIGCHLD is blocked (by `launch`) and read from this descriptor.
        sigchld().thread_block().map_err(ServerError::SignalFd)?;
        let sigfd =
            SignalFd::with_flags(&sigchld(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                .map_err(ServerError::SignalFd)?;
        let tty = settings.tty;
        Ok(Shim {
            rt,
            settings,
            listener,
            sigfd,
            log,
            log_lines: Default::default(),
            log_failed: false,
            read_buf: Vec::new(),
            init: Proc {
                pid: Some(init_pid),
                ends,
                tty,
                ..Proc::default()
            },
            started: false,
            paused: false,
            execs: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            next_console: 0,
            reap_needed: true,
            exiting: false,
        })
    }

    fn proc_ref(&self, t: &Target) -> Option<&Proc> {
        match t {
            None => Some(&self.init),
            Some(id) => self.execs.get(id).map(|e| &e.proc_),
        }
    }

    fn proc_mut(&mut self, t: &Target) -> Option<&mut Proc> {
        match t {
            None => Some(&mut self.init),
            Some(id) => self.execs.get_mut(id).map(|e| &mut e.proc_),
        }
    }

    fn targets(&self) -> Vec<Target> {
        std::iter::once(None)
            .chain(self.execs.keys().cloned().map(Some))
            .collect()
    }

    /// Serves until `Delete` or `Shutdown`.
    pub fn run(mut self) -> Result<(), ServerError> {
        loop {
            if self.reap_needed {
                self.reap_needed = false;
                self.reap();
            }
            self.finish_ready(false);
            self.tidy_conns();
            if self.exiting {
                self.final_flush();
                return Ok(());
            }
            let timeout = self.next_deadline();
            let ready = self.poll(timeout)?;
            for (token, revents) in ready {
                self.handle(token, revents);
            }
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.targets()
            .iter()
            .filter_map(|t| self.proc_ref(t))
            .filter(|p| !p.finished)
            .filter_map(|p| p.reaped_at)
            .map(|at| (at + DRAIN_GRACE).saturating_duration_since(Instant::now()))
            .min()
    }

    fn client_backlogged(&self, t: &Target) -> bool {
        self.conns
            .values()
            .any(|c| c.attached_to(t) && c.outbuf.len() > MAX_CLIENT_BACKLOG)
    }

    fn poll(&mut self, timeout: Option<Duration>) -> Result<Vec<(Token, PollFlags)>, ServerError> {
        let mut tokens = Vec::new();
        let mut fds = Vec::new();
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        tokens.push(Token::Listener);
        fds.push(PollFd::from_borrowed_fd(self.sigfd.as_fd(), PollFlags::IN));
        tokens.push(Token::Signal);
        for t in self.targets() {
            let Some(p) = self.proc_ref(&t) else { continue };
            if !self.client_backlogged(&t) {
                for (fd, kind) in [
                    (&p.ends.stdout, StreamKind::Stdout),
                    (&p.ends.stderr, StreamKind::Stderr),
                ] {
                    if let Some(fd) = fd {
                        fds.push(PollFd::new(fd, PollFlags::IN));
                        tokens.push(Token::Output(t.clone(), kind));
                    }
                }
            }
            if let Some(fd) = &p.ends.stdin
                && !p.stdin_buf.is_empty()
            {
                fds.push(PollFd::new(fd, PollFlags::OUT));
                tokens.push(Token::Stdin(t.clone()));
            }
        }
        for (id, c) in &self.conns {
            let mut flags = PollFlags::empty();
            if !c.outbuf.is_empty() {
                flags |= PollFlags::OUT;
            }
            let read = match &c.mode {
                Mode::Request | Mode::Waiting(_) => !c.read_eof,
                Mode::Attached { target, .. } => {
                    !c.read_eof
                        && self
                            .proc_ref(target)
                            .is_none_or(|p| p.stdin_buf.len() <= MAX_STDIN_BACKLOG)
                }
                Mode::Closing => false,
            };
            if read {
                flags |= PollFlags::IN;
            }
            fds.push(PollFd::new(&c.stream, flags));
            tokens.push(Token::Conn(*id));
        }
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(ServerError::Poll(e.into())),
        }
        Ok(tokens
            .into_iter()
            .zip(fds.iter().map(PollFd::revents))
            .filter(|(_, r)| !r.is_empty())
            .collect())
    }

    fn handle(&mut self, token: Token, revents: PollFlags) {
        match token {
            Token::Listener => self.accept(),
            Token::Signal => {
                while let Ok(Some(_)) = self.sigfd.read_signal() {}
                self.reap_needed = true;
            }
            Token::Output(t, kind) => self.read_output(&t, kind),
            Token::Stdin(t) => self.write_stdin(&t),
            Token::Conn(id) => {
                if revents.intersects(PollFlags::OUT)
                    && let Some(c) = self.conns.get_mut(&id)
                {
                    c.flush();
                }
                if revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                    self.read_conn(id, revents);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        warn!(error = %e, "client connection: set non-blocking");
                        continue;
                    }
                    self.next_conn += 1;
                    self.conns.insert(
                        self.next_conn,
                        Conn {
                            stream,
                            inbuf: Vec::new(),
                            outbuf: Vec::new(),
                            mode: Mode::Request,
                            read_eof: false,
                            dead: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, "accept on the shim socket");
                    return;
                }
            }
        }
    }
}
