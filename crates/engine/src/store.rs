//! Persistent container records: one JSON file per container, replaced
//! atomically, so a crash at any point leaves either the old or the new
//! record (ADR 0006).
//!
//! # On-disk layout (version 1)
//! ```text
//! <data-root>/containers/<id>/config.v2.json    crate::model::Container, "Version": 1
//! <data-root>/containers/<id>/.config.v2.json.tmp   in-flight write (ignored, removed on load)
//! <data-root>/containers/tmp-rm-<id>/           a removed container's directory, deleted
//!                                               in the background (swept at start)
//! ```
//! Writes go to the temporary file, are fsynced, then renamed over the
//! record (the directory is fsynced after the first write). A directory
//! without `config.v2.json` is a create that crashed before its first write
//! and is removed by [`ContainerStore::load_all`]'s caller. Migration rule: a
//! new layout bumps `Version`; records of unknown versions are refused
//! (reported, not deleted).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::model::Container;

/// The record version this code reads and writes.
pub const RECORD_VERSION: u32 = 1;
const RECORD: &str = "config.v2.json";
/// Name prefix of directories taken out by [`ContainerStore::hide`].
const HIDDEN_PREFIX: &str = "tmp-rm-";

/// Why a container record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The record is not valid JSON of the expected shape.
    #[error("container record {path} is corrupt")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The record has a version this code does not know.
    #[error(
        "container record {path} has version {found}; this wharf understands only {RECORD_VERSION}"
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { op, path, source }
}

/// What [`ContainerStore::load_all`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub containers: Vec<Container>,
    /// Directories without a record (crashed creates).
    pub incomplete: Vec<PathBuf>,
    /// Records that could not be read.
    pub broken: Vec<StoreError>,
}

/// Container records below `<data-root>/containers`.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: PathBuf,
}

impl ContainerStore {
    pub fn new(root: impl Into<PathBuf>) -> ContainerStore {
        ContainerStore { root: root.into() }
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the container's directory; fails if it exists.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        fs::create_dir_all(&self.root).map_err(io("create directory", &self.root))?;
        let dir = self.dir(id);
        fs::create_dir(&dir).map_err(io("create directory", &dir))?;
        Ok(dir)
    }

    /// Atomically replaces the record of `c`.
    pub fn save(&self, c: &Container) -> Result<(), StoreError> {
        let dir = self.dir(&c.id);
        let path = dir.join(RECORD);
        let tmp = dir.join(format!(".{RECORD}.tmp"));
        let bytes = serde_json::to_vec(c).map_err(|source| StoreError::Parse {
            path: path.clone(),
            source,
        })?;
        let first = !path.exists();
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        if first {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io("fsync", &dir))?;
        }
        Ok(())
    }

    /// Reads one record.
    pub fn load(&self, id: &str) -> Result<Container, StoreError> {
        let path = self.dir(id).join(RECORD);
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        #[derive(serde::Deserialize)]
        struct V {
            #[serde(rename = "Version")]
            version: u32,
        }
        let v: V = serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse {
            path: path.clone(),
            source,
        })?;
        if v.version != RECORD_VERSION {
            return Err(StoreError::UnsupportedVersion {
                path,
                found: v.version,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse { path, source })
    }

    /// Every record; directories without one are reported as incomplete.
    pub fn load_all(&self) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("read directory", &self.root)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io("read directory", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !crate::ids::is_full_id(&name) {
                continue;
            }
            let _ = fs::remove_file(entry.path().join(format!(".{RECORD}.tmp")));
            if !entry.path().join(RECORD).exists() {
                out.incomplete.push(entry.path());
                continue;
            }
            match self.load(&name) {
                Ok(c) => out.containers.push(c),
                Err(e) => out.broken.push(e),
            }
        }
        Ok(out)
    }

    /// Takes the container's directory out of the store with one rename (a
    /// restart no longer finds it) and returns where it went, for the caller
    /// to delete; `None` if it was already gone. Hidden directories a crash
    /// left behind are found by [`Self::hidden`].
    pub fn hide(&self, id: &str) -> Result<Option<PathBuf>, StoreError> {
        let dir = self.dir(id);
        let to = self.root.join(format!("{HIDDEN_PREFIX}{id}"));
        match fs::rename(&dir, &to) {
            Ok(()) => Ok(Some(to)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("rename", &dir)(e)),
        }
    }

    /// The directories [`Self::hide`] left that were never deleted.
    pub fn hidden(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(HIDDEN_PREFIX))
            .map(|e| e.path())
            .collect()
    }

    /// Removes the container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn sample(id: &str) -> Container {
        Container {
            version: RECORD_VERSION,
            id: id.to_owned(),
            name: "/x".into(),
            created: crate::time::ZERO_TIME.into(),
            path: "sh".into(),
            args: vec![],
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            image: "sha256:00".into(),
            state: State::default(),
            restart_count: 0,
            driver: "overlay".into(),
            snapshot_key: id.to_owned(),
            platform: "linux".into(),
            log_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            resolv_conf_path: String::new(),
            manually_stopped: false,
            inherited_mounts: Vec::new(),
        }
    }

    #[test]
    fn save_load_version_and_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContainerStore::new(dir.path());
        let a = crate::ids::new_id().unwrap();
        let b = crate::ids::new_id().unwrap();
        s.create_dir(&a).unwrap();
        assert!(s.create_dir(&a).is_err(), "duplicate id must fail");
        let mut c = sample(&a);
        c.config.labels.insert("k".into(), "v".into());
        c.host_config
            .extra
            .insert("Foo".into(), serde_json::json!(1));
        s.save(&c).unwrap();
        c.state.set_status(Status::Running);
        s.save(&c).unwrap();
        assert_eq!(s.load(&a).unwrap(), c);
        s.create_dir(&b).unwrap();
        let loaded = s.load_all().unwrap();
        assert_eq!(loaded.containers.len(), 1);
        assert_eq!(loaded.incomplete, vec![s.dir(&b)]);

        fs::write(s.dir(&a).join(RECORD), r#"{"Version": 9}"#).unwrap();
        assert!(matches!(
            s.load(&a),
            Err(StoreError::UnsupportedVersion { found: 9, .. })
        ));
        s.remove(&a).unwrap();
        s.remove(&a).unwrap();
    }

    #[test]
    fn docker_shaped_config_parses() {
        let body = r#"{"Hostname":"","User":"","AttachStdin":false,"Tty":false,"Env":null,"Cmd":"echo hi","Image":"busybox","Entrypoint":null,"Labels":{},"Volumes":{},"WorkingDir":"","OnBuild":null,"MacAddress":"x"}"#;
        let c: ContainerConfig = serde_json::from_str(body).unwrap();
        assert_eq!(c.cmd, Some(vec!["echo hi".to_owned()]));
        assert_eq!(c.extra.get("MacAddress"), Some(&serde_json::json!("x")));
        let h: HostConfig = serde_json::from_str(
            r#"{"Binds":null,"NetworkMode":"default","Memory":0,"PidsLimit":null,"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"LogConfig":{"Type":"","Config":null}}"#,
        )
        .unwrap();
        assert_eq!(h.network_mode, "default");
        assert_eq!(h.restart_policy.name, "no");
    }
}
