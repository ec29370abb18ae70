//! Interop: Debian's containerd runs a container with `wharf-runtime` as its
//! runc binary (`ctr run --runc-binary`), through containerd-shim-runc-v2,
//! which drives create/start/state/kill/delete/exec exactly as it drives
//! runc. containerd is started by the test on its own socket, root and state
//! dirs and stopped (every container removed) at the end, even on failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf_testkit::{Bundle, require_root, unique_id};

struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("wharf-ctrd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let sock = dir.path().join("c.sock");
        let cfg = dir.path().join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
                root = dir.path().join("root").display(),
                state = dir.path().join("state").display(),
                sock = sock.display(),
            ),
        )
        .expect("write containerd config");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log file");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd must be installed (apt-get install containerd)");
        let c = Containerd { child, dir, sock };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if c.sock.exists() && c.ctr(&["version"]).status.success() {
                return c;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("containerd did not start: {}", c.log());
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(&self.sock).args(args);
        wharf_testkit::run_bounded(&mut cmd, Duration::from_secs(60)).expect("run ctr")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let out = self.ctr(&["containers", "list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["tasks", "delete", "-f", id]);
            let _ = self.ctr(&["containers", "delete", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        wharf_testkit::unmount_under(self.dir.path());
    }
}

fn wharf_runtime() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wharf-runtime"))
}

fn out_text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn containerd_runs_a_container_with_wharf_runtime() {
    require_root();
    let ctrd = Containerd::start();
    let bundle = Bundle::new().expect("bundle");
    let rootfs = bundle.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let rt = wharf_runtime().to_str().unwrap();

    // Foreground: output and exit code come back through the shim.
    let id = unique_id("ctrd");
    let out = ctrd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        rt,
        "--cgroup",
        &format!("/wharf-test/{id}"),
        "--rootfs",
        rootfs,
        &id,
        "/bin/sh",
        "-c",
        "echo interop-ok pid $$; exit 3",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("interop-ok pid 1"),
        "{}\ncontainerd log: {}",
        out_text(&out),
        ctrd.log()
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "ctr returns the container's exit code: {}",
        out_text(&out)
    );

    // Detached task: exec into it, ps, kill, delete.
    let id2 = unique_id("ctrd");
    let out = ctrd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        rt,
        "--cgroup",
        &format!("/wharf-test/{id2}"),
        "--rootfs",
        rootfs,
        &id2,
        "/bin/sleep",
        "60",
    ]);
    assert!(out.status.success(), "run -d: {}", out_text(&out));
    let out = ctrd.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        &id2,
        "/bin/sh",
        "-c",
        "echo exec-ok; exit 5",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exec-ok"),
        "exec: {}",
        out_text(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "exec exit code: {}",
        out_text(&out)
    );
    let out = ctrd.ctr(&["tasks", "ps", &id2]);
    assert!(out.status.success(), "tasks ps: {}", out_text(&out));
    let out = ctrd.ctr(&["tasks", "kill", "-s", "SIGKILL", &id2]);
    assert!(out.status.success(), "kill: {}", out_text(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ctrd.ctr(&["tasks", "list"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text
            .lines()
            .any(|l| l.starts_with(&id2) && l.contains("STOPPED"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "task did not stop: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = ctrd.ctr(&["tasks", "delete", &id2]);
    assert!(out.status.success(), "tasks delete: {}", out_text(&out));
    let out = ctrd.ctr(&["containers", "delete", &id2]);
    assert!(
        out.status.success(),
        "containers delete: {}",
        out_text(&out)
    );
}
