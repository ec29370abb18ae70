//! A container under a real `wharf-shim`: bundle, runtime root, state
//! directory and log, torn down (shim killed, container deleted, cgroup and
//! directories removed) when the fixture drops, also after a failed test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf_shim_api::{ShimConfig, ShimHandle, layout, spawn_shim};
use wharf_testkit::{Bundle, kill_pid, require_root, test_tmp};

pub const MIB: u64 = 1 << 20;

pub struct Fixture {
    pub bundle: Bundle,
    pub dir: PathBuf,
    pub cfg: ShimConfig,
}

pub fn shim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wharf-shim"))
}

impl Fixture {
    pub fn new(prefix: &str) -> Fixture {
        require_root();
        let bundle = Bundle::with_prefix(prefix).expect("building the test bundle");
        // Short: socket paths must fit in 108 bytes.
        let dir = test_tmp().join(format!("ws-{}", bundle.id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = ShimConfig {
            id: bundle.id().to_owned(),
            bundle: bundle.path().to_owned(),
            runtime_root: dir.join("rt"),
            state_dir: dir.join("s"),
            log_path: dir.join("log").join("c-json.log"),
            ..ShimConfig::default()
        };
        Fixture { bundle, dir, cfg }
    }

    pub async fn spawn(&self) -> ShimHandle {
        self.bundle.write_config().unwrap();
        spawn_shim(&shim_binary(), &self.cfg)
            .await
            .expect("spawning the shim")
    }

    /// The json-file log entries, oldest file first.
    pub fn log_entries(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut files = vec![self.cfg.log_path.clone()];
        for i in 1..10 {
            let mut p = self.cfg.log_path.as_os_str().to_owned();
            p.push(format!(".{i}"));
            files.insert(0, PathBuf::from(p));
        }
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            for line in text.lines() {
                out.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")));
            }
        }
        out
    }

    /// The runtime's state directory of this container.
    pub fn runtime_state(&self) -> PathBuf {
        self.cfg.runtime_root.join(&self.cfg.id)
    }

    pub fn shim_pid(&self) -> Option<i32> {
        layout::read_pid(&self.cfg.state_dir).ok().flatten()
    }
}

/// Whether `pid` names a live (not zombie) process.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Waits up to `limit` for `cond`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid()
            && alive(pid)
        {
            let _ = kill_pid(pid);
            eventually(Duration::from_secs(5), || !alive(pid));
        }
        if let Ok(rt) = wharf_runtime::Runtime::open(&self.cfg.runtime_root) {
            let _ = rt.delete(&self.cfg.id, true);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("removing {}: {e}", self.dir.display());
        }
    }
}
