//! The caller's terminal: is it one, its size, and raw mode held by a
//! guard that restores the saved settings when dropped (on every return
//! path, on unwinding, and before `std::process::exit` in `main`, which
//! drops it explicitly).

use rustix::termios::{OptionalActions, Termios, isatty, tcgetattr, tcgetwinsize, tcsetattr};

pub fn stdin_is_tty() -> bool {
    isatty(std::io::stdin())
}

pub fn stdout_is_tty() -> bool {
    isatty(std::io::stdout())
}

pub fn stderr_is_tty() -> bool {
    isatty(std::io::stderr())
}

/// (rows, columns) of the terminal on stdout (or stdin), if any.
pub fn size() -> Option<(u16, u16)> {
    let ws = tcgetwinsize(std::io::stdout())
        .or_else(|_| tcgetwinsize(std::io::stdin()))
        .ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Raw mode on stdin until dropped.
pub struct RawGuard {
    saved: Termios,
}

impl RawGuard {
    /// Puts stdin in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawGuard> {
        let stdin = std::io::stdin();
        if !isatty(&stdin) {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        // Keep output post-processing so "\n" still returns the carriage,
        // as docker's raw mode does for the local side.
        raw.output_modes = saved.output_modes;
        tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawGuard { saved })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Parses docker's `--detach-keys` (`ctrl-p,ctrl-q`, `a`, `ctrl-@`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_alphabetic() => b.to_ascii_lowercase() - b'a' + 1,
                b"@" => 0,
                b"[" => 27,
                b"\\" => 28,
                b"]" => 29,
                b"^" => 30,
                b"_" => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@").unwrap(), vec![0]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }
}
