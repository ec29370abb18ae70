//! A temporary wharfd for the CLI's end-to-end tests: its own data root,
//! exec root and socket under a fresh /tmp directory, a busybox image
//! written straight into its stores, and the `wharf` binary (and the real
//! docker CLI, for comparison) pointed at it. Dropping the guard removes
//! the containers, stops the daemon and deletes everything, also when the
//! test failed.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod registry;

use wharf_image::content::ContentStore;
use wharf_image::image_store::{ImageRecord, ImageStore};
use wharf_image::snapshot::{chain_ids, open_snapshotter};

pub const WHARF: &str = env!("CARGO_BIN_EXE_wharf");
pub const DOCKER: &str = "/usr/local/bin/docker";
const TIMEOUT: Duration = Duration::from_secs(60);

/// wharfd and wharf-shim, built once per test process.
fn daemon_binaries() -> (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "wharf-daemon", "-p", "wharf-shim"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for wharfd and wharf-shim");
        assert!(st.success(), "building wharfd/wharf-shim failed");
        let dir = Path::new(WHARF).parent().unwrap().to_path_buf();
        (dir.join("wharfd"), dir.join("wharf-shim"))
    })
    .clone()
}

fn tar_entry(
    t: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    data: &[u8],
    mode: u32,
    link: Option<&str>,
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    match link {
        Some(l) => t.append_link(&mut h, path, l).unwrap(),
        None => t.append_data(&mut h, path, data).unwrap(),
    }
}

/// Writes `busybox:latest` (static busybox and applet links, /etc/passwd)
/// into the stores under `data_root`.
pub fn install_busybox(data_root: &Path) {
    let mut t = tar::Builder::new(Vec::new());
    for d in ["bin/", "etc/", "tmp/", "root/"] {
        tar_entry(&mut t, d, tar::EntryType::Directory, b"", 0o755, None);
    }
    let bb = std::fs::read(wharf_testkit::busybox_path()).unwrap();
    tar_entry(
        &mut t,
        "bin/busybox",
        tar::EntryType::Regular,
        &bb,
        0o755,
        None,
    );
    for applet in [
        "sh", "echo", "cat", "sleep", "ls", "true", "false", "env", "stty", "printf", "id",
        "hostname", "ps", "wc",
    ] {
        tar_entry(
            &mut t,
            &format!("bin/{applet}"),
            tar::EntryType::Link,
            b"",
            0o755,
            Some("bin/busybox"),
        );
    }
    tar_entry(
        &mut t,
        "etc/passwd",
        tar::EntryType::Regular,
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
        None,
    );
    tar_entry(
        &mut t,
        "etc/group",
        tar::EntryType::Regular,
        b"root:x:0:\n",
        0o644,
        None,
    );
    let layer = t.into_inner().unwrap();
    let content = ContentStore::open(data_root.join("content")).unwrap();
    let snaps = open_snapshotter(&data_root.join("snapshots"), None).unwrap();
    let digest = content.write_bytes(&layer).unwrap();
    let chain = chain_ids(std::slice::from_ref(&digest)).pop().unwrap();
    let prepared = snaps.prepare_layer(&chain, None).unwrap();
    let stats = wharf_image::layer::apply_layer(&layer[..], &prepared.unpack_dir()).unwrap();
    snaps.commit_layer(prepared, &stats.diff_id).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest.to_string()]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "wharf cli test fixture"}]
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = content.write_bytes(&config_bytes).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_bytes.len(), "digest": config_digest.to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": layer.len(), "digest": digest.to_string()}]
    });
    let manifest_digest = content
        .write_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    ImageStore::open(data_root.join("image"))
        .record(
            ImageRecord::new(config_digest, manifest_digest, Some(chain), vec![digest]),
            &["docker.io/library/busybox:latest".to_owned()],
        )
        .unwrap();
}

/// A running wharfd and everything it owns.
pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with_setup(|_| Vec::new())
    }

    /// Starts wharfd with extra flags, made by `setup` in the daemon's
    /// directory before it starts (certificates, for example).
    pub fn start_with_setup(setup: impl FnOnce(&Path) -> Vec<String>) -> Daemon {
        wharf_testkit::require_root();
        let (wharfd, shim) = daemon_binaries();
        // Short: shim socket paths must fit in 108 bytes.
        let id = wharf_testkit::unique_id("");
        let tail: String = id.chars().rev().take(8).collect();
        let dir = PathBuf::from(format!("/tmp/wc{tail}"));
        std::fs::create_dir_all(dir.join("cfg")).unwrap();
        let mut d = Daemon {
            socket: dir.join("s.sock"),
            dir,
            child: None,
        };
        install_busybox(&d.dir.join("d"));
        let extra = setup(&d.dir);
        std::fs::write(d.dir.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(d.dir.join("wharfd.log")).unwrap();
        let child = Command::new(wharfd)
            .arg("--config-file")
            .arg(d.dir.join("daemon.json"))
            .arg("--data-root")
            .arg(d.dir.join("d"))
            .arg("--exec-root")
            .arg(d.dir.join("x"))
            .arg("-H")
            .arg(format!("unix://{}", d.socket.display()))
            .arg("--shim-binary")
            .arg(shim)
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn wharfd");
        d.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            if let Some(Ok(Some(st))) = d.child.as_mut().map(Child::try_wait) {
                panic!("wharfd exited early ({st}); log:\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "wharfd did not listen in time; log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wharfd.log")).unwrap_or_default()
    }

    /// A `wharf` command aimed at this daemon through `$WHARF_HOST`.
    pub fn wharf_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(WHARF);
        c.args(args)
            .env("WHARF_HOST", self.host())
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.dir.join("cfg"));
        c
    }

    /// Runs wharf (bounded time, stdin closed).
    pub fn wharf(&self, args: &[&str]) -> Output {
        wharf_testkit::run_bounded(&mut self.wharf_cmd(args), TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "wharf {args:?}: {e}\ndaemon log:\n{}",
                tail(&self.log(), 40)
            )
        })
    }

    /// Runs wharf with `input` on stdin.
    pub fn wharf_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = self
            .wharf_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let w = std::thread::spawn(move || {
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
                panic!("wharf {args:?} timed out");
            }
        };
        let _ = w.join();
        out
    }

    /// Runs wharf, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.wharf(args);
        assert!(
            out.status.success(),
            "wharf {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs wharf, asserts failure: (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.wharf(args);
        assert!(
            !out.status.success(),
            "wharf {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The real docker CLI against the same daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("cfg"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        wharf_testkit::run_bounded(&mut c, TIMEOUT)
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::env::var_os("WHARF_TEST_KEEP").is_some() {
            eprintln!("WHARF_TEST_KEEP: leaving {}", self.dir.display());
            return;
        }
        if let Some(mut c) = self.child.take() {
            let ids = self.wharf(&["ps", "-aq", "--no-trunc"]);
            for id in String::from_utf8_lossy(&ids.stdout).lines() {
                let _ = self.wharf(&["rm", "-f", id]);
            }
            let _ = Command::new("kill")
                .arg("-15")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !matches!(c.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Anything a failed test left: shims, container processes, cgroups.
        if let Ok(rd) = std::fs::read_dir(self.dir.join("x").join("shims")) {
            for e in rd.flatten() {
                if let Ok(Some(pid)) = wharf_shim_api::layout::read_pid(&e.path()) {
                    let _ = wharf_testkit::kill_pid(pid);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.dir.join("d").join("containers")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
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
