//! `GET /containers/{id}/attach/ws`: attach over a websocket, as dockerd
//! serves it.
//!
//! - Query: `stdin`, `stdout`, `stderr` (API 1.42 and later; before, all
//!   three are attached), `logs`, `stream`, `detachKeys`. Unlike the
//!   hijacked attach, neither `logs` nor `stream` is required: without
//!   them the socket opens and closes.
//! - Errors before the upgrade are HTTP errors with dockerd's messages:
//!   bad detach keys (400), no such container (404), paused or restarting
//!   container (409).
//! - Output is never multiplexed (the websocket is the framing): each
//!   chunk of stdout or stderr, and the replayed log first when `logs=1`,
//!   is one message: binary from API 1.28, text before (dockerd's rule).
//! - Every message the client sends (binary or text) is stdin. With a
//!   terminal the input is scanned for the detach keys; a match ends the
//!   session and leaves the container running. The client closing the
//!   socket ends the input and the session (see [`crate::hijack`] for what
//!   the end of input does to the process's stdin); the process's output
//!   ending closes the socket.

use std::sync::Arc;

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use wharf_engine::ErrorKind;
use wharf_engine::containers::LogOptions;
use wharf_engine::model::Status;
use wharf_engine::shim::AttachSession;

use super::query;
use super::volumes::chained;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::hijack::{DetachScanner, parse_detach_keys};
use crate::version::ApiVersion;

/// Why a websocket attach was refused before the upgrade.
#[derive(Debug, thiserror::Error)]
pub enum AttachWsError {
    /// dockerd's wording.
    #[error("container {name} is paused, unpause the container before attach")]
    Paused { name: String },
    /// dockerd's wording.
    #[error("container {name} is restarting, wait until the container is running")]
    Restarting { name: String },
}

impl From<AttachWsError> for ApiError {
    fn from(e: AttachWsError) -> ApiError {
        chained(ErrorKind::Conflict, &e)
    }
}

/// How output is sent: binary messages from API 1.28.
#[derive(Clone, Copy)]
struct Framing {
    binary: bool,
}

impl Framing {
    fn message(self, data: Vec<u8>) -> Message {
        if !self.binary {
            // Go's websocket TextFrame carries the bytes as they are; a
            // text message must be UTF-8 here, so anything else goes binary.
            match String::from_utf8(data) {
                Ok(s) => return Message::Text(s.into()),
                Err(e) => return Message::Binary(Bytes::from(e.into_bytes())),
            }
        }
        Message::Binary(Bytes::from(data))
    }
}

/// `GET /containers/{id}/attach/ws`.
pub async fn attach_ws(
    State(s): State<Arc<AppState>>,
    Extension(version): Extension<ApiVersion>,
    Path(id): Path<String>,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let q = query(&uri);
    let keys = parse_detach_keys(q.str("detachKeys").unwrap_or(""))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let (stdin, stdout, stderr) = if version >= ApiVersion(1, 42) {
        (q.bool("stdin")?, q.bool("stdout")?, q.bool("stderr")?)
    } else {
        (true, true, true)
    };
    let (logs, stream) = (q.bool("logs")?, q.bool("stream")?);
    let c = s.engine.containers.inspect(&id)?;
    match c.state.status {
        Status::Paused => return Err(AttachWsError::Paused { name: id }.into()),
        Status::Restarting => return Err(AttachWsError::Restarting { name: id }.into()),
        _ => {}
    }
    // The live stream is registered before the log is read, so nothing
    // written after the replay is lost.
    let session = if stream {
        Some(s.engine.containers.attach(&id, stdin, stdout, stderr)?)
    } else {
        None
    };
    let replay = if logs && (stdout || stderr) {
        let (_tty, mut rx) = s.engine.containers.logs(
            &id,
            LogOptions {
                stdout,
                stderr,
                ..LogOptions::default()
            },
        )?;
        let mut out = Vec::new();
        while let Some(e) = rx.recv().await {
            out.extend_from_slice(&e.line);
        }
        out
    } else {
        Vec::new()
    };
    let framing = Framing {
        binary: version >= ApiVersion(1, 28),
    };
    let tty = c.config.tty;
    Ok(ws.on_upgrade(move |socket| async move {
        let session = match session {
            Some(pending) => match pending.await {
                Ok(session) => Some(session),
                Err(e) => {
                    tracing::warn!(error = %e.full_message(), "websocket attach failed after upgrade");
                    None
                }
            },
            None => None,
        };
        serve(socket, framing, replay, session, tty.then_some(keys)).await;
    }))
}

/// Runs one attached websocket until the output ends, the client leaves
/// or detaches.
async fn serve(
    socket: WebSocket,
    framing: Framing,
    replay: Vec<u8>,
    session: Option<AttachSession>,
    detach_keys: Option<Vec<u8>>,
) {
    let (mut tx, mut rx) = socket.split();
    if !replay.is_empty() && tx.send(framing.message(replay)).await.is_err() {
        return;
    }
    let Some(session) = session else {
        let _ = tx.send(Message::Close(None)).await;
        return;
    };
    let mut input = session.input;
    let mut output = session.output;
    let mut scanner = DetachScanner::new(detach_keys.unwrap_or_default());
    let mut forward = Vec::new();
    loop {
        tokio::select! {
            frame = async {
                match output.as_mut() {
                    Some(o) => o.next_frame().await,
                    None => std::future::pending().await,
                }
            } => match frame {
                Ok(Some(f)) => {
                    if tx.send(framing.message(f.data)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket attach output ended");
                    break;
                }
            },
            msg = rx.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    // The client closed the socket or is gone: a websocket
                    // has no half-close, so this ends the input and the
                    // session.
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        if let Some(i) = input.take() {
                            let _ = i.close().await;
                        }
                        return;
                    }
                };
                forward.clear();
                let detached = scanner.feed(&data, &mut forward);
                if let Some(i) = input.as_mut()
                    && !forward.is_empty()
                    && (i.write_all(&forward).await.is_err() || i.flush().await.is_err())
                {
                    input = None;
                }
                if detached {
                    // Dropping the input without a close leaves the
                    // process's stdin open, as a detach must.
                    break;
                }
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}
