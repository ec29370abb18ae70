//! Hostile bundles: root filesystems whose symlinks point out of the root
//! (absolute paths to a host directory, and `../` chains) exactly where the
//! runtime mounts, creates device nodes, masks or makes paths read-only.
//! A sentinel directory on the host plays the target; after the container
//! ran, nothing may have been created in it or mounted under it.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

#[allow(dead_code)]
mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{
    add_mount, bundle, edit_spec, host_mount_points, linux, run_output, runtime, scratch_dir,
};
use serde_json::json;
use wharf_testkit::{Bundle, Cleanup, describe, probe_json, probe_lines, require_root};

/// The host directory hostile symlinks point at; `Drop`-removed by `guard`.
fn sentinel(guard: &mut Cleanup) -> PathBuf {
    scratch_dir(guard, "sentinel")
}

/// Entries of the sentinel directory (sorted names).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Panics when anything is mounted at or below `dir` in this process's
/// (the host's) mount table.
fn assert_no_mounts_under(dir: &Path) {
    let dir = dir.to_string_lossy();
    let under: Vec<String> = host_mount_points()
        .into_iter()
        .filter(|mp| mp.starts_with(dir.as_ref()))
        .collect();
    assert!(under.is_empty(), "mounts appeared under {dir}: {under:?}");
}

/// A `../` chain from `link` (a path inside the rootfs) up past the host's
/// `/`, then down to `target`.
fn dotdot_to(rootfs: &Path, link: &Path, target: &Path) -> PathBuf {
    let depth = rootfs.components().count() + link.components().count() + 4;
    let mut p = PathBuf::new();
    for _ in 0..depth {
        p.push("..");
    }
    p.join(target.strip_prefix("/").unwrap())
}

/// Replaces `path` (relative to the rootfs) by a symlink to `target`.
fn plant_symlink(b: &Bundle, path: &str, target: &Path) {
    let link = b.rootfs().join(path);
    if link.is_dir() {
        fs::remove_dir_all(&link).unwrap();
    }
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    symlink(target, &link).unwrap();
}

fn assert_untouched(b: &Bundle, sentinel: &Path, expected: &[&str]) {
    assert_eq!(
        entries(sentinel),
        expected,
        "the runtime wrote outside the rootfs"
    );
    assert_no_mounts_under(sentinel);
    Cleanup::check_no_leaks(&b.path().to_string_lossy());
}

#[test]
fn dev_symlinked_to_a_host_directory() {
    require_root();
    let mut guard = Cleanup::new();
    let outside = sentinel(&mut guard);
    let rt = runtime();
    let mut b = bundle("hdev");
    plant_symlink(&b, "dev", &outside);
    // The /dev tmpfs, /dev/pts, /dev/shm, /dev/mqueue, the device nodes and
    // /dev symlinks, and an extra device all land through that symlink.
    edit_spec(&mut b, |s| {
        linux(s).insert(
            "devices".into(),
            json!([{"path": "/dev/extra", "type": "c", "major": 1, "minor": 3}]),
        );
    });
    b.args(&[
        "/bin/sh",
        "-c",
        "/probe stat /dev/null; /probe stat /dev/extra",
    ]);
    let out = run_output(&rt, &b);
    assert_untouched(&b, &outside, &[]);
    // The symlink was followed inside the root instead.
    let inside = b.rootfs().join(outside.strip_prefix("/").unwrap());
    assert!(
        inside.is_dir(),
        "{} not created inside the rootfs",
        inside.display()
    );
    // The container itself works: the nodes exist where it looks for them.
    assert!(out.status.success(), "{}", describe(&out));
    for st in probe_lines(&out) {
        assert_eq!(st["type"], "char", "{st}");
    }
}

#[test]
fn dev_symlinked_outside_by_dotdot() {
    require_root();
    let mut guard = Cleanup::new();
    let outside = sentinel(&mut guard);
    let rt = runtime();
    let b = bundle("hdevrel");
    let target = dotdot_to(&b.rootfs(), Path::new("dev"), &outside);
    plant_symlink(&b, "dev", &target);
    let out = run_output(&rt, &b);
    assert_untouched(&b, &outside, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    probe_json(&out);
}

#[test]
fn dev_shm_symlinked_outside_without_a_dev_tmpfs() {
    require_root();
    let mut guard = Cleanup::new();
    let outside = sentinel(&mut guard);
    let rt = runtime();
    let mut b = bundle("hshm");
    // Without the /dev tmpfs, the image's own /dev is used as is.
    edit_spec(&mut b, |s| {
        s["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
    });
    plant_symlink(&b, "dev/shm", &outside);
    let out = run_output(&rt, &b);
    assert_untouched(&b, &outside, &[]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn mount_destinations_escaping_through_symlinks() {
    require_root();
    let mut guard = Cleanup::new();
    let outside = sentinel(&mut guard);
    let outside_rel = sentinel(&mut guard);
    let source = scratch_dir(&mut guard, "hsrc");
    fs::write(source.join("payload"), "bound").unwrap();
    let rt = runtime();
    let mut b = bundle("hmnt");
    plant_symlink(&b, "abs", &outside);
    let rel = dotdot_to(&b.rootfs(), Path::new("rel"), &outside_rel);
    plant_symlink(&b, "rel", &rel);
    let src = source.to_string_lossy().into_owned();
    edit_spec(&mut b, |s| {
        add_mount(
            s,
            json!({"destination": "/abs/tmp", "type": "tmpfs", "source": "tmpfs"}),
        );
        add_mount(
            s,
            json!({"destination": "/abs", "type": "bind", "source": src, "options": ["bind"]}),
        );
        add_mount(
            s,
            json!({"destination": "/rel/deeper/bound", "type": "bind", "source": src,
                            "options": ["rbind", "ro"]}),
        );
        add_mount(
            s,
            json!({"destination": "/rel/file", "type": "bind",
                            "source": format!("{src}/payload"), "options": ["bind"]}),
        );
    });
    b.probe_args(&["cat", "/rel/deeper/bound/payload"]);
    let out = run_output(&rt, &b);
    assert_untouched(&b, &outside, &[]);
    assert_untouched(&b, &outside_rel, &[]);
    assert_eq!(
        entries(&source),
        ["payload"],
        "the bind source was written to"
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bound");
}

#[test]
fn device_paths_through_symlinks() {
    require_root();
    let mut guard = Cleanup::new();
    let outside = sentinel(&mut guard);
    let rt = runtime();
    let mut b = bundle("hdevpath");
    plant_symlink(&b, "outdev", &outside);
    edit_spec(&mut b, |s| {
        linux(s).insert(
            "devices".into(),
            json!([
                {"path": "/outdev/evil", "type": "c", "major": 1, "minor": 3},
                {"path": "/outdev/sub/evil2", "type": "b", "major": 7, "minor": 0}
            ]),
        );
    });
    let out = run_output(&rt, &b);
    assert_untouched(&b, &outside, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let inside = b.rootfs().join(outside.strip_prefix("/").unwrap());
    assert!(
        inside.join("evil").exists(),
        "device not created inside the rootfs"
    );
}

#[test]
fn masked_and_readonly_paths_through_symlinks() {
    require_root();
    let mut guard = Cleanup::new();
    let outside = sentinel(&mut guard);
    fs::write(outside.join("secret"), "host data\n").unwrap();
    fs::create_dir(outside.join("dir")).unwrap();
    let rt = runtime();
    let mut b = bundle("hmask");
    plant_symlink(&b, "evil", &outside);
    let rel = dotdot_to(&b.rootfs(), Path::new("evilrel"), &outside);
    plant_symlink(&b, "evilrel", &rel);
    edit_spec(&mut b, |s| {
        let linux = linux(s);
        for key in ["maskedPaths", "readonlyPaths"] {
            let list = linux.get_mut(key).unwrap().as_array_mut().unwrap();
            list.extend([json!("/evil/secret"), json!("/evilrel/dir"), json!("/evil")]);
        }
    });
    b.probe_args(&["ls", "/evil"]);
    let out = run_output(&rt, &b);
    assert_untouched(&b, &outside, &["dir", "secret"]);
    assert_eq!(
        fs::read_to_string(outside.join("secret")).unwrap(),
        "host data\n"
    );
    // The container never sees the host directory's content.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("secret"),
        "host directory visible in the container: {text}"
    );
}
