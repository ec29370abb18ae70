//! Pull against a real `docker-registry`: fixture images pushed with our push
//! code and pulled back into a fresh store (content, snapshots, image store);
//! indexes; and faults injected by a proxy (500s, a connection cut mid-blob,
//! a registry ignoring Range, a corrupted blob, a config lying about diff IDs).
//! Root: layers are applied with their ownership.

// Integration tests are a test crate of their own; the lint targets unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::images::{BuiltImage, build_index, three_layer_image};
use common::{Proxy, Registry, RegistryAuth, TokenServer, unique_repo};
use tokio::sync::mpsc;
use wharf_image::content::{ContentError, ContentStore, Ingest};
use wharf_image::manifest::Platform;
use wharf_image::snapshot::{CopySnapshotter, Snapshotter, chain_ids};
use wharf_image::{Digest, Reference};
use wharf_registry::image_store::ImageStore;
use wharf_registry::progress::{Phase, ProgressEvent, short_id};
use wharf_registry::pull::{PullError, PullOptions, PullTarget, pull_image};
use wharf_registry::push::{PushOptions, push_image};
use wharf_registry::retry::RetryPolicy;
use wharf_registry::{Anonymous, RegistryClient, RegistryOptions};

fn options() -> RegistryOptions {
    RegistryOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        },
        ..RegistryOptions::default()
    }
}

/// A fresh pull destination in a temp dir.
struct Target {
    _dir: tempfile::TempDir,
    root: PathBuf,
    target: PullTarget,
}

impl Target {
    fn new() -> Target {
        wharf_testkit::require_root();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let snapshots: Arc<dyn Snapshotter> =
            Arc::new(CopySnapshotter::open(&root.join("snapshots")).unwrap());
        Target {
            target: PullTarget {
                content: ContentStore::open(root.join("content")).unwrap(),
                snapshots,
                images: ImageStore::open(root.join("images")),
            },
            root,
            _dir: dir,
        }
    }

    fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.root
            .join("snapshots/snapshots")
            .join(chain.hex())
            .join("diff")
    }

    /// Asserts each layer's unpacked files, and the whiteout of the middle layer.
    fn assert_unpacked(&self, img: &BuiltImage) {
        let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        for c in &chains {
            assert!(self.target.snapshots.exists(c), "snapshot {c} missing");
        }
        let base = self.diff_dir(&chains[0]);
        assert_eq!(
            std::fs::read(base.join("bin/big")).unwrap(),
            img.tree.get("bin/big").cloned().flatten().unwrap()
        );
        let mid = self.diff_dir(&chains[1]);
        assert_eq!(
            std::fs::read(mid.join("usr/data")).unwrap(),
            img.tree.get("usr/data").cloned().flatten().unwrap()
        );
        // `.wh.gone` became an overlay whiteout: a 0/0 character device.
        let wh = std::fs::symlink_metadata(mid.join("bin/gone")).unwrap();
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "{wh:?}");
        let top = self.diff_dir(&chains[2]);
        assert_eq!(
            std::fs::read(top.join("app/arch")).unwrap(),
            img.tree.get("app/arch").cloned().flatten().unwrap()
        );
    }

    fn blob_exists(&self, d: &Digest) -> bool {
        self.target.content.exists(d)
    }
}

/// Builds `img` in a scratch store and pushes it to `host/repo:tag`.
async fn publish(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    build: impl FnOnce(&ContentStore) -> (Digest, BuiltImage),
) -> anyhow::Result<BuiltImage> {
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path())?;
    let (top, img) = build(&store);
    push_image(
        client,
        &store,
        repo,
        tag,
        &top,
        &PushOptions::default(),
        None,
    )
    .await?;
    Ok(img)
}

fn collect(mut rx: mpsc::Receiver<ProgressEvent>) -> tokio::task::JoinHandle<Vec<ProgressEvent>> {
    tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some(e) = rx.recv().await {
            v.push(e);
        }
        v
    })
}

fn phases(events: &[ProgressEvent], d: &Digest) -> Vec<Phase> {
    let id = short_id(d);
    events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Layer { id: i, phase } if *i == id => Some(phase.clone()),
            _ => None,
        })
        .collect()
}

fn client_for(host: &str) -> RegistryClient {
    RegistryClient::new(host, &options(), Arc::new(Anonymous)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_roundtrip_gzip_zstd_plain_then_already_exists() -> anyhow::Result<()> {
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let client = client_for(&reg.host());
    let repo = unique_repo("pull-rt");
    let img = publish(&client, &repo, "v1", |s| {
        let i = three_layer_image(s, "amd64", 100, false);
        (i.manifest.clone(), i)
    })
    .await?;
    let reference = Reference::parse(&format!("{}/{repo}:v1", reg.host()))?;

    let (tx, rx) = mpsc::channel(1024);
    let events = collect(rx);
    let pulled = pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        Some(tx),
    )
    .await?;
    let events = events.await?;
    assert!(pulled.downloaded);
    assert_eq!(pulled.digest, img.manifest);
    assert_eq!(pulled.record.id, img.config);
    assert_eq!(pulled.record.manifest, img.manifest);
    assert_eq!(pulled.record.index, None);
    t.assert_unpacked(&img);
    for l in &img.layers {
        assert!(t.blob_exists(&l.desc.digest));
        let ph = phases(&events, &l.desc.digest);
        assert_eq!(ph.first(), Some(&Phase::Waiting), "{ph:?}");
        assert_eq!(ph.last(), Some(&Phase::PullComplete), "{ph:?}");
        assert!(ph.contains(&Phase::DownloadComplete), "{ph:?}");
    }
    assert!(events.contains(&ProgressEvent::Digest(img.manifest.clone())));
    assert!(events.contains(&ProgressEvent::Status(format!(
        "Status: Downloaded newer image for {}",
        reference.familiar_string()
    ))));
    let rec = t
        .target
        .images
        .resolve(&reference.to_string())?
        .expect("recorded");
    assert_eq!(rec.id, img.config);
    assert_eq!(rec.sources, vec![format!("{}/{repo}", reg.host())]);

    // Push the pulled image to another repository: the layers are mounted
    // from where they were pulled, only the config is uploaded.
    let other = unique_repo("pull-rt-copy");
    let mounts = PushOptions {
        mount_sources: t.target.images.mount_sources(&reg.host())?,
        ..PushOptions::default()
    };
    let (tx, rx) = mpsc::channel(1024);
    let events = collect(rx);
    push_image(
        &client,
        &t.target.content,
        &other,
        "copy",
        &rec.manifest,
        &mounts,
        Some(tx),
    )
    .await?;
    let events = events.await?;
    for l in &img.layers {
        assert_eq!(
            phases(&events, &l.desc.digest).last(),
            Some(&Phase::Mounted { from: repo.clone() })
        );
    }
    assert_eq!(
        client.get_manifest(&other, "copy").await?.bytes.as_ref(),
        img.manifest_bytes.as_slice()
    );

    // Again: every layer already exists, nothing is downloaded.
    let (tx, rx) = mpsc::channel(1024);
    let events = collect(rx);
    let again = pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        Some(tx),
    )
    .await?;
    let events = events.await?;
    assert!(!again.downloaded);
    for l in &img.layers {
        assert_eq!(
            phases(&events, &l.desc.digest).last(),
            Some(&Phase::AlreadyExists)
        );
    }

    // By digest too; the record gains nothing new but resolves the same image.
    let by_digest = Reference::parse(&format!("{}/{repo}@{}", reg.host(), img.manifest))?;
    let p = pull_image(
        &client,
        &t.target,
        &by_digest,
        &PullOptions::default(),
        None,
    )
    .await?;
    assert_eq!(p.record.id, img.config);
    assert!(t.target.images.resolve(&by_digest.to_string())?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_selects_platform_and_skips_attestations() -> anyhow::Result<()> {
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let client = client_for(&reg.host());
    let repo = unique_repo("pull-index");
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path())?;
    let amd = three_layer_image(&store, "amd64", 200, false);
    let arm = three_layer_image(&store, "arm64", 201, false);
    // The attestation comes first in the index here, to make sure it is skipped.
    let (index, _, _) = build_index(&store, &[(&arm, "arm64"), (&amd, "amd64")], true, false);
    push_image(
        &client,
        &store,
        &repo,
        "multi",
        &index,
        &PushOptions::default(),
        None,
    )
    .await?;
    let d1 = three_layer_image(&store, "amd64", 202, true);
    let d2 = three_layer_image(&store, "arm64", 203, true);
    let (list, _, _) = build_index(&store, &[(&d1, "amd64"), (&d2, "arm64")], false, true);
    push_image(
        &client,
        &store,
        &repo,
        "list",
        &list,
        &PushOptions::default(),
        None,
    )
    .await?;

    let reference = Reference::parse(&format!("{}/{repo}:multi", reg.host()))?;
    let arm64 = PullOptions {
        platform: Platform::new("linux", "arm64", None),
        ..PullOptions::default()
    };
    let p = pull_image(&client, &t.target, &reference, &arm64, None).await?;
    assert_eq!(p.digest, index);
    assert_eq!(p.record.index, Some(index.clone()));
    assert_eq!(p.record.manifest, arm.manifest);
    assert_eq!(p.record.id, arm.config);
    t.assert_unpacked(&arm);

    let reference = Reference::parse(&format!("{}/{repo}:list", reg.host()))?;
    let amd64 = PullOptions {
        platform: Platform::new("linux", "amd64", None),
        ..PullOptions::default()
    };
    let p = pull_image(&client, &t.target, &reference, &amd64, None).await?;
    assert_eq!(p.record.manifest, d1.manifest);
    t.assert_unpacked(&d1);

    // No entry for the platform: a clear error, nothing recorded.
    let s390x = PullOptions {
        platform: Platform::new("linux", "s390x", None),
        ..PullOptions::default()
    };
    let e = pull_image(&client, &t.target, &reference, &s390x, None)
        .await
        .unwrap_err();
    let msg = format!("{:#}", anyhow::Error::from(e));
    assert!(
        msg.contains("no matching manifest for linux/s390x"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_survives_500s_and_a_cut_connection() -> anyhow::Result<()> {
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let client = client_for(&proxy.host());
    let repo = unique_repo("pull-faults");
    let img = publish(&client, &repo, "v1", |s| {
        let i = three_layer_image(s, "amd64", 300, false);
        (i.manifest.clone(), i)
    })
    .await?;
    let big = &img.layers[0].desc.digest;
    assert!(img.layers[0].desc.size > 200_000);
    proxy.clear_log();
    proxy.fail_next(2, 500, None);
    *proxy.behaviour.cut_blob.lock().unwrap() = Some((big.to_string(), 100_000));

    let reference = Reference::parse(&format!("{}/{repo}:v1", proxy.host()))?;
    let p = pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    assert_eq!(p.record.id, img.config);
    t.assert_unpacked(&img);
    let log = proxy.requests();
    assert_eq!(log.iter().filter(|r| r.status == 500).count(), 2);
    let gets: Vec<_> = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&big.to_string()))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].header("range"), None);
    assert_eq!(
        gets[1].header("range"),
        Some("bytes=100000-"),
        "resumed from the bytes received"
    );
    assert_eq!(gets[1].status, 206);
    Ok(())
}

/// Leaves `n` bytes of `blob` as an unfinished ingest, as a killed pull would.
fn partial_ingest(store: &ContentStore, digest: &Digest, size: u64, bytes: &[u8]) {
    match store.writer(digest, Some(size)).unwrap() {
        Ingest::New(mut w) => {
            w.write_all(bytes).unwrap();
            w.flush().unwrap();
            drop(w);
        }
        Ingest::Exists(_) => panic!("blob unexpectedly stored"),
    }
    assert_eq!(store.ingests().unwrap()[0].offset, bytes.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_resumes_a_partial_ingest_and_restarts_when_range_is_ignored() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let client = client_for(&proxy.host());
    let repo = unique_repo("pull-resume");
    let img = publish(&client, &repo, "v1", |s| {
        let i = three_layer_image(s, "amd64", 400, false);
        (i.manifest.clone(), i)
    })
    .await?;
    let layer = &img.layers[0];
    let reference = Reference::parse(&format!("{}/{repo}:v1", proxy.host()))?;

    // 1. Partial bytes on disk: the pull asks only for the rest.
    let t = Target::new();
    partial_ingest(
        &t.target.content,
        &layer.desc.digest,
        layer.desc.size,
        &layer.compressed[..50_000],
    );
    proxy.clear_log();
    pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    t.assert_unpacked(&img);
    let get = proxy
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path.ends_with(&layer.desc.digest.to_string()))
        .unwrap();
    assert_eq!(get.header("range"), Some("bytes=50000-"));
    assert_eq!(get.status, 206);
    assert!(t.target.content.ingests()?.is_empty());

    // 1b. The whole blob on disk, uncommitted (a pull killed before its
    // commit): no request for it at all (a Range would be unsatisfiable).
    let t = Target::new();
    partial_ingest(
        &t.target.content,
        &layer.desc.digest,
        layer.desc.size,
        &layer.compressed,
    );
    proxy.clear_log();
    pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    t.assert_unpacked(&img);
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with(&layer.desc.digest.to_string())),
        "a fully stored blob was requested again"
    );
    assert!(t.target.content.ingests()?.is_empty());

    // 2. Same, but the registry ignores Range: the ingest restarts from zero.
    let t = Target::new();
    let mut garbage = layer.compressed[..50_000].to_vec();
    garbage[10] ^= 0xff; // would fail the digest if it were kept
    partial_ingest(
        &t.target.content,
        &layer.desc.digest,
        layer.desc.size,
        &garbage,
    );
    proxy.clear_log();
    proxy
        .behaviour
        .ignore_range
        .store(true, std::sync::atomic::Ordering::SeqCst);
    pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    t.assert_unpacked(&img);
    let get = proxy
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path.ends_with(&layer.desc.digest.to_string()))
        .unwrap();
    assert_eq!(get.header("range"), Some("bytes=50000-"));
    assert_eq!(get.status, 200, "the registry answered with the whole blob");
    Ok(())
}

fn leftover_tmp_dirs(root: &Path) -> Vec<String> {
    let dir = root.join("snapshots/snapshots");
    std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_blob_fails_and_commits_nothing() -> anyhow::Result<()> {
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let client = client_for(&proxy.host());
    let repo = unique_repo("pull-corrupt");
    let img = publish(&client, &repo, "v1", |s| {
        let i = three_layer_image(s, "amd64", 500, false);
        (i.manifest.clone(), i)
    })
    .await?;
    let bad = img.layers[1].desc.digest.clone();
    *proxy.behaviour.corrupt_blob.lock().unwrap() = Some(bad.to_string());
    let reference = Reference::parse(&format!("{}/{repo}:v1", proxy.host()))?;
    let e = pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, PullError::Content { digest, source: ContentError::DigestMismatch { .. } } if *digest == bad),
        "{e:?}"
    );
    assert!(format!("{:#}", anyhow::Error::from(e)).contains("does not match its digest"));
    assert!(
        t.target.images.resolve(&reference.to_string())?.is_none(),
        "no image recorded"
    );
    assert!(t.target.images.list()?.is_empty());
    assert!(!t.blob_exists(&bad), "corrupt blob not stored");
    assert!(
        t.target.content.ingests()?.is_empty(),
        "corrupt partial data discarded"
    );
    let chains = chain_ids(
        &img.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    );
    assert!(!t.target.snapshots.exists(&chains[1]));
    assert!(!t.target.snapshots.exists(&chains[2]));
    assert!(
        leftover_tmp_dirs(&t.root).is_empty(),
        "{:?}",
        leftover_tmp_dirs(&t.root)
    );

    // Once the registry serves good bytes again, the next pull completes.
    *proxy.behaviour.corrupt_blob.lock().unwrap() = None;
    pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    t.assert_unpacked(&img);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_with_wrong_diff_id_is_refused() -> anyhow::Result<()> {
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let client = client_for(&reg.host());
    let repo = unique_repo("pull-diffid");
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path())?;
    let img = three_layer_image(&store, "amd64", 600, false);
    // Rewrite the config with a wrong diff ID for the top layer.
    let mut config: serde_json::Value = serde_json::from_slice(&store.read_bytes(&img.config)?)?;
    config["rootfs"]["diff_ids"][2] =
        serde_json::Value::String(Digest::from_bytes(b"lie").to_string());
    let config_bytes = serde_json::to_vec(&config)?;
    let config_d = store.write_bytes(&config_bytes)?;
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest_bytes)?;
    manifest["config"]["digest"] = serde_json::Value::String(config_d.to_string());
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_d = store.write_bytes(&serde_json::to_vec(&manifest)?)?;
    push_image(
        &client,
        &store,
        &repo,
        "v1",
        &manifest_d,
        &PushOptions::default(),
        None,
    )
    .await?;

    let reference = Reference::parse(&format!("{}/{repo}:v1", reg.host()))?;
    let e = pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, PullError::DiffIdMismatch { digest, .. } if *digest == img.layers[2].desc.digest),
        "{e:?}"
    );
    assert!(t.target.images.list()?.is_empty());
    assert!(leftover_tmp_dirs(&t.root).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_pull_through_bearer_auth() -> anyhow::Result<()> {
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let tokens = TokenServer::start("dora", "explorer", 60).await?;
    let repo = unique_repo("pull-bearer");
    let img = publish(&client_for(&proxy.host()), &repo, "v1", |s| {
        let i = three_layer_image(s, "amd64", 700, false);
        (i.manifest.clone(), i)
    })
    .await?;
    tokens.protect(&proxy);
    let client = client_for(&proxy.host());
    let reference = Reference::parse(&format!("{}/{repo}:v1", proxy.host()))?;
    let p = pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    assert_eq!(p.record.id, img.config);
    t.assert_unpacked(&img);
    let reqs = tokens.requests();
    assert_eq!(
        reqs.len(),
        1,
        "one pull token for the whole image: {reqs:?}"
    );
    assert_eq!(reqs[0].scopes, vec![format!("repository:{repo}:pull")]);
    assert!(reqs[0].user.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_image_serves_image_operations() -> anyhow::Result<()> {
    use wharf_image::ops::{Images, RemoveOptions};
    let t = Target::new();
    let reg = Registry::start(RegistryAuth::None).await?;
    let client = client_for(&reg.host());
    let repo = unique_repo("pull-ops");
    let img = publish(&client, &repo, "v1", |s| {
        let i = three_layer_image(s, "amd64", 300, false);
        (i.manifest.clone(), i)
    })
    .await?;
    let reference = Reference::parse(&format!("{}/{repo}:v1", reg.host()))?;
    pull_image(
        &client,
        &t.target,
        &reference,
        &PullOptions::default(),
        None,
    )
    .await?;
    let images = Images::new(
        t.target.content.clone(),
        t.target.snapshots.clone(),
        t.target.images.clone(),
    );
    let familiar = reference.familiar_string();
    let ins = images.inspect(&familiar)?;
    assert_eq!(ins.id, img.config.to_string());
    assert_eq!(ins.repo_tags, vec![familiar.clone()]);
    assert_eq!(
        ins.repo_digests,
        vec![format!("{}/{repo}@{}", reg.host(), img.manifest)]
    );
    assert_eq!(
        images
            .resolve(&format!("{}/{repo}@{}", reg.host(), img.manifest))?
            .id,
        img.config
    );
    // Save decompresses the gzip and zstd layers back to their diff IDs;
    // a fresh store loads the archive to the same image.
    let mut archive = Vec::new();
    images.save(std::slice::from_ref(&familiar), &mut archive)?;
    let other = Target::new();
    let loaded = Images::new(
        other.target.content.clone(),
        other.target.snapshots.clone(),
        other.target.images.clone(),
    );
    let report = loaded.load(&archive[..])?;
    assert_eq!(
        report.images,
        vec![(img.config.clone(), vec![familiar.clone()])]
    );
    other.assert_unpacked(&img);
    // Removing by name deletes the image, its layers and its blobs.
    let out = images.remove(&familiar, RemoveOptions::default())?;
    assert_eq!(out.len(), 2 + 1 + 3, "{out:?}");
    assert!(t.target.images.contents()?.images.is_empty());
    for l in &img.layers {
        assert!(!t.blob_exists(&l.desc.digest));
    }
    Ok(())
}
