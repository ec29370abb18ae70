//! Applying well-formed layers: every entry type, metadata, whiteouts,
//! compression, archives without a footer. Root: needs chown, mknod and
//! trusted.* xattrs.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use common::{Arena, LayerBuilder, MTIME};
use wharf_image::Digest;
use wharf_image::layer::{self, ApplyOptions, LayerError, apply_layer};

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// A VFS_CAP_REVISION_2 capability set: effective, cap_net_bind_service permitted.
fn cap_net_bind_service() -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

#[test]
fn applies_every_entry_type_with_metadata() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let long_dir = "d".repeat(60);
    let long_name = format!("{long_dir}/{}", "f".repeat(80));
    let cap = cap_net_bind_service();
    let mut l = LayerBuilder::new();
    l.dir("./", 0o755)
        .dir("etc/", 0o755)
        .file_full("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644, 0, 0)
        .file_full("etc/shadow", b"root:*::0:::::\n", 0o640, 0, 42)
        .dir("home/", 0o755)
        .dir("home/user/", 0o750)
        .file_full("home/user/own", b"mine", 0o600, 1000, 1001)
        .dir("tmp/", 0o1777)
        .dir("usr/bin/", 0o755)
        .file_full("usr/bin/su", b"#!su", 0o4755, 0, 0)
        .file_full("usr/bin/wall", b"#!wall", 0o2755, 0, 5)
        .pax(&[
            ("SCHILY.xattr.security.capability", &cap),
            ("SCHILY.xattr.user.note", b"hello"),
        ])
        .file_full("usr/bin/ping", b"#!ping", 0o755, 0, 0)
        .symlink("usr/bin/sh", "/bin/busybox")
        .raw(
            "usr/bin/owned-link",
            tar::EntryType::Symlink,
            0o777,
            7,
            8,
            "su",
            b"",
        )
        .hardlink("usr/bin/su-again", "usr/bin/su")
        .device("dev/null", tar::EntryType::Char, 1, 3)
        .device("dev/loop9", tar::EntryType::Block, 7, 9)
        .raw("run/fifo", tar::EntryType::Fifo, 0o600, 0, 0, "", b"")
        .file(&long_name, b"long")
        // implicit parent ("var/lib") created before its own entry arrives
        .file("var/lib/x", b"x")
        .dir("var/lib/", 0o700);
    let bytes = l.finish();
    let stats = apply_layer(&bytes[..], &a.target).unwrap();
    assert_eq!(stats.diff_id, Digest::from_bytes(&bytes));
    assert_eq!(stats.size, bytes.len() as u64);

    let t = &a.target;
    let md = |p: &str| fs::symlink_metadata(t.join(p)).unwrap();
    assert_eq!(
        fs::read(t.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        (md("etc/shadow").mode() & 0o7777, md("etc/shadow").gid()),
        (0o640, 42)
    );
    assert_eq!(
        (md("home/user/own").uid(), md("home/user/own").gid()),
        (1000, 1001)
    );
    assert_eq!(md("home/user").mode() & 0o7777, 0o750);
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(
        md("usr/bin/su").mode() & 0o7777,
        0o4755,
        "setuid survives chown"
    );
    assert_eq!(
        md("usr/bin/wall").mode() & 0o7777,
        0o2755,
        "setgid survives chown"
    );
    assert_eq!(md("usr/bin/wall").gid(), 5);
    assert_eq!(
        xattr(&t.join("usr/bin/ping"), "security.capability"),
        Some(cap)
    );
    assert_eq!(
        xattr(&t.join("usr/bin/ping"), "user.note"),
        Some(b"hello".to_vec())
    );
    assert_eq!(
        fs::read_link(t.join("usr/bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(
        (
            md("usr/bin/owned-link").uid(),
            md("usr/bin/owned-link").gid()
        ),
        (7, 8)
    );
    assert_eq!(md("usr/bin/su-again").ino(), md("usr/bin/su").ino());
    assert_eq!(md("usr/bin/su").nlink(), 2);
    assert!(md("dev/null").file_type().is_char_device());
    assert_eq!(md("dev/null").rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(
        (md("dev/null").mode() & 0o7777, md("dev/null").gid()),
        (0o620, 5)
    );
    assert!(md("dev/loop9").file_type().is_block_device());
    assert_eq!(md("dev/loop9").rdev(), rustix::fs::makedev(7, 9));
    assert!(md("run/fifo").file_type().is_fifo());
    assert_eq!(fs::read(t.join(&long_name)).unwrap(), b"long");
    assert_eq!(md("var/lib").mode() & 0o7777, 0o700);
    assert_eq!(
        md("run").mode() & 0o7777,
        0o755,
        "implicit parents are 0755"
    );
    // mtimes: files and directories (the latter after their contents were written)
    for p in [
        "etc/passwd",
        "etc",
        "usr/bin",
        "var/lib",
        "usr/bin/owned-link",
        "dev/null",
        ".",
    ] {
        assert_eq!(md(p).mtime() as u64, MTIME, "mtime of {p}");
    }
}

#[test]
fn whiteouts_and_opaque_dirs_become_overlay_form() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.dir("etc/", 0o755)
        .file("etc/made-then-deleted", b"x")
        .whiteout("etc", "made-then-deleted")
        .whiteout("etc", "from-below")
        .raw(
            "etc/.wh.owned",
            tar::EntryType::Regular,
            0o644,
            3,
            4,
            "",
            b"",
        )
        .whiteout("", "top")
        .dir("opaque/", 0o755)
        .opaque("opaque")
        .file("opaque/kept", b"kept")
        .opaque("implicit/dir")
        .file("usr/.wh..wh.plnk", b"");
    let bytes = l.finish();
    let stats = apply_layer(&bytes[..], &a.target).unwrap();
    assert_eq!(stats.whiteouts, 7);
    let t = &a.target;
    for p in [
        "etc/made-then-deleted",
        "etc/from-below",
        "top",
        "etc/owned",
    ] {
        let md = fs::symlink_metadata(t.join(p)).unwrap();
        assert!(md.file_type().is_char_device(), "{p} is a whiteout device");
        assert_eq!(md.rdev(), 0, "{p} is 0/0");
    }
    let owned = fs::symlink_metadata(t.join("etc/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (3, 4));
    assert_eq!(
        xattr(&t.join("opaque"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        xattr(&t.join("implicit/dir"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(xattr(&t.join("etc"), "trusted.overlay.opaque"), None);
    assert_eq!(fs::read(t.join("opaque/kept")).unwrap(), b"kept");
    for p in [
        "opaque/.wh..wh..opq",
        "etc/.wh.from-below",
        "usr/.wh..wh.plnk",
        "usr/plnk",
    ] {
        assert!(
            fs::symlink_metadata(t.join(p)).is_err(),
            "{p} must not be written"
        );
    }
}

#[test]
fn overlay_xattrs_from_the_archive_are_dropped() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.pax(&[
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.user.ok", b"1"),
    ])
    .dir("sneaky/", 0o755);
    apply_layer(&l.finish()[..], &a.target).unwrap();
    assert_eq!(
        xattr(&a.target.join("sneaky"), "trusted.overlay.redirect"),
        None
    );
    assert_eq!(
        xattr(&a.target.join("sneaky"), "user.ok"),
        Some(b"1".to_vec())
    );
}

#[test]
fn later_entries_replace_earlier_ones() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.file("x", b"file")
        .dir("x/", 0o711)
        .file("x/inner", b"i")
        .dir("d/", 0o755)
        .file("d/child", b"c")
        .file("d", b"now a file")
        .symlink("s", "/etc/passwd")
        .file("s", b"not through the link")
        .device("n", tar::EntryType::Char, 1, 3)
        .file("n", b"not into the device")
        .dir("keep/", 0o755)
        .file("keep/a", b"a")
        .dir("keep/", 0o700)
        .dir("gone/", 0o755)
        .dir("gone/sub/", 0o755)
        .file("gone", b"a file replaced the tree");
    apply_layer(&l.finish()[..], &a.target).unwrap();
    let t = &a.target;
    assert_eq!(
        fs::metadata(t.join("x")).unwrap().permissions().mode() & 0o777,
        0o711
    );
    assert_eq!(fs::read(t.join("x/inner")).unwrap(), b"i");
    assert_eq!(fs::read(t.join("d")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(t.join("s")).unwrap().is_file());
    assert_eq!(fs::read(t.join("s")).unwrap(), b"not through the link");
    assert!(fs::symlink_metadata(t.join("n")).unwrap().is_file());
    assert_eq!(
        fs::read(t.join("keep/a")).unwrap(),
        b"a",
        "dir over dir keeps contents"
    );
    assert_eq!(
        fs::metadata(t.join("keep")).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// The shortcuts of the apply (no chown when the kernel already gives the
/// archive's owner, no chmod when the create mode is exact, cached parent
/// directories) must not change what lands on disk.
#[test]
fn owners_modes_and_parents_are_exact_whatever_the_shortcuts() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    // A setgid directory: new nodes inherit its group, so root:root entries
    // inside it still need a chown.
    l.raw("sg/", tar::EntryType::Directory, 0o2775, 0, 77, "", b"")
        .file_full("sg/root-owned", b"r", 0o644, 0, 0)
        .file_full("sg/group-owned", b"g", 0o644, 0, 77)
        .raw(
            "sg/link",
            tar::EntryType::Symlink,
            0o777,
            0,
            0,
            "root-owned",
            b"",
        )
        .raw("sg/sub/", tar::EntryType::Directory, 0o755, 0, 0, "", b"")
        // Modes a 022 umask would strip, and special bits.
        .file_full("modes/rw-all", b"w", 0o666, 0, 0)
        .file_full("modes/rwx-all", b"x", 0o777, 0, 0)
        .file_full("modes/none", b"n", 0o000, 0, 0)
        .file_full("modes/sticky-setgid", b"s", 0o3755, 0, 0)
        .raw(
            "modes/open-dir/",
            tar::EntryType::Directory,
            0o777,
            0,
            0,
            "",
            b"",
        )
        .file_full("modes/owned", b"o", 0o640, 1000, 1000)
        // A cached parent ("p/q") whose ancestor is replaced by a symlink:
        // later entries must follow the new symlink, not the old directory.
        .dir("p/", 0o755)
        .dir("p/q/", 0o755)
        .file("p/q/one", b"1")
        .dir("elsewhere/q/", 0o755)
        .symlink("p", "elsewhere")
        .file("p/q/two", b"2");
    apply_layer(&l.finish()[..], &a.target).unwrap();
    let t = &a.target;
    let meta = |p: &str| fs::symlink_metadata(t.join(p)).unwrap();
    let owner = |p: &str| (meta(p).uid(), meta(p).gid());
    let mode = |p: &str| meta(p).mode() & 0o7777;
    assert_eq!(owner("sg"), (0, 77));
    assert_eq!(mode("sg"), 0o2775);
    assert_eq!(owner("sg/root-owned"), (0, 0));
    assert_eq!(owner("sg/group-owned"), (0, 77));
    assert_eq!(owner("sg/link"), (0, 0));
    assert_eq!(owner("sg/sub"), (0, 0));
    assert_eq!(mode("modes/rw-all"), 0o666);
    assert_eq!(mode("modes/rwx-all"), 0o777);
    assert_eq!(mode("modes/none"), 0o000);
    assert_eq!(mode("modes/sticky-setgid"), 0o3755);
    assert_eq!(mode("modes/open-dir"), 0o777);
    assert_eq!(owner("modes/owned"), (1000, 1000));
    assert_eq!(mode("modes/owned"), 0o640);
    assert_eq!(fs::read(t.join("modes/owned")).unwrap(), b"o");
    assert!(meta("p").is_symlink());
    assert_eq!(fs::read(t.join("elsewhere/q/two")).unwrap(), b"2");
    assert!(!t.join("elsewhere/q/one").exists());
    a.assert_outside_untouched();
}

fn sample_layer() -> Vec<u8> {
    let mut l = LayerBuilder::new();
    l.dir("bin/", 0o755)
        .file("bin/tool", &b"0123456789".repeat(100_000))
        .file("README", b"hi");
    l.finish()
}

#[test]
fn zstd_gzip_and_plain_layers_by_media_type_and_by_sniffing() {
    wharf_testkit::require_root();
    let plain = sample_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zs = zstd::encode_all(&plain[..], 3).unwrap();
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (zs.clone(), Some(layer::media_type::OCI_LAYER_ZSTD)),
        (zs, None),
        (gz.clone(), Some(layer::media_type::DOCKER_LAYER_GZIP)),
        (gz, Some("application/octet-stream")),
        (plain.clone(), Some(layer::media_type::OCI_LAYER)),
    ];
    for (bytes, mt) in cases {
        let a = Arena::new();
        let stats = layer::apply_compressed_layer(
            std::io::Cursor::new(bytes),
            mt,
            &a.target,
            &ApplyOptions::default(),
        )
        .unwrap();
        assert_eq!(
            stats.diff_id,
            Digest::from_bytes(&plain),
            "diff id for {mt:?}"
        );
        assert_eq!(
            fs::read(a.target.join("bin/tool")).unwrap().len(),
            1_000_000
        );
        assert_eq!(fs::read(a.target.join("README")).unwrap(), b"hi");
    }
}

#[test]
fn accepts_archives_without_footer() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.dir("a/", 0o755).file("a/b", b"no footer follows");
    let bytes = l.finish_without_footer();
    let stats = apply_layer(&bytes[..], &a.target).unwrap();
    assert_eq!(stats.diff_id, Digest::from_bytes(&bytes));
    assert_eq!(
        fs::read(a.target.join("a/b")).unwrap(),
        b"no footer follows"
    );
}

#[test]
fn truncated_archive_is_an_error() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let bytes = sample_layer();
    let err = apply_layer(&bytes[..5000], &a.target).unwrap_err();
    assert!(
        matches!(err, LayerError::Entry { .. } | LayerError::Tar { .. }),
        "{err}"
    );
}

#[test]
fn missing_target_is_reported() {
    let a = Arena::new();
    let err = apply_layer(&sample_layer()[..], &a.target.join("nope")).unwrap_err();
    assert!(matches!(err, LayerError::OpenTarget { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}
