//! The networks service: the networks a container can be in, as
//! `docker network ls/inspect/rm/prune` see them.
//!
//! wharf supports the network modes `host` (the host's network namespace)
//! and `none` (a private namespace with loopback only; the default mode
//! gets that too until bridge networking exists). dockerd shows those modes
//! as its predefined networks `host` (driver `host`) and `none` (driver
//! `null`), and so does this service. Bridge and user-defined networks are
//! not supported yet: creating, connecting and disconnecting fail with a
//! message that says so; removing a predefined network is refused with
//! dockerd's 403 message; prune has nothing it may delete.
//!
//! A network's containers are the running containers in its mode (a
//! default-mode container is in `none`, as its `NetworkSettings` say); they
//! have no endpoint ID, MAC or address, since wharf creates no endpoints.
//!
//! State on disk, written once per data root and never rewritten unless a
//! predefined network is missing from it (so IDs and creation times are
//! stable across restarts):
//! ```text
//! <data-root>/network/predefined.json   {"Version":1,"Networks":[{"Name","Id","Driver","Created"}]}
//! ```
//! written to a temporary file, fsynced, renamed over the old one, and the
//! directory fsynced: after a crash the file is either absent (IDs are
//! generated again; nothing refers to them yet) or complete. An unknown
//! `Version` is refused rather than guessed at.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::containers::Containers;
use crate::error::{EngineError, ErrorKind};
use crate::events::{Actor, Event, Events};
use crate::filters::{FilterError, Filters};
use crate::model::Container;

/// Layout version of `predefined.json`.
pub const STATE_VERSION: u32 = 1;

/// The predefined networks wharf serves: (name, driver).
pub const PREDEFINED: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

/// Names dockerd reserves for its predefined networks (`bridge` and
/// `default` included, though wharf has no bridge network yet).
pub const RESERVED_NAMES: [&str; 4] = ["bridge", "host", "none", "default"];

/// Filters `GET /networks` accepts.
pub const LIST_FILTERS: [&str; 7] = ["dangling", "driver", "id", "label", "name", "scope", "type"];

/// Filters `POST /networks/prune` accepts.
pub const PRUNE_FILTERS: [&str; 3] = ["label", "label!", "until"];

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A bad `filters` parameter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `dangling` has several values.
    #[error("got more than one value for filter key \"dangling\"")]
    SeveralDangling,
    /// `dangling` is not a boolean.
    #[error(
        "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
    )]
    BadDangling,
    /// `type` is neither `builtin` nor `custom`.
    #[error("invalid filter: 'type'='{value}'")]
    BadType { value: String },
    /// No network has this name, ID or ID prefix.
    #[error("network {term} not found")]
    NotFound { term: String },
    /// An ID prefix matches several networks.
    #[error("network {term} is ambiguous ({count} matches found based on ID prefix)")]
    Ambiguous { term: String, count: usize },
    /// Predefined networks cannot be removed (dockerd's wording).
    #[error("{name} is a pre-defined network and cannot be removed")]
    RemovePredefined { name: String },
    /// A create with a predefined name (dockerd's wording, trailing space included).
    #[error("operation is not permitted on predefined {name} network ")]
    CreatePredefined { name: String },
    /// An overlay network needs a swarm manager (dockerd's wording).
    #[error(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    )]
    OverlayNeedsSwarm,
    /// Any other create.
    #[error(
        "cannot create network {name:?} (driver {driver:?}): bridge and user-defined networks are not supported by wharf yet; run containers with --network none or --network host"
    )]
    CreateUnsupported { name: String, driver: String },
    /// Connect or disconnect of a container.
    #[error(
        "cannot {op} container {container} {preposition} network {network}: wharf does not change a container's networks after creation yet (its network mode, none or host, is fixed when it is created)"
    )]
    ConnectUnsupported {
        op: &'static str,
        preposition: &'static str,
        container: String,
        network: String,
    },
    /// The named container does not exist (or another container error).
    #[error(transparent)]
    Container(Box<EngineError>),
    /// Reading or writing the state file failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state file does not parse.
    #[error("network state {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The state file has a layout this version does not know.
    #[error("network state {path} has version {version}; this wharf reads version {STATE_VERSION}")]
    Version { path: PathBuf, version: u32 },
}

impl NetworkError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use NetworkError as E;
        match self {
            E::Filter(f) => f.kind(),
            E::SeveralDangling
            | E::BadDangling
            | E::BadType { .. }
            | E::Ambiguous { .. }
            | E::CreateUnsupported { .. }
            | E::ConnectUnsupported { .. } => ErrorKind::InvalidArgument,
            E::NotFound { .. } => ErrorKind::NotFound,
            E::RemovePredefined { .. } | E::CreatePredefined { .. } | E::OverlayNeedsSwarm => {
                ErrorKind::Forbidden
            }
            E::Container(e) => e.kind(),
            E::Io { .. } | E::Corrupt { .. } | E::Version { .. } => ErrorKind::Internal,
        }
    }
}

/// A network's identity, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRecord {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    pub driver: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateFile {
    version: u32,
    networks: Vec<NetworkRecord>,
}

/// A container in a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The container's name, without the leading `/`.
    pub name: String,
    /// Empty: wharf creates no endpoints.
    pub endpoint_id: String,
    pub mac_address: String,
    pub ipv4_address: String,
    pub ipv6_address: String,
}

/// A network as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub record: NetworkRecord,
    /// `local`: wharf's networks exist on this host only.
    pub scope: &'static str,
    pub enable_ipv4: bool,
    pub enable_ipv6: bool,
    /// The IPAM driver; the predefined networks allocate no addresses.
    pub ipam_driver: &'static str,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    /// Running containers in the network, by container ID.
    pub containers: BTreeMap<String, Endpoint>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl Network {
    fn predefined(record: NetworkRecord) -> Network {
        Network {
            record,
            scope: "local",
            // libnetwork enables IPv4 on every network unless asked not to;
            // dockerd reports `true` for host and none.
            enable_ipv4: true,
            enable_ipv6: false,
            ipam_driver: "default",
            internal: false,
            attachable: false,
            ingress: false,
            config_only: false,
            containers: BTreeMap::new(),
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }

    /// Whether this is one of the networks dockerd predefines.
    pub fn is_predefined(&self) -> bool {
        RESERVED_NAMES.contains(&self.record.name.as_str())
    }
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateNetworkRequest {
    pub name: String,
    pub driver: String,
}

/// The network a container's mode puts it in.
pub fn network_of(c: &Container) -> &str {
    match c.host_config.network_mode.as_str() {
        "host" => "host",
        // The default mode has loopback only until bridge networking exists.
        "none" | "bridge" | "default" | "" => "none",
        other => other,
    }
}

/// The networks service.
#[derive(Debug)]
pub struct Networks {
    predefined: Vec<NetworkRecord>,
    containers: Arc<Containers>,
    events: Arc<Events>,
}

impl Networks {
    /// Loads (or creates, once) the predefined networks' identities under
    /// `dir` (`<data-root>/network`).
    pub fn open(
        dir: &Path,
        containers: Arc<Containers>,
        events: Arc<Events>,
    ) -> Result<Networks, NetworkError> {
        Ok(Networks {
            predefined: load_or_create(dir)?,
            containers,
            events,
        })
    }

    fn all(&self) -> Vec<Network> {
        let running: Vec<Container> = self
            .containers
            .list()
            .into_iter()
            .filter(|c| c.state.is_running())
            .collect();
        self.predefined
            .iter()
            .map(|r| {
                let mut n = Network::predefined(r.clone());
                for c in running.iter().filter(|c| network_of(c) == r.name) {
                    n.containers.insert(
                        c.id.clone(),
                        Endpoint {
                            name: c.name.trim_start_matches('/').to_owned(),
                            endpoint_id: String::new(),
                            mac_address: String::new(),
                            ipv4_address: String::new(),
                            ipv6_address: String::new(),
                        },
                    );
                }
                n
            })
            .collect()
    }

    /// `GET /networks`: the networks matching `filters`, by name; with
    /// `detailed` their containers too (dockerd lists them only for
    /// inspect and for API versions before 1.28).
    pub fn list(&self, filters: &Filters, detailed: bool) -> Result<Vec<Network>, NetworkError> {
        filters.validate(&LIST_FILTERS)?;
        let mut out = filter_networks(self.all(), filters)?;
        out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        if !detailed {
            for n in &mut out {
                n.containers.clear();
            }
        }
        Ok(out)
    }

    /// `GET /networks/{id}`: by full ID, then exact name, then unique ID
    /// prefix (dockerd's order); `scope` other than `local` finds nothing.
    pub fn inspect(&self, term: &str, scope: Option<&str>) -> Result<Network, NetworkError> {
        let all: Vec<Network> = self
            .all()
            .into_iter()
            .filter(|n| scope.is_none_or(|s| s.is_empty() || s == n.scope))
            .collect();
        find(all, term)
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, term: &str) -> Result<(), NetworkError> {
        let n = find(self.all(), term)?;
        if n.is_predefined() {
            return Err(NetworkError::RemovePredefined {
                name: n.record.name,
            });
        }
        // Every network wharf has is predefined.
        Err(NetworkError::NotFound {
            term: term.to_owned(),
        })
    }

    /// `POST /networks/prune`: removes unused user-defined networks
    /// matching `filters` and returns their names. Predefined networks are
    /// never pruned, and wharf has no others.
    pub fn prune(&self, filters: &Filters) -> Result<Vec<String>, NetworkError> {
        filters.validate(&PRUNE_FILTERS)?;
        filters.until(SystemTime::now())?;
        let deleted: Vec<String> = self
            .all()
            .into_iter()
            .filter(|n| !n.is_predefined())
            .map(|n| n.record.name)
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut attributes = BTreeMap::new();
        attributes.insert("reclaimed".to_owned(), "0".to_owned());
        self.events.publish(Event {
            typ: "network",
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
        Ok(deleted)
    }

    /// `POST /networks/create`: refused (see the module docs), with
    /// dockerd's checks and messages first.
    pub fn create(&self, req: &CreateNetworkRequest) -> Result<Network, NetworkError> {
        if RESERVED_NAMES.contains(&req.name.as_str()) {
            return Err(NetworkError::CreatePredefined {
                name: req.name.clone(),
            });
        }
        if req.driver == "overlay" {
            return Err(NetworkError::OverlayNeedsSwarm);
        }
        Err(NetworkError::CreateUnsupported {
            name: req.name.clone(),
            driver: if req.driver.is_empty() {
                "bridge".to_owned()
            } else {
                req.driver.clone()
            },
        })
    }

    /// `POST /networks/{id}/connect` (`connect`) or `/disconnect`:
    /// the network and the container must exist; the change is refused.
    pub fn connect(&self, term: &str, container: &str, connect: bool) -> Result<(), NetworkError> {
        let n = find(self.all(), term)?;
        let c = self
            .containers
            .inspect(container)
            .map_err(|e| NetworkError::Container(Box::new(e)))?;
        Err(NetworkError::ConnectUnsupported {
            op: if connect { "connect" } else { "disconnect" },
            preposition: if connect { "to" } else { "from" },
            container: c.name.trim_start_matches('/').to_owned(),
            network: n.record.name,
        })
    }
}

fn find(all: Vec<Network>, term: &str) -> Result<Network, NetworkError> {
    let not_found = || NetworkError::NotFound {
        term: term.to_owned(),
    };
    if term.is_empty() {
        return Err(not_found());
    }
    if let Some(n) = all.iter().find(|n| n.record.id == term) {
        return Ok(n.clone());
    }
    if let Some(n) = all.iter().find(|n| n.record.name == term) {
        return Ok(n.clone());
    }
    let mut by_prefix: Vec<Network> = all
        .into_iter()
        .filter(|n| n.record.id.starts_with(term))
        .collect();
    match by_prefix.len() {
        0 => Err(not_found()),
        1 => Ok(by_prefix.remove(0)),
        count => Err(NetworkError::Ambiguous {
            term: term.to_owned(),
            count,
        }),
    }
}

/// dockerd's `FilterNetworks`.
fn filter_networks(all: Vec<Network>, f: &Filters) -> Result<Vec<Network>, NetworkError> {
    if f.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<Network> = all
        .into_iter()
        .filter(|n| {
            f.exact("driver", &n.record.driver)
                && f.matches("name", &n.record.name)
                && f.matches("id", &n.record.id)
                && f.matches_labels("label", &n.labels)
                && f.exact("scope", n.scope)
        })
        .collect();
    if f.contains("dangling") {
        let dangling_only = match f.get("dangling") {
            [v] => match v.as_str() {
                "0" | "false" => false,
                "1" | "true" => true,
                _ => return Err(NetworkError::BadDangling),
            },
            [] => false,
            _ => return Err(NetworkError::SeveralDangling),
        };
        out.retain(|n| {
            let used = n.is_predefined() || !n.containers.is_empty();
            used != dangling_only
        });
    }
    if f.contains("type") {
        let mut typed = Vec::new();
        for v in f.get("type") {
            let builtin = match v.as_str() {
                "builtin" => true,
                "custom" => false,
                _ => return Err(NetworkError::BadType { value: v.clone() }),
            };
            typed.extend(out.iter().filter(|n| n.is_predefined() == builtin).cloned());
        }
        out = typed;
    }
    Ok(out)
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_owned();
    move |source| NetworkError::Io { op, path, source }
}

fn load_or_create(dir: &Path) -> Result<Vec<NetworkRecord>, NetworkError> {
    let path = dir.join("predefined.json");
    let mut records = match std::fs::read(&path) {
        Ok(bytes) => {
            let st: StateFile =
                serde_json::from_slice(&bytes).map_err(|source| NetworkError::Corrupt {
                    path: path.clone(),
                    source,
                })?;
            if st.version != STATE_VERSION {
                return Err(NetworkError::Version {
                    path,
                    version: st.version,
                });
            }
            st.networks
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io("read", &path)(e)),
    };
    let mut changed = false;
    for (name, driver) in PREDEFINED {
        if records.iter().any(|r| r.name == name) {
            continue;
        }
        let id = crate::ids::new_id().map_err(io("read", Path::new("/dev/urandom")))?;
        records.push(NetworkRecord {
            name: name.to_owned(),
            id,
            driver: driver.to_owned(),
            created: crate::time::rfc3339_nano(SystemTime::now()),
        });
        changed = true;
    }
    if changed {
        write_atomic(dir, &path, &records)?;
        tracing::info!(path = %path.display(), "recorded the predefined networks");
    }
    Ok(records)
}

fn write_atomic(dir: &Path, path: &Path, records: &[NetworkRecord]) -> Result<(), NetworkError> {
    // 1. The directory (new data roots have none yet).
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    // 2. The whole document into a temporary file, made durable.
    let tmp = dir.join("predefined.json.tmp");
    let doc = StateFile {
        version: STATE_VERSION,
        networks: records.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|source| NetworkError::Corrupt {
        path: tmp.clone(),
        source,
    })?;
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    // 3. Atomically in place, then the rename made durable.
    std::fs::rename(&tmp, path).map_err(io("rename", path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(pairs: &[(&str, &[&str])]) -> Filters {
        let m: BTreeMap<String, Vec<String>> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        Filters::from(m)
    }

    fn sample() -> Vec<Network> {
        let rec = |name: &str, id: &str, driver: &str| NetworkRecord {
            name: name.into(),
            id: id.into(),
            driver: driver.into(),
            created: "2024-01-01T00:00:00Z".into(),
        };
        vec![
            Network::predefined(rec("host", "ab12", "host")),
            Network::predefined(rec("none", "ab34", "null")),
        ]
    }

    fn names(v: &[Network]) -> Vec<&str> {
        v.iter().map(|n| n.record.name.as_str()).collect()
    }

    #[test]
    fn filters_follow_dockerd() {
        let f = |p: &[(&str, &[&str])]| filter_networks(sample(), &filters(p));
        assert_eq!(names(&f(&[]).unwrap()), ["host", "none"]);
        assert_eq!(names(&f(&[("driver", &["null"])]).unwrap()), ["none"]);
        assert_eq!(names(&f(&[("driver", &["nul"])]).unwrap()), [""; 0]);
        assert_eq!(names(&f(&[("name", &["^h"])]).unwrap()), ["host"]);
        assert_eq!(names(&f(&[("id", &["34"])]).unwrap()), ["none"]);
        assert_eq!(names(&f(&[("scope", &["swarm"])]).unwrap()), [""; 0]);
        assert_eq!(names(&f(&[("label", &["a"])]).unwrap()), [""; 0]);
        assert_eq!(
            names(&f(&[("type", &["builtin"])]).unwrap()),
            ["host", "none"]
        );
        assert_eq!(names(&f(&[("type", &["custom"])]).unwrap()), [""; 0]);
        assert_eq!(names(&f(&[("dangling", &["true"])]).unwrap()), [""; 0]);
        assert_eq!(names(&f(&[("dangling", &["0"])]).unwrap()).len(), 2);
        assert!(matches!(
            f(&[("dangling", &["x"])]),
            Err(NetworkError::BadDangling)
        ));
        assert!(matches!(
            f(&[("dangling", &["1", "0"])]),
            Err(NetworkError::SeveralDangling)
        ));
        assert_eq!(
            f(&[("type", &["odd"])]).unwrap_err().to_string(),
            "invalid filter: 'type'='odd'"
        );
    }

    #[test]
    fn lookup_order() {
        assert_eq!(find(sample(), "none").unwrap().record.id, "ab34");
        assert_eq!(find(sample(), "ab1").unwrap().record.name, "host");
        assert_eq!(find(sample(), "ab34").unwrap().record.name, "none");
        let e = find(sample(), "ab").unwrap_err();
        assert_eq!(
            e.to_string(),
            "network ab is ambiguous (2 matches found based on ID prefix)"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = find(sample(), "bridge").unwrap_err();
        assert_eq!(e.to_string(), "network bridge not found");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(find(sample(), "").is_err());
    }

    #[test]
    fn identities_are_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("network");
        let first = load_or_create(&d).unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|r| crate::ids::is_full_id(&r.id)));
        assert_ne!(first[0].id, first[1].id);
        assert!(crate::time::parse_time(&first[0].created).is_some());
        assert!(!d.join("predefined.json.tmp").exists());
        assert_eq!(load_or_create(&d).unwrap(), first);
        // A missing predefined network is added, the others kept.
        let kept = vec![first[0].clone()];
        write_atomic(&d, &d.join("predefined.json"), &kept).unwrap();
        let again = load_or_create(&d).unwrap();
        assert_eq!(again[0], first[0]);
        assert_eq!(again.len(), 2);
        assert_ne!(again[1].id, first[1].id);
        // Unknown versions and garbage are refused, not overwritten.
        std::fs::write(d.join("predefined.json"), r#"{"Version":9,"Networks":[]}"#).unwrap();
        assert!(matches!(
            load_or_create(&d),
            Err(NetworkError::Version { version: 9, .. })
        ));
        std::fs::write(d.join("predefined.json"), "{").unwrap();
        assert!(matches!(
            load_or_create(&d),
            Err(NetworkError::Corrupt { .. })
        ));
    }
}
