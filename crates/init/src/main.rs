//! `wharf-init`: the init `docker run --init` puts at PID 1 of a container.
//!
//! Usage: `wharf-init [--] PROGRAM [ARGS...]`. It runs PROGRAM as its only
//! child and then does the two jobs a PID 1 must do and most programs do
//! not:
//! - **forward signals**: every signal it receives (SIGTERM from `docker
//!   stop`, SIGINT, SIGHUP, SIGUSR1...) is sent on to the child; PID 1
//!   has no default signal actions, so without this a `docker stop` would
//!   wait for its timeout and then SIGKILL;
//! - **reap zombies**: orphans are re-parented to PID 1; every one that
//!   exits is waited for, so none stays a zombie.
//!
//! It exits when its child does, with the child's exit code (128 + signal
//! number when a signal killed it), which becomes the container's.
//!
//! How: all signals are blocked before the child is started (the child is
//! started with `posix_spawn` and a clean mask and default dispositions;
//! Rust's `Command` would pass the blocked mask on), then `sigwait(2)` takes
//! them one at a time, so there are no signal handlers and no races between
//! a handler and `waitpid`. Real-time signals cannot be named by the signal
//! type this uses and are not forwarded.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawnp};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

fn code(n: i32) -> ExitCode {
    ExitCode::from(u8::try_from(n & 0xff).unwrap_or(255))
}

/// Reaps every exited child; returns the exit code of `child` if it was
/// among them.
fn reap(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if pid == child => result = Some(status),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                result = Some(128 + sig as i32);
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return result,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("wharf-init: waitpid: {e}");
                return result;
            }
        }
    }
}

fn cstring(s: &OsStr) -> Result<CString, Errno> {
    CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Starts `program` (looked up on `PATH`) with every signal unblocked and
/// at its default action.
fn spawn(program: &OsStr, rest: &[OsString]) -> Result<Pid, Errno> {
    let mut attr = PosixSpawnAttr::init()?;
    attr.set_sigmask(&SigSet::empty())?;
    attr.set_sigdefault(&SigSet::all())?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )?;
    let actions = PosixSpawnFileActions::init()?;
    let path = cstring(program)?;
    let args: Vec<CString> = std::iter::once(program)
        .chain(rest.iter().map(OsString::as_os_str))
        .map(cstring)
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<Result<_, _>>()?;
    posix_spawnp(&path, &actions, &attr, &args, &env)
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: wharf-init [--] PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };

    // 1. Block everything: signals are taken synchronously with sigwait.
    let all = SigSet::all();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None) {
        eprintln!("wharf-init: sigprocmask: {e}");
        return ExitCode::from(1);
    }

    // 2. The child, with a clean signal mask and default dispositions
    //    (posix_spawn sets both in the child before it execs).
    let child_pid = match spawn(program, rest) {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("wharf-init: cannot run {}: {e}", program.to_string_lossy());
            return code(if e == Errno::ENOENT { 127 } else { 126 });
        }
    };

    // 3. Forward, reap, until the child is gone.
    loop {
        match all.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(status) = reap(child_pid) {
                    return code(status);
                }
            }
            Ok(sig) => {
                if let Err(e) = kill(child_pid, sig)
                    && e != Errno::ESRCH
                {
                    eprintln!("wharf-init: forwarding {sig}: {e}");
                }
            }
            Err(_) => {} // a real-time signal: not forwarded
        }
    }
}
