//! Hostile layers: every way out of the target must stay inside it or fail
//! with a clear error, and `outside/` (beside the target) must not change.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

mod common;

use std::fs;

use common::{Arena, LayerBuilder, tree};
use wharf_image::layer::{LayerError, apply_layer};

fn apply(a: &Arena, l: LayerBuilder) -> Result<wharf_image::layer::ApplyStats, LayerError> {
    apply_layer(&l.finish()[..], &a.target)
}

fn assert_escape(r: Result<wharf_image::layer::ApplyStats, LayerError>, entry: &str) {
    match r {
        Err(LayerError::Escape { entry: e }) => assert_eq!(e, entry),
        other => panic!("expected an escape error for {entry:?}, got {other:?}"),
    }
}

#[test]
fn dotdot_names_are_refused() {
    wharf_testkit::require_root();
    for name in [
        "../outside/pwned",
        "a/../../outside/pwned",
        "/../outside/pwned",
        "./../../x",
    ] {
        let a = Arena::new();
        let mut l = LayerBuilder::new();
        l.file(name, b"pwned");
        let err = apply(&a, l);
        assert_escape(err, name);
        a.assert_outside_untouched();
    }
}

#[test]
fn absolute_names_land_inside() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let abs_outside = format!("{}/pwned", a.outside.display());
    let mut l = LayerBuilder::new();
    l.file("/etc/abs", b"1").file(&abs_outside, b"2");
    apply(&a, l).unwrap();
    assert_eq!(fs::read(a.target.join("etc/abs")).unwrap(), b"1");
    assert_eq!(
        fs::read(a.target.join(abs_outside.trim_start_matches('/'))).unwrap(),
        b"2"
    );
    a.assert_outside_untouched();
}

#[test]
fn writes_through_symlinks_stay_inside() {
    wharf_testkit::require_root();
    // (symlink name, target) then a file written through it
    let cases: [fn(&Arena) -> String; 4] = [
        |_| "../outside".to_owned(),
        |a| a.outside.display().to_string(),
        |_| "/".to_owned(),
        |_| "../../../../../../../../..".to_owned(),
    ];
    for case in cases {
        let a = Arena::new();
        let link = "l";
        let target = case(&a);
        let mut l = LayerBuilder::new();
        l.symlink(link, &target)
            .file(&format!("{link}/pwned"), b"pwned");
        let r = apply(&a, l);
        a.assert_outside_untouched();
        // Either the write is rejected (dangling inside the root) or it lands inside.
        match r {
            Ok(_) => assert!(
                tree(&a.target).iter().any(|p| p.ends_with("pwned")),
                "{target}: write vanished: {:?}",
                tree(&a.target)
            ),
            Err(LayerError::Entry { entry, .. }) => assert_eq!(entry, format!("{link}/pwned")),
            Err(e) => panic!("{target}: unexpected error {e}"),
        }
    }
}

#[test]
fn symlink_chains_resolve_inside_the_root() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let outside_rel = a.outside.display().to_string();
    let mut l = LayerBuilder::new();
    l.symlink("a", "b")
        .symlink("b", "c/../../../../..")
        .dir("c/", 0o755)
        .symlink("up", "../../../../../../..")
        .file(&format!("a{outside_rel}/pwned"), b"chain")
        .file("up/escaped", b"up");
    apply(&a, l).unwrap();
    a.assert_outside_untouched();
    assert_eq!(
        fs::read(
            a.target
                .join(outside_rel.trim_start_matches('/'))
                .join("pwned")
        )
        .unwrap(),
        b"chain"
    );
    assert_eq!(fs::read(a.target.join("escaped")).unwrap(), b"up");
}

#[test]
fn hardlinks_cannot_reach_outside() {
    wharf_testkit::require_root();
    // lexical escapes are refused outright
    for link in ["../outside/secret", "x/../../outside/secret"] {
        let a = Arena::new();
        let mut l = LayerBuilder::new();
        l.hardlink("h", link);
        assert_escape(apply(&a, l), "h");
        a.assert_outside_untouched();
    }
    // through symlinks, the target resolves inside the root (and is missing)
    let a = Arena::new();
    let abs = a.outside.display().to_string();
    let mut l = LayerBuilder::new();
    l.symlink("s", "../outside")
        .symlink("t", &abs)
        .hardlink("h1", "s/secret");
    let r = apply(&a, l);
    assert!(
        matches!(r, Err(LayerError::Entry { ref entry, .. }) if entry == "h1"),
        "{r:?}"
    );
    a.assert_outside_untouched();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.symlink("t", &abs).hardlink("h2", "t/secret");
    let r = apply(&a, l);
    assert!(
        matches!(r, Err(LayerError::Entry { ref entry, .. }) if entry == "h2"),
        "{r:?}"
    );
    a.assert_outside_untouched();
    // a hardlink to a symlink links the symlink, never what it points to
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.symlink("s", &format!("{abs}/secret")).hardlink("h3", "s");
    apply(&a, l).unwrap();
    assert!(
        fs::symlink_metadata(a.target.join("h3"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    a.assert_outside_untouched();
}

#[test]
fn devices_and_fifos_are_replaced_not_written_through() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.device("zero", tar::EntryType::Char, 1, 5)
        .file("zero", b"file")
        .raw("pipe", tar::EntryType::Fifo, 0o600, 0, 0, "", b"")
        .file("pipe", b"not blocked on the fifo");
    apply(&a, l).unwrap();
    assert_eq!(fs::read(a.target.join("zero")).unwrap(), b"file");
    assert_eq!(
        fs::read(a.target.join("pipe")).unwrap(),
        b"not blocked on the fifo"
    );
    a.assert_outside_untouched();
}

#[test]
fn whiteout_names_cannot_escape() {
    wharf_testkit::require_root();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.file("../outside/.wh.secret", b"");
    assert_escape(apply(&a, l), "../outside/.wh.secret");
    a.assert_outside_untouched();
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.symlink("o", "../outside").file("o/.wh.secret", b"");
    let _ = apply(&a, l); // may fail (dangling inside root) or whiteout inside
    a.assert_outside_untouched();
}

/// A PAX header announces a size different from the ustar header's, and the
/// PAX-sized data holds a complete smuggled tar entry. The parser must honour
/// the PAX size (tar >= 0.4.46): the smuggled entry is file data, not an entry.
#[test]
fn pax_and_ustar_size_desync_does_not_smuggle_entries() {
    wharf_testkit::require_root();
    let mut inner = LayerBuilder::new();
    inner.file("smuggled", b"evil");
    let mut smuggled = inner.finish();
    smuggled.truncate(1024); // one header + one data block, no footer
    let a = Arena::new();
    let mut l = LayerBuilder::new();
    l.pax(&[("size", smuggled.len().to_string().as_bytes())]);
    // ustar header says 0 bytes; the data that follows is 1024 bytes (PAX size)
    let mut bytes = {
        let mut tmp = l;
        tmp.raw("carrier", tar::EntryType::Regular, 0o644, 0, 0, "", b"");
        tmp.finish()
    };
    // splice the 1024 data bytes in after the carrier header (before the footer)
    let footer = bytes.split_off(bytes.len() - 1024);
    bytes.extend_from_slice(&smuggled);
    bytes.extend_from_slice(&footer);
    let r = apply_layer(&bytes[..], &a.target);
    a.assert_outside_untouched();
    assert!(
        !a.target.join("smuggled").exists(),
        "smuggled entry was unpacked: ustar size used instead of PAX size ({r:?})"
    );
    r.unwrap();
    assert_eq!(fs::read(a.target.join("carrier")).unwrap(), smuggled);
}
