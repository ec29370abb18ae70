//! Push against a real `docker-registry`: monolithic and chunked uploads,
//! existence checks, cross-repository mounts, indexes with attestations.

// Integration tests are a test crate of their own; the lint targets unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::images::{build_index, three_layer_image};
use common::{Proxy, Registry, RegistryAuth, unique_repo};
use tokio::sync::mpsc;
use wharf_image::content::ContentStore;
use wharf_registry::progress::{Phase, ProgressEvent, short_id};
use wharf_registry::push::{PushError, PushOptions, UploadMode, push_image};
use wharf_registry::retry::RetryPolicy;
use wharf_registry::{Anonymous, RegistryClient, RegistryOptions};

fn options() -> RegistryOptions {
    RegistryOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        },
        ..RegistryOptions::default()
    }
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

fn phases_of(events: &[ProgressEvent], id: &str) -> Vec<Phase> {
    events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Layer { id: i, phase } if i == id => Some(phase.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_monolithic_chunked_existing_and_mounted() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path().join("content"))?;
    let img = three_layer_image(&store, "amd64", 1, false);
    let client = RegistryClient::new(&proxy.host(), &options(), Arc::new(Anonymous))?;

    // 1. Monolithic push.
    let repo_a = unique_repo("push-a");
    let (tx, rx) = mpsc::channel(256);
    let events = collect(rx);
    let pushed = push_image(
        &client,
        &store,
        &repo_a,
        "v1",
        &img.manifest,
        &PushOptions::default(),
        Some(tx),
    )
    .await?;
    let events = events.await?;
    assert_eq!(pushed.digest, img.manifest);
    assert_eq!(pushed.media_type, img.media_type);
    let m = client.get_manifest(&repo_a, "v1").await?;
    assert_eq!(m.bytes.as_ref(), img.manifest_bytes.as_slice());
    for l in &img.layers {
        let mut b = client
            .get_blob(&repo_a, &l.desc.digest.to_string(), 0)
            .await?;
        let mut got = Vec::new();
        while let Some(c) = b.chunk().await? {
            got.extend_from_slice(&c);
        }
        assert_eq!(got, l.compressed);
        let ph = phases_of(&events, &short_id(&l.desc.digest));
        assert_eq!(ph.first(), Some(&Phase::Preparing), "{ph:?}");
        assert_eq!(ph.last(), Some(&Phase::Pushed), "{ph:?}");
    }
    assert!(events.contains(&ProgressEvent::Digest(img.manifest.clone())));
    let log = proxy.requests();
    let count = |m: &str, needle: &str| {
        log.iter()
            .filter(|r| r.method == m && r.path.contains(needle))
            .count()
    };
    assert_eq!(
        count("HEAD", "/blobs/sha256:"),
        4,
        "3 layers and the config"
    );
    assert_eq!(count("POST", "/blobs/uploads/"), 4);
    assert_eq!(count("PUT", "/blobs/uploads/"), 4);
    assert_eq!(count("PATCH", ""), 0, "monolithic uploads do not PATCH");
    let put = log
        .iter()
        .find(|r| r.method == "PUT" && r.path.ends_with("/manifests/v1"))
        .unwrap();
    assert_eq!(put.header("content-type"), Some(img.media_type.as_str()));
    assert_eq!(put.status, 201);

    // 2. Chunked push to another repository.
    proxy.clear_log();
    let repo_b = unique_repo("push-b");
    let chunked = PushOptions {
        upload: UploadMode::Chunked {
            chunk_size: 64 * 1024,
        },
        ..PushOptions::default()
    };
    push_image(
        &client,
        &store,
        &repo_b,
        "v1",
        &img.manifest,
        &chunked,
        None,
    )
    .await?;
    let log = proxy.requests();
    let patches: Vec<_> = log.iter().filter(|r| r.method == "PATCH").collect();
    let expected_patches: u64 = img
        .layers
        .iter()
        .map(|l| l.desc.size.div_ceil(64 * 1024))
        .sum::<u64>()
        + 1;
    assert_eq!(
        patches.len() as u64,
        expected_patches,
        "one PATCH per 64 KiB chunk (config: one)"
    );
    assert!(patches.iter().all(|p| p.status == 202));
    assert!(
        patches
            .iter()
            .any(|p| p.header("content-range") == Some("65536-131071"))
    );
    assert_eq!(
        client.get_manifest(&repo_b, "v1").await?.bytes.as_ref(),
        img.manifest_bytes.as_slice()
    );

    // 3. Pushing again: every blob already exists, nothing is uploaded.
    proxy.clear_log();
    let (tx, rx) = mpsc::channel(256);
    let events = collect(rx);
    push_image(
        &client,
        &store,
        &repo_a,
        "v2",
        &img.manifest,
        &PushOptions::default(),
        Some(tx),
    )
    .await?;
    let events = events.await?;
    assert_eq!(
        proxy
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        0
    );
    for l in &img.layers {
        assert_eq!(
            phases_of(&events, &short_id(&l.desc.digest)).last(),
            Some(&Phase::LayerAlreadyExists)
        );
    }

    // 4. Cross-repository mount from repo A.
    proxy.clear_log();
    let repo_c = unique_repo("push-c");
    let mut sources = HashMap::new();
    for l in &img.layers {
        sources.insert(l.desc.digest.clone(), vec![repo_a.clone()]);
    }
    let mounting = PushOptions {
        mount_sources: sources,
        ..PushOptions::default()
    };
    let (tx, rx) = mpsc::channel(256);
    let events = collect(rx);
    push_image(
        &client,
        &store,
        &repo_c,
        "v1",
        &img.manifest,
        &mounting,
        Some(tx),
    )
    .await?;
    let events = events.await?;
    let log = proxy.requests();
    for l in &img.layers {
        let needle = format!(
            "/v2/{repo_c}/blobs/uploads/?mount={}&from={repo_a}",
            l.desc.digest
        );
        let mount = log
            .iter()
            .find(|r| r.method == "POST" && r.path == needle)
            .expect("mount request");
        assert_eq!(mount.status, 201);
        assert_eq!(
            phases_of(&events, &short_id(&l.desc.digest)).last(),
            Some(&Phase::Mounted {
                from: repo_a.clone()
            })
        );
    }
    // Only the config was uploaded.
    assert_eq!(
        log.iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/"))
            .count(),
        1
    );
    assert_eq!(
        client.get_manifest(&repo_c, "v1").await?.bytes.as_ref(),
        img.manifest_bytes.as_slice()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_index_with_platforms_and_attestation() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path().join("content"))?;
    let amd = three_layer_image(&store, "amd64", 10, false);
    let arm = three_layer_image(&store, "arm64", 11, false);
    let (index, index_bytes, mt) =
        build_index(&store, &[(&amd, "amd64"), (&arm, "arm64")], true, false);
    let client = RegistryClient::new(&reg.host(), &options(), Arc::new(Anonymous))?;
    let repo = unique_repo("push-index");
    let pushed = push_image(
        &client,
        &store,
        &repo,
        "multi",
        &index,
        &PushOptions::default(),
        None,
    )
    .await?;
    assert_eq!(pushed.media_type, mt);
    let m = client.get_manifest(&repo, "multi").await?;
    assert_eq!(m.bytes.as_ref(), index_bytes.as_slice());
    assert_eq!(m.media_type.as_deref(), Some(mt.as_str()));
    for img in [&amd, &arm] {
        let child = client
            .get_manifest(&repo, &img.manifest.to_string())
            .await?;
        assert_eq!(child.bytes.as_ref(), img.manifest_bytes.as_slice());
    }

    // A manifest list with Docker media types goes up the same way.
    let d1 = three_layer_image(&store, "amd64", 12, true);
    let d2 = three_layer_image(&store, "arm64", 13, true);
    let (list, list_bytes, list_mt) =
        build_index(&store, &[(&d1, "amd64"), (&d2, "arm64")], false, true);
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
    let m = client.get_manifest(&repo, "list").await?;
    assert_eq!(m.bytes.as_ref(), list_bytes.as_slice());
    assert_eq!(m.media_type.as_deref(), Some(list_mt.as_str()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_of_missing_content_fails_before_tagging() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let dir = tempfile::tempdir()?;
    let store = ContentStore::open(dir.path().join("content"))?;
    let img = three_layer_image(&store, "amd64", 20, false);
    store.delete(&img.layers[1].desc.digest)?;
    let client = RegistryClient::new(&reg.host(), &options(), Arc::new(Anonymous))?;
    let repo = unique_repo("push-missing");
    let e = push_image(
        &client,
        &store,
        &repo,
        "v1",
        &img.manifest,
        &PushOptions::default(),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, PushError::Content { digest, .. } if *digest == img.layers[1].desc.digest),
        "{e:?}"
    );
    assert!(
        client
            .get_manifest(&repo, "v1")
            .await
            .unwrap_err()
            .is_not_found()
    );
    Ok(())
}
