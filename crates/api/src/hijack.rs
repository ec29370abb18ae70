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
//! Detach keys and the end of input follow dockerd (`container/stream`):
//! - With a terminal, the input is scanned for the detach sequence
//!   ([`DetachScanner`], default ctrl-p ctrl-q); a match ends the session
//!   at once, the bytes before it delivered, the sequence itself not. The
//!   process and its stdin are left alone, so it can be attached again.
//!   Without a terminal nothing is scanned (dockerd's rule too: the keys
//!   only apply to a TTY), every byte reaches the process.
//! - The client's half-close is passed on to the shim, which closes the
//!   process's stdin only without a terminal and when the process is an
//!   exec or the container has `StdinOnce` (output then flows until the
//!   process exits); otherwise the shim ends the session and stdin stays
//!   open (see `wharf_shim_api::protocol`).

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

/// A detach-key string docker does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid detach keys ({keys}) provided")]
pub struct DetachKeysError {
    pub keys: String,
}

/// Parses detach keys as docker does (`term.ToBytes`): comma-separated
/// keys, each a single character (taken as its byte), `ctrl-@`, `ctrl-a`
/// ... `ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_` (codes 0
/// to 31, lowercase only) or `DEL` (127). The empty string means the
/// default, ctrl-p ctrl-q.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, DetachKeysError> {
    if s.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let bad = || DetachKeysError { keys: s.to_owned() };
    let mut out = Vec::new();
    for key in s.split(',') {
        let code = match key.as_bytes() {
            [b] => *b,
            b"DEL" => 127,
            k => match k.strip_prefix(b"ctrl-") {
                Some([c @ b'a'..=b'z']) => c - b'a' + 1,
                Some([c @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_')]) => c - b'@',
                _ => return Err(bad()),
            },
        };
        out.push(code);
    }
    Ok(out)
}

/// Finds the detach sequence in a terminal's input, byte by byte across
/// reads, as docker's escape proxy does: bytes that start the sequence are
/// held back; when the next byte does not continue it, the held bytes are
/// released and the byte is passed on (it does not start a new match, so
/// ctrl-p ctrl-p ctrl-q is not a detach, as with docker).
#[derive(Debug, Clone)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    /// A scanner for `keys` (empty: nothing is ever a detach).
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// Appends to `out` what `input` lets through; true when the sequence
    /// completed (what followed it in `input` is dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            out.push(b);
        }
        false
    }
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
/// ends (the process exited, or the shim ended the session at the end of
/// input), or the client detaches or disconnects. `detach_keys` are used
/// only when the process has a terminal.
pub async fn pump<IO>(io: IO, session: AttachSession, detach_keys: Vec<u8>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    pump_then(io, session, detach_keys, std::future::ready(())).await;
}

/// Like [`pump`], but when the output ended by itself awaits
/// `before_close` before the client sees end-of-file: for exec, the exit
/// code must be recorded before the client's follow-up inspect, which it
/// sends as soon as its read side ends. Not awaited after a detach (the
/// process goes on running).
pub async fn pump_then<IO, F>(io: IO, session: AttachSession, detach_keys: Vec<u8>, before_close: F)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let tty = session.tty;
    let hold_until = tokio::time::Instant::now() + FIRST_WRITE_GRACE;
    let (mut rd, mut wr) = tokio::io::split(io);
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let mut scanner = DetachScanner::new(if tty { detach_keys } else { Vec::new() });
    let input_task = session.input.map(|mut input| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            let mut forward = Vec::with_capacity(buf.len());
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                forward.clear();
                let detached = scanner.feed(&buf[..n], &mut forward);
                if !forward.is_empty() && input.write_all(&forward).await.is_err() {
                    return;
                }
                if detached {
                    // Ends the session; dropping `input` then closes the
                    // shim connection, which with a terminal never closes
                    // the process's stdin.
                    let _ = detach_tx.send(());
                    return;
                }
            }
            // End of input (or the client is gone): the shim decides,
            // by docker's rules, whether the process's stdin closes.
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
    let mut was_detached = false;
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
                _ = &mut detached => {
                    was_detached = true;
                    break;
                }
            }
        }
    } else {
        detached.await;
        was_detached = true;
    }
    if !was_detached {
        before_close.await;
    }
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
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys(""), Ok(vec![16, 17]));
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(parse_detach_keys("ctrl-a,x"), Ok(vec![1, b'x']));
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_"), Ok(vec![0, 31]));
        assert_eq!(
            parse_detach_keys("ctrl-[,ctrl-\\,ctrl-],ctrl-^"),
            Ok(vec![27, 28, 29, 30])
        );
        assert_eq!(parse_detach_keys("DEL,a"), Ok(vec![127, b'a']));
        assert_eq!(
            parse_detach_keys(","),
            Err(DetachKeysError { keys: ",".into() })
        );
        for bad in [
            "ctrl-foo", "ctrl-P", "ctrl-1", "ab", "ctrl-p,", "del", "é", "DEL,,",
        ] {
            let e = parse_detach_keys(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("Invalid detach keys ({bad}) provided")
            );
        }
    }

    fn scan(keys: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut s = DetachScanner::new(keys.to_vec());
        let mut out = Vec::new();
        for c in chunks {
            if s.feed(c, &mut out) {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn detach_scanner_follows_docker() {
        // A match drops the sequence and what follows it in that read.
        assert_eq!(
            scan(&[16, 17], &[b"ls\r\x10\x11tail"]),
            (b"ls\r".to_vec(), true)
        );
        // Across reads; the held prefix is never delivered on a match.
        assert_eq!(scan(&[16, 17], &[b"a\x10", b"\x11"]), (b"a".to_vec(), true));
        // A prefix that then fails is passed through, in order.
        assert_eq!(
            scan(&[16, 17], &[b"\x10", b"x\x10"]),
            (b"\x10x".to_vec(), false)
        );
        // The failing byte does not restart a match (docker's escape proxy).
        assert_eq!(
            scan(&[16, 17], &[b"\x10\x10\x11"]),
            (b"\x10\x10\x11".to_vec(), false)
        );
        assert_eq!(
            scan(&[16, 17], &[b"\x10\x10\x10\x11"]),
            (b"\x10\x10".to_vec(), true)
        );
        // Three keys, a one-key sequence, and no keys at all.
        assert_eq!(
            scan(b"abc", &[b"xab", b"d", b"abc"]),
            (b"xabd".to_vec(), true)
        );
        assert_eq!(scan(&[24], &[b"one\x18two"]), (b"one".to_vec(), true));
        assert_eq!(scan(&[], &[b"\x10\x11"]), (b"\x10\x11".to_vec(), false));
    }
}
