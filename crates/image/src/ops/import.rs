//! `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes
//! a one-layer image, with a config built from `--change` instructions.

use std::io::Read;

use super::changes::apply_changes;
use super::ingest::{diff_id_of, spool};
use super::{Images, OpsError, parse_reference, time};
use crate::digest::Digest;
use crate::image_store::ImageRecord;
use crate::manifest::{ConfigFile, ContainerConfig, History, ImageConfig, Platform, RootFs};

/// `POST /images/create?fromSrc=-` options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOptions {
    /// Tag the image with this reference (`latest` when it has no tag).
    pub reference: Option<String>,
    /// Dockerfile-style config changes (see [`super::apply_changes`]).
    pub changes: Vec<String>,
    /// The commit message: the config's `comment` and its history entry's.
    pub message: Option<String>,
    /// The platform to record; the host's when `None`.
    pub platform: Option<Platform>,
}

impl Images {
    /// Imports the tarball `reader` yields; returns the new image ID.
    pub fn import<R: Read>(&self, reader: R, opts: &ImportOptions) -> Result<Digest, OpsError> {
        let _lease = self.store.gc().lease();
        // Validate everything cheap before touching the stores.
        let reference = match &opts.reference {
            Some(r) => {
                let parsed = parse_reference(r)?;
                if parsed.digest().is_some() {
                    return Err(OpsError::TagWithDigest { target: r.clone() });
                }
                Some(parsed)
            }
            None => None,
        };
        let mut container = ContainerConfig::default();
        apply_changes(&mut container, &opts.changes)?;

        let mut file = spool(self, reader, "imported tarball")?;
        let diff_id = diff_id_of(&mut file, None, "imported tarball")?;
        let layer = self.add_layer(&mut file, None, None, &diff_id, None, "imported tarball")?;

        let platform = opts.platform.clone().unwrap_or_else(Platform::host);
        let now = time::now_rfc3339();
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| "Imported from -".to_owned());
        let mut extra = serde_json::Map::new();
        extra.insert("comment".into(), comment.clone().into());
        let file_cfg = ConfigFile {
            architecture: platform.arch.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            created: Some(now.clone()),
            config: Some(container),
            rootfs: RootFs {
                typ: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![History {
                created: Some(now.clone()),
                comment: Some(comment),
                ..History::default()
            }],
            extra,
            ..ConfigFile::default()
        };
        let config = ImageConfig::from_file(file_cfg).map_err(|source| OpsError::Config {
            id: "new".into(),
            source,
        })?;
        let manifest = self.store_config_and_manifest(&config, std::slice::from_ref(&layer))?;
        let mut record = ImageRecord::new(
            config.id().clone(),
            manifest,
            Some(layer.chain_id.clone()),
            vec![layer.blob.digest.clone()],
        );
        let refs: Vec<String> = reference.iter().map(ToString::to_string).collect();
        if !refs.is_empty() {
            record.last_tag_time = Some(now);
        }
        self.store.record(record, &refs)?;
        tracing::info!(image = %config.id(), reference = ?refs, "image imported");
        Ok(config.id().clone())
    }
}
