//! Reading a container's json-file log (written by its shim): one JSON
//! object per line, `{"log": "...", "stream": "stdout", "time": "..."}`,
//! rotated as `<id>-json.log.N` (higher N older) — read oldest first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use super::Containers;
use crate::error::EngineError;
use crate::shim::StreamKind;
use crate::time;

/// What `logs` returns.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Only the last N lines (`None`: all).
    pub tail: Option<usize>,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: StreamKind,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    pub line: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

fn parse_line(l: &str) -> Option<LogEntry> {
    let v: Line = serde_json::from_str(l).ok()?;
    let stream = match v.stream.as_str() {
        "stderr" => StreamKind::Stderr,
        _ => StreamKind::Stdout,
    };
    Some(LogEntry {
        stream,
        time: v.time,
        line: v.log.into_bytes(),
    })
}

fn log_files(base: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (base.parent(), base.file_name().and_then(|n| n.to_str()))
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for e in rd.flatten() {
            let f = e.file_name();
            let Some(f) = f.to_str() else { continue };
            if let Some(n) = f
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|n| n.parse::<u32>().ok())
            {
                rotated.push((n, e.path()));
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut v: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    v.push(base.to_owned());
    v
}

impl LogOptions {
    fn wants(&self, e: &LogEntry) -> bool {
        let stream_ok = match e.stream {
            StreamKind::Stderr => self.stderr,
            _ => self.stdout,
        };
        if !stream_ok {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let t = time::parse_time(&e.time);
            if let (Some(since), Some(t)) = (self.since, t)
                && t < since
            {
                return false;
            }
            if let (Some(until), Some(t)) = (self.until, t)
                && t > until
            {
                return false;
            }
        }
        true
    }
}

impl Containers {
    /// The container's log lines; with `follow`, the channel stays open
    /// until the container stops and its log is drained, or the receiver
    /// is dropped.
    pub fn logs(
        self: &Arc<Self>,
        input: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<LogEntry>), EngineError> {
        let e = self.lookup(input)?;
        let rec = e.snapshot();
        let tty = rec.config.tty;
        let base = PathBuf::from(&rec.log_path);
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let files = log_files(&base);
            // Existing lines, then (follow) new ones from the current file.
            let mut history: Vec<LogEntry> = Vec::new();
            for f in &files {
                if let Ok(s) = tokio::fs::read_to_string(f).await {
                    history.extend(s.lines().filter_map(parse_line).filter(|l| opts.wants(l)));
                }
            }
            let mut offset = tokio::fs::metadata(&base)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            if let Some(n) = opts.tail {
                let skip = history.len().saturating_sub(n);
                history.drain(..skip);
            }
            for l in history {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            let mut lifecycle = e.lifecycle.subscribe();
            loop {
                let running = e.with(|c| c.state.is_running());
                // Read what was appended since `offset`.
                let len = tokio::fs::metadata(&base)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                if len < offset {
                    offset = 0; // rotated
                }
                if len > offset
                    && let Ok(mut f) = tokio::fs::File::open(&base).await
                    && f.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
                {
                    let mut r = BufReader::new(f);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match r.read_line(&mut line).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if !line.ends_with('\n') {
                                    break; // partial line: read it next round
                                }
                                offset += n as u64;
                                if let Some(l) =
                                    parse_line(line.trim_end()).filter(|l| opts.wants(l))
                                    && tx.send(l).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                }
                if !running {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = lifecycle.changed() => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_lines_and_rotation_order() {
        let e = parse_line(r#"{"log":"hi\n","stream":"stderr","time":"2024-01-01T00:00:00.5Z"}"#)
            .unwrap();
        assert_eq!(e.stream, StreamKind::Stderr);
        assert_eq!(e.line, b"hi\n");
        assert!(parse_line("garbage").is_none());
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("x-json.log");
        for n in ["x-json.log", "x-json.log.1", "x-json.log.2", "other"] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let files = log_files(&base);
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["x-json.log.2", "x-json.log.1", "x-json.log"]);
        let o = LogOptions {
            stdout: true,
            stderr: false,
            ..Default::default()
        };
        assert!(!o.wants(&e));
    }
}
