//! Mounts of a container run by `wharf-runtime`, as the probe sees them in
//! `/proc/self/mountinfo` and by touching files: the default spec's mounts
//! with their flags, the read-only root, binds from the host (read-only,
//! recursive), tmpfs options, propagation, masked and read-only paths.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    add_mount, bundle, create_and_start, edit_spec, has_option, has_super_option, probe_mount,
    run_output, run_probe, runtime, state_pid,
};
use serde_json::{Value, json};
use wharf_testkit::{Cleanup, describe, probe_json, require_root, test_tmp, unique_id};

const EROFS: i64 = 30;

/// A fresh host directory registered for removal.
fn host_dir(guard: &mut Cleanup, prefix: &str) -> PathBuf {
    let dir = test_tmp().join(unique_id(prefix));
    fs::create_dir_all(&dir).unwrap();
    guard.dir(&dir);
    dir
}

fn host_mount(args: &[&str]) {
    let status = Command::new("mount")
        .args(args)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount {args:?} failed");
}

/// The `write` subcommand's JSON for `path`, whatever its exit status.
fn probe_write(
    rt: &wharf_testkit::Runtime,
    prefix: &str,
    path: &str,
    edit: impl FnOnce(&mut Value),
) -> Value {
    let mut b = bundle(prefix);
    b.probe_args(&["write", path]);
    edit_spec(&mut b, edit);
    let out = run_output(rt, &b);
    probe_json(&out)
}

/// Whether a tmpfs lists a non-default `mode=` (the default 1777 is omitted).
fn s_has_mode(mount: &Value) -> bool {
    mount["super_options"].as_array().is_some_and(|o| {
        o.iter()
            .any(|v| v.as_str().is_some_and(|v| v.starts_with("mode=")))
    })
}

#[test]
fn default_mounts_carry_their_options() {
    require_root();
    let rt = runtime();
    let b = bundle("mdef");
    let report = run_probe(&rt, &b);

    let root = probe_mount(&report, "/");
    assert!(has_option(root, "ro"), "readonly root: {root}");

    let proc_ = probe_mount(&report, "/proc");
    assert_eq!(proc_["fstype"], "proc");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(has_option(proc_, opt), "/proc lacks {opt}: {proc_}");
    }

    let dev = probe_mount(&report, "/dev");
    assert_eq!(dev["fstype"], "tmpfs");
    assert!(has_option(dev, "nosuid"), "{dev}");
    assert!(has_super_option(dev, "size=65536k"), "{dev}");
    assert!(has_super_option(dev, "mode=755"), "{dev}");

    let shm = probe_mount(&report, "/dev/shm");
    assert_eq!(shm["fstype"], "tmpfs");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(has_option(shm, opt), "/dev/shm lacks {opt}: {shm}");
    }
    assert!(has_super_option(shm, "size=65536k"), "{shm}");
    // (tmpfs leaves its default mode=1777 out of the option list.)
    assert!(!s_has_mode(shm), "{shm}");

    let pts = probe_mount(&report, "/dev/pts");
    assert_eq!(pts["fstype"], "devpts");
    assert!(
        has_option(pts, "nosuid") && has_option(pts, "noexec"),
        "{pts}"
    );
    assert!(has_super_option(pts, "gid=5"), "{pts}");
    assert!(has_super_option(pts, "mode=620"), "{pts}");
    assert!(has_super_option(pts, "ptmxmode=666"), "{pts}");

    let mq = probe_mount(&report, "/dev/mqueue");
    assert_eq!(mq["fstype"], "mqueue");

    let sys = probe_mount(&report, "/sys");
    assert_eq!(sys["fstype"], "sysfs");
    assert!(has_option(sys, "ro"), "{sys}");

    let cg = probe_mount(&report, "/sys/fs/cgroup");
    assert!(has_option(cg, "ro"), "{cg}");
    let memory = probe_mount(&report, "/sys/fs/cgroup/memory");
    assert_eq!(memory["fstype"], "cgroup");
    assert!(has_option(memory, "ro"), "{memory}");
    // A new cgroup namespace: the container's own cgroup is the root there.
    assert_eq!(memory["root"], "/", "{memory}");
}

#[test]
fn readonly_root_rejects_writes_and_a_writable_root_accepts_them() {
    require_root();
    let rt = runtime();
    let denied = probe_write(&rt, "rorw", "/x", |_| {});
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(denied["errno"], EROFS, "{denied}");
    // /tmp of the image is on the read-only root too.
    let denied = probe_write(&rt, "rotmp", "/tmp/x", |_| {});
    assert_eq!(denied["errno"], EROFS, "{denied}");

    let mut b = bundle("rwroot");
    b.readonly_rootfs(false);
    b.probe_args(&["write", "/written"]);
    let out = run_output(&rt, &b);
    assert_eq!(probe_json(&out)["ok"], true, "{}", describe(&out));
    assert_eq!(
        fs::read_to_string(b.rootfs().join("written")).unwrap(),
        "written by wharf-probe\n"
    );
}

#[test]
fn host_directory_bound_read_only() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let src = host_dir(&mut guard, "mbind");
    fs::write(src.join("hello"), "from the host\n").unwrap();
    let src_s = src.to_string_lossy().into_owned();
    let mount = json!({"destination": "/data", "type": "bind", "source": src_s,
                       "options": ["rbind", "ro", "nosuid", "nodev"]});

    let mut b = bundle("mbind");
    edit_spec(&mut b, |s| add_mount(s, mount.clone()));
    let report = run_probe(&rt, &b);
    let data = probe_mount(&report, "/data");
    for opt in ["ro", "nosuid", "nodev"] {
        assert!(has_option(data, opt), "/data lacks {opt}: {data}");
    }

    let mut b = bundle("mbindcat");
    b.probe_args(&["cat", "/data/hello"]);
    edit_spec(&mut b, |s| add_mount(s, mount.clone()));
    let out = run_output(&rt, &b);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the host\n");

    let denied = probe_write(&rt, "mbindw", "/data/new", |s| add_mount(s, mount.clone()));
    assert_eq!(denied["errno"], EROFS, "{denied}");
    assert!(!src.join("new").exists(), "write went through to the host");
    // The host's own view of the directory stays writable.
    fs::write(src.join("host-write"), "ok").unwrap();
}

#[test]
fn tmpfs_mount_gets_size_mode_and_flags() {
    require_root();
    let rt = runtime();
    let mut b = bundle("mtmpfs");
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
        );
        // A custom /dev/shm size replaces the default one.
        for m in s["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev/shm" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "mode=1777", "size=2m"]);
            }
        }
    });
    let report = run_probe(&rt, &b);
    let scratch = probe_mount(&report, "/scratch");
    assert_eq!(scratch["fstype"], "tmpfs");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(has_option(scratch, opt), "/scratch lacks {opt}: {scratch}");
    }
    assert!(has_super_option(scratch, "size=1024k"), "{scratch}");
    assert!(has_super_option(scratch, "mode=700"), "{scratch}");
    let shm = probe_mount(&report, "/dev/shm");
    assert!(has_super_option(shm, "size=2048k"), "{shm}");
}

#[test]
fn rbind_brings_submounts_and_bind_does_not() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let src = host_dir(&mut guard, "mrbind");
    fs::create_dir(src.join("inner")).unwrap();
    let inner = src.join("inner");
    host_mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "wharf-inner",
        &inner.to_string_lossy(),
    ]);
    guard.mount(&inner);
    fs::write(inner.join("marker"), "inner").unwrap();
    let src_s = src.to_string_lossy().into_owned();

    let mut b = bundle("mrbind");
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/r", "type": "bind", "source": src_s, "options": ["rbind"]}),
        );
        add_mount(
            s,
            json!({"destination": "/b", "type": "bind", "source": src_s, "options": ["bind"]}),
        );
    });
    let report = run_probe(&rt, &b);
    let rinner = probe_mount(&report, "/r/inner");
    assert_eq!(rinner["fstype"], "tmpfs", "{rinner}");
    let mounts = report["mounts"].as_array().unwrap();
    assert!(
        !mounts.iter().any(|m| m["mount_point"] == "/b/inner"),
        "a plain bind carried the submount along"
    );
    Cleanup::check_no_leaks(&b.path().to_string_lossy());
}

/// Whether process `pid`'s mount table has a mount at `mount_point`.
fn pid_has_mount(pid: i64, mount_point: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mount_point))
}

#[test]
fn slave_mount_receives_host_mounts_and_private_does_not() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let src = host_dir(&mut guard, "mprop");
    let src_s = src.to_string_lossy().into_owned();
    // A shared mount on the host, so events have somewhere to propagate from.
    host_mount(&["--bind", &src_s, &src_s]);
    guard.mount(&src);
    host_mount(&["--make-shared", &src_s]);
    fs::create_dir(src.join("late")).unwrap();

    let mut b = bundle("mprop");
    b.probe_args(&["sleep", "30"]);
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/slave", "type": "bind", "source": src_s,
                            "options": ["rbind", "rslave"]}),
        );
        add_mount(
            s,
            json!({"destination": "/private", "type": "bind", "source": src_s,
                            "options": ["rbind", "rprivate"]}),
        );
    });
    create_and_start(&rt, &b);
    let pid = state_pid(&rt, b.id());

    let late = src.join("late");
    host_mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "wharf-late",
        &late.to_string_lossy(),
    ]);
    guard.mount(&late);
    assert!(
        pid_has_mount(pid, "/slave/late"),
        "rslave bind missed a host mount"
    );
    assert!(
        !pid_has_mount(pid, "/private/late"),
        "rprivate bind received a host mount"
    );
}

/// Paths of the default spec's `maskedPaths` (files) that exist and are
/// non-empty on this host, so masking them is observable.
fn maskable_files() -> Vec<&'static str> {
    [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| fs::read(p).is_ok_and(|c| !c.is_empty()))
    .collect()
}

#[test]
fn masked_paths_read_empty() {
    require_root();
    let files = maskable_files();
    assert!(
        files.len() >= 2,
        "too few maskable files on this host: {files:?}"
    );
    let rt = runtime();
    let mut b = bundle("mmask");
    let mut script: String = files.iter().map(|f| format!("wc -c < {f}; ")).collect();
    script.push_str("ls -A /sys/firmware | wc -l");
    b.args(&["/bin/sh", "-c", &script]);
    let out = run_output(&rt, &b);
    assert!(out.status.success(), "{}", describe(&out));
    let counts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(counts.len(), files.len() + 1, "{}", describe(&out));
    assert!(
        counts.iter().all(|c| c == "0"),
        "{files:?} + /sys/firmware: {counts:?}"
    );
    // The host's /sys/firmware is not empty, so the mask did something.
    assert!(fs::read_dir("/sys/firmware").unwrap().next().is_some());

    let b = bundle("mmaskinfo");
    let report = run_probe(&rt, &b);
    let fw = probe_mount(&report, "/sys/firmware");
    assert!(has_option(fw, "ro"), "{fw}");
    for f in files {
        probe_mount(&report, f);
    }
}

#[test]
fn readonly_paths_reject_writes() {
    require_root();
    let rt = runtime();
    let denied = probe_write(&rt, "mrosys", "/proc/sys/kernel/domainname", |_| {});
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(denied["errno"], EROFS, "{denied}");
    let b = bundle("mroinfo");
    let report = run_probe(&rt, &b);
    let mut checked = 0;
    for path in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/fs",
    ] {
        if Path::new(path).exists() {
            let m = probe_mount(&report, path);
            assert!(has_option(m, "ro"), "{path}: {m}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} read-only paths exist here");
}

#[test]
fn recursive_read_only_covers_submounts() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let src = host_dir(&mut guard, "mrro");
    let inner = src.join("inner");
    fs::create_dir(&inner).unwrap();
    host_mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "wharf-rro",
        &inner.to_string_lossy(),
    ]);
    guard.mount(&inner);
    let src_s = src.to_string_lossy().into_owned();

    let mut b = bundle("mrro");
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/rro", "type": "bind", "source": src_s,
                            "options": ["rbind", "rro", "rnosuid"]}),
        );
        add_mount(
            s,
            json!({"destination": "/ro", "type": "bind", "source": src_s,
                            "options": ["rbind", "ro"]}),
        );
    });
    let report = run_probe(&rt, &b);
    for mp in ["/rro", "/rro/inner"] {
        let m = probe_mount(&report, mp);
        assert!(has_option(m, "ro"), "{mp}: {m}");
        assert!(has_option(m, "nosuid"), "{mp}: {m}");
    }
    assert!(has_option(probe_mount(&report, "/ro"), "ro"));
    // Plain `ro` is not recursive (as with mount(8) and runc).
    assert!(has_option(probe_mount(&report, "/ro/inner"), "rw"));
    // The host's mounts keep their flags.
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = host
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*inner.to_string_lossy()))
        .expect("host submount");
    assert!(line.split(' ').nth(5).unwrap().starts_with("rw"), "{line}");
}

#[test]
fn single_file_bind_and_relative_source() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let src = host_dir(&mut guard, "mfile");
    let file = src.join("config.txt");
    fs::write(&file, "file from the host\n").unwrap();
    let file_s = file.to_string_lossy().into_owned();

    let mut b = bundle("mfile");
    // A relative bind source is relative to the bundle directory.
    fs::create_dir(b.path().join("beside")).unwrap();
    fs::write(b.path().join("beside/rel.txt"), "relative\n").unwrap();
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/etc/wharf/config.txt", "type": "bind",
                            "source": file_s, "options": ["bind", "ro"]}),
        );
        add_mount(
            s,
            json!({"destination": "/beside", "type": "bind",
                            "source": "beside", "options": ["rbind", "ro"]}),
        );
    });
    b.args(&[
        "/bin/sh",
        "-c",
        "cat /etc/wharf/config.txt /beside/rel.txt; /probe stat /etc/wharf/config.txt; \
         /probe write /etc/wharf/config.txt",
    ]);
    let out = run_output(&rt, &b);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("file from the host"),
        "{}",
        describe(&out)
    );
    assert_eq!(lines.next(), Some("relative"), "{}", describe(&out));
    let stat: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(stat["type"], "file", "{stat}");
    let write: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(write["errno"], EROFS, "{write}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "file from the host\n");
}

#[test]
fn no_pivot_runs_and_keeps_the_root_read_only() {
    require_root();
    let rt = runtime();
    let b = bundle("mnopivot");
    b.write_config().unwrap();
    let mut guard = Cleanup::new();
    guard.container(common::bin(), rt.root(), b.id());
    let out = rt
        .output([
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new("--no-pivot"),
            std::ffi::OsStr::new("--bundle"),
            b.path().as_os_str(),
            std::ffi::OsStr::new(b.id()),
        ])
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let report = probe_json(&out);
    assert!(has_option(probe_mount(&report, "/"), "ro"));
    assert_eq!(report["cwd"], "/");
    drop(guard);
}

#[test]
fn unsupported_mount_option_fails_clearly() {
    require_root();
    let rt = runtime();
    let mut b = bundle("mcopyup");
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup"]}),
        );
    });
    let out = run_output(&rt, &b);
    common::assert_fails_with(&out, "tmpcopyup", "run with tmpcopyup");
}
