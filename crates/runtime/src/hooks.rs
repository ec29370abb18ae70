//! Running OCI lifecycle hooks: each hook gets the container state JSON on
//! its stdin, its own args (args[0] included) and env, and an optional
//! timeout in seconds after which it is killed and counted as failed.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;
use rustix::event::{PollFd, PollFlags};
use rustix::fs::OFlags;
use rustix::process::{Pid, PidfdFlags};

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path} could not be started")]
    Spawn {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook {path} failed: {status}{stderr}")]
    Failed {
        kind: &'static str,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook {path} timed out after {secs} s")]
    Timeout {
        kind: &'static str,
        path: PathBuf,
        secs: i64,
    },
}

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    for h in hooks {
        run_one(kind, h, state_json)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, hook: &Hook, state_json: &str) -> Result<(), HookError> {
    let path = hook.path().clone();
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&path);
    if let Some((first, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let deadline = hook.timeout().filter(|t| *t > 0).map(|secs| {
        (
            secs,
            Instant::now() + Duration::from_secs(secs.unsigned_abs()),
        )
    });
    // 1. Feed the state and collect stderr while waiting for the exit, all
    //    through one poll: the state may exceed a pipe buffer and the hook
    //    may never read it, so a blocking write could outlast the timeout.
    let exited = feed_and_wait(&mut child, state_json.as_bytes(), deadline.map(|d| d.1))
        .map_err(spawn_err)?;
    let Some(stderr) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        let secs = deadline.map_or(0, |d| d.0);
        return Err(HookError::Timeout { kind, path, secs });
    };
    // 2. The exit status.
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        let err = String::from_utf8_lossy(&stderr).trim().to_string();
        return Err(HookError::Failed {
            kind,
            path,
            status: status.to_string(),
            stderr: if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            },
        });
    }
    Ok(())
}

/// Most stderr kept from one hook (the rest is read and dropped).
const STDERR_KEEP: usize = 64 * 1024;

/// Writes `input` to the child's stdin (closing it when done, or when the
/// hook stops reading), reads its stderr, and returns the stderr once the
/// child exited, or `None` when `deadline` passed first. The child is not
/// reaped.
fn feed_and_wait(
    child: &mut Child,
    mut input: &[u8],
    deadline: Option<Instant>,
) -> std::io::Result<Option<Vec<u8>>> {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())?;
    let mut stdin: Option<OwnedFd> = child.stdin.take().map(OwnedFd::from);
    let mut stderr: Option<OwnedFd> = child.stderr.take().map(OwnedFd::from);
    for fd in stdin.iter().chain(stderr.iter()) {
        let flags = rustix::fs::fcntl_getfl(fd)?;
        rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    }
    let mut kept = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if input.is_empty() {
            // Closing stdin gives the hook its EOF.
            stdin = None;
        }
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                Some(rustix::time::Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
            None => None,
        };
        let (exited, writable, readable) = {
            let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
            if let Some(fd) = &stdin {
                fds.push(PollFd::new(fd, PollFlags::OUT));
            }
            if let Some(fd) = &stderr {
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
            let stderr_at = 1 + usize::from(stdin.is_some());
            (
                ready(0),
                stdin.is_some() && ready(1),
                stderr.is_some() && ready(stderr_at),
            )
        };
        if writable && let Some(fd) = &stdin {
            match rustix::io::write(fd, input) {
                Ok(n) => input = &input[n..],
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                // EPIPE and friends: the hook does not read its stdin.
                Err(_) => input = &[],
            }
        }
        if readable && let Some(fd) = &stderr {
            match rustix::io::read(fd, &mut chunk) {
                Ok(0) => stderr = None,
                Ok(n) => keep(&mut kept, &chunk[..n]),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(_) => stderr = None,
            }
        }
        if exited {
            break;
        }
    }
    // What the hook wrote just before exiting (a descendant still holding
    // the pipe makes it EAGAIN: stop there).
    if let Some(fd) = &stderr {
        while let Ok(n @ 1..) = rustix::io::read(fd, &mut chunk) {
            keep(&mut kept, &chunk[..n]);
        }
    }
    Ok(Some(kept))
}

fn keep(kept: &mut Vec<u8>, bytes: &[u8]) {
    let room = STDERR_KEEP.saturating_sub(kept.len());
    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn state_on_stdin_and_failure() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let ok = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}; echo $FOO >> {}", out.display(), out.display()),
            ])
            .env(vec!["FOO=bar".into()])
            .build()
            .unwrap();
        run_all("prestart", &[ok], "{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"}bar\n"
        );
        let bad = HookBuilder::default().path("/bin/false").build().unwrap();
        assert!(matches!(
            run_all("poststop", &[bad], "{}"),
            Err(HookError::Failed { .. })
        ));
        let slow = HookBuilder::default()
            .path("/bin/sleep")
            .args(vec!["sleep".into(), "5".into()])
            .timeout(1i64)
            .build()
            .unwrap();
        assert!(matches!(
            run_all("poststart", &[slow], "{}"),
            Err(HookError::Timeout { .. })
        ));
    }

    #[test]
    fn timeout_holds_for_a_hook_that_ignores_a_large_state() {
        let slow = HookBuilder::default()
            .path("/bin/sleep")
            .args(vec!["sleep".into(), "10".into()])
            .timeout(1i64)
            .build()
            .unwrap();
        let big = "x".repeat(1 << 20);
        let started = Instant::now();
        assert!(matches!(
            run_all("prestart", &[slow], &big),
            Err(HookError::Timeout { secs: 1, .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn large_state_arrives_and_large_stderr_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "cat > {}; head -c 300000 /dev/zero | tr '\\0' e >&2; exit 3",
                    out.display()
                ),
            ])
            .timeout(10i64)
            .build()
            .unwrap();
        let big = "y".repeat(1 << 20);
        match run_all("createRuntime", &[hook], &big) {
            Err(HookError::Failed { stderr, .. }) => {
                assert!(stderr.len() <= STDERR_KEEP + 2, "{}", stderr.len());
                assert!(stderr.starts_with(": eee"), "{}", &stderr[..10]);
            }
            other => panic!("expected a failed hook, got {other:?}"),
        }
        assert_eq!(std::fs::read(&out).unwrap().len(), 1 << 20);
    }
}
