//! The build service as far as it exists: wharf has no image builder yet
//! (`docker build` arrives with it), so there is no build cache. A cache
//! prune checks its request as dockerd (BuildKit) does, deletes nothing and
//! says so; a build is refused with a message naming what is missing; a
//! cancel finds no build to cancel, which dockerd also answers with
//! success.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ErrorKind;
use crate::events::{Actor, Event, Events};
use crate::filters::{FilterError, Filters};

/// Filters `POST /build/prune` accepts (BuildKit's cache fields included).
pub const PRUNE_FILTERS: [&str; 11] = [
    "unused-for",
    "until",
    "label",
    "label!",
    "id",
    "parent",
    "type",
    "description",
    "inuse",
    "shared",
    "private",
];

/// Why a build request failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A bad `filters` parameter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A byte-count parameter that is not an integer (dockerd's wording).
    #[error(
        "{name} is in bytes and expects an integer, got {value}: strconv.Atoi: parsing {value:?}: invalid syntax"
    )]
    BadBytes { name: &'static str, value: String },
    /// `POST /build`.
    #[error(
        "building images is not supported by wharf yet: there is no builder (neither the classic builder nor BuildKit); build with another tool and docker load or pull the result"
    )]
    Unsupported,
    /// `POST /build/cancel` without an ID (dockerd's wording).
    #[error("build ID not provided")]
    NoBuildId,
}

impl BuildError {
    /// Every build error is a bad request.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// `POST /build/prune`.
#[derive(Debug, Clone, Default)]
pub struct CachePruneRequest {
    pub all: bool,
    pub filters: Filters,
    /// `reserved-space` (or the older `keep-storage`), `max-used-space`,
    /// `min-free-space`, as given.
    pub sizes: Vec<(&'static str, String)>,
}

/// What a cache prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// The build service (see the module docs).
#[derive(Debug)]
pub struct Builds {
    events: Arc<Events>,
}

impl Builds {
    pub fn new(events: Arc<Events>) -> Builds {
        Builds { events }
    }

    /// Removes build cache records: there are none.
    pub fn prune(&self, req: &CachePruneRequest) -> Result<CachePruneReport, BuildError> {
        for (name, value) in &req.sizes {
            if !value.is_empty() && value.parse::<i64>().is_err() {
                return Err(BuildError::BadBytes {
                    name,
                    value: value.clone(),
                });
            }
        }
        req.filters.validate(&PRUNE_FILTERS)?;
        let report = CachePruneReport::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut attributes = BTreeMap::new();
        attributes.insert("reclaimed".to_owned(), report.space_reclaimed.to_string());
        self.events.publish(Event {
            typ: "builder",
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

    /// `POST /build`: refused.
    pub fn build(&self) -> Result<(), BuildError> {
        Err(BuildError::Unsupported)
    }

    /// `POST /build/cancel?id=`: no build runs, so there is nothing to
    /// cancel (dockerd answers success for an unknown ID too).
    pub fn cancel(&self, id: &str) -> Result<(), BuildError> {
        if id.is_empty() {
            return Err(BuildError::NoBuildId);
        }
        tracing::debug!(build_id = %id, "cancel: no such build running");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_checks_like_buildkit() {
        let b = Builds::new(Arc::new(Events::new()));
        let ok = b.prune(&CachePruneRequest::default()).unwrap();
        assert_eq!(ok, CachePruneReport::default());
        let mut m = BTreeMap::new();
        m.insert("mutable".to_owned(), vec!["true".to_owned()]);
        let req = CachePruneRequest {
            filters: Filters::from(m),
            ..CachePruneRequest::default()
        };
        assert_eq!(
            b.prune(&req).unwrap_err().to_string(),
            "invalid filter 'mutable'"
        );
        let req = CachePruneRequest {
            sizes: vec![("keep-storage", "1GB".to_owned())],
            ..CachePruneRequest::default()
        };
        assert!(
            b.prune(&req)
                .unwrap_err()
                .to_string()
                .starts_with("keep-storage is in bytes and expects an integer, got 1GB")
        );
        assert!(b.cancel("").is_err());
        assert!(b.cancel("x").is_ok());
        assert!(b.build().is_err());
    }
}
