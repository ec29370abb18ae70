//! docker's rarer `run`/`create`/`update` options through the real docker
//! CLI (v28) against a temporary wharfd: each effect is checked inside the
//! container (`/proc/self/...`) or outside it (the container's cgroup
//! directories in the v1 hierarchies), and each refusal by its message and
//! docker's exit code (125 for `run`).

mod common;

use std::path::{Path, PathBuf};

use common::Daemon;

/// Asserts `docker args` fails with docker's exit code for a daemon error
/// (125 for `run`, 1 for `create` and `update`) and `msg` in its stderr.
fn refused(d: &Daemon, args: &[&str], msg: &str) {
    let (code, err) = d.fails(args);
    let want = if args[0] == "run" { 125 } else { 1 };
    assert_eq!(code, want, "docker {args:?}: {err}");
    assert!(
        err.contains(msg),
        "docker {args:?}: want {msg:?}, got {err}"
    );
}

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A cgroup parent below the v1 roots, removed (with what is left in it)
/// from every hierarchy on drop.
struct CgroupParent(String);

const HIERARCHIES: &[&str] = &[
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "hugetlb",
    "systemd", "unified",
];

impl CgroupParent {
    fn new(tag: &str) -> CgroupParent {
        CgroupParent(format!("wharf-hc-{tag}-{}", std::process::id()))
    }

    fn dir(&self, hierarchy: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(&self.0)
            .join(id)
    }

    fn read(&self, hierarchy: &str, id: &str, file: &str) -> String {
        let p = self.dir(hierarchy, id).join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_owned()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for h in HIERARCHIES {
            let parent = Path::new("/sys/fs/cgroup").join(h).join(&self.0);
            if let Ok(rd) = std::fs::read_dir(&parent) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&parent);
        }
    }
}

/// Removes the named containers on drop (also when a check failed).
struct Containers<'a>(&'a Daemon, Vec<String>);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for c in &self.1 {
            let _ = self.0.docker(&["rm", "-f", c]);
        }
    }
}

#[test]
fn oom_score_uts_cgroupns_runtime() {
    let d = Daemon::start();
    let run = |extra: &[&str], cmd: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.push("busybox");
        a.extend_from_slice(cmd);
        d.ok(&a)
    };
    // OomScoreAdj → process.oomScoreAdj.
    assert_eq!(
        run(
            &["--oom-score-adj", "500"],
            &["cat", "/proc/self/oom_score_adj"]
        ),
        "500"
    );
    assert_eq!(
        run(&[], &["cat", "/proc/self/oom_score_adj"]),
        std::fs::read_to_string("/proc/self/oom_score_adj")
            .unwrap()
            .trim(),
        "unset: inherited"
    );
    refused(
        &d,
        &["run", "--rm", "--oom-score-adj", "1001", "busybox", "true"],
        "Invalid value 1001, range for oom score adj is [-1000, 1000]",
    );

    // UTSMode=host shares the host's UTS namespace (and hostname).
    let uts = host_ns("uts");
    assert_eq!(
        run(
            &["--uts", "host"],
            &["busybox", "readlink", "/proc/self/ns/uts"]
        ),
        uts
    );
    assert_ne!(run(&[], &["busybox", "readlink", "/proc/self/ns/uts"]), uts);
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(run(&["--uts", "host"], &["hostname"]), host_name.trim());
    refused(
        &d,
        &[
            "run",
            "--rm",
            "--uts",
            "host",
            "--hostname",
            "box",
            "busybox",
            "true",
        ],
        "conflicting options: hostname and the UTS mode",
    );

    // CgroupnsMode: host by default on cgroup v1, private on request.
    let cg = host_ns("cgroup");
    assert_eq!(
        run(&[], &["busybox", "readlink", "/proc/self/ns/cgroup"]),
        cg
    );
    assert_eq!(
        run(
            &["--cgroupns", "host"],
            &["busybox", "readlink", "/proc/self/ns/cgroup"]
        ),
        cg
    );
    assert_ne!(
        run(
            &["--cgroupns", "private"],
            &["busybox", "readlink", "/proc/self/ns/cgroup"]
        ),
        cg
    );
    let id = d.ok(&["create", "busybox", "true"]);
    let _c = Containers(&d, vec![id.clone()]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.HostConfig.CgroupnsMode}}", &id]),
        "host"
    );

    // Runtime, Isolation, UsernsMode, StorageOpt.
    assert_eq!(run(&["--runtime", "runc"], &["echo", "ok"]), "ok");
    assert_eq!(run(&["--userns", "host"], &["echo", "ok"]), "ok");
    refused(
        &d,
        &["run", "--rm", "--runtime", "crun", "busybox", "true"],
        "unknown or invalid runtime name: crun",
    );
    refused(
        &d,
        &["create", "--isolation", "hyperv", "busybox", "true"],
        "invalid isolation (hyperv): linux only supports 'default'",
    );
    refused(
        &d,
        &["create", "--storage-opt", "size=1G", "busybox", "true"],
        "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
    );
    // The CLI checks --userns itself; the daemon refuses what it cannot do.
    let (status, _, body) = d.http(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"UsernsMode":"private"}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid userns mode: private"), "{body}");
}

#[test]
fn links_kernel_memory_and_device_rules() {
    let d = Daemon::start();
    refused(
        &d,
        &[
            "create",
            "--network",
            "host",
            "--link",
            "other",
            "busybox",
            "true",
        ],
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
    );
    refused(
        &d,
        &[
            "create",
            "--network",
            "none",
            "--link",
            "nosuch",
            "busybox",
            "true",
        ],
        "could not get container for nosuch: No such container: nosuch",
    );
    // A link to a container on the host's network is refused too.
    d.ok(&[
        "create",
        "--name",
        "hostnet",
        "--network",
        "host",
        "busybox",
        "true",
    ]);
    let mut guard = Containers(&d, vec!["hostnet".into()]);
    refused(
        &d,
        &[
            "create",
            "--network",
            "none",
            "--link",
            "hostnet:h",
            "busybox",
            "true",
        ],
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
    );
    d.ok(&["create", "--name", "plain", "busybox", "true"]);
    guard.1.push("plain".into());
    let linked = d.ok(&[
        "create",
        "--network",
        "none",
        "--link",
        "plain:p",
        "busybox",
        "true",
    ]);
    guard.1.push(linked.clone());
    assert!(
        d.ok(&["inspect", "--format", "{{json .HostConfig.Links}}", &linked])
            .contains("plain:p")
    );

    // KernelMemory is ignored (API >= 1.42: zeroed, as dockerd does).
    let (status, _, body) = d.http(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"KernelMemory":16777216}}"#),
    );
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kid = v["Id"].as_str().unwrap().to_owned();
    guard.1.push(kid.clone());
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.HostConfig.KernelMemory}}", &kid]),
        "0"
    );

    // Device cgroup rules: the daemon's syntax check (the CLI has its own).
    let (status, _, body) = d.http(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"DeviceCgroupRules":["c 1:3"]}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid device cgroup rule format: 'c 1:3'"),
        "{body}"
    );
    // c 42:0 has no driver: with the rule, opening it reaches the kernel
    // (ENXIO); without it, the device cgroup denies it (EPERM).
    let open_42 = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            "busybox",
            "sh",
            "-c",
            "busybox mknod /tmp/n c 42 0 && cat /tmp/n",
        ]);
        let out = d.docker(&a);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let allowed = open_42(&["--device-cgroup-rule", "c 42:* rwm"]);
    assert!(allowed.contains("No such device or address"), "{allowed}");
    let denied = open_42(&[]);
    assert!(denied.contains("Operation not permitted"), "{denied}");
}

#[test]
fn cgroup_parent_blkio_swappiness_realtime_and_update() {
    let d = Daemon::start();
    let parent = CgroupParent::new("res");
    let id = d.ok(&[
        "run",
        "-d",
        "--cgroup-parent",
        &parent.0,
        "--blkio-weight",
        "300",
        "--device-read-bps",
        "/dev/vda:1mb",
        "--device-write-iops",
        "/dev/vda:100",
        "--memory-swappiness",
        "20",
        "--device-cgroup-rule",
        "c 42:* rm",
        "--cpu-rt-period",
        "500000",
        "busybox",
        "sleep",
        "60",
    ]);
    let _c = Containers(&d, vec![id.clone()]);
    // CgroupParent: <parent>/<id> in every hierarchy.
    let procs = parent.read("memory", &id, "cgroup.procs");
    assert!(!procs.is_empty(), "the container runs in {}", parent.0);
    let weight = {
        let dir = parent.dir("blkio", &id);
        let f = if dir.join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        parent.read("blkio", &id, f)
    };
    assert!(weight.ends_with("300"), "{weight}");
    let vda = {
        use std::os::unix::fs::MetadataExt;
        let r = std::fs::metadata("/dev/vda").unwrap().rdev();
        format!("{}:{}", rustix::fs::major(r), rustix::fs::minor(r))
    };
    assert_eq!(
        parent.read("blkio", &id, "blkio.throttle.read_bps_device"),
        format!("{vda} 1048576")
    );
    assert_eq!(
        parent.read("blkio", &id, "blkio.throttle.write_iops_device"),
        format!("{vda} 100")
    );
    assert_eq!(parent.read("memory", &id, "memory.swappiness"), "20");
    assert!(
        parent
            .read("devices", &id, "devices.list")
            .lines()
            .any(|l| l == "c 42:* rm"),
        "{}",
        parent.read("devices", &id, "devices.list")
    );
    assert_eq!(parent.read("cpu", &id, "cpu.rt_period_us"), "500000");

    // update: blkio weight, real-time period, cpuset mems, live.
    d.ok(&[
        "update",
        "--blkio-weight",
        "400",
        "--cpu-rt-period",
        "400000",
        "--cpuset-mems",
        "0",
        &id,
    ]);
    let f = if parent.dir("blkio", &id).join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    assert!(parent.read("blkio", &id, f).ends_with("400"));
    assert_eq!(parent.read("cpu", &id, "cpu.rt_period_us"), "400000");
    assert_eq!(parent.read("cpuset", &id, "cpuset.mems"), "0");
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{.HostConfig.BlkioWeight}} {{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CgroupParent}}",
            &id
        ]),
        format!("400 400000 {}", parent.0)
    );
    refused(
        &d,
        &["update", "--blkio-weight", "5", &id],
        "Range of blkio weight is from 10 to 1000",
    );

    // Refusals in dockerd's words.
    refused(
        &d,
        &["create", "--blkio-weight", "5", "busybox", "true"],
        "Range of blkio weight is from 10 to 1000",
    );
    // The CLI checks the swappiness range itself; the daemon's answer:
    let (status, _, body) = d.http(
        "POST",
        "/v1.50/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"MemorySwappiness":101}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Invalid value: 101, valid memory swappiness range is 0-100"),
        "{body}"
    );
    refused(
        &d,
        &[
            "create",
            "--cpu-rt-period",
            "1000",
            "--cpu-rt-runtime",
            "2000",
            "busybox",
            "true",
        ],
        "cpu real-time runtime cannot be higher than cpu real-time period",
    );
    refused(
        &d,
        &[
            "create",
            "--device-read-bps",
            "/dev/wharf-no-such-disk:1mb",
            "busybox",
            "true",
        ],
        "stat /dev/wharf-no-such-disk: no such file or directory",
    );
}

#[test]
fn realtime_runtime_reaches_the_cgroup() {
    // A new cgroup parent has no real-time budget (cpu.rt_runtime_us 0),
    // so, as with dockerd without --cpu-rt-runtime, the kernel refuses a
    // container budget at start: the value reaches the spec and the
    // cgroup write, whose error docker run reports (exit 125).
    let d = Daemon::start();
    let parent = CgroupParent::new("rt");
    let name = format!("rt-{}", std::process::id());
    let _c = Containers(&d, vec![name.clone()]);
    let (code, err) = d.fails(&[
        "run",
        "--name",
        &name,
        "--cgroup-parent",
        &parent.0,
        "--cpu-rt-runtime",
        "1000",
        "busybox",
        "true",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("rt_runtime_us"), "{err}");
    assert_eq!(
        std::fs::read_to_string(
            Path::new("/sys/fs/cgroup/cpu")
                .join(&parent.0)
                .join("cpu.rt_runtime_us")
        )
        .unwrap()
        .trim(),
        "0"
    );
    let id = d.ok(&["inspect", "--format", "{{.Id}}", &name]);
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            d.data_root()
                .join("containers")
                .join(&id)
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(spec["linux"]["resources"]["cpu"]["realtimeRuntime"], 1000);
    assert_eq!(spec["linux"]["cgroupsPath"], format!("/{}/{id}", parent.0));
}

#[test]
fn volumes_from() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "shared\n").unwrap();
    let bind = format!("{}:/data", dir.path().display());
    d.ok(&["create", "--name", "src", "-v", &bind, "busybox", "true"]);
    let _c = Containers(&d, vec!["src".into()]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            "busybox",
            "sh",
            "-c",
            "cat /data/file && echo more > /data/new && echo written",
        ]),
        "shared\nwritten"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new")).unwrap(),
        "more\n"
    );
    // inspect lists the mounts taken, read-only when taken with :ro.
    let inspect_mounts = |id: &str| -> serde_json::Value {
        serde_json::from_str(&d.ok(&["inspect", "--format", "{{json .Mounts}}", id])).unwrap()
    };
    let rw = d.ok(&["create", "--volumes-from", "src", "busybox", "true"]);
    let ro = d.ok(&["create", "--volumes-from", "src:ro", "busybox", "true"]);
    let _c2 = Containers(&d, vec![rw.clone(), ro.clone()]);
    for (id, writable) in [(&rw, true), (&ro, false)] {
        let m = inspect_mounts(id);
        assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
        assert_eq!(m[0]["Type"], "bind");
        assert_eq!(m[0]["Source"], dir.path().to_str().unwrap());
        assert_eq!(m[0]["Destination"], "/data");
        assert_eq!(m[0]["RW"], writable, "{m}");
        assert_eq!(m[0]["Propagation"], "rprivate");
    }
    let (code, err) = d.fails(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "touch",
        "/data/x",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    // The container's own mount on the same destination wins.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("file"), "own\n").unwrap();
    let own = format!("{}:/data", other.path().display());
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            "-v",
            &own,
            "busybox",
            "cat",
            "/data/file",
        ]),
        "own"
    );
    let both = d.ok(&[
        "create",
        "--volumes-from",
        "src",
        "-v",
        &own,
        "busybox",
        "true",
    ]);
    let _c3 = Containers(&d, vec![both.clone()]);
    let m = inspect_mounts(&both);
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
    assert_eq!(m[0]["Source"], other.path().to_str().unwrap());
    refused(
        &d,
        &["create", "--volumes-from", "nosuch", "busybox", "true"],
        "No such container: nosuch",
    );
}
