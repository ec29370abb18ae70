//! `docker commit`: a container's changes (a layer tarball in the image
//! layer format, whiteouts as `.wh.` entries) become a new image on top of
//! the container's image, with the container's config merged under the
//! `--change` instructions as dockerd merges them.
//!
//! The layer is stored and unpacked as a pulled one (its diffID computed
//! from the bytes, the snapshot keyed by chain ID); the record is written
//! last, so an interrupted commit leaves at most unreferenced blobs and
//! snapshots for garbage collection.

use std::io::Read;

use super::changes::apply_changes;
use super::ingest::{AddedLayer, diff_id_of, spool};
use super::{Images, OpsError, parse_reference, time};
use crate::digest::Digest;
use crate::image_store::ImageRecord;
use crate::manifest::config::EmptyObject;
use crate::manifest::{ConfigFile, ContainerConfig, History, ImageConfig, Platform, RootFs};
use crate::snapshot::chain_ids;

/// `POST /commit` options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOptions {
    /// Tag the image with this reference (`latest` when it has no tag).
    pub reference: Option<String>,
    /// The container's configuration (the defaults of the new image).
    pub container_config: ContainerConfig,
    /// A configuration the client sent, applied over the container's.
    pub config: Option<ContainerConfig>,
    /// Dockerfile-style config changes (see [`super::apply_changes`]).
    pub changes: Vec<String>,
    /// The commit message (`comment` of the config and its history entry).
    pub comment: Option<String>,
    /// The author (`author` of the config and its history entry).
    pub author: Option<String>,
    /// The container's command, recorded as the history step.
    pub created_by: String,
    /// The container's ID, recorded as the config's `container`.
    pub container_id: String,
    /// The platform when the container has no image (`scratch`).
    pub platform: Option<Platform>,
}

/// dockerd's merge: what the client's config (with the changes applied)
/// leaves unset comes from the container's config; environment variables,
/// exposed ports and volumes are unions (the client's win).
fn merge(user: &mut ContainerConfig, container: &ContainerConfig) {
    if user.user.as_deref().unwrap_or_default().is_empty() {
        user.user.clone_from(&container.user);
    }
    match (&mut user.exposed_ports, &container.exposed_ports) {
        (None, c) => user.exposed_ports.clone_from(c),
        (Some(u), Some(c)) => {
            for k in c.keys() {
                u.entry(k.clone()).or_insert(EmptyObject {});
            }
        }
        (Some(_), None) => {}
    }
    match (&mut user.env, &container.env) {
        (u, c) if u.as_ref().is_none_or(Vec::is_empty) => u.clone_from(c),
        (Some(u), Some(c)) => {
            for kv in c {
                let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                let present = u
                    .iter()
                    .any(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) == key);
                if !present {
                    u.push(kv.clone());
                }
            }
        }
        _ => {}
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd.clone_from(&container.cmd);
            user.args_escaped = container.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint.clone_from(&container.entrypoint);
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck.clone_from(&container.healthcheck);
    }
    if user.working_dir.as_deref().unwrap_or_default().is_empty() {
        user.working_dir.clone_from(&container.working_dir);
    }
    match (&mut user.volumes, &container.volumes) {
        (None, c) => user.volumes.clone_from(c),
        (Some(u), Some(c)) => {
            for k in c.keys() {
                u.entry(k.clone()).or_insert(EmptyObject {});
            }
        }
        (Some(_), None) => {}
    }
    if user.stop_signal.as_deref().unwrap_or_default().is_empty() {
        user.stop_signal.clone_from(&container.stop_signal);
    }
    if user.labels.is_none() {
        user.labels.clone_from(&container.labels);
    }
    if user.shell.is_none() {
        user.shell.clone_from(&container.shell);
    }
    if user.on_build.is_none() {
        user.on_build.clone_from(&container.on_build);
    }
    if user.hostname.is_none() {
        user.hostname.clone_from(&container.hostname);
    }
    if user.domainname.is_none() {
        user.domainname.clone_from(&container.domainname);
    }
    for (k, v) in &container.extra {
        user.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

impl Images {
    /// Commits the layer tarball `layer` on top of image `parent` (`None`
    /// for a container without an image); returns the new image ID.
    pub fn commit<R: Read>(
        &self,
        parent: Option<&Digest>,
        layer: R,
        opts: &CommitOptions,
    ) -> Result<Digest, OpsError> {
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
        let mut config = opts.config.clone().unwrap_or_default();
        apply_changes(&mut config, &opts.changes)?;
        merge(&mut config, &opts.container_config);

        let (parent_file, parent_record) = match parent {
            Some(id) => {
                let record = self.store.get(id)?.ok_or_else(|| OpsError::NotFound {
                    name: id.to_string(),
                })?;
                (Some(self.config(id)?.file().clone()), Some(record))
            }
            None => (None, None),
        };
        let parent_layers: Vec<AddedLayer> = match &parent_record {
            Some(rec) => self
                .stored_manifest(rec)?
                .layers
                .into_iter()
                .map(|blob| AddedLayer {
                    blob,
                    chain_id: Digest::from_bytes(b""),
                })
                .collect(),
            None => Vec::new(),
        };
        let mut diff_ids = parent_file
            .as_ref()
            .map(|f| f.rootfs.diff_ids.clone())
            .unwrap_or_default();
        let parent_chain = chain_ids(&diff_ids).pop();

        let mut file = spool(self, layer, "container changes")?;
        let diff_id = diff_id_of(&mut file, None, "container changes")?;
        let added = self.add_layer(
            &mut file,
            None,
            parent_chain.as_ref(),
            &diff_id,
            None,
            "container changes",
        )?;
        diff_ids.push(diff_id);

        let now = time::now_rfc3339();
        let platform = match &parent_file {
            Some(f) => f.platform(),
            None => opts.platform.clone().unwrap_or_else(Platform::host),
        };
        let mut history = parent_file
            .as_ref()
            .map(|f| f.history.clone())
            .unwrap_or_default();
        history.push(History {
            created: Some(now.clone()),
            created_by: Some(opts.created_by.clone()),
            author: opts.author.clone().filter(|a| !a.is_empty()),
            comment: opts.comment.clone().filter(|c| !c.is_empty()),
            ..History::default()
        });
        let mut extra = serde_json::Map::new();
        if let Some(c) = opts.comment.as_ref().filter(|c| !c.is_empty()) {
            extra.insert("comment".into(), c.clone().into());
        }
        if let Some(p) = parent {
            extra.insert("parent".into(), p.to_string().into());
        }
        extra.insert("container".into(), opts.container_id.clone().into());
        let file_cfg = ConfigFile {
            architecture: platform.arch.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            created: Some(now.clone()),
            author: opts.author.clone().filter(|a| !a.is_empty()),
            config: Some(config),
            rootfs: RootFs {
                typ: "layers".into(),
                diff_ids,
            },
            history,
            extra,
            ..ConfigFile::default()
        };
        let image = ImageConfig::from_file(file_cfg).map_err(|source| OpsError::Config {
            id: "new".into(),
            source,
        })?;
        let mut layers = parent_layers;
        layers.push(added.clone());
        let manifest = self.store_config_and_manifest(&image, &layers)?;
        let blobs = layers.iter().map(|l| l.blob.digest.clone()).collect();
        let mut record = ImageRecord::new(
            image.id().clone(),
            manifest,
            Some(added.chain_id.clone()),
            blobs,
        );
        if let Some(p) = &parent_record {
            record.sources.clone_from(&p.sources);
        }
        let refs: Vec<String> = reference.iter().map(ToString::to_string).collect();
        if !refs.is_empty() {
            record.last_tag_time = Some(now);
        }
        self.store.record(record, &refs)?;
        tracing::info!(image = %image.id(), reference = ?refs, "container committed");
        Ok(image.id().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ContainerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn merge_fills_what_the_changes_leave_unset() {
        let container = cfg(
            r#"{"User":"app","Env":["A=1","PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/w",
                "ExposedPorts":{"80/tcp":{}},"Tty":true}"#,
        );
        let mut user = ContainerConfig::default();
        apply_changes(
            &mut user,
            &["ENV A=2 B=3".to_owned(), "EXPOSE 443".to_owned()],
        )
        .unwrap();
        merge(&mut user, &container);
        assert_eq!(user.user.as_deref(), Some("app"));
        assert_eq!(
            user.env.unwrap(),
            ["A=2", "B=3", "PATH=/bin"].map(String::from)
        );
        assert_eq!(user.cmd.unwrap(), ["sh"]);
        assert_eq!(user.working_dir.as_deref(), Some("/w"));
        let ports: Vec<&String> = user.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["443/tcp", "80/tcp"]);
        assert_eq!(user.extra.get("Tty"), Some(&serde_json::Value::Bool(true)));
    }

    #[test]
    fn a_changed_entrypoint_keeps_the_changed_cmd_only() {
        let container = cfg(r#"{"Entrypoint":["/e"],"Cmd":["c"]}"#);
        let mut user = ContainerConfig::default();
        apply_changes(&mut user, &[r#"ENTRYPOINT ["/x"]"#.to_owned()]).unwrap();
        merge(&mut user, &container);
        assert_eq!(user.entrypoint.unwrap(), ["/x"]);
        assert_eq!(user.cmd, None);
        let mut user = ContainerConfig::default();
        apply_changes(&mut user, &[r#"CMD ["y"]"#.to_owned()]).unwrap();
        merge(&mut user, &container);
        assert_eq!(user.entrypoint.unwrap(), ["/e"]);
        assert_eq!(user.cmd.unwrap(), ["y"]);
    }
}
