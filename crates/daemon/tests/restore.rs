//! Daemon-level behaviour with the real docker CLI: containers outlive a
//! SIGKILLed or SIGTERMed daemon and are re-adopted by the next one; a
//! second daemon on the same data root is refused.

mod common;

use std::process::Command;

use common::Daemon;

#[test]
fn containers_survive_the_daemon() {
    let mut d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "long",
        "busybox",
        "sh",
        "-c",
        "echo before; sleep 2; echo during; sleep 300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 42",
    ]);
    let pid_before = d.ok(&["inspect", "--format", "{{.State.Pid}}", "long"]);

    // A second daemon on the same data root is refused while this one lives.
    let out = Command::new(env!("CARGO_BIN_EXE_wharfd"))
        .arg("--config-file")
        .arg(d.dir.join("daemon.json"))
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--exec-root")
        .arg(d.dir.join("x2"))
        .arg("-H")
        .arg(format!("unix://{}", d.dir.join("s2.sock").display()))
        .arg("--shim-binary")
        .arg(common::shim_binary())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGKILL: nothing graceful; "short" exits while the daemon is away.
    let st = d.stop_with(9);
    assert!(!st.success());
    std::thread::sleep(std::time::Duration::from_millis(2500));
    d.spawn(&common::shim_binary());

    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Pid}}",
            "long"
        ]),
        format!("running {pid_before}")
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short"
        ]),
        "exited 42"
    );
    assert_eq!(
        d.ok(&["logs", "long"]),
        "before\nduring",
        "logs continue without loss"
    );
    assert_eq!(
        d.ok(&["exec", "long", "echo", "exec-after-restore"]),
        "exec-after-restore"
    );
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "long");

    // SIGTERM: graceful, and the container still keeps running.
    assert!(d.stop_with(15).success(), "graceful shutdown exits 0");
    assert!(!d.socket.exists(), "socket removed on shutdown");
    d.spawn(&common::shim_binary());
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "long"]),
        "running"
    );
    d.ok(&["stop", "-t", "1", "long"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "long"]),
        "exited"
    );
}

#[test]
fn startup_reconciles_interrupted_creates() {
    let mut d = Daemon::start();
    d.ok(&["create", "--name", "kept", "busybox"]);
    d.stop_with(9);
    // What a daemon killed mid-create leaves: a directory without a record,
    // and a writable layer without a container.
    let half = "ab".repeat(32);
    let orphan = "cd".repeat(32);
    std::fs::create_dir_all(d.data_root().join("containers").join(&half)).unwrap();
    let snaps =
        wharf_image::snapshot::open_snapshotter(&d.data_root().join("snapshots"), None).unwrap();
    snaps.prepare_container(&orphan, None).unwrap();
    snaps.prepare_container(&half, None).unwrap();
    // And what one killed after a removal answered but before its files
    // were deleted leaves: hidden record and layer directories.
    let hidden_record = d
        .data_root()
        .join("containers")
        .join(format!("tmp-rm-{}", "ef".repeat(32)));
    std::fs::create_dir_all(hidden_record.join("rootfs")).unwrap();
    std::fs::write(hidden_record.join("config.v2.json"), "{}").unwrap();
    // (No process has this pid: above the kernel's maximum.)
    let hidden_layer = d.data_root().join("snapshots/containers/tmp-4194305-rm3");
    std::fs::create_dir_all(hidden_layer.join("diff/etc")).unwrap();
    std::fs::write(hidden_layer.join("diff/etc/f"), "x").unwrap();
    d.spawn(&common::shim_binary());
    d.wait_removals_deleted();
    assert!(!hidden_record.exists() && !hidden_layer.exists());

    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]),
        "kept Created"
    );
    assert!(!d.data_root().join("containers").join(&half).exists());
    let left: Vec<String> = snaps
        .list()
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == wharf_image::snapshot::SnapshotKind::Container)
        .map(|s| s.id)
        .collect();
    assert_eq!(left.len(), 1, "only the kept container's layer: {left:?}");
    d.ok(&["start", "kept"]);
}

#[test]
fn stopped_rm_containers_are_removed_at_restart() {
    let mut d = Daemon::start();
    // Created, never started; one that exits while the daemon is away; a
    // plain stopped container that must stay.
    d.ok(&["create", "--rm", "--name", "rm-created", "busybox", "true"]);
    d.ok(&[
        "run", "-d", "--rm", "--name", "rm-exits", "busybox", "sh", "-c", "sleep 1",
    ]);
    d.ok(&["create", "--name", "kept", "busybox", "true"]);
    // A running --rm container (its start is never written to disk) is
    // re-adopted with its pid and start time, and removed when it stops.
    d.ok(&[
        "run", "-d", "--rm", "--name", "rm-runs", "busybox", "sleep", "300",
    ]);
    let fmt = "{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}";
    let before = d.ok(&["inspect", "--format", fmt, "rm-runs"]);
    d.stop_with(9);
    std::thread::sleep(std::time::Duration::from_millis(2000));
    d.spawn(&common::shim_binary());
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(
        names, "rm-runs\nkept",
        "dockerd removes stopped --rm containers at restore"
    );
    let after = d.ok(&["inspect", "--format", fmt, "rm-runs"]);
    assert!(before.starts_with("running "), "{before}");
    let (b, a) = (
        before.rsplit_once(' ').unwrap(),
        after.rsplit_once(' ').unwrap(),
    );
    assert_eq!(a.0, b.0, "same process");
    assert_eq!(
        a.1.get(..19),
        b.1.get(..19),
        "same start time: {before} / {after}"
    );
    d.ok(&["stop", "-t", "0", "rm-runs"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.ok(&["ps", "-a", "--format", "{{.Names}}"]) != "kept" {
        assert!(std::time::Instant::now() < deadline, "rm-runs not removed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let until = until.to_string();
    let events = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=destroy",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    let mut destroyed: Vec<&str> = events.lines().collect();
    destroyed.sort_unstable();
    assert_eq!(destroyed, ["rm-created", "rm-exits", "rm-runs"]);
}
