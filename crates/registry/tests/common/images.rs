//! Offline fixture images: tar layers made with the `tar` crate, compressed
//! with gzip, zstd or not at all, a config with the right diff IDs, and a
//! Docker schema 2 or OCI manifest, all written into a content store; plus
//! indexes (two platforms, an attestation manifest).

use std::collections::BTreeMap;

use serde_json::json;
use wharf_image::Digest;
use wharf_image::content::ContentStore;
use wharf_image::manifest::{Descriptor, media_type};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp {
    Gzip,
    Zstd,
    Plain,
}

/// One tar entry of a fixture layer.
#[derive(Clone, Debug)]
pub enum Entry {
    Dir(&'static str),
    File(&'static str, Vec<u8>),
    /// A whiteout (`.wh.<name>`) deleting `path` from lower layers.
    Whiteout(&'static str),
}

pub struct LayerSpec {
    pub comp: Comp,
    pub entries: Vec<Entry>,
}

pub struct BuiltLayer {
    pub desc: Descriptor,
    pub diff_id: Digest,
    pub compressed: Vec<u8>,
}

pub struct BuiltImage {
    pub manifest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub media_type: String,
    pub config: Digest,
    pub layers: Vec<BuiltLayer>,
    /// The expected merged tree: path → file content (directories as None).
    pub tree: BTreeMap<String, Option<Vec<u8>>>,
}

pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{p}/"), std::io::empty())
                    .unwrap();
            }
            Entry::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_slice()).unwrap();
            }
            Entry::Whiteout(p) => {
                let (dir, name) = p.rsplit_once('/').map_or(("", *p), |(d, n)| (d, n));
                let path = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn compress(comp: Comp, tar: &[u8]) -> Vec<u8> {
    match comp {
        Comp::Plain => tar.to_vec(),
        Comp::Gzip => {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

fn layer_type(comp: Comp, docker: bool) -> &'static str {
    match (comp, docker) {
        (Comp::Gzip, true) => media_type::DOCKER_LAYER_GZIP,
        (Comp::Plain, true) => media_type::DOCKER_LAYER,
        (Comp::Gzip, false) => media_type::OCI_LAYER_GZIP,
        (Comp::Plain, false) => media_type::OCI_LAYER,
        (Comp::Zstd, _) => media_type::OCI_LAYER_ZSTD,
    }
}

/// Builds an image into `store`. `docker` selects Docker schema 2 media
/// types (zstd layers keep the OCI type, as docker does).
pub fn build_image(
    store: &ContentStore,
    arch: &str,
    layers: &[LayerSpec],
    docker: bool,
) -> BuiltImage {
    let mut built = Vec::new();
    let mut tree: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for spec in layers {
        let tar = tar_of(&spec.entries);
        let diff_id = Digest::from_bytes(&tar);
        let compressed = compress(spec.comp, &tar);
        let digest = store.write_bytes(&compressed).unwrap();
        built.push(BuiltLayer {
            desc: Descriptor::new(
                layer_type(spec.comp, docker),
                digest,
                compressed.len() as u64,
            ),
            diff_id,
            compressed,
        });
        for e in &spec.entries {
            match e {
                Entry::Dir(p) => {
                    tree.insert(p.to_string(), None);
                }
                Entry::File(p, d) => {
                    tree.insert(p.to_string(), Some(d.clone()));
                }
                Entry::Whiteout(p) => {
                    let prefix = format!("{p}/");
                    tree.retain(|k, _| k != p && !k.starts_with(&prefix));
                }
            }
        }
    }
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": built.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "history": built.iter().map(|_| json!({"created_by": "wharf test fixture"})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = store.write_bytes(&config_bytes).unwrap();
    let (mt, cfg_mt) = if docker {
        (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
    } else {
        (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cfg_mt, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": built.iter().map(|l| serde_json::to_value(&l.desc).unwrap()).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let manifest_digest = store.write_bytes(&manifest_bytes).unwrap();
    BuiltImage {
        manifest: manifest_digest,
        manifest_bytes,
        media_type: mt.to_owned(),
        config: config_digest,
        layers: built,
        tree,
    }
}

/// An attestation manifest (in-toto layer) for `subject`, BuildKit style.
pub fn build_attestation(store: &ContentStore, subject: &BuiltImage) -> (Digest, u64) {
    let statement =
        serde_json::to_vec(&json!({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}))
            .unwrap();
    let layer = store.write_bytes(&statement).unwrap();
    let config = b"{\"architecture\":\"unknown\",\"os\":\"unknown\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    let config_d = store.write_bytes(config).unwrap();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_d.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer.to_string(), "size": statement.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
    });
    let _ = subject;
    let bytes = serde_json::to_vec(&m).unwrap();
    (store.write_bytes(&bytes).unwrap(), bytes.len() as u64)
}

/// An index over `images` (each with its architecture), optionally with an
/// attestation manifest for the first one. `docker` makes a manifest list.
pub fn build_index(
    store: &ContentStore,
    images: &[(&BuiltImage, &str)],
    attestation: bool,
    docker: bool,
) -> (Digest, Vec<u8>, String) {
    let mut manifests = Vec::new();
    for (img, arch) in images {
        manifests.push(json!({
            "mediaType": img.media_type,
            "digest": img.manifest.to_string(),
            "size": img.manifest_bytes.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    if attestation {
        let (d, size) = build_attestation(store, images[0].0);
        manifests.push(json!({
            "mediaType": media_type::OCI_MANIFEST,
            "digest": d.to_string(),
            "size": size,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": images[0].0.manifest.to_string(),
            },
        }));
    }
    let mt = if docker {
        media_type::DOCKER_MANIFEST_LIST
    } else {
        media_type::OCI_INDEX
    };
    let index = json!({"schemaVersion": 2, "mediaType": mt, "manifests": manifests});
    let bytes = serde_json::to_vec_pretty(&index).unwrap();
    (store.write_bytes(&bytes).unwrap(), bytes, mt.to_owned())
}

/// A small deterministic pseudo-random payload (incompressible enough to
/// make layers of a given size).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// A three-layer image: gzip base, zstd middle (with a whiteout), plain top.
pub fn three_layer_image(store: &ContentStore, arch: &str, seed: u64, docker: bool) -> BuiltImage {
    let third = if docker { Comp::Gzip } else { Comp::Plain };
    let layers = vec![
        LayerSpec {
            comp: Comp::Gzip,
            entries: vec![
                Entry::Dir("etc"),
                Entry::File(
                    "etc/os-release",
                    format!("ID=wharf-fixture\nSEED={seed}\n").into_bytes(),
                ),
                Entry::Dir("bin"),
                Entry::File("bin/big", noise(seed, 300_000)),
                Entry::File("bin/gone", b"deleted later".to_vec()),
            ],
        },
        LayerSpec {
            comp: if docker { Comp::Gzip } else { Comp::Zstd },
            entries: vec![
                Entry::Dir("usr"),
                Entry::File("usr/data", noise(seed + 1, 200_000)),
                Entry::Whiteout("bin/gone"),
            ],
        },
        LayerSpec {
            comp: third,
            entries: vec![
                Entry::Dir("app"),
                Entry::File("app/arch", arch.as_bytes().to_vec()),
            ],
        },
    ];
    build_image(store, arch, &layers, docker)
}
