//! Running OCI lifecycle hooks: each hook gets the container state JSON on
//! its stdin, its own args (args[0] included) and env, and an optional
//! timeout in seconds after which it is killed and counted as failed.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;
use rustix::event::{PollFd, PollFlags};
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
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    if let Some(secs) = hook.timeout().filter(|t| *t > 0) {
        let pid = Pid::from_raw(child.id() as i32).expect("child pid is positive");
        let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())
            .map_err(|e| spawn_err(e.into()))?;
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let ready = loop {
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(spawn_err(e.into())),
            }
        };
        if ready == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout { kind, path, secs });
        }
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(HookError::Failed {
            kind,
            path,
            status: out.status.to_string(),
            stderr: if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            },
        });
    }
    Ok(())
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
}
