//! `wharf-shim-api`: the contract between `wharfd` and `wharf-shim`, the
//! per-container monitor process.
//!
//! - [`protocol`]: the request and reply types and the wire format (one JSON
//!   line each way per connection; `Attach` then turns the connection into
//!   a framed byte stream).
//! - [`client`]: an async client ([`ShimClient`]) over `tokio::net::UnixStream`.
//! - [`spawn`]: [`spawn_shim`] launches the binary and returns once the
//!   container is created and the shim answers; [`ShimHandle::adopt`]
//!   reconnects to a shim that outlived its daemon.
//! - [`layout`]: the files a shim keeps in its state directory
//!   (`shim.sock`, `shim.pid`, `exit.json`), readable without the shim.
//! - [`time`]: RFC 3339 timestamps with nanoseconds, as Docker writes them.
//!
//! This crate does not depend on the runtime: the daemon links it without
//! linking the code that enters containers.
#![forbid(unsafe_code)]

pub mod client;
pub mod layout;
pub mod protocol;
pub mod spawn;
pub mod time;

pub use client::{AttachInput, AttachOutput, AttachStream, ClientError, Frame, ShimClient};
pub use layout::{ExitFile, LayoutError};
pub use protocol::{
    ErrorKind, ExecInfo, ExecStatus, ExitStatus, Reply, Request, ShimState, Status, StreamKind,
};
pub use spawn::{ShimConfig, ShimHandle, SpawnError, spawn_shim};
