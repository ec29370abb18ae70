//! The little protocol between the runtime process and the container's init
//! (or exec) child while the container is being set up.
//!
//! One `SOCK_STREAM` socketpair, close-on-exec on both ends; each message is
//! a 4-byte little-endian length followed by that many bytes of JSON (so a
//! large state JSON, with big annotations, fits). When the child exec's
//! successfully its end closes, which the parent sees as end-of-file: that
//! is how `exec` learns that the user's program started.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

/// Largest message accepted (a state JSON with generous annotations).
const MAX_MESSAGE: usize = 16 << 20;

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
    /// parent -> child: the container's cgroups exist and have their limits;
    /// join them (when `InitArgs::self_cgroup_tasks` says so) before the
    /// cgroup mounts.
    CgroupsReady,
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
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| SyncError::Io(e.into()))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    fn write_all(&self, mut buf: &[u8]) -> Result<(), SyncError> {
        while !buf.is_empty() {
            match rustix::net::send(&self.fd, buf, SendFlags::NOSIGNAL) {
                Ok(n) => buf = &buf[n..],
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(SyncError::Io(e.into())),
            }
        }
        Ok(())
    }

    /// Fills `buf`; `Ok(false)` on end-of-file before the first byte.
    fn read_exact(&self, buf: &mut [u8]) -> Result<bool, SyncError> {
        let mut got = 0;
        while got < buf.len() {
            match rustix::net::recv(&self.fd, &mut buf[got..], RecvFlags::empty()) {
                Ok((0, _)) if got == 0 => return Ok(false),
                Ok((0, _)) => return Err(SyncError::Malformed("truncated message".into())),
                Ok((n, _)) => got += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(SyncError::Io(e.into())),
            }
        }
        Ok(true)
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let body = serde_json::to_vec(msg).map_err(|e| SyncError::Malformed(e.to_string()))?;
        if body.len() > MAX_MESSAGE {
            return Err(SyncError::Malformed(format!(
                "message of {} bytes is too large",
                body.len()
            )));
        }
        let len = u32::try_from(body.len())
            .map_err(|_| SyncError::Malformed("message too large".into()))?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&body);
        self.write_all(&frame)
    }

    /// Receives one message; `Ok(None)` at end-of-file.
    pub fn recv(&self) -> Result<Option<Msg>, SyncError> {
        let mut len = [0u8; 4];
        if !self.read_exact(&mut len)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_MESSAGE {
            return Err(SyncError::Malformed(format!(
                "message of {len} bytes is too large"
            )));
        }
        let mut body = vec![0u8; len];
        if !self.read_exact(&mut body)? {
            return Err(SyncError::Malformed("truncated message".into()));
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| SyncError::Malformed(e.to_string()))
    }

    /// Sends descriptors (one byte carrying them in `SCM_RIGHTS`), for the
    /// idmapped mounts the runtime prepares for the init.
    pub fn send_fds(&self, fds: &[BorrowedFd<'_>]) -> Result<(), SyncError> {
        for chunk in fds.chunks(16) {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(16))];
            let mut anc = SendAncillaryBuffer::new(&mut space);
            if !anc.push(SendAncillaryMessage::ScmRights(chunk)) {
                return Err(SyncError::Malformed("too many descriptors".into()));
            }
            rustix::net::sendmsg(
                &self.fd,
                &[IoSlice::new(b"F")],
                &mut anc,
                SendFlags::NOSIGNAL,
            )
            .map_err(|e| SyncError::Io(e.into()))?;
        }
        Ok(())
    }

    /// Receives `n` descriptors sent with [`Channel::send_fds`].
    pub fn recv_fds(&self, n: usize) -> Result<Vec<OwnedFd>, SyncError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut byte = [0u8; 1];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(16))];
            let mut anc = RecvAncillaryBuffer::new(&mut space);
            let r = rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut byte)],
                &mut anc,
                RecvFlags::CMSG_CLOEXEC,
            )
            .map_err(|e| SyncError::Io(e.into()))?;
            if r.bytes == 0 {
                return Err(SyncError::Closed);
            }
            for msg in anc.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = msg {
                    out.extend(fds);
                }
            }
        }
        Ok(out)
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

    #[test]
    fn descriptors_cross() {
        use std::os::fd::AsFd;
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        a.send_fds(&[f.as_fd(), f.as_fd()]).unwrap();
        a.send(&Msg::Go).unwrap();
        let got = b.recv_fds(2).unwrap();
        assert_eq!(got.len(), 2);
        assert!(matches!(b.recv().unwrap(), Some(Msg::Go)));
    }

    #[test]
    fn large_messages_cross() {
        let (a, b) = pair().unwrap();
        let big = "x".repeat(4 << 20);
        let sender = std::thread::spawn(move || a.send(&Msg::HooksDone { state: big }).unwrap());
        match b.recv().unwrap() {
            Some(Msg::HooksDone { state }) => assert_eq!(state.len(), 4 << 20),
            other => panic!("{other:?}"),
        }
        sender.join().unwrap();
    }
}
