//! The shim protocol: what the daemon asks a shim and what it answers.
//!
//! # Wire format
//! A client connects to `<state_dir>/shim.sock` and writes exactly one
//! [`Request`] as a single line of JSON (`\n`-terminated, at most
//! [`MAX_REQUEST_LINE`] bytes). The shim answers with one [`Reply`] line.
//! For most requests the shim then closes the connection; a `Wait` reply is
//! written only when the awaited process has exited (the connection stays
//! open until then).
//!
//! After a successful `Attach` reply the connection becomes a byte stream:
//! - shim to client: frames, each an 8-byte header `[stream, 0, 0, 0, len
//!   as u32 big-endian]` followed by `len` bytes, where `stream` is 1 for
//!   stdout and 2 for stderr ([`StreamKind`]); with a terminal everything is
//!   stdout. This is Docker's multiplexed-stream framing, so a daemon may
//!   forward frames of a non-tty container unchanged. The shim closes the
//!   stream once the process has exited and its output is drained.
//! - client to shim: raw bytes, written to the process's stdin. The end of
//!   this input (the client's half-close, or the connection closing)
//!   follows dockerd's rule: for a process without a terminal that is an
//!   exec or the init of a container started with `--stdin-once`, the shim
//!   closes the process's stdin and goes on streaming until the process
//!   exits; otherwise the process's stdin stays open (a later client can
//!   attach and type again) and the shim ends this stream. Detaching is
//!   just ending the input: the detach keys are the daemon's business, and
//!   they only apply to a process with a terminal, whose stdin the end of
//!   input never closes.

use oci_spec::runtime::{LinuxResources, Process};
use serde::{Deserialize, Serialize};

/// Longest request line a shim accepts (a process spec can be large).
pub const MAX_REQUEST_LINE: usize = 4 << 20;
/// Length of an attach frame header.
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest attach frame payload a client accepts.
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// One request; `exec_id: None` means the container's init process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Starts the created container (`Runtime::start`). Reply: null.
    Start,
    /// The container's state. Reply: [`ShimState`].
    State,
    /// Sends `signal` to the init, or with `all` to every process of the
    /// container. Reply: null.
    Kill { signal: i32, all: bool },
    /// Answers when the process exits. Reply: [`ExitStatus`].
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    /// Registers an exec process (not started yet). `process.terminal` is
    /// set from `tty`. Reply: null.
    Exec {
        exec_id: String,
        process: Box<Process>,
        tty: bool,
        stdin: bool,
    },
    /// Starts a registered exec process. Reply: its host pid (number).
    ExecStart { exec_id: String },
    /// Reply: [`ExecInfo`].
    ExecState { exec_id: String },
    /// Sets the window size of the process's terminal. Reply: null.
    ResizePty {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
        rows: u16,
        cols: u16,
    },
    /// Streams the process's output and feeds its stdin (see the module
    /// documentation). Reply: null, then the stream.
    Attach {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Closes the process's stdin (with a terminal: sends end-of-file, ^D).
    /// Reply: null.
    CloseStdin {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    /// Freezes the container. Reply: null.
    Pause,
    /// Thaws the container. Reply: null.
    Resume,
    /// The container's cgroup statistics (`wharf_cgroups::Stats` as JSON).
    Stats,
    /// Changes the container's cgroup limits. Reply: null.
    Update { resources: Box<LinuxResources> },
    /// Deletes the container from the runtime (with `force`, even while it
    /// runs: it is killed first), records its exit, then the shim exits.
    /// Reply: null.
    Delete {
        #[serde(default)]
        force: bool,
    },
    /// Exits the shim, leaving the runtime state alone. Refused while the
    /// container's init is alive. Reply: null.
    Shutdown,
}

/// One reply line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    Ok {
        #[serde(default)]
        value: serde_json::Value,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Reply {
    /// A successful reply carrying `value`.
    pub fn ok<T: Serialize>(value: &T) -> Reply {
        match serde_json::to_value(value) {
            Ok(value) => Reply::Ok { value },
            Err(e) => Reply::error(ErrorKind::Internal, format!("encoding reply: {e}")),
        }
    }

    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
        Reply::Error {
            kind,
            message: message.into(),
        }
    }

    /// The reply as one `\n`-terminated line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"status":"error","kind":"internal","message":"unencodable reply"}"#.to_vec()
        });
        v.push(b'\n');
        v
    }
}

/// What went wrong, for the daemon to map onto its own error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such exec id (or the container is gone from the runtime).
    NotFound,
    /// The request does not fit the current state (start twice, exec in a
    /// stopped container, delete a running one without force).
    Conflict,
    /// The request itself is malformed or has a bad value.
    InvalidArgument,
    /// Anything else (a failed syscall, the runtime failed).
    Internal,
}

/// The container's status as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

/// Reply to `State`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    pub id: String,
    pub status: Status,
    /// Host pid of the init (also after it exited).
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    pub exit_code: Option<i32>,
    /// RFC 3339 with nanoseconds, UTC.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub oom_killed: bool,
}

/// How a process ended; the reply to `Wait` and the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal number when a signal killed it.
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds, UTC.
    pub exited_at: String,
    /// The container's cgroup saw an OOM kill.
    pub oom_killed: bool,
}

/// Lifecycle of an exec process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    Created,
    Running,
    Exited,
}

/// Reply to `ExecState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInfo {
    pub exec_id: String,
    pub status: ExecStatus,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub tty: bool,
    pub stdin: bool,
}

/// The stream a frame belongs to (Docker's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

impl StreamKind {
    /// The name used in json-file log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Stdin => "stdin",
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }

    pub fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            _ => None,
        }
    }
}

/// Appends one attach frame (header and payload) to `out`. Payloads larger
/// than `u32::MAX` are split into several frames.
pub fn encode_frame(kind: StreamKind, data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(u32::MAX as usize) {
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        out.push(kind as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Parses a frame header: the stream and the payload length.
pub fn decode_header(h: &[u8; FRAME_HEADER_LEN]) -> Option<(StreamKind, usize)> {
    let kind = StreamKind::from_byte(h[0])?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    Some((kind, len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json_lines() {
        let r = Request::Kill {
            signal: 9,
            all: true,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"op":"kill","signal":9,"all":true}"#);
        let w: Request = serde_json::from_str(r#"{"op":"wait"}"#).unwrap();
        assert!(matches!(w, Request::Wait { exec_id: None }));
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"kill","signal":1,"all":false,"x":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"nope"}"#).is_err());
    }

    #[test]
    fn replies_round_trip() {
        let line = Reply::error(ErrorKind::Conflict, "already started").to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        let r: Reply = serde_json::from_slice(&line).unwrap();
        match r {
            Reply::Error { kind, message } => {
                assert_eq!(kind, ErrorKind::Conflict);
                assert_eq!(message, "already started");
            }
            Reply::Ok { .. } => panic!("expected an error"),
        }
        let ok: Reply = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert!(matches!(ok, Reply::Ok { value } if value.is_null()));
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        encode_frame(StreamKind::Stderr, b"hello", &mut buf);
        assert_eq!(&buf[..8], &[2, 0, 0, 0, 0, 0, 0, 5]);
        let h: [u8; 8] = buf[..8].try_into().unwrap();
        assert_eq!(decode_header(&h), Some((StreamKind::Stderr, 5)));
        assert_eq!(&buf[8..], b"hello");
        assert_eq!(decode_header(&[7, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
