//! Device nodes and `/dev` symlinks in a container run by `wharf-runtime`:
//! the default set with the right type, numbers and modes, an extra device
//! from `linux.devices`, the standard symlinks, and device-cgroup
//! enforcement (a node that exists but is not allowed cannot be opened).
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::collections::HashMap;

use common::{bundle, edit_spec, linux, run_output, runtime};
use serde_json::{Value, json};
use wharf_testkit::{Bundle, describe, probe_lines, require_root};

/// `probe stat` of each path, run in one container; keyed by path.
fn stat_all(bundle: &mut Bundle, paths: &[&str]) -> HashMap<String, Value> {
    let script = format!("for p in {}; do /probe stat $p; done", paths.join(" "));
    bundle.args(&["/bin/sh", "-c", &script]);
    let rt = runtime();
    let out = run_output(&rt, bundle);
    assert!(out.status.success(), "{}", describe(&out));
    let lines = probe_lines(&out);
    assert_eq!(lines.len(), paths.len(), "{}", describe(&out));
    lines
        .into_iter()
        .map(|v| (v["path"].as_str().unwrap().to_owned(), v))
        .collect()
}

#[test]
fn default_devices_exist_with_numbers_and_modes() {
    require_root();
    let mut b = bundle("devdef");
    let expected = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let paths: Vec<&str> = expected.iter().map(|(p, _, _)| *p).collect();
    let stats = stat_all(&mut b, &paths);
    for (path, major, minor) in expected {
        let st = &stats[path];
        assert_eq!(st["ok"], true, "{path}: {st}");
        assert_eq!(st["type"], "char", "{path}: {st}");
        assert_eq!(st["rdev_major"], major, "{path}: {st}");
        assert_eq!(st["rdev_minor"], minor, "{path}: {st}");
        assert_eq!(st["mode"], "0666", "{path}: {st}");
        assert_eq!(st["uid"], 0, "{path}: {st}");
        assert_eq!(st["gid"], 0, "{path}: {st}");
    }
}

#[test]
fn dev_symlinks_point_where_they_should() {
    require_root();
    let mut b = bundle("devlnk");
    let expected = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ];
    let paths: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    let stats = stat_all(&mut b, &paths);
    for (path, target) in expected {
        let st = &stats[path];
        assert_eq!(st["type"], "symlink", "{path}: {st}");
        assert_eq!(st["target"], target, "{path}: {st}");
    }
}

#[test]
fn extra_device_from_the_spec_is_created() {
    require_root();
    let mut b = bundle("devextra");
    edit_spec(&mut b, |s| {
        let linux = linux(s);
        linux.insert(
            "devices".into(),
            json!([
                {"path": "/dev/wharf-null", "type": "c", "major": 1, "minor": 3,
                 "fileMode": 0o640, "uid": 1000, "gid": 1001},
                {"path": "/dev/sub/loopish", "type": "b", "major": 7, "minor": 200,
                 "fileMode": 0o600, "uid": 0, "gid": 0}
            ]),
        );
    });
    let stats = stat_all(&mut b, &["/dev/wharf-null", "/dev/sub/loopish"]);
    let c = &stats["/dev/wharf-null"];
    assert_eq!(c["type"], "char", "{c}");
    assert_eq!(
        (c["rdev_major"].as_u64(), c["rdev_minor"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(c["mode"], "0640", "{c}");
    assert_eq!(
        (c["uid"].as_u64(), c["gid"].as_u64()),
        (Some(1000), Some(1001)),
        "{c}"
    );
    let blk = &stats["/dev/sub/loopish"];
    assert_eq!(blk["type"], "block", "{blk}");
    assert_eq!(blk["rdev_major"], 7);
    assert_eq!(blk["rdev_minor"], 200);
    assert_eq!(blk["mode"], "0600", "{blk}");
}

/// A bundle whose rootfs holds a block node 242:0 (a major reserved for
/// local use that no driver registered here, so opening it can create
/// nothing on the host) at `/blk`, outside the `/dev` tmpfs: only the
/// device cgroup decides whether opening it reaches the block layer.
fn bundle_with_block_node(prefix: &str) -> Bundle {
    let mut b = bundle(prefix);
    let node = b.rootfs().join("blk");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &node,
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(242, 0),
    )
    .expect("mknod a block node in the rootfs");
    b.probe_args(&["cat", "/blk"]);
    b
}

#[test]
fn device_cgroup_allows_only_listed_devices() {
    require_root();
    let rt = runtime();
    // The default rules deny every block device.
    let b = bundle_with_block_node("devcg");
    let out = run_output(&rt, &b);
    let lines = probe_lines(&out);
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert_eq!(lines[0]["ok"], false, "{}", describe(&out));
    assert_eq!(lines[0]["errno"], 1, "EPERM expected\n{}", describe(&out));

    // Allowed by a rule, the open reaches the block layer, which has no
    // such device (ENXIO).
    let mut b = bundle_with_block_node("devcgok");
    edit_spec(&mut b, |s| {
        let rules = linux(s)["resources"]["devices"].as_array_mut().unwrap();
        rules.push(json!({"allow": true, "type": "b", "major": 242, "minor": 0, "access": "rw"}));
    });
    let out = run_output(&rt, &b);
    let lines = probe_lines(&out);
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert_eq!(lines[0]["errno"], 6, "ENXIO expected\n{}", describe(&out));

    // The defaults stay usable.
    let mut b = bundle("devcgdef");
    b.args(&[
        "/bin/sh",
        "-c",
        "head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo ok",
    ]);
    let out = run_output(&rt, &b);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["4", "ok"]
    );
}
