//! Tests of the test kit itself: the probe builds static and reports, bundles
//! hold a working rootfs, cleanup really removes mounts, cgroups and
//! processes, and the runtime driver works against a reference runtime (runc).
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::mount::{MountFlags, mount};
use wharf_testkit::{
    Bundle, Cleanup, DEFAULT_TIMEOUT, Runtime, cgroup_mounts, is_static_elf, probe_json,
    probe_lines, probe_path, require_root, run_bounded, test_tmp, unique_id,
};

fn readlink_ns(kind: &str) -> u64 {
    let target = fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
    let target = target.to_string_lossy();
    target[target.find('[').unwrap() + 1..target.len() - 1]
        .parse()
        .unwrap()
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            // A zombie whose parent is not us is as good as gone for this check.
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

#[test]
fn probe_is_static_and_reports_the_host_view() {
    let probe = probe_path();
    assert!(
        is_static_elf(&probe).unwrap(),
        "{} has a PT_INTERP",
        probe.display()
    );

    let mut cmd = Command::new(&probe);
    cmd.env("WHARF_KIT_MARK", "marked");
    let out = run_bounded(&mut cmd, DEFAULT_TIMEOUT).unwrap();
    assert!(out.status.success());
    let report = probe_json(&out);
    assert_eq!(report["env"]["WHARF_KIT_MARK"], "marked");
    assert_eq!(report["namespaces"]["pid"], readlink_ns("pid"));
    assert_eq!(report["namespaces"]["mnt"], readlink_ns("mnt"));
    assert_eq!(report["ppid"], std::process::id());
    let fds: Vec<u64> = report["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_u64().unwrap())
        .collect();
    assert!(fds.starts_with(&[0, 1, 2]), "fds: {fds:?}");
    assert!(
        report["fds"][1]["target"]
            .as_str()
            .unwrap()
            .contains("memfd:"),
        "{}",
        report["fds"]
    );
    assert_eq!(report["tty"]["stdout"]["isatty"], false);
    assert!(
        report["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mount_point"] == "/proc" && m["fstype"] == "proc")
    );
    let nofile = &report["rlimits"]["RLIMIT_NOFILE"];
    assert!(nofile["soft"].as_u64().unwrap() <= nofile["hard"].as_u64().unwrap_or(u64::MAX));
    let names = report["caps"]["bounding_names"].as_array().unwrap();
    let mask = report["caps"]["bounding"].as_u64().unwrap();
    assert_eq!(names.len(), usize::try_from(mask.count_ones()).unwrap());
}

#[test]
fn probe_subcommands_report_and_exit() {
    let probe = probe_path();
    let out = run_bounded(Command::new(&probe).args(["exit", "7"]), DEFAULT_TIMEOUT).unwrap();
    assert_eq!(out.status.code(), Some(7));

    let out = run_bounded(
        Command::new(&probe).args(["echo", "a", "b c"]),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(probe_json(&out)["args"], serde_json::json!(["a", "b c"]));

    let out = run_bounded(
        Command::new(&probe).args(["stat", "/dev/null"]),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    let stat = probe_json(&out);
    assert_eq!(
        (
            stat["type"].as_str(),
            stat["rdev_major"].as_u64(),
            stat["rdev_minor"].as_u64()
        ),
        (Some("char"), Some(1), Some(3))
    );

    let out = run_bounded(
        Command::new(&probe).args(["write", "/proc/version"]),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let write = probe_json(&out);
    assert_eq!(write["ok"], false);
    assert!(write["errno"].as_i64().is_some(), "{write}");

    let out = run_bounded(Command::new(&probe).args(["alloc", "3"]), DEFAULT_TIMEOUT).unwrap();
    let lines = probe_lines(&out);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["allocated_mb"], 3);

    let out = run_bounded(
        Command::new(&probe)
            .args(["syscall", "getcwd"])
            .current_dir("/proc"),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    let call = probe_json(&out);
    assert_eq!(
        (call["ok"].as_bool(), call["value"].as_str()),
        (Some(true), Some("/proc")),
        "{call}"
    );

    let out = run_bounded(Command::new(&probe).args(["fork", "2"]), DEFAULT_TIMEOUT).unwrap();
    assert_eq!(probe_json(&out)["spawned"], 2);
}

#[test]
fn bundle_has_a_runnable_rootfs_and_test_spec() {
    require_root();
    let mut bundle = Bundle::new().unwrap();
    let dir = bundle.path().to_owned();
    let rootfs = bundle.rootfs();
    assert!(is_static_elf(&rootfs.join("bin/busybox")).unwrap());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert!(
        fs::read_to_string(rootfs.join("etc/group"))
            .unwrap()
            .contains("extra:x:1001:wharf")
    );

    bundle
        .probe_args(&["echo", "hi"])
        .env("A", "1")
        .env("A", "2")
        .user(1000, 1000)
        .hostname("kit");
    bundle.write_config().unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.config_path()).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/probe", "echo", "hi"])
    );
    assert_eq!(config["process"]["terminal"], false);
    assert_eq!(config["process"]["user"]["uid"], 1000);
    assert_eq!(config["hostname"], "kit");
    let env: Vec<&str> = config["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .filter(|e| e.starts_with("A="))
        .collect();
    assert_eq!(env, ["A=2"]);
    assert_eq!(
        config["linux"]["cgroupsPath"],
        format!("/wharf-test/{}", bundle.id())
    );

    // The rootfs works on its own: busybox and the probe run chrooted into it.
    let out = run_bounded(
        Command::new("chroot").arg(&rootfs).args([
            "/bin/sh",
            "-c",
            "echo hello from $(basename $0)",
        ]),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from sh\n",
        "{out:?}"
    );
    let out = run_bounded(
        Command::new("chroot").arg(&rootfs).arg("/probe"),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(probe_json(&out)["cwd"], "/");

    drop(bundle);
    assert!(!dir.exists(), "bundle dir {} left behind", dir.display());
}

#[test]
fn bundle_drop_unmounts_what_is_left_inside() {
    require_root();
    let bundle = Bundle::new().unwrap();
    let target = bundle.rootfs().join("tmp");
    mount("tmpfs", &target, "tmpfs", MountFlags::empty(), None).unwrap();
    let id = bundle.id().to_owned();
    drop(bundle);
    Cleanup::check_no_leaks(&id);
}

#[test]
fn cleanup_removes_a_tmpfs_mount_and_its_directory() {
    require_root();
    let id = unique_id("kitmnt");
    let dir = test_tmp().join(&id);
    fs::create_dir(&dir).unwrap();
    let mut cleanup = Cleanup::new();
    cleanup.dir(&dir);
    mount("tmpfs", &dir, "tmpfs", MountFlags::empty(), None).unwrap();
    cleanup.mount(&dir);
    fs::write(dir.join("file"), "x").unwrap();
    cleanup.run().unwrap();
    Cleanup::check_no_leaks(&id);
    assert!(!dir.exists());
}

#[test]
#[should_panic(expected = "leaked")]
fn check_no_leaks_notices_a_mount() {
    require_root();
    let id = unique_id("kitleak");
    let dir = test_tmp().join(&id);
    fs::create_dir(&dir).unwrap();
    let mut cleanup = Cleanup::new();
    cleanup.dir(&dir).mount(&dir);
    mount("tmpfs", &dir, "tmpfs", MountFlags::empty(), None).unwrap();
    // Panics while the mount exists; the guard then removes it during unwinding.
    Cleanup::check_no_leaks(&id);
}

#[test]
fn cleanup_kills_cgroup_tasks_and_removes_it_everywhere() {
    require_root();
    let path = format!("/wharf-test/{}", unique_id("kitcg"));
    let mut cleanup = Cleanup::new();
    cleanup.cgroup(&path);
    let mounts = cgroup_mounts().unwrap();
    assert!(!mounts.is_empty());
    let mut made: Vec<PathBuf> = Vec::new();
    for mount in &mounts {
        let sub = mount.join(path.trim_start_matches('/')).join("nested");
        fs::create_dir_all(&sub).unwrap();
        if sub.join("cpuset.cpus").exists() {
            inherit_cpuset(mount, &sub);
        }
        made.push(sub);
    }
    // A task inside the nested cgroup (every hierarchy) keeps it busy.
    let mut child = Command::new("/bin/sleep").arg("100").spawn().unwrap();
    for sub in &made {
        fs::write(sub.join("cgroup.procs"), child.id().to_string()).unwrap();
    }
    cleanup.run().unwrap();
    assert!(wait_gone(child.id()), "task {} survived", child.id());
    let _ = child.try_wait();
    for sub in &made {
        assert!(
            !sub.parent().unwrap().exists(),
            "{} left behind",
            sub.display()
        );
    }
}

/// A v1 cpuset cgroup takes no task until `cpus` and `mems` are set: copy
/// them down from the hierarchy root to `leaf`, level by level.
fn inherit_cpuset(root: &Path, leaf: &Path) {
    let rel = leaf.strip_prefix(root).unwrap();
    let mut dir = root.to_owned();
    for part in rel.components() {
        let parent = dir.clone();
        dir.push(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read_to_string(dir.join(file))
                .unwrap()
                .trim()
                .is_empty()
            {
                fs::write(
                    dir.join(file),
                    fs::read_to_string(parent.join(file)).unwrap().trim(),
                )
                .unwrap();
            }
        }
    }
}

#[test]
fn cleanup_kills_and_reaps_a_child() {
    require_root();
    // Deliberately never waited on here: the guard must reap it.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("/bin/sleep").arg("100").spawn().unwrap();
    let pid = child.id();
    let mut cleanup = Cleanup::new();
    cleanup.pid(pid);
    drop(cleanup);
    // Reaped by the guard (we are the parent), so no zombie remains.
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

/// The runtime driver against runc, the reference runtime: a whole
/// run/create/start/state/delete cycle with the probe inside.
#[test]
fn runtime_driver_runs_the_probe_under_runc() {
    require_root();
    let runc = Path::new("/usr/sbin/runc");
    assert!(runc.exists(), "runc is needed as the reference runtime");
    let mut bundle = Bundle::new().unwrap();
    bundle.hostname("kit-host");
    let rt = Runtime::new(runc).unwrap();
    let root = rt.root().to_owned();

    let out = rt.run(&bundle, bundle.id()).unwrap();
    assert!(out.status.success(), "{}", wharf_testkit::describe(&out));
    let report = probe_json(&out);
    assert_eq!(report["pid"], 1);
    assert_eq!(report["hostname"], "kit-host");
    assert_ne!(report["namespaces"]["pid"], readlink_ns("pid"));
    // The container is in its own cgroup: behind a cgroup namespace it sees
    // "/", otherwise the bundle's cgroupsPath.
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.config_path()).unwrap()).unwrap();
    let cgroupns = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup");
    let cgroup_lines = report["cgroup"]["lines"].as_array().unwrap();
    if cgroupns {
        assert_ne!(report["namespaces"]["cgroup"], readlink_ns("cgroup"));
        assert!(
            cgroup_lines.iter().all(|l| l["path"] == "/"),
            "{cgroup_lines:?}"
        );
    } else {
        assert!(
            cgroup_lines
                .iter()
                .any(|l| l["path"].as_str().is_some_and(|p| p.ends_with(bundle.id()))),
            "{cgroup_lines:?}"
        );
    }
    rt.delete_force(bundle.id()).unwrap();

    let id = unique_id("kitc");
    bundle.probe_args(&["exit", "3"]);
    let out = rt.create(&bundle, &id).unwrap();
    assert!(out.status.success(), "{}", wharf_testkit::describe(&out));
    assert_eq!(rt.state(&id).unwrap()["status"], "created");
    assert!(rt.start(&id).unwrap().status.success());
    let state = rt.wait_stopped(&id, Duration::from_secs(10)).unwrap();
    assert_eq!(state["id"], id.as_str());

    let id2 = unique_id("kitsig");
    bundle.probe_args(&["signals"]);
    assert!(rt.create(&bundle, &id2).unwrap().status.success());
    assert!(rt.start(&id2).unwrap().status.success());
    wait_for_output(&rt, &id2, "\"ready\"");
    assert!(rt.kill(&id2, "TERM").unwrap().status.success());
    rt.wait_stopped(&id2, Duration::from_secs(10)).unwrap();
    let (stdout, _) = rt.container_output(&id2).unwrap();
    let text = String::from_utf8_lossy(&stdout);
    assert!(text.contains("\"signal\":\"SIGTERM\""), "{text}");

    drop(rt);
    assert!(
        !root.exists(),
        "runtime root {} left behind",
        root.display()
    );
}

fn wait_for_output(rt: &Runtime, id: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (stdout, stderr) = rt.container_output(id).unwrap();
        if String::from_utf8_lossy(&stdout).contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle} from {id}: {} / {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The probe's limit-related subcommands mean something inside a container:
/// under runc, `fork` hits `pids.limit`, the report shows the limits, and
/// `alloc` is OOM-killed at the memory limit.
#[test]
fn probe_sees_and_hits_cgroup_limits_under_runc() {
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};
    require_root();
    let mut bundle = Bundle::new().unwrap();
    let resources = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .memory(
            LinuxMemoryBuilder::default()
                .limit(32 * 1024 * 1024)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(resources));
    let rt = Runtime::new("/usr/sbin/runc").unwrap();

    let out = rt.run(&bundle, bundle.id()).unwrap();
    let report = probe_json(&out);
    assert_eq!(
        report["cgroup"]["limits"]["pids.max"], "5",
        "{}",
        report["cgroup"]
    );
    assert_eq!(
        report["cgroup"]["limits"]["memory.limit_in_bytes"],
        "33554432"
    );
    rt.delete_force(bundle.id()).unwrap();

    let id = unique_id("kitfork");
    bundle.probe_args(&["fork", "10"]);
    let fork = probe_json(&rt.run(&bundle, &id).unwrap());
    let spawned = fork["spawned"].as_u64().unwrap();
    assert!((1..10).contains(&spawned), "{fork}");
    assert_eq!(fork["errno"], 11, "EAGAIN expected: {fork}");
    rt.delete_force(&id).unwrap();

    let id = unique_id("kitoom");
    bundle.probe_args(&["alloc", "200"]);
    let out = rt.run(&bundle, &id).unwrap();
    let lines = probe_lines(&out);
    let last = lines.last().unwrap();
    assert!(
        last["ok"].is_null(),
        "alloc finished despite the limit: {last}"
    );
    assert!(last["allocated_mb"].as_u64().unwrap() < 32, "{last}");
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        wharf_testkit::describe(&out)
    );
}

#[test]
fn cleanup_force_deletes_a_registered_container() {
    require_root();
    let mut bundle = Bundle::new().unwrap();
    bundle.probe_args(&["sleep", "100"]);
    let rt = Runtime::new("/usr/sbin/runc").unwrap();
    let id = unique_id("kitdel");
    assert!(rt.create(&bundle, &id).unwrap().status.success());
    let pid = rt.state(&id).unwrap()["pid"].as_u64().unwrap();
    assert!(rt.start(&id).unwrap().status.success());

    let mut cleanup = Cleanup::new();
    cleanup.container(rt.binary(), rt.root(), &id);
    cleanup.run().unwrap();
    assert!(rt.state(&id).is_err(), "container {id} still known");
    assert!(
        wait_gone(u32::try_from(pid).unwrap()),
        "container process {pid} survived"
    );
}
