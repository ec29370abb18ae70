//! Namespaces of a container run by `wharf-runtime`: each requested one is
//! new (its inode differs from the host's), namespaces given by path are
//! joined (inode equal to the path's), hostname and domainname are set, and
//! a user namespace maps container root to an unprivileged host range.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::{
    assert_success, bundle, create_and_start, edit_spec, exec_probe, linux, ns_inode, run_probe,
    runtime, state_pid,
};
use serde_json::{Value, json};
use wharf_testkit::{require_root, unique_id};

/// Replaces the spec's namespace of `kind` (OCI name) by one joined at `path`.
fn join_namespace(spec: &mut Value, kind: &str, path: &str) {
    let namespaces = linux(spec)
        .get_mut("namespaces")
        .and_then(Value::as_array_mut)
        .expect("spec has namespaces");
    namespaces.retain(|n| n["type"] != kind);
    namespaces.push(json!({"type": kind, "path": path}));
}

/// Drop guard for a named network namespace made with `ip netns add`.
struct NetNs(String);

impl NetNs {
    fn add() -> NetNs {
        let name = unique_id("wtns");
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip netns add");
        assert!(status.success(), "ip netns add {name} failed");
        NetNs(name)
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn every_requested_namespace_is_new() {
    require_root();
    let rt = runtime();
    let b = bundle("nsnew");
    let report = run_probe(&rt, &b);
    let ns = &report["namespaces"];
    for kind in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let inside = ns[kind]
            .as_u64()
            .unwrap_or_else(|| panic!("no {kind} in {ns}"));
        assert_ne!(
            inside,
            ns_inode("self", kind),
            "{kind} namespace is the host's"
        );
    }
    // Not requested by the default spec: shared with the host.
    for kind in ["user", "time"] {
        assert_eq!(ns[kind].as_u64(), Some(ns_inode("self", kind)), "{kind}");
    }
    assert_eq!(
        report["pid"], 1,
        "the container process is pid 1 of its namespace"
    );
    assert_eq!(report["ppid"], 0);
    // A new cgroup namespace roots the container at its own cgroup.
    for line in report["cgroup"]["lines"].as_array().unwrap() {
        assert_eq!(line["path"], "/", "cgroup line {line}");
    }
}

#[test]
fn hostname_and_domainname_are_set() {
    require_root();
    let rt = runtime();
    let mut b = bundle("uts");
    b.hostname("wharf-box");
    edit_spec(&mut b, |s| s["domainname"] = json!("wharf.test"));
    let report = run_probe(&rt, &b);
    assert_eq!(report["hostname"], "wharf-box");
    assert_eq!(report["domainname"], "wharf.test");
    // The host's names are untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "wharf-box");
}

#[test]
fn network_namespace_is_joined_by_path() {
    require_root();
    let netns = NetNs::add();
    let expected = std::fs::metadata(netns.path()).unwrap().ino();
    let rt = runtime();
    let mut b = bundle("netjoin");
    let path = netns.path();
    edit_spec(&mut b, |s| join_namespace(s, "network", &path));
    let report = run_probe(&rt, &b);
    assert_eq!(report["namespaces"]["net"].as_u64(), Some(expected));
    // The other namespaces are still new.
    assert_ne!(
        report["namespaces"]["uts"].as_u64(),
        Some(ns_inode("self", "uts"))
    );
}

#[test]
fn namespaces_of_another_container_are_joined() {
    require_root();
    let rt = runtime();
    let mut first = bundle("nshost");
    first.probe_args(&["sleep", "30"]);
    create_and_start(&rt, &first);
    let pid = state_pid(&rt, first.id()).to_string();

    let mut second = bundle("nsguest");
    edit_spec(&mut second, |s| {
        for (oci, proc_name) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
            join_namespace(s, oci, &format!("/proc/{pid}/ns/{proc_name}"));
        }
    });
    // A joined uts namespace may not be given a hostname (runc and crun
    // refuse it too): the default spec's one goes.
    edit_spec(&mut second, |s| {
        s.as_object_mut().unwrap().remove("hostname");
    });
    let report = run_probe(&rt, &second);
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(
            report["namespaces"][kind].as_u64(),
            Some(ns_inode(&pid, kind)),
            "{kind} namespace not shared with the first container"
        );
    }
    for kind in ["pid", "mnt"] {
        assert_ne!(
            report["namespaces"][kind].as_u64(),
            Some(ns_inode(&pid, kind)),
            "{kind} namespace unexpectedly shared"
        );
    }
    assert_eq!(
        report["hostname"], "wharf",
        "hostname of the first container"
    );
    assert_success(&rt.delete_force(first.id()).unwrap(), "delete first");
}

/// `linux.uidMappings`/`gidMappings` of container 0 to host 100000 (65536 ids)
/// plus a user namespace.
fn map_users(spec: &mut Value) {
    let linux = linux(spec);
    linux
        .get_mut("namespaces")
        .and_then(Value::as_array_mut)
        .expect("spec has namespaces")
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    linux.insert("uidMappings".into(), map.clone());
    linux.insert("gidMappings".into(), map);
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_range() {
    require_root();
    let rt = runtime();
    let mut b = bundle("userns");
    edit_spec(&mut b, map_users);
    let report = run_probe(&rt, &b);
    assert_ne!(
        report["namespaces"]["user"].as_u64(),
        Some(ns_inode("self", "user"))
    );
    assert_eq!(report["uid"], 0, "{report}");
    assert_eq!(report["gid"], 0);
    assert_eq!(report["euid"], 0);
}

#[test]
fn user_namespace_mappings_are_written() {
    require_root();
    let rt = runtime();
    let mut b = bundle("usermap");
    b.probe_args(&["sleep", "30"]);
    edit_spec(&mut b, map_users);
    create_and_start(&rt, &b);
    let pid = state_pid(&rt, b.id());
    for file in ["uid_map", "gid_map"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields, ["0", "100000", "65536"], "{file}: {text}");
    }
    // Seen from the host, the container's root is host uid 100000.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{uid_line}"
    );
    // And from inside (through exec), the map is the same.
    let out = rt
        .output(["exec", b.id(), "/probe", "cat", "/proc/self/uid_map"])
        .unwrap();
    assert_success(&out, "exec cat uid_map");
    let inside = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        inside.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let report = exec_probe(&rt, b.id(), &[]);
    assert_eq!(report["uid"], 0);
    assert_eq!(
        report["namespaces"]["user"].as_u64(),
        Some(ns_inode(&pid.to_string(), "user"))
    );
}

#[test]
fn time_namespace_gets_the_offsets() {
    require_root();
    let rt = runtime();
    let mut b = bundle("timens");
    edit_spec(&mut b, |s| {
        let linux = linux(s);
        linux
            .get_mut("namespaces")
            .and_then(Value::as_array_mut)
            .expect("spec has namespaces")
            .push(json!({"type": "time"}));
        linux.insert(
            "timeOffsets".into(),
            json!({"monotonic": {"secs": 86400, "nanosecs": 0},
                   "boottime": {"secs": 3600, "nanosecs": 5}}),
        );
    });
    b.args(&["/bin/sh", "-c", "/probe; cat /proc/self/timens_offsets"]);
    let out = common::run_output(&rt, &b);
    assert_success(&out, "run");
    let text = String::from_utf8_lossy(&out.stdout);
    let (json_line, offsets) = text.split_once('\n').expect("report then offsets");
    let report: Value = serde_json::from_str(json_line).expect("probe report");
    assert_ne!(
        report["namespaces"]["time"].as_u64(),
        Some(ns_inode("self", "time"))
    );
    let offsets: Vec<Vec<&str>> = offsets
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        offsets.contains(&vec!["monotonic", "86400", "0"]),
        "{offsets:?}"
    );
    assert!(
        offsets.contains(&vec!["boottime", "3600", "5"]),
        "{offsets:?}"
    );
}

#[test]
fn user_namespace_container_has_working_devices() {
    require_root();
    let rt = runtime();
    let mut b = bundle("userdev");
    edit_spec(&mut b, map_users);
    b.args(&[
        "/bin/sh",
        "-c",
        "/probe stat /dev/null; echo discarded > /dev/null && head -c 3 /dev/zero | wc -c",
    ]);
    let out = common::run_output(&rt, &b);
    assert_success(&out, "run");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let st: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(st["type"], "char", "{st}");
    assert_eq!(
        (st["rdev_major"].as_u64(), st["rdev_minor"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(lines.next().map(str::trim), Some("3"), "{text}");
}
