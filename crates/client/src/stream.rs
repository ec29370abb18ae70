//! Streamed answers: [`next_chunk`] for raw bodies, [`JsonStream`] for
//! docker's progress and event streams (JSON values one after another,
//! newline-separated or not), and [`FrameDecoder`] for docker's multiplexed
//! stdout/stderr (an 8-byte header: stream byte, three zero bytes, a
//! big-endian u32 length, then that many bytes).

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::ClientError;

/// The next data chunk of a body; `None` at its end.
pub async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, ClientError>> {
    loop {
        match body.frame().await? {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    return Some(Ok(d));
                }
            }
            Err(source) => {
                return Some(Err(ClientError::Http {
                    what: "response stream",
                    source,
                }));
            }
        }
    }
}

/// A stream of JSON values from a response body.
#[derive(Debug)]
pub struct JsonStream {
    body: Incoming,
    parser: JsonSplitter,
    ended: bool,
}

impl JsonStream {
    pub fn new(body: Incoming) -> JsonStream {
        JsonStream {
            body,
            parser: JsonSplitter::default(),
            ended: false,
        }
    }

    /// The next value; `None` at the end of the body.
    pub async fn next(&mut self) -> Option<Result<serde_json::Value, ClientError>> {
        loop {
            match self.parser.next_value() {
                Ok(Some(v)) => return Some(Ok(v)),
                Ok(None) => {}
                Err(source) => {
                    return Some(Err(ClientError::Decode {
                        path: "stream".into(),
                        source,
                    }));
                }
            }
            if self.ended {
                return None;
            }
            match next_chunk(&mut self.body).await {
                Some(Ok(b)) => self.parser.push(&b),
                Some(Err(e)) => return Some(Err(e)),
                None => self.ended = true,
            }
        }
    }
}

/// Splits concatenated JSON values out of a growing buffer.
#[derive(Debug, Default)]
pub struct JsonSplitter {
    buf: Vec<u8>,
}

impl JsonSplitter {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete value, if the buffer holds one.
    pub fn next_value(&mut self) -> Result<Option<serde_json::Value>, serde_json::Error> {
        let start = self
            .buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(self.buf.len());
        if start == self.buf.len() {
            self.buf.clear();
            return Ok(None);
        }
        let mut it = serde_json::Deserializer::from_slice(&self.buf[start..])
            .into_iter::<serde_json::Value>();
        match it.next() {
            Some(Ok(v)) => {
                let used = start + it.byte_offset();
                self.buf.drain(..used);
                Ok(Some(v))
            }
            Some(Err(e)) if e.is_eof() => Ok(None),
            Some(Err(e)) => {
                self.buf.clear();
                Err(e)
            }
            None => Ok(None),
        }
    }
}

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin,
    Stdout,
    Stderr,
    /// Stream 3: the daemon's own error text (system error).
    System,
}

/// Decodes docker's 8-byte-header frames from bytes as they arrive.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame.
    pub fn next_frame(&mut self) -> Option<(StdStream, Vec<u8>)> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let kind = match self.buf[0] {
            0 => StdStream::Stdin,
            2 => StdStream::Stderr,
            3 => StdStream::System,
            _ => StdStream::Stdout,
        };
        let data = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Some((kind, data))
    }

    /// Bytes of an incomplete frame left at the end.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_splitter_handles_split_and_concatenated_values() {
        let mut s = JsonSplitter::default();
        s.push(br#"{"status":"a"}{"status":"#);
        assert_eq!(s.next_value().unwrap().unwrap()["status"], "a");
        assert!(s.next_value().unwrap().is_none());
        s.push(b"\"b\"}\r\n {\"x\":1}\n");
        assert_eq!(s.next_value().unwrap().unwrap()["status"], "b");
        assert_eq!(s.next_value().unwrap().unwrap()["x"], 1);
        assert!(s.next_value().unwrap().is_none());
        s.push(b"{bad");
        s.push(b"}");
        assert!(s.next_value().is_err());
    }

    #[test]
    fn frames_across_chunk_boundaries() {
        let mut d = FrameDecoder::default();
        let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 3];
        wire.extend_from_slice(b"out");
        wire.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        wire.extend_from_slice(b"er");
        d.push(&wire[..5]);
        assert!(d.next_frame().is_none());
        d.push(&wire[5..12]);
        assert_eq!(d.next_frame(), Some((StdStream::Stdout, b"out".to_vec())));
        assert!(d.next_frame().is_none());
        d.push(&wire[12..]);
        assert_eq!(d.next_frame(), Some((StdStream::Stderr, b"er".to_vec())));
        assert_eq!(d.pending(), 0);
    }
}
