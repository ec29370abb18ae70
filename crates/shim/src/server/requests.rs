//! Connections and requests: reading request lines, answering them, and
//! turning connections into wait or attach streams.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxResources, Process};
use rustix::event::PollFlags;
use tracing::{debug, info};
use wharf_runtime::{ExecOptions, RuntimeError};
use wharf_shim_api::protocol::MAX_REQUEST_LINE;
use wharf_shim_api::time::now_rfc3339_nano;
use wharf_shim_api::{
    ErrorKind, ExecInfo, ExecStatus, ExitStatus, Reply, Request, ShimState, Status, layout,
};

use super::{Exec, Mode, Proc, READ_CHUNK, Shim, Target};
use crate::launch;

fn runtime_reply(e: &RuntimeError) -> Reply {
    let kind = match e {
        RuntimeError::WrongState(_) => ErrorKind::Conflict,
        RuntimeError::Invalid(_) => ErrorKind::InvalidArgument,
        RuntimeError::State(wharf_runtime::state::StateError::NotFound(_)) => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    };
    Reply::error(kind, wharf_runtime::init::chain(e))
}

impl Shim {
    pub(super) fn read_conn(&mut self, id: u64, revents: PollFlags) {
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
                Mode::Attached {
                    target,
                    stdin: true,
                    ..
                } => {
                    let target = target.clone();
                    self.input_ended(id, &target);
                }
                Mode::Attached { stdin: false, .. } | Mode::Closing => {}
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

    /// The end of an attached client's input, by dockerd's rule
    /// (`container/stream`): without a terminal, the stdin of an exec or of
    /// a `StdinOnce` container is closed and the output flows on until the
    /// process exits; in every other case stdin stays open for the next
    /// client and this session ends. A detach (only with a terminal) reaches
    /// the shim as such an end too, so it never closes stdin.
    fn input_ended(&mut self, id: u64, target: &Target) {
        let tty = self.proc_ref(target).is_some_and(|p| p.tty);
        if !tty && (target.is_some() || self.settings.stdin_once) {
            self.close_stdin(target);
        } else if let Some(c) = self.conns.get_mut(&id) {
            c.mode = Mode::Closing;
        }
    }

    pub(super) fn tidy_conns(&mut self) {
        self.conns
            .retain(|_, c| !(c.dead || matches!(c.mode, Mode::Closing) && c.outbuf.is_empty()));
    }

    /// Before exiting: gives every client up to a second to take its bytes.
    pub(super) fn final_flush(&mut self) {
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

    pub(super) fn request(&mut self, id: u64, line: &[u8]) {
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
                let starting = matches!(other, Request::Start);
                let reply = self.simple(other);
                self.reply(id, reply);
                if starting && self.started {
                    // What creating and starting the container allocated is
                    // freed by now: give those pages back (the shim idles
                    // for the container's whole life), once the start is
                    // answered.
                    wharf_sys::malloc::trim();
                }
            }
        }
    }

    pub(super) fn reply(&mut self, id: u64, reply: Reply) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.send(&reply.to_line());
            c.mode = Mode::Closing;
        }
    }

    pub(super) fn wait(&mut self, id: u64, exec_id: Target) {
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

    pub(super) fn attach(
        &mut self,
        id: u64,
        target: Target,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) {
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

    pub(super) fn simple(&mut self, req: Request) -> Reply {
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
                        // The state comes with the answer: the daemon
                        // records the pid and start time without asking.
                        Reply::ok(&self.state())
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

    pub(super) fn state(&self) -> ShimState {
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

    pub(super) fn exec_register(
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

    pub(super) fn exec_start(&mut self, exec_id: &str) -> Reply {
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

    pub(super) fn resize(&mut self, t: &Target, rows: u16, cols: u16) -> Reply {
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

    pub(super) fn update(&mut self, resources: &LinuxResources) -> Reply {
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

    pub(super) fn delete(&mut self, force: bool) -> Reply {
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
