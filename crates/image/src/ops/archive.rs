//! `docker save` and `docker load` archives.
//!
//! [`Images::save`] writes what Docker 25+ writes, plus the legacy per-layer
//! directories older tools read:
//! ```text
//! blobs/sha256/<hex>      config, OCI manifest, and each layer as an
//!                         uncompressed tar (its digest is the diff ID)
//! index.json              OCI index: one manifest per tag, annotated with
//!                         io.containerd.image.name and
//!                         org.opencontainers.image.ref.name
//! oci-layout              {"imageLayoutVersion":"1.0.0"}
//! manifest.json           [{"Config","RepoTags","Layers"}] with blob paths
//! repositories            {"name":{"tag":"<v1 id of the top layer>"}}
//! <v1 id>/VERSION, json   legacy layer directories; layer.tar is a
//! <v1 id>/layer.tar       symlink to ../blobs/sha256/<diff id hex>
//! ```
//! [`Images::load`] reads such archives (optionally gzip or zstd
//! compressed), and older ones whose `manifest.json` names
//! `<id>/layer.tar` and `<id>.json` files, and bare OCI layouts
//! (`index.json` without `manifest.json`). Archive paths are resolved in a
//! table built from the tar entries (symlinks and hardlinks followed inside
//! the archive only, `..` above its root refused); nothing is extracted to
//! disk except into unnamed temporary files. Each image is recorded only
//! after its blobs and layers are committed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, Write};

use serde::{Deserialize, Serialize};

use super::ingest::{AddedLayer, temp_file};
use super::{Images, OpsError, content_err, familiar, io_err, resolve_in, time};
use crate::digest::{Digest, Hasher};
use crate::image_store::ImageRecord;
use crate::layer::{decompress, media_type as layer_media};
use crate::manifest::{
    Descriptor, ImageConfig, ImageIndex, ImageManifest, ParsedManifest, Platform, media_type,
    parse_manifest,
};
use crate::reference::Reference;
use crate::snapshot::chain_ids;

/// Largest metadata file (JSON) read from an archive into memory.
const MAX_METADATA: u64 = 16 << 20;

/// One `manifest.json` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What a load added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// (image ID, familiar tags) per loaded image, in archive order.
    pub images: Vec<(Digest, Vec<String>)>,
}

impl LoadReport {
    /// Docker's lines: `Loaded image: name:tag`, or `Loaded image ID: sha256:...`
    /// for an image without tags.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, tags) in &self.images {
            if tags.is_empty() {
                out.push(format!("Loaded image ID: {id}"));
            }
            for t in tags {
                out.push(format!("Loaded image: {t}"));
            }
        }
        out
    }
}

fn invalid(reason: impl Into<String>) -> OpsError {
    OpsError::InvalidArchive {
        reason: reason.into(),
    }
}

fn json_bytes<T: Serialize>(v: &T, what: &str) -> Result<Vec<u8>, OpsError> {
    serde_json::to_vec(v).map_err(|e| OpsError::Io {
        op: "serialise",
        what: what.to_owned(),
        source: e.into(),
    })
}

/// Writes tar entries with fixed metadata.
struct TarOut<W: Write> {
    tar: tar::Builder<W>,
}

impl<W: Write> TarOut<W> {
    fn header(path: &str, size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        // Paths here are short (< 100 bytes) and plain.
        let _ = h.set_path(path);
        h
    }

    fn dir(&mut self, path: &str) -> Result<(), OpsError> {
        let mut h = Self::header(path, 0, tar::EntryType::Directory, 0o755);
        h.set_cksum();
        self.tar
            .append(&h, io::empty())
            .map_err(io_err("write archive entry", path))
    }

    fn file<R: Read>(&mut self, path: &str, size: u64, data: R) -> Result<(), OpsError> {
        let mut h = Self::header(path, size, tar::EntryType::Regular, 0o644);
        h.set_cksum();
        self.tar
            .append(&h, data)
            .map_err(io_err("write archive entry", path))
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), OpsError> {
        self.file(path, data.len() as u64, data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<(), OpsError> {
        let mut h = Self::header(path, 0, tar::EntryType::Symlink, 0o777);
        h.set_link_name(target)
            .map_err(io_err("write archive entry", path))?;
        h.set_cksum();
        self.tar
            .append(&h, io::empty())
            .map_err(io_err("write archive entry", path))
    }
}

impl Images {
    /// `docker save NAME...` to `out`. A repository name without tag saves
    /// every tag of it; an ID saves the image untagged.
    pub fn save<W: Write>(&self, names: &[String], out: W) -> Result<(), OpsError> {
        let contents = self.store.contents()?;
        // (image, full tag references), in the order asked.
        let mut chosen: Vec<(Digest, Vec<String>)> = Vec::new();
        let mut add = |id: Digest, tag: Option<String>| {
            let pos = match chosen.iter().position(|(i, _)| *i == id) {
                Some(p) => p,
                None => {
                    chosen.push((id, Vec::new()));
                    chosen.len() - 1
                }
            };
            if let Some(t) = tag
                && !chosen[pos].1.contains(&t)
            {
                chosen[pos].1.push(t);
            }
        };
        for name in names {
            let bare_repo = Reference::parse_normalized(name)
                .ok()
                .filter(|r| r.tag().is_none() && r.digest().is_none());
            if let Some(repo) = bare_repo {
                let prefix = format!("{}:", repo.name());
                let tags: Vec<(&String, &Digest)> = contents
                    .refs
                    .iter()
                    .filter(|(r, _)| r.starts_with(&prefix))
                    .collect();
                if !tags.is_empty() {
                    for (r, id) in tags {
                        add(id.clone(), Some(r.clone()));
                    }
                    continue;
                }
            }
            let r = resolve_in(&contents, name)?;
            let tag = r.reference.filter(|x| !x.contains('@'));
            add(r.id, tag);
        }

        let mut tar = TarOut {
            tar: tar::Builder::new(out),
        };
        tar.dir("blobs/")?;
        tar.dir("blobs/sha256/")?;
        let mut written = std::collections::HashSet::new();
        let mut legacy_dirs = std::collections::HashSet::new();
        let mut manifest_json = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut index = ImageIndex {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        };
        for (id, tags) in &chosen {
            let rec = &contents.images[id];
            let config = self.config(id)?;
            let diff_ids = config.diff_ids().to_vec();
            let stored_manifest = self.stored_manifest(rec)?;
            if stored_manifest.layers.len() != diff_ids.len() {
                return Err(OpsError::LayerCount {
                    id: id.clone(),
                    diff_ids: diff_ids.len(),
                    layers: stored_manifest.layers.len(),
                });
            }
            if written.insert(id.clone()) {
                tar.bytes(&blob_path(id), config.bytes())?;
            }
            let chains = chain_ids(&diff_ids);
            let mut layer_descs = Vec::new();
            let mut parent_v1: Option<String> = None;
            let mut top_v1 = String::new();
            for (i, (desc, diff_id)) in stored_manifest.layers.iter().zip(&diff_ids).enumerate() {
                let (mut tarfile, size) = self.uncompressed_layer(desc, diff_id)?;
                if written.insert(diff_id.clone()) {
                    tar.file(&blob_path(diff_id), size, &mut tarfile)?;
                }
                layer_descs.push(Descriptor::new(
                    layer_media::OCI_LAYER,
                    diff_id.clone(),
                    size,
                ));
                // Legacy v1 layer IDs: the chain for lower layers, and for the
                // top one a digest that also covers the config.
                let v1 = if i + 1 == diff_ids.len() {
                    Digest::from_bytes(format!("{} {id}", chains[i]).as_bytes())
                        .hex()
                        .to_owned()
                } else {
                    chains[i].hex().to_owned()
                };
                if legacy_dirs.insert(v1.clone()) {
                    tar.dir(&format!("{v1}/"))?;
                    tar.bytes(&format!("{v1}/VERSION"), b"1.0")?;
                    let mut legacy = serde_json::Map::new();
                    legacy.insert("id".into(), v1.clone().into());
                    if let Some(p) = &parent_v1 {
                        legacy.insert("parent".into(), p.clone().into());
                    }
                    if let Some(c) = &config.file().created {
                        legacy.insert("created".into(), c.clone().into());
                    }
                    legacy.insert("os".into(), config.file().os.clone().into());
                    tar.bytes(&format!("{v1}/json"), &json_bytes(&legacy, "layer json")?)?;
                    tar.symlink(
                        &format!("{v1}/layer.tar"),
                        &format!("../blobs/sha256/{}", diff_id.hex()),
                    )?;
                }
                parent_v1 = Some(v1.clone());
                top_v1 = v1;
            }
            let oci_manifest = ImageManifest {
                schema_version: 2,
                media_type: Some(media_type::OCI_MANIFEST.to_owned()),
                artifact_type: None,
                config: Descriptor::new(
                    media_type::OCI_CONFIG,
                    id.clone(),
                    config.bytes().len() as u64,
                ),
                layers: layer_descs.clone(),
                subject: None,
                annotations: BTreeMap::new(),
            };
            let mbytes = json_bytes(&oci_manifest, "manifest")?;
            let mdigest = Digest::from_bytes(&mbytes);
            if written.insert(mdigest.clone()) {
                tar.bytes(&blob_path(&mdigest), &mbytes)?;
            }
            let desc = Descriptor::new(media_type::OCI_MANIFEST, mdigest, mbytes.len() as u64);
            if tags.is_empty() {
                index.manifests.push(desc.clone());
            }
            for t in tags {
                let mut d = desc.clone();
                d.annotations
                    .insert("io.containerd.image.name".into(), t.clone());
                if let Ok(r) = Reference::parse_full(t)
                    && let Some(tag) = r.tag()
                {
                    d.annotations
                        .insert("org.opencontainers.image.ref.name".into(), tag.to_owned());
                    if !top_v1.is_empty() {
                        repositories
                            .entry(r.familiar_name())
                            .or_default()
                            .insert(tag.to_owned(), top_v1.clone());
                    }
                }
                index.manifests.push(d);
            }
            manifest_json.push(ManifestEntry {
                config: blob_path(id),
                repo_tags: Some(tags.iter().map(|t| familiar(t)).collect()),
                layers: layer_descs.iter().map(|d| blob_path(&d.digest)).collect(),
            });
        }
        tar.bytes("index.json", &json_bytes(&index, "index.json")?)?;
        tar.bytes(
            "manifest.json",
            &json_bytes(&manifest_json, "manifest.json")?,
        )?;
        tar.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if !repositories.is_empty() {
            tar.bytes("repositories", &json_bytes(&repositories, "repositories")?)?;
        }
        tar.tar
            .into_inner()
            .map_err(io_err("finish", "image archive"))?
            .flush()
            .map_err(io_err("flush", "image archive"))?;
        Ok(())
    }

    /// The image manifest a record points at.
    pub(super) fn stored_manifest(&self, rec: &ImageRecord) -> Result<ImageManifest, OpsError> {
        let bytes = self
            .content
            .read_bytes(&rec.manifest)
            .map_err(content_err(&rec.manifest))?;
        match parse_manifest(&bytes, None) {
            Ok(ParsedManifest::Image { manifest, .. }) => Ok(manifest),
            Ok(ParsedManifest::Index { media_type, .. }) => Err(OpsError::Manifest {
                digest: rec.manifest.to_string(),
                source: crate::manifest::ManifestError::UnsupportedMediaType { media_type },
            }),
            Err(source) => Err(OpsError::Manifest {
                digest: rec.manifest.to_string(),
                source,
            }),
        }
    }

    /// A layer blob decompressed into a temporary file, verified against
    /// its diff ID; returns the file (rewound) and its length.
    fn uncompressed_layer(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
    ) -> Result<(File, u64), OpsError> {
        let what = format!("layer {}", desc.digest);
        let blob = self
            .content
            .read(&desc.digest)
            .map_err(content_err(&desc.digest))?;
        let mut r = decompress(blob, Some(&desc.media_type)).map_err(|source| OpsError::Layer {
            layer: what.clone(),
            source,
        })?;
        let mut f = temp_file(self)?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0u64;
        loop {
            let k = r.read(&mut buf).map_err(io_err("decompress", &what))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            f.write_all(&buf[..k]).map_err(io_err("write", &what))?;
            n += k as u64;
        }
        let actual = h.finish();
        if actual != *diff_id {
            return Err(OpsError::DiffIdMismatch {
                layer: what,
                expected: diff_id.clone(),
                actual,
            });
        }
        f.rewind().map_err(io_err("seek", &what))?;
        Ok((f, n))
    }

    /// `docker load`: adds every image of the archive `reader` yields.
    pub fn load<R: Read + Send>(&self, reader: R) -> Result<LoadReport, OpsError> {
        let _lease = self.store.gc().lease();
        let reader = decompress(reader, None).map_err(|source| OpsError::Layer {
            layer: "image archive".into(),
            source,
        })?;
        let mut ar = ArchiveTable::read(self, reader)?;
        let jobs = if ar.has("manifest.json") {
            let entries: Vec<ManifestEntry> = ar.json("manifest.json")?;
            let mut jobs = Vec::new();
            for e in entries {
                let mut tags = Vec::new();
                for t in e.repo_tags.unwrap_or_default() {
                    tags.push(super::parse_reference(&t)?.to_string());
                }
                jobs.push(LoadJob {
                    config: ar.bytes(&e.config)?,
                    layers: e
                        .layers
                        .into_iter()
                        .map(|path| LoadLayer {
                            expect: digest_of_blob_path(&path),
                            path,
                            media: None,
                        })
                        .collect(),
                    tags,
                    manifest: None,
                });
            }
            jobs
        } else if ar.has("index.json") {
            oci_jobs(&mut ar)?
        } else {
            return Err(invalid("neither manifest.json nor index.json found"));
        };

        let mut report = LoadReport::default();
        for job in jobs {
            let config =
                ImageConfig::from_bytes(job.config).map_err(|source| OpsError::Config {
                    id: "in archive".into(),
                    source,
                })?;
            let diff_ids = config.diff_ids().to_vec();
            if diff_ids.len() != job.layers.len() {
                return Err(OpsError::LayerCount {
                    id: config.id().clone(),
                    diff_ids: diff_ids.len(),
                    layers: job.layers.len(),
                });
            }
            let mut added: Vec<AddedLayer> = Vec::new();
            for (l, diff_id) in job.layers.iter().zip(&diff_ids) {
                let mut file = ar.open(&l.path)?;
                let parent = added.last().map(|a| a.chain_id.clone());
                added.push(self.add_layer(
                    &mut file,
                    l.media.as_deref(),
                    parent.as_ref(),
                    diff_id,
                    l.expect.as_ref(),
                    &l.path,
                )?);
            }
            let manifest = match &job.manifest {
                Some(bytes) => {
                    self.content
                        .write_bytes(config.bytes())
                        .map_err(content_err(config.id()))?;
                    let d = Digest::from_bytes(bytes);
                    self.content.write_bytes(bytes).map_err(content_err(&d))?
                }
                None => self.store_config_and_manifest(&config, &added)?,
            };
            let mut record = ImageRecord::new(
                config.id().clone(),
                manifest,
                added.last().map(|a| a.chain_id.clone()),
                added.iter().map(|a| a.blob.digest.clone()).collect(),
            );
            if !job.tags.is_empty() {
                record.last_tag_time = Some(time::now_rfc3339());
            }
            self.store.record(record, &job.tags)?;
            tracing::info!(image = %config.id(), tags = ?job.tags, "image loaded");
            report.images.push((
                config.id().clone(),
                job.tags.iter().map(|t| familiar(t)).collect(),
            ));
        }
        Ok(report)
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The digest a `blobs/sha256/<hex>` path promises.
fn digest_of_blob_path(path: &str) -> Option<Digest> {
    let p = normalize(path).ok()?;
    Digest::from_hex(p.strip_prefix("blobs/sha256/")?).ok()
}

struct LoadLayer {
    path: String,
    media: Option<String>,
    expect: Option<Digest>,
}

struct LoadJob {
    config: Vec<u8>,
    layers: Vec<LoadLayer>,
    tags: Vec<String>,
    /// The original manifest bytes (OCI layouts), kept as they are.
    manifest: Option<Vec<u8>>,
}

/// Jobs for a bare OCI layout: each index entry (nested indexes resolved
/// to the host platform), named by its annotations.
fn oci_jobs(ar: &mut ArchiveTable) -> Result<Vec<LoadJob>, OpsError> {
    let index: ImageIndex = ar.json("index.json")?;
    let mut jobs = Vec::new();
    for desc in &index.manifests {
        if desc.is_attestation() {
            continue;
        }
        let mut bytes = ar.blob(&desc.digest)?;
        let mut parsed = parse_manifest(&bytes, Some(&desc.media_type)).map_err(|source| {
            OpsError::Manifest {
                digest: desc.digest.to_string(),
                source,
            }
        })?;
        if let ParsedManifest::Index { index: inner, .. } = &parsed {
            let chosen = inner
                .select(&Platform::host())
                .map_err(|source| OpsError::Manifest {
                    digest: desc.digest.to_string(),
                    source,
                })?
                .clone();
            bytes = ar.blob(&chosen.digest)?;
            parsed = parse_manifest(&bytes, Some(&chosen.media_type)).map_err(|source| {
                OpsError::Manifest {
                    digest: chosen.digest.to_string(),
                    source,
                }
            })?;
        }
        let ParsedManifest::Image { manifest, .. } = parsed else {
            return Err(invalid(format!("nested index in {}", desc.digest)));
        };
        let mut tags = Vec::new();
        let name = desc
            .annotations
            .get("io.containerd.image.name")
            .or_else(|| desc.annotations.get("org.opencontainers.image.ref.name"));
        // A bare tag (`latest`) names no repository: such images load untagged.
        if let Some(n) = name
            && (n.contains('/') || n.contains(':'))
            && let Ok(r) = Reference::parse(n)
            && r.digest().is_none()
        {
            tags.push(r.to_string());
        }
        jobs.push(LoadJob {
            config: ar.blob(&manifest.config.digest)?,
            layers: manifest
                .layers
                .iter()
                .map(|l| LoadLayer {
                    path: blob_path(&l.digest),
                    media: Some(l.media_type.clone()),
                    expect: Some(l.digest.clone()),
                })
                .collect(),
            tags,
            manifest: Some(bytes),
        });
    }
    Ok(jobs)
}

/// A path inside the archive, normalised: no leading `/` or `./`, `.`
/// dropped, `..` applied; refused when it climbs above the root.
fn normalize(path: &str) -> Result<String, OpsError> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(invalid(format!("path {path:?} leaves the archive")));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

enum Node {
    File(File),
    Link(String),
}

/// The archive's files by normalised path, each spooled to an unnamed
/// temporary file; links kept as targets and followed on lookup.
struct ArchiveTable {
    nodes: HashMap<String, Node>,
}

impl ArchiveTable {
    fn read<R: Read>(images: &Images, reader: R) -> Result<ArchiveTable, OpsError> {
        let mut ar = tar::Archive::new(reader);
        let mut nodes = HashMap::new();
        let entries = ar
            .entries()
            .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| invalid(format!("bad tar entry: {e}")))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalize(&raw)?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut f = temp_file(images)?;
                    io::copy(&mut entry, &mut f).map_err(io_err("read archive entry", &raw))?;
                    f.rewind().map_err(io_err("seek", &raw))?;
                    nodes.insert(path, Node::File(f));
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let base = path.rsplit_once('/').map_or("", |(d, _)| d);
                    let joined = if target.starts_with('/') {
                        target
                    } else {
                        format!("{base}/{target}")
                    };
                    nodes.insert(path, Node::Link(normalize(&joined)?));
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    nodes.insert(path, Node::Link(normalize(&target)?));
                }
                _ => {}
            }
        }
        Ok(ArchiveTable { nodes })
    }

    fn has(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// The file at `path`, links followed (at most 16 hops), rewound.
    fn open(&mut self, path: &str) -> Result<File, OpsError> {
        let mut p = normalize(path)?;
        for _ in 0..16 {
            match self.nodes.get(&p) {
                Some(Node::File(f)) => {
                    let mut f = f.try_clone().map_err(io_err("open", &p))?;
                    f.rewind().map_err(io_err("seek", &p))?;
                    return Ok(f);
                }
                Some(Node::Link(t)) => p = t.clone(),
                None => return Err(invalid(format!("{path} is missing"))),
            }
        }
        Err(invalid(format!("{path}: too many levels of links")))
    }

    fn bytes(&mut self, path: &str) -> Result<Vec<u8>, OpsError> {
        let f = self.open(path)?;
        let mut buf = Vec::new();
        f.take(MAX_METADATA + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("read", path))?;
        if buf.len() as u64 > MAX_METADATA {
            return Err(invalid(format!(
                "{path} is larger than {MAX_METADATA} bytes"
            )));
        }
        Ok(buf)
    }

    fn json<T: for<'de> Deserialize<'de>>(&mut self, path: &str) -> Result<T, OpsError> {
        let b = self.bytes(path)?;
        serde_json::from_slice(&b).map_err(|e| invalid(format!("{path}: {e}")))
    }

    /// A blob of the OCI layout, its digest checked.
    fn blob(&mut self, d: &Digest) -> Result<Vec<u8>, OpsError> {
        let b = self.bytes(&blob_path(d))?;
        let actual = Digest::from_bytes(&b);
        if actual != *d {
            return Err(invalid(format!("blob {d} has digest {actual}")));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths() {
        assert_eq!(normalize("./a/b/../c").unwrap(), "a/c");
        assert_eq!(normalize("/blobs//sha256/x").unwrap(), "blobs/sha256/x");
        assert!(normalize("../etc/passwd").is_err());
        assert!(normalize("a/../../b").is_err());
        let hex = "a".repeat(64);
        assert_eq!(
            digest_of_blob_path(&format!("blobs/sha256/{hex}")).map(|d| d.hex().to_owned()),
            Some(hex)
        );
        assert_eq!(digest_of_blob_path("abc/layer.tar"), None);
    }
}
