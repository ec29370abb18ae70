//! The volumes service, as `docker volume ls/inspect/rm/prune/create` see it.
//!
//! wharf keeps no volume objects yet: a bind mount is a host path the
//! container's record carries, and an anonymous volume (`-v /data`, an
//! image's `VOLUME`) is a directory in the container's writable layer,
//! gone with the container. Named volumes (`-v name:/data`, `docker volume
//! create`) are not supported yet, so the volume store is empty: lists are
//! empty, lookups answer dockerd's "no such volume", prune deletes nothing
//! and create is refused with a message that says why. Filters are still
//! checked as dockerd checks them, so a bad request fails the same way it
//! will once volumes exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ErrorKind;
use crate::events::{Actor, Event, Events};
use crate::filters::{FilterError, Filters};

/// Filters `GET /volumes` accepts.
pub const LIST_FILTERS: [&str; 4] = ["dangling", "driver", "label", "name"];

/// Filters `POST /volumes/prune` accepts.
pub const PRUNE_FILTERS: [&str; 3] = ["all", "label", "label!"];

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A bad `filters` parameter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `all` given several times (dockerd's wording).
    #[error("invalid filter 'all=[{}]': only one value is expected", values.join(" "))]
    SeveralAll { values: Vec<String> },
    /// `all` is not a boolean (dockerd's wording).
    #[error("invalid filter 'all': strconv.ParseBool: parsing {value:?}: invalid syntax")]
    BadAll { value: String },
    /// No volume has this name (dockerd's `get NAME: no such volume`).
    #[error("get {name}: no such volume")]
    NotFound { name: String },
    /// `docker volume create`.
    #[error(
        "cannot create volume {name:?}: named volumes are not supported by wharf yet; bind-mount an absolute host path instead (-v /host/dir:/container/dir)"
    )]
    CreateUnsupported { name: String },
    /// `PUT /volumes/{name}` updates cluster volumes only (dockerd's wording).
    #[error("volume update only valid for cluster volumes, but swarm is unavailable")]
    UpdateNeedsSwarm,
}

impl VolumeError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::Filter(f) => f.kind(),
            VolumeError::SeveralAll { .. }
            | VolumeError::BadAll { .. }
            | VolumeError::CreateUnsupported { .. } => ErrorKind::InvalidArgument,
            VolumeError::NotFound { .. } => ErrorKind::NotFound,
            VolumeError::UpdateNeedsSwarm => ErrorKind::Unavailable,
        }
    }
}

/// A volume (dockerd's `volume.Volume`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    pub options: BTreeMap<String, String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumePruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// The volumes service (see the module docs).
#[derive(Debug)]
pub struct Volumes {
    events: Arc<Events>,
}

impl Volumes {
    pub fn new(events: Arc<Events>) -> Volumes {
        Volumes { events }
    }

    /// Every volume: none exist yet (see the module docs).
    fn all(&self) -> Vec<Volume> {
        Vec::new()
    }

    /// `GET /volumes?filters=`.
    pub fn list(&self, f: &Filters) -> Result<Vec<Volume>, VolumeError> {
        f.validate(&LIST_FILTERS)?;
        // Every volume is unreferenced: nothing can use one yet.
        let dangling = f.bool_or("dangling", false)?;
        Ok(self
            .all()
            .into_iter()
            .filter(|v| {
                f.exact("driver", &v.driver)
                    && f.matches("name", &v.name)
                    && f.matches_labels("label", &v.labels)
                    && (!f.contains("dangling") || dangling)
            })
            .collect())
    }

    /// `GET /volumes/{name}`.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        self.all()
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| VolumeError::NotFound {
                name: name.to_owned(),
            })
    }

    /// `DELETE /volumes/{name}?force=`: with `force` a missing volume is
    /// not an error (dockerd's rule).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        // No volume exists yet (see the module docs): never one to remove.
        match self.get(name) {
            Err(VolumeError::NotFound { .. }) if force => Ok(()),
            Err(e) => Err(e),
            Ok(v) => Err(VolumeError::NotFound { name: v.name }),
        }
    }

    /// `POST /volumes/prune?filters=`: unused local volumes (anonymous
    /// ones unless `all=true`) matching the labels.
    pub fn prune(&self, f: &Filters) -> Result<VolumePruneReport, VolumeError> {
        let all = match f.get("all") {
            [] => false,
            [v] => parse_go_bool(v).ok_or_else(|| VolumeError::BadAll { value: v.clone() })?,
            values => {
                return Err(VolumeError::SeveralAll {
                    values: values.to_vec(),
                });
            }
        };
        f.validate(&PRUNE_FILTERS)?;
        let deleted: Vec<String> = self
            .all()
            .into_iter()
            .filter(|v| {
                (all || v.labels.contains_key("com.docker.volume.anonymous"))
                    && f.matches_labels("label", &v.labels)
                    && (!f.contains("label!") || !f.matches_labels("label!", &v.labels))
            })
            .map(|v| v.name)
            .collect();
        let report = VolumePruneReport {
            deleted,
            space_reclaimed: 0,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut attributes = BTreeMap::new();
        attributes.insert("reclaimed".to_owned(), report.space_reclaimed.to_string());
        self.events.publish(Event {
            typ: "volume",
            action: "prune".to_owned(),
            actor: Actor {
                id: String::new(),
                attributes,
            },
            scope: "local",
            time: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            time_nano: i64::try_from(now.as_nanos()).unwrap_or(i64::MAX),
            status: None,
            id: None,
            from: None,
        });
        Ok(report)
    }

    /// `POST /volumes/create`: refused (see the module docs).
    pub fn create(&self, name: &str) -> Result<Volume, VolumeError> {
        Err(VolumeError::CreateUnsupported {
            name: name.to_owned(),
        })
    }

    /// `PUT /volumes/{name}`: cluster volumes only, and wharf is never a
    /// swarm node.
    pub fn update(&self, _name: &str) -> Result<(), VolumeError> {
        Err(VolumeError::UpdateNeedsSwarm)
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &[&str])]) -> Filters {
        let m: BTreeMap<String, Vec<String>> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        Filters::from(m)
    }

    #[test]
    fn requests_are_checked_as_dockerd_checks_them() {
        let v = Volumes::new(Arc::new(Events::new()));
        assert!(v.list(&f(&[("dangling", &["true"])])).unwrap().is_empty());
        assert_eq!(
            v.list(&f(&[("dangling", &["x"])])).unwrap_err().to_string(),
            "invalid filter 'dangling=[x]'"
        );
        assert_eq!(
            v.list(&f(&[("until", &["1h"])])).unwrap_err().to_string(),
            "invalid filter 'until'"
        );
        let e = v.get("data").unwrap_err();
        assert_eq!(e.to_string(), "get data: no such volume");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(v.remove("data", true).is_ok());
        assert!(v.remove("data", false).is_err());
        assert_eq!(
            v.prune(&f(&[("all", &["true"])])).unwrap(),
            VolumePruneReport::default()
        );
        assert_eq!(
            v.prune(&f(&[("all", &["a", "b"])]))
                .unwrap_err()
                .to_string(),
            "invalid filter 'all=[a b]': only one value is expected"
        );
        assert!(matches!(
            v.prune(&f(&[("all", &["maybe"])])),
            Err(VolumeError::BadAll { .. })
        ));
        assert!(v.prune(&f(&[("dangling", &["1"])])).is_err());
        assert_eq!(
            v.create("x").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(v.update("x").unwrap_err().kind(), ErrorKind::Unavailable);
    }
}
