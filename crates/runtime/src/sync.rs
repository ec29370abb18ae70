//! The little protocol between the runtime process and the container's init
//! (or exec) child while the container is being set up.
//!
//! One `SOCK_SEQPACKET` socketpair, close-on-exec on both ends; each message
//! is one JSON datagram. When the child exec's successfully its end closes,
//! which the parent sees as end-of-file: that is how `exec` learns that the
//! user's program started.

use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

/// Errors of the setup channel.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("setup channel i/o failed")]
    Io(#[source] std::io::Error),
    #[error("setup channel: malformed message: {0}")]
    Malformed(String),
    #[error("setup channel: expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("container init exited before finishing setup")]
    Closed,
}

/// Messages exchanged during setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Msg {
    /// parent -> child: cgroup placement and id mappings are done.
    Go,
    /// child -> parent: namespaces and mounts are ready; run the
    /// prestart/createRuntime hooks now.
    ReadyForHooks,
    /// parent -> child: hooks ran; the state JSON for createContainer hooks.
    HooksDone { state: String },
    /// child -> parent: everything up to the user's exec is done; the child
    /// now waits on the exec fifo.
    Created,
    /// child -> parent: setup failed.
    Error { message: String },
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates a connected pair: (parent end, child end).
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| SyncError::Io(e.into()))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(msg).map_err(|e| SyncError::Malformed(e.to_string()))?;
        rustix::net::send(&self.fd, &bytes, SendFlags::NOSIGNAL)
            .map_err(|e| SyncError::Io(e.into()))?;
        Ok(())
    }

    /// Receives one message; `Ok(None)` at end-of-file.
    pub fn recv(&self) -> Result<Option<Msg>, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match rustix::net::recv(&self.fd, &mut buf, RecvFlags::empty()) {
                Ok((n, _)) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(SyncError::Io(e.into())),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| SyncError::Malformed(e.to_string()))
    }

    /// Receives one message, turning end-of-file and `Error` into errors.
    pub fn expect(&self, expected: &'static str) -> Result<Msg, SyncError> {
        match self.recv()? {
            None => Err(SyncError::Closed),
            Some(Msg::Error { message }) => Err(SyncError::Unexpected {
                expected,
                got: message,
            }),
            Some(m) => Ok(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::HooksDone { state: "{}".into() }).unwrap();
        assert!(matches!(b.recv().unwrap(), Some(Msg::HooksDone { state }) if state == "{}"));
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }
}
