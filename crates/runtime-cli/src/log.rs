//! runc-style error reporting: plain text on stderr, or lines in the `--log`
//! file (JSON: `{"level","msg","time"}`), which callers such as containerd
//! read back to show the reason of a failure.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::{Cli, LogFormat};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    pub debug: bool,
}

impl Logger {
    pub fn new(cli: &Cli) -> Self {
        let l = Logger {
            file: cli.log.clone(),
            json: cli.log_format == LogFormat::Json,
            debug: cli.debug,
        };
        if cli.debug {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(tracing::Level::DEBUG)
                .try_init();
        } else {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(tracing::Level::WARN)
                .try_init();
        }
        l
    }

    fn line(&self, level: &str, msg: &str) -> String {
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": wharf_runtime::state::now_rfc3339()}).to_string()
        } else {
            format!(
                "time=\"{}\" level={level} msg={msg:?}",
                wharf_runtime::state::now_rfc3339()
            )
        }
    }

    /// Reports a failure: to the log file when set (and stderr), else stderr.
    pub fn error(&self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        if let Some(path) = &self.file
            && let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        {
            let _ = writeln!(f, "{}", self.line("error", &msg));
        }
        eprintln!("{}", self.line("error", &msg));
    }

    /// A debug line (timing log), only with `--debug`.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            eprintln!("{}", self.line("debug", msg));
        }
    }
}
