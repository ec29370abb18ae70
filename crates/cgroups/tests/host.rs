//! Root tests against this host's real cgroup hierarchies: the whole manager
//! lifecycle on the detected layout, and the v2 eBPF device filter on the
//! cgroup2 mount. Each test registers its cgroup and processes on a
//! `wharf_testkit::Cleanup` guard first, so they go even when it fails.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};
use wharf_cgroups::{CgroupError, CgroupSetup, CgroupVersion, Controller, FreezerState, manager};
use wharf_testkit::{Cleanup, require_root, run_bounded, unique_id};

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

/// The directory for absolute cgroup `path` on the hierarchy serving `c`.
fn dir_of(setup: &CgroupSetup, path: &str, c: Controller) -> Option<PathBuf> {
    Some(
        setup
            .locate(c)?
            .mountpoint
            .join(path.trim_start_matches('/')),
    )
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields after the comm: state is index 0, utime is field 14 overall (index 11 here).
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn lifecycle_on_this_host() {
    require_root();
    let mut guard = Cleanup::new();
    let setup = CgroupSetup::detect().unwrap();
    let path = format!("/{}", unique_id("wharf-cg"));
    guard.cgroup(path.clone());
    let cg = manager(&setup, &path).unwrap();
    let paths = cg.paths();

    // 1. Create: a directory in every hierarchy.
    cg.create().unwrap();
    for p in &paths {
        assert!(p.is_dir(), "{} missing after create", p.display());
    }

    // 2. Limits, then read the files back.
    let mem_dir = dir_of(&setup, &path, Controller::Memory).expect("memory controller");
    let mem_v1 = setup.locate(Controller::Memory).unwrap().version == CgroupVersion::V1;
    let has_swap_accounting = if mem_v1 {
        mem_dir.join("memory.memsw.limit_in_bytes").exists()
    } else {
        mem_dir.join("memory.swap.max").exists()
    };
    let mut memory = LinuxMemoryBuilder::default().limit(64 << 20);
    if has_swap_accounting {
        memory = memory.swap(128 << 20);
    }
    if mem_v1 {
        memory = memory.swappiness(10u64);
    }
    let hugetlb_dir = dir_of(&setup, &path, Controller::Hugetlb);
    let mut resources = LinuxResourcesBuilder::default()
        .memory(memory.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000)
                .period(100_000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        );
    if hugetlb_dir.is_some() {
        resources = resources.hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4 << 20)
                .build()
                .unwrap(),
        ]);
    }
    cg.set(&resources.build().unwrap()).unwrap();

    if mem_v1 {
        assert_eq!(
            read(&mem_dir, "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(&mem_dir, "memory.swappiness"), "10");
        if has_swap_accounting {
            assert_eq!(
                read(&mem_dir, "memory.memsw.limit_in_bytes"),
                (128u64 << 20).to_string()
            );
        }
    } else {
        assert_eq!(read(&mem_dir, "memory.max"), (64u64 << 20).to_string());
        if has_swap_accounting {
            assert_eq!(read(&mem_dir, "memory.swap.max"), (64u64 << 20).to_string());
        }
    }
    let pids_dir = dir_of(&setup, &path, Controller::Pids).unwrap();
    assert_eq!(read(&pids_dir, "pids.max"), "32");
    let cpu_dir = dir_of(&setup, &path, Controller::Cpu).unwrap();
    if setup.locate(Controller::Cpu).unwrap().version == CgroupVersion::V1 {
        assert_eq!(read(&cpu_dir, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cpu_dir, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&cpu_dir, "cpu.shares"), "512");
    } else {
        assert_eq!(read(&cpu_dir, "cpu.max"), "50000 100000");
    }
    let cpuset_dir = dir_of(&setup, &path, Controller::Cpuset).unwrap();
    assert_eq!(read(&cpuset_dir, "cpuset.cpus"), "0");
    assert_eq!(read(&cpuset_dir, "cpuset.mems"), "0");
    if let Some(h) = &hugetlb_dir {
        let file = match setup.locate(Controller::Hugetlb).unwrap().version {
            CgroupVersion::V1 => "hugetlb.2MB.limit_in_bytes",
            CgroupVersion::V2 => "hugetlb.2MB.max",
        };
        assert_eq!(read(h, file), (4u64 << 20).to_string());
    }

    // blkio weight: applied when the kernel has a weight file, else the
    // error names the missing file.
    if let Some(blkio_dir) = dir_of(&setup, &path, Controller::Blkio) {
        let weight = LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(300u16)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let weight_files = [
            "blkio.weight",
            "blkio.bfq.weight",
            "io.bfq.weight",
            "io.weight",
        ];
        match weight_files.iter().find(|f| blkio_dir.join(f).exists()) {
            Some(f) => {
                cg.set(&weight).unwrap();
                assert!(
                    read(&blkio_dir, f).contains("300") || *f == "io.weight",
                    "{f}"
                );
            }
            None => {
                let err = cg.set(&weight).unwrap_err();
                assert!(matches!(err, CgroupError::MissingFile { .. }), "{err}");
                assert!(err.to_string().contains("weight"), "{err}");
            }
        }
    }

    // 3. A child that allocates once it is inside, then spins.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "read go; x=$(head -c 2000000 /dev/zero | tr '\\0' a); while :; do :; done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    guard.pid(pid);
    cg.add_process(i32::try_from(pid).unwrap()).unwrap();
    assert!(cg.pids().unwrap().contains(&i32::try_from(pid).unwrap()));
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        proc_cgroup.lines().all(|l| l.ends_with(&path)),
        "{proc_cgroup}"
    );
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();

    // Let it allocate and run a bit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cpu_ticks(pid) < 5 {
        assert!(Instant::now() < deadline, "child never used cpu");
        std::thread::sleep(Duration::from_millis(20));
    }

    // 4. Freeze: the freezer reports FROZEN and the spinning child stops
    //    accumulating CPU time; thaw and it runs again.
    cg.freeze().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    let freezer_dir = dir_of(&setup, &path, Controller::Freezer).unwrap();
    match setup.locate(Controller::Freezer).unwrap().version {
        CgroupVersion::V1 => assert_eq!(read(&freezer_dir, "freezer.state"), "FROZEN"),
        CgroupVersion::V2 => assert!(read(&freezer_dir, "cgroup.events").contains("frozen 1")),
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let state = status
        .lines()
        .find(|l| l.starts_with("State:"))
        .unwrap()
        .to_owned();
    assert!(
        !state.contains("R (running)"),
        "frozen child is running: {state}"
    );
    let frozen_at = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(pid), frozen_at, "frozen child kept running");
    cg.thaw().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cpu_ticks(pid) == frozen_at {
        assert!(Instant::now() < deadline, "thawed child does not run");
        std::thread::sleep(Duration::from_millis(20));
    }

    // 5. Stats.
    let stats = cg.stats().unwrap();
    let mem = stats.memory.expect("memory stats");
    assert!(mem.usage > 0, "{mem:?}");
    assert_eq!(mem.limit, Some(64 << 20));
    let cpu = stats.cpu.expect("cpu stats");
    assert!(cpu.total_usage_ns > 0, "{cpu:?}");
    assert!(cpu.user_ns + cpu.system_ns > 0, "{cpu:?}");
    let pids = stats.pids.expect("pids stats");
    assert!(pids.current >= 1);
    assert_eq!(pids.limit, Some(32));
    serde_json::to_string(&stats.blkio).unwrap();
    if hugetlb_dir.is_some() {
        assert!(stats.hugetlb.contains_key("2MB"), "{:?}", stats.hugetlb);
    }

    // 6. Kill, then destroy removes every directory; twice is fine.
    child.kill().unwrap();
    child.wait().unwrap();
    cg.destroy().unwrap();
    for p in &paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    cg.destroy().unwrap();
    guard.run().unwrap();
}

/// Runs `script` in a shell that first moves itself into cgroup `dir`.
fn run_in(dir: &Path, script: &str) -> std::process::Output {
    let full = format!("echo $$ > {}/cgroup.procs && {script}", dir.display());
    run_bounded(
        Command::new("sh").args(["-c", &full]),
        Duration::from_secs(20),
    )
    .unwrap()
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(typ);
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

fn devices(rules: Vec<LinuxDeviceCgroup>) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .unwrap()
}

fn v2_mount() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            post.starts_with("cgroup2 ")
                .then(|| PathBuf::from(pre.split(' ').nth(4).unwrap()))
        })
        .expect("this test needs a cgroup2 mount")
}

#[test]
fn v2_device_filter_on_the_unified_mount() {
    require_root();
    let mut guard = Cleanup::new();
    // A pure-v2 view of this host's cgroup2 mount, so devices go through eBPF.
    let mount = v2_mount();
    let setup = CgroupSetup::from_parts(
        &format!("1 0 0:1 / {} rw - cgroup2 cgroup2 rw\n", mount.display()),
        "0::/\n",
    )
    .unwrap();
    assert_eq!(
        setup.locate(Controller::Devices).unwrap().version,
        CgroupVersion::V2
    );
    let path = format!("/{}", unique_id("wharf-dev"));
    guard.cgroup(path.clone());
    let cg = manager(&setup, &path).unwrap();
    cg.create().unwrap();
    let dir = cg.v2_dir().expect("pure v2 view has a v2 dir");
    assert_eq!(dir, mount.join(path.trim_start_matches('/')));

    // Without a filter both devices open (so the checks below can fail).
    let out = run_in(&dir, "cat /dev/null && head -c1 /dev/full >/dev/null");
    assert!(
        out.status.success(),
        "baseline: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Deny everything but /dev/null.
    cg.set(&devices(vec![
        rule(false, None, None, None, "rwm"),
        rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rwm"),
    ]))
    .unwrap();
    let out = run_in(&dir, "cat /dev/null");
    assert!(
        out.status.success(),
        "/dev/null: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_in(&dir, "head -c1 /dev/full >/dev/null");
    assert!(!out.status.success(), "/dev/full should be denied");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    assert_eq!(wharf_programs(&dir), 1);

    // Re-applying replaces the program: allow all but writes to /dev/full.
    cg.set(&devices(vec![
        rule(true, None, None, None, "rwm"),
        rule(false, Some(LinuxDeviceType::C), Some(1), Some(7), "w"),
    ]))
    .unwrap();
    assert_eq!(wharf_programs(&dir), 1, "the old program was detached");
    let out = run_in(
        &dir,
        "head -c1 /dev/full >/dev/null && head -c1 /dev/zero >/dev/null",
    );
    assert!(
        out.status.success(),
        "reads allowed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_in(&dir, "echo x > /dev/full");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );

    cg.destroy().unwrap();
    assert!(!dir.exists());
    guard.run().unwrap();
}

/// How many programs named like wharf's are attached to `dir`.
fn wharf_programs(dir: &Path) -> usize {
    use std::os::fd::AsFd;
    use wharf_sys::bpf;
    let f = std::fs::File::open(dir).unwrap();
    bpf::query_attached(f.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        .unwrap()
        .into_iter()
        .filter(|id| {
            let fd = bpf::prog_fd_by_id(*id).unwrap();
            bpf::prog_info(fd.as_fd()).unwrap().name == "wharf_devices"
        })
        .count()
}
