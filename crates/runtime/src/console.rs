//! Terminals: the container's pty, created inside the container's devpts and
//! handed to the caller over `--console-socket` as runc does (the master fd in
//! an `SCM_RIGHTS` message whose payload is the slave's path).

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::OpenptFlags;

/// Errors setting up the container's terminal.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("connect to console socket {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} failed")]
    Sys(&'static str, #[source] std::io::Error),
}

fn sys(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> ConsoleError {
    move |e| ConsoleError::Sys(op, e.into())
}

/// Connects to the caller's console socket (done by the runtime before the
/// init leaves the host's mount namespace).
pub fn connect(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let err = |source: std::io::Error| ConsoleError::Connect {
        path: path.display().to_string(),
        source,
    };
    let s = std::os::unix::net::UnixStream::connect(path).map_err(err)?;
    Ok(OwnedFd::from(s))
}

/// In the container (after pivot_root): opens a pty pair, sends the master to
/// `socket`, and makes the slave the controlling terminal and stdio; for the
/// init (`dev_console`), also `/dev/console`.
pub fn setup(
    socket: &OwnedFd,
    size: Option<(u16, u16)>,
    dev_console: bool,
) -> Result<(), ConsoleError> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(sys("openpt"))?;
    rustix::pty::grantpt(&master).map_err(sys("grantpt"))?;
    rustix::pty::unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(sys("ptsname"))?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open pty slave"))?;
    if let Some((rows, cols)) = size {
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, ws).map_err(sys("set window size"))?;
    }
    if dev_console {
        bind_dev_console(name.to_str().unwrap_or_default())?;
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds = [master.as_fd()];
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(name.as_bytes())],
        &mut anc,
        SendFlags::empty(),
    )
    .map_err(sys("send pty master"))?;
    drop(master);
    rustix::process::setsid().map_err(sys("setsid"))?;
    rustix::process::ioctl_tiocsctty(&slave).map_err(sys("TIOCSCTTY"))?;
    for target in 0..=2 {
        wharf_sys::process::dup_onto(slave.as_fd(), target)
            .map_err(|e| ConsoleError::Sys("dup pty slave", e))?;
    }
    Ok(())
}

/// Makes `/dev/console` the container's terminal (as runc does): an empty
/// file in the container's /dev with the pty slave bind-mounted over it.
fn bind_dev_console(slave: &str) -> Result<(), ConsoleError> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open /"))?;
    let target = crate::safepath::touch_in_root(root.as_fd(), Path::new("/dev/console"))
        .map_err(|e| ConsoleError::Sys("create /dev/console", e))?;
    rustix::mount::mount_bind(slave, crate::safepath::fd_path(&target).as_str())
        .map_err(sys("bind the pty onto /dev/console"))?;
    Ok(())
}
