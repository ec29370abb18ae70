//! Control requests on a running container: pause/resume, stats, update,
//! concurrent waits, shutdown, and log rotation through the shim.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)] // each test file uses part of the fixture
mod common;

use std::time::Duration;

use common::{Fixture, MIB, alive, eventually};
use wharf_shim_api::{ErrorKind, Status, layout};
use wharf_testkit::Cleanup;

fn memory_file(f: &Fixture, file: &str) -> String {
    let p = format!("/sys/fs/cgroup/memory{}/{file}", f.bundle.cgroups_path());
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[tokio::test]
async fn pause_resume_stats_update() {
    let mut f = Fixture::new("shctl");
    f.bundle.probe_args(&["sleep", "60"]);
    let shim = f.spawn().await;
    let c = shim.client();
    assert_eq!(c.pause().await.unwrap_err().kind(), ErrorKind::Conflict);
    c.start().await.unwrap();
    c.pause().await.unwrap();
    assert_eq!(c.state().await.unwrap().status, Status::Paused);
    let freezer = format!(
        "/sys/fs/cgroup/freezer{}/freezer.state",
        f.bundle.cgroups_path()
    );
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    c.resume().await.unwrap();
    assert_eq!(c.state().await.unwrap().status, Status::Running);
    let stats = c.stats().await.unwrap();
    assert!(stats["memory"]["usage"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["pids"]["current"].as_u64().unwrap() >= 1, "{stats}");
    let mut res = oci_spec::runtime::LinuxResources::default();
    let mut mem = oci_spec::runtime::LinuxMemory::default();
    mem.set_limit(Some(i64::try_from(48 * MIB).unwrap()));
    res.set_memory(Some(mem));
    c.update(res).await.unwrap();
    assert_eq!(
        memory_file(&f, "memory.limit_in_bytes").trim(),
        (48 * MIB).to_string()
    );
    c.kill(libc::SIGKILL, false).await.unwrap();
    c.wait().await.unwrap();
    c.delete(false).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || !alive(shim.pid())));
    Cleanup::check_no_leaks(f.bundle.id());
}

#[tokio::test]
async fn every_waiter_gets_the_exit_and_shutdown_keeps_the_container() {
    let mut f = Fixture::new("shwait");
    f.bundle.args(&["/bin/sh", "-c", "sleep 0.3; exit 9"]);
    let shim = f.spawn().await;
    let c = shim.client();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.wait().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.start().await.unwrap();
    for w in waiters {
        assert_eq!(w.await.unwrap().unwrap().exit_code, 9);
    }
    // Shutdown: the shim goes, the runtime's record of the container stays.
    c.shutdown().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || !alive(shim.pid())));
    assert!(f.runtime_state().exists());
    assert_eq!(
        layout::read_exit(&f.cfg.state_dir)
            .unwrap()
            .unwrap()
            .exit_code,
        9
    );
}

#[tokio::test]
async fn the_log_rotates_through_the_shim() {
    let mut f = Fixture::new("shrot");
    // 300 lines of ~100 bytes of JSON each; 4 KiB files, 3 kept.
    f.bundle.args(&[
        "/bin/sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    f.cfg.log_max_size = Some(4096);
    f.cfg.log_max_files = Some(3);
    let shim = f.spawn().await;
    shim.client().start().await.unwrap();
    assert_eq!(shim.client().wait().await.unwrap().exit_code, 0);
    let log = &f.cfg.log_path;
    let rotated = |i: u32| {
        let mut p = log.as_os_str().to_owned();
        p.push(format!(".{i}"));
        std::path::PathBuf::from(p)
    };
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists());
    for p in [log.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len < 4096 + 200, "{} is {len} bytes", p.display());
    }
    // What is kept is the tail of the output, in order, without gaps.
    let kept: Vec<String> = f
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().trim_end().to_owned())
        .collect();
    assert_eq!(kept.last().map(String::as_str), Some("line-299"));
    let first: usize = kept[0].strip_prefix("line-").unwrap().parse().unwrap();
    let expected: Vec<String> = (first..300).map(|i| format!("line-{i}")).collect();
    assert_eq!(kept, expected);
    shim.client().delete(false).await.unwrap();
}
