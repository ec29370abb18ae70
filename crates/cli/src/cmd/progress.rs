//! Docker's display of JSON progress streams (pull, push, load, import):
//! on a terminal one line per layer ID rewritten in place with a bar and
//! sizes; otherwise plain lines, progress-bar updates skipped.

// Go's int() conversions truncate toward zero; docker's output depends on it.
#![allow(clippy::cast_possible_truncation)]

use std::io::Write;

use serde_json::Value;

use crate::format::units::human_size;

/// `[=====>     ] 12.3MB/45.6MB` as docker's `JSONProgress.String`.
pub fn progress_string(detail: &Value, width: usize) -> String {
    let current = detail["current"].as_i64().unwrap_or(0);
    let total = detail["total"].as_i64().unwrap_or(0);
    let units = detail["units"].as_str().unwrap_or("");
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return if units.is_empty() {
            format!("{:>8}", human_size(current as f64))
        } else {
            format!("{current} {units}")
        };
    }
    let pct = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50);
    let mut out = String::new();
    if width > 110 {
        let pct_u = usize::try_from(pct).unwrap_or(0);
        out.push_str(&format!(
            "[{}>{}] ",
            "=".repeat(pct_u),
            " ".repeat(50 - pct_u)
        ));
    }
    if units.is_empty() {
        if current > total {
            out.push_str(&format!("{:>8}", human_size(current as f64)));
        } else {
            out.push_str(&format!(
                "{:>8}/{}",
                human_size(current as f64),
                human_size(total as f64)
            ));
        }
    } else {
        out.push_str(&format!("{current}/{total} {units}"));
    }
    out
}

/// Renders a stream of messages; returns the first in-band error.
pub struct Display<W: Write> {
    out: W,
    terminal: bool,
    width: usize,
    ids: Vec<String>,
}

impl<W: Write> Display<W> {
    pub fn new(out: W, terminal: bool) -> Display<W> {
        let width = crate::tty::size()
            .map(|(_, c)| usize::from(c))
            .unwrap_or(200);
        Display {
            out,
            terminal,
            width,
            ids: Vec::new(),
        }
    }

    /// Shows one message. An `error`/`errorDetail` message is returned as
    /// an error instead.
    pub fn show(&mut self, m: &Value) -> Result<(), String> {
        if let Some(e) = m
            .get("errorDetail")
            .and_then(|d| d["message"].as_str())
            .or_else(|| m["error"].as_str())
        {
            return Err(e.to_owned());
        }
        if m.get("aux").is_some() && m.get("status").is_none() {
            return Ok(());
        }
        let id = m["id"].as_str().unwrap_or("");
        let status = m["status"].as_str().unwrap_or("");
        let stream = m["stream"].as_str().unwrap_or("");
        let has_progress = m.get("progressDetail").is_some() || m.get("progress").is_some();
        let bar = m
            .get("progressDetail")
            .map(|d| progress_string(d, self.width))
            .unwrap_or_default();
        let bar = if bar.is_empty() {
            m["progress"].as_str().unwrap_or("").to_owned()
        } else {
            bar
        };
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line = match self.ids.iter().position(|i| i == id) {
                Some(l) => l,
                None => {
                    self.ids.push(id.to_owned());
                    if self.terminal {
                        let _ = writeln!(self.out);
                    }
                    self.ids.len() - 1
                }
            };
            diff = self.ids.len() - line;
            if self.terminal {
                let _ = write!(self.out, "\x1b[{diff}A");
            }
        } else {
            self.ids.clear();
        }
        if self.terminal && stream.is_empty() && has_progress {
            let _ = write!(self.out, "\x1b[2K\r");
        } else if !self.terminal && !bar.is_empty() && m.get("progressDetail").is_some() {
            return Ok(());
        }
        let endl = if self.terminal && stream.is_empty() && has_progress {
            "\r"
        } else {
            ""
        };
        if !id.is_empty() {
            let _ = write!(self.out, "{id}: ");
        }
        if self.terminal && (has_progress || !bar.is_empty()) {
            let _ = write!(self.out, "{status} {bar}{endl}");
        } else if !stream.is_empty() {
            let _ = write!(self.out, "{stream}");
        } else {
            let _ = writeln!(self.out, "{status}{endl}");
        }
        if !id.is_empty() && self.terminal && diff > 0 {
            let _ = write!(self.out, "\x1b[{diff}B");
        }
        let _ = self.out.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_bar_strings() {
        assert_eq!(progress_string(&json!({}), 200), "");
        assert_eq!(
            progress_string(&json!({"current": 1_000_000, "total": 4_000_000}), 200),
            format!("[============>{}]      1MB/4MB", " ".repeat(38))
        );
        assert_eq!(
            progress_string(&json!({"current": 1_000_000, "total": 4_000_000}), 80),
            "     1MB/4MB"
        );
        assert_eq!(progress_string(&json!({"current": 2048}), 80), " 2.048kB");
    }

    #[test]
    fn plain_lines_skip_bars() {
        let mut d = Display::new(Vec::new(), false);
        for m in [
            json!({"status": "Pulling from library/busybox", "id": "latest"}),
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"}),
            json!({"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "abc"}),
            json!({"status": "Pull complete", "progressDetail": {}, "id": "abc"}),
            json!({"status": "Digest: sha256:00"}),
        ] {
            d.show(&m).unwrap();
        }
        assert_eq!(
            String::from_utf8(d.out).unwrap(),
            "latest: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Pull complete\nDigest: sha256:00\n"
        );
        let mut d = Display::new(Vec::new(), false);
        assert_eq!(
            d.show(&json!({"errorDetail": {"message": "boom"}, "error": "boom"})),
            Err("boom".into())
        );
    }

    #[test]
    fn terminal_lines_move_the_cursor() {
        let mut d = Display::new(Vec::new(), true);
        d.width = 80;
        d.show(&json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "a"}))
            .unwrap();
        d.show(&json!({"status": "Downloading", "progressDetail": {"current": 1000, "total": 2000}, "id": "a"})).unwrap();
        let s = String::from_utf8(d.out).unwrap();
        assert_eq!(
            s,
            "\n\x1b[1A\x1b[2K\ra: Pulling fs layer \r\x1b[1B\x1b[1A\x1b[2K\ra: Downloading      1kB/2kB\r\x1b[1B"
        );
    }
}
