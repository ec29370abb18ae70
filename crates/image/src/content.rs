//! The content store: immutable blobs (layers, configs, manifests) addressed
//! by their sha256 digest, with resumable, verified, atomic ingestion.
//!
//! # Use
//! A pull calls [`ContentStore::writer`] with the digest (and size, when the
//! manifest gives it) it expects. That returns either [`Ingest::Exists`] (the
//! blob is already stored: skip the download) or [`Ingest::New`] with a
//! [`Writer`]: [`Writer::offset`] says how many bytes an earlier, interrupted
//! ingest already stored, so the pull can ask the registry for the rest with a
//! `Range` request (or call [`Writer::reset`] when it cannot). Bytes are fed
//! through [`std::io::Write`] as they arrive; [`Writer::commit`] checks size
//! and digest, fsyncs, and renames the blob into place. Dropping a writer
//! without committing keeps the partial data for the next attempt.
//!
//! Only one writer per digest exists at a time, across threads and processes:
//! each holds an exclusive `flock` on the ingest's lock file. A second
//! `writer()` for the same digest blocks until the first finishes, then sees
//! the committed blob (`Ingest::Exists`) or resumes the partial data. The
//! calls block: async callers run them on a blocking thread.
//!
//! # On-disk layout (version 1)
//! ```text
//! <root>/
//!   VERSION                 "1\n"; any other value is refused
//!   blobs/sha256/<hex>      committed blobs, mode 0444, never modified
//!   ingest/<hex>/data       bytes received so far for an unfinished blob
//!   ingest/<hex>/lock       flock(2) target of the writer owning the ingest
//! ```
//! A blob appears under `blobs/` only by `rename(2)` of a complete, verified,
//! fsynced file, so readers never see partial content. Migration rule: a
//! future layout bumps `VERSION` and migrates on open; this version refuses
//! anything it does not know rather than guessing.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::num::NonZeroU64;

use rustix::fs::{Advice, FlockOperation, flock};

use crate::digest::{Digest, Hasher};

/// The layout version this code reads and writes.
pub const LAYOUT_VERSION: &str = "1";

/// Dirty bytes after which a writer asks the kernel to start writing them
/// back, so that the fsync of [`Writer::commit`] finds little left to write
/// instead of the whole blob (on a 230 MB/s disk, 100 ms for a 23 MB layer,
/// after its last byte arrived).
const WRITEBACK_CHUNK: u64 = 4 << 20;

/// Ingests untouched for this long and not locked are removed by [`ContentStore::gc`].
pub const STALE_INGEST_AGE: Duration = Duration::from_secs(24 * 3600);

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A filesystem operation failed.
    #[error("content store: {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No blob with this digest is stored.
    #[error("blob {digest} not found in the content store")]
    NotFound { digest: Digest },
    /// The store was written by a different layout version.
    #[error(
        "content store at {path} has layout version {found:?}; this wharf understands only {LAYOUT_VERSION:?}"
    )]
    UnsupportedVersion { path: PathBuf, found: String },
    /// The ingested byte count differs from the expected size.
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// The ingested bytes hash to something else; the partial data was discarded.
    #[error("blob content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
    /// When the blob was committed (file mtime).
    pub committed_at: SystemTime,
}

/// An unfinished ingest found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    pub digest: Digest,
    /// Bytes already received.
    pub offset: u64,
}

/// What [`ContentStore::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed_blobs: Vec<Digest>,
    pub removed_ingests: Vec<Digest>,
    pub bytes_freed: u64,
}

/// Result of asking for a writer.
#[derive(Debug)]
pub enum Ingest {
    /// The blob is already committed; nothing to write.
    Exists(BlobInfo),
    /// A writer owning the ingest (possibly resuming earlier bytes).
    New(Box<Writer>),
}

/// The content store rooted at a directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating when absent) a store at `root`, checking its layout version.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore, ContentError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err("create directory", &root))?;
        let version = root.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == LAYOUT_VERSION => {}
            Ok(v) => {
                return Err(ContentError::UnsupportedVersion {
                    path: root,
                    found: v.trim().to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomic(&version, format!("{LAYOUT_VERSION}\n").as_bytes())?;
            }
            Err(e) => return Err(io_err("read", &version)(e)),
        }
        let store = ContentStore { root };
        for d in [store.blob_dir(), store.root.join("ingest")] {
            fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Path of a committed blob (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    fn ingest_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join("ingest").join(digest.hex())
    }

    /// Size and commit time of a stored blob.
    pub fn info(&self, digest: &Digest) -> Result<BlobInfo, ContentError> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(BlobInfo {
                digest: digest.clone(),
                size: m.len(),
                committed_at: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound {
                digest: digest.clone(),
            }),
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    /// Whether a blob is stored.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a stored blob for reading (seekable).
    pub fn read(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound {
                    digest: digest.clone(),
                }
            } else {
                io_err("open", &path)(e)
            }
        })
    }

    /// Reads a whole blob into memory (for manifests and configs).
    pub fn read_bytes(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut f = self.read(digest)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(io_err("read", &self.blob_path(digest)))?;
        Ok(buf)
    }

    /// Stores a small blob held in memory (a config or manifest) and returns its digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest, ContentError> {
        let digest = Digest::from_bytes(bytes);
        match self.writer(&digest, Some(bytes.len() as u64))? {
            Ingest::Exists(_) => {}
            Ingest::New(mut w) => {
                w.reset()?;
                w.write_all(bytes)
                    .map_err(io_err("write", &self.ingest_dir(&digest)))?;
                w.commit()?;
            }
        }
        Ok(digest)
    }

    /// Removes a blob. Removing a blob that is not there is `NotFound`.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound {
                    digest: digest.clone(),
                }
            } else {
                io_err("remove", &path)(e)
            }
        })
    }

    /// Every committed blob. Stray files that are not digests are skipped.
    pub fn list(&self) -> Result<Vec<BlobInfo>, ContentError> {
        let dir = self.blob_dir();
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let ent = ent.map_err(io_err("read directory", &dir))?;
            let Some(d) = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            match self.info(&d) {
                Ok(i) => out.push(i),
                Err(ContentError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Unfinished ingests on disk and how far each got.
    pub fn ingests(&self) -> Result<Vec<IngestStatus>, ContentError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let ent = ent.map_err(io_err("read directory", &dir))?;
            let Some(d) = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            let offset = fs::metadata(ent.path().join("data"))
                .map(|m| m.len())
                .unwrap_or(0);
            out.push(IngestStatus { digest: d, offset });
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Starts (or resumes) ingesting `digest`; blocks while another writer owns it.
    ///
    /// When `expected_size` is given, a partial file longer than it is
    /// discarded, writes past it fail, and commit requires exactly that size.
    pub fn writer(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, ContentError> {
        if let Ok(info) = self.info(digest) {
            return Ok(Ingest::Exists(info));
        }
        let dir = self.ingest_dir(digest);
        let lock = lock_ingest(&dir)?;
        // The previous owner may have committed while we waited.
        if let Ok(info) = self.info(digest) {
            remove_ingest_dir(&dir, &lock);
            return Ok(Ingest::Exists(info));
        }
        let data_path = dir.join("data");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&data_path)
            .map_err(io_err("open", &data_path))?;
        let mut hasher = Hasher::new();
        let mut offset = 0u64;
        let len = file.metadata().map_err(io_err("stat", &data_path))?.len();
        if expected_size.is_some_and(|s| len > s) {
            file.set_len(0).map_err(io_err("truncate", &data_path))?;
        } else if len > 0 {
            // Rebuild the hash state from the bytes already received.
            file.rewind().map_err(io_err("seek", &data_path))?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = file.read(&mut buf).map_err(io_err("read", &data_path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                offset += n as u64;
            }
            tracing::debug!(%digest, offset, "resuming partial ingest");
        }
        Ok(Ingest::New(Box::new(Writer {
            blob_path: self.blob_path(digest),
            blob_dir: self.blob_dir(),
            dir,
            data_path,
            digest: digest.clone(),
            expected_size,
            file,
            hasher,
            offset,
            written_back: offset,
            lock,
        })))
    }

    /// Removes every blob not in `referenced`, and unlocked ingests older than
    /// [`STALE_INGEST_AGE`].
    pub fn gc(&self, referenced: &HashSet<Digest>) -> Result<GcReport, ContentError> {
        self.gc_with(referenced, STALE_INGEST_AGE)
    }

    /// [`ContentStore::gc`] with a chosen age after which an unlocked ingest is stale.
    pub fn gc_with(
        &self,
        referenced: &HashSet<Digest>,
        stale_after: Duration,
    ) -> Result<GcReport, ContentError> {
        let mut report = GcReport::default();
        for blob in self.list()? {
            if referenced.contains(&blob.digest) {
                continue;
            }
            match self.delete(&blob.digest) {
                Ok(()) | Err(ContentError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            report.bytes_freed += blob.size;
            report.removed_blobs.push(blob.digest);
        }
        let now = SystemTime::now();
        for ing in self.ingests()? {
            let dir = self.ingest_dir(&ing.digest);
            let lock_path = dir.join("lock");
            let Ok(lock_file) = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
            else {
                continue;
            };
            if flock(&lock_file, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue; // a writer owns it
            }
            let mtime = fs::metadata(dir.join("data"))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if now.duration_since(mtime).unwrap_or_default() < stale_after {
                continue;
            }
            report.bytes_freed += ing.offset;
            remove_ingest_dir(&dir, &lock_file);
            report.removed_ingests.push(ing.digest);
        }
        Ok(report)
    }
}

/// Takes the exclusive lock of an ingest directory, creating it. The lock
/// file may be unlinked by a committing owner while we wait: we then retry
/// on the fresh file, so two owners never hold locks on different inodes.
fn lock_ingest(dir: &Path) -> Result<File, ContentError> {
    let lock_path = dir.join("lock");
    loop {
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let f = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("open", &lock_path)(e)),
        };
        flock(&f, FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &lock_path)(e.into()))?;
        let held = f.metadata().map_err(io_err("stat", &lock_path))?;
        match fs::metadata(&lock_path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(f),
            _ => continue,
        }
    }
}

/// Removes an ingest directory while holding its lock (best effort).
fn remove_ingest_dir(dir: &Path, _lock: &File) {
    let _ = fs::remove_file(dir.join("data"));
    let _ = fs::remove_file(dir.join("lock"));
    let _ = fs::remove_dir(dir);
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ContentError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))
}

/// Exclusive owner of one ingest. See the module docs for the protocol.
#[derive(Debug)]
pub struct Writer {
    blob_path: PathBuf,
    blob_dir: PathBuf,
    dir: PathBuf,
    data_path: PathBuf,
    digest: Digest,
    expected_size: Option<u64>,
    file: File,
    hasher: Hasher,
    offset: u64,
    /// Bytes up to here were handed to writeback (see [`WRITEBACK_CHUNK`]).
    written_back: u64,
    lock: File,
}

impl Writer {
    /// The digest being ingested.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Bytes stored so far (including those from an earlier attempt).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Discards the bytes stored so far (when the source cannot resume).
    pub fn reset(&mut self) -> Result<(), ContentError> {
        self.file
            .set_len(0)
            .map_err(io_err("truncate", &self.data_path))?;
        self.hasher = Hasher::new();
        self.offset = 0;
        self.written_back = 0;
        Ok(())
    }

    /// Verifies size and digest, fsyncs and moves the blob into place.
    ///
    /// On a digest mismatch the partial data is discarded (it can never
    /// become valid); on a short size it is kept for a later resume.
    pub fn commit(mut self) -> Result<BlobInfo, ContentError> {
        self.file
            .flush()
            .map_err(io_err("flush", &self.data_path))?;
        if let Some(expected) = self.expected_size
            && expected != self.offset
        {
            return Err(ContentError::SizeMismatch {
                digest: self.digest.clone(),
                expected,
                actual: self.offset,
            });
        }
        let actual = self.hasher.digest();
        if actual != self.digest {
            remove_ingest_dir(&self.dir, &self.lock);
            return Err(ContentError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        self.file
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err("chmod", &self.data_path))?;
        self.file
            .sync_all()
            .map_err(io_err("fsync", &self.data_path))?;
        fs::rename(&self.data_path, &self.blob_path).map_err(io_err("rename", &self.blob_path))?;
        File::open(&self.blob_dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", &self.blob_dir))?;
        remove_ingest_dir(&self.dir, &self.lock);
        tracing::debug!(digest = %self.digest, size = self.offset, "blob committed");
        Ok(BlobInfo {
            digest: self.digest.clone(),
            size: self.offset,
            committed_at: SystemTime::now(),
        })
    }

    /// Gives up and deletes the partial data.
    pub fn abort(self) {
        remove_ingest_dir(&self.dir, &self.lock);
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(expected) = self.expected_size
            && self.offset + buf.len() as u64 > expected
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {}: more than the expected {expected} bytes received",
                    self.digest
                ),
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        if let Some(len) = NonZeroU64::new(self.offset - self.written_back)
            && len.get() >= WRITEBACK_CHUNK
        {
            // POSIX_FADV_DONTNEED starts asynchronous writeback of the dirty
            // range (and drops nothing dirty): the usual stand-in for
            // sync_file_range(SYNC_FILE_RANGE_WRITE). Durability still comes
            // from the fsync at commit; a refused hint only costs time.
            let _ = rustix::fs::fadvise(&self.file, self.written_back, Some(len), Advice::DontNeed);
            self.written_back = self.offset;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
