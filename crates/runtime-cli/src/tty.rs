//! Foreground `run` of a container whose process wants a terminal, without
//! `--console-socket` (runc's behaviour): the runtime listens on a private
//! console socket, receives the pty master from the init, puts its own
//! terminal in raw mode, and copies bytes both ways until the container
//! exits; window size changes (SIGWINCH) are passed on.

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// A console socket the runtime itself listens on.
pub struct ConsoleListener {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleListener {
    pub fn bind(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(format!(".console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
        Ok(ConsoleListener { listener, path })
    }

    /// Accepts the init's connection and receives the pty master.
    pub fn receive_master(&self) -> anyhow::Result<OwnedFd> {
        let (conn, _) = self
            .listener
            .accept()
            .context("accepting the console connection")?;
        let mut buf = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        )
        .context("receiving the pty master")?;
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg
                && let Some(fd) = fds.next()
            {
                return Ok(fd);
            }
        }
        bail!("the container sent no pty master")
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Restores the caller's terminal settings when dropped.
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    /// Puts stdin in raw mode if it is a terminal.
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(
                stdin.as_fd(),
                rustix::termios::OptionalActions::Now,
                &raw,
            );
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin().as_fd(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// Copies the caller's window size (if stdin is a terminal) to the pty.
pub fn sync_window_size(master: &OwnedFd) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin().as_fd()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// Starts the two copy threads (stdin → pty, pty → stdout). Call only after
/// signals were blocked, so the threads inherit the mask.
/// Returns a receiver that yields once all output was copied.
pub fn spawn_copiers(master: &OwnedFd) -> anyhow::Result<std::sync::mpsc::Receiver<()>> {
    let to_pty = master.try_clone().context("dup pty master")?;
    let from_pty = master.try_clone().context("dup pty master")?;
    std::thread::spawn(move || {
        let mut w = std::fs::File::from(to_pty);
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = std::fs::File::from(from_pty);
        let mut buf = [0u8; 8192];
        let mut out = std::io::stdout();
        // EIO once the last slave descriptor is closed: the container exited.
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    Ok(done_rx)
}
