//! Resource limits of a container run by `wharf-runtime` on this host's v1
//! hierarchies: the memory limit is enforced (OOM kill, seen in the exit
//! code and in the cgroup's counters), the pids limit stops forks with
//! EAGAIN, the CPU quota and shares are written, and `update` changes
//! limits of a running container.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{
    assert_success, bundle, cgroup_dir, create_and_start, edit_spec, exec_probe, linux,
    read_cgroup_file, run_output, run_probe, runtime,
};
use serde_json::{Value, json};
use wharf_testkit::{Bundle, describe, probe_json, probe_lines, require_root, test_tmp, unique_id};

const MIB: u64 = 1 << 20;

fn set_resources(b: &mut Bundle, resources: Value) {
    edit_spec(b, |s| {
        let linux = linux(s);
        let current = linux
            .entry("resources")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap();
        for (k, v) in resources.as_object().unwrap() {
            current.insert(k.clone(), v.clone());
        }
    });
}

/// A value of a `key value` line of a v1 stat-like file.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

#[test]
fn memory_limit_oom_kills_through_run() {
    require_root();
    let rt = runtime();
    let mut b = bundle("cgoomrun");
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}),
    );
    b.probe_args(&["alloc", "256"]);
    let out = run_output(&rt, &b);
    assert_eq!(out.status.code(), Some(128 + 9), "{}", describe(&out));
    let lines = probe_lines(&out);
    let last = lines.last().expect("the probe allocated something first");
    let reached = last["allocated_mb"].as_u64().unwrap();
    assert!(reached < 40, "allocated {reached} MiB under a 32 MiB limit");
    assert!(last.get("ok").is_none(), "the allocation completed: {last}");
}

#[test]
fn memory_oom_is_counted_in_the_cgroup() {
    require_root();
    let rt = runtime();
    let mut b = bundle("cgoom");
    set_resources(
        &mut b,
        json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}),
    );
    b.probe_args(&["alloc", "256"]);
    create_and_start(&rt, &b);
    rt.wait_stopped(b.id(), Duration::from_secs(10)).unwrap();
    assert_eq!(
        read_cgroup_file(&b, "memory", "memory.limit_in_bytes"),
        (32 * MIB).to_string()
    );
    let oom_control = read_cgroup_file(&b, "memory", "memory.oom_control");
    let kills = field(&oom_control, "oom_kill");
    let failcnt: u64 = read_cgroup_file(&b, "memory", "memory.failcnt")
        .parse()
        .unwrap();
    assert!(
        kills.is_some_and(|k| k >= 1) || failcnt > 0,
        "no OOM recorded: oom_control {oom_control:?}, failcnt {failcnt}"
    );
    let (stdout, _) = rt.container_output(b.id()).unwrap();
    let text = String::from_utf8_lossy(&stdout);
    assert!(
        !text.contains("\"ok\":true"),
        "allocation completed: {text}"
    );
    assert_success(&rt.delete(b.id()).unwrap(), "delete");
    assert!(!cgroup_dir(&b, "memory").exists(), "memory cgroup left");
}

#[test]
fn pids_limit_stops_forks_with_eagain() {
    require_root();
    let rt = runtime();
    let mut b = bundle("cgpids");
    set_resources(&mut b, json!({"pids": {"limit": 10}}));
    b.probe_args(&["fork", "30"]);
    let out = run_output(&rt, &b);
    assert!(out.status.success(), "{}", describe(&out));
    let report = probe_json(&out);
    let spawned = report["spawned"].as_u64().unwrap();
    // The probe itself counts against the limit.
    assert!(spawned < 10, "{report}");
    assert!(spawned >= 5, "the limit is far lower than asked: {report}");
    assert_eq!(report["errno"], 11, "EAGAIN expected: {report}");
}

#[test]
fn cpu_quota_shares_and_memory_values_are_written() {
    require_root();
    let rt = runtime();
    let mut b = bundle("cgcpu");
    set_resources(
        &mut b,
        json!({
            "cpu": {"quota": 50000, "period": 100000, "shares": 512},
            "memory": {"limit": 64 * MIB, "reservation": 32 * MIB},
            "pids": {"limit": 50},
        }),
    );
    b.probe_args(&["sleep", "30"]);
    create_and_start(&rt, &b);
    assert_eq!(read_cgroup_file(&b, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read_cgroup_file(&b, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read_cgroup_file(&b, "cpu", "cpu.shares"), "512");
    assert_eq!(
        read_cgroup_file(&b, "memory", "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert_eq!(
        read_cgroup_file(&b, "memory", "memory.soft_limit_in_bytes"),
        (32 * MIB).to_string()
    );
    assert_eq!(read_cgroup_file(&b, "pids", "pids.max"), "50");

    // Inside, the container sees its own cgroup (namespaced) and limits.
    let report = exec_probe(&rt, b.id(), &[]);
    let limits = &report["cgroup"]["limits"];
    assert_eq!(limits["cpu.cfs_quota_us"], "50000", "{limits}");
    assert_eq!(limits["memory.limit_in_bytes"], (64 * MIB).to_string());
    assert_eq!(limits["pids.max"], "50");
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete");
}

#[test]
fn update_changes_limits_of_a_running_container() {
    require_root();
    let rt = runtime();
    let mut b = bundle("cgupd");
    set_resources(
        &mut b,
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}}),
    );
    b.probe_args(&["sleep", "30"]);
    create_and_start(&rt, &b);
    let file = test_tmp().join(format!("{}.json", unique_id("res")));
    std::fs::write(
        &file,
        json!({"memory": {"limit": 96 * MIB}, "pids": {"limit": 20}, "cpu": {"quota": 20000, "period": 100000}})
            .to_string(),
    )
    .unwrap();
    let out = rt
        .output(["update", "--resources", &file.to_string_lossy(), b.id()])
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert_success(&out, "update");
    assert_eq!(
        read_cgroup_file(&b, "memory", "memory.limit_in_bytes"),
        (96 * MIB).to_string()
    );
    assert_eq!(read_cgroup_file(&b, "pids", "pids.max"), "20");
    assert_eq!(read_cgroup_file(&b, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete");
}

#[test]
fn container_is_placed_in_its_cgroup_in_every_hierarchy() {
    require_root();
    let rt = runtime();
    let mut b = bundle("cgplace");
    b.probe_args(&["sleep", "30"]);
    create_and_start(&rt, &b);
    let pid = common::state_pid(&rt, b.id());
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for controller in [
        "memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio",
    ] {
        let line = text
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} line in {text}"));
        assert!(
            line.ends_with(&b.cgroups_path()),
            "{controller}: {line} not in {}",
            b.cgroups_path()
        );
    }
    // run_probe variant: inside a cgroup namespace every path reads "/".
    let report = run_probe(&rt, &bundle("cgplacens"));
    for line in report["cgroup"]["lines"].as_array().unwrap() {
        assert_eq!(line["path"], "/", "{line}");
    }
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete");
}
