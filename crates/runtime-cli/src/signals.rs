//! Waiting for a foreground container process (`run`, `exec` without
//! `--detach`) while forwarding every signal the runtime receives to it.
//!
//! Signals are blocked and read from a signalfd, polled together with the
//! child's pidfd: no handler runs, no polling loop sleeps.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions};

/// Waits for `pid` (a child of this process) to exit, forwarding signals;
/// returns its exit code (128+signal when killed), as a shell would report it.
/// With `pty` (the container's terminal master), the caller's terminal is
/// proxied to it and SIGWINCH resizes it instead of being forwarded.
pub fn wait_forwarding(pid: i32, pidfd: &OwnedFd, pty: Option<&OwnedFd>) -> anyhow::Result<i32> {
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    mask.thread_block()?;
    // Threads started now inherit the blocked mask, so signals reach only
    // the signalfd below.
    let copied = match pty {
        Some(m) => {
            crate::tty::sync_window_size(m);
            Some(crate::tty::spawn_copiers(m)?)
        }
        None => None,
    };
    let code = wait_loop(pid, pidfd, &mask, pty)?;
    if let Some(rx) = copied {
        // Let the last output reach the terminal (bounded: a leftover
        // process may keep the pty open).
        let _ = rx.recv_timeout(std::time::Duration::from_secs(1));
    }
    Ok(code)
}

fn wait_loop(
    pid: i32,
    pidfd: &OwnedFd,
    mask: &SigSet,
    pty: Option<&OwnedFd>,
) -> anyhow::Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    loop {
        let (sig_ready, child_ready) = {
            let mut fds = [
                PollFd::new(&sfd, PollFlags::IN),
                PollFd::new(pidfd, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            (!fds[0].revents().is_empty(), !fds[1].revents().is_empty())
        };
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    continue;
                }
                if let (libc::SIGWINCH, Some(m)) = (signo, pty) {
                    crate::tty::sync_window_size(m);
                    continue;
                }
                if let Some(sig) = rustix::process::Signal::from_named_raw(signo) {
                    let _ = rustix::process::pidfd_send_signal(pidfd.as_fd(), sig);
                }
            }
        }
        if child_ready {
            let pid = Pid::from_raw(pid).ok_or_else(|| anyhow::anyhow!("invalid pid {pid}"))?;
            let st = loop {
                match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
                    Ok(Some((_, st))) => break st,
                    Ok(None) => continue,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if let Some(code) = st.exit_status() {
                return Ok(code);
            }
            if let Some(sig) = st.terminating_signal() {
                return Ok(128 + sig);
            }
            return Ok(255);
        }
    }
}

/// Parses a signal given as a name (`KILL`, `SIGKILL`) or a number.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        anyhow::bail!("invalid signal number {n}");
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+').parse()?
        };
        return Ok(libc::SIGRTMIN() + off);
    }
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
