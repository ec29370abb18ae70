//! [`ImageStore`]: image metadata. Which image each reference names, and
//! per image the manifest it came from, its top chain ID, its compressed
//! layers and repo digests. Written by whoever completes an image (a pull in
//! `wharf-registry`, a load or an import in `ops`); read by the image
//! operations and the engine. Small, atomic, versioned.
//!
//! # On-disk layout (version 1)
//! ```text
//! <root>/images.json   {"version": 1,
//!                       "images": {"sha256:<config>": ImageRecord, ...},
//!                       "refs":   {"docker.io/library/busybox:latest": "sha256:<config>", ...}}
//! <root>/images.lock   flock(2) target serialising writers across processes
//! ```
//! `refs` keys are full references: `host/repo:tag` (tags) and
//! `host/repo@sha256:...` (digests); every value names a key of `images`.
//! Optional record fields added later (`last_tag_time`) default when absent,
//! so they did not need a new version.
//! A record is written only once every blob and snapshot of the image is
//! committed, so a reference never names a half-pulled image. Writes replace
//! the file atomically (temporary file, fsync, rename). Migration rule: a new
//! layout bumps `version`; this code refuses versions it does not know.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

/// The layout version this code reads and writes.
pub const IMAGE_STORE_VERSION: u32 = 1;

/// Why the image store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    /// A filesystem operation failed.
    #[error("image store: {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("image store {path} is corrupt")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by a different layout version.
    #[error(
        "image store {path} has version {found}; this wharf understands only {IMAGE_STORE_VERSION}"
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
}

/// One pulled image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: the digest of its config.
    pub id: Digest,
    /// The platform manifest's digest.
    pub manifest: Digest,
    /// The index or manifest list it was selected from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
    /// Chain ID of the top layer (`None` for an image without layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<Digest>,
    /// Compressed layer digests, base first.
    pub layers: Vec<Digest>,
    /// `host/repo@sha256:...` names of the manifest (or index) it was pulled by.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// `host/repo` it was pulled from: cross-repository mount sources for pushes.
    #[serde(default)]
    pub sources: Vec<String>,
    /// RFC 3339 time a tag was last added locally (docker's `Metadata.LastTagTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

impl ImageRecord {
    /// A record for an image with these parts and no registry history.
    pub fn new(
        id: Digest,
        manifest: Digest,
        chain_id: Option<Digest>,
        layers: Vec<Digest>,
    ) -> Self {
        ImageRecord {
            id,
            manifest,
            index: None,
            chain_id,
            layers,
            repo_digests: Vec::new(),
            sources: Vec::new(),
            last_tag_time: None,
        }
    }
}

/// The whole store, as read in one go.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StoreContents {
    version: u32,
    /// Image ID → record.
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Full reference → image ID.
    #[serde(default)]
    pub refs: BTreeMap<String, Digest>,
}

type StoreFile = StoreContents;

/// References → image records, in one JSON file.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    gc: std::sync::Arc<crate::gc_lock::GcLock>,
}

impl ImageStore {
    /// The store in `root` (created on first write).
    pub fn open(root: impl Into<PathBuf>) -> ImageStore {
        let root = root.into();
        let gc = crate::gc_lock::GcLock::for_root(&root);
        ImageStore { root, gc }
    }

    /// The lock that keeps removals of layers and blobs away from operations
    /// adding them (see [`crate::gc_lock`]).
    pub fn gc(&self) -> &std::sync::Arc<crate::gc_lock::GcLock> {
        &self.gc
    }

    fn path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// The image a full reference (`docker.io/library/busybox:latest` or
    /// `...@sha256:...`) names.
    pub fn resolve(&self, reference: &str) -> Result<Option<ImageRecord>, ImageStoreError> {
        let f = self.load()?;
        Ok(f.refs
            .get(reference)
            .and_then(|id| f.images.get(id))
            .cloned())
    }

    /// Every image record.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageStoreError> {
        Ok(self.load()?.images.into_values().collect())
    }

    /// Every reference and the image it names.
    pub fn references(&self) -> Result<BTreeMap<String, Digest>, ImageStoreError> {
        Ok(self.load()?.refs)
    }

    /// Every record and reference, read consistently.
    pub fn contents(&self) -> Result<StoreContents, ImageStoreError> {
        self.load()
    }

    /// The record of image `id`.
    pub fn get(&self, id: &Digest) -> Result<Option<ImageRecord>, ImageStoreError> {
        Ok(self.load()?.images.remove(id))
    }

    /// Runs `f` on the contents under the writer lock and saves what it left
    /// (references to missing images are dropped). `f` returning `Err`
    /// saves nothing.
    pub fn update<T, E: From<ImageStoreError>>(
        &self,
        f: impl FnOnce(&mut StoreContents) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = self.lock()?;
        let mut c = self.load()?;
        let out = f(&mut c)?;
        let StoreContents { images, refs, .. } = &mut c;
        refs.retain(|_, id| images.contains_key(id));
        c.version = IMAGE_STORE_VERSION;
        self.save(&c)?;
        Ok(out)
    }

    /// Records a complete image and points `references` at it; merges repo
    /// digests and sources with an existing record of the same image.
    pub fn record(
        &self,
        mut record: ImageRecord,
        references: &[String],
    ) -> Result<(), ImageStoreError> {
        let _lock = self.lock()?;
        let mut f = self.load()?;
        if let Some(old) = f.images.get(&record.id) {
            if record.last_tag_time.is_none() {
                record.last_tag_time.clone_from(&old.last_tag_time);
            }
            for d in &old.repo_digests {
                if !record.repo_digests.contains(d) {
                    record.repo_digests.push(d.clone());
                }
            }
            for s in &old.sources {
                if !record.sources.contains(s) {
                    record.sources.push(s.clone());
                }
            }
        }
        for r in references {
            f.refs.insert(r.clone(), record.id.clone());
        }
        f.images.insert(record.id.clone(), record);
        f.version = IMAGE_STORE_VERSION;
        self.save(&f)
    }

    /// Cross-repository mount candidates on registry `host` for a push: each
    /// recorded layer and config digest → the repositories of `host` its
    /// image was pulled from (feed to `PushOptions::mount_sources`).
    pub fn mount_sources(
        &self,
        host: &str,
    ) -> Result<HashMap<Digest, Vec<String>>, ImageStoreError> {
        let mut out: HashMap<Digest, Vec<String>> = HashMap::new();
        for rec in self.load()?.images.into_values() {
            let repos = rec
                .sources
                .iter()
                .filter_map(|s| s.strip_prefix(host)?.strip_prefix('/'))
                .map(str::to_owned)
                .collect::<Vec<_>>();
            for d in rec.layers.iter().chain(std::iter::once(&rec.id)) {
                let entry = out.entry(d.clone()).or_default();
                for r in &repos {
                    if !entry.contains(r) {
                        entry.push(r.clone());
                    }
                }
            }
        }
        out.retain(|_, v| !v.is_empty());
        Ok(out)
    }

    fn lock(&self) -> Result<File, ImageStoreError> {
        fs::create_dir_all(&self.root).map_err(|source| ImageStoreError::Io {
            op: "create directory",
            path: self.root.clone(),
            source,
        })?;
        let path = self.root.join("images.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| ImageStoreError::Io {
                op: "open",
                path: path.clone(),
                source,
            })?;
        flock(&f, FlockOperation::LockExclusive).map_err(|e| ImageStoreError::Io {
            op: "lock",
            path,
            source: e.into(),
        })?;
        Ok(f)
    }

    fn load(&self) -> Result<StoreFile, ImageStoreError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StoreFile {
                    version: IMAGE_STORE_VERSION,
                    ..StoreFile::default()
                });
            }
            Err(source) => {
                return Err(ImageStoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        let f: StoreFile =
            serde_json::from_slice(&bytes).map_err(|source| ImageStoreError::Parse {
                path: path.clone(),
                source,
            })?;
        if f.version != IMAGE_STORE_VERSION {
            return Err(ImageStoreError::UnsupportedVersion {
                path,
                found: f.version,
            });
        }
        Ok(f)
    }

    fn save(&self, f: &StoreFile) -> Result<(), ImageStoreError> {
        let path = self.path();
        let tmp = self
            .root
            .join(format!(".images.json.{}.tmp", std::process::id()));
        let io = |op: &'static str, p: &Path| {
            let p = p.to_owned();
            move |source| ImageStoreError::Io {
                op,
                path: p,
                source,
            }
        };
        let bytes = serde_json::to_vec_pretty(f).map_err(|source| ImageStoreError::Parse {
            path: path.clone(),
            source,
        })?;
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u8) -> ImageRecord {
        ImageRecord {
            id: Digest::from_bytes(&[n]),
            manifest: Digest::from_bytes(&[n, 1]),
            index: None,
            chain_id: None,
            layers: vec![],
            repo_digests: vec![format!("r@{n}")],
            sources: vec!["h/r".into()],
            last_tag_time: None,
        }
    }

    #[test]
    fn record_resolve_merge_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path());
        assert_eq!(s.resolve("docker.io/library/a:latest").unwrap(), None);
        s.record(rec(1), &["docker.io/library/a:latest".into()])
            .unwrap();
        let mut again = rec(1);
        again.repo_digests = vec!["other@x".into()];
        s.record(again, &["docker.io/library/a:v2".into()]).unwrap();
        let got = s.resolve("docker.io/library/a:v2").unwrap().unwrap();
        assert_eq!(
            got.repo_digests,
            vec!["other@x".to_string(), "r@1".to_string()]
        );
        assert_eq!(s.list().unwrap().len(), 1);
        s.record(rec(2), &["docker.io/library/a:latest".into()])
            .unwrap();
        assert_eq!(
            s.resolve("docker.io/library/a:latest").unwrap().unwrap().id,
            rec(2).id
        );
        assert_eq!(s.references().unwrap().len(), 2);
        let m = s.mount_sources("h").unwrap();
        assert_eq!(m.get(&rec(2).id), Some(&vec!["r".to_string()]));
        assert!(s.mount_sources("other").unwrap().is_empty());

        std::fs::write(dir.path().join("images.json"), r#"{"version": 7}"#).unwrap();
        assert!(matches!(
            s.resolve("x"),
            Err(ImageStoreError::UnsupportedVersion { found: 7, .. })
        ));
    }
}
