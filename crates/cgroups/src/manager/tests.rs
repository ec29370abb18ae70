use std::collections::HashMap;

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::*;
use crate::setup::tests::{HYBRID_CGROUP, HYBRID_MOUNTINFO};

/// A fake cgroupfs in a temp dir: mountinfo/cgroup text pointing into it, and
/// helpers to create the files the kernel would.
struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    setup: CgroupSetup,
}

impl Fake {
    /// `v1`: hierarchies by their option string (`"cpu"`, `"cpu,cpuacct"`,
    /// `"name=systemd"`); `v2`: whether a cgroup2 mount exists.
    fn new(v1: &[&str], v2: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let mut mountinfo = String::new();
        let mut cgroup = String::new();
        for (i, opts) in v1.iter().enumerate() {
            let dir = root.join(opts.trim_start_matches("name="));
            std::fs::create_dir_all(&dir).unwrap();
            mountinfo.push_str(&format!(
                "{} 1 0:{i} / {} rw - cgroup cgroup rw,{opts}\n",
                40 + i,
                dir.display()
            ));
            cgroup.push_str(&format!("{}:{opts}:/\n", i + 1));
        }
        if v2 {
            let dir = root.join("unified");
            std::fs::create_dir_all(&dir).unwrap();
            mountinfo.push_str(&format!(
                "99 1 0:99 / {} rw - cgroup2 cgroup2 rw\n",
                dir.display()
            ));
            cgroup.push_str("0::/\n");
        }
        let setup = CgroupSetup::from_parts(&mountinfo, &cgroup).unwrap();
        Self {
            _tmp: tmp,
            root,
            setup,
        }
    }

    fn dir(&self, hierarchy: &str, cgroup: &str) -> PathBuf {
        join_cgroup(&self.root.join(hierarchy), Path::new(cgroup))
    }

    /// Creates `dir` (and parents) with `files` as the kernel would.
    fn files(&self, hierarchy: &str, cgroup: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.dir(hierarchy, cgroup);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        dir
    }
}

fn get(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
}

#[test]
fn absolute_and_relative_paths() {
    let setup = CgroupSetup::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
    let abs = crate::manager(&setup, "/wharf/abc").unwrap().paths();
    assert_eq!(abs.len(), 10);
    assert!(abs.contains(&PathBuf::from("/sys/fs/cgroup/memory/wharf/abc")));
    assert!(abs.contains(&PathBuf::from("/sys/fs/cgroup/systemd/wharf/abc")));
    assert!(abs.contains(&PathBuf::from("/sys/fs/cgroup/unified/wharf/abc")));
    let rel = crate::manager(&setup, "wharf/abc").unwrap().paths();
    // Relative: under our own cgroup, which differs per hierarchy here.
    assert!(rel.contains(&PathBuf::from(
        "/sys/fs/cgroup/memory/process_api/dcd34b2490108235b75ca521bbbfc7f1/wharf/abc"
    )));
    assert!(rel.contains(&PathBuf::from("/sys/fs/cgroup/cpu/wharf/abc")));
    for bad in ["", "/", "/a/../b", "system.slice:docker:abc"] {
        assert!(
            matches!(
                crate::manager(&setup, bad),
                Err(CgroupError::InvalidPath { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn v2_dir_only_on_pure_v2() {
    let hybrid = CgroupSetup::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
    assert_eq!(crate::manager(&hybrid, "/x").unwrap().v2_dir(), None);
    let v2 = CgroupSetup::from_parts(
        "1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/user.slice\n",
    )
    .unwrap();
    let m = crate::manager(&v2, "x").unwrap();
    assert_eq!(
        m.v2_dir(),
        Some(PathBuf::from("/sys/fs/cgroup/user.slice/x"))
    );
    assert_eq!(
        m.paths(),
        vec![PathBuf::from("/sys/fs/cgroup/user.slice/x")]
    );
}

#[test]
fn create_inherits_cpuset_and_enables_v2_controllers() {
    let f = Fake::new(&["cpuset", "memory"], true);
    f.files(
        "cpuset",
        "/",
        &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")],
    );
    // The kernel creates these (empty) on mkdir.
    for level in ["/a", "/a/b"] {
        f.files("cpuset", level, &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
    }
    f.files(
        "unified",
        "/",
        &[
            ("cgroup.controllers", "hugetlb cpu\n"),
            ("cgroup.subtree_control", ""),
        ],
    );
    let m = crate::manager(&f.setup, "/a/b").unwrap();
    m.create().unwrap();
    assert_eq!(get(&f.dir("cpuset", "/a"), "cpuset.cpus"), "0-3");
    assert_eq!(get(&f.dir("cpuset", "/a/b"), "cpuset.mems"), "0");
    assert!(f.dir("memory", "/a/b").is_dir());
    assert!(f.dir("unified", "/a/b").is_dir());
    // hugetlb is the only v2 controller not bound to v1 that the root offers.
    assert_eq!(
        get(&f.root.join("unified"), "cgroup.subtree_control"),
        "+hugetlb"
    );
    // Creating again is fine.
    m.create().unwrap();
}

#[test]
fn set_maps_every_v1_value() {
    let f = Fake::new(
        &[
            "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "hugetlb",
        ],
        false,
    );
    let cg = "/c1";
    let mem = f.files(
        "memory",
        cg,
        &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", ""),
            ("memory.soft_limit_in_bytes", ""),
            ("memory.swappiness", ""),
            ("memory.oom_control", ""),
        ],
    );
    let cpu = f.files(
        "cpu",
        cg,
        &[
            ("cpu.shares", ""),
            ("cpu.cfs_period_us", ""),
            ("cpu.cfs_quota_us", ""),
            ("cpu.rt_period_us", ""),
            ("cpu.rt_runtime_us", ""),
            ("cpu.idle", ""),
        ],
    );
    let cpuset = f.files("cpuset", cg, &[("cpuset.cpus", ""), ("cpuset.mems", "")]);
    let pids = f.files("pids", cg, &[("pids.max", "")]);
    let blkio = f.files(
        "blkio",
        cg,
        &[
            ("blkio.weight", ""),
            ("blkio.weight_device", ""),
            ("blkio.leaf_weight", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ],
    );
    let devices = f.files(
        "devices",
        cg,
        &[("devices.allow", ""), ("devices.deny", "")],
    );
    let huge = f.files("hugetlb", cg, &[("hugetlb.2MB.limit_in_bytes", "")]);

    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".into()));
    let mut null = LinuxDeviceCgroup::default();
    null.set_allow(true);
    null.set_typ(Some(LinuxDeviceType::C));
    null.set_major(Some(1));
    null.set_minor(Some(3));
    null.set_access(Some("rw".into()));
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swap(200 << 20)
                .reservation(50 << 20)
                .swappiness(10u64)
                .disable_oom_killer(true)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000)
                .period(100_000u64)
                .realtime_period(1_000_000u64)
                .realtime_runtime(0)
                .idle(0)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .leaf_weight(200u16)
                .weight_device(vec![
                    LinuxWeightDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .weight(400u16)
                        .build()
                        .unwrap(),
                ])
                .throttle_read_bps_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .rate(1_048_576u64)
                        .build()
                        .unwrap(),
                ])
                .throttle_write_iops_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(16)
                        .rate(100u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4 << 20)
                .build()
                .unwrap(),
        ])
        .devices(vec![deny_all, null])
        .build()
        .unwrap();
    let m = crate::manager(&f.setup, cg).unwrap();
    m.set(&r).unwrap();

    assert_eq!(get(&mem, "memory.limit_in_bytes"), (100 << 20).to_string());
    assert_eq!(
        get(&mem, "memory.memsw.limit_in_bytes"),
        (200 << 20).to_string()
    );
    assert_eq!(
        get(&mem, "memory.soft_limit_in_bytes"),
        (50 << 20).to_string()
    );
    assert_eq!(get(&mem, "memory.swappiness"), "10");
    assert_eq!(get(&mem, "memory.oom_control"), "1");
    assert_eq!(get(&cpu, "cpu.shares"), "512");
    assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(get(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(get(&cpu, "cpu.rt_period_us"), "1000000");
    assert_eq!(
        get(&cpu, "cpu.rt_runtime_us"),
        "",
        "a zero runtime is left alone"
    );
    assert_eq!(get(&cpu, "cpu.idle"), "0");
    assert_eq!(get(&cpuset, "cpuset.cpus"), "0");
    assert_eq!(get(&cpuset, "cpuset.mems"), "0");
    assert_eq!(get(&pids, "pids.max"), "64");
    assert_eq!(get(&blkio, "blkio.weight"), "300");
    assert_eq!(get(&blkio, "blkio.leaf_weight"), "200");
    assert_eq!(get(&blkio, "blkio.weight_device"), "8:0 400");
    assert_eq!(get(&blkio, "blkio.throttle.read_bps_device"), "8:0 1048576");
    assert_eq!(get(&blkio, "blkio.throttle.write_iops_device"), "8:16 100");
    assert_eq!(
        get(&huge, "hugetlb.2MB.limit_in_bytes"),
        (4 << 20).to_string()
    );
    // A fake file keeps only the last write of each kind.
    assert_eq!(get(&devices, "devices.deny"), "a *:* rwm");
    assert_eq!(get(&devices, "devices.allow"), "c 1:3 rw");

    // Unlimited: -1 everywhere, pids "max".
    let r = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
        .cpu(LinuxCpuBuilder::default().quota(-1).build().unwrap())
        .build()
        .unwrap();
    m.set(&r).unwrap();
    assert_eq!(get(&mem, "memory.limit_in_bytes"), "-1");
    assert_eq!(get(&mem, "memory.memsw.limit_in_bytes"), "-1");
    assert_eq!(get(&pids, "pids.max"), "max");
    assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "-1");
}

#[test]
fn v1_memory_write_order() {
    use crate::v1::memsw_first;
    // Raising from 100M to 200M (memsw 400M): memsw first.
    assert!(memsw_first(100, 400));
    // Lowering from 500M to 100M (memsw 200M): limit first.
    assert!(!memsw_first(500, 200));
    // From unlimited down to a limit: limit first.
    assert!(!memsw_first(-1, 200));
    // Lifting swap entirely: memsw first.
    assert!(memsw_first(500, -1));
    assert!(crate::v1::validate_swap(Some(300), 100).is_err());
    assert!(crate::v1::validate_swap(Some(-1), 100).is_err());
    assert!(crate::v1::validate_swap(Some(100), 100).is_ok());
}

#[test]
fn missing_file_errors_only_when_requested() {
    let f = Fake::new(&["memory"], false);
    let mem = f.files(
        "memory",
        "/c",
        &[("memory.limit_in_bytes", "9223372036854771712\n")],
    );
    let m = crate::manager(&f.setup, "/c").unwrap();
    // No swap accounting: limits without swap work, unlimited too.
    let only_limit = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.set(&only_limit).unwrap();
    assert_eq!(get(&mem, "memory.limit_in_bytes"), (1 << 20).to_string());
    let unlimited = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .build()
        .unwrap();
    m.set(&unlimited).unwrap();
    // Asking for swap names the missing file.
    let with_swap = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .swap(2 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = m.set(&with_swap).unwrap_err();
    assert!(
        matches!(&err, CgroupError::MissingFile { path, .. } if path.ends_with("memory.memsw.limit_in_bytes")),
        "{err}"
    );
    // A controller mounted nowhere.
    let pids = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    assert!(matches!(
        m.set(&pids),
        Err(CgroupError::NoController { .. })
    ));
    // unified needs v2.
    let unified = LinuxResourcesBuilder::default()
        .unified(HashMap::from([("memory.high".to_owned(), "1M".to_owned())]))
        .build()
        .unwrap();
    assert!(matches!(
        m.set(&unified),
        Err(CgroupError::Unsupported { .. })
    ));
    // Empty sections need nothing.
    m.set(
        &LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().build().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap();
}

#[test]
fn set_maps_every_v2_value() {
    let f = Fake::new(&[], true);
    let cg = "/c2";
    let d = f.files(
        "unified",
        cg,
        &[
            ("memory.max", ""),
            ("memory.low", ""),
            ("memory.swap.max", ""),
            ("memory.high", ""),
            ("cpu.weight", ""),
            ("cpu.max", "max 100000\n"),
            ("cpu.idle", ""),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
            ("pids.max", ""),
            ("io.weight", ""),
            ("io.max", ""),
            ("hugetlb.1GB.max", ""),
        ],
    );
    let m = crate::manager(&f.setup, cg).unwrap();
    let mut unified = HashMap::new();
    unified.insert("memory.high".to_owned(), "300000".to_owned());
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swap(300 << 20)
                .reservation(-1)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(20_000)
                .period(50_000u64)
                .idle(1)
                .cpus("0-1")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_write_bps_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(253)
                        .minor(0)
                        .rate(4096u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("1GB")
                .limit(-1)
                .build()
                .unwrap(),
        ])
        .unified(unified)
        .build()
        .unwrap();
    m.set(&r).unwrap();
    assert_eq!(get(&d, "memory.max"), (100 << 20).to_string());
    assert_eq!(get(&d, "memory.swap.max"), (200 << 20).to_string());
    assert_eq!(get(&d, "memory.low"), "max");
    assert_eq!(get(&d, "memory.high"), "300000");
    assert_eq!(get(&d, "cpu.weight"), "39");
    assert_eq!(get(&d, "cpu.max"), "20000 50000");
    assert_eq!(get(&d, "cpu.idle"), "1");
    assert_eq!(get(&d, "cpuset.cpus"), "0-1");
    assert_eq!(get(&d, "pids.max"), "max");
    assert_eq!(
        get(&d, "io.weight"),
        format!("default {}", 1 + (490 * 9999) / 990)
    );
    assert_eq!(get(&d, "io.max"), "253:0 wbps=4096");
    assert_eq!(get(&d, "hugetlb.1GB.max"), "max");

    // Only the period: the quota already there is kept.
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .period(80_000u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.set(&r).unwrap();
    assert_eq!(get(&d, "cpu.max"), "20000 80000");

    // Settings v2 cannot express.
    for r in [
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .swappiness(5u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .disable_oom_killer(true)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
        LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .realtime_runtime(1000)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
        LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .leaf_weight(10u16)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    ] {
        assert!(
            matches!(m.set(&r), Err(CgroupError::Unsupported { .. })),
            "{r:?}"
        );
    }
    let bad = LinuxResourcesBuilder::default()
        .unified(HashMap::from([("../escape".to_owned(), "1".to_owned())]))
        .build()
        .unwrap();
    assert!(matches!(
        m.set(&bad),
        Err(CgroupError::InvalidResource { .. })
    ));
}

#[test]
fn freezer_v1_and_v2_on_fake_trees() {
    let f = Fake::new(&["freezer"], false);
    let d = f.files("freezer", "/f", &[("freezer.state", "THAWED\n")]);
    let m = crate::manager(&f.setup, "/f").unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
    m.freeze().unwrap();
    assert_eq!(get(&d, "freezer.state"), "FROZEN");
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    m.thaw().unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);

    let f = Fake::new(&[], true);
    // The fake kernel reports frozen as soon as asked.
    let d = f.files(
        "unified",
        "/f",
        &[
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 1\nfrozen 1\n"),
        ],
    );
    let m = crate::manager(&f.setup, "/f").unwrap();
    m.freeze().unwrap();
    assert_eq!(get(&d, "cgroup.freeze"), "1");
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);
    m.thaw().unwrap();
    assert_eq!(get(&d, "cgroup.freeze"), "0");
}

#[test]
fn pids_include_child_cgroups() {
    let f = Fake::new(&["memory", "freezer"], false);
    f.files("freezer", "/p", &[("cgroup.procs", "30\n12\n")]);
    f.files("freezer", "/p/sub", &[("cgroup.procs", "56\n12\n")]);
    let m = crate::manager(&f.setup, "/p").unwrap();
    assert_eq!(m.pids().unwrap(), vec![12, 30, 56]);
}

#[test]
fn stats_through_the_manager() {
    let f = Fake::new(&["memory", "pids"], true);
    let m = crate::manager(&f.setup, "/s").unwrap();
    assert!(
        matches!(m.stats(), Err(CgroupError::Read { .. })),
        "no such cgroup"
    );
    f.files(
        "memory",
        "/s",
        &[
            ("memory.usage_in_bytes", "4096\n"),
            ("memory.limit_in_bytes", "8192\n"),
        ],
    );
    f.files(
        "pids",
        "/s",
        &[("pids.current", "2\n"), ("pids.max", "max\n")],
    );
    f.files(
        "unified",
        "/s",
        &[
            ("hugetlb.2MB.current", "0\n"),
            ("cpu.stat", "usage_usec 7\n"),
        ],
    );
    let s = m.stats().unwrap();
    assert_eq!(
        s.memory.as_ref().map(|m| (m.usage, m.limit)),
        Some((4096, Some(8192)))
    );
    assert_eq!(
        s.pids.as_ref().map(|p| (p.current, p.limit)),
        Some((2, None))
    );
    assert!(
        s.hugetlb.contains_key("2MB"),
        "hugetlb comes from the v2 mount"
    );
    // cpuacct is not on v1 here, so cpu usage comes from v2 cpu.stat.
    assert_eq!(s.cpu.map(|c| c.total_usage_ns), Some(7000));
    assert_eq!(s.blkio, None);
}

#[test]
fn destroy_is_fine_when_already_gone() {
    let f = Fake::new(&["memory"], true);
    let m = crate::manager(&f.setup, "/gone").unwrap();
    m.destroy().unwrap();
    // Empty directories (what rmdir sees on cgroupfs) go, children first.
    std::fs::create_dir_all(f.dir("memory", "/gone/child")).unwrap();
    std::fs::create_dir_all(f.dir("unified", "/gone")).unwrap();
    m.destroy().unwrap();
    assert!(!f.dir("memory", "/gone").exists());
    assert!(!f.dir("unified", "/gone").exists());
}
