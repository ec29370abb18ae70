//! A tmux server of a test's own, for terminal tests: one session `t`
//! whose pane runs a shell command line, keys sent to it, its text read
//! back. The server is killed on drop, also when the test fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`Tmux::wait_for`] waits for a text to appear.
pub const TMUX_WAIT: Duration = Duration::from_secs(20);

/// A private tmux server (`tmux -L <name>`).
#[derive(Debug)]
pub struct Tmux(String);

impl Tmux {
    /// A server with a unique name starting with `prefix`.
    pub fn new(prefix: &str) -> Tmux {
        Tmux(crate::unique_id(prefix))
    }

    /// Runs a tmux command on this server; its stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs `shell` in the pane of session `t` (created 100x30 the first
    /// time, respawned afterwards).
    pub fn run(&self, shell: &str) {
        let exists = Command::new("tmux")
            .args(["-L", &self.0, "has-session", "-t", "t"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if exists {
            self.cmd(&["respawn-pane", "-k", "-t", "t", shell]);
        } else {
            self.cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
                "-y",
                "30",
                shell,
            ]);
        }
    }

    /// Sends keys (`send-keys` syntax: `C-p`, `Enter`, text) to the pane.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// The pane's visible text.
    pub fn pane(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the pane shows `needle` (panics after [`TMUX_WAIT`]
    /// with the pane's text); returns the pane.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + TMUX_WAIT;
        loop {
            let p = self.pane();
            if p.contains(needle) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared; pane:\n{p}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .arg("kill-server")
            .status();
    }
}
