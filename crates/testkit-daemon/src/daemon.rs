//! A temporary wharfd for end-to-end tests.
//!
//! [`Daemon::builder`] takes the binaries to run ([`Binaries`]), the
//! busybox image to install and extra wharfd flags; `start` makes a fresh
//! short directory under `/tmp` (`d/` data root, `x/` exec root,
//! `s.sock`, `cfg/` docker client config, `daemon.json`, `wharfd.log`),
//! writes the image into the stores and waits until the socket accepts.
//! The daemon can be stopped with any signal and spawned again on the same
//! roots (restart and live-restore tests).
//!
//! Dropping a [`Daemon`] (also while a failed test unwinds) removes every
//! container through the API, stops wharfd with SIGTERM (SIGKILL after
//! 20 s), then kills what is left (shims, container processes found in
//! the `wharf/<id>` cgroups), removes those cgroups, unmounts everything
//! under the directory and deletes it. `WHARF_TEST_KEEP=1` leaves it all
//! in place for a post-mortem.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::busybox::{Busybox, install_busybox};
use crate::{DOCKER, http, tail};

/// How long one client command may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The wharfd and wharf-shim a [`Daemon`] runs.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub wharfd: PathBuf,
    pub shim: PathBuf,
}

impl Binaries {
    /// Both built by `cargo build -p wharf-daemon -p wharf-shim` (once per
    /// test process) and taken from `bin_dir`: the directory of the calling
    /// test's own `CARGO_BIN_EXE_*`, where that build puts them. For suites
    /// whose package does not build wharfd itself.
    pub fn cargo_build(bin_dir: &Path) -> Binaries {
        static BUILT: OnceLock<()> = OnceLock::new();
        BUILT.get_or_init(|| cargo(&["build", "-q", "-p", "wharf-daemon", "-p", "wharf-shim"]));
        Binaries {
            wharfd: bin_dir.join("wharfd"),
            shim: bin_dir.join("wharf-shim"),
        }
    }

    /// `wharfd` as given (wharf-daemon's own `CARGO_BIN_EXE_wharfd`) and
    /// [`test_shim`] from its directory.
    pub fn with_wharfd(wharfd: impl Into<PathBuf>) -> Binaries {
        let wharfd = wharfd.into();
        let dir = wharfd.parent().expect("wharfd path has a directory");
        let shim = test_shim(dir);
        Binaries { wharfd, shim }
    }
}

/// `cargo <args>` in this workspace; panics when it fails.
fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(&cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap_or_else(|e| panic!("run {cargo} {args:?}: {e}"));
    assert!(st.success(), "{cargo} {args:?} failed: {st}");
}

/// The shim for daemon tests: `$WHARF_TEST_SHIM` when set (scripts/test
/// runs some suites again with the shipped static shim of
/// scripts/build-static), else `wharf-shim` built by cargo (once per test
/// process) into `bin_dir`.
pub fn test_shim(bin_dir: &Path) -> PathBuf {
    static SHIM: OnceLock<Option<PathBuf>> = OnceLock::new();
    let from_env = SHIM.get_or_init(|| {
        if let Some(shim) = std::env::var_os("WHARF_TEST_SHIM") {
            let shim = PathBuf::from(shim);
            assert!(
                shim.is_file(),
                "WHARF_TEST_SHIM: no shim at {}",
                shim.display()
            );
            return Some(shim);
        }
        cargo(&["build", "-q", "-p", "wharf-shim", "--bin", "wharf-shim"]);
        None
    });
    if let Some(shim) = from_env {
        return shim.clone();
    }
    let shim = bin_dir.join("wharf-shim");
    assert!(shim.is_file(), "no shim at {}", shim.display());
    shim
}

/// How to start a [`Daemon`]; made by [`Daemon::builder`].
#[derive(Clone, Debug)]
pub struct DaemonBuilder {
    binaries: Binaries,
    image: Busybox,
    log_level: Option<String>,
    args: Vec<String>,
}

impl DaemonBuilder {
    /// The busybox image to install (default [`Busybox::ROOT_ONLY`]).
    pub fn busybox(mut self, image: Busybox) -> Self {
        self.image = image;
        self
    }

    /// `--log-level <level>` (default: wharfd's own).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = Some(level.to_owned());
        self
    }

    /// Extra wharfd arguments, after the fixture's own (kept across
    /// restarts).
    pub fn args(mut self, args: impl IntoIterator<Item = String>) -> Self {
        self.args.extend(args);
        self
    }

    /// Starts the daemon.
    pub fn start(self) -> Daemon {
        self.start_with_setup(|_| Vec::new())
    }

    /// Starts the daemon with the arguments `setup` returns appended;
    /// `setup` runs first, in the daemon's fresh directory (to write
    /// certificates there, for example).
    pub fn start_with_setup(self, setup: impl FnOnce(&Path) -> Vec<String>) -> Daemon {
        wharf_testkit::require_root();
        // Short: the shims' socket paths must fit in 108 bytes.
        let id = wharf_testkit::unique_id("");
        let tail: String = id.chars().rev().take(8).collect();
        let dir = PathBuf::from(format!("/tmp/wt{tail}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let mut d = Daemon {
            socket: dir.join("s.sock"),
            dir,
            extra_args: self.args,
            wharfd: self.binaries.wharfd,
            log_level: self.log_level,
            child: None,
        };
        // From here on, `d` cleans up whatever happens.
        let more = setup(&d.dir);
        d.extra_args.extend(more);
        std::fs::create_dir_all(d.docker_config()).unwrap();
        install_busybox(&d.data_root(), &self.image);
        d.spawn(&self.binaries.shim);
        d
    }
}

/// A running wharfd and everything it owns; see the module docs.
pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Extra wharfd arguments (kept across restarts).
    pub extra_args: Vec<String>,
    wharfd: PathBuf,
    log_level: Option<String>,
    child: Option<Child>,
}

impl Daemon {
    /// A daemon running `binaries`, with the defaults of
    /// [`DaemonBuilder`].
    pub fn builder(binaries: Binaries) -> DaemonBuilder {
        DaemonBuilder {
            binaries,
            image: Busybox::ROOT_ONLY,
            log_level: None,
            args: Vec::new(),
        }
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.join("d")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("x")
    }

    /// Entries of the daemon's container stores left by removals whose
    /// files are still being deleted in the background (`tmp-` names under
    /// `containers/` and `snapshots/containers/`).
    pub fn removal_leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in [
            self.data_root().join("containers"),
            self.data_root().join("snapshots/containers"),
        ] {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                out.extend(
                    rd.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp-"))
                        .map(|e| e.path()),
                );
            }
        }
        out
    }

    /// Waits up to 20 s for the background deletions of removed containers
    /// to finish; panics with what is left if they do not.
    pub fn wait_removals_deleted(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = self.removal_leftovers();
            if left.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "removed containers' files still there after 20 s: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The docker client configuration directory (`DOCKER_CONFIG`) for
    /// clients of this daemon.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("cfg")
    }

    /// `unix://<socket>`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The daemon's log so far (all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wharfd.log")).unwrap_or_default()
    }

    /// Starts (or restarts) wharfd on the same roots with `shim`, and
    /// waits up to 20 s for its socket to accept.
    pub fn spawn(&mut self, shim: &Path) {
        let cfg = self.dir.join("daemon.json");
        std::fs::write(&cfg, "{}").unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wharfd.log"))
            .unwrap();
        let mut cmd = Command::new(&self.wharfd);
        cmd.arg("--config-file")
            .arg(&cfg)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(self.host())
            .arg("--shim-binary")
            .arg(shim);
        if let Some(level) = &self.log_level {
            cmd.arg("--log-level").arg(level);
        }
        let child = cmd
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.wharfd.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("wharfd exited early ({st}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "wharfd did not listen in time; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the daemon and waits for it to exit (SIGKILL
    /// after 20 s). Panics when it is not running.
    pub fn stop_with(&mut self, signal: i32) -> ExitStatus {
        self.stop(signal)
            .expect("the daemon is running and can be waited for")
    }

    fn stop(&mut self, signal: i32) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The docker CLI with this daemon's client config, for any host
    /// (`DOCKER_HOST`, `DOCKER_CONTEXT`, `DOCKER_API_VERSION` removed).
    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_CONFIG", self.docker_config())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    /// `docker <args>` aimed at this daemon's socket.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut c = self.docker_cmd();
        c.args(args).env("DOCKER_HOST", self.host());
        c
    }

    /// Runs the docker CLI (bounded time, stdin closed).
    pub fn docker(&self, args: &[&str]) -> Output {
        self.run(&format!("docker {args:?}"), &mut self.docker_command(args))
    }

    /// Runs the docker CLI with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.run_stdin(
            &format!("docker {args:?}"),
            self.docker_command(args),
            input,
        )
    }

    /// Runs `cmd` (at most 60 s, stdin closed); panics naming `what` with
    /// the daemon's log tail when it cannot run or times out.
    pub fn run(&self, what: &str, cmd: &mut Command) -> Output {
        wharf_testkit::run_bounded(cmd, TIMEOUT)
            .unwrap_or_else(|e| panic!("{what}: {e}\ndaemon log tail:\n{}", tail(&self.log(), 60)))
    }

    /// Runs `cmd` with `input` on its stdin (at most 60 s).
    pub fn run_stdin(&self, what: &str, mut cmd: Command, input: &[u8]) -> Output {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(TIMEOUT) {
            Ok(o) => o.unwrap_or_else(|e| panic!("{what}: {e}")),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!(
                    "{what} timed out; daemon log tail:\n{}",
                    tail(&self.log(), 60)
                );
            }
        };
        let _ = writer.join();
        out
    }

    /// Asserts that `what` (which gave `out`) succeeded; returns its
    /// stdout as it is.
    pub fn expect_success(&self, what: &str, out: &Output) -> String {
        assert!(
            out.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 60)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that `what` (which gave `out`) failed; returns its exit code
    /// (-1 when killed by a signal) and stderr.
    pub fn expect_failure(&self, what: &str, out: &Output) -> (i32, String) {
        assert!(
            !out.status.success(),
            "{what} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A raw HTTP request with a JSON content type over the socket:
    /// (status, head, body).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        let r = http::exchange(
            &self.socket,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.unwrap_or("").as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (r.status, r.head, r.body)
    }

    /// Removes every container through the API (stops shims, unmounts);
    /// best effort.
    fn remove_containers(&self) {
        let Ok(list) = http::exchange(&self.socket, "GET", "/containers/json?all=1", &[], b"")
        else {
            return;
        };
        let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&list.body) else {
            eprintln!(
                "test daemon cleanup: unexpected container list ({}): {}",
                list.status, list.body
            );
            return;
        };
        for id in items.iter().filter_map(|c| c["Id"].as_str()) {
            let path = format!("/containers/{id}?force=1");
            let _ = http::exchange(&self.socket, "DELETE", &path, &[], b"");
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::env::var_os("WHARF_TEST_KEEP").is_some() {
            eprintln!(
                "WHARF_TEST_KEEP: leaving the daemon and {} in place",
                self.dir.display()
            );
            return;
        }
        if self.child.is_some() {
            self.remove_containers();
            self.stop(15);
        }
        // Anything left (a failed test mid-way): shims, container
        // processes, cgroups, mounts, files.
        if let Ok(rd) = std::fs::read_dir(self.exec_root().join("shims")) {
            for e in rd.flatten() {
                if let Ok(Some(pid)) = wharf_shim_api::layout::read_pid(&e.path()) {
                    let _ = wharf_testkit::kill_pid(pid);
                }
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = wharf_testkit::remove_cgroup(&format!("/wharf/{id}"));
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.data_root().join("containers")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                // Container processes outlive their shims: kill what is in
                // the cgroup.
                for h in wharf_testkit::cgroup_mounts().unwrap_or_default() {
                    let procs =
                        std::fs::read_to_string(h.join("wharf").join(&id).join("cgroup.procs"))
                            .unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        let _ = wharf_testkit::kill_pid(pid);
                    }
                }
                let _ = wharf_testkit::remove_cgroup(&format!("/wharf/{id}"));
            }
        }
        let _ = wharf_testkit::unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
