//! Content store behaviour: resume, verification, locking, gc, versioning.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use wharf_image::Digest;
use wharf_image::content::{ContentError, ContentStore, Ingest, Writer};

fn new_writer(store: &ContentStore, d: &Digest, size: Option<u64>) -> Writer {
    match store.writer(d, size).unwrap() {
        Ingest::New(w) => *w,
        Ingest::Exists(_) => panic!("blob {d} unexpectedly exists"),
    }
}

#[test]
fn ingest_commit_read_list_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let data = b"hello blob".repeat(1000);
    let d = Digest::from_bytes(&data);
    let mut w = new_writer(&store, &d, Some(data.len() as u64));
    assert_eq!(w.offset(), 0);
    w.write_all(&data).unwrap();
    let info = w.commit().unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert!(tmp.path().join("blobs/sha256").join(d.hex()).is_file());
    assert!(!tmp.path().join("ingest").join(d.hex()).exists());
    let mut got = Vec::new();
    store.read(&d).unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(store.info(&d).unwrap().size, data.len() as u64);
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(matches!(store.writer(&d, None).unwrap(), Ingest::Exists(_)));
    store.delete(&d).unwrap();
    assert!(matches!(store.info(&d), Err(ContentError::NotFound { .. })));
    assert!(matches!(
        store.delete(&d),
        Err(ContentError::NotFound { .. })
    ));
}

#[test]
fn resumes_from_partial_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = Digest::from_bytes(&data);
    {
        let store = ContentStore::open(tmp.path()).unwrap();
        let mut w = new_writer(&store, &d, Some(data.len() as u64));
        w.write_all(&data[..123_456]).unwrap();
        // dropped without commit: an interrupted pull
    }
    let store = ContentStore::open(tmp.path()).unwrap();
    let st = store.ingests().unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].offset, 123_456);
    let mut w = new_writer(&store, &d, Some(data.len() as u64));
    assert_eq!(w.offset(), 123_456);
    w.write_all(&data[123_456..]).unwrap();
    w.commit().unwrap();
    assert_eq!(store.read_bytes(&d).unwrap(), data);
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn short_commit_keeps_partial_and_overflow_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let data = b"0123456789";
    let d = Digest::from_bytes(data);
    let mut w = new_writer(&store, &d, Some(10));
    w.write_all(&data[..4]).unwrap();
    assert!(matches!(
        w.commit(),
        Err(ContentError::SizeMismatch {
            expected: 10,
            actual: 4,
            ..
        })
    ));
    let mut w = new_writer(&store, &d, Some(10));
    assert_eq!(w.offset(), 4);
    assert!(w.write_all(b"0123456789").is_err());
    w.reset().unwrap();
    w.write_all(data).unwrap();
    w.commit().unwrap();
}

#[test]
fn digest_mismatch_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let d = Digest::from_bytes(b"the real content");
    let mut w = new_writer(&store, &d, None);
    w.write_all(b"something else!!").unwrap();
    let err = w.commit().unwrap_err();
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    assert!(!store.exists(&d));
    assert!(store.list().unwrap().is_empty());
    assert!(
        std::fs::read_dir(tmp.path().join("blobs/sha256"))
            .unwrap()
            .next()
            .is_none()
    );
    // the corrupt partial data is gone: a new writer starts from zero
    assert_eq!(new_writer(&store, &d, None).offset(), 0);
}

#[test]
fn concurrent_ingests_of_one_digest_share_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let data = b"shared layer bytes".repeat(5000);
    let d = Digest::from_bytes(&data);
    let barrier = Arc::new(Barrier::new(2));
    let (s1, d1, data1, b1) = (store.clone(), d.clone(), data.clone(), barrier.clone());
    let first = std::thread::spawn(move || {
        let mut w = new_writer(&s1, &d1, Some(data1.len() as u64));
        b1.wait();
        w.write_all(&data1[..1000]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        w.write_all(&data1[1000..]).unwrap();
        w.commit().unwrap();
    });
    barrier.wait();
    let start = Instant::now();
    let second = store.writer(&d, Some(data.len() as u64)).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "second writer did not wait"
    );
    assert!(
        matches!(second, Ingest::Exists(ref i) if i.size == data.len() as u64),
        "{second:?}"
    );
    first.join().unwrap();
    assert_eq!(store.read_bytes(&d).unwrap(), data);
}

#[test]
fn gc_removes_unreferenced_and_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let keep = store.write_bytes(b"keep me").unwrap();
    let drop_ = store.write_bytes(b"drop me").unwrap();
    let partial = Digest::from_bytes(b"never finished");
    new_writer(&store, &partial, None)
        .write_all(b"never")
        .unwrap();
    let referenced: HashSet<Digest> = [keep.clone()].into();
    // fresh ingests survive the default age
    let r = store.gc(&referenced).unwrap();
    assert_eq!(r.removed_blobs, vec![drop_.clone()]);
    assert!(r.removed_ingests.is_empty());
    // a locked ingest survives even when stale
    let w = new_writer(&store, &partial, None);
    let r = store.gc_with(&referenced, Duration::ZERO).unwrap();
    assert!(r.removed_ingests.is_empty());
    drop(w);
    let r = store.gc_with(&referenced, Duration::ZERO).unwrap();
    assert_eq!(r.removed_ingests, vec![partial]);
    assert!(store.exists(&keep));
    assert!(!store.exists(&drop_));
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn refuses_unknown_layout_version() {
    let tmp = tempfile::tempdir().unwrap();
    ContentStore::open(tmp.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("VERSION")).unwrap(),
        "1\n"
    );
    std::fs::write(tmp.path().join("VERSION"), "7\n").unwrap();
    let err = ContentStore::open(tmp.path()).unwrap_err();
    assert!(
        matches!(err, ContentError::UnsupportedVersion { ref found, .. } if found == "7"),
        "{err}"
    );
}
