//! Healthchecks (`--health-*`: probes on schedule, `State.Health`, the
//! `health_status` events, timeouts) and `--init` (`wharf-init` as PID 1:
//! signals forwarded, orphans reaped, exit code passed on), with the real
//! docker CLI against a temporary wharfd.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::Daemon;

/// The static `wharf-init`, built once per test process by `crates/init/build.sh`.
fn init_binary() -> PathBuf {
    static INIT: OnceLock<PathBuf> = OnceLock::new();
    INIT.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../init/build.sh");
        let out = Command::new(&script)
            .output()
            .expect("run crates/init/build.sh");
        assert!(
            out.status.success(),
            "building wharf-init failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(p.is_file(), "no wharf-init at {}", p.display());
        p
    })
    .clone()
}

fn with_init() -> Daemon {
    Daemon::start_with(vec![
        "--init-path".into(),
        init_binary().display().to_string(),
    ])
}

fn wait_for(d: &Daemon, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            common::tail(&d.log(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn healthcheck_goes_unhealthy_then_healthy() {
    let d = Daemon::start();
    let since = d.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "h1",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "--health-timeout",
        "3s",
        "busybox",
        "sleep",
        "1000",
    ]);
    let status = || d.ok(&["inspect", "--format", "{{.State.Health.Status}}", "h1"]);
    let first = status();
    assert!(first == "starting" || first == "unhealthy", "{first}");
    wait_for(&d, "unhealthy", || status() == "unhealthy");
    let streak: u32 = d
        .ok(&[
            "inspect",
            "--format",
            "{{.State.Health.FailingStreak}}",
            "h1",
        ])
        .parse()
        .unwrap();
    assert!(streak >= 2, "{streak}");
    assert!(
        d.ok(&["ps", "--format", "{{.Status}}"])
            .ends_with("(unhealthy)")
    );
    d.ok(&["exec", "h1", "touch", "/tmp/ok"]);
    wait_for(&d, "healthy", || status() == "healthy");
    let log = d.ok(&["inspect", "--format", "{{json .State.Health}}", "h1"]);
    let v: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(v["FailingStreak"], 0, "{log}");
    let entries = v["Log"].as_array().unwrap();
    assert!(entries.len() <= 5 && !entries.is_empty(), "{log}");
    let newest = entries.last().unwrap();
    assert_eq!(newest["ExitCode"], 0, "{log}");
    assert_eq!(newest["Output"], "fine\n", "{log}");
    assert!(
        d.ok(&["ps", "--format", "{{.Status}}"])
            .ends_with("(healthy)")
    );

    let t1 = t0 + 120;
    let events = d.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .saturating_add(1)
            .min(t1)
            .to_string(),
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.contains("health_status: unhealthy"), "{events}");
    assert!(events.contains("health_status: healthy"), "{events}");

    // A probe that outlives its timeout fails with Docker's message.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "h2",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for(&d, "h2 unhealthy", || {
        d.ok(&["inspect", "--format", "{{.State.Health.Status}}", "h2"]) == "unhealthy"
    });
    let log = d.ok(&["inspect", "--format", "{{json .State.Health.Log}}", "h2"]);
    assert!(log.contains("Health check exceeded timeout (1s)"), "{log}");
    assert!(log.contains("\"ExitCode\":-1"), "{log}");

    // No healthcheck: no Health.
    d.ok(&["run", "-d", "--name", "h3", "busybox", "sleep", "1000"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Health}}", "h3"]),
        "<nil>"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "h4",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Health}}", "h4"]),
        "<nil>"
    );
}

#[test]
fn init_forwards_signals_reaps_and_passes_exit_codes() {
    let d = with_init();
    let out = d.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/sbin/docker-init -- sh -c"), "{out}");
    assert_ne!(lines[1], "1", "the command is not PID 1 under --init");
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--init",
            "busybox",
            "ls",
            "-l",
            "/sbin/docker-init"
        ])
        .split_whitespace()
        .next()
        .unwrap(),
        "-rwxr-xr-x"
    );

    // The exit code passes through.
    let st = d.docker(&[
        "run", "--init", "--name", "i0", "busybox", "sh", "-c", "exit 5",
    ]);
    assert_eq!(st.status.code(), Some(5));

    // SIGTERM reaches `sleep` (which, as PID 1 itself, would ignore it).
    d.ok(&[
        "run", "-d", "--init", "--name", "i1", "busybox", "sleep", "1000",
    ]);
    let t = Instant::now();
    d.ok(&["stop", "-t", "20", "i1"]);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.ExitCode}}", "i1"]),
        "143"
    );

    // Orphans are reaped: no zombie left behind.
    d.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "i2",
        "busybox",
        "sh",
        "-c",
        "(sleep 1 &); exec sleep 1000",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    let stats = d.ok(&["exec", "i2", "sh", "-c", "cat /proc/[0-9]*/stat"]);
    assert!(!stats.contains(") Z "), "a zombie is left:\n{stats}");
    assert!(stats.contains("(sleep)"), "{stats}");
}

#[test]
fn init_without_an_init_binary_is_refused() {
    let d = Daemon::start();
    let (_, err) = d.fails(&["create", "--init", "busybox", "true"]);
    assert!(err.contains("no init binary"), "{err}");
}
