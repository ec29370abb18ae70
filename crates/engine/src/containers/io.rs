//! Reading a container's json-file log (written by its shim): one JSON
//! object per line, `{"log": "...", "stream": "stdout", "time": "..."}`,
//! rotated as `<id>-json.log.N` (higher N older) — read oldest first.
//!
//! Following (`logs -f`) keeps the current file open and reads what is
//! appended, woken by inotify on the log's directory ([`LogWatch`]) rather
//! than by polling. inotify rather than a notification from the shim: the
//! shim stays a plain writer (no subscriber bookkeeping in its
//! single-threaded loop, no protocol for it), a follower works the same
//! whether the shim is alive, gone, or the daemon was restarted in
//! between, and rotation is seen as what it is on disk (a rename and a new
//! file). A rotation is followed by draining the renamed file through the
//! descriptor already open, then opening the new file; a truncation (one
//! file kept) starts again at its beginning. Following ends once the
//! container is no longer running and the log is read to its end (the
//! shim writes the last line before the exit is recorded).

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::fs::inotify;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use super::Containers;
use crate::error::EngineError;
use crate::shim::StreamKind;
use crate::time;

/// How often a follower looks at the log when inotify is not available
/// (out of inotify instances): the old polling, as a fallback only.
const POLL_FALLBACK: Duration = Duration::from_millis(250);

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

/// Changes in the directory of a log: an inotify instance watching for
/// writes to, creation of and renames of the log's files.
#[derive(Debug)]
struct LogWatch {
    fd: AsyncFd<OwnedFd>,
    /// The log's file name: events for other files are ignored.
    name: OsString,
}

impl LogWatch {
    fn new(base: &Path) -> io::Result<LogWatch> {
        let dir = base.parent().unwrap_or(Path::new("/"));
        let name = base.file_name().unwrap_or_default().to_owned();
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::MODIFY
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_FROM
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::DELETE_SELF,
        )?;
        // `AsyncFd::new` is deprecated because an arbitrary `AsRawFd` may
        // hand out a descriptor it does not keep open; an `OwnedFd` owns
        // its descriptor until the `AsyncFd` drops it, which is the
        // invariant the safe-looking constructor needs (the replacement,
        // `register`, is `unsafe`, and this crate forbids `unsafe`).
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(LogWatch { fd, name })
    }

    /// Waits until one of the log's files changed (or the directory went).
    async fn changed(&self) -> io::Result<()> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        loop {
            let mut guard = self.fd.readable().await?;
            let mut relevant = false;
            let mut reader = inotify::Reader::new(self.fd.get_ref(), &mut buf);
            loop {
                match reader.next() {
                    Ok(ev) => {
                        relevant |= ev.events().contains(inotify::ReadFlags::DELETE_SELF)
                            || ev.file_name().is_some_and(|n| {
                                n.to_bytes().starts_with(self.name.as_encoded_bytes())
                            });
                    }
                    Err(rustix::io::Errno::WOULDBLOCK) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if relevant {
                return Ok(());
            }
        }
    }
}

/// The file being followed and how far it was read (complete lines only).
struct Cursor {
    file: tokio::fs::File,
    ino: u64,
    offset: u64,
}

impl Cursor {
    async fn open(path: &Path) -> Option<Cursor> {
        let file = tokio::fs::File::open(path).await.ok()?;
        let ino = file.metadata().await.ok()?.ino();
        Some(Cursor {
            file,
            ino,
            offset: 0,
        })
    }

    /// The complete lines appended since the last call.
    async fn read_new(&mut self) -> Vec<LogEntry> {
        let mut out = Vec::new();
        let len = self.file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Truncated in place (one file kept): everything is new.
            self.offset = 0;
        }
        if len == self.offset
            || self
                .file
                .seek(std::io::SeekFrom::Start(self.offset))
                .await
                .is_err()
        {
            return out;
        }
        let mut r = BufReader::new(&mut self.file);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !line.ends_with('\n') {
                        break; // partial line: read again once complete
                    }
                    self.offset += n as u64;
                    out.extend(parse_line(line.trim_end()));
                }
            }
        }
        out
    }
}

/// The lines appended to the log at `base` since the last call: the rest
/// of the file `cur` has open, and after a rotation (`base` is another
/// file now) the new file from its start, which `cur` then follows.
async fn read_appended(base: &Path, cur: &mut Option<Cursor>) -> Vec<LogEntry> {
    let mut lines = Vec::new();
    if let Some(c) = cur.as_mut() {
        lines.extend(c.read_new().await);
    }
    let now = tokio::fs::metadata(base).await.map(|m| m.ino()).ok();
    if now.is_some() && now != cur.as_ref().map(|c| c.ino) {
        *cur = Cursor::open(base).await;
        if let Some(c) = cur.as_mut() {
            lines.extend(c.read_new().await);
        }
    }
    lines
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
            // Watch before reading, so no write after the read is missed.
            let watch = if opts.follow {
                LogWatch::new(&base)
                    .inspect_err(|err| {
                        tracing::debug!(error = %err, path = %base.display(), "no inotify for the log: polling");
                    })
                    .ok()
            } else {
                None
            };
            // Existing lines: the rotated files, then the current one
            // through the descriptor that following goes on reading.
            let mut cur = Cursor::open(&base).await;
            let mut history: Vec<LogEntry> = Vec::new();
            for f in log_files(&base).iter().filter(|f| **f != base) {
                if let Ok(s) = tokio::fs::read_to_string(f).await {
                    history.extend(s.lines().filter_map(parse_line).filter(|l| opts.wants(l)));
                }
            }
            if let Some(c) = &mut cur {
                history.extend(c.read_new().await.into_iter().filter(|l| opts.wants(l)));
            }
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
                // Sampled before reading: lines written before the exit
                // are read below before following ends.
                let running = e.with(|c| c.state.is_running());
                let lines = read_appended(&base, &mut cur).await;
                for l in lines.into_iter().filter(|l| opts.wants(l)) {
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
                if !running {
                    return;
                }
                let wake = async {
                    match &watch {
                        Some(w) => {
                            if w.changed().await.is_err() {
                                tokio::time::sleep(POLL_FALLBACK).await;
                            }
                        }
                        None => tokio::time::sleep(POLL_FALLBACK).await,
                    }
                };
                tokio::select! {
                    _ = wake => {}
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

    fn entry(n: u32) -> String {
        format!(
            "{{\"log\":\"line{n}\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}}\n"
        )
    }

    fn append(path: &Path, text: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn texts(lines: &[LogEntry]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.line).trim_end().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn following_wakes_on_writes_and_survives_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("c-json.log");
        append(&base, &(entry(1) + &entry(2)));
        let watch = LogWatch::new(&base).unwrap();
        let mut cur = Cursor::open(&base).await;
        assert_eq!(
            texts(&read_appended(&base, &mut cur).await),
            ["line1", "line2"]
        );
        // Other files in the directory do not wake the follower.
        std::fs::write(dir.path().join("config.v2.json"), "{}").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(200), watch.changed()).await;
        assert!(quiet.is_err(), "woken by an unrelated file");
        // A write wakes it promptly (no polling interval to wait out).
        let writer = {
            let base = base.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                append(&base, &entry(3));
            })
        };
        let t0 = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("woken")
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2));
        writer.await.unwrap();
        assert_eq!(texts(&read_appended(&base, &mut cur).await), ["line3"]);
        // A partial line waits for its end.
        append(&base, &entry(4)[..10]);
        assert!(read_appended(&base, &mut cur).await.is_empty());
        append(&base, &entry(4)[10..]);
        // Rotation between two reads: the end of the renamed file, then
        // the new file.
        append(&base, &entry(5));
        std::fs::rename(&base, dir.path().join("c-json.log.1")).unwrap();
        append(&base, &entry(6));
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("woken by the rotation")
            .unwrap();
        assert_eq!(
            texts(&read_appended(&base, &mut cur).await),
            ["line4", "line5", "line6"]
        );
        // Truncation in place (one file kept, at its size limit): read again
        // from the start. Seen by the size going back, so a follower that
        // slept until the file grew past its old offset would miss it;
        // woken by inotify, it reads right after the truncating write.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&base)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&base, &entry(7)[..entry(7).len() - 1].replace("line7", "7"));
        append(&base, "\n");
        assert_eq!(texts(&read_appended(&base, &mut cur).await), ["7"]);
    }
}
