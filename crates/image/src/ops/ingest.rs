//! Adding a layer from a local file (load, import): the file becomes a blob
//! (digest checked on commit), and is unpacked into a layer snapshot
//! committed on top of its parent, with its diff ID verified.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use super::{Images, OpsError, content_err, io_err, snapshot_err};
use crate::content::Ingest;
use crate::digest::{Digest, Hasher};
use crate::layer::{Compression, apply_compressed_layer, decompress, media_type as layer_media};
use crate::manifest::{Descriptor, ImageConfig, ImageManifest, media_type};
use crate::snapshot::chain_id;

/// A layer as added: its blob and what it unpacked to.
#[derive(Debug, Clone)]
pub(crate) struct AddedLayer {
    pub blob: Descriptor,
    pub chain_id: Digest,
}

/// sha256 and length of a file's bytes, from the start; rewinds after.
pub(crate) fn hash_file(file: &mut File, what: &str) -> Result<(Digest, u64), OpsError> {
    file.rewind().map_err(io_err("seek", what))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = file.read(&mut buf).map_err(io_err("read", what))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    file.rewind().map_err(io_err("seek", what))?;
    Ok((h.finish(), n))
}

/// The diff ID of a (possibly compressed) layer file; rewinds after.
pub(crate) fn diff_id_of(
    file: &mut File,
    media: Option<&str>,
    what: &str,
) -> Result<Digest, OpsError> {
    file.rewind().map_err(io_err("seek", what))?;
    let mut r = decompress(&mut *file, media).map_err(|source| OpsError::Layer {
        layer: what.to_owned(),
        source,
    })?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = r.read(&mut buf).map_err(io_err("decompress", what))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
    }
    drop(r);
    file.rewind().map_err(io_err("seek", what))?;
    Ok(h.finish())
}

/// The OCI layer media type for a file's compression (by magic bytes).
fn sniff_media(file: &mut File, what: &str) -> Result<&'static str, OpsError> {
    file.rewind().map_err(io_err("seek", what))?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        let k = file.read(&mut head[n..]).map_err(io_err("read", what))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    file.rewind().map_err(io_err("seek", what))?;
    Ok(match Compression::sniff(&head[..n]) {
        Compression::None => layer_media::OCI_LAYER,
        Compression::Gzip => layer_media::OCI_LAYER_GZIP,
        Compression::Zstd => layer_media::OCI_LAYER_ZSTD,
    })
}

/// A temporary file in the content store's filesystem.
pub(crate) fn temp_file(images: &Images) -> Result<File, OpsError> {
    tempfile::tempfile_in(images.content.root()).map_err(io_err(
        "create temporary file in",
        images.content.root().display(),
    ))
}

/// Copies `reader` into a new temporary file.
pub(crate) fn spool<R: Read>(images: &Images, mut reader: R, what: &str) -> Result<File, OpsError> {
    let mut f = temp_file(images)?;
    io::copy(&mut reader, &mut f).map_err(io_err("read", what))?;
    f.flush().map_err(io_err("write", what))?;
    f.rewind().map_err(io_err("seek", what))?;
    Ok(f)
}

impl Images {
    /// Stores `file` as a blob and unpacks it on `parent` as the layer with
    /// `diff_id`. `expect_digest` (from an OCI layout path) must match the
    /// file's bytes when given.
    pub(crate) fn add_layer(
        &self,
        file: &mut File,
        media: Option<&str>,
        parent: Option<&Digest>,
        diff_id: &Digest,
        expect_digest: Option<&Digest>,
        what: &str,
    ) -> Result<AddedLayer, OpsError> {
        let (digest, size) = hash_file(file, what)?;
        if let Some(exp) = expect_digest
            && *exp != digest
        {
            return Err(OpsError::InvalidArchive {
                reason: format!("{what} has digest {digest}, not {exp}"),
            });
        }
        let media = match media {
            Some(m) => m.to_owned(),
            None => sniff_media(file, what)?.to_owned(),
        };
        match self
            .content
            .writer(&digest, Some(size))
            .map_err(content_err(&digest))?
        {
            Ingest::Exists(_) => {}
            Ingest::New(mut w) => {
                w.reset().map_err(content_err(&digest))?;
                io::copy(file, &mut w).map_err(io_err("store", what))?;
                w.commit().map_err(content_err(&digest))?;
            }
        }
        let chain = chain_id(parent, diff_id);
        if !self.snapshots.exists(&chain) {
            let prepared = self
                .snapshots
                .prepare_layer(&chain, parent)
                .map_err(snapshot_err(&chain))?;
            let blob = self.content.read(&digest).map_err(content_err(&digest))?;
            let stats =
                apply_compressed_layer(blob, Some(&media), &prepared.unpack_dir(), &self.apply)
                    .map_err(|source| OpsError::Layer {
                        layer: what.to_owned(),
                        source,
                    })?;
            if stats.diff_id != *diff_id {
                return Err(OpsError::DiffIdMismatch {
                    layer: what.to_owned(),
                    expected: diff_id.clone(),
                    actual: stats.diff_id,
                });
            }
            self.snapshots
                .commit_layer(prepared, diff_id)
                .map_err(snapshot_err(&chain))?;
        }
        file.rewind().map_err(io_err("seek", what))?;
        Ok(AddedLayer {
            blob: Descriptor::new(&media, digest, size),
            chain_id: chain,
        })
    }

    /// Stores a config and an OCI manifest for it; returns the manifest digest.
    pub(crate) fn store_config_and_manifest(
        &self,
        config: &ImageConfig,
        layers: &[AddedLayer],
    ) -> Result<Digest, OpsError> {
        self.content
            .write_bytes(config.bytes())
            .map_err(content_err(config.id()))?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.to_owned()),
            artifact_type: None,
            config: Descriptor::new(
                media_type::OCI_CONFIG,
                config.id().clone(),
                config.bytes().len() as u64,
            ),
            layers: layers.iter().map(|l| l.blob.clone()).collect(),
            subject: None,
            annotations: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| OpsError::Io {
            op: "serialise",
            what: "image manifest".into(),
            source: e.into(),
        })?;
        let d = Digest::from_bytes(&bytes);
        self.content.write_bytes(&bytes).map_err(content_err(&d))
    }
}
