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

use serde::Serialize;
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
    /// Appends the complete lines in `data` (joined with what was held back)
    /// to `out`; keeps an unterminated tail unless it grew past
    /// [`MAX_PARTIAL`].
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&data[..=i]);
            out.push(line);
            data = &data[i + 1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_PARTIAL {
            let rest = self.partial.split_off(MAX_PARTIAL);
            out.push(std::mem::replace(&mut self.partial, rest));
        }
    }

    /// Moves the held-back tail, if any, to `out` (end of stream).
    pub fn flush(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.partial.is_empty() {
            out.push(std::mem::take(&mut self.partial));
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// An open json-file log.
#[derive(Debug)]
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
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
        })
    }

    /// Writes one entry per line, all stamped with `time`.
    pub fn write_lines(
        &mut self,
        stream: StreamKind,
        lines: &[Vec<u8>],
        time: &str,
    ) -> Result<(), LogFileError> {
        let mut pending = Vec::new();
        for line in lines {
            if self.max_size.is_some_and(|max| self.size >= max) {
                self.write_out(&pending)?;
                pending.clear();
                self.rotate()?;
            }
            let text = String::from_utf8_lossy(line);
            let entry = Entry {
                log: &text,
                stream: stream.as_str(),
                time,
            };
            let before = pending.len();
            // Serializing plain strings into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut pending, &entry);
            pending.push(b'\n');
            self.size += (pending.len() - before) as u64;
        }
        self.write_out(&pending)
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

    fn lines(data: &[&[u8]]) -> (Vec<Vec<u8>>, LineSplitter) {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for d in data {
            s.feed(d, &mut out);
        }
        (out, s)
    }

    #[test]
    fn splits_lines_across_chunks() {
        let (out, mut s) = lines(&[b"a\nb", b"c\n\nd"]);
        assert_eq!(out, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec()]);
        let mut tail = Vec::new();
        s.flush(&mut tail);
        assert_eq!(tail, vec![b"d".to_vec()]);
        s.flush(&mut tail);
        assert_eq!(tail.len(), 1, "flush twice emits once");
    }

    #[test]
    fn long_lines_are_cut_at_the_limit() {
        let big = vec![b'x'; MAX_PARTIAL * 2 + 10];
        let (out, mut s) = lines(&[&big]);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == MAX_PARTIAL));
        let mut tail = Vec::new();
        s.flush(&mut tail);
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
