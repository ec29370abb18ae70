//! Hijacked streams for attach and exec.
//!
//! A client asking with `Connection: Upgrade` + `Upgrade: tcp` gets `101
//! UPGRADED` and the raw connection: the process's output flows to the
//! client (multiplexed 8-byte-header frames `[stream, 0, 0, 0, len BE]`
//! unless the process has a terminal), the client's bytes flow to its stdin;
//! the client's half-close ends stdin. Older clients that do not ask for an
//! upgrade get `200` with `application/vnd.docker.raw-stream` and the output
//! as the response body (no stdin: HTTP/1.1 offers no way back).
//!
//! Detach keys (default ctrl-p ctrl-q) in the input end the session without
//! touching the process.

use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wharf_engine::shim::{AttachSession, Frame, StreamKind};

/// How long after the `101` the first bytes of a hijacked stream are held
/// back. docker-py reads the response head through a buffered reader and
/// then reads the stream from the raw socket, losing whatever arrived in the
/// same read as the head (docker/docker-py#3332, #425); dockerd's own
/// latency hides this, a faster daemon must leave the gap on purpose. Only
/// output that is ready at once (an exec's quick command, a log replay)
/// waits; `docker run`'s output arrives later anyway.
pub const FIRST_WRITE_GRACE: std::time::Duration = std::time::Duration::from_millis(15);

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Whether the request asks for a protocol upgrade (`Upgrade: tcp`).
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
        || h.get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
}

fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 UPGRADED` answer.
pub fn upgraded_response(tty: bool) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(tty)),
    );
    r
}

/// Encodes one output frame for the wire.
pub fn encode(tty: bool, f: &Frame, out: &mut Vec<u8>) {
    if tty {
        out.extend_from_slice(&f.data);
        return;
    }
    let stream = match f.stream {
        StreamKind::Stderr => 2u8,
        StreamKind::Stdout => 1,
        StreamKind::Stdin => 0,
    };
    for chunk in f.data.chunks(u32::MAX as usize) {
        out.push(stream);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&u32::try_from(chunk.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Parses `--detach-keys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`); empty: the default.
pub fn parse_detach_keys(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return Some(DEFAULT_DETACH_KEYS.to_vec());
    }
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return None,
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return None;
        }
    }
    Some(out)
}

/// The output-only body of the non-upgraded form (after `replay`, the
/// logged output when `logs=1`).
pub fn streaming_response(
    tty: bool,
    replay: Vec<u8>,
    session: impl Future<Output = Option<AttachSession>> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        if !replay.is_empty() && tx.send(Ok(Bytes::from(replay))).await.is_err() {
            return;
        }
        let Some(s) = session.await else { return };
        if let Some(mut out) = s.output {
            while let Ok(Some(f)) = out.next_frame().await {
                let mut buf = Vec::new();
                encode(tty, &f, &mut buf);
                if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut r = Response::new(Body::from_stream(crate::routes::system::tokio_stream_from(
        rx,
    )));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    r
}

/// Copies between the client connection and the session until the output
/// ends (the process exited) or the client detaches or disconnects.
pub async fn pump<IO>(io: IO, session: AttachSession, detach_keys: Vec<u8>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    pump_then(io, session, detach_keys, std::future::ready(())).await;
}

/// Like [`pump`], but awaits `before_close` after the output ended and
/// before the client sees end-of-file: for exec, the exit code must be
/// recorded before the client's follow-up inspect, which it sends as soon as
/// its read side ends.
pub async fn pump_then<IO, F>(io: IO, session: AttachSession, detach_keys: Vec<u8>, before_close: F)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let tty = session.tty;
    let hold_until = tokio::time::Instant::now() + FIRST_WRITE_GRACE;
    let (mut rd, mut wr) = tokio::io::split(io);
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let input_task = session.input.map(|mut input| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            let mut matched = 0usize;
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Detach-key scan: forward everything that is not part of a
                // (possibly partial) detach sequence.
                let mut forward = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !detach_keys.is_empty() && b == detach_keys[matched] {
                        matched += 1;
                        if matched == detach_keys.len() {
                            let _ = input.write_all(&forward).await;
                            let _ = detach_tx.send(());
                            return;
                        }
                        continue;
                    }
                    forward.extend_from_slice(&detach_keys[..matched]);
                    matched = 0;
                    forward.push(b);
                }
                if input.write_all(&forward).await.is_err() {
                    return;
                }
            }
            let _ = input.close().await;
        })
    });
    // Resolves only on a detach: a dropped sender (no stdin, or stdin ended)
    // must not end the output.
    let detached = async move {
        if detach_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(detached);
    if let Some(mut out) = session.output {
        loop {
            tokio::select! {
                f = out.next_frame() => match f {
                    Ok(Some(f)) => {
                        tokio::time::sleep_until(hold_until).await;
                        let mut buf = Vec::with_capacity(f.data.len() + 8);
                        encode(tty, &f, &mut buf);
                        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "attach output ended");
                        break;
                    }
                },
                _ = &mut detached => break,
            }
        }
    } else {
        detached.await;
    }
    before_close.await;
    let _ = wr.shutdown().await;
    if let Some(t) = input_task {
        t.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_keys() {
        let mut out = Vec::new();
        encode(
            false,
            &Frame {
                stream: StreamKind::Stderr,
                data: b"hi".to_vec(),
            },
            &mut out,
        );
        assert_eq!(out, [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let mut out = Vec::new();
        encode(
            true,
            &Frame {
                stream: StreamKind::Stderr,
                data: b"hi".to_vec(),
            },
            &mut out,
        );
        assert_eq!(out, b"hi");
        assert_eq!(parse_detach_keys(""), Some(vec![16, 17]));
        assert_eq!(parse_detach_keys("ctrl-a,x"), Some(vec![1, b'x']));
        assert_eq!(parse_detach_keys("ctrl-foo"), None);
    }
}
