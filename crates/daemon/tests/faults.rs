//! Crash faults: wharfd is SIGKILLed at varying points during `create`,
//! `start`, `rm -f` and `pull` (driven by the real docker CLI), restarted on
//! the same data root, and the state is checked against reality:
//! - every container `docker ps -a` lists has its record directory and
//!   writable layer, and nothing else has one (no orphan directory or
//!   snapshot);
//! - shims run and root filesystems are mounted only for running
//!   containers; nothing else is mounted under the data root;
//! - every listed container can be started and removed, after which no
//!   file, layer, mount or shim of it is left;
//! - a pulled image is listed only when complete: it runs, and a re-pull
//!   works whatever the interrupted pull left.
//!
//! The kill delays are pseudo-random within a bound (the seed is printed,
//! `WHARF_FAULT_SEED` replays a run) and the iteration count is fixed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::Daemon;
use wharf_testkit_daemon::{Registry, daemon_busybox_layer, tar_of, write_oci_layout};

/// Iterations per operation.
const ROUNDS: u64 = 10;

/// A small deterministic generator for kill delays.
struct Delays(u64);

impl Delays {
    fn new(op: &str) -> Delays {
        let seed = std::env::var("WHARF_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos()
                    .into()
            });
        eprintln!("{op}: WHARF_FAULT_SEED={seed}");
        Delays(seed)
    }

    /// A delay below `max`; round `i` of `ROUNDS` covers its share of the
    /// range so every run spreads from early to late kills.
    fn next(&mut self, i: u64, max: Duration) -> Duration {
        let max_ms = u64::try_from(max.as_millis()).unwrap().max(ROUNDS);
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let slot = max_ms / ROUNDS;
        Duration::from_millis(i * slot + (self.0 >> 33) % slot.max(1))
    }
}

/// How long the CLI takes for `args` undisturbed (the kill delays range
/// over a little more than that).
fn timed(d: &Daemon, args: &[&str]) -> Duration {
    let t = std::time::Instant::now();
    d.ok(args);
    let took = t.elapsed();
    eprintln!("{args:?} takes {took:?}");
    took + took / 5
}

/// Starts the docker CLI with `args` in the background.
fn spawn_docker(d: &Daemon, args: &[&str]) -> Child {
    d.docker_cmd()
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILLs the daemon `after` the CLI started, reaps the CLI, restarts
/// the daemon on the same roots.
fn crash_during(d: &mut Daemon, mut cli: Child, after: Duration) {
    std::thread::sleep(after);
    let t = std::time::Instant::now();
    d.stop_with(9);
    // The CLI sees its connection drop; never let it linger.
    let _ = cli.kill();
    let _ = cli.wait();
    d.spawn(&common::shim_binary());
    eprintln!(
        "killed after {after:?}; restarted in {:?}; cli exited: {:?}",
        t.elapsed(),
        cli.try_wait()
    );
}

fn container_snapshots(d: &Daemon) -> BTreeSet<String> {
    wharf_image::snapshot::open_snapshotter(&d.data_root().join("snapshots"), None)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == wharf_image::snapshot::SnapshotKind::Container)
        .map(|s| s.id)
        .collect()
}

fn dirs_named_by_id(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points at or below `root`.
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == root || m.starts_with(&format!("{root}/")))
        .map(str::to_owned)
        .collect()
}

/// Live shim processes of this daemon: container ID → pid.
fn shim_processes(d: &Daemon) -> Vec<(String, i32)> {
    let shims = d.exec_root().join("shims").display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(i) = args.iter().position(|a| a == "--state-dir")
            && let Some(dir) = args.get(i + 1)
            && let Some(id) = dir.strip_prefix(&format!("{shims}/"))
        {
            // A zombie has an empty cmdline, so this is a live shim.
            out.push((id.to_owned(), pid));
        }
    }
    out
}

/// The containers `docker ps -a` lists, with their status.
fn listed(d: &Daemon) -> Vec<(String, String)> {
    d.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}"])
        .lines()
        .map(|l| {
            let (id, st) = l.split_once(' ').unwrap();
            (id.to_owned(), st.to_owned())
        })
        .collect()
}

/// Checks that the daemon's view and the host agree (see the module doc).
fn check_consistent(d: &Daemon, ctx: &str) -> Vec<(String, String)> {
    let list = listed(d);
    let ids: BTreeSet<String> = list.iter().map(|(id, _)| id.clone()).collect();
    let running: BTreeSet<String> = list
        .iter()
        .filter(|(_, st)| st == "running" || st == "paused")
        .map(|(id, _)| id.clone())
        .collect();
    let log = || common::tail(&d.log(), 80);
    for (id, st) in &list {
        assert!(
            matches!(st.as_str(), "created" | "running" | "exited" | "dead"),
            "{ctx}: {id} is {st}\n{}",
            log()
        );
        assert!(
            d.data_root()
                .join("containers")
                .join(id)
                .join("config.v2.json")
                .is_file(),
            "{ctx}: {id} listed without its record"
        );
    }
    assert_eq!(
        dirs_named_by_id(&d.data_root().join("containers")),
        ids,
        "{ctx}: container directories vs docker ps -a\n{}",
        log()
    );
    assert_eq!(
        container_snapshots(d),
        ids,
        "{ctx}: writable layers vs docker ps -a\n{}",
        log()
    );
    let shims: BTreeSet<String> = shim_processes(d).into_iter().map(|(id, _)| id).collect();
    assert!(
        shims.is_subset(&running),
        "{ctx}: shims {shims:?} but running {running:?}\n{}",
        log()
    );
    for id in &running {
        let st = d.ok(&[
            "inspect",
            "--format",
            "{{.State.Pid}} {{.State.StartedAt}}",
            id,
        ]);
        let (pid, started) = st.split_once(' ').unwrap();
        assert!(
            pid != "0" && !started.starts_with("0001-"),
            "{ctx}: running {id} without a pid or start time: {st}"
        );
    }
    let expected_mounts: BTreeSet<String> = running
        .iter()
        .map(|id| {
            d.data_root()
                .join("containers")
                .join(id)
                .join("rootfs")
                .display()
                .to_string()
        })
        .collect();
    let mounts: BTreeSet<String> = mounts_under(&d.data_root()).into_iter().collect();
    assert!(
        mounts.is_subset(&expected_mounts),
        "{ctx}: mounts {mounts:?}, running {running:?}\n{}",
        log()
    );
    list
}

/// Every listed container starts (unless it is dead) and is removed
/// without leaving anything behind.
fn start_and_remove_all(d: &Daemon, ctx: &str) {
    for (id, st) in listed(d) {
        eprintln!("{ctx}: found {st}");
        if st != "running" && st != "dead" {
            d.ok(&["start", &id]);
            assert_eq!(
                d.ok(&["inspect", "--format", "{{.State.Status}}", &id]),
                "running",
                "{ctx}: {id} did not start"
            );
        }
        d.ok(&["rm", "-f", &id]);
    }
    check_consistent(d, ctx);
    assert!(container_snapshots(d).is_empty(), "{ctx}: layers left");
    assert!(
        shim_processes(d).is_empty(),
        "{ctx}: shims left: {:?}",
        shim_processes(d)
    );
    assert!(
        mounts_under(&d.data_root()).is_empty(),
        "{ctx}: mounts left: {:?}",
        mounts_under(&d.data_root())
    );
}

#[test]
fn kill_during_create() {
    let mut d = Daemon::start();
    let mut delays = Delays::new("create");
    let span = timed(&d, &["create", "--name", "timing", "busybox"]);
    d.ok(&["rm", "timing"]);
    for i in 0..ROUNDS {
        let name = format!("c{i}");
        let cli = spawn_docker(&d, &["create", "--name", &name, "busybox", "sleep", "300"]);
        crash_during(&mut d, cli, delays.next(i, span));
        let ctx = format!("create round {i}");
        let list = check_consistent(&d, &ctx);
        // Either the container exists (and is usable) or its name is free.
        if list.is_empty() {
            d.ok(&["create", "--name", &name, "busybox", "sleep", "300"]);
        }
        start_and_remove_all(&d, &ctx);
    }
}

#[test]
fn kill_during_start() {
    let mut d = Daemon::start();
    let mut delays = Delays::new("start");
    d.ok(&["create", "--name", "timing", "busybox", "sleep", "300"]);
    let span = timed(&d, &["start", "timing"]);
    d.ok(&["rm", "-f", "timing"]);
    for i in 0..ROUNDS {
        let name = format!("s{i}");
        d.ok(&["create", "--name", &name, "busybox", "sleep", "300"]);
        let cli = spawn_docker(&d, &["start", &name]);
        crash_during(&mut d, cli, delays.next(i, span));
        let ctx = format!("start round {i}");
        let list = check_consistent(&d, &ctx);
        assert_eq!(list.len(), 1, "{ctx}: {list:?}");
        start_and_remove_all(&d, &ctx);
    }
}

#[test]
fn kill_during_rm() {
    let mut d = Daemon::start();
    let mut delays = Delays::new("rm");
    d.ok(&["run", "-d", "--name", "timing", "busybox", "sleep", "300"]);
    let span = timed(&d, &["rm", "-f", "timing"]);
    for i in 0..ROUNDS {
        let name = format!("r{i}");
        d.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
        let cli = spawn_docker(&d, &["rm", "-f", &name]);
        crash_during(&mut d, cli, delays.next(i, span));
        let ctx = format!("rm round {i}");
        let list = check_consistent(&d, &ctx);
        assert!(list.len() <= 1, "{ctx}: {list:?}");
        start_and_remove_all(&d, &ctx);
    }
}

#[test]
fn kill_during_pull() {
    let mut d = Daemon::start();
    let reg = Registry::start();
    // Three layers: the daemon's busybox, 24 MiB that do not compress, and
    // a small marker the test reads back.
    let dir = tempfile::tempdir().unwrap();
    let mut noise = vec![0u8; 24 << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for chunk in noise.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let layers = vec![
        daemon_busybox_layer(&d.data_root()),
        tar_of(&[("opt/", b""), ("opt/noise", &noise)]),
        tar_of(&[("etc/", b""), ("etc/motd", b"pulled whole\n")]),
    ];
    write_oci_layout(dir.path(), &layers, "big");
    reg.seed(dir.path(), "big", "v1");
    let name = format!("{}/big:v1", reg.host());

    let mut delays = Delays::new("pull");
    let span = timed(&d, &["pull", &name]);
    d.ok(&["rmi", &name]);
    for i in 0..ROUNDS {
        let cli = spawn_docker(&d, &["pull", &name]);
        crash_during(&mut d, cli, delays.next(i, span));
        let ctx = format!("pull round {i}");
        let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        if images.lines().any(|l| l == name) {
            // Listed, so complete: it runs and has every layer.
            assert_eq!(
                d.ok(&["run", "--rm", &name, "cat", "/etc/motd"]),
                "pulled whole",
                "{ctx}"
            );
            assert_eq!(
                d.ok(&["run", "--rm", &name, "wc", "-c", "/opt/noise"]),
                format!("{} /opt/noise", noise.len()),
                "{ctx}"
            );
        }
        // Whatever the interrupted pull left, pulling again works.
        d.ok(&["pull", &name]);
        assert_eq!(
            d.ok(&["run", "--rm", &name, "cat", "/etc/motd"]),
            "pulled whole",
            "{ctx}"
        );
        check_consistent(&d, &ctx);
        d.ok(&["rmi", &name]);
        let left = d.ok(&["images", "--format", "{{.Repository}}"]);
        assert_eq!(left, "busybox", "{ctx}: {left}");
        assert!(mounts_under(&d.data_root()).is_empty(), "{ctx}");
    }
    // No ingest or unpack left behind by the crashed pulls.
    let snaps = d.data_root().join("snapshots").join("snapshots");
    let tmp: Vec<String> = std::fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(tmp.is_empty(), "unpack dirs left: {tmp:?}");
}
