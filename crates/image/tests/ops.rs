//! Image operations against real stores (root: layers are unpacked with
//! owners and devices): resolve, tag, inspect, history, list filters,
//! remove and prune with container use, import with changes, save → load
//! round trip, archives in the legacy `docker save` layout, and skopeo's
//! `docker-archive` output of our OCI layout.
#![allow(clippy::tests_outside_test_module)] // integration test files are test-only crates

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{LayerBuilder, tree};
use wharf_image::Digest;
use wharf_image::content::ContentStore;
use wharf_image::image_store::ImageStore;
use wharf_image::ops::{
    ContainerUsage, ContainerUse, DeleteItem, ErrorKind, ImageFilters, Images, ImportOptions,
    ListOptions, OpsError, PruneOptions, RemoveOptions,
};
use wharf_image::snapshot::{OverlaySnapshotter, Snapshotter, chain_ids};

/// Which containers use which image (the engine's role in production).
#[derive(Default)]
struct FakeContainers(Mutex<Vec<(Digest, ContainerUse)>>);

impl FakeContainers {
    fn set(&self, image: &Digest, id: &str, running: bool) {
        self.0.lock().unwrap().push((
            image.clone(),
            ContainerUse {
                id: id.into(),
                running,
            },
        ));
    }
    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl ContainerUsage for FakeContainers {
    fn containers_using(&self, id: &Digest) -> Vec<ContainerUse> {
        let v = self.0.lock().unwrap();
        v.iter()
            .filter(|(i, _)| i == id)
            .map(|(_, u)| u.clone())
            .collect()
    }
}

struct Env {
    tmp: tempfile::TempDir,
    images: Images,
    containers: Arc<FakeContainers>,
}

fn env() -> Env {
    wharf_testkit::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let content = ContentStore::open(tmp.path().join("content")).unwrap();
    let snaps: Arc<dyn Snapshotter> =
        Arc::new(OverlaySnapshotter::open(&tmp.path().join("snapshots")).unwrap());
    let store = ImageStore::open(tmp.path().join("images"));
    let containers = Arc::new(FakeContainers::default());
    let images = Images::new(content, snaps, store).with_containers(containers.clone());
    Env {
        tmp,
        images,
        containers,
    }
}

fn base_layer() -> Vec<u8> {
    let mut l = LayerBuilder::new();
    l.dir("bin/", 0o755)
        .file("bin/tool", b"#!/bin/sh\necho tool\n")
        .dir("etc/", 0o755)
        .file("etc/os-release", b"ID=wharf-test\n")
        .symlink("etc/link", "os-release");
    l.finish()
}

fn layer_with(name: &str, data: &[u8]) -> Vec<u8> {
    let mut l = LayerBuilder::new();
    l.dir("data/", 0o755).file(&format!("data/{name}"), data);
    l.finish()
}

/// A config for `layers` with a creation time and labels.
fn config_json(layers: &[Vec<u8>], created: &str, labels: &[(&str, &str)]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::from_bytes(l).to_string())
        .collect();
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": created, "created_by": format!("step {i}")}))
        .chain(std::iter::once(
            serde_json::json!({"created": created, "created_by": "CMD [\"tool\"]", "empty_layer": true}),
        ))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": created,
        "author": "tests", "docker_version": "25.0.0",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["tool"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

struct ArchiveImage {
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    tags: Vec<&'static str>,
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, path, data).unwrap();
}

fn append_symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, path, target).unwrap();
}

/// An archive in the layout `docker save` wrote before Docker 25:
/// `<config hex>.json`, `<v1 id>/{VERSION,json,layer.tar}`,
/// `manifest.json` naming those, `repositories`; a layer shared between
/// images is written once and linked from the second image's directory.
fn legacy_docker_archive(images: &[ArchiveImage]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (n, img) in images.iter().enumerate() {
        let cfg_hex = Digest::from_bytes(&img.config).hex().to_owned();
        append(&mut b, &format!("{cfg_hex}.json"), &img.config);
        let mut paths = Vec::new();
        let mut parent = String::new();
        for (i, layer) in img.layers.iter().enumerate() {
            let v1 = Digest::from_bytes(format!("{n} {i} {parent}").as_bytes())
                .hex()
                .to_owned();
            let diff = Digest::from_bytes(layer).hex().to_owned();
            append(&mut b, &format!("{v1}/VERSION"), b"1.0");
            append(
                &mut b,
                &format!("{v1}/json"),
                format!(r#"{{"id":"{v1}","parent":"{parent}"}}"#).as_bytes(),
            );
            match seen.get(&diff) {
                Some(first) => append_symlink(
                    &mut b,
                    &format!("{v1}/layer.tar"),
                    &format!("../{first}/layer.tar"),
                ),
                None => {
                    append(&mut b, &format!("{v1}/layer.tar"), layer);
                    seen.insert(diff, v1.clone());
                }
            }
            paths.push(format!("{v1}/layer.tar"));
            parent = v1;
        }
        for t in &img.tags {
            let (name, tag) = t.rsplit_once(':').unwrap();
            repos
                .entry(name.to_owned())
                .or_default()
                .insert(tag.to_owned(), parent.clone());
        }
        manifest.push(serde_json::json!({
            "Config": format!("{cfg_hex}.json"), "RepoTags": img.tags, "Layers": paths,
        }));
    }
    append(&mut b, "repositories", &serde_json::to_vec(&repos).unwrap());
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Loads three images: `x/a:1` (2020, label a=1), `x/b:1` + `y/b:2`
/// (2021, label b), and an untagged one (2022); all share the base layer.
fn three_images(e: &Env) -> [Digest; 3] {
    let base = base_layer();
    let imgs = [
        ArchiveImage {
            layers: vec![base.clone(), layer_with("a", b"a")],
            config: config_json(
                &[base.clone(), layer_with("a", b"a")],
                "2020-01-01T00:00:00Z",
                &[("a", "1")],
            ),
            tags: vec!["x/a:1"],
        },
        ArchiveImage {
            layers: vec![base.clone(), layer_with("b", b"b")],
            config: config_json(
                &[base.clone(), layer_with("b", b"b")],
                "2021-01-01T00:00:00Z",
                &[("b", "")],
            ),
            tags: vec!["x/b:1", "y/b:2"],
        },
        ArchiveImage {
            layers: vec![base.clone()],
            config: config_json(std::slice::from_ref(&base), "2022-01-01T00:00:00Z", &[]),
            tags: vec![],
        },
    ];
    let report = e
        .images
        .load(&gzip(&legacy_docker_archive(&imgs))[..])
        .unwrap();
    assert_eq!(
        report.messages(),
        vec![
            "Loaded image: x/a:1".to_owned(),
            "Loaded image: x/b:1".to_owned(),
            "Loaded image: y/b:2".to_owned(),
            format!("Loaded image ID: {}", report.images[2].0),
        ]
    );
    let ids: Vec<Digest> = report.images.iter().map(|(i, _)| i.clone()).collect();
    [ids[0].clone(), ids[1].clone(), ids[2].clone()]
}

fn ids(list: &[wharf_image::ops::ImageSummary]) -> Vec<String> {
    list.iter().map(|s| s.id.clone()).collect()
}

fn list(e: &Env, f: ImageFilters) -> Vec<String> {
    ids(&e
        .images
        .list(&ListOptions {
            filters: f,
            shared_size: false,
        })
        .unwrap())
}

#[test]
fn resolve_tag_inspect_history() {
    let e = env();
    let [a, b, c] = three_images(&e);
    let im = &e.images;
    // names as docker resolves them
    assert_eq!(im.resolve("x/a:1").unwrap().id, a);
    assert_eq!(im.resolve("docker.io/x/a:1").unwrap().id, a);
    assert_eq!(im.resolve(&a.to_string()).unwrap().id, a);
    assert_eq!(im.resolve(a.hex()).unwrap().id, a);
    assert_eq!(im.resolve(&c.hex()[..12]).unwrap().id, c);
    assert_eq!(
        im.resolve(&format!("sha256:{}", &b.hex()[..10]))
            .unwrap()
            .id,
        b
    );
    let err = im.resolve("x/a").unwrap_err();
    assert_eq!(err.to_string(), "No such image: x/a");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(matches!(
        im.resolve("Upper"),
        Err(OpsError::NotFound { .. })
    ));

    // tag, then the tag resolves; digests cannot be tags
    im.tag("x/a:1", "x/a").unwrap();
    im.tag(&a.hex()[..8], "localhost:5000/copy:v1").unwrap();
    assert_eq!(im.resolve("x/a").unwrap().id, a);
    assert!(matches!(
        im.tag("x/a:1", &format!("x/a@{a}")),
        Err(OpsError::TagWithDigest { .. })
    ));
    assert!(matches!(
        im.tag("x/a:1", "BAD"),
        Err(OpsError::InvalidReference(_))
    ));

    // inspect has every field docker's has, with docker's names
    let ins = im.inspect("x/a:1").unwrap();
    assert_eq!(ins.id, a.to_string());
    assert_eq!(
        ins.repo_tags,
        vec!["localhost:5000/copy:v1", "x/a:1", "x/a:latest"]
    );
    assert_eq!(ins.created, "2020-01-01T00:00:00Z");
    assert_eq!(ins.docker_version, "25.0.0");
    assert_eq!(ins.author, "tests");
    assert_eq!(ins.config.cmd.as_deref(), Some(&["tool".to_owned()][..]));
    assert_eq!(
        (ins.os.as_str(), ins.architecture.as_str()),
        ("linux", "amd64")
    );
    assert!(ins.size > 0);
    assert_eq!(ins.root_fs.layers.len(), 2);
    assert_eq!(ins.graph_driver.name, "overlay");
    assert!(ins.graph_driver.data["UpperDir"].ends_with("/diff"));
    assert!(Path::new(&ins.graph_driver.data["LowerDir"]).is_dir());
    assert!(!ins.metadata.last_tag_time.is_empty());
    let v = serde_json::to_value(&ins).unwrap();
    for k in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ] {
        assert!(v.get(k).is_some(), "inspect lacks {k}: {v}");
    }
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(
        v["Metadata"]["LastTagTime"],
        ins.metadata.last_tag_time.as_str()
    );

    // history: newest first, the top carries the ID and tags
    let h = im.history("x/b:1").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, b.to_string());
    assert_eq!(h[0].created_by, "CMD [\"tool\"]");
    assert_eq!(h[0].size, 0);
    assert_eq!(h[0].tags, vec!["x/b:1", "y/b:2"]);
    assert_eq!(h[1].id, "<missing>");
    assert_eq!(h[1].created_by, "step 1");
    assert!(h[1].size > 0 && h[2].size > 0);
    assert_eq!(h[2].created, 1_609_459_200);
}

#[test]
fn list_with_filters() {
    let e = env();
    let [a, b, c] = three_images(&e);
    let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
    let all = e
        .images
        .list(&ListOptions {
            filters: ImageFilters::default(),
            shared_size: true,
        })
        .unwrap();
    // newest first
    assert_eq!(ids(&all), vec![c.clone(), b.clone(), a.clone()]);
    let sa = &all[2];
    assert_eq!(sa.repo_tags, vec!["x/a:1"]);
    assert_eq!(sa.created, 1_577_836_800);
    assert_eq!(sa.labels.get("a").map(String::as_str), Some("1"));
    assert!(sa.shared_size > 0 && sa.shared_size < sa.size, "{sa:?}");
    assert_eq!(sa.containers, 0);
    assert!(all[0].repo_tags.is_empty());

    let f = |k: &str, v: &str| {
        let mut m = BTreeMap::new();
        m.insert(k.to_owned(), vec![v.to_owned()]);
        ImageFilters::from_map(&m).unwrap()
    };
    assert_eq!(list(&e, f("dangling", "true")), vec![c.clone()]);
    assert_eq!(list(&e, f("dangling", "false")), vec![b.clone(), a.clone()]);
    assert_eq!(list(&e, f("label", "a=1")), vec![a.clone()]);
    assert_eq!(list(&e, f("label", "a=2")), Vec::<String>::new());
    assert_eq!(list(&e, f("label", "b")), vec![b.clone()]);
    assert_eq!(list(&e, f("reference", "x/*")), vec![b.clone(), a.clone()]);
    assert_eq!(list(&e, f("reference", "y/b:*")), vec![b.clone()]);
    assert_eq!(list(&e, f("reference", "x/a:2")), Vec::<String>::new());
    assert_eq!(list(&e, f("before", "x/b:1")), vec![a.clone()]);
    assert_eq!(list(&e, f("since", "y/b:2")), vec![c.clone()]);
    let both = ImageFilters {
        reference: vec!["x/*".into()],
        label: vec!["b".into()],
        ..ImageFilters::default()
    };
    assert_eq!(list(&e, both), vec![b.clone()]);
    let bad = f("before", "nope");
    assert!(
        e.images
            .list(&ListOptions {
                filters: bad,
                shared_size: false
            })
            .is_err()
    );

    e.containers.set(&a.parse().unwrap(), "c1", false);
    let all = e.images.list(&ListOptions::default()).unwrap();
    assert_eq!(all[2].containers, 1);
    assert_eq!(all[2].shared_size, -1);
}

fn snapshot_ids(e: &Env) -> Vec<String> {
    e.images
        .snapshots()
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

#[test]
fn remove_untags_then_deletes_with_container_checks() {
    let e = env();
    let [a, b, _c] = three_images(&e);
    let im = &e.images;
    let b_cfg = im.config(&b).unwrap();
    let b_chains = chain_ids(b_cfg.diff_ids());

    // by ID with tags in two repositories: must be forced
    let err = im.remove(b.hex(), RemoveOptions::default()).unwrap_err();
    assert!(
        matches!(err, OpsError::MultipleRepositories { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // by name, other tags left: untag only
    let out = im.remove("y/b:2", RemoveOptions::default()).unwrap();
    assert_eq!(out, vec![DeleteItem::untagged("y/b:2")]);
    assert!(im.resolve("y/b:2").is_err());
    assert_eq!(im.resolve("x/b:1").unwrap().id, b);

    // the last tag while a stopped container uses it: refused unless forced
    e.containers.set(&b, "stopped1", false);
    let err = im.remove("x/b:1", RemoveOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("must be forced") && err.to_string().contains("stopped1"),
        "{err}"
    );
    // a running container: even force only untags by name, and by ID is refused
    e.containers.clear();
    e.containers.set(&b, "running1", true);
    let err = im
        .remove(b.hex(), RemoveOptions { force: true })
        .unwrap_err();
    assert!(err.to_string().contains("cannot be forced"), "{err}");
    assert!(im.resolve("x/b:1").is_ok());

    // forced removal of the last tag with only a stopped user: deleted,
    // with its own layer; the base layer stays for the other images
    e.containers.clear();
    e.containers.set(&b, "stopped1", false);
    let out = im.remove("x/b:1", RemoveOptions { force: true }).unwrap();
    assert_eq!(
        out,
        vec![
            DeleteItem::untagged("x/b:1"),
            DeleteItem::deleted(b.to_string()),
            DeleteItem::deleted(b_chains[1].to_string()),
        ]
    );
    assert!(im.resolve(b.hex()).is_err());
    let snaps = snapshot_ids(&e);
    assert!(!snaps.contains(&b_chains[1].to_string()));
    assert!(snaps.contains(&b_chains[0].to_string()));
    assert!(
        !im.content().exists(&b),
        "config blob of a deleted image stays"
    );
    assert!(im.content().exists(&a));

    // by short ID, single repository: untag all and delete
    let out = im.remove(&a.hex()[..12], RemoveOptions::default()).unwrap();
    assert_eq!(out[0], DeleteItem::untagged("x/a:1"));
    assert_eq!(out[1], DeleteItem::deleted(a.to_string()));
    assert!(matches!(
        im.remove("x/a:1", RemoveOptions::default()),
        Err(OpsError::NotFound { .. })
    ));
}

#[test]
fn prune_dangling_then_all_unused() {
    let e = env();
    let [a, b, c] = three_images(&e);
    let im = &e.images;
    e.containers.set(&b, "user", false);
    let r = im.prune(&PruneOptions::default()).unwrap();
    assert_eq!(r.images_deleted, vec![DeleteItem::deleted(c.to_string())]);
    // c's only layer is the shared base: nothing reclaimed
    assert_eq!(r.space_reclaimed, 0);
    let mut labels = PruneOptions {
        all: true,
        label: vec!["a=2".into()],
        until: None,
    };
    assert!(im.prune(&labels).unwrap().images_deleted.is_empty());
    labels.label = vec!["a=1".into()];
    let r = im.prune(&labels).unwrap();
    assert_eq!(r.images_deleted[0], DeleteItem::untagged("x/a:1"));
    assert_eq!(r.images_deleted[1], DeleteItem::deleted(a.to_string()));
    assert!(r.space_reclaimed > 0);
    // b is used by a container: kept even by prune --all
    let r = im
        .prune(&PruneOptions {
            all: true,
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(r.images_deleted.is_empty());
    assert_eq!(im.resolve("x/b:1").unwrap().id, b);
    e.containers.clear();
    let r = im
        .prune(&PruneOptions {
            all: true,
            ..PruneOptions::default()
        })
        .unwrap();
    // two untags, the image, its own layer and the base layer
    assert_eq!(r.images_deleted.len(), 5, "{:?}", r.images_deleted);
    assert!(snapshot_ids(&e).is_empty(), "{:?}", snapshot_ids(&e));
    assert!(im.store().contents().unwrap().images.is_empty());
}

fn archive_names(bytes: &[u8]) -> BTreeMap<String, tar::EntryType> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().entry_type(),
            )
        })
        .collect()
}

fn layer_trees(e: &Env, id: &Digest) -> Vec<Vec<String>> {
    let cfg = e.images.config(id).unwrap();
    chain_ids(cfg.diff_ids())
        .iter()
        .map(|c| {
            tree(
                &e.images
                    .snapshots()
                    .root()
                    .join("snapshots")
                    .join(c.hex())
                    .join("diff"),
            )
        })
        .collect()
}

#[test]
fn save_then_load_round_trip() {
    let src = env();
    let [a, b, _] = three_images(&src);
    let mut out = Vec::new();
    src.images
        .save(&["x/a:1".to_owned(), "x/b".to_owned()], &mut out)
        .unwrap();
    let names = archive_names(&out);
    for n in ["manifest.json", "repositories", "index.json", "oci-layout"] {
        assert!(names.contains_key(n), "{n} missing: {names:?}");
    }
    for d in [&a, &b] {
        assert!(names.contains_key(&format!("blobs/sha256/{}", d.hex())));
    }
    let legacy: Vec<_> = names
        .iter()
        .filter(|(n, _)| n.ends_with("/layer.tar"))
        .collect();
    assert_eq!(legacy.len(), 3, "base shared, two tops: {legacy:?}");
    assert!(legacy.iter().all(|(_, t)| **t == tar::EntryType::Symlink));

    let dst = env();
    let report = dst.images.load(&out[..]).unwrap();
    let loaded: Vec<&Digest> = report.images.iter().map(|(i, _)| i).collect();
    assert_eq!(loaded, vec![&a, &b]);
    assert_eq!(dst.images.resolve("x/a:1").unwrap().id, a);
    assert_eq!(dst.images.resolve("x/b:1").unwrap().id, b);
    assert_eq!(
        dst.images.inspect("x/b:1").unwrap().repo_tags,
        vec!["x/b:1"],
        "only the tags asked for (x/b's tags) travel"
    );
    assert_eq!(layer_trees(&src, &a), layer_trees(&dst, &a));
    assert_eq!(layer_trees(&src, &b), layer_trees(&dst, &b));
    // loading again changes nothing and is not an error
    dst.images.load(&out[..]).unwrap();
    assert_eq!(dst.images.store().contents().unwrap().images.len(), 2);
    // and the loaded image saves again to an archive with the same layers
    let mut again = Vec::new();
    dst.images.save(&[a.to_string()], &mut again).unwrap();
    assert!(archive_names(&again).contains_key(&format!("blobs/sha256/{}", a.hex())));
}

#[test]
fn skopeo_reads_our_oci_layout_and_we_load_its_docker_archive() {
    let src = env();
    let [a, _, _] = three_images(&src);
    let mut out = Vec::new();
    src.images.save(&["x/a:1".to_owned()], &mut out).unwrap();
    let layout = src.tmp.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    tar::Archive::new(&out[..]).unpack(&layout).unwrap();
    let archive = src.tmp.path().join("skopeo.tar");
    let st = Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker-archive:{}:x/a:1", archive.display()))
        .status()
        .expect("skopeo must be installed (apt-get install skopeo)");
    assert!(st.success(), "skopeo copy failed");
    let dst = env();
    let report = dst
        .images
        .load(std::fs::File::open(&archive).unwrap())
        .unwrap();
    assert_eq!(report.images, vec![(a.clone(), vec!["x/a:1".to_owned()])]);
    assert_eq!(layer_trees(&src, &a), layer_trees(&dst, &a));
}

#[test]
fn import_with_changes() {
    let e = env();
    let rootfs = base_layer();
    let id = e
        .images
        .import(
            &gzip(&rootfs)[..],
            &ImportOptions {
                reference: Some("imported/app".into()),
                changes: vec![
                    "ENV A=1".into(),
                    "CMD [\"/bin/tool\"]".into(),
                    "ENTRYPOINT /bin/sh".into(),
                    "WORKDIR /srv".into(),
                    "USER nobody".into(),
                    "LABEL k=v".into(),
                    "EXPOSE 8080".into(),
                ],
                message: Some("from a test".into()),
                platform: None,
            },
        )
        .unwrap();
    let ins = e.images.inspect("imported/app:latest").unwrap();
    assert_eq!(ins.id, id.to_string());
    assert_eq!(ins.comment, "from a test");
    assert_eq!(
        ins.root_fs.layers,
        vec![Digest::from_bytes(&rootfs).to_string()]
    );
    let c = &ins.config;
    assert_eq!(c.env.as_deref(), Some(&["A=1".to_owned()][..]));
    assert_eq!(c.cmd.as_deref(), Some(&["/bin/tool".to_owned()][..]));
    assert_eq!(
        c.entrypoint.as_deref(),
        Some(&["/bin/sh".to_owned(), "-c".to_owned(), "/bin/sh".to_owned()][..])
    );
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("8080/tcp"));
    let h = e.images.history(&id.to_string()).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].comment, "from a test");
    let top = chain_ids(&[Digest::from_bytes(&rootfs)]);
    let diff = e
        .images
        .snapshots()
        .root()
        .join("snapshots")
        .join(top[0].hex())
        .join("diff");
    assert_eq!(
        std::fs::read(diff.join("etc/os-release")).unwrap(),
        b"ID=wharf-test\n"
    );

    // bad changes fail before anything is stored
    let before = e.images.content().list().unwrap().len();
    let err = e
        .images
        .import(
            &rootfs[..],
            &ImportOptions {
                changes: vec!["RUN true".into()],
                ..ImportOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, OpsError::InvalidChange { .. }), "{err}");
    assert_eq!(e.images.content().list().unwrap().len(), before);
}

#[test]
fn hostile_or_broken_archives_are_refused_and_leave_no_image() {
    let e = env();
    let base = base_layer();
    // a path above the archive root
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    {
        let u = h.as_ustar_mut().unwrap();
        u.name[..9].copy_from_slice(b"../escape");
    }
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let err = e.images.load(&b.into_inner().unwrap()[..]).unwrap_err();
    assert!(matches!(err, OpsError::InvalidArchive { .. }), "{err}");

    // a layer whose content does not match the config's diff ID
    let wrong = ArchiveImage {
        config: config_json(std::slice::from_ref(&base), "2020-01-01T00:00:00Z", &[]),
        layers: vec![layer_with("other", b"x")],
        tags: vec!["bad/image:1"],
    };
    let err = e
        .images
        .load(&legacy_docker_archive(&[wrong])[..])
        .unwrap_err();
    assert!(matches!(err, OpsError::DiffIdMismatch { .. }), "{err}");
    // no manifest at all
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "hello", b"x");
    let err = e.images.load(&b.into_inner().unwrap()[..]).unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");

    assert!(e.images.store().contents().unwrap().images.is_empty());
    assert!(e.images.resolve("bad/image:1").is_err());
    let leftovers: Vec<_> = std::fs::read_dir(e.images.snapshots().root().join("snapshots"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn removal_waits_for_an_operation_adding_layers() {
    let e = env();
    let _ = three_images(&e);
    // What a pull in flight holds (through any store opened on the same
    // directory, as the engine's services each open their own).
    let other = ImageStore::open(e.tmp.path().join("images"));
    let lease = other.gc().lease();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let remover = {
        let (images, done) = (e.images.clone(), done.clone());
        std::thread::spawn(move || {
            let r = images.prune(&PruneOptions::default());
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            r.map(|r| r.images_deleted.len())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !done.load(std::sync::atomic::Ordering::SeqCst),
        "prune ran while an operation adding layers held its lease"
    );
    drop(lease);
    assert_eq!(remover.join().unwrap().unwrap(), 1);
}
