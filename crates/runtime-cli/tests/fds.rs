//! Descriptors crossing into the container: `--preserve-fds N` passes the
//! caller's fds 3..3+N (with `LISTEN_FDS` for socket activation), and
//! without it nothing beyond stdio reaches the container, neither the
//! caller's inheritable descriptors nor the runtime's own (the
//! CVE-2024-21626 class, where a leaked directory fd gave a way out).
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{assert_success, bin, bundle, create_and_start, exec_probe, runtime, scratch_dir};
use serde_json::Value;
use wharf_testkit::{Bundle, Cleanup, Runtime, describe, probe_json, require_root, run_bounded};

/// Runs `wharf-runtime <args>` from a shell that first opens `file` as fd 3
/// and `/dev/null` as fd 4 (both inheritable), with extra environment.
fn with_inherited_fds(rt: &Runtime, file: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "exec 3<'{}' 4>/dev/null; exec '{}' --root '{}' {}",
        file.display(),
        bin().display(),
        rt.root().display(),
        quoted.join(" ")
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, Duration::from_secs(20)).expect("run the runtime through sh")
}

/// `(fd, target)` pairs of a probe report.
fn fds(report: &Value) -> Vec<(u64, String)> {
    report["fds"]
        .as_array()
        .expect("probe reports fds")
        .iter()
        .map(|f| {
            (
                f["fd"].as_u64().unwrap(),
                f["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn fd_numbers(report: &Value) -> Vec<u64> {
    fds(report).into_iter().map(|(fd, _)| fd).collect()
}

fn passed_file(guard: &mut Cleanup) -> std::path::PathBuf {
    let file = scratch_dir(guard, "fds").join("passed-file");
    std::fs::write(&file, "passed\n").unwrap();
    file
}

fn run_args(b: &Bundle, extra: &[&'static str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend([
        "--bundle".into(),
        b.path().to_string_lossy().into_owned(),
        b.id().to_owned(),
    ]);
    args
}

#[test]
fn nothing_beyond_stdio_reaches_the_container() {
    require_root();
    // Declared first so it drops last: the guard's `delete --force`
    // must run before the runtime's state directory is removed.
    let rt = runtime();
    let mut guard = Cleanup::new();
    let file = passed_file(&mut guard);
    let b = bundle("fdnone");
    b.write_config().unwrap();
    guard.container(bin(), rt.root(), b.id());
    let args = run_args(&b, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = with_inherited_fds(&rt, &file, &args, &[("LISTEN_FDS", "2")]);
    assert_success(&out, "run");
    let report = probe_json(&out);
    assert_eq!(
        fd_numbers(&report),
        [0, 1, 2],
        "leaked descriptors: {:?}",
        fds(&report)
    );
    assert_eq!(report["cwd"], "/");
    assert!(
        report["env"].get("LISTEN_FDS").is_none(),
        "LISTEN_FDS without --preserve-fds"
    );
}

#[test]
fn exec_gets_nothing_beyond_stdio() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let file = passed_file(&mut guard);
    let mut b = bundle("fdexec");
    b.probe_args(&["sleep", "30"]);
    create_and_start(&rt, &b);
    // The init itself holds only stdio.
    let init = common::state_pid(&rt, b.id());
    let mut init_fds: Vec<u64> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    init_fds.sort();
    assert_eq!(init_fds, [0, 1, 2], "the init holds runtime descriptors");

    let report = exec_probe(&rt, b.id(), &[]);
    assert_eq!(fd_numbers(&report), [0, 1, 2], "{:?}", fds(&report));
    let out = with_inherited_fds(&rt, &file, &["exec", b.id(), "/probe"], &[]);
    assert_success(&out, "exec");
    let report = probe_json(&out);
    assert_eq!(fd_numbers(&report), [0, 1, 2], "{:?}", fds(&report));
    assert_eq!(report["cwd"], "/");
}

#[test]
fn preserve_fds_passes_fd_3_with_listen_fds() {
    require_root();
    // Declared first so it drops last: the guard's `delete --force`
    // must run before the runtime's state directory is removed.
    let rt = runtime();
    let mut guard = Cleanup::new();
    let file = passed_file(&mut guard);
    let b = bundle("fdkeep");
    b.write_config().unwrap();
    guard.container(bin(), rt.root(), b.id());
    let args = run_args(&b, &["--preserve-fds", "1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = with_inherited_fds(&rt, &file, &args, &[("LISTEN_FDS", "1")]);
    assert_success(&out, "run --preserve-fds 1");
    let report = probe_json(&out);
    let list = fds(&report);
    assert_eq!(fd_numbers(&report), [0, 1, 2, 3], "{list:?}");
    assert!(list[3].1.ends_with("passed-file"), "fd 3 is {:?}", list[3]);
    assert_eq!(report["env"]["LISTEN_FDS"], "1", "{}", report["env"]);
    assert_eq!(report["env"]["LISTEN_PID"], "1", "{}", report["env"]);
}

#[test]
fn preserve_fds_reads_the_passed_file() {
    require_root();
    // Declared first so it drops last: the guard's `delete --force`
    // must run before the runtime's state directory is removed.
    let rt = runtime();
    let mut guard = Cleanup::new();
    let file = passed_file(&mut guard);
    let mut b = bundle("fdread");
    b.args(&["/bin/sh", "-c", "cat <&3"]);
    b.write_config().unwrap();
    guard.container(bin(), rt.root(), b.id());
    let args = run_args(&b, &["--preserve-fds", "1"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = with_inherited_fds(&rt, &file, &args, &[]);
    assert_success(&out, "run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "passed\n",
        "{}",
        describe(&out)
    );
}

#[test]
fn exec_preserve_fds_passes_fd_3() {
    require_root();
    let rt = runtime();
    let mut guard = Cleanup::new();
    let file = passed_file(&mut guard);
    let mut b = bundle("fdexkeep");
    b.probe_args(&["sleep", "30"]);
    create_and_start(&rt, &b);
    let out = with_inherited_fds(
        &rt,
        &file,
        &["exec", "--preserve-fds", "1", b.id(), "/probe"],
        &[],
    );
    assert_success(&out, "exec --preserve-fds 1");
    let report = probe_json(&out);
    assert_eq!(fd_numbers(&report), [0, 1, 2, 3], "{:?}", fds(&report));
}
