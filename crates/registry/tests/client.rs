//! The registry client and credential store against a real `docker-registry`
//! on loopback: no auth, htpasswd Basic auth, and a Bearer token flow (a test
//! token server plus a proxy that demands its tokens), retries, mirrors and
//! redirects.
// Integration tests are a test crate of their own; the lint targets unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Proxy, Registry, RegistryAuth, TokenServer, unique_repo};
use sha2::Digest as _;
use wharf_registry::auth::{self, AuthError, CredentialProvider, Credentials};
use wharf_registry::client::{MountOutcome, UploadBody};
use wharf_registry::retry::RetryPolicy;
use wharf_registry::{
    Anonymous, ClientError, CredentialStore, RegistryClient, RegistryOptions, StaticCredentials,
};

fn digest_of(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

fn fast_options() -> RegistryOptions {
    RegistryOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
        },
        ..RegistryOptions::default()
    }
}

/// Counts how often the client asked for credentials.
struct Counting {
    creds: Option<Credentials>,
    calls: AtomicUsize,
}

impl CredentialProvider for Counting {
    fn credentials(&self, _host: &str) -> Result<Option<Credentials>, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.creds.clone())
    }
}

fn client(host: &str, creds: Option<Credentials>) -> RegistryClient {
    let provider: Arc<dyn CredentialProvider> = match creds {
        Some(c) => Arc::new(StaticCredentials(c)),
        None => Arc::new(Anonymous),
    };
    RegistryClient::new(host, &fast_options(), provider).unwrap()
}

/// Uploads a blob monolithically; returns its digest.
async fn put_blob(c: &RegistryClient, repo: &str, data: &[u8]) -> anyhow::Result<String> {
    let d = digest_of(data);
    let s = c.start_upload(repo).await?;
    c.finish_upload(
        repo,
        s,
        &d,
        Some(UploadBody::Bytes(Bytes::copy_from_slice(data))),
    )
    .await?;
    Ok(d)
}

/// Uploads a config and a one-layer manifest under `tag`.
async fn put_image(
    c: &RegistryClient,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> anyhow::Result<(String, Bytes)> {
    let layer_d = put_blob(c, repo, layer).await?;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_d = put_blob(c, repo, config).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": layer.len()}],
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest)?);
    let got = c
        .put_manifest(
            repo,
            tag,
            "application/vnd.oci.image.manifest.v1+json",
            bytes.clone(),
        )
        .await?;
    assert_eq!(got.as_deref(), Some(digest_of(&bytes).as_str()));
    Ok((layer_d, bytes))
}

async fn read_blob(
    c: &RegistryClient,
    repo: &str,
    digest: &str,
    offset: u64,
) -> anyhow::Result<(u64, Vec<u8>)> {
    let mut b = c.get_blob(repo, digest, offset).await?;
    let mut out = Vec::new();
    while let Some(ch) = b.chunk().await? {
        out.extend_from_slice(&ch);
    }
    Ok((b.offset, out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_registry_roundtrip_without_asking_for_credentials() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let counting = Arc::new(Counting {
        creds: Some(Credentials::basic("x", "y")),
        calls: AtomicUsize::new(0),
    });
    let c = RegistryClient::new(&reg.host(), &fast_options(), counting.clone())?;

    // Loopback is insecure by docker's rule: HTTPS was tried, HTTP answered.
    let ping = c.ping().await?;
    assert_eq!(ping.base, format!("http://{}", reg.host()));
    assert!(ping.challenges.is_empty());

    let repo = unique_repo("plain");
    let layer = b"layer bytes 0123456789".repeat(100);
    let (layer_d, manifest) = put_image(&c, &repo, "v1", &layer).await?;

    let m = c.get_manifest(&repo, "v1").await?;
    assert_eq!(m.bytes, manifest);
    assert_eq!(
        m.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(m.digest, Some(digest_of(&manifest)));
    let by_digest = c.get_manifest(&repo, &digest_of(&manifest)).await?;
    assert_eq!(by_digest.bytes, manifest);

    assert_eq!(
        c.head_blob(&repo, &layer_d).await?,
        Some(layer.len() as u64)
    );
    assert_eq!(c.head_blob(&repo, &digest_of(b"absent")).await?, None);
    let (off, all) = read_blob(&c, &repo, &layer_d, 0).await?;
    assert_eq!((off, all.as_slice()), (0, layer.as_slice()));
    // Range requests resume in the middle.
    let (off, tail) = read_blob(&c, &repo, &layer_d, 1000).await?;
    assert_eq!((off, tail.as_slice()), (1000, &layer[1000..]));

    // Chunked upload: PATCH with Content-Range, then PUT.
    let big = (0..50_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    let d = digest_of(&big);
    let mut s = c.start_upload(&repo).await?;
    for part in big.chunks(16 * 1024) {
        s = c
            .upload_chunk(&repo, s, UploadBody::Bytes(Bytes::copy_from_slice(part)))
            .await?;
    }
    assert_eq!(s.offset, big.len() as u64);
    c.finish_upload(&repo, s, &d, None).await?;
    assert_eq!(read_blob(&c, &repo, &d, 0).await?.1, big);

    // Cross-repository mount.
    let other = unique_repo("plain-other");
    match c.mount_blob(&other, &d, &repo).await? {
        MountOutcome::Mounted => {}
        MountOutcome::Upload(_) => panic!("registry should mount a blob it has"),
    }
    assert_eq!(c.head_blob(&other, &d).await?, Some(big.len() as u64));
    // Mounting something that does not exist opens an upload instead.
    assert!(matches!(
        c.mount_blob(&other, &digest_of(b"nope"), &repo).await?,
        MountOutcome::Upload(_)
    ));

    // Unknown manifests are typed errors carrying the registry's code.
    let e = c.get_manifest(&repo, "nope").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        matches!(&e, ClientError::Status { code: Some(code), .. } if code == "MANIFEST_UNKNOWN"),
        "{e:?}"
    );

    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        0,
        "no challenge, no credential lookup"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth_and_login() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::Htpasswd {
        user: "alice".into(),
        pass: "wonderland".into(),
    })
    .await?;
    let repo = unique_repo("basic");

    // Anonymous and wrong credentials are refused with a clear error.
    let anon = client(&reg.host(), None);
    let ping = anon.ping().await?;
    assert_eq!(ping.challenges[0].realm(), Some("wharf-test-realm"));
    let e = anon.get_manifest(&repo, "latest").await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");
    let wrong = client(&reg.host(), Some(Credentials::basic("alice", "nope")));
    let e = wrong.start_upload(&repo).await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("unauthorized"), "{e}");

    // Right credentials: full push and pull.
    let good = client(&reg.host(), Some(Credentials::basic("alice", "wonderland")));
    let (_, manifest) = put_image(&good, &repo, "latest", b"basic layer").await?;
    assert_eq!(good.get_manifest(&repo, "latest").await?.bytes, manifest);

    // login validates before storing.
    let cfg = common::config_dir();
    let store = CredentialStore::in_dir(cfg.path());
    let e = auth::login(&store, &fast_options(), &reg.host(), "alice", "bad")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Login { .. }), "{e:?}");
    assert!(
        !store.path().exists(),
        "nothing stored after a failed login"
    );
    let key = auth::login(&store, &fast_options(), &reg.host(), "alice", "wonderland").await?;
    assert_eq!(key, reg.host());
    assert_eq!(
        store.get(&reg.host())?,
        Some(Credentials::basic("alice", "wonderland"))
    );

    // The stored credentials drive a client built on the store.
    let from_store = RegistryClient::new(&reg.host(), &fast_options(), Arc::new(store.clone()))?;
    assert_eq!(
        from_store.get_manifest(&repo, "latest").await?.bytes,
        manifest
    );

    assert!(auth::logout(&store, &reg.host())?);
    assert!(!auth::logout(&store, &reg.host())?);
    assert_eq!(store.get(&reg.host())?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_end_to_end() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let tokens = TokenServer::start("bob", "builder", 3).await?;
    tokens.protect(&proxy);
    let repo = unique_repo("bearer");

    // Push needs credentials: anonymous tokens only carry `pull`.
    let anon = client(&proxy.host(), None);
    let e = put_image(&anon, &repo, "v1", b"x").await.unwrap_err();
    let e = e.downcast::<ClientError>()?;
    assert!(matches!(e, ClientError::Unauthorized { .. }), "{e:?}");

    let bob = client(&proxy.host(), Some(Credentials::basic("bob", "builder")));
    let (layer_d, manifest) = put_image(&bob, &repo, "v1", b"bearer layer").await?;
    let reqs = tokens.requests();
    assert!(
        reqs.iter()
            .all(|r| r.service.as_deref() == Some("wharf-test-registry"))
    );
    assert!(
        reqs.iter().any(|r| r.user.as_deref() == Some("bob")
            && r.scopes == vec![format!("repository:{repo}:pull,push")]),
        "{reqs:?}"
    );
    // One token per scope, reused while valid: all pushes used one token.
    let n_push_tokens = reqs
        .iter()
        .filter(|r| r.user.as_deref() == Some("bob"))
        .count();
    assert_eq!(n_push_tokens, 1, "{reqs:?}");

    // Anonymous pull works (anonymous first: no credentials needed for it).
    let before = tokens.requests().len();
    assert_eq!(anon.get_manifest(&repo, "v1").await?.bytes, manifest);
    assert_eq!(
        read_blob(&anon, &repo, &layer_d, 0).await?.1,
        b"bearer layer"
    );
    let anon_reqs = &tokens.requests()[before..];
    assert_eq!(
        anon_reqs.len(),
        1,
        "manifest and blob share the pull token: {anon_reqs:?}"
    );
    assert!(anon_reqs[0].user.is_none());

    // Tokens live 3 s here and are refreshed a fifth of that before expiry.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = tokens.requests().len();
    assert_eq!(anon.get_manifest(&repo, "v1").await?.bytes, manifest);
    assert_eq!(
        tokens.requests().len(),
        before + 1,
        "a stale token is replaced before use"
    );
    let rejected = proxy.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(anon.get_manifest(&repo, "v1").await?.bytes, manifest);
    assert_eq!(
        proxy.requests().iter().filter(|r| r.status == 401).count(),
        rejected,
        "a fresh cached token is accepted"
    );

    // Cross-repository mount asks for both scopes in one token.
    let other = unique_repo("bearer-other");
    assert!(matches!(
        bob.mount_blob(&other, &layer_d, &repo).await?,
        MountOutcome::Mounted
    ));
    let last = tokens.requests().last().cloned().unwrap();
    let mut scopes = last.scopes.clone();
    scopes.sort();
    let mut expected = vec![
        format!("repository:{other}:pull,push"),
        format!("repository:{repo}:pull"),
    ];
    expected.sort();
    assert_eq!(scopes, expected);

    // login: wrong password refused by the token server, right one stored.
    let cfg = common::config_dir();
    let store = CredentialStore::in_dir(cfg.path());
    let e = auth::login(&store, &fast_options(), &proxy.host(), "bob", "wrong")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("login to"), "{e}");
    assert!(!store.path().exists());
    auth::login(&store, &fast_options(), &proxy.host(), "bob", "builder").await?;
    assert_eq!(
        store.get(&proxy.host())?,
        Some(Credentials::basic("bob", "builder"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_with_bounds() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let proxy = Proxy::start(reg.addr).await?;
    let repo = unique_repo("retry");
    let c = client(&proxy.host(), None);
    let (_, manifest) = put_image(&c, &repo, "v1", b"retry layer").await?;

    // 500 twice, then success.
    proxy.clear_log();
    proxy.fail_next(2, 500, None);
    assert_eq!(c.get_manifest(&repo, "v1").await?.bytes, manifest);
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 500, 200]);

    // 429 with Retry-After: 1 is honoured.
    proxy.clear_log();
    proxy.fail_next(1, 429, Some("1"));
    let t = Instant::now();
    assert_eq!(c.get_manifest(&repo, "v1").await?.bytes, manifest);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(proxy.requests().len(), 2);

    // A registry that keeps failing: exactly max_attempts tries, then an error.
    proxy.clear_log();
    proxy.fail_next(100, 503, None);
    let e = c.get_manifest(&repo, "v1").await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert_eq!(proxy.requests().len(), 4);
    proxy.fail_next(0, 500, None);

    // A fresh client whose first ping meets 500s still gets through.
    proxy.clear_log();
    proxy.fail_next(2, 502, None);
    let fresh = client(&proxy.host(), None);
    assert_eq!(fresh.get_manifest(&repo, "v1").await?.bytes, manifest);
    let statuses: Vec<(String, u16)> = proxy
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert_eq!(statuses[0], ("/v2/".to_owned(), 502));
    assert_eq!(statuses[2], ("/v2/".to_owned(), 200));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_mirrors_are_tried_in_order() -> anyhow::Result<()> {
    let full = Registry::start(RegistryAuth::None).await?;
    let empty = Registry::start(RegistryAuth::None).await?;
    let full_proxy = Proxy::start(full.addr).await?;
    let empty_proxy = Proxy::start(empty.addr).await?;
    let repo = format!("library/{}", unique_repo("mirrored"));
    let direct = client(&full.host(), None);
    let (layer_d, manifest) = put_image(&direct, &repo, "latest", b"mirrored layer").await?;

    // A dead port, an empty mirror, then the mirror that has the image.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let options = RegistryOptions {
        mirrors: vec![
            format!("http://{dead}"),
            format!("http://{}", empty_proxy.host()),
            format!("http://{}/", full_proxy.host()),
        ],
        ..fast_options()
    };
    let hub = RegistryClient::new("docker.io", &options, Arc::new(Anonymous))?;
    assert_eq!(hub.get_manifest(&repo, "latest").await?.bytes, manifest);
    assert_eq!(
        read_blob(&hub, &repo, &layer_d, 0).await?.1,
        b"mirrored layer"
    );
    let asked: Vec<_> = empty_proxy
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert!(
        asked.contains(&(format!("/v2/{repo}/manifests/latest"), 404)),
        "{asked:?}"
    );
    assert!(
        full_proxy
            .requests()
            .iter()
            .any(|r| r.path == format!("/v2/{repo}/manifests/latest") && r.status == 200)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_redirects_do_not_forward_credentials() -> anyhow::Result<()> {
    let reg = Registry::start(RegistryAuth::None).await?;
    let front = Proxy::start(reg.addr).await?;
    let blob_host = Proxy::start(reg.addr).await?;
    let tokens = TokenServer::start("carol", "pw", 60).await?;
    tokens.protect(&front);
    let repo = unique_repo("redirect");
    let carol = client(&front.host(), Some(Credentials::basic("carol", "pw")));
    let (layer_d, _) = put_image(&carol, &repo, "v1", b"redirected layer bytes").await?;

    *front.behaviour.redirect_blobs_to.lock().unwrap() =
        Some(format!("http://{}", blob_host.host()));
    let (off, data) = read_blob(&carol, &repo, &layer_d, 4).await?;
    assert_eq!((off, data.as_slice()), (4, &b"redirected layer bytes"[4..]));
    let at_front = front.requests();
    let redirect = at_front
        .iter()
        .find(|r| r.status == 307)
        .expect("front redirected");
    assert!(
        redirect
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    );
    let hops = blob_host.requests();
    assert_eq!(hops.len(), 1, "{hops:?}");
    assert!(
        hops[0].header("authorization").is_none(),
        "credentials leaked to {hops:?}"
    );
    assert_eq!(hops[0].header("range"), Some("bytes=4-"));
    let ua = hops[0].header("user-agent").unwrap_or_default();
    assert!(ua.starts_with("wharf/"), "{ua}");
    Ok(())
}
