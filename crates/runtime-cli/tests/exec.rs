//! `wharf-runtime exec` into a running container: the new process shares
//! the init's namespaces and cgroup, takes its settings from `--process`
//! JSON or from flags, propagates its exit code, and detaches with a pid
//! file.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::{
    assert_fails_with, assert_success, bundle, create_and_start, exec_probe, ns_inode,
    read_cgroup_file, runtime, scratch_dir, state_pid,
};
use serde_json::json;
use wharf_testkit::{Bundle, Cleanup, Runtime, describe, probe_json, require_root};

/// A running container whose init sleeps.
fn sleeper(rt: &Runtime, prefix: &str) -> Bundle {
    let mut b = bundle(prefix);
    b.probe_args(&["sleep", "30"]);
    create_and_start(rt, &b);
    b
}

#[test]
fn exec_shares_the_init_namespaces_and_cgroup() {
    require_root();
    let rt = runtime();
    let b = sleeper(&rt, "exns");
    let init = state_pid(&rt, b.id()).to_string();
    let report = exec_probe(&rt, b.id(), &[]);
    for kind in ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"] {
        assert_eq!(
            report["namespaces"][kind].as_u64(),
            Some(ns_inode(&init, kind)),
            "{kind} namespace differs from the init's"
        );
    }
    assert_ne!(report["pid"], 1, "exec'd process is not the init");
    assert_eq!(report["hostname"], "wharf");
    // Same cgroup: namespaced paths are "/" like the init's.
    for line in report["cgroup"]["lines"].as_array().unwrap() {
        assert_eq!(line["path"], "/", "{line}");
    }
    // The container's process settings apply to exec too.
    assert_eq!(report["no_new_privs"], true);
    assert_eq!(report["seccomp"], 2);
    let init_caps = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let cap_eff = init_caps
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap());
    assert_eq!(
        report["caps"]["effective"].as_u64(),
        cap_eff,
        "effective caps"
    );
    assert_eq!(report["groups"], json!([]));
}

#[test]
fn exec_with_flags_sets_user_cwd_and_env() {
    require_root();
    let rt = runtime();
    let b = sleeper(&rt, "exflags");
    let out = rt
        .output([
            "exec",
            "--cwd",
            "/home/wharf",
            "-e",
            "WHARF_EXEC=yes",
            "-u",
            "1000:1000",
            "--additional-gids",
            "1001",
            b.id(),
            "/probe",
        ])
        .unwrap();
    assert_success(&out, "exec with flags");
    let report = probe_json(&out);
    assert_eq!(report["cwd"], "/home/wharf");
    assert_eq!(report["env"]["WHARF_EXEC"], "yes");
    assert_eq!(
        report["env"]["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(report["uid"], 1000);
    assert_eq!(report["gid"], 1000);
    assert_eq!(report["groups"], json!([1001]));
}

#[test]
fn exec_with_process_json() {
    require_root();
    let rt = runtime();
    let b = sleeper(&rt, "exjson");
    let mut guard = Cleanup::new();
    let file = scratch_dir(&mut guard, "exjson").join("process.json");
    let process = json!({
        "terminal": false,
        "user": {"uid": 65534, "gid": 65534},
        "args": ["/probe"],
        "env": ["PATH=/bin", "FROM_JSON=1"],
        "cwd": "/tmp",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                         "permitted": ["CAP_KILL"]},
        "noNewPrivileges": true,
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    });
    std::fs::write(&file, process.to_string()).unwrap();
    let out = rt
        .output(["exec", "--process", &file.to_string_lossy(), b.id()])
        .unwrap();
    assert_success(&out, "exec --process");
    let report = probe_json(&out);
    assert_eq!(report["uid"], 65534);
    assert_eq!(report["cwd"], "/tmp");
    assert_eq!(report["env"]["FROM_JSON"], "1");
    assert_eq!(report["env"]["PATH"], "/bin");
    assert_eq!(report["caps"]["bounding_names"], json!(["CAP_KILL"]));
    assert_eq!(
        report["rlimits"]["RLIMIT_NOFILE"],
        json!({"soft": 100, "hard": 200})
    );
}

#[test]
fn exec_exit_code_is_propagated() {
    require_root();
    let rt = runtime();
    let b = sleeper(&rt, "excode");
    let out = rt.output(["exec", b.id(), "/probe", "exit", "5"]).unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    let out = rt.output(["exec", b.id(), "/probe", "exit", "0"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // A missing executable is an error of exec itself.
    let out = rt.output(["exec", b.id(), "/no-such-binary"]).unwrap();
    assert_fails_with(&out, "/no-such-binary", "exec of a missing binary");
    // The container is unaffected.
    assert_eq!(rt.state(b.id()).unwrap()["status"], "running");
}

#[test]
fn exec_detach_writes_the_pid_file() {
    require_root();
    let rt = runtime();
    let b = sleeper(&rt, "exdetach");
    let init = state_pid(&rt, b.id()).to_string();
    let mut guard = Cleanup::new();
    let pid_file = scratch_dir(&mut guard, "exdetach").join("exec.pid");
    let started = Instant::now();
    let out = rt
        .output([
            "exec",
            "--detach",
            "--pid-file",
            &pid_file.to_string_lossy(),
            b.id(),
            "/probe",
            "sleep",
            "30",
        ])
        .unwrap();
    assert_success(&out, "exec --detach");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exec --detach waited"
    );
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .expect("pid file holds a number");
    guard.pid(u32::try_from(pid).unwrap());
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, "/probe\0sleep\x0030\0",
        "pid file names the exec'd process"
    );
    assert_eq!(ns_inode(&pid.to_string(), "pid"), ns_inode(&init, "pid"));
    assert_eq!(ns_inode(&pid.to_string(), "mnt"), ns_inode(&init, "mnt"));
    let procs = read_cgroup_file(&b, "memory", "cgroup.procs");
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "{pid} not in {procs}"
    );
    // delete --force takes the exec'd process down with the container.
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete --force");
    let gone = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'))
    });
    assert!(gone, "exec'd process survived delete --force");
}

#[test]
fn exec_into_a_created_container_works_and_a_stopped_one_fails() {
    require_root();
    let rt = runtime();
    let mut b = bundle("exstop");
    b.probe_args(&["sleep", "30"]);
    assert_success(&rt.create(&b, b.id()).unwrap(), "create");
    // As with runc, a created container accepts exec (its init is waiting).
    let out = rt.output(["exec", b.id(), "/probe", "exit", "3"]).unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "exec into a created container\n{}",
        describe(&out)
    );
    assert_eq!(rt.state(b.id()).unwrap()["status"], "created");
    assert_success(&rt.start(b.id()).unwrap(), "start");
    assert_success(&rt.kill(b.id(), "KILL").unwrap(), "kill");
    rt.wait_stopped(b.id(), Duration::from_secs(5)).unwrap();
    let out = rt.output(["exec", b.id(), "/probe", "exit", "0"]).unwrap();
    assert_fails_with(&out, "stopped container", "exec into a stopped container");
}
