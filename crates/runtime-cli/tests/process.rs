//! The container process's identity and limits as `wharf-runtime` sets them
//! from `process`: uid/gid/additional groups, umask, environment and cwd,
//! rlimits, the five capability sets, no_new_privs and seccomp.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use common::{assert_fails_with, bundle, edit_spec, run_output, run_probe, runtime};
use serde_json::{Value, json};
use wharf_testkit::{describe, probe_json, require_root};

/// Sorted capability names of one set in a probe report.
fn cap_set(report: &Value, set: &str) -> Vec<String> {
    let names = &report["caps"][format!("{set}_names")];
    let mut v: Vec<String> = names
        .as_array()
        .unwrap_or_else(|| panic!("no caps.{set}_names in {}", report["caps"]))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn user_group_and_additional_groups_are_set() {
    require_root();
    let rt = runtime();
    let mut b = bundle("puser");
    b.user(1000, 1000).additional_gids(&[1001, 65534]);
    let report = run_probe(&rt, &b);
    for key in ["uid", "euid", "suid", "fsuid"] {
        assert_eq!(report[key], 1000, "{key}");
    }
    for key in ["gid", "egid", "sgid", "fsgid"] {
        assert_eq!(report[key], 1000, "{key}");
    }
    assert_eq!(report["groups"], json!([1001, 65534]));
    // HOME comes from the container's /etc/passwd.
    assert_eq!(report["env"]["HOME"], "/home/wharf");
}

#[test]
fn root_without_additional_groups_has_none() {
    require_root();
    let rt = runtime();
    let b = bundle("proot");
    let report = run_probe(&rt, &b);
    assert_eq!(report["uid"], 0);
    assert_eq!(report["gid"], 0);
    assert_eq!(report["groups"], json!([]), "host groups leaked in");
    assert_eq!(report["env"]["HOME"], "/root");
}

#[test]
fn umask_from_the_spec_is_applied() {
    require_root();
    let rt = runtime();
    let mut b = bundle("pumask");
    edit_spec(&mut b, |s| s["process"]["user"]["umask"] = json!(0o027));
    let report = run_probe(&rt, &b);
    assert_eq!(report["umask"], "0027");
}

#[test]
fn env_and_cwd_are_set() {
    require_root();
    let rt = runtime();
    let mut b = bundle("penv");
    b.env("WHARF_TEST_VAR", "a value with spaces=and equals")
        .env("HOME", "/custom-home")
        .cwd("/home/wharf");
    let report = run_probe(&rt, &b);
    assert_eq!(
        report["env"]["WHARF_TEST_VAR"],
        "a value with spaces=and equals"
    );
    assert_eq!(
        report["env"]["HOME"], "/custom-home",
        "an explicit HOME wins"
    );
    assert_eq!(
        report["env"]["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(report["cwd"], "/home/wharf");
    // Nothing of the runtime's own environment leaks in.
    let env = report["env"].as_object().unwrap();
    let keys: Vec<&String> = env.keys().collect();
    assert!(
        env.keys()
            .all(|k| ["PATH", "TERM", "HOME", "WHARF_TEST_VAR", "HOSTNAME"].contains(&k.as_str())),
        "unexpected environment keys: {keys:?}"
    );
}

#[test]
fn missing_cwd_fails_clearly() {
    require_root();
    let rt = runtime();
    let mut b = bundle("pcwd");
    b.cwd("/does/not/exist");
    let out = run_output(&rt, &b);
    assert_fails_with(&out, "/does/not/exist", "run with a missing cwd");
    assert!(out.stdout.is_empty(), "the process ran: {}", describe(&out));
}

#[test]
fn missing_executable_fails_clearly() {
    require_root();
    let rt = runtime();
    let mut b = bundle("pexe");
    b.args(&["/no-such-binary"]);
    let out = run_output(&rt, &b);
    assert_fails_with(&out, "/no-such-binary", "run of a missing executable");
    let mut b = bundle("pexepath");
    b.args(&["no-such-command"]);
    let out = run_output(&rt, &b);
    assert_fails_with(&out, "no-such-command", "run of a command not on PATH");
}

#[test]
fn rlimits_are_set_soft_and_hard() {
    require_root();
    let rt = runtime();
    let mut b = bundle("prlimit");
    edit_spec(&mut b, |s| {
        s["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
            {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
    });
    let report = run_probe(&rt, &b);
    let limits = &report["rlimits"];
    assert_eq!(limits["RLIMIT_NOFILE"], json!({"soft": 512, "hard": 1024}));
    assert_eq!(limits["RLIMIT_NPROC"], json!({"soft": 100, "hard": 200}));
    assert_eq!(limits["RLIMIT_CORE"], json!({"soft": 0, "hard": 0}));
}

#[test]
fn rlimit_above_the_hard_limit_fails_clearly() {
    require_root();
    let rt = runtime();
    // CAP_SYS_RESOURCE is missing here, so a hard limit cannot be raised.
    let host = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = host.maximum.expect("finite NOFILE hard limit on this host");
    let mut b = bundle("prlimitbad");
    edit_spec(&mut b, |s| {
        s["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]);
    });
    let out = run_output(&rt, &b);
    assert_fails_with(&out, "RLIMIT_NOFILE", "run with an unraisable rlimit");
}

#[test]
fn root_capability_sets_are_exact() {
    require_root();
    let rt = runtime();
    let mut b = bundle("pcaps");
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SETGID",
    ];
    let working = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    edit_spec(&mut b, |s| {
        s["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": working, "permitted": working,
            "inheritable": working, "ambient": working,
        });
    });
    let report = run_probe(&rt, &b);
    // Root executing a file without file capabilities would get the whole
    // bounding set, but no_new_privs (set by the default spec) caps the new
    // permitted set at the old one: exactly the spec's sets.
    assert_eq!(report["no_new_privs"], true);
    assert_eq!(cap_set(&report, "bounding"), sorted(&bounding));
    assert_eq!(cap_set(&report, "permitted"), sorted(&working));
    assert_eq!(cap_set(&report, "effective"), sorted(&working));
    assert_eq!(cap_set(&report, "inheritable"), sorted(&working));
    assert_eq!(cap_set(&report, "ambient"), sorted(&working));

    // Without no_new_privs the kernel's root rule applies: the whole
    // bounding set becomes permitted and effective.
    let mut b = bundle("pcapsroot");
    edit_spec(&mut b, |s| {
        s["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": working, "permitted": working,
            "inheritable": working, "ambient": working,
        });
        s["process"]["noNewPrivileges"] = json!(false);
    });
    let report = run_probe(&rt, &b);
    assert_eq!(cap_set(&report, "permitted"), sorted(&bounding));
    assert_eq!(cap_set(&report, "effective"), sorted(&bounding));
}

#[test]
fn non_root_gets_ambient_capabilities_only() {
    require_root();
    let rt = runtime();
    let mut b = bundle("pambient");
    b.user(1000, 1000);
    let bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let working = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let ambient = ["CAP_NET_BIND_SERVICE"];
    edit_spec(&mut b, |s| {
        s["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": working, "permitted": working,
            "inheritable": working, "ambient": ambient,
        });
    });
    let report = run_probe(&rt, &b);
    assert_eq!(report["uid"], 1000);
    assert_eq!(cap_set(&report, "bounding"), sorted(&bounding));
    assert_eq!(cap_set(&report, "inheritable"), sorted(&working));
    // A non-root exec keeps exactly the ambient set as permitted and effective.
    assert_eq!(cap_set(&report, "ambient"), sorted(&ambient));
    assert_eq!(cap_set(&report, "permitted"), sorted(&ambient));
    assert_eq!(cap_set(&report, "effective"), sorted(&ambient));
}

#[test]
fn default_spec_caps_and_no_new_privs() {
    require_root();
    let rt = runtime();
    let b = bundle("pdefcaps");
    let expected: Vec<String> = {
        let caps = &b
            .spec()
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        let mut v: Vec<String> = caps
            .bounding()
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| {
                let json = serde_json::to_value(c).unwrap();
                json.as_str().unwrap().to_owned()
            })
            .collect();
        v.sort();
        v
    };
    let report = run_probe(&rt, &b);
    assert_eq!(cap_set(&report, "bounding"), expected);
    assert_eq!(cap_set(&report, "effective"), expected);
    assert_eq!(cap_set(&report, "permitted"), expected);
    assert_eq!(cap_set(&report, "inheritable"), Vec::<String>::new());
    assert_eq!(cap_set(&report, "ambient"), Vec::<String>::new());
    assert_eq!(report["no_new_privs"], true);
    assert_eq!(report["seccomp"], 2, "filter mode");

    let mut b = bundle("pnonnp");
    edit_spec(&mut b, |s| s["process"]["noNewPrivileges"] = json!(false));
    let report = run_probe(&rt, &b);
    assert_eq!(report["no_new_privs"], false);
    assert_eq!(
        report["seccomp"], 2,
        "filter loaded without no_new_privs too"
    );
}

/// Removes `name` from every rule of the spec's seccomp profile and adds a
/// rule making it fail with `errno`.
fn seccomp_errno(spec: &mut Value, name: &str, errno: u32) {
    let syscalls = spec["linux"]["seccomp"]["syscalls"]
        .as_array_mut()
        .expect("the default spec has a seccomp profile");
    for rule in syscalls.iter_mut() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != name);
        }
    }
    syscalls.retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
    syscalls.push(json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}));
}

#[test]
fn seccomp_rule_returns_the_chosen_errno() {
    require_root();
    let rt = runtime();
    for (prefix, nnp, uid) in [("pscnnp", true, 0), ("pscuser", false, 1000)] {
        let mut b = bundle(prefix);
        b.user(uid, uid);
        b.probe_args(&["syscall", "getpriority"]);
        edit_spec(&mut b, |s| {
            seccomp_errno(s, "getpriority", 42);
            s["process"]["noNewPrivileges"] = json!(nnp);
        });
        let out = run_output(&rt, &b);
        let result = probe_json(&out);
        assert_eq!(result["ok"], false, "nnp={nnp}: {}", describe(&out));
        assert_eq!(result["errno"], 42, "nnp={nnp}: {}", describe(&out));
    }
    // The same call without the rule succeeds (the rule made the difference).
    let mut b = bundle("pscok");
    b.probe_args(&["syscall", "getpriority"]);
    let out = run_output(&rt, &b);
    assert_eq!(probe_json(&out)["ok"], true, "{}", describe(&out));
}

#[test]
fn sysctls_are_applied_in_the_container_only() {
    require_root();
    let rt = runtime();
    let mut b = bundle("psysctl");
    edit_spec(&mut b, |s| {
        s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"});
    });
    b.args(&[
        "/bin/sh",
        "-c",
        "/probe sysctl net.ipv4.ip_forward; /probe sysctl kernel.msgmax",
    ]);
    let out = run_output(&rt, &b);
    assert!(out.status.success(), "{}", describe(&out));
    let lines = wharf_testkit::probe_lines(&out);
    assert_eq!(lines[0]["value"], "1", "{}", lines[0]);
    assert_eq!(lines[1]["value"], "4096", "{}", lines[1]);
    // Namespaced sysctls: the host keeps its own value.
    let host = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    assert_ne!(host.trim(), "4096");
}

#[test]
fn oom_score_adj_is_applied() {
    require_root();
    let rt = runtime();
    let mut b = bundle("poomadj");
    edit_spec(&mut b, |s| s["process"]["oomScoreAdj"] = json!(500));
    let report = run_probe(&rt, &b);
    assert_eq!(report["oom_score_adj"], 500);
}
