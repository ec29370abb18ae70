//! The pulling process killed at random points: `wharf-pull` (the library's
//! `pull_image` in a child process) is SIGKILLed after random delays,
//! several times, into one data root. After each kill the stores must be
//! consistent: no image record without all its blobs and layers, no
//! temporary directory counted as a snapshot, every committed blob intact,
//! every committed layer on a committed parent. A final pull then
//! completes and its files are verified. Root: layers keep their owners.

// Integration tests are a test crate of their own; the lint targets unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::images::{BuiltImage, Comp, Entry, LayerSpec, build_image, noise};
use common::{Registry, RegistryAuth, unique_repo};
use wharf_image::Digest;
use wharf_image::content::ContentStore;
use wharf_image::digest::Hasher;
use wharf_image::image_store::ImageStore;
use wharf_image::snapshot::{DriverKind, SnapshotKind, chain_ids, open_snapshotter};
use wharf_registry::push::{PushOptions, push_image};
use wharf_registry::{Anonymous, RegistryClient, RegistryOptions};

const PULL_BIN: &str = env!("CARGO_BIN_EXE_wharf-pull");

/// Three gzip layers of a few MB each, many small files plus one big one,
/// so a pull lasts long enough to be interrupted anywhere.
fn big_image(store: &ContentStore, seed: u64) -> BuiltImage {
    let layer = |n: u64| {
        let mut entries = vec![
            Entry::Dir(Box::leak(format!("l{n}").into_boxed_str())),
            Entry::File(
                Box::leak(format!("l{n}/big").into_boxed_str()),
                noise(seed + n, 4 << 20),
            ),
        ];
        for i in 0..400 {
            entries.push(Entry::File(
                Box::leak(format!("l{n}/f{i}").into_boxed_str()),
                noise(seed * 1000 + n * 400 + i, 2048),
            ));
        }
        LayerSpec {
            comp: Comp::Gzip,
            entries,
        }
    };
    build_image(store, "amd64", &[layer(0), layer(1), layer(2)], true)
}

/// Small xorshift PRNG; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn sha256_file(p: &Path) -> Digest {
    let mut h = Hasher::new();
    h.update(&std::fs::read(p).unwrap());
    h.finish()
}

/// Checks the data root a killed pull left behind; returns whether the
/// image is recorded (complete).
fn assert_consistent(root: &Path, img: &BuiltImage) -> bool {
    // Opening the snapshotter reaps the dead process's temp dirs.
    let snaps = open_snapshotter(&root.join("snapshots"), Some(DriverKind::Overlay)).unwrap();
    let listed = snaps.list().unwrap();
    for s in &listed {
        assert!(
            !s.id.contains("tmp-"),
            "temp dir listed as a snapshot: {s:?}"
        );
        if s.kind == SnapshotKind::Layer
            && let Some(p) = &s.parent
        {
            assert!(
                snaps.exists(p),
                "layer {} committed without parent {p}",
                s.id
            );
        }
    }
    for area in ["snapshots", "containers"] {
        let left: Vec<String> = std::fs::read_dir(root.join("snapshots").join(area))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("tmp-"))
            .collect();
        assert!(left.is_empty(), "temp dirs of a dead pull remain: {left:?}");
    }
    // Every committed blob is whole.
    let content = ContentStore::open(root.join("content")).unwrap();
    for b in content.list().unwrap() {
        assert_eq!(sha256_file(&content.blob_path(&b.digest)), b.digest);
    }
    // A recorded image is complete.
    let store = ImageStore::open(root.join("images"));
    let contents = store.contents().unwrap();
    for (r, id) in &contents.refs {
        assert!(
            contents.images.contains_key(id),
            "{r} names a missing image"
        );
    }
    let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = chain_ids(&diff_ids);
    match contents.images.get(&img.config) {
        None => {
            assert!(contents.images.is_empty(), "{:?}", contents.images);
            false
        }
        Some(rec) => {
            assert!(content.exists(&rec.id) && content.exists(&rec.manifest));
            for l in &rec.layers {
                assert!(content.exists(l), "recorded image lacks blob {l}");
            }
            for c in &chains {
                assert!(snaps.exists(c), "recorded image lacks layer {c}");
            }
            true
        }
    }
}

fn pull_child(root: &Path, reference: &str) -> std::process::Child {
    Command::new(PULL_BIN)
        .args([
            "--root",
            root.to_str().unwrap(),
            "--driver",
            "overlay",
            reference,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pulls_leave_consistent_stores_and_the_next_completes() -> anyhow::Result<()> {
    wharf_testkit::require_root();
    let reg = Registry::start(RegistryAuth::None).await?;
    let client = RegistryClient::new(
        &reg.host(),
        &RegistryOptions::default(),
        std::sync::Arc::new(Anonymous),
    )?;
    let repo = unique_repo("pull-kill");
    let scratch = tempfile::tempdir()?;
    let store = ContentStore::open(scratch.path().join("build"))?;
    let img = big_image(&store, 7);
    push_image(
        &client,
        &store,
        &repo,
        "v1",
        &img.manifest,
        &PushOptions::default(),
        None,
    )
    .await?;
    let reference = format!("{}/{repo}:v1", reg.host());

    // One undisturbed pull measures how long a pull lasts here.
    let timing_root = scratch.path().join("timing");
    let t0 = Instant::now();
    let st = pull_child(&timing_root, &reference).wait()?;
    assert!(st.success(), "undisturbed pull failed: {st}");
    let full = t0.elapsed();
    assert!(assert_consistent(&timing_root, &img));

    let seed = SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos() as u64
        ^ std::process::id() as u64
        | 1;
    println!("kill schedule seed {seed}, full pull {full:?}");
    let mut rng = Rng(seed);
    let root = scratch.path().join("root");
    let mut killed_mid_pull = 0;
    for round in 0..10 {
        let mut child = pull_child(&root, &reference);
        let max = (u64::try_from(full.as_millis()).unwrap_or(1000) * 4 / 5).max(20);
        let delay = Duration::from_millis(5 + rng.next() % max);
        tokio::time::sleep(delay).await;
        let finished = child.try_wait()?.is_some();
        child.kill()?; // SIGKILL
        let st = child.wait()?;
        let complete = assert_consistent(&root, &img);
        println!(
            "round {round}: killed after {delay:?}, exited first: {finished} ({st}), image complete: {complete}"
        );
        if !complete {
            killed_mid_pull += 1;
        } else {
            // Start over so later kills land in a pull again.
            std::fs::remove_dir_all(&root)?;
        }
    }
    assert!(
        killed_mid_pull >= 3,
        "only {killed_mid_pull} kills landed mid-pull"
    );

    // The next pull completes from what the killed ones left, and verifies.
    let out = Command::new(PULL_BIN)
        .args([
            "--root",
            root.to_str().unwrap(),
            "--driver",
            "overlay",
            &reference,
        ])
        .output()?;
    assert!(
        out.status.success(),
        "final pull failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        assert_consistent(&root, &img),
        "final pull did not record the image"
    );
    let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
    for (n, c) in chain_ids(&diff_ids).iter().enumerate() {
        let diff = root.join("snapshots/snapshots").join(c.hex()).join("diff");
        let want = img.tree[&format!("l{n}/big")].clone().unwrap();
        assert_eq!(std::fs::read(diff.join(format!("l{n}/big")))?, want);
        assert_eq!(std::fs::read_dir(diff.join(format!("l{n}")))?.count(), 401);
    }
    Ok(())
}
