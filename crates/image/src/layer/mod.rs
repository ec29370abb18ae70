//! Layers: media types, decompression, and the contained apply step.
//!
//! A pulled layer is a (usually compressed) tar stream. [`decompress`] wraps
//! the compressed bytes in a reader chosen by media type, falling back to
//! sniffing magic bytes when the type is vague or unknown. [`apply_layer`]
//! reads the uncompressed stream, writes every entry under a target
//! directory, converts whiteouts to overlayfs form, and returns the diff ID
//! (sha256 of the uncompressed stream) in [`ApplyStats`].
//! [`apply_compressed_layer`] does both, decompressing and computing the diff
//! ID on a helper thread so that gunzip + sha256 and the filesystem work
//! overlap.
//!
//! Contract: every path is resolved inside the target with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`; nothing is ever
//! written outside it. When `apply_layer` fails, the target holds a partial
//! tree and **the caller removes it**; [`crate::snapshot`] does this for you
//! by unpacking into a temporary directory that is renamed only on success.
//! The caller compares the returned diff ID with the image config's
//! `rootfs.diff_ids` before committing.

mod apply;
pub(crate) mod fsutil;

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

use crate::digest::{Digest, HashingReader};

pub use apply::{
    ApplyOptions, ApplyStats, OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, apply_layer,
    apply_layer_with,
};

/// Layer media type constants.
pub mod media_type {
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_NONDIST_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}

/// Errors applying or decompressing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// An entry (or a hardlink target) would land outside the target directory.
    #[error("layer entry {entry:?} escapes the target directory")]
    Escape { entry: String },
    /// The target directory cannot be opened.
    #[error("cannot open layer target directory {path}")]
    OpenTarget {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The tar stream is malformed or the reader failed.
    #[error("cannot read layer tar stream")]
    Tar {
        #[source]
        source: io::Error,
    },
    /// Writing one entry failed.
    #[error("layer entry {entry:?}: {op}")]
    Entry {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// An entry type wharf does not apply (e.g. a GNU volume header).
    #[error("layer entry {entry:?} has unsupported tar type {kind}")]
    UnsupportedEntry { entry: String, kind: String },
    /// A media type that is not a layer wharf can decompress.
    #[error("unsupported layer media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    /// Reading the first bytes to sniff the compression failed.
    #[error("cannot read layer stream to detect its compression")]
    Sniff {
        #[source]
        source: io::Error,
    },
}

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a layer media type; `None` for types that do not say (e.g.
    /// `application/octet-stream`), an error for non-layer types.
    pub fn from_media_type(mt: &str) -> Result<Option<Compression>, LayerError> {
        use media_type::*;
        let mt = mt.split(';').next().unwrap_or("").trim();
        Ok(Some(match mt {
            DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER_GZIP
            | OCI_LAYER_GZIP
            | OCI_LAYER_NONDIST_GZIP => Compression::Gzip,
            OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD => Compression::Zstd,
            DOCKER_LAYER | OCI_LAYER | OCI_LAYER_NONDIST => Compression::None,
            ""
            | "application/octet-stream"
            | "application/x-tar"
            | "application/gzip"
            | "application/zstd" => {
                return Ok(None);
            }
            other => {
                return Err(LayerError::UnsupportedMediaType {
                    media_type: other.to_owned(),
                });
            }
        }))
    }

    /// From the first bytes of the stream.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Wraps compressed layer bytes in a decompressing reader. The media type
/// decides; when it is `None` or vague, the magic bytes do.
pub fn decompress<'a, R: Read + Send + 'a>(
    reader: R,
    media_type: Option<&str>,
) -> Result<Box<dyn Read + Send + 'a>, LayerError> {
    let declared = match media_type {
        Some(mt) => Compression::from_media_type(mt)?,
        None => None,
    };
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let compression = match declared {
        Some(c) => c,
        None => {
            // A fresh BufReader reads up to its capacity in one call: the
            // first chunk of any real layer holds the 4 magic bytes.
            let head = buf
                .fill_buf()
                .map_err(|source| LayerError::Sniff { source })?;
            Compression::sniff(head)
        }
    };
    Ok(match compression {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buf)
                .map_err(|source| LayerError::Sniff { source })?,
        ),
    })
}

/// Decompresses `reader` (see [`decompress`]) and hashes the result on a
/// helper thread, and applies it to `target` (see [`apply_layer`]).
pub fn apply_compressed_layer<R: Read + Send + 'static>(
    reader: R,
    media_type: Option<&str>,
    target: &std::path::Path,
    options: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    let decoded = decompress(reader, media_type)?;
    let mut piped = ThreadedReader::spawn_hashing(decoded);
    let (entries, whiteouts) = apply::apply_entries(&mut piped, target, options)?;
    // apply_entries read the stream to its end, so the thread has finished.
    let (diff_id, size) = piped.digest().ok_or_else(|| LayerError::Tar {
        source: io::Error::other("the decompression thread ended before the stream did"),
    })?;
    tracing::debug!(%diff_id, size, entries, target = %target.display(), "layer applied");
    Ok(ApplyStats {
        diff_id,
        size,
        entries,
        whiteouts,
    })
}

/// Digest and size of everything a hashing [`ThreadedReader`] read.
type StreamDigest = Arc<Mutex<Option<(Digest, u64)>>>;

/// A reader whose source is read on a separate thread, a few chunks ahead.
///
/// Lets CPU-bound decompression (and hashing, with
/// [`ThreadedReader::spawn_hashing`]) overlap with the filesystem work of
/// the consumer. Dropping the reader stops the thread at its next chunk.
pub struct ThreadedReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    free: mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    digest: Option<StreamDigest>,
}

impl ThreadedReader {
    const CHUNK: usize = 256 * 1024;
    const DEPTH: usize = 8;

    /// Starts the reading thread.
    pub fn spawn<R: Read + Send + 'static>(source: R) -> ThreadedReader {
        Self::start(source, None)
    }

    /// Starts the reading thread, which also computes the sha256 of the
    /// whole source: [`ThreadedReader::digest`] once this reader hit EOF.
    pub fn spawn_hashing<R: Read + Send + 'static>(source: R) -> ThreadedReader {
        Self::start(source, Some(Arc::new(Mutex::new(None))))
    }

    /// The digest and size of the source, once it was read to its end by a
    /// reader made with [`ThreadedReader::spawn_hashing`].
    pub fn digest(&self) -> Option<(Digest, u64)> {
        let slot = self.digest.as_ref()?;
        slot.lock().ok()?.clone()
    }

    fn start<R: Read + Send + 'static>(source: R, digest: Option<StreamDigest>) -> ThreadedReader {
        let (tx, rx) = mpsc::sync_channel(Self::DEPTH);
        // Consumed chunks come back to be filled again (no fresh, zeroed
        // 256 KiB allocation, which is an mmap + page faults, per chunk).
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let slot = digest.clone();
        let mut source = HashingReader::new(source);
        std::thread::Builder::new()
            .name("layer-decompress".into())
            .spawn(move || {
                loop {
                    let mut chunk = free_rx.try_recv().unwrap_or_default();
                    chunk.resize(Self::CHUNK, 0);
                    let r = if slot.is_some() {
                        read_full(&mut source, &mut chunk)
                    } else {
                        read_full(source.get_mut(), &mut chunk)
                    };
                    match r {
                        Ok(0) => {
                            // Stored before the channel closes: the consumer
                            // sees EOF only after this.
                            if let Some(slot) = &slot {
                                let (_, d, n) = source.finish();
                                if let Ok(mut s) = slot.lock() {
                                    *s = Some((d, n));
                                }
                            }
                            break;
                        }
                        Ok(n) => {
                            chunk.truncate(n);
                            if tx.send(Ok(chunk)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(?e, "cannot spawn decompression thread"));
        ThreadedReader {
            rx,
            free: free_tx,
            current: Vec::new(),
            pos: 0,
            done: false,
            digest,
        }
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    if used.capacity() > 0 {
                        // The thread may be gone already: then it is dropped.
                        let _ = self.free.send(used);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    // Sender gone: clean EOF (or thread failed to start, and
                    // then nothing was read: the tar parser reports it).
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn media_types_and_sniffing() {
        assert_eq!(
            Compression::from_media_type(media_type::DOCKER_LAYER_GZIP).unwrap(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(media_type::OCI_LAYER_NONDIST_ZSTD).unwrap(),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type(media_type::OCI_LAYER).unwrap(),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::from_media_type("application/octet-stream").unwrap(),
            None
        );
        assert!(Compression::from_media_type("application/vnd.oci.image.config.v1+json").is_err());
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
    }

    #[test]
    fn decompresses_by_sniffing_through_a_thread() {
        let payload = b"some tar-ish payload ".repeat(50_000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&payload).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&payload[..], 3).unwrap();
        for (bytes, mt) in [
            (gz.clone(), None),
            (gz, Some(media_type::OCI_LAYER_GZIP)),
            (zs.clone(), None),
            (zs, Some(media_type::OCI_LAYER_ZSTD)),
            (payload.clone(), None),
        ] {
            let r = decompress(std::io::Cursor::new(bytes.clone()), mt).unwrap();
            let mut t = ThreadedReader::spawn(r);
            let mut out = Vec::new();
            t.read_to_end(&mut out).unwrap();
            assert_eq!(out, payload);
            assert_eq!(t.digest(), None);

            let r = decompress(std::io::Cursor::new(bytes), mt).unwrap();
            let mut t = ThreadedReader::spawn_hashing(r);
            let mut out = Vec::new();
            t.read_to_end(&mut out).unwrap();
            assert_eq!(out, payload);
            assert_eq!(
                t.digest(),
                Some((Digest::from_bytes(&payload), payload.len() as u64))
            );
        }
    }
}
