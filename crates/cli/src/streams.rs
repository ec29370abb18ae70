//! Moving bytes between the caller and a container: a hijacked
//! attach/exec connection is split; its output goes to stdout (raw with a
//! TTY, demultiplexed into stdout/stderr otherwise); stdin is copied in,
//! watched for the detach sequence, and its end half-closes the
//! connection. Log bodies are demultiplexed the same way.

use std::io::Write as _;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wharf_client::stream::{FrameDecoder, StdStream, next_chunk};
use wharf_client::{Hijacked, Incoming};

/// How a stream session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The daemon closed the output (the process ended or detached).
    Output,
    /// The caller typed the detach sequence.
    Detached,
}

/// Writes one output chunk, demultiplexing unless `tty`.
pub fn write_output(tty: bool, dec: &mut FrameDecoder, chunk: &[u8]) -> std::io::Result<()> {
    if tty {
        let mut out = std::io::stdout().lock();
        out.write_all(chunk)?;
        return out.flush();
    }
    dec.push(chunk);
    while let Some((kind, data)) = dec.next_frame() {
        match kind {
            StdStream::Stderr | StdStream::System => {
                let mut e = std::io::stderr().lock();
                e.write_all(&data)?;
                e.flush()?;
            }
            _ => {
                let mut o = std::io::stdout().lock();
                o.write_all(&data)?;
                o.flush()?;
            }
        }
    }
    Ok(())
}

/// Copies a logs body to stdout/stderr.
pub async fn copy_logs(mut body: Incoming, tty: bool) -> anyhow::Result<()> {
    let mut dec = FrameDecoder::default();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk?;
        if let Err(e) = write_output(tty, &mut dec, &chunk) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// Finds the detach sequence in typed input.
#[derive(Debug)]
pub struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> DetachMatcher {
        DetachMatcher { keys, matched: 0 }
    }

    /// Feeds input; returns the bytes to forward and whether the sequence
    /// completed. Bytes of a partial match are held back until it fails.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Runs a hijacked session until the output ends or the caller detaches.
/// With `stdin`, the caller's input is forwarded (half-closing on EOF).
/// The detach sequence is forwarded too: the daemon (told the keys in the
/// attach query) ends the stream without closing the container's stdin;
/// if it has not within two seconds, the connection is dropped.
pub async fn session(
    conn: Hijacked,
    tty: bool,
    stdin: bool,
    detach_keys: Vec<u8>,
) -> anyhow::Result<Ended> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (detach_tx, mut detach_rx) = tokio::sync::watch::channel(false);
    let output = async move {
        let mut dec = FrameDecoder::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) => return Ok::<(), anyhow::Error>(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if let Err(e) = write_output(tty, &mut dec, &buf[..n]) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(e.into());
            }
        }
    };
    let input = async move {
        if !stdin {
            std::future::pending::<()>().await;
        }
        let keys = if tty { detach_keys } else { Vec::new() };
        let mut matcher = DetachMatcher::new(keys.clone());
        let mut sin = tokio::io::stdin();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match sin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (mut fwd, detached) = matcher.feed(&buf[..n]);
            if detached {
                fwd.extend_from_slice(&keys);
            }
            if !fwd.is_empty() && wr.write_all(&fwd).await.is_err() {
                break;
            }
            if detached {
                let _ = wr.flush().await;
                let _ = detach_tx.send(true);
                // Hold the write half open: closing it would end stdin.
                std::future::pending::<()>().await;
            }
        }
        // End of input: half-close so the daemon closes the container's stdin.
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await
    };
    let detached_late = async {
        let _ = detach_rx.wait_for(|d| *d).await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    let ended = tokio::select! {
        r = output => { r?; Ended::Output }
        _ = input => Ended::Output,
        _ = detached_late => Ended::Detached,
    };
    if *detach_rx.borrow() {
        return Ok(Ended::Detached);
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_sequence_detection() {
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(m.feed(&[16]), (vec![], false));
        assert_eq!(m.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(m.feed(&[16, 16]), (vec![16], false));
        assert_eq!(m.feed(&[17, b'z']), (vec![], true));
        let mut none = DetachMatcher::new(Vec::new());
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
    }
}
