//! A temporary wharfd for end-to-end tests: its own data root, exec root
//! and socket under a fresh directory, a busybox image written straight
//! into its stores (no registry needed), the real docker CLI pointed at it
//! with `DOCKER_HOST`, and a guard that removes containers, stops the
//! daemon, unmounts and deletes everything even when the test fails.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wharf_image::content::ContentStore;
use wharf_image::image_store::{ImageRecord, ImageStore};
use wharf_image::snapshot::{chain_ids, open_snapshotter};

pub const DOCKER: &str = "/usr/local/bin/docker";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The `wharf-shim` binary, built once per test process, or
/// `$WHARF_TEST_SHIM` (scripts/test runs the docker CLI suite again with
/// the shipped static shim of scripts/build-static).
pub fn shim_binary() -> PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        if let Some(shim) = std::env::var_os("WHARF_TEST_SHIM") {
            let shim = PathBuf::from(shim);
            assert!(
                shim.is_file(),
                "WHARF_TEST_SHIM: no shim at {}",
                shim.display()
            );
            return shim;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "wharf-shim", "--bin", "wharf-shim"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for wharf-shim");
        assert!(st.success(), "building wharf-shim failed");
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_wharfd"));
        let shim = exe.parent().unwrap().join("wharf-shim");
        assert!(shim.is_file(), "no shim at {}", shim.display());
        shim
    })
    .clone()
}

/// Writes a busybox image (one uncompressed layer: static busybox with its
/// applet links, /etc/passwd, /etc/group) into the stores under `data_root`
/// and tags it `busybox:latest`.
pub fn install_busybox_image(data_root: &Path) {
    let busybox = wharf_testkit::busybox_path();
    let mut tar = tar::Builder::new(Vec::new());
    let dir = |t: &mut tar::Builder<Vec<u8>>, p: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        t.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    let file = |t: &mut tar::Builder<Vec<u8>>, p: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        t.append_data(&mut h, p, data).unwrap();
    };
    for d in ["bin/", "etc/", "tmp/", "root/", "home/", "home/web/"] {
        dir(&mut tar, d);
    }
    file(
        &mut tar,
        "bin/busybox",
        &std::fs::read(&busybox).unwrap(),
        0o755,
    );
    for applet in [
        "sh", "echo", "cat", "sleep", "ls", "true", "false", "id", "env", "pwd", "hostname", "ps",
        "kill", "head", "wc", "grep", "touch", "mkdir", "seq", "tr", "printf", "stty",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "bin/busybox")
            .unwrap();
    }
    file(
        &mut tar,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\n",
        0o644,
    );
    file(
        &mut tar,
        "etc/group",
        b"root:x:0:\nweb:x:1000:\nextra:x:2000:web\n",
        0o644,
    );
    let layer = tar.into_inner().unwrap();

    let content = ContentStore::open(data_root.join("content")).unwrap();
    let snaps = open_snapshotter(&data_root.join("snapshots"), None).unwrap();
    let layer_digest = content.write_bytes(&layer).unwrap();
    let diff_id = layer_digest.clone();
    let chain = chain_ids(std::slice::from_ref(&diff_id)).pop().unwrap();
    let prepared = snaps.prepare_layer(&chain, None).unwrap();
    let stats = wharf_image::layer::apply_layer(&layer[..], &prepared.unpack_dir()).unwrap();
    snaps.commit_layer(prepared, &stats.diff_id).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "wharf test fixture"}]
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = content.write_bytes(&config_bytes).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_bytes.len(), "digest": config_digest.to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": layer.len(), "digest": layer_digest.to_string()}]
    });
    let manifest_digest = content
        .write_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    ImageStore::open(data_root.join("image"))
        .record(
            ImageRecord::new(
                config_digest,
                manifest_digest,
                Some(chain),
                vec![layer_digest],
            ),
            &["docker.io/library/busybox:latest".to_owned()],
        )
        .unwrap();
}

/// A running wharfd and everything it owns.
pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    docker_config: PathBuf,
    /// Extra wharfd arguments (kept across restarts).
    pub extra_args: Vec<String>,
}

impl Daemon {
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("d")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("x")
    }

    /// A fresh daemon with the busybox image.
    pub fn start() -> Daemon {
        Daemon::start_with(Vec::new())
    }

    /// A fresh daemon with extra wharfd arguments (they may name files in
    /// [`Daemon::scratch_dir`] that `setup` writes first).
    pub fn start_with_setup(setup: impl FnOnce(&Path) -> Vec<String>) -> Daemon {
        let dir = Daemon::scratch_dir();
        let args = setup(&dir);
        Daemon::start_in(dir, args)
    }

    fn scratch_dir() -> PathBuf {
        // Short: the shims' socket paths must fit in 108 bytes.
        let id = wharf_testkit::unique_id("");
        let tail: String = id.chars().rev().take(8).collect();
        let dir = PathBuf::from(format!("/tmp/wt{tail}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A fresh daemon with extra wharfd arguments.
    pub fn start_with(extra_args: Vec<String>) -> Daemon {
        Daemon::start_in(Daemon::scratch_dir(), extra_args)
    }

    fn start_in(dir: PathBuf, extra_args: Vec<String>) -> Daemon {
        wharf_testkit::require_root();
        let shim = shim_binary();
        let mut d = Daemon {
            socket: dir.join("s.sock"),
            docker_config: dir.join("cfg"),
            dir,
            child: None,
            extra_args,
        };
        std::fs::create_dir_all(&d.docker_config).unwrap();
        install_busybox_image(&d.data_root());
        d.spawn(&shim);
        d
    }

    /// Starts (or restarts) wharfd on the same roots.
    pub fn spawn(&mut self, shim: &Path) {
        let cfg = self.dir.join("daemon.json");
        std::fs::write(&cfg, "{}").unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("wharfd.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wharfd"))
            .arg("--config-file")
            .arg(&cfg)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--shim-binary")
            .arg(shim)
            .arg("--log-level")
            .arg("debug")
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn wharfd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                break;
            }
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

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wharfd.log")).unwrap_or_default()
    }

    /// Sends `signal` to the daemon and waits for it to exit.
    pub fn stop_with(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("daemon running");
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The docker CLI with this daemon's client config, for any host.
    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        c
    }

    /// Runs the docker CLI (bounded time, stdin closed).
    pub fn docker(&self, args: &[&str]) -> Output {
        wharf_testkit::run_bounded(&mut self.command(args), TIMEOUT)
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}\ndaemon log:\n{}", self.log()))
    }

    /// Runs the docker CLI with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
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
            Ok(o) => o.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!("docker {args:?} timed out; daemon log:\n{}", self.log());
            }
        };
        let _ = writer.join();
        out
    }

    /// Runs docker and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 60)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// Runs docker, asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A raw HTTP request over the socket: (status, headers, body).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        use std::io::Read as _;
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = body.unwrap_or("");
        // A server refusing a large body may close before it is all written.
        let _ = write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: wharf\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), rest.to_owned())
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
            // Remove every container through the API (stops shims, unmounts).
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).lines() {
                let _ = self.docker(&["rm", "-f", id]);
            }
            self.stop_with(15);
        }
        // Anything left (a failed test mid-way): shims, mounts, cgroups, files.
        let shims = self.exec_root().join("shims");
        if let Ok(rd) = std::fs::read_dir(&shims) {
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
                // Container processes outlive their shims: kill what is in the cgroup.
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
