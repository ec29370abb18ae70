use super::*;

/// This development host: v1 everywhere, cpu and cpuacct apart, cgroup2 on
/// /sys/fs/cgroup/unified, the shell in a non-root memory cgroup.
pub(crate) const HYBRID_MOUNTINFO: &str = "\
22 1 253:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

pub(crate) const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/dcd34b2490108235b75ca521bbbfc7f1
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

const V2_MOUNTINFO: &str = "\
24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
const V2_CGROUP: &str = "0::/user.slice/user-1000.slice/session-1.scope\n";

/// A systemd-era pure v1 host: co-mounted cpu,cpuacct and net_cls,net_prio,
/// a named systemd hierarchy with extra options, no cgroup2.
const V1_MOUNTINFO: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
27 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
33 25 0:29 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,blkio
34 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
";
const V1_CGROUP: &str = "\
12:pids:/user.slice/user-1000.slice/session-2.scope
5:cpu,cpuacct:/user.slice
4:memory:/user.slice/user-1000.slice/session-2.scope
3:net_cls,net_prio:/
2:blkio:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
";

fn loc(version: CgroupVersion, mountpoint: &str) -> Option<ControllerLocation> {
    Some(ControllerLocation {
        version,
        mountpoint: PathBuf::from(mountpoint),
    })
}

#[test]
fn hybrid_layout_routes_hugetlb_to_unified() {
    let s = CgroupSetup::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
    assert!(!s.is_pure_v2());
    assert_eq!(s.v1_hierarchies().len(), 9);
    assert_eq!(
        s.locate(Controller::Memory),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/memory")
    );
    assert_eq!(
        s.locate(Controller::Cpu),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/cpu")
    );
    assert_eq!(
        s.locate(Controller::Cpuacct),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/cpuacct")
    );
    assert_eq!(
        s.locate(Controller::Devices),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/devices")
    );
    assert_eq!(
        s.locate(Controller::Freezer),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/freezer")
    );
    assert_eq!(
        s.locate(Controller::Hugetlb),
        loc(CgroupVersion::V2, "/sys/fs/cgroup/unified")
    );
    assert_eq!(s.locate(Controller::NetCls), None);
    let mem = s.v1_for(Controller::Memory).unwrap();
    assert_eq!(
        mem.own_path,
        PathBuf::from("/process_api/dcd34b2490108235b75ca521bbbfc7f1")
    );
    let systemd = s
        .v1_hierarchies()
        .iter()
        .find(|h| h.name.is_some())
        .unwrap();
    assert_eq!(systemd.name.as_deref(), Some("systemd"));
    assert!(systemd.controllers.is_empty());
    let v2 = s.v2().unwrap();
    assert_eq!(v2.own_path, PathBuf::from("/"));
    // Controllers bound to v1 are not assumed on the unified mount.
    assert!(v2.controllers.contains("hugetlb"));
    assert!(!v2.controllers.contains("memory"));
    assert!(
        !v2.controllers.contains("io"),
        "blkio is on v1, so io is not on v2"
    );
}

#[test]
fn hybrid_with_detected_controllers() {
    let s = CgroupSetup::from_parts(HYBRID_MOUNTINFO, HYBRID_CGROUP)
        .unwrap()
        .with_v2_controllers(["misc"]);
    assert_eq!(s.locate(Controller::Hugetlb), None);
    // Core v2 features do not depend on the controller list.
    assert_eq!(
        s.locate(Controller::Memory),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/memory")
    );
}

#[test]
fn pure_v2_layout() {
    let s = CgroupSetup::from_parts(V2_MOUNTINFO, V2_CGROUP).unwrap();
    assert!(s.is_pure_v2());
    assert!(s.v1_hierarchies().is_empty());
    for c in [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Blkio,
        Controller::Devices,
        Controller::Freezer,
    ] {
        assert_eq!(
            s.locate(c),
            loc(CgroupVersion::V2, "/sys/fs/cgroup"),
            "{c:?}"
        );
    }
    assert_eq!(s.locate(Controller::NetPrio), None);
    assert_eq!(
        s.v2().unwrap().own_path,
        PathBuf::from("/user.slice/user-1000.slice/session-1.scope")
    );
    let s = s.with_v2_controllers(["cpu", "pids"]);
    assert_eq!(s.locate(Controller::Memory), None);
    assert_eq!(
        s.locate(Controller::Pids),
        loc(CgroupVersion::V2, "/sys/fs/cgroup")
    );
    assert_eq!(
        s.locate(Controller::Devices),
        loc(CgroupVersion::V2, "/sys/fs/cgroup")
    );
}

#[test]
fn pure_v1_layout_with_comounts() {
    let s = CgroupSetup::from_parts(V1_MOUNTINFO, V1_CGROUP).unwrap();
    assert!(s.v2().is_none());
    assert_eq!(
        s.locate(Controller::Cpu),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/cpu,cpuacct")
    );
    assert_eq!(
        s.locate(Controller::Cpuacct),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/cpu,cpuacct")
    );
    assert_eq!(
        s.locate(Controller::NetPrio),
        loc(CgroupVersion::V1, "/sys/fs/cgroup/net_cls,net_prio")
    );
    assert_eq!(s.locate(Controller::Hugetlb), None);
    assert_eq!(s.locate(Controller::Devices), None);
    assert_eq!(
        s.v1_for(Controller::Cpu).unwrap().own_path,
        PathBuf::from("/user.slice")
    );
    let systemd = s
        .v1_hierarchies()
        .iter()
        .find(|h| h.name.as_deref() == Some("systemd"))
        .unwrap();
    assert_eq!(
        systemd.own_path,
        PathBuf::from("/user.slice/user-1000.slice/session-2.scope")
    );
}

#[test]
fn mount_root_is_stripped_and_escapes_decoded() {
    // A container's view: the hierarchy is bind-mounted from /docker/abc.
    let mi = "40 31 0:32 /docker/abc /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory\n";
    let s = CgroupSetup::from_parts(mi, "4:memory:/docker/abc/sub\n").unwrap();
    let h = s.v1_for(Controller::Memory).unwrap();
    assert_eq!(h.mountpoint, PathBuf::from("/sys/fs/cgroup/my memory"));
    assert_eq!(h.own_path, PathBuf::from("/sub"));
    // Our cgroup outside the mount's root: treated as the mount's top.
    let s = CgroupSetup::from_parts(mi, "4:memory:/elsewhere\n").unwrap();
    assert_eq!(
        s.v1_for(Controller::Memory).unwrap().own_path,
        PathBuf::from("/")
    );
}

#[test]
fn prefers_the_mount_covering_our_cgroup() {
    let mi = "\
50 31 0:32 /other /mnt/other rw - cgroup cgroup rw,memory
51 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
    let s = CgroupSetup::from_parts(mi, "4:memory:/a/b\n").unwrap();
    let h = s.v1_for(Controller::Memory).unwrap();
    assert_eq!(h.mountpoint, PathBuf::from("/sys/fs/cgroup/memory"));
    assert_eq!(h.own_path, PathBuf::from("/a/b"));
}

#[test]
fn malformed_input_is_an_error() {
    assert!(matches!(
        CgroupSetup::from_parts("garbage without separator\n", HYBRID_CGROUP),
        Err(CgroupError::Mountinfo { .. })
    ));
    assert!(matches!(
        CgroupSetup::from_parts(HYBRID_MOUNTINFO, "not a cgroup line\n"),
        Err(CgroupError::ProcCgroup { .. })
    ));
    assert!(matches!(
        CgroupSetup::from_parts("22 1 253:0 / / rw - ext4 /dev/vda rw\n", "0::/\n"),
        Err(CgroupError::NoHierarchy)
    ));
}

#[test]
fn detect_on_this_host_finds_something() {
    let s = CgroupSetup::detect().unwrap();
    assert!(!s.v1_hierarchies().is_empty() || s.v2().is_some());
}

/// A probe answering from a mount table: the filesystem of the deepest
/// mount containing the path; every path under a cgroup mount exists
/// unless listed in `missing`.
fn probe_from(
    mountinfo: &'static str,
    missing: &'static [&'static str],
) -> impl Fn(&Path) -> Probe {
    move |p: &Path| {
        if missing.iter().any(|m| Path::new(m) == p) {
            return Probe::Other;
        }
        let mounts = parse_mountinfo(mountinfo).unwrap();
        match mounts
            .iter()
            .filter(|m| p.starts_with(&m.mountpoint))
            .max_by_key(|m| m.mountpoint.as_os_str().len())
            .map(|m| m.fstype.as_str())
        {
            Some("cgroup") => Probe::Cgroup1,
            Some("cgroup2") => Probe::Cgroup2,
            _ => Probe::Other,
        }
    }
}

#[test]
fn conventional_mounts_give_what_the_mount_table_gives() {
    for (mountinfo, cgroup) in [
        (HYBRID_MOUNTINFO, HYBRID_CGROUP),
        (V1_MOUNTINFO, V1_CGROUP),
        (V2_MOUNTINFO, V2_CGROUP),
    ] {
        let fast = CgroupSetup::from_conventional_mounts(cgroup, &probe_from(mountinfo, &[]));
        assert_eq!(
            fast.as_ref(),
            Some(&CgroupSetup::from_parts(mountinfo, cgroup).unwrap()),
            "{cgroup}"
        );
    }
}

#[test]
fn anything_unconventional_falls_back_to_the_mount_table() {
    // Our own cgroup's directory is not under the mount (a subtree bind
    // mount, as in a container without a cgroup namespace).
    assert_eq!(
        CgroupSetup::from_conventional_mounts(
            HYBRID_CGROUP,
            &probe_from(
                HYBRID_MOUNTINFO,
                &["/sys/fs/cgroup/memory/process_api/dcd34b2490108235b75ca521bbbfc7f1"]
            )
        ),
        None
    );
    // A hierarchy mounted somewhere else.
    const ELSEWHERE: &str = "\
31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
32 31 0:29 / /cgroups/cpu rw - cgroup cgroup rw,cpu
";
    assert_eq!(
        CgroupSetup::from_conventional_mounts("1:cpu:/\n", &probe_from(ELSEWHERE, &[])),
        None
    );
    // A v2 line without a cgroup2 mount at either usual place.
    assert_eq!(
        CgroupSetup::from_conventional_mounts("0::/\n", &probe_from(ELSEWHERE, &[])),
        None
    );
    // Odd names and unreadable text.
    for text in ["2:name=a,cpu:/\n", "3:name=unified:/\n", "garbage\n", ""] {
        assert_eq!(
            CgroupSetup::from_conventional_mounts(text, &probe_from(V1_MOUNTINFO, &[])),
            None,
            "{text}"
        );
    }
}

#[test]
fn detect_on_this_host_agrees_with_the_mount_table() {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let full = CgroupSetup::from_parts(&mountinfo, &cgroup).unwrap();
    if let Some(fast) = CgroupSetup::from_conventional_mounts(&cgroup, &probe_host) {
        assert_eq!(fast, full);
    }
}
