//! Helpers shared by the end-to-end suites of `wharf-runtime`: every test
//! drives the real binary (`CARGO_BIN_EXE_wharf-runtime`) over a testkit
//! [`Bundle`] with its own `--root`, and asserts on what the static probe
//! reports from inside the container.
//!
//! `$WHARF_TEST_RUNTIME` swaps in another runtime binary (see [`bin`]).
//!
//! Each test file is its own crate and uses a different subset of these
//! helpers, hence the `dead_code` allowance where the module is declared.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use wharf_testkit::{Bundle, Runtime, describe, probe_json};

/// The binary under test: `wharf-runtime`, or `$WHARF_TEST_RUNTIME` (e.g.
/// `/usr/sbin/runc`) to check the suite's expectations against another
/// runtime (error-text assertions are wharf's own and will differ).
pub fn bin() -> PathBuf {
    std::env::var_os("WHARF_TEST_RUNTIME").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_wharf-runtime")),
        PathBuf::from,
    )
}

/// A runtime driver with a fresh state directory and a time limit well
/// below the test harness's.
pub fn runtime() -> Runtime {
    Runtime::new(bin())
        .expect("create a runtime state directory")
        .with_timeout(Duration::from_secs(20))
}

/// A fresh bundle whose id (and cgroup) starts with `prefix`.
pub fn bundle(prefix: &str) -> Bundle {
    Bundle::with_prefix(prefix).expect("build a test bundle")
}

/// Edits the bundle's spec as JSON (the raw OCI field names), which keeps
/// tests close to the runtime-spec text.
pub fn edit_spec(bundle: &mut Bundle, edit: impl FnOnce(&mut Value)) {
    let mut json = serde_json::to_value(bundle.spec()).expect("serialize the spec");
    edit(&mut json);
    *bundle.spec_mut() = serde_json::from_value(json).expect("edited spec is a valid OCI spec");
}

/// `linux` section of a spec as a JSON object (created when missing).
pub fn linux(spec: &mut Value) -> &mut serde_json::Map<String, Value> {
    spec.as_object_mut()
        .expect("spec is an object")
        .entry("linux")
        .or_insert_with(|| Value::Object(serde_json::Map::new()))
        .as_object_mut()
        .expect("linux is an object")
}

/// Appends a mount to the spec.
pub fn add_mount(spec: &mut Value, mount: Value) {
    let mounts = spec
        .as_object_mut()
        .expect("spec is an object")
        .entry("mounts")
        .or_insert_with(|| Value::Array(Vec::new()));
    mounts
        .as_array_mut()
        .expect("mounts is an array")
        .push(mount);
}

/// Runs the bundle with `run`, asserts that the container exited 0 and
/// returns the probe's JSON.
pub fn run_probe(rt: &Runtime, bundle: &Bundle) -> Value {
    let out = rt.run(bundle, bundle.id()).expect("wharf-runtime run");
    assert_success(&out, "run");
    probe_json(&out)
}

/// Runs the bundle with `run` and returns the raw output, any exit status.
pub fn run_output(rt: &Runtime, bundle: &Bundle) -> Output {
    rt.run(bundle, bundle.id()).expect("wharf-runtime run")
}

/// Panics with the full output when a command did not exit 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed\n{}", describe(out));
}

/// Panics unless a command exited 1 with `needle` in its stderr.
pub fn assert_fails_with(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} should fail with exit 1\n{}",
        describe(out)
    );
    assert!(
        stderr.contains(needle),
        "{what}: stderr should mention {needle:?}\n{}",
        describe(out)
    );
}

/// The namespace inode of `kind` (`pid`, `net`, ...) for process `pid`
/// (`"self"` for this test process).
pub fn ns_inode(pid: &str, kind: &str) -> u64 {
    let target = fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/ns/{kind}: {e}"));
    let text = target.to_string_lossy();
    text.rsplit_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected namespace link {text}"))
}

/// The directory of the bundle's cgroup in the v1 hierarchy `controller`.
pub fn cgroup_dir(bundle: &Bundle, controller: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(bundle.cgroups_path().trim_start_matches('/'))
}

/// A cgroup file's trimmed contents.
pub fn read_cgroup_file(bundle: &Bundle, controller: &str, file: &str) -> String {
    let path = cgroup_dir(bundle, controller).join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The pid of a created/running container, from `state`.
pub fn state_pid(rt: &Runtime, id: &str) -> i64 {
    let state = rt.state(id).expect("state");
    let pid = state["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "state of {id} has no pid: {state}");
    pid
}

/// Creates and starts the bundle (a long-running process, e.g. `probe
/// sleep 30`), panicking with the output on failure.
pub fn create_and_start(rt: &Runtime, bundle: &Bundle) {
    let out = rt
        .create(bundle, bundle.id())
        .expect("wharf-runtime create");
    assert_success(&out, "create");
    let out = rt.start(bundle.id()).expect("wharf-runtime start");
    assert_success(&out, "start");
}

/// The probe report from an `exec` of `/probe` into container `id`.
pub fn exec_probe(rt: &Runtime, id: &str, args: &[&str]) -> Value {
    let mut cmd = vec!["exec", id, "/probe"];
    cmd.extend_from_slice(args);
    let out = rt.output(&cmd).expect("wharf-runtime exec");
    assert_success(&out, "exec");
    probe_json(&out)
}

/// Mount points of this (host) process's mount table.
pub fn host_mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

/// The probe's mount entry at `mount_point`, the topmost when stacked.
pub fn probe_mount<'a>(report: &'a Value, mount_point: &str) -> &'a Value {
    report["mounts"]
        .as_array()
        .expect("probe report has mounts")
        .iter()
        .rev()
        .find(|m| m["mount_point"] == mount_point)
        .unwrap_or_else(|| panic!("no mount at {mount_point} in {:#}", report["mounts"]))
}

/// Whether a probe mount entry has `opt` among its per-mount options.
pub fn has_option(mount: &Value, opt: &str) -> bool {
    mount["options"]
        .as_array()
        .is_some_and(|o| o.iter().any(|v| v == opt))
}

/// Whether a probe mount entry has `opt` among its superblock options.
pub fn has_super_option(mount: &Value, opt: &str) -> bool {
    mount["super_options"]
        .as_array()
        .is_some_and(|o| o.iter().any(|v| v == opt))
}

/// A fresh host directory under the test temp dir, removed by `guard`.
pub fn scratch_dir(guard: &mut wharf_testkit::Cleanup, prefix: &str) -> PathBuf {
    let dir = wharf_testkit::test_tmp().join(wharf_testkit::unique_id(prefix));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    guard.dir(&dir);
    dir
}
