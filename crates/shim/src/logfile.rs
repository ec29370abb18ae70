//! The container's log in Docker's json-file format, with Docker's rotation.
//!
//! Each line the container prints becomes one JSON object per line:
//! `{"log":"text\n","stream":"stdout","time":"<RFC 3339, ns>"}`. Output is
//! split into lines per stream ([`LineSplitter`]); a line longer than
//! [`MAX_PARTIAL`] bytes, or the unterminated tail at end of stream, is
//! written without its `\n`, as Docker does with partial lines.
//!
//! Rotation ([`JsonLog`]) follows Docker's json-file driver: before an entry
//! is written, a file that already holds `max_size` bytes or more is
//! rotated: `log.(n-2)` to `log.(n-1)`, ..., `log` to `log.1`, and a new
//! `log` is started; with `max_files` = 1 the file is truncated instead.
//! Without `max_size` the file grows without bound.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use wharf_shim_api::StreamKind;

/// Longest line kept back waiting for its `\n` (Docker's copier uses 16 KiB).
pub const MAX_PARTIAL: usize = 16 * 1024;

/// Errors writing the json-file log.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("failed to open log {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write log {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to rotate log {path}")]
    Rotate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Splits one stream's bytes into log lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Calls `emit` with each complete line in `data` (joined with what was
    /// held back); keeps an unterminated tail unless it grew past
    /// [`MAX_PARTIAL`]. Lines wholly inside `data` are passed as slices of
    /// it, without a copy.
    pub fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                emit(&data[..=i]);
            } else {
                self.partial.extend_from_slice(&data[..=i]);
                emit(&self.partial);
                self.partial.clear();
            }
            data = &data[i + 1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_PARTIAL {
            emit(&self.partial[..MAX_PARTIAL]);
            self.partial.drain(..MAX_PARTIAL);
        }
    }

    /// Emits the held-back tail, if any (end of stream).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial);
            self.partial.clear();
        }
    }
}

/// Appends one json-file entry, `{"log":…,"stream":…,"time":…}` and a
/// newline, to `out`: the bytes serde_json writes for the same struct, but
/// with one reservation and whole unescaped runs copied at once (serde's
/// writer makes about ten small writes per entry, and per-line cost is what
/// bounds log throughput).
fn encode_entry(out: &mut Vec<u8>, log: &str, stream: &str, time: &str) {
    out.reserve(log.len() + stream.len() + time.len() + 32);
    out.extend_from_slice(b"{\"log\":\"");
    escape_json(out, log);
    out.extend_from_slice(b"\",\"stream\":\"");
    escape_json(out, stream);
    out.extend_from_slice(b"\",\"time\":\"");
    escape_json(out, time);
    out.extend_from_slice(b"\"}\n");
}

/// JSON string escaping as serde_json does it: `"` and `\` escaped, the
/// control characters as `\b \t \n \f \r` or `\u00xx`, everything
/// else (including non-ASCII) copied as is.
fn escape_json(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// An open json-file log.
#[derive(Debug)]
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    /// Entries encoded but not yet written (one write per batch).
    pending: Vec<u8>,
}

impl JsonLog {
    /// Opens (appending) or creates the log at `path`.
    pub fn open(
        path: &Path,
        max_size: Option<u64>,
        max_files: u32,
    ) -> Result<JsonLog, LogFileError> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|source| LogFileError::Open {
                path: path.to_owned(),
                source,
            })?
            .len();
        Ok(JsonLog {
            path: path.to_owned(),
            file,
            size,
            max_size: max_size.filter(|&n| n > 0),
            max_files: max_files.max(1),
            pending: Vec::new(),
        })
    }

    /// Writes one entry per line, all stamped with `time`.
    #[cfg(test)]
    pub fn write_lines(
        &mut self,
        stream: StreamKind,
        lines: &[Vec<u8>],
        time: &str,
    ) -> Result<(), LogFileError> {
        for line in lines {
            self.push_line(stream, line, time)?;
        }
        self.finish()
    }

    /// Adds one entry for `line` to the batch (rotating first when the file
    /// is full); [`finish`](Self::finish) writes the batch.
    pub fn push_line(
        &mut self,
        stream: StreamKind,
        line: &[u8],
        time: &str,
    ) -> Result<(), LogFileError> {
        if self.max_size.is_some_and(|max| self.size >= max) {
            self.finish()?;
            self.rotate()?;
        }
        let text = String::from_utf8_lossy(line);
        let before = self.pending.len();
        encode_entry(&mut self.pending, &text, stream.as_str(), time);
        self.size += (self.pending.len() - before) as u64;
        Ok(())
    }

    /// Writes the entries added since the last call.
    pub fn finish(&mut self) -> Result<(), LogFileError> {
        let pending = std::mem::take(&mut self.pending);
        let res = self.write_out(&pending);
        self.pending = pending;
        self.pending.clear();
        res
    }

    fn write_out(&mut self, bytes: &[u8]) -> Result<(), LogFileError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .map_err(|source| LogFileError::Write {
                path: self.path.clone(),
                source,
            })
    }

    fn rotate(&mut self) -> Result<(), LogFileError> {
        let err = |source| LogFileError::Rotate {
            path: self.path.clone(),
            source,
        };
        if self.max_files <= 1 {
            self.file.set_len(0).map_err(err)?;
            self.size = 0;
            return Ok(());
        }
        let numbered = |i: u32| {
            let mut p = self.path.as_os_str().to_owned();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        for i in (1..self.max_files - 1).rev() {
            match std::fs::rename(numbered(i), numbered(i + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
                _ => {}
            }
        }
        std::fs::rename(&self.path, numbered(1)).map_err(err)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogFileError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|source| LogFileError::Open {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Entry<'a> {
        log: &'a str,
        stream: &'a str,
        time: &'a str,
    }

    #[test]
    fn entries_are_byte_identical_to_serde_json() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain line\n".into(),
            "quote \" backslash \\ tab \t cr \r\n".into(),
            "\u{8}\u{c}\u{0}\u{1f}\u{7f} é 日本 \u{1F600}".into(),
        ];
        // Every single character below 0x80 alone and between text.
        for c in 0u8..0x80 {
            samples.push(format!("a{}b", char::from(c)));
            samples.push(char::from(c).to_string());
        }
        for log in &samples {
            let mut ours = Vec::new();
            encode_entry(&mut ours, log, "stdout", "2026-11-22T10:00:00.123456789Z");
            let mut serde = serde_json::to_vec(&Entry {
                log,
                stream: "stdout",
                time: "2026-11-22T10:00:00.123456789Z",
            })
            .unwrap();
            serde.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&serde),
                "for {log:?}"
            );
        }
    }

    fn lines(data: &[&[u8]]) -> (Vec<Vec<u8>>, LineSplitter) {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for d in data {
            s.feed(d, |l| out.push(l.to_vec()));
        }
        (out, s)
    }

    #[test]
    fn splits_lines_across_chunks() {
        let (out, mut s) = lines(&[b"a\nb", b"c\n\nd"]);
        assert_eq!(out, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec()]);
        let mut tail = Vec::new();
        s.flush(|l| tail.push(l.to_vec()));
        assert_eq!(tail, vec![b"d".to_vec()]);
        s.flush(|l| tail.push(l.to_vec()));
        assert_eq!(tail.len(), 1, "flush twice emits once");
    }

    #[test]
    fn long_lines_are_cut_at_the_limit() {
        let big = vec![b'x'; MAX_PARTIAL * 2 + 10];
        let (out, mut s) = lines(&[&big]);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == MAX_PARTIAL));
        let mut tail = Vec::new();
        s.flush(|l| tail.push(l.to_vec()));
        assert_eq!(tail[0].len(), 10);
    }

    fn read_entries(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn entries_have_docker_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&path, None, 1).unwrap();
        let t = "2026-11-22T08:00:00.123456789Z";
        log.write_lines(StreamKind::Stderr, &[b"caf\xc3\xa9 \"q\"\n".to_vec()], t)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"log\":\"caf\u{e9} \\\"q\\\"\\n\",\"stream\":\"stderr\",\"time\":\"{t}\"}}\n"
            )
        );
    }

    #[test]
    fn rotates_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let t = "2026-11-22T08:00:00.000000000Z";
        // Each entry is about 77 bytes; max 100 bytes: two entries per file.
        let mut log = JsonLog::open(&path, Some(100), 3).unwrap();
        for i in 0..7 {
            log.write_lines(StreamKind::Stdout, &[format!("line {i}\n").into_bytes()], t)
                .unwrap();
        }
        let text = |e: &[serde_json::Value]| -> Vec<String> {
            e.iter()
                .map(|v| v["log"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(text(&read_entries(&path)), ["line 6\n"]);
        let p1 = dir.path().join("c-json.log.1");
        let p2 = dir.path().join("c-json.log.2");
        assert_eq!(text(&read_entries(&p1)), ["line 4\n", "line 5\n"]);
        assert_eq!(text(&read_entries(&p2)), ["line 2\n", "line 3\n"]);
        assert!(!dir.path().join("c-json.log.3").exists());
        // Reopening continues with the current size.
        drop(log);
        let mut log = JsonLog::open(&path, Some(100), 3).unwrap();
        log.write_lines(StreamKind::Stdout, &[b"line 7\n".to_vec()], t)
            .unwrap();
        log.write_lines(StreamKind::Stdout, &[b"line 8\n".to_vec()], t)
            .unwrap();
        assert_eq!(text(&read_entries(&path)), ["line 8\n"]);
        assert_eq!(text(&read_entries(&p1)), ["line 6\n", "line 7\n"]);
    }

    #[test]
    fn one_file_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let t = "2026-11-22T08:00:00.000000000Z";
        let mut log = JsonLog::open(&path, Some(10), 1).unwrap();
        let batch: Vec<Vec<u8>> = (0..3).map(|i| format!("l{i}\n").into_bytes()).collect();
        log.write_lines(StreamKind::Stdout, &batch, t).unwrap();
        let entries = read_entries(&path);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["log"], "l2\n");
        assert!(!dir.path().join("c-json.log.1").exists());
    }
}
