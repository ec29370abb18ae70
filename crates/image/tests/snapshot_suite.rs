//! One test suite for the `Snapshotter` trait, run against both drivers
//! (overlay and copy). Root: applies layers with owners, devices and
//! trusted xattrs, and mounts the container views.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::LayerBuilder;
use wharf_image::Digest;
use wharf_image::layer::apply_layer;
use wharf_image::snapshot::{
    self, CopySnapshotter, DriverKind, Mount, OverlaySnapshotter, SnapshotError, SnapshotKind,
    Snapshotter, chain_id,
};

type Factory = fn(&Path) -> Box<dyn Snapshotter>;

fn overlay(root: &Path) -> Box<dyn Snapshotter> {
    Box::new(OverlaySnapshotter::open(root).unwrap())
}

fn copy(root: &Path) -> Box<dyn Snapshotter> {
    Box::new(CopySnapshotter::open(root).unwrap())
}

const DRIVERS: [(&str, Factory); 2] = [("overlay", overlay), ("copy", copy)];

/// Applies `bytes` as a new layer on `parent`; returns its chain ID.
fn add_layer(s: &dyn Snapshotter, parent: Option<&Digest>, bytes: &[u8]) -> Digest {
    let diff_id = Digest::from_bytes(bytes);
    let chain = chain_id(parent, &diff_id);
    let p = s.prepare_layer(&chain, parent).unwrap();
    let stats = apply_layer(bytes, &p.unpack_dir()).unwrap();
    s.commit_layer(p, &stats.diff_id).unwrap();
    chain
}

fn tmp_dirs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for area in ["snapshots", "containers"] {
        for e in fs::read_dir(root.join(area)).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            if n.starts_with("tmp-") {
                out.push(format!("{area}/{n}"));
            }
        }
    }
    out
}

/// Unmounts on drop, so a failing assertion never leaves a mount behind.
struct Mounted(PathBuf);

impl Mounted {
    fn new(mounts: &[Mount], at: &Path) -> Mounted {
        assert_eq!(mounts.len(), 1, "{mounts:?}");
        fs::create_dir_all(at).unwrap();
        mounts[0].mount_at(at).unwrap();
        Mounted(at.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = snapshot::unmount(&self.0) {
            eprintln!("unmount {}: {e}", self.0.display());
        }
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

fn three_layers() -> [Vec<u8>; 3] {
    let mut l1 = LayerBuilder::new();
    l1.dir("etc/", 0o755)
        .file("etc/gone", b"deleted in layer 2")
        .file("etc/keep", b"kept")
        .file("etc/changed", b"v1")
        .dir("opq/", 0o755)
        .file("opq/a", b"a")
        .dir("opq/sub/", 0o755)
        .file("opq/sub/b", b"b")
        .dir("gonedir/", 0o755)
        .file("gonedir/x", b"x")
        .file_full("bin/su", b"su", 0o4755, 0, 0)
        .pax(&[("SCHILY.xattr.user.layer", b"one")])
        .file_full("data/owned", b"owned", 0o640, 1234, 4321)
        .device("dev/null", tar::EntryType::Char, 1, 3);
    let mut l2 = LayerBuilder::new();
    l2.whiteout("etc", "gone")
        .whiteout("", "gonedir")
        .dir("opq/", 0o750)
        .opaque("opq")
        .file("opq/c", b"c")
        .file("etc/changed", b"v2")
        .file("new2", b"from layer 2");
    let mut l3 = LayerBuilder::new();
    l3.file("etc/changed", b"v3")
        .file("l3/file", b"three")
        .hardlink("l3/hard", "l3/file")
        .symlink("l3/sym", "../etc/keep")
        .file("etc/gone", b"back again")
        .whiteout("", "new2");
    [l1.finish(), l2.finish(), l3.finish()]
}

fn check_merged(m: &Path) {
    let read = |p: &str| fs::read_to_string(m.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let missing = |p: &str| {
        assert!(
            fs::symlink_metadata(m.join(p)).is_err(),
            "{p} should be hidden"
        )
    };
    assert_eq!(read("etc/keep"), "kept");
    assert_eq!(read("etc/changed"), "v3");
    assert_eq!(
        read("etc/gone"),
        "back again",
        "re-added above its whiteout"
    );
    missing("gonedir");
    missing("new2");
    missing("opq/a");
    missing("opq/sub");
    assert_eq!(read("opq/c"), "c");
    let opq = fs::metadata(m.join("opq")).unwrap();
    assert_eq!(opq.mode() & 0o7777, 0o750);
    let su = fs::metadata(m.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    let owned = fs::metadata(m.join("data/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1234, 4321, 0o640)
    );
    assert_eq!(
        xattr(&m.join("data/owned"), "user.layer"),
        Some(b"one".to_vec())
    );
    let null = fs::symlink_metadata(m.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(read("l3/hard"), "three");
    assert_eq!(
        fs::metadata(m.join("l3/hard")).unwrap().ino(),
        fs::metadata(m.join("l3/file")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(m.join("l3/sym")).unwrap(),
        Path::new("../etc/keep")
    );
    // No whiteout devices or opaque markers leak into the container view.
    assert!(xattr(&m.join("opq"), "trusted.overlay.opaque").is_none());
}

#[test]
fn container_view_of_three_layers() {
    wharf_testkit::require_root();
    for (name, open) in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(&tmp.path().join("root"));
        let [a, b, c] = three_layers();
        let c1 = add_layer(&*s, None, &a);
        let c2 = add_layer(&*s, Some(&c1), &b);
        let c3 = add_layer(&*s, Some(&c2), &c);
        let mounts = s.prepare_container("ctr-1", Some(&c3)).unwrap();
        assert_eq!(
            mounts[0].typ,
            if name == "overlay" { "overlay" } else { "bind" }
        );
        let merged = tmp.path().join("merged");
        {
            let _m = Mounted::new(&mounts, &merged);
            check_merged(&merged);
            fs::write(merged.join("written-by-container"), b"hi").unwrap();
            fs::remove_file(merged.join("etc/keep")).unwrap();
        }
        // The write and the delete persist in the container snapshot, not in layers.
        let again = s.container_mounts("ctr-1").unwrap();
        assert_eq!(again, mounts, "{name}");
        {
            let _m = Mounted::new(&again, &merged);
            assert_eq!(
                fs::read(merged.join("written-by-container")).unwrap(),
                b"hi"
            );
            assert!(!merged.join("etc/keep").exists());
        }
        let c2view = s.prepare_container("ctr-2", Some(&c3)).unwrap();
        {
            let _m = Mounted::new(&c2view, &merged);
            assert_eq!(
                fs::read(merged.join("etc/keep")).unwrap(),
                b"kept",
                "{name}: layers untouched"
            );
            assert!(!merged.join("written-by-container").exists());
        }
        assert!(
            tmp_dirs(s.root()).is_empty(),
            "{name}: {:?}",
            tmp_dirs(s.root())
        );
    }
}

#[test]
fn per_snapshot_parents_spread_their_subtrees() {
    // `chattr +T` on the directories holding one subtree per layer or
    // container where that pays: ext4 without a journal (this CI machine's
    // root), and nowhere else.
    for (name, open) in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let _s = open(&root);
        for d in ["snapshots", "containers"] {
            let dir = root.join(d);
            let flag = wharf_sys::fsflags::is_top_directory(&dir).unwrap();
            let wanted = wharf_sys::fsflags::ext4_without_journal(&dir);
            assert_eq!(flag == Some(true), wanted, "{name}: {d}: {flag:?}");
        }
    }
}

#[test]
fn empty_container_has_a_writable_root() {
    wharf_testkit::require_root();
    for (name, open) in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(&tmp.path().join("root"));
        let mounts = s.prepare_container("scratch", None).unwrap();
        let merged = tmp.path().join("merged");
        let _m = Mounted::new(&mounts, &merged);
        fs::write(merged.join("f"), b"x").unwrap();
        assert_eq!(fs::read_dir(&merged).unwrap().count(), 1, "{name}");
    }
}

#[test]
fn commit_is_atomic_and_checked() {
    wharf_testkit::require_root();
    for (name, open) in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(&tmp.path().join("root"));
        let [a, _, _] = three_layers();
        let diff_id = Digest::from_bytes(&a);
        // a wrong diff ID is refused and leaves nothing behind
        let p = s.prepare_layer(&diff_id, None).unwrap();
        apply_layer(&a[..], &p.unpack_dir()).unwrap();
        let err = s
            .commit_layer(p, &Digest::from_bytes(b"other"))
            .unwrap_err();
        assert!(
            matches!(err, SnapshotError::ChainIdMismatch { .. }),
            "{name}: {err}"
        );
        assert!(!s.exists(&diff_id));
        assert!(tmp_dirs(s.root()).is_empty(), "{name}");
        // an abandoned (failed) unpack leaves nothing behind
        let p = s.prepare_layer(&diff_id, None).unwrap();
        fs::write(p.unpack_dir().join("partial"), b"half").unwrap();
        drop(p);
        assert!(!s.exists(&diff_id));
        assert!(tmp_dirs(s.root()).is_empty(), "{name}");
        // two concurrent unpacks of one layer both succeed; one copy is kept
        let p1 = s.prepare_layer(&diff_id, None).unwrap();
        let p2 = s.prepare_layer(&diff_id, None).unwrap();
        apply_layer(&a[..], &p1.unpack_dir()).unwrap();
        apply_layer(&a[..], &p2.unpack_dir()).unwrap();
        s.commit_layer(p1, &diff_id).unwrap();
        s.commit_layer(p2, &diff_id).unwrap();
        assert!(s.exists(&diff_id));
        assert!(tmp_dirs(s.root()).is_empty(), "{name}");
        // a layer unpacks before its parent is committed, but commits only
        // after it: refused (and removed) while the parent is missing
        let missing = Digest::from_bytes(b"missing");
        let child = chain_id(Some(&missing), &diff_id);
        let p = s.prepare_layer(&child, Some(&missing)).unwrap();
        apply_layer(&a[..], &p.unpack_dir()).unwrap();
        let err = s.commit_layer(p, &diff_id).unwrap_err();
        assert!(
            matches!(err, SnapshotError::ParentNotCommitted { .. }),
            "{name}: {err}"
        );
        assert!(!s.exists(&child));
        assert!(tmp_dirs(s.root()).is_empty(), "{name}");
        // children unpacked first, concurrently, commit once the parent is in
        let [a2, b2, c2] = three_layers();
        let (d1, d2, d3) = (
            Digest::from_bytes(&a2),
            Digest::from_bytes(&b2),
            Digest::from_bytes(&c2),
        );
        let _ = s.remove(&d1.to_string());
        let k1 = d1.clone();
        let k2 = chain_id(Some(&k1), &d2);
        let k3 = chain_id(Some(&k2), &d3);
        let p3 = s.prepare_layer(&k3, Some(&k2)).unwrap();
        let p2 = s.prepare_layer(&k2, Some(&k1)).unwrap();
        let p1 = s.prepare_layer(&k1, None).unwrap();
        apply_layer(&c2[..], &p3.unpack_dir()).unwrap();
        apply_layer(&b2[..], &p2.unpack_dir()).unwrap();
        apply_layer(&a2[..], &p1.unpack_dir()).unwrap();
        s.commit_layer(p1, &d1).unwrap();
        s.commit_layer(p2, &d2).unwrap();
        s.commit_layer(p3, &d3).unwrap();
        assert!(s.exists(&k3), "{name}");
        assert!(tmp_dirs(s.root()).is_empty(), "{name}");
        let err = s.prepare_container("c", Some(&missing)).unwrap_err();
        assert!(
            matches!(err, SnapshotError::NotFound { .. }),
            "{name}: {err}"
        );
    }
}

#[test]
fn list_usage_and_remove() {
    wharf_testkit::require_root();
    for (name, open) in DRIVERS {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(&tmp.path().join("root"));
        let [a, b, _] = three_layers();
        let c1 = add_layer(&*s, None, &a);
        let c2 = add_layer(&*s, Some(&c1), &b);
        s.prepare_container("box", Some(&c2)).unwrap();
        let list = s.list().unwrap();
        assert_eq!(list.len(), 3, "{name}: {list:?}");
        let boxed = list.iter().find(|i| i.id == "box").unwrap();
        assert_eq!(
            (boxed.kind, boxed.parent.as_ref()),
            (SnapshotKind::Container, Some(&c2))
        );
        let l2 = list.iter().find(|i| i.id == c2.to_string()).unwrap();
        assert_eq!(
            (l2.kind, l2.parent.as_ref()),
            (SnapshotKind::Layer, Some(&c1))
        );
        let u = s.usage(&c1.to_string()).unwrap();
        assert!(u.inodes >= 14 && u.size > 0, "{name}: {u:?}");
        assert!(matches!(
            s.usage("nope"),
            Err(SnapshotError::NotFound { .. })
        ));
        // errors: duplicate and invalid keys, removing a parent
        assert!(matches!(
            s.prepare_container("box", None),
            Err(SnapshotError::AlreadyExists { .. })
        ));
        for bad in ["../x", "", "tmp-1", "a/b", ".hidden"] {
            assert!(
                matches!(
                    s.prepare_container(bad, None),
                    Err(SnapshotError::InvalidKey { .. })
                ),
                "{bad}"
            );
        }
        match s.remove(&c2.to_string()) {
            Err(SnapshotError::InUse { children, .. }) => {
                assert_eq!(children, vec!["box".to_owned()])
            }
            other => panic!("{name}: expected InUse, got {other:?}"),
        }
        assert!(matches!(
            s.remove(&c1.to_string()),
            Err(SnapshotError::InUse { .. })
        ));
        s.remove("box").unwrap();
        s.remove(&c2.to_string()).unwrap();
        s.remove(&c1.to_string()).unwrap();
        assert!(s.list().unwrap().is_empty(), "{name}");
        assert!(!s.exists(&c1));
        assert!(matches!(
            s.remove("box"),
            Err(SnapshotError::NotFound { .. })
        ));
        if name == "overlay" {
            assert_eq!(
                fs::read_dir(s.root().join("l")).unwrap().count(),
                0,
                "short links removed"
            );
        }
        assert!(tmp_dirs(s.root()).is_empty(), "{name}");
    }
}

#[test]
fn factory_records_and_enforces_the_driver() {
    wharf_testkit::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let s = snapshot::open_snapshotter(&root, Some(DriverKind::Copy)).unwrap();
    assert_eq!(s.driver(), "copy");
    drop(s);
    let err = snapshot::open_snapshotter(&root, Some(DriverKind::Overlay)).unwrap_err();
    assert!(matches!(err, SnapshotError::DriverMismatch { .. }), "{err}");
    fs::write(root.join("VERSION"), "9\n").unwrap();
    let err = CopySnapshotter::open(&root).unwrap_err();
    assert!(
        matches!(err, SnapshotError::UnsupportedVersion { .. }),
        "{err}"
    );
    if std::env::var_os(snapshot::DRIVER_ENV).is_none() {
        // overlay works on this host's root filesystem as root: the probe finds it
        let fresh = tmp.path().join("fresh");
        let s = snapshot::open_snapshotter(&fresh, None).unwrap();
        assert_eq!(s.driver(), "overlay");
        assert!(!fs::read_dir(&fresh).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("probe")
        }));
    }
}
