//! Container lifecycle through the `wharf-runtime` command line: the states
//! `create`/`start`/`kill`/`delete` move through, errors for commands given
//! in the wrong state, `run`'s exit code, `list`/`ps` JSON and pause/resume.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    assert_fails_with, assert_success, bin, bundle, cgroup_dir, create_and_start, read_cgroup_file,
    run_output, runtime, state_pid,
};
use wharf_testkit::{Cleanup, describe, require_root};

fn process_exists(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The one-letter state of a process from `/proc/<pid>/stat`.
fn process_state(pid: i64) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 1..];
    after
        .split_whitespace()
        .next()
        .expect("stat has a state")
        .to_owned()
}

#[test]
fn create_start_kill_delete_walk_through_the_states() {
    require_root();
    let rt = runtime();
    let mut b = bundle("life");
    b.probe_args(&["sleep", "30"]);
    let id = b.id().to_owned();

    let out = rt.create(&b, &id).unwrap();
    assert_success(&out, "create");
    let state = rt.state(&id).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(
        state["ociVersion"].as_str().map(|v| v.starts_with("1.")),
        Some(true)
    );
    assert_eq!(
        Path::new(state["bundle"].as_str().unwrap()),
        b.path(),
        "{state}"
    );
    let pid = state_pid(&rt, &id);
    assert!(process_exists(pid), "init pid {pid} of a created container");
    // The created init is already in the container's cgroup.
    let procs = read_cgroup_file(&b, "memory", "cgroup.procs");
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "pid {pid} not in the cgroup: {procs}"
    );

    assert_success(&rt.start(&id).unwrap(), "start");
    let state = rt.state(&id).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"].as_i64(), Some(pid), "start keeps the init pid");

    assert_success(&rt.kill(&id, "KILL").unwrap(), "kill");
    let state = rt.wait_stopped(&id, Duration::from_secs(5)).unwrap();
    assert_eq!(state["status"], "stopped");

    assert_success(&rt.delete(&id).unwrap(), "delete");
    let out = rt.output(["state", &id]).unwrap();
    assert_fails_with(&out, &id, "state after delete");
    assert!(!rt.root().join(&id).exists(), "state dir left behind");
    assert!(
        !cgroup_dir(&b, "memory").exists(),
        "cgroup left behind after delete"
    );
    assert!(!process_exists(pid) || process_state(pid) == "Z");
}

#[test]
fn commands_in_the_wrong_state_fail_with_a_clear_error() {
    require_root();
    let rt = runtime();
    let mut b = bundle("wrong");
    b.probe_args(&["sleep", "30"]);
    let id = b.id().to_owned();

    assert_success(&rt.create(&b, &id).unwrap(), "create");
    let out = rt.output(["pause", &id]).unwrap();
    assert_fails_with(&out, "not running", "pause of a created container");

    assert_success(&rt.start(&id).unwrap(), "start");
    let out = rt.start(&id).unwrap();
    assert_fails_with(&out, "already running", "second start");
    let out = rt.delete(&id).unwrap();
    assert_fails_with(&out, "not stopped", "delete of a running container");

    assert_success(&rt.output(["pause", &id]).unwrap(), "pause");
    let out = rt.output(["exec", &id, "/probe", "exit", "0"]).unwrap();
    assert_fails_with(&out, "paused", "exec into a paused container");
    assert_success(&rt.output(["resume", &id]).unwrap(), "resume");

    assert_success(&rt.kill(&id, "KILL").unwrap(), "kill");
    rt.wait_stopped(&id, Duration::from_secs(5)).unwrap();
    let out = rt.kill(&id, "KILL").unwrap();
    assert_fails_with(&out, "not running", "kill of a stopped container");
    let out = rt.start(&id).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "start of a stopped container\n{}",
        describe(&out)
    );

    let out = rt.output(["state", "no-such-container"]).unwrap();
    assert_fails_with(&out, "no-such-container", "state of an unknown container");
    assert_success(&rt.delete(&id).unwrap(), "delete");
}

#[test]
fn run_exits_with_the_container_exit_code() {
    require_root();
    let rt = runtime();
    let mut b = bundle("exit7");
    b.probe_args(&["exit", "7"]);
    let out = run_output(&rt, &b);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    // run deletes the container afterwards.
    let out = rt.output(["state", b.id()]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        !cgroup_dir(&b, "pids").exists(),
        "cgroup left behind by run"
    );
}

#[test]
fn run_of_a_killed_container_exits_with_128_plus_signal() {
    require_root();
    let rt = runtime();
    let mut b = bundle("killed");
    b.probe_args(&["sleep", "30"]);
    let id = b.id().to_owned();
    let out = std::thread::scope(|s| {
        let runner = s.spawn(|| run_output(&rt, &b));
        // Wait until the container runs, then kill it from outside.
        let mut killed = false;
        for _ in 0..200 {
            if let Ok(state) = rt.state(&id)
                && state["status"] == "running"
            {
                assert_success(&rt.kill(&id, "KILL").unwrap(), "kill");
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(killed, "container never reached running");
        runner.join().expect("run thread")
    });
    assert_eq!(out.status.code(), Some(128 + 9), "{}", describe(&out));
}

#[test]
fn list_and_ps_report_json() {
    require_root();
    let rt = runtime();
    let mut b = bundle("list");
    b.probe_args(&["sleep", "30"]);
    let id = b.id().to_owned();
    create_and_start(&rt, &b);
    let pid = state_pid(&rt, &id);

    let out = rt.output(["list", "--format", "json"]).unwrap();
    assert_success(&out, "list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().expect("list is an array");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "running");
    assert_eq!(list[0]["pid"].as_i64(), Some(pid));

    let out = rt.output(["list", "-q"]).unwrap();
    assert_success(&out, "list -q");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);

    // Start a second process with exec so ps has two pids.
    let out = rt
        .output(["exec", "--detach", &id, "/probe", "sleep", "30"])
        .unwrap();
    assert_success(&out, "exec --detach");
    let out = rt.output(["ps", "--format", "json", &id]).unwrap();
    assert_success(&out, "ps");
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid), "{pids:?} lacks init {pid}");

    assert_success(&rt.delete_force(&id).unwrap(), "delete --force");
    let out = rt.output(["list", "--format", "json"]).unwrap();
    assert_success(&out, "list");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    for p in pids {
        assert!(
            !process_exists(p) || process_state(p) == "Z",
            "pid {p} survived delete --force"
        );
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    require_root();
    let rt = runtime();
    let mut b = bundle("pause");
    b.probe_args(&["sleep", "30"]);
    let id = b.id().to_owned();
    create_and_start(&rt, &b);
    let pid = state_pid(&rt, &id);

    assert_success(&rt.output(["pause", &id]).unwrap(), "pause");
    assert_eq!(rt.state(&id).unwrap()["status"], "paused");
    assert_eq!(read_cgroup_file(&b, "freezer", "freezer.state"), "FROZEN");
    // A task frozen by the v1 freezer sleeps uninterruptibly.
    assert_eq!(process_state(pid), "D", "frozen init state");
    let list = rt.output(["list", "--format", "json"]).unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["status"], "paused");

    assert_success(&rt.output(["resume", &id]).unwrap(), "resume");
    assert_eq!(rt.state(&id).unwrap()["status"], "running");
    assert_eq!(read_cgroup_file(&b, "freezer", "freezer.state"), "THAWED");
    assert_eq!(process_state(pid), "S", "thawed init state");
    let out = rt.output(["resume", &id]).unwrap();
    assert_fails_with(&out, "not paused", "resume of a running container");

    // A paused container can still be force-deleted.
    assert_success(&rt.output(["pause", &id]).unwrap(), "pause again");
    assert_success(&rt.delete_force(&id).unwrap(), "delete --force paused");
    assert!(!cgroup_dir(&b, "freezer").exists(), "freezer cgroup left");
}

#[test]
fn delete_force_missing_container_succeeds_and_cleanup_is_complete() {
    require_root();
    let rt = runtime();
    let out = rt.output(["delete", "--force", "never-created"]).unwrap();
    assert_success(&out, "delete --force of an unknown container");
    let out = rt.delete("never-created").unwrap();
    assert_fails_with(&out, "never-created", "delete of an unknown container");

    let mut b = bundle("leak");
    b.probe_args(&["exit", "0"]);
    let mut guard = Cleanup::new();
    guard.container(bin(), rt.root(), b.id());
    let out = run_output(&rt, &b);
    assert_success(&out, "run");
    Cleanup::check_no_leaks(&b.path().to_string_lossy());
    assert!(guard.run().is_ok());
}

/// Polls `read` until it returns text containing `needle` (at most 10 s).
fn wait_for_text(what: &str, needle: &str, read: impl Fn() -> String) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = read();
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: no {needle:?} within 10 s in {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_delivers_signals_to_the_init() {
    require_root();
    let rt = runtime();
    let mut b = bundle("sig");
    b.probe_args(&["signals"]);
    let id = b.id().to_owned();
    create_and_start(&rt, &b);
    let stdout = || String::from_utf8_lossy(&rt.container_output(&id).unwrap().0).into_owned();
    wait_for_text("probe signals", "\"ready\":true", stdout);
    assert_success(&rt.kill(&id, "USR1").unwrap(), "kill USR1");
    wait_for_text("SIGUSR1 delivery", "SIGUSR1", stdout);
    assert_success(&rt.kill(&id, "15").unwrap(), "kill 15");
    rt.wait_stopped(&id, Duration::from_secs(5)).unwrap();
    let text = stdout();
    let usr1 = text.find("SIGUSR1").unwrap();
    let term = text.find("SIGTERM").expect("SIGTERM delivered");
    assert!(usr1 < term, "{text}");
    let out = rt.kill(&id, "NOSUCHSIGNAL").unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}

#[test]
fn kill_all_reaches_every_process() {
    require_root();
    let rt = runtime();
    let mut b = bundle("killall");
    b.probe_args(&["sleep", "30"]);
    let id = b.id().to_owned();
    create_and_start(&rt, &b);
    let out = rt
        .output(["exec", "--detach", &id, "/probe", "sleep", "30"])
        .unwrap();
    assert_success(&out, "exec --detach");
    let pids: Vec<i64> =
        serde_json::from_slice(&rt.output(["ps", "--format", "json", &id]).unwrap().stdout)
            .unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_success(
        &rt.output(["kill", "--all", &id, "KILL"]).unwrap(),
        "kill --all",
    );
    rt.wait_stopped(&id, Duration::from_secs(5)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pids
        .iter()
        .any(|p| process_exists(*p) && process_state(*p) != "Z")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "kill --all missed one of {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_success(&rt.delete(&id).unwrap(), "delete");
}

#[test]
fn run_forwards_signals_to_the_container() {
    require_root();
    let rt = runtime();
    let mut b = bundle("runsig");
    b.probe_args(&["signals"]);
    b.write_config().unwrap();
    let mut guard = Cleanup::new();
    guard.container(common::bin(), rt.root(), b.id());
    let stdout = wharf_testkit::Capture::new().unwrap();
    let mut child = rt
        .cmd(["run", "--bundle"])
        .arg(b.path())
        .arg(b.id())
        .stdin(std::process::Stdio::null())
        .stdout(stdout.stdio().unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn wharf-runtime run");
    guard.pid(child.id());
    wait_for_text("probe signals", "\"ready\":true", || stdout.text());
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    wait_for_text("forwarded SIGHUP", "SIGHUP", || stdout.text());
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", stdout.text());
    assert!(stdout.text().contains("SIGTERM"), "{}", stdout.text());
}

#[test]
fn create_pid_file_and_a_container_that_exits_on_its_own() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let dir = common::scratch_dir(&mut guard, "pidfile");
    let pid_file = dir.join("init.pid");
    let mut b = bundle("pidfile");
    b.probe_args(&["exit", "0"]);
    b.write_config().unwrap();
    guard.container(common::bin(), rt.root(), b.id());
    let mut cmd = rt.cmd(["create", "--pid-file"]);
    cmd.arg(&pid_file).arg("--bundle").arg(b.path()).arg(b.id());
    let out = wharf_testkit::run_bounded(&mut cmd, Duration::from_secs(20)).unwrap();
    assert_success(&out, "create --pid-file");
    let written: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file written by create")
        .trim()
        .parse()
        .expect("a number");
    assert_eq!(written, state_pid(&rt, b.id()));
    assert_success(&rt.start(b.id()).unwrap(), "start");
    // The process exits by itself: the container is stopped, not gone.
    let state = rt.wait_stopped(b.id(), Duration::from_secs(5)).unwrap();
    assert_eq!(state["status"], "stopped");
    assert_success(&rt.delete(b.id()).unwrap(), "delete");
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    require_root();
    let rt = runtime();
    let mut b = bundle("detach");
    b.probe_args(&["sleep", "30"]);
    b.write_config().unwrap();
    let mut guard = Cleanup::new();
    guard.container(common::bin(), rt.root(), b.id());
    let started = std::time::Instant::now();
    let out = rt
        .output([
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new("--detach"),
            std::ffi::OsStr::new("--bundle"),
            b.path().as_os_str(),
            std::ffi::OsStr::new(b.id()),
        ])
        .unwrap();
    assert_success(&out, "run --detach");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(rt.state(b.id()).unwrap()["status"], "running");
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete --force");
}
