//! `wharf-runtime`: a runc-compatible command line over the `wharf-runtime`
//! library, so containerd, CRI-O and Podman can drive it as their runc
//! binary, and so it can be measured against crun and runc.
//!
//! Errors go to stderr, or with `--log` to that file in runc's format
//! (`--log-format json` writes `{"level":"error","msg":...,"time":...}` lines,
//! which containerd's go-runc reads back); the exit code is 1 on failure, or
//! the container process's status for `run` and `exec` in the foreground.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod log;
mod signals;
mod tty;

use clap::Parser;

/// The runtime lives for one operation: an arena spares it the system
/// allocator's map/unmap churn (see `wharf_sys::arena`).
#[global_allocator]
static ALLOC: wharf_sys::arena::ArenaFirst<{ 8 << 20 }> = wharf_sys::arena::ArenaFirst::new();

fn main() {
    let cli = cli::Cli::parse();
    // Commands that enter a container re-exec from a sealed view of this
    // binary first: before the logger is set up (work this process would
    // throw away), unless --debug wants to see why a view failed.
    let early = cli.debug.then(|| log::Logger::new(&cli));
    let sealed = commands::reexec_sealed(&cli);
    let log = early.unwrap_or_else(|| log::Logger::new(&cli));
    let code = match sealed.and_then(|()| commands::dispatch(&cli, &log)) {
        Ok(code) => code,
        Err(e) => {
            log.error(&e);
            1
        }
    };
    std::process::exit(code);
}
