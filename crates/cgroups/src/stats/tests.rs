use std::path::PathBuf;

use super::*;

fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(t.path().join(name), content).unwrap();
    }
    let p = t.path().to_path_buf();
    (t, p)
}

#[test]
fn memory_v1_figures() {
    let (_t, d) = tree(&[
        ("memory.usage_in_bytes", "1048576\n"),
        ("memory.max_usage_in_bytes", "2097152\n"),
        ("memory.limit_in_bytes", "9223372036854771712\n"),
        ("memory.memsw.usage_in_bytes", "1310720\n"),
        ("memory.failcnt", "3\n"),
        (
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        ),
        (
            "memory.stat",
            "cache 4096\nrss 8192\ntotal_cache 40960\ntotal_rss 81920\ninactive_file 100\n",
        ),
    ]);
    let m = memory_v1(&d).unwrap().unwrap();
    assert_eq!(m.usage, 1_048_576);
    assert_eq!(m.max_usage, Some(2_097_152));
    assert_eq!(m.limit, None, "the v1 'unlimited' value");
    assert_eq!(m.swap, Some(262_144));
    assert_eq!(m.failcnt, 3);
    assert_eq!(m.oom_kill, 2);
    assert_eq!(
        (m.cache, m.rss),
        (40960, 81920),
        "hierarchical totals preferred"
    );
    assert_eq!(m.stat["inactive_file"], 100);
    let (_t, empty) = tree(&[]);
    assert_eq!(memory_v1(&empty).unwrap(), None);
}

#[test]
fn memory_v2_figures() {
    let (_t, d) = tree(&[
        ("memory.current", "5000\n"),
        ("memory.peak", "9000\n"),
        ("memory.max", "max\n"),
        ("memory.swap.current", "100\n"),
        ("memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n"),
        ("memory.stat", "anon 1000\nfile 3000\nkernel 20\n"),
    ]);
    let m = memory_v2(&d).unwrap().unwrap();
    assert_eq!(
        (m.usage, m.max_usage, m.limit, m.swap),
        (5000, Some(9000), None, Some(100))
    );
    assert_eq!((m.cache, m.rss, m.failcnt, m.oom_kill), (3000, 1000, 7, 1));
    std::fs::write(d.join("memory.max"), "65536\n").unwrap();
    assert_eq!(memory_v2(&d).unwrap().unwrap().limit, Some(65536));
}

#[test]
fn oom_kill_counts_alone() {
    let (_t, d) = tree(&[
        (
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        ),
        ("memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 5\n"),
    ]);
    assert_eq!(oom_kills(&d, CgroupVersion::V1).unwrap(), 2);
    assert_eq!(oom_kills(&d, CgroupVersion::V2).unwrap(), 5);
    let (_t, empty) = tree(&[]);
    assert_eq!(oom_kills(&empty, CgroupVersion::V1).unwrap(), 0);
}

#[test]
fn cpu_v1_and_v2_figures() {
    let (_ta, acct) = tree(&[
        ("cpuacct.usage", "123456789\n"),
        ("cpuacct.usage_percpu", "100000000 23456789 \n"),
        ("cpuacct.usage_user", "100\n"),
        ("cpuacct.usage_sys", "200\n"),
    ]);
    let (_tc, cpu) = tree(&[(
        "cpu.stat",
        "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
    )]);
    let c = cpu_v1(Some(&acct), Some(&cpu)).unwrap().unwrap();
    assert_eq!(c.total_usage_ns, 123_456_789);
    assert_eq!(c.percpu_usage_ns, vec![100_000_000, 23_456_789]);
    assert_eq!((c.user_ns, c.system_ns), (100, 200));
    assert_eq!(
        c.throttling,
        ThrottlingStats {
            periods: 10,
            throttled_periods: 4,
            throttled_time_ns: 5000
        }
    );

    // Older kernels: ticks in cpuacct.stat.
    let (_to, old) = tree(&[
        ("cpuacct.usage", "1\n"),
        ("cpuacct.stat", "user 3\nsystem 4\n"),
    ]);
    let c = cpu_v1(Some(&old), None).unwrap().unwrap();
    let tick = 1_000_000_000 / rustix::param::clock_ticks_per_second();
    assert_eq!((c.user_ns, c.system_ns), (3 * tick, 4 * tick));
    assert_eq!(cpu_v1(None, None).unwrap(), None);

    let (_t2, v2) = tree(&[(
        "cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 2\nnr_throttled 1\nthrottled_usec 30\n",
    )]);
    let c = cpu_v2(&v2).unwrap().unwrap();
    assert_eq!(
        (c.total_usage_ns, c.user_ns, c.system_ns),
        (1_500_000, 1_000_000, 500_000)
    );
    assert_eq!(c.throttling.throttled_time_ns, 30_000);
    assert!(c.percpu_usage_ns.is_empty());
}

#[test]
fn pids_figures() {
    let (_t, d) = tree(&[("pids.current", "3\n"), ("pids.max", "max\n")]);
    assert_eq!(
        pids(&d).unwrap(),
        Some(PidsStats {
            current: 3,
            limit: None
        })
    );
    std::fs::write(d.join("pids.max"), "10\n").unwrap();
    assert_eq!(pids(&d).unwrap().unwrap().limit, Some(10));
}

#[test]
fn blkio_v1_falls_back_to_throttle() {
    let (_t, d) = tree(&[
        ("blkio.io_service_bytes_recursive", "Total 0\n"),
        ("blkio.io_serviced_recursive", "Total 0\n"),
        (
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
        ),
        (
            "blkio.throttle.io_serviced_recursive",
            "8:0 Read 1\n8:0 Write 2\n",
        ),
    ]);
    let b = blkio_v1(&d).unwrap().unwrap();
    assert_eq!(b.io_service_bytes_recursive.len(), 3);
    assert_eq!(
        b.io_service_bytes_recursive[1],
        BlkioEntry {
            major: 8,
            minor: 0,
            op: "Write".into(),
            value: 8192
        }
    );
    assert_eq!(b.io_serviced_recursive[0].value, 1);
}

#[test]
fn io_stat_v2() {
    let b =
        parse_io_stat("8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n");
    assert_eq!(b.io_service_bytes_recursive.len(), 3);
    assert_eq!(
        b.io_service_bytes_recursive[0],
        BlkioEntry {
            major: 8,
            minor: 16,
            op: "read".into(),
            value: 1_459_200
        }
    );
    assert_eq!(
        b.io_serviced_recursive[1],
        BlkioEntry {
            major: 8,
            minor: 16,
            op: "write".into(),
            value: 353
        }
    );
}

#[test]
fn hugetlb_both_versions() {
    let (_t, d) = tree(&[
        ("hugetlb.2MB.usage_in_bytes", "2097152\n"),
        ("hugetlb.2MB.max_usage_in_bytes", "4194304\n"),
        ("hugetlb.2MB.failcnt", "1\n"),
        ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
    ]);
    let h = hugetlb_v1(&d).unwrap();
    assert_eq!(h.keys().collect::<Vec<_>>(), vec!["2MB"]);
    assert_eq!(
        h["2MB"],
        HugetlbStats {
            usage: 2_097_152,
            max_usage: Some(4_194_304),
            failcnt: 1
        }
    );
    let (_t2, d2) = tree(&[
        ("hugetlb.1GB.current", "0\n"),
        ("hugetlb.1GB.events", "max 2\n"),
        ("hugetlb.1GB.rsvd.current", "0\n"),
    ]);
    let h = hugetlb_v2(&d2).unwrap();
    assert_eq!(
        h["1GB"],
        HugetlbStats {
            usage: 0,
            max_usage: None,
            failcnt: 2
        }
    );
    assert_eq!(h.len(), 1);
}

#[test]
fn serializes_for_the_daemon() {
    let s = Stats {
        pids: Some(PidsStats {
            current: 1,
            limit: None,
        }),
        ..Default::default()
    };
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["pids"]["current"], 1);
    assert!(v["memory"].is_null());
}
