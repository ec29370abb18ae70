//! Processes: reaping (`wait(-1)`), reading output into the log and to
//! attached clients, writing stdin, and finishing exited processes.

use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::WaitOptions;
use tracing::{debug, info, warn};
use wharf_shim_api::protocol::encode_frame;
use wharf_shim_api::time::now_rfc3339_nano;
use wharf_shim_api::{ExitStatus, Reply, StreamKind, layout};

use super::{DRAIN_GRACE, Mode, READ_CHUNK, Shim, Target};
use crate::logfile::LogFileError;
use crate::stdio::ShimEnds;

fn exit_code(st: rustix::process::WaitStatus) -> Option<i32> {
    st.exit_status()
        .or_else(|| st.terminating_signal().map(|s| 128 + s))
}

impl Shim {
    pub(super) fn reap(&mut self) {
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

    pub(super) fn record_exit(&mut self, pid: i32, code: i32) {
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

    pub(super) fn read_output(&mut self, t: &Target, kind: StreamKind) {
        // One buffer for every read (taken out while `output` borrows self).
        let mut buf = std::mem::take(&mut self.read_buf);
        buf.resize(READ_CHUNK, 0);
        let res = {
            let Some(p) = self.proc_mut(t) else {
                self.read_buf = buf;
                return;
            };
            let slot = match kind {
                StreamKind::Stderr => &p.ends.stderr,
                _ => &p.ends.stdout,
            };
            let Some(fd) = slot else {
                self.read_buf = buf;
                return;
            };
            rustix::io::read(fd, &mut buf)
        };
        self.read_result(t, kind, res, &buf);
        self.read_buf = buf;
    }

    fn read_result(
        &mut self,
        t: &Target,
        kind: StreamKind,
        res: rustix::io::Result<usize>,
        buf: &[u8],
    ) {
        let Some(p) = self.proc_mut(t) else { return };
        let slot = match kind {
            StreamKind::Stderr => &mut p.ends.stderr,
            _ => &mut p.ends.stdout,
        };
        match res {
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

    pub(super) fn output(&mut self, t: &Target, kind: StreamKind, data: &[u8]) {
        if t.is_none() {
            let time = now_rfc3339_nano();
            let log = &mut self.log;
            let mut res = Ok(());
            self.log_lines[usize::from(kind == StreamKind::Stderr)].feed(data, |line| {
                if res.is_ok() {
                    res = log.push_line(kind, line, &time);
                }
            });
            let res = res.and_then(|()| log.finish());
            self.log_result(res);
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

    pub(super) fn log_flush(&mut self, kind: StreamKind) {
        let time = now_rfc3339_nano();
        let log = &mut self.log;
        let mut res = Ok(());
        self.log_lines[usize::from(kind == StreamKind::Stderr)].flush(|line| {
            res = log.push_line(kind, line, &time);
        });
        let res = res.and_then(|()| log.finish());
        self.log_result(res);
    }

    fn log_result(&mut self, res: Result<(), LogFileError>) {
        match res {
            Ok(()) => self.log_failed = false,
            Err(e) if !self.log_failed => {
                // Reported once per failure streak; the container keeps running.
                self.log_failed = true;
                warn!(error = %wharf_runtime::init::chain(&e), "writing the container log");
            }
            Err(_) => {}
        }
    }

    pub(super) fn write_stdin(&mut self, t: &Target) {
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

    pub(super) fn feed_stdin(&mut self, t: &Target, data: &[u8]) {
        if let Some(p) = self.proc_mut(t)
            && p.ends.stdin.is_some()
            && !p.close_stdin
        {
            p.stdin_buf.extend_from_slice(data);
            self.write_stdin(t);
        }
    }

    pub(super) fn close_stdin(&mut self, t: &Target) {
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
    pub(super) fn drain_outputs(&mut self, t: &Target) {
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
    pub(super) fn finish_ready(&mut self, force: bool) {
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

    pub(super) fn finish(&mut self, t: &Target) {
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

    pub(super) fn oom_killed(&self) -> bool {
        self.rt.oom_kills(&self.settings.id).is_ok_and(|n| n > 0)
    }
}
