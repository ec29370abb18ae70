//! OCI lifecycle hooks run by `wharf-runtime`: every kind runs at its step
//! of the lifecycle and in order, each gets the container state on stdin
//! and only its own environment, and a failing or hanging prestart hook
//! makes `create` fail without leaving anything behind.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    add_mount, assert_fails_with, assert_success, bundle, cgroup_dir, edit_spec, runtime,
};
use serde_json::{Value, json};
use wharf_testkit::{Cleanup, describe, require_root, test_tmp, unique_id};

/// A host directory (outside the bundle) where hooks write their log.
fn log_dir(guard: &mut Cleanup) -> PathBuf {
    let dir = test_tmp().join(unique_id("hooklog"));
    fs::create_dir_all(&dir).unwrap();
    guard.dir(&dir);
    dir
}

/// A hook that appends `<name> <status>` to `<dir>/log` and saves its stdin
/// as `<dir>/<name>.json`; `dir` is as seen where the hook runs.
fn recording_hook(name: &str, dir: &str) -> Value {
    let script = format!(
        "s=$(cat); echo \"$s\" > {dir}/{name}.json; \
         st=$(echo \"$s\" | sed -n 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/p'); \
         echo \"{name} $st $HOOK_MARK\" >> {dir}/log"
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": [format!("HOOK_MARK={name}-env")]})
}

fn log_lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_hook_runs_in_order_with_the_state_on_stdin() {
    require_root();
    let mut guard = Cleanup::new();
    let dir = log_dir(&mut guard);
    let host = dir.to_string_lossy().into_owned();
    let rt = runtime();
    let mut b = bundle("hooks");
    b.probe_args(&["sleep", "30"]);
    edit_spec(&mut b, |s| {
        // startContainer runs inside the container: it logs through a bind.
        add_mount(
            s,
            json!({"destination": "/hooklog", "type": "bind", "source": host,
                            "options": ["rbind", "rw"]}),
        );
        s["hooks"] = json!({
            "prestart": [recording_hook("prestart", &host)],
            "createRuntime": [recording_hook("createRuntime", &host)],
            "createContainer": [recording_hook("createContainer", &host)],
            "startContainer": [recording_hook("startContainer", "/hooklog")],
            "poststart": [recording_hook("poststart", &host)],
            "poststop": [recording_hook("poststop", &host)],
        });
    });
    let id = b.id().to_owned();

    assert_success(&rt.create(&b, &id).unwrap(), "create");
    let names = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&log_lines(&dir)),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );
    assert_success(&rt.start(&id).unwrap(), "start");
    assert_eq!(
        names(&log_lines(&dir)),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ],
        "after start"
    );
    assert_success(&rt.kill(&id, "KILL").unwrap(), "kill");
    rt.wait_stopped(&id, Duration::from_secs(5)).unwrap();
    assert_success(&rt.delete(&id).unwrap(), "delete");
    let lines = log_lines(&dir);
    assert_eq!(
        names(&lines),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "after delete"
    );

    // Each hook saw its own environment only.
    for line in &lines {
        let mut f = line.split(' ');
        let name = f.next().unwrap();
        let mark = f.nth(1);
        assert_eq!(mark, Some(format!("{name}-env").as_str()), "{line}");
    }
    // Statuses as the runtime spec's lifecycle has them.
    let status_of = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned()
    };
    for name in ["prestart", "createRuntime", "createContainer"] {
        assert_eq!(status_of(name), "creating", "{name}: {lines:?}");
    }
    assert!(
        ["creating", "created"].contains(&status_of("startContainer").as_str()),
        "{lines:?}"
    );
    assert_eq!(status_of("poststart"), "running", "{lines:?}");
    assert_eq!(status_of("poststop"), "stopped", "{lines:?}");

    // The state on stdin is the container's.
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ] {
        let state: Value =
            serde_json::from_str(&fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
                .unwrap_or_else(|e| panic!("{name} got invalid JSON on stdin: {e}"));
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
        assert!(
            state["pid"].as_i64().is_some_and(|p| p > 0),
            "{name}: {state}"
        );
        assert_eq!(
            Path::new(state["bundle"].as_str().unwrap_or_default()),
            b.path(),
            "{name}: {state}"
        );
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
    }
    let poststop: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("poststop.json")).unwrap()).unwrap();
    assert_eq!(poststop["id"], id.as_str());
}

/// Asserts that nothing of container `id` is left: no state, no cgroup, no
/// entry in `list`.
fn assert_nothing_left(rt: &wharf_testkit::Runtime, b: &wharf_testkit::Bundle) {
    assert!(!rt.root().join(b.id()).exists(), "state dir left behind");
    for controller in ["memory", "pids", "cpu", "freezer", "devices"] {
        assert!(
            !cgroup_dir(b, controller).exists(),
            "{controller} cgroup left behind"
        );
    }
    let out = rt.output(["list", "--format", "json"]).unwrap();
    assert_success(&out, "list");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = rt.output(["state", b.id()]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    Cleanup::check_no_leaks(&b.path().to_string_lossy());
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    require_root();
    let rt = runtime();
    let mut b = bundle("hookfail");
    b.probe_args(&["sleep", "30"]);
    edit_spec(&mut b, |s| {
        s["hooks"] = json!({"prestart": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo refusing >&2; exit 3"]}
        ]});
    });
    let out = rt.create(&b, b.id()).unwrap();
    assert_fails_with(&out, "prestart", "create with a failing prestart hook");
    assert_fails_with(&out, "refusing", "create with a failing prestart hook");
    assert_nothing_left(&rt, &b);
}

#[test]
fn hanging_prestart_hook_times_out() {
    require_root();
    let rt = runtime();
    let mut b = bundle("hooktime");
    edit_spec(&mut b, |s| {
        s["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}
        ]});
    });
    let started = Instant::now();
    let out = rt.create(&b, b.id()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_fails_with(&out, "timed out", "create with a hanging hook");
    assert_nothing_left(&rt, &b);
}

#[test]
fn failing_poststart_hook_does_not_stop_the_container() {
    require_root();
    let rt = runtime();
    let mut b = bundle("hookpost");
    b.probe_args(&["sleep", "30"]);
    edit_spec(&mut b, |s| {
        s["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    });
    assert_success(&rt.create(&b, b.id()).unwrap(), "create");
    let _ = rt.start(b.id()).unwrap();
    // The spec only asks for a warning: the container keeps running.
    assert_eq!(rt.state(b.id()).unwrap()["status"], "running");
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete");
}

#[test]
fn hook_timeout_holds_when_the_hook_ignores_a_large_state() {
    require_root();
    let rt = runtime();
    let mut b = bundle("hookbig");
    // Annotations travel in the state on the hook's stdin: make the state
    // larger than a pipe buffer, for a hook that never reads it.
    let big = "x".repeat(128 * 1024);
    edit_spec(&mut b, |s| {
        s["annotations"] = json!({"wharf.test/big": big});
        s["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}
        ]});
    });
    let started = Instant::now();
    let out = rt.create(&b, b.id()).unwrap();
    let took = started.elapsed();
    assert_fails_with(&out, "timed out", "create with a hook ignoring its stdin");
    assert!(
        took < Duration::from_secs(8),
        "the 1 s timeout took {took:?}"
    );
    assert_nothing_left(&rt, &b);
}

#[test]
fn hook_reads_a_large_state_completely() {
    require_root();
    let mut guard = Cleanup::new();
    let dir = log_dir(&mut guard);
    let rt = runtime();
    let mut b = bundle("hookbigok");
    let big = "y".repeat(128 * 1024);
    let out_file = dir.join("state.json");
    edit_spec(&mut b, |s| {
        s["annotations"] = json!({"wharf.test/big": big});
        s["hooks"] = json!({"prestart": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out_file.display())],
             "timeout": 10}
        ]});
    });
    assert_success(&rt.create(&b, b.id()).unwrap(), "create");
    let state: Value = serde_json::from_str(&fs::read_to_string(&out_file).unwrap())
        .expect("the whole state arrived");
    assert_eq!(
        state["annotations"]["wharf.test/big"]
            .as_str()
            .map(str::len),
        Some(128 * 1024)
    );
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete");
}

#[test]
fn large_annotations_do_not_break_create() {
    require_root();
    let rt = runtime();
    let mut b = bundle("bigannot");
    b.probe_args(&["exit", "0"]);
    let big = "z".repeat(1 << 20);
    edit_spec(&mut b, |s| {
        s["annotations"] = json!({"wharf.test/big": big})
    });
    assert_success(
        &rt.create(&b, b.id()).unwrap(),
        "create with 1 MiB of annotations",
    );
    assert_success(&rt.delete_force(b.id()).unwrap(), "delete");
}
