//! `wharf-shim`: the per-container monitor.
//!
//! Started by the daemon (see `wharf_shim_api::spawn`), it detaches
//! (`detach`), becomes a child subreaper, creates the container through the
//! runtime library with the container's stdio held by the shim (`launch`,
//! `stdio`), then serves its socket (`server`) until `Delete` or
//! `Shutdown`: it starts the container, writes its output to the json-file
//! log (`logfile`) and to attached clients, feeds stdin, resizes the pty,
//! runs exec processes, reaps every child and records the init's exit in
//! `exit.json`. It keeps running when the daemon dies and after the
//! container exits.
//!
//! The shim is single-threaded: the runtime forks and refuses to do so in a
//! multi-threaded process.
#![forbid(unsafe_code)]

mod detach;
mod launch;
mod logfile;
mod server;
mod stdio;

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use clap::Parser;
use wharf_runtime::{CreateOptions, Runtime};
use wharf_shim_api::layout;

use crate::server::{Settings, Shim};

/// Command line (built by `wharf_shim_api::ShimConfig::args`).
#[derive(Debug, Parser)]
#[command(name = "wharf-shim", about = "wharf's per-container monitor")]
struct Args {
    /// Container id.
    #[arg(long)]
    id: String,
    /// OCI bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// The runtime's state root.
    #[arg(long)]
    runtime_root: PathBuf,
    /// The shim's state directory (socket, pid file, exit.json).
    #[arg(long)]
    state_dir: PathBuf,
    /// The container's json-file log.
    #[arg(long)]
    log_path: PathBuf,
    /// Rotate the log at this size (bytes, or with a k/m/g suffix).
    #[arg(long, value_parser = parse_size)]
    log_max_size: Option<u64>,
    /// Log files to keep, the current one included.
    #[arg(long, default_value_t = 1)]
    log_max_files: u32,
    /// Give the container a terminal.
    #[arg(long)]
    tty: bool,
    /// Keep the container's stdin open for attach clients.
    #[arg(long)]
    stdin: bool,
    /// Close the container's stdin when an attached client ends its input.
    #[arg(long)]
    stdin_once: bool,
}

/// `123`, `64k`, `10m`, `1g` (binary multiples, as Docker's `max-size`).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'm')) => (&s[..i], 1 << 20),
        Some((i, 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?}"))
}

fn main() {
    close_inherited();
    let args = Args::parse();
    // 1. Run from an unwritable view of this binary: exec processes run
    //    shim code inside the container's namespaces (CVE-2019-5736).
    if let Err(e) = std::fs::create_dir_all(&args.runtime_root)
        .and_then(|()| wharf_runtime::selfexe::reexec_sealed(&args.runtime_root))
    {
        eprintln!("wharf-shim: re-executing from a sealed view of the binary: {e}");
        std::process::exit(1);
    }
    // Started from the view, the kernel named the process after the view's
    // entry (`<dev>-<ino>`): keep the name ps, top and pgrep know.
    let _ = rustix::thread::set_name(c"wharf-shim");
    if let Err(e) = std::fs::create_dir_all(&args.state_dir) {
        eprintln!(
            "wharf-shim: creating state directory {}: {e}",
            args.state_dir.display()
        );
        std::process::exit(1);
    }
    // 2. Detach: from here on this is the shim, not the launched process.
    let ready = match detach::detach() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wharf-shim: detaching: {e}");
            std::process::exit(1);
        }
    };
    let code = match setup(&args) {
        Ok(shim) => {
            ready.ok();
            match shim.run() {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %wharf_runtime::init::chain(&e), "shim failed");
                    1
                }
            }
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "shim setup failed");
            // Clean up before the launcher (and so the daemon) hears of it.
            let _ = std::fs::remove_file(layout::socket_path(&args.state_dir));
            ready.fail(&format!("{e:#}"));
            1
        }
    };
    let _ = std::fs::remove_file(layout::socket_path(&args.state_dir));
    let _ = std::fs::remove_file(layout::pid_path(&args.state_dir));
    std::process::exit(code);
}

/// Closes every descriptor above stderr inherited from whoever launched us
/// (a daemon's or a build tool's descriptors without `O_CLOEXEC`): the
/// shim outlives its launcher and must hold nothing of it. Runs first in
/// `main`, when nothing in this process owns a descriptor yet.
fn close_inherited() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // The directory's own descriptor is closed by now: EBADF, skipped.
        if let Ok(owned) = wharf_sys::process::adopt_fd(fd) {
            drop(owned);
        }
    }
}

/// Everything between detaching and serving: numbered steps; on failure
/// after the container exists, the container is deleted again.
fn setup(args: &Args) -> anyhow::Result<Shim> {
    // 1. Stdio to /dev/null (never the daemon's pipes), subreaper, tracing.
    stdio::null_stdio().context("redirecting stdio to /dev/null")?;
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .context("becoming a child subreaper")?;
    init_tracing(&args.state_dir);
    // 2. Runtime, log file, socket.
    let rt = Runtime::open(&args.runtime_root)
        .with_context(|| format!("opening runtime root {}", args.runtime_root.display()))?;
    if let Some(dir) = args.log_path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating log directory {}", dir.display()))?;
    }
    let log = logfile::JsonLog::open(&args.log_path, args.log_max_size, args.log_max_files)?;
    let listener = bind_socket(&layout::socket_path(&args.state_dir))?;
    // 3. The container, with our stdio ends or its pty master.
    let console = args.state_dir.join(layout::CONSOLE_SOCKET);
    let launched = launch::launch(args.tty, args.stdin, &console, |console_socket| {
        rt.create(&CreateOptions {
            id: args.id.clone(),
            bundle: args.bundle.clone(),
            console_socket: console_socket.map(Path::to_owned),
            pid_file: None,
            no_pivot: false,
            preserve_fds: 0,
        })
    });
    let launched = match launched {
        Ok(l) => l,
        Err(e @ launch::LaunchError::Runtime(_)) => {
            return Err(e).with_context(|| format!("creating container {}", args.id));
        }
        Err(e) => {
            let _ = rt.delete(&args.id, true);
            return Err(e).with_context(|| format!("creating container {}", args.id));
        }
    };
    tracing::info!(container_id = %args.id, pid = launched.pid, "created");
    // 4. The server, and the pid file that tells the daemon it serves.
    let settings = Settings {
        id: args.id.clone(),
        state_dir: args.state_dir.clone(),
        tty: args.tty,
        stdin_once: args.stdin_once,
    };
    let result = Shim::new(rt, settings, listener, log, launched.pid, launched.ends)
        .context("starting the event loop")
        .and_then(|shim| {
            layout::write_pid(
                &args.state_dir,
                rustix::process::getpid().as_raw_nonzero().get(),
            )?;
            Ok(shim)
        });
    if result.is_err()
        && let Ok(rt) = Runtime::open(&args.runtime_root)
    {
        let _ = rt.delete(&args.id, true);
    }
    result
}

/// Listens at `path`, refusing when a live shim already answers there.
fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if UnixStream::connect(path).is_ok() {
        bail!("a shim already serves {}", path.display());
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing stale socket {}", path.display()));
        }
        _ => {}
    }
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    l.set_nonblocking(true)
        .with_context(|| format!("setting {} non-blocking", path.display()))?;
    Ok(l)
}

/// The shim's own diagnostics go to `<state_dir>/shim.log`; the level comes
/// from `$WHARF_SHIM_LOG` (default `info`).
fn init_tracing(state_dir: &Path) {
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(layout::SHIM_LOG))
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHARF_SHIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("").is_err());
    }
}
