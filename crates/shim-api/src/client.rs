//! An async client for one shim's socket.
//!
//! Every call opens a new connection, sends one request line and reads one
//! reply line (see [`crate::protocol`]), so calls can run concurrently and a
//! long `wait` never blocks other requests. [`ShimClient::attach`] keeps the
//! connection as an [`AttachStream`]. An unreachable socket
//! ([`ClientError::Connect`]) means the shim is gone; the daemon then reads
//! `exit.json` ([`crate::layout::read_exit`]).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_spec::runtime::{LinuxResources, Process};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::protocol::{
    ErrorKind, ExecInfo, ExitStatus, FRAME_HEADER_LEN, MAX_FRAME_LEN, Reply, Request, ShimState,
    StreamKind, decode_header,
};

/// Longest reply line the client reads.
const MAX_REPLY_LINE: u64 = 16 << 20;

/// Errors talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("failed to connect to shim socket {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("i/o on shim socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("shim at {path} closed the connection without replying")]
    Closed { path: PathBuf },
    #[error("shim at {path} sent a malformed reply: {detail}")]
    Protocol { path: PathBuf, detail: String },
    #[error("shim refused the request ({kind:?}): {message}")]
    Shim { kind: ErrorKind, message: String },
}

impl ClientError {
    /// The shim's error kind; transport failures are `Internal`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Shim { kind, .. } => *kind,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the shim's socket could not be reached at all (the shim is
    /// gone or not yet listening).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }
}

/// A client for the shim listening on one socket.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    /// A client for the socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> ShimClient {
        ShimClient {
            socket: socket.into(),
        }
    }

    /// A client for the shim whose state directory is `state_dir`.
    pub fn for_state_dir(state_dir: &Path) -> ShimClient {
        ShimClient::new(crate::layout::socket_path(state_dir))
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn io_err(&self) -> impl FnOnce(io::Error) -> ClientError + '_ {
        move |source| ClientError::Io {
            path: self.socket.clone(),
            source,
        }
    }

    /// Sends `req`; returns the reply value and the open connection.
    async fn exchange(
        &self,
        req: &Request,
    ) -> Result<(serde_json::Value, BufReader<OwnedReadHalf>, OwnedWriteHalf), ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        let (r, mut w) = stream.into_split();
        let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Protocol {
            path: self.socket.clone(),
            detail: format!("encoding request: {e}"),
        })?;
        line.push(b'\n');
        w.write_all(&line).await.map_err(self.io_err())?;
        let mut reader = BufReader::new(r);
        let mut reply = Vec::new();
        (&mut reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut reply)
            .await
            .map_err(self.io_err())?;
        if reply.last() != Some(&b'\n') {
            return Err(ClientError::Closed {
                path: self.socket.clone(),
            });
        }
        let reply: Reply = serde_json::from_slice(&reply).map_err(|e| ClientError::Protocol {
            path: self.socket.clone(),
            detail: e.to_string(),
        })?;
        match reply {
            Reply::Ok { value } => Ok((value, reader, w)),
            Reply::Error { kind, message } => Err(ClientError::Shim { kind, message }),
        }
    }

    async fn call<T: DeserializeOwned>(&self, req: &Request) -> Result<T, ClientError> {
        let (value, _, _) = self.exchange(req).await?;
        serde_json::from_value(value).map_err(|e| ClientError::Protocol {
            path: self.socket.clone(),
            detail: e.to_string(),
        })
    }

    async fn call_unit(&self, req: &Request) -> Result<(), ClientError> {
        self.exchange(req).await.map(|_| ())
    }

    /// Starts the created container; returns its state after the start
    /// (`None` from a shim that answers a start with nothing: ask
    /// [`Self::state`]).
    pub async fn start(&self) -> Result<Option<ShimState>, ClientError> {
        self.call(&Request::Start).await
    }

    pub async fn state(&self) -> Result<ShimState, ClientError> {
        self.call(&Request::State).await
    }

    /// Signals the init (or, with `all`, every process of the container).
    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), ClientError> {
        self.call_unit(&Request::Kill { signal, all }).await
    }

    /// Waits until the init has exited (at once if it already has).
    pub async fn wait(&self) -> Result<ExitStatus, ClientError> {
        self.call(&Request::Wait { exec_id: None }).await
    }

    /// Waits until the exec process `exec_id` has exited.
    pub async fn wait_exec(&self, exec_id: &str) -> Result<ExitStatus, ClientError> {
        self.call(&Request::Wait {
            exec_id: Some(exec_id.to_owned()),
        })
        .await
    }

    /// Registers an exec process; start it with [`ShimClient::exec_start`].
    pub async fn exec(
        &self,
        exec_id: &str,
        process: Process,
        tty: bool,
        stdin: bool,
    ) -> Result<(), ClientError> {
        self.call_unit(&Request::Exec {
            exec_id: exec_id.to_owned(),
            process: Box::new(process),
            tty,
            stdin,
        })
        .await
    }

    /// Starts a registered exec process; returns its host pid.
    pub async fn exec_start(&self, exec_id: &str) -> Result<i32, ClientError> {
        self.call(&Request::ExecStart {
            exec_id: exec_id.to_owned(),
        })
        .await
    }

    pub async fn exec_state(&self, exec_id: &str) -> Result<ExecInfo, ClientError> {
        self.call(&Request::ExecState {
            exec_id: exec_id.to_owned(),
        })
        .await
    }

    /// Resizes the terminal of the init (`None`) or of an exec process.
    pub async fn resize_pty(
        &self,
        exec_id: Option<&str>,
        rows: u16,
        cols: u16,
    ) -> Result<(), ClientError> {
        self.call_unit(&Request::ResizePty {
            exec_id: exec_id.map(str::to_owned),
            rows,
            cols,
        })
        .await
    }

    /// Closes the stdin of the init (`None`) or of an exec process.
    pub async fn close_stdin(&self, exec_id: Option<&str>) -> Result<(), ClientError> {
        self.call_unit(&Request::CloseStdin {
            exec_id: exec_id.map(str::to_owned),
        })
        .await
    }

    pub async fn pause(&self) -> Result<(), ClientError> {
        self.call_unit(&Request::Pause).await
    }

    pub async fn resume(&self) -> Result<(), ClientError> {
        self.call_unit(&Request::Resume).await
    }

    /// The cgroup statistics (`wharf_cgroups::Stats` as JSON).
    pub async fn stats(&self) -> Result<serde_json::Value, ClientError> {
        self.call(&Request::Stats).await
    }

    /// Changes the container's cgroup limits.
    pub async fn update(&self, resources: LinuxResources) -> Result<(), ClientError> {
        self.call_unit(&Request::Update {
            resources: Box::new(resources),
        })
        .await
    }

    /// Deletes the container; the shim exits afterwards.
    pub async fn delete(&self, force: bool) -> Result<(), ClientError> {
        self.call_unit(&Request::Delete { force }).await
    }

    /// Makes the shim exit (refused while the container's init is alive).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        self.call_unit(&Request::Shutdown).await
    }

    /// Attaches to the init (`exec_id: None`) or an exec process.
    pub async fn attach(
        &self,
        exec_id: Option<&str>,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<AttachStream, ClientError> {
        let (_, reader, writer) = self
            .exchange(&Request::Attach {
                exec_id: exec_id.map(str::to_owned),
                stdin,
                stdout,
                stderr,
            })
            .await?;
        Ok(AttachStream {
            output: AttachOutput {
                reader,
                path: self.socket.clone(),
            },
            input: AttachInput { writer },
        })
    }
}

/// One piece of a process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream: StreamKind,
    pub data: Vec<u8>,
}

/// An attached connection: frames out of the process, bytes into its stdin.
#[derive(Debug)]
pub struct AttachStream {
    pub output: AttachOutput,
    pub input: AttachInput,
}

impl AttachStream {
    pub fn into_split(self) -> (AttachOutput, AttachInput) {
        (self.output, self.input)
    }
}

/// The output half of an attached connection.
#[derive(Debug)]
pub struct AttachOutput {
    reader: BufReader<OwnedReadHalf>,
    path: PathBuf,
}

impl AttachOutput {
    /// The next frame; `None` once the shim closed the stream (the process
    /// exited and its output is drained).
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, ClientError> {
        let io_err = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        let mut header = [0u8; FRAME_HEADER_LEN];
        let mut got = 0;
        while got < FRAME_HEADER_LEN {
            let n = self.reader.read(&mut header[got..]).await.map_err(io_err)?;
            if n == 0 {
                if got == 0 {
                    return Ok(None);
                }
                return Err(ClientError::Protocol {
                    path: self.path.clone(),
                    detail: "stream ended inside a frame header".into(),
                });
            }
            got += n;
        }
        let (stream, len) = decode_header(&header)
            .filter(|(_, len)| *len <= MAX_FRAME_LEN)
            .ok_or_else(|| ClientError::Protocol {
                path: self.path.clone(),
                detail: format!("bad frame header {header:?}"),
            })?;
        let mut data = vec![0u8; len];
        self.reader
            .read_exact(&mut data)
            .await
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(Some(Frame { stream, data }))
    }

    /// Reads until the end of the stream; returns (stdout, stderr).
    pub async fn collect(&mut self) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(f) = self.next_frame().await? {
            match f.stream {
                StreamKind::Stderr => err.extend_from_slice(&f.data),
                _ => out.extend_from_slice(&f.data),
            }
        }
        Ok((out, err))
    }
}

/// The input half of an attached connection: bytes written here go to the
/// process's stdin; [`AttachInput::close`] (a half-close) or dropping it
/// ends the input (see [`crate::protocol`] for when that closes the
/// process's stdin and when it ends the stream instead).
#[derive(Debug)]
pub struct AttachInput {
    writer: OwnedWriteHalf,
}

impl AttachInput {
    /// Half-closes the connection: end of input.
    pub async fn close(mut self) -> io::Result<()> {
        self.writer.shutdown().await
    }
}

impl AsyncWrite for AttachInput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
