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

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signalfd::{SfdFlags, SignalFd};
use oci_spec::runtime::{LinuxResources, Process};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::SendFlags;
use rustix::process::WaitOptions;
use tracing::{debug, info, warn};
use wharf_runtime::{ExecOptions, Runtime, RuntimeError};
use wharf_shim_api::protocol::{MAX_REQUEST_LINE, encode_frame};
use wharf_shim_api::time::now_rfc3339_nano;
use wharf_shim_api::{
    ErrorKind, ExecInfo, ExecStatus, ExitStatus, Reply, Request, ShimState, Status, StreamKind,
    layout,
};

use crate::launch::{self, sigchld};
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

fn runtime_reply(e: &RuntimeError) -> Reply {
    let kind = match e {
        RuntimeError::WrongState(_) => ErrorKind::Conflict,
        RuntimeError::Invalid(_) => ErrorKind::InvalidArgument,
        RuntimeError::State(wharf_runtime::state::StateError::NotFound(_)) => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    };
    Reply::error(kind, wharf_runtime::init::chain(e))
}

fn exit_code(st: rustix::process::WaitStatus) -> Option<i32> {
    st.exit_status()
        .or_else(|| st.terminating_signal().map(|s| 128 + s))
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

    // ---- processes: reaping, output, input, finishing ----

    fn reap(&mut self) {
        loop {
            // `wait` is waitpid(-1): any child, whatever its process group
            // (a container with a terminal runs in a session of its own).
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, st))) => {
                    if let Some(code) = exit_code(st) {
                        self.record_exit(pid.as_raw_nonzero().get(), code);
                    }
                }
                Ok(None) | Err(Errno::CHILD) => return,
                Err(Errno::INTR) => {}
                Err(e) => {
                    warn!(error = %e, "waitpid");
                    return;
                }
            }
        }
    }

    fn record_exit(&mut self, pid: i32, code: i32) {
        let status = ExitStatus {
            exit_code: code,
            exited_at: now_rfc3339_nano(),
            oom_killed: false,
        };
        for t in self.targets() {
            if let Some(p) = self.proc_mut(&t)
                && p.pid == Some(pid)
                && p.exit.is_none()
            {
                info!(
                    pid,
                    exit_code = code,
                    exec_id = t.as_deref(),
                    "process exited"
                );
                p.exit = Some(status);
                p.reaped_at = Some(Instant::now());
                return;
            }
        }
        debug!(pid, exit_code = code, "reaped an orphan");
    }

    fn read_output(&mut self, t: &Target, kind: StreamKind) {
        let Some(p) = self.proc_mut(t) else { return };
        let slot = match kind {
            StreamKind::Stderr => &mut p.ends.stderr,
            _ => &mut p.ends.stdout,
        };
        let Some(fd) = slot else { return };
        let mut buf = vec![0u8; READ_CHUNK];
        match rustix::io::read(&*fd, &mut buf) {
            Ok(0) | Err(Errno::IO) => {
                // End of stream (EIO: the pty has no slave left).
                *slot = None;
                if t.is_none() {
                    self.log_flush(kind);
                }
            }
            Ok(n) => self.output(t, kind, &buf[..n]),
            Err(Errno::WOULDBLOCK | Errno::INTR) => {}
            Err(e) => {
                warn!(error = %e, exec_id = t.as_deref(), "reading process output");
                *slot = None;
            }
        }
    }

    fn output(&mut self, t: &Target, kind: StreamKind, data: &[u8]) {
        if t.is_none() {
            let mut lines = Vec::new();
            self.log_lines[usize::from(kind == StreamKind::Stderr)].feed(data, &mut lines);
            self.log_write(kind, &lines);
        }
        let mut frame = Vec::with_capacity(data.len() + 8);
        encode_frame(kind, data, &mut frame);
        for c in self.conns.values_mut() {
            if let Mode::Attached {
                target,
                stdout,
                stderr,
                ..
            } = &c.mode
                && target == t
                && (if kind == StreamKind::Stderr {
                    *stderr
                } else {
                    *stdout
                })
            {
                c.send(&frame);
            }
        }
    }

    fn log_flush(&mut self, kind: StreamKind) {
        let mut lines = Vec::new();
        self.log_lines[usize::from(kind == StreamKind::Stderr)].flush(&mut lines);
        self.log_write(kind, &lines);
    }

    fn log_write(&mut self, kind: StreamKind, lines: &[Vec<u8>]) {
        if lines.is_empty() {
            return;
        }
        match self.log.write_lines(kind, lines, &now_rfc3339_nano()) {
            Ok(()) => self.log_failed = false,
            Err(e) if !self.log_failed => {
                // Reported once per failure streak; the container keeps running.
                self.log_failed = true;
                warn!(error = %wharf_runtime::init::chain(&e), "writing the container log");
            }
            Err(_) => {}
        }
    }

    fn write_stdin(&mut self, t: &Target) {
        let Some(p) = self.proc_mut(t) else { return };
        let Some(fd) = &p.ends.stdin else {
            p.stdin_buf.clear();
            return;
        };
        while !p.stdin_buf.is_empty() {
            match rustix::io::write(fd, &p.stdin_buf) {
                Ok(n) => {
                    p.stdin_buf.drain(..n);
                }
                Err(Errno::WOULDBLOCK) => return,
                Err(Errno::INTR) => {}
                Err(e) => {
                    // EPIPE: the process closed its stdin.
                    debug!(error = %e, "writing process stdin");
                    p.stdin_buf.clear();
                    p.ends.stdin = None;
                    return;
                }
            }
        }
        if p.close_stdin {
            p.ends.stdin = None;
        }
    }

    fn feed_stdin(&mut self, t: &Target, data: &[u8]) {
        if let Some(p) = self.proc_mut(t)
            && p.ends.stdin.is_some()
            && !p.close_stdin
        {
            p.stdin_buf.extend_from_slice(data);
            self.write_stdin(t);
        }
    }

    fn close_stdin(&mut self, t: &Target) {
        if let Some(p) = self.proc_mut(t)
            && p.ends.stdin.is_some()
            && !p.close_stdin
        {
            if p.tty {
                // A terminal has no half-close: send end-of-file (^D).
                p.stdin_buf.push(0x04);
            }
            p.close_stdin = true;
            self.write_stdin(t);
        }
    }

    /// Reads whatever output is available without waiting (before a
    /// forced finish).
    fn drain_outputs(&mut self, t: &Target) {
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        for kind in [StreamKind::Stdout, StreamKind::Stderr] {
            for _ in 0..256 {
                let ready = {
                    let Some(p) = self.proc_ref(t) else { return };
                    let fd = match kind {
                        StreamKind::Stderr => p.ends.stderr.as_ref(),
                        _ => p.ends.stdout.as_ref(),
                    };
                    let Some(fd) = fd else { break };
                    let mut pfd = [PollFd::new(fd, PollFlags::IN)];
                    matches!(rustix::event::poll(&mut pfd, Some(&zero)), Ok(n) if n > 0)
                };
                if !ready {
                    break;
                }
                self.read_output(t, kind);
            }
        }
    }

    /// Finishes every reaped process whose output is drained (or whose
    /// grace period is over; with `force`, every reaped process).
    fn finish_ready(&mut self, force: bool) {
        for t in self.targets() {
            let Some(p) = self.proc_ref(&t) else { continue };
            let Some(at) = p.reaped_at else { continue };
            if p.finished {
                continue;
            }
            let drained = p.ends.stdout.is_none() && p.ends.stderr.is_none();
            if drained || force || at.elapsed() >= DRAIN_GRACE {
                self.finish(&t);
            }
        }
    }

    fn finish(&mut self, t: &Target) {
        self.drain_outputs(t);
        if t.is_none() {
            self.log_flush(StreamKind::Stdout);
            self.log_flush(StreamKind::Stderr);
        }
        let oom = t.is_none() && self.oom_killed();
        let Some(p) = self.proc_mut(t) else { return };
        let Some(mut status) = p.exit.clone() else {
            return;
        };
        status.oom_killed = oom;
        p.exit = Some(status.clone());
        p.finished = true;
        p.ends = ShimEnds::default();
        p.stdin_buf.clear();
        if t.is_none() {
            self.paused = false;
            if let Err(e) = layout::write_exit(&self.settings.state_dir, &status) {
                warn!(error = %wharf_runtime::init::chain(&e), "writing exit.json");
            }
        }
        let reply = Reply::ok(&status).to_line();
        for c in self.conns.values_mut() {
            match &c.mode {
                Mode::Waiting(w) if w == t => {
                    c.send(&reply);
                    c.mode = Mode::Closing;
                }
                Mode::Attached { target, .. } if target == t => c.mode = Mode::Closing,
                _ => {}
            }
        }
    }

    fn oom_killed(&self) -> bool {
        self.rt
            .stats(&self.settings.id)
            .ok()
            .and_then(|s| s.memory)
            .is_some_and(|m| m.oom_kill > 0)
    }

    // ---- connections ----

    fn read_conn(&mut self, id: u64, revents: PollFlags) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.read_eof {
            // Nothing more to read; a hang-up means the peer is gone.
            if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
                c.dead = true;
            }
            return;
        }
        let mut buf = vec![0u8; READ_CHUNK];
        let n = match c.stream.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return;
            }
            Err(_) => {
                c.dead = true;
                return;
            }
        };
        if n == 0 {
            c.read_eof = true;
            match &c.mode {
                Mode::Request | Mode::Waiting(_) => c.dead = true,
                Mode::Attached { target, stdin, .. } => {
                    let (target, stdin) = (target.clone(), *stdin);
                    if stdin && (target.is_some() || self.settings.stdin_once) {
                        self.close_stdin(&target);
                    }
                }
                Mode::Closing => {}
            }
            return;
        }
        let data = &buf[..n];
        match &c.mode {
            Mode::Request => {
                c.inbuf.extend_from_slice(data);
                if let Some(i) = c.inbuf.iter().position(|&b| b == b'\n') {
                    let rest = c.inbuf.split_off(i + 1);
                    let line = std::mem::replace(&mut c.inbuf, rest);
                    self.request(id, &line);
                } else if c.inbuf.len() > MAX_REQUEST_LINE {
                    c.send(
                        &Reply::error(ErrorKind::InvalidArgument, "request line too long")
                            .to_line(),
                    );
                    c.mode = Mode::Closing;
                }
            }
            Mode::Attached {
                target,
                stdin: true,
                ..
            } => {
                let target = target.clone();
                let data = data.to_vec();
                self.feed_stdin(&target, &data);
            }
            _ => {}
        }
    }

    fn tidy_conns(&mut self) {
        self.conns
            .retain(|_, c| !(c.dead || matches!(c.mode, Mode::Closing) && c.outbuf.is_empty()));
    }

    /// Before exiting: gives every client up to a second to take its bytes.
    fn final_flush(&mut self) {
        for c in self.conns.values_mut() {
            if c.dead || c.outbuf.is_empty() {
                continue;
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = c.stream.write_all(&c.outbuf);
        }
        self.conns.clear();
    }

    fn request(&mut self, id: u64, line: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.reply(
                    id,
                    Reply::error(ErrorKind::InvalidArgument, format!("bad request: {e}")),
                );
                return;
            }
        };
        let span = tracing::debug_span!("request", container_id = %self.settings.id);
        let _g = span.enter();
        debug!(?req, "request");
        match req {
            Request::Wait { exec_id } => self.wait(id, exec_id),
            Request::Attach {
                exec_id,
                stdin,
                stdout,
                stderr,
            } => self.attach(id, exec_id, stdin, stdout, stderr),
            other => {
                let reply = self.simple(other);
                self.reply(id, reply);
            }
        }
    }

    fn reply(&mut self, id: u64, reply: Reply) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.send(&reply.to_line());
            c.mode = Mode::Closing;
        }
    }

    fn wait(&mut self, id: u64, exec_id: Target) {
        let Some(p) = self.proc_ref(&exec_id) else {
            self.reply(id, not_found(&exec_id));
            return;
        };
        match (&p.exit, p.finished) {
            (Some(st), true) => {
                let r = Reply::ok(st);
                self.reply(id, r);
            }
            _ => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.mode = Mode::Waiting(exec_id);
                }
            }
        }
    }

    fn attach(&mut self, id: u64, target: Target, stdin: bool, stdout: bool, stderr: bool) {
        let Some(p) = self.proc_ref(&target) else {
            self.reply(id, not_found(&target));
            return;
        };
        let finished = p.finished;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.send(&Reply::ok(&()).to_line());
        if finished {
            c.mode = Mode::Closing;
            return;
        }
        c.mode = Mode::Attached {
            target: target.clone(),
            stdin,
            stdout,
            stderr,
        };
        // Bytes that came with the request line are already input.
        let early = std::mem::take(&mut c.inbuf);
        if stdin && !early.is_empty() {
            self.feed_stdin(&target, &early);
        }
    }

    fn simple(&mut self, req: Request) -> Reply {
        let id = self.settings.id.clone();
        match req {
            Request::Start => {
                if self.started {
                    return Reply::error(ErrorKind::Conflict, "container already started");
                }
                if self.init.exit.is_some() {
                    return Reply::error(ErrorKind::Conflict, "container init has exited");
                }
                match self.rt.start(&id) {
                    Ok(()) => {
                        self.started = true;
                        self.init.started_at = Some(now_rfc3339_nano());
                        info!(container_id = %id, "started");
                        Reply::ok(&())
                    }
                    Err(e) => runtime_reply(&e),
                }
            }
            Request::State => Reply::ok(&self.state()),
            Request::Kill { signal, all } => match self.rt.kill(&id, signal, all) {
                Ok(()) => Reply::ok(&()),
                Err(e) => runtime_reply(&e),
            },
            Request::Exec {
                exec_id,
                process,
                tty,
                stdin,
            } => self.exec_register(exec_id, *process, tty, stdin),
            Request::ExecStart { exec_id } => self.exec_start(&exec_id),
            Request::ExecState { exec_id } => match self.execs.get(&exec_id) {
                None => not_found(&Some(exec_id)),
                Some(e) => Reply::ok(&ExecInfo {
                    exec_id: exec_id.clone(),
                    status: match (&e.proc_.pid, e.proc_.finished) {
                        (None, _) => ExecStatus::Created,
                        (Some(_), false) => ExecStatus::Running,
                        (Some(_), true) => ExecStatus::Exited,
                    },
                    pid: e.proc_.pid,
                    exit_code: e.proc_.exit.as_ref().map(|s| s.exit_code),
                    tty: e.proc_.tty,
                    stdin: e.stdin,
                }),
            },
            Request::ResizePty {
                exec_id,
                rows,
                cols,
            } => self.resize(&exec_id, rows, cols),
            Request::CloseStdin { exec_id } => {
                if self.proc_ref(&exec_id).is_none() {
                    return not_found(&exec_id);
                }
                self.close_stdin(&exec_id);
                Reply::ok(&())
            }
            Request::Pause => match self.rt.pause(&id) {
                Ok(()) => {
                    self.paused = true;
                    Reply::ok(&())
                }
                Err(e) => runtime_reply(&e),
            },
            Request::Resume => match self.rt.resume(&id) {
                Ok(()) => {
                    self.paused = false;
                    Reply::ok(&())
                }
                Err(e) => runtime_reply(&e),
            },
            Request::Stats => match self.rt.stats(&id) {
                Ok(s) => Reply::ok(&s),
                Err(e) => runtime_reply(&e),
            },
            Request::Update { resources } => self.update(&resources),
            Request::Delete { force } => self.delete(force),
            Request::Shutdown => {
                if self.init.exit.is_none() {
                    return Reply::error(
                        ErrorKind::Conflict,
                        format!("container {id} is still alive: delete it first"),
                    );
                }
                self.exiting = true;
                Reply::ok(&())
            }
            Request::Wait { .. } | Request::Attach { .. } => {
                Reply::error(ErrorKind::Internal, "misrouted request")
            }
        }
    }

    fn state(&self) -> ShimState {
        let status = if self.init.exit.is_some() {
            Status::Stopped
        } else if !self.started {
            Status::Created
        } else if self.paused {
            Status::Paused
        } else {
            Status::Running
        };
        let exit = self.init.exit.as_ref();
        ShimState {
            id: self.settings.id.clone(),
            status,
            pid: self.init.pid.unwrap_or(0),
            shim_pid: rustix::process::getpid().as_raw_nonzero().get(),
            exit_code: exit.map(|e| e.exit_code),
            started_at: self.init.started_at.clone(),
            finished_at: exit.map(|e| e.exited_at.clone()),
            oom_killed: exit.is_some_and(|e| e.oom_killed),
        }
    }

    fn exec_register(
        &mut self,
        exec_id: String,
        mut process: Process,
        tty: bool,
        stdin: bool,
    ) -> Reply {
        if self.execs.contains_key(&exec_id) {
            return Reply::error(
                ErrorKind::Conflict,
                format!("exec {exec_id} already exists"),
            );
        }
        if self.init.exit.is_some() {
            return Reply::error(ErrorKind::Conflict, "container is not running");
        }
        if process.args().as_ref().is_none_or(Vec::is_empty) {
            return Reply::error(ErrorKind::InvalidArgument, "exec process has no args");
        }
        process.set_terminal(Some(tty));
        self.execs.insert(
            exec_id,
            Exec {
                proc_: Proc {
                    tty,
                    ..Proc::default()
                },
                process,
                stdin,
            },
        );
        Reply::ok(&())
    }

    fn exec_start(&mut self, exec_id: &str) -> Reply {
        let Some(ex) = self.execs.get(exec_id) else {
            return not_found(&Some(exec_id.to_owned()));
        };
        if ex.proc_.pid.is_some() {
            return Reply::error(
                ErrorKind::Conflict,
                format!("exec {exec_id} already started"),
            );
        }
        if self.init.exit.is_some() {
            return Reply::error(ErrorKind::Conflict, "container is not running");
        }
        let (process, tty, stdin) = (ex.process.clone(), ex.proc_.tty, ex.stdin);
        self.next_console += 1;
        let console = self
            .settings
            .state_dir
            .join(format!("exec-{}.sock", self.next_console));
        let rt = &self.rt;
        let id = &self.settings.id;
        let result = launch::launch(tty, stdin, &console, |console_socket| {
            rt.exec(
                id,
                &ExecOptions {
                    process,
                    console_socket: console_socket.map(|p| p.to_owned()),
                    pid_file: None,
                    preserve_fds: 0,
                },
            )
        });
        self.reap_needed = true;
        match result {
            Ok(l) => {
                let ex = self.execs.get_mut(exec_id).expect("looked up above");
                ex.proc_.pid = Some(l.pid);
                ex.proc_.ends = l.ends;
                ex.proc_.started_at = Some(now_rfc3339_nano());
                info!(exec_id, pid = l.pid, "exec started");
                Reply::ok(&l.pid)
            }
            Err(crate::launch::LaunchError::Runtime(e)) => runtime_reply(&e),
            Err(e) => Reply::error(ErrorKind::Internal, wharf_runtime::init::chain(&e)),
        }
    }

    fn resize(&mut self, t: &Target, rows: u16, cols: u16) -> Reply {
        let Some(p) = self.proc_ref(t) else {
            return not_found(t);
        };
        let Some(pty) = &p.ends.pty else {
            return Reply::error(ErrorKind::Conflict, "the process has no terminal");
        };
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        match rustix::termios::tcsetwinsize(pty, ws) {
            Ok(()) => Reply::ok(&()),
            Err(e) => Reply::error(ErrorKind::Internal, format!("setting the window size: {e}")),
        }
    }

    fn update(&mut self, resources: &LinuxResources) -> Reply {
        let rec = match self.rt.load(&self.settings.id) {
            Ok(r) => r,
            Err(e) => return runtime_reply(&e),
        };
        let result = wharf_cgroups::CgroupSetup::detect()
            .and_then(|setup| wharf_cgroups::manager(&setup, &rec.cgroups_path))
            .and_then(|cg| cg.set(resources));
        match result {
            Ok(()) => Reply::ok(&()),
            Err(e) => Reply::error(ErrorKind::InvalidArgument, wharf_runtime::init::chain(&e)),
        }
    }

    fn delete(&mut self, force: bool) -> Reply {
        // The OOM counter lives in the cgroup, which delete removes.
        let oom = !self.init.finished && self.oom_killed();
        if let Err(e) = self.rt.delete(&self.settings.id, force) {
            return runtime_reply(&e);
        }
        info!(container_id = %self.settings.id, "deleted");
        // Every process of the container is dead now: reap them.
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            self.reap();
            let pending = self
                .targets()
                .iter()
                .filter_map(|t| self.proc_ref(t))
                .any(|p| p.pid.is_some() && p.exit.is_none());
            if !pending || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for t in self.targets() {
            if let Some(p) = self.proc_mut(&t)
                && p.exit.is_none()
            {
                // Never started (or not reaped in time): killed by delete.
                p.exit = Some(ExitStatus {
                    exit_code: 128 + libc::SIGKILL,
                    exited_at: now_rfc3339_nano(),
                    oom_killed: false,
                });
                p.reaped_at = Some(Instant::now());
            }
        }
        self.finish_ready(true);
        if oom
            && let Some(st) = &mut self.init.exit
            && !st.oom_killed
        {
            st.oom_killed = true;
            let _ = layout::write_exit(&self.settings.state_dir, st);
        }
        self.exiting = true;
        Reply::ok(&())
    }
}

fn not_found(t: &Target) -> Reply {
    match t {
        Some(id) => Reply::error(ErrorKind::NotFound, format!("no such exec: {id}")),
        None => Reply::error(ErrorKind::NotFound, "no such process"),
    }
}
