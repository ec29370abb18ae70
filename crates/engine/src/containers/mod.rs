//! The container service: create, start, stop, kill, wait, remove, list,
//! inspect, attach, logs, exec, and the reconciliation at daemon start.
//!
//! # Concurrency
//! Every container has an [`Entry`]: its record behind a short-held mutex
//! (never held across an `.await`), an operation lock serialising start,
//! stop, restart and remove, and a [`Lifecycle`] watch channel that waiters
//! (`wait`, `stop`, `docker run`'s attach) observe. A container's process is
//! watched by one monitor task per start, which records the exit, cleans up
//! (shim, root filesystem mount) and only then publishes it, so whoever
//! wakes up on an exit finds the container fully stopped.
//!
//! # Persistence
//! Every state transition is saved with [`crate::store`] before it is
//! announced. Processes live in shims, so a daemon restart re-adopts them
//! ([`Containers::restore`]).

pub mod archive;
mod exec;
mod health;
pub mod init;
pub mod init_layer;
mod io;
mod lifecycle;
mod list;
pub mod merge;
mod reaper;
mod stats;
mod update;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use wharf_image::Reference;
use wharf_shim_api::ShimHandle;

pub use exec::{ExecConfig, ExecSnapshot};
pub use io::{LogEntry, LogOptions};
pub use lifecycle::{WaitCondition, WaitResult, parse_signal};
pub use list::ListOptions;
pub use stats::{BlkioEntry, CgroupStats, StatsSample, TopTable};
pub use update::UpdateRequest;

use crate::error::{EngineError, io_err};
use crate::events::{Event, Events};
use crate::images::{ImageError, Images};
use crate::layout::Layout;
use crate::model::{Container, ContainerConfig, HostConfig, InheritedMount, State, Status, Ulimit};
use crate::store::{ContainerStore, RECORD_VERSION};
use crate::{etc_files, ids, names, time};

/// Settings of the container service.
#[derive(Debug, Clone)]
pub struct ContainersConfig {
    pub layout: Layout,
    /// The `wharf-shim` executable.
    pub shim_binary: PathBuf,
    /// The init `--init` runs as PID 1 (see [`init`]).
    pub init_binary: Option<PathBuf>,
    /// `--default-ulimit`.
    pub default_ulimits: Vec<Ulimit>,
    /// `--log-opt max-size` (bytes) and `max-file` defaults.
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
    /// Parent of every container's cgroup (`/wharf`).
    pub cgroup_parent: String,
}

/// A create request, already parsed and validated for shape by the caller.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub platform: Option<String>,
}

/// The answer to a create.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Lifecycle {
    /// Completed runs (bumped after each exit is recorded and cleaned up).
    exits: u64,
    removed: bool,
    exit_code: i32,
    error: String,
}

pub(crate) struct PendingAttach {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    reply: tokio::sync::oneshot::Sender<Result<crate::shim::AttachSession, EngineError>>,
}

pub(crate) struct Entry {
    id: String,
    record: Mutex<Container>,
    op: tokio::sync::Mutex<()>,
    shim: Mutex<Option<ShimHandle>>,
    lifecycle: watch::Sender<Lifecycle>,
    pending_attach: Mutex<Vec<PendingAttach>>,
    /// A forced removal is stopping the container: its exit is recorded
    /// by the removal (see `Containers::on_exit`).
    removing: std::sync::atomic::AtomicBool,
    /// The root filesystem of a container being removed, detached at its
    /// exit; the removal hands it to the [`reaper::Reaper`].
    detached_root: Mutex<Option<std::os::fd::OwnedFd>>,
}

impl Entry {
    fn new(c: Container) -> Arc<Entry> {
        Arc::new(Entry {
            id: c.id.clone(),
            record: Mutex::new(c),
            op: tokio::sync::Mutex::new(()),
            shim: Mutex::new(None),
            lifecycle: watch::channel(Lifecycle::default()).0,
            pending_attach: Mutex::new(Vec::new()),
            removing: std::sync::atomic::AtomicBool::new(false),
            detached_root: Mutex::new(None),
        })
    }

    fn snapshot(&self) -> Container {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Container) -> R) -> R {
        f(&mut self.record.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn shim(&self) -> Option<ShimHandle> {
        self.shim.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_shim(&self, h: Option<ShimHandle>) {
        *self.shim.lock().unwrap_or_else(|p| p.into_inner()) = h;
    }
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Arc<Entry>>,
    /// `/name` → ID; a name is reserved here before its container exists.
    names: HashMap<String, String>,
}

/// The container service.
pub struct Containers {
    cfg: ContainersConfig,
    store: ContainerStore,
    images: Images,
    events: Arc<Events>,
    table: Mutex<Table>,
    execs: Mutex<HashMap<String, Arc<exec::ExecEntry>>>,
    /// The shared init layer ([`init_layer`]); `None` when it could not be
    /// written (the runtime then creates the mount points per container).
    init_layer: Option<PathBuf>,
    /// Deletes removed containers' files after their removal answered.
    reaper: reaper::Reaper,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Counts for `/info`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateCounts {
    pub total: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
}

impl Containers {
    pub fn new(cfg: ContainersConfig, images: Images, events: Arc<Events>) -> Arc<Containers> {
        let init_layer = match init_layer::ensure(cfg.layout.data_root()) {
            Ok(dir) => Some(dir),
            Err(err) => {
                tracing::warn!(error = %err, "cannot write the init layer; mount points will be created per container");
                None
            }
        };
        Arc::new(Containers {
            store: ContainerStore::new(cfg.layout.containers()),
            init_layer,
            cfg,
            images,
            events,
            table: Mutex::new(Table::default()),
            execs: Mutex::new(HashMap::new()),
            reaper: reaper::Reaper::new(),
        })
    }

    /// Waits, at most `timeout`, until the files of every container removed
    /// so far are deleted (removals answer before that: see [`reaper`]);
    /// whether they are.
    pub fn settle_removals(&self, timeout: std::time::Duration) -> bool {
        self.reaper.settle(timeout)
    }

    /// The mounts that make container `rec`'s root filesystem: its
    /// snapshot's, with the init layer below the writable layer.
    pub(crate) fn rootfs_mounts(
        &self,
        rec: &Container,
    ) -> Result<Vec<wharf_image::snapshot::Mount>, EngineError> {
        let mounts = self
            .images
            .snapshots()
            .container_mounts(&rec.snapshot_key)
            .map_err(|source| EngineError::Snapshot {
                id: rec.id.clone(),
                source,
            })?;
        Ok(match &self.init_layer {
            Some(layer) => init_layer::apply(mounts, layer),
            None => mounts,
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID
    /// prefix, in that order (Docker's order).
    pub(crate) fn lookup(&self, input: &str) -> Result<Arc<Entry>, EngineError> {
        let t = self.table();
        if let Some(e) = t.by_id.get(input) {
            return Ok(e.clone());
        }
        if let Some(id) = t.names.get(&names::canonical(input))
            && let Some(e) = t.by_id.get(id)
        {
            return Ok(e.clone());
        }
        let not_found = || EngineError::NoSuchContainer {
            id: input.to_owned(),
        };
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let mut hits = t.by_id.values().filter(|e| e.id.starts_with(input));
        let first = hits.next().ok_or_else(not_found)?;
        if hits.next().is_some() {
            return Err(EngineError::AmbiguousPrefix {
                prefix: input.to_owned(),
            });
        }
        Ok(first.clone())
    }

    /// The record of one container.
    pub fn inspect(&self, input: &str) -> Result<Container, EngineError> {
        Ok(self.lookup(input)?.snapshot())
    }

    /// Every container, newest first.
    pub fn list(&self) -> Vec<Container> {
        let mut v: Vec<Container> = self.table().by_id.values().map(|e| e.snapshot()).collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    /// Containers by state.
    pub fn counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for e in self.table().by_id.values() {
            c.total += 1;
            match e.with(|r| r.state.status) {
                Status::Running | Status::Restarting => c.running += 1,
                Status::Paused => c.paused += 1,
                _ => c.stopped += 1,
            }
        }
        c
    }

    pub(crate) fn event(&self, action: &str, c: &Container, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = c.config.labels.clone();
        attrs.insert("image".into(), c.config.image.clone());
        attrs.insert("name".into(), c.name.trim_start_matches('/').to_owned());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.events.publish(Event::container(action, &c.id, attrs));
    }

    fn reserve_name(&self, name: &str, id: &str) -> Result<(), EngineError> {
        let mut t = self.table();
        if let Some(owner) = t.names.get(name) {
            return Err(EngineError::NameInUse {
                name: name.to_owned(),
                id: owner.clone(),
            });
        }
        t.names.insert(name.to_owned(), id.to_owned());
        Ok(())
    }

    fn release_name(&self, name: &str, id: &str) {
        let mut t = self.table();
        if t.names.get(name).map(String::as_str) == Some(id) {
            t.names.remove(name);
        }
    }

    /// Creates a container (`POST /containers/create`).
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<Created, EngineError> {
        let this = self.clone();
        on_blocking_thread("create", move || this.create_blocking(req)).await
    }

    fn create_blocking(&self, req: CreateRequest) -> Result<Created, EngineError> {
        let mut warnings = Vec::new();
        if let Some(p) = &req.platform
            && !p.is_empty()
            && !p.starts_with("linux")
        {
            return Err(EngineError::InvalidConfig {
                field: "platform",
                reason: format!("{p} is not supported: this daemon runs linux containers"),
            });
        }
        validate_host_config(&req.host_config)?;
        let support = crate::hostconfig::CgroupSupport::probe();
        warnings.extend(crate::hostconfig::validate(
            &req.host_config,
            &req.config.hostname,
            support,
        )?);
        self.check_links(&req.host_config)?;
        let inherited = self.resolve_volumes_from(&req.host_config)?;
        let mut req = req;
        crate::hostconfig::fill_defaults(&mut req.host_config, support);
        if req.host_config.init == Some(true) && self.cfg.init_binary.is_none() {
            return Err(EngineError::InvalidConfig {
                field: "Init",
                reason: "no init binary: install wharf-init next to wharfd or pass --init-path"
                    .into(),
            });
        }
        let id = ids::new_id().map_err(io_err("read", "/dev/urandom"))?;
        let name = match &req.name {
            Some(n) if !n.is_empty() => {
                let bare = n.strip_prefix('/').unwrap_or(n);
                if !names::is_valid(bare) {
                    return Err(EngineError::InvalidName { name: n.clone() });
                }
                let name = names::canonical(bare);
                self.reserve_name(&name, &id)?;
                name
            }
            _ => {
                let mut retry = 0;
                loop {
                    let name = names::canonical(&names::generate(retry));
                    if self.reserve_name(&name, &id).is_ok() {
                        break name;
                    }
                    retry += 1;
                }
            }
        };
        let result = self.create_reserved(&id, &name, req, inherited);
        if result.is_err() {
            self.release_name(&name, &id);
            let _ = self.images.snapshots().remove(&id);
            let _ = self.store.remove(&id);
        }
        result.map(|()| Created { id, warnings })
    }

    /// dockerd's `registerLinks` checks: every linked container exists and
    /// does not use the host's network.
    fn check_links(&self, hc: &HostConfig) -> Result<(), EngineError> {
        for l in hc.links.iter().flatten() {
            let (name, _alias) = crate::hostconfig::parse_link(l)?;
            let child = self.lookup(&name).map_err(|e| EngineError::Refused {
                reason: format!("could not get container for {name}: {}", e.full_message()),
            })?;
            if child.with(|c| c.host_config.network_mode == "host") {
                return Err(EngineError::Refused {
                    reason: "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
                });
            }
        }
        Ok(())
    }

    /// The mounts `VolumesFrom` takes from other containers: their binds,
    /// `--mount` binds and tmpfs mounts and what they took themselves,
    /// read-only when asked (`:ro`) or when read-only there.
    fn resolve_volumes_from(&self, hc: &HostConfig) -> Result<Vec<InheritedMount>, EngineError> {
        let mut out: Vec<InheritedMount> = Vec::new();
        for v in hc.volumes_from.iter().flatten() {
            let (name, rw) = crate::hostconfig::parse_volumes_from(v)?;
            let other = self
                .lookup(&name)
                .map_err(|e| EngineError::Refused {
                    reason: e.full_message(),
                })?
                .snapshot();
            let mut mounts: Vec<InheritedMount> = other.inherited_mounts.clone();
            let ohc = &other.host_config;
            for b in ohc.binds.iter().flatten() {
                let m = crate::spec::parse_bind(b)?;
                mounts.push(InheritedMount {
                    typ: "bind".into(),
                    source: m
                        .source()
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    destination: m.destination().to_string_lossy().into_owned(),
                    options: m.options().clone().unwrap_or_default(),
                });
            }
            for m in ohc.mounts.iter().flatten() {
                let ro = if m.read_only { "ro" } else { "rw" }.to_owned();
                let (source, options) = match m.typ.as_str() {
                    "bind" => (m.source.clone(), vec!["rbind".to_owned(), ro]),
                    "tmpfs" => {
                        let mut o = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                        if let Some(t) = &m.tmpfs_options {
                            if t.size_bytes > 0 {
                                o.push(format!("size={}", t.size_bytes));
                            }
                            if t.mode != 0 {
                                o.push(format!("mode={:o}", t.mode));
                            }
                        }
                        o.push(ro);
                        ("tmpfs".to_owned(), o)
                    }
                    _ => continue,
                };
                mounts.push(InheritedMount {
                    typ: m.typ.clone(),
                    source,
                    destination: m.target.clone(),
                    options,
                });
            }
            for mut m in mounts {
                if !rw {
                    m.options.retain(|o| o != "rw");
                    if !m.options.iter().any(|o| o == "ro") {
                        m.options.push("ro".into());
                    }
                }
                out.retain(|x| x.destination != m.destination);
                out.push(m);
            }
        }
        Ok(out)
    }

    fn create_reserved(
        &self,
        id: &str,
        name: &str,
        req: CreateRequest,
        inherited_mounts: Vec<InheritedMount>,
    ) -> Result<(), EngineError> {
        let image_name = req.config.image.clone();
        if image_name.is_empty() {
            return Err(EngineError::InvalidConfig {
                field: "Image",
                reason: "no image specified".into(),
            });
        }
        let image = self.images.resolve(&image_name).map_err(|e| match e {
            ImageError::NotFound { .. } => EngineError::NoSuchImage {
                reference: Reference::parse(&image_name)
                    .map_or(image_name.clone(), |r| r.familiar_string()),
            },
            source => EngineError::Image {
                reference: image_name.clone(),
                source,
            },
        })?;
        let merged = merge::merge(&req.config, &image.config)?;
        let mut config = merged.config;
        if config.hostname.is_empty() {
            config.hostname = ids::short_id(id).to_owned();
        }
        let mut host_config = req.host_config;
        if host_config.network_mode.is_empty() || host_config.network_mode == "default" {
            host_config.network_mode = "bridge".into();
        }
        if host_config.network_mode == "bridge" {
            tracing::warn!(container_id = %id, "bridge networking is not available yet: the container gets a private network namespace with loopback only (as --network none)");
        }
        if host_config.log_config.typ.is_empty() {
            host_config.log_config.typ = "json-file".into();
        }

        // Directory, writable layer, generated files, record.
        let dir = self.store.create_dir(id)?;
        self.images
            .snapshots()
            .prepare_container(id, image.record.chain_id.as_ref())
            .map_err(|source| EngineError::Snapshot {
                id: id.to_owned(),
                source,
            })?;
        std::fs::create_dir(dir.join("rootfs"))
            .map_err(io_err("create directory", dir.join("rootfs")))?;
        let host_net = host_config.network_mode == "host";
        let host_hostname;
        let hostname = if host_net {
            host_hostname =
                std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            host_hostname.trim()
        } else {
            config.hostname.as_str()
        };
        let files = etc_files::generate(&etc_files::EtcInputs {
            hostname,
            domainname: &config.domainname,
            host_network: host_net,
            extra_hosts: host_config.extra_hosts.as_deref().unwrap_or(&[]),
            dns: host_config.dns.as_deref().unwrap_or(&[]),
            dns_search: host_config.dns_search.as_deref().unwrap_or(&[]),
            dns_options: host_config.dns_options.as_deref().unwrap_or(&[]),
            host_resolv_conf: &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            host_hosts: &std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        });
        let write = |n: &str, body: &str| -> Result<String, EngineError> {
            let p = dir.join(n);
            std::fs::write(&p, body).map_err(io_err("write", &p))?;
            Ok(p.to_string_lossy().into_owned())
        };
        let hostname_path = write("hostname", &files.hostname)?;
        let hosts_path = write("hosts", &files.hosts)?;
        let resolv_conf_path = write("resolv.conf", &files.resolv_conf)?;
        let container = Container {
            version: RECORD_VERSION,
            id: id.to_owned(),
            name: name.to_owned(),
            created: time::rfc3339_nano(std::time::SystemTime::now()),
            path: merged.path,
            args: merged.args,
            config,
            host_config,
            image: image.record.id.to_string(),
            state: State::default(),
            restart_count: 0,
            driver: self.images.snapshots().driver().to_owned(),
            snapshot_key: id.to_owned(),
            platform: "linux".into(),
            log_path: self
                .cfg
                .layout
                .container_log(id)
                .to_string_lossy()
                .into_owned(),
            hostname_path,
            hosts_path,
            resolv_conf_path,
            manually_stopped: false,
            inherited_mounts,
        };
        // Check the resources, mounts and security options now, so a bad
        // request fails at create as with Docker, not at start.
        crate::spec::build(&crate::spec::SpecInputs {
            container: &container,
            rootfs: &self.cfg.layout.container_rootfs(id),
            user: &crate::rootfs_files::ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: None,
            },
            default_ulimits: &self.cfg.default_ulimits,
            cgroups_path: String::new(),
        })?;
        self.store.save(&container)?;
        tracing::info!(container_id = %id, name = %name, image = %image_name, "container created");
        self.event("create", &container, &[]);
        self.table()
            .by_id
            .insert(id.to_owned(), Entry::new(container));
        Ok(())
    }

    /// Renames a container.
    pub fn rename(&self, input: &str, new_name: &str) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let bare = new_name.strip_prefix('/').unwrap_or(new_name);
        if !names::is_valid(bare) {
            return Err(EngineError::InvalidName {
                name: new_name.to_owned(),
            });
        }
        let new = names::canonical(bare);
        let old = e.with(|c| c.name.clone());
        if old == new {
            return Err(EngineError::InvalidConfig {
                field: "name",
                reason: "Renaming a container with the same name as its current name".into(),
            });
        }
        self.reserve_name(&new, &e.id)?;
        let rec = e.with(|c| {
            c.name = new.clone();
            c.clone()
        });
        if let Err(err) = self.store.save(&rec) {
            e.with(|c| c.name = old.clone());
            self.release_name(&new, &e.id);
            return Err(err.into());
        }
        self.release_name(&old, &e.id);
        self.event("rename", &rec, &[("oldName", old)]);
        Ok(())
    }

    fn save(&self, e: &Entry) -> Result<Container, EngineError> {
        let rec = e.snapshot();
        self.store.save(&rec)?;
        Ok(rec)
    }
}

fn validate_host_config(hc: &HostConfig) -> Result<(), EngineError> {
    let invalid = |field, reason: String| Err(EngineError::InvalidConfig { field, reason });
    match hc.network_mode.as_str() {
        "" | "default" | "bridge" | "none" | "host" => {}
        m => {
            return invalid(
                "NetworkMode",
                format!("network mode {m:?} is not supported yet (none, host and the default are)"),
            );
        }
    }
    let rp = &hc.restart_policy;
    match rp.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if rp.maximum_retry_count != 0 {
                return invalid("RestartPolicy", "invalid restart policy: maximum retry count can only be used with 'on-failure'".into());
            }
        }
        "on-failure" => {
            if rp.maximum_retry_count < 0 {
                return invalid(
                    "RestartPolicy",
                    "invalid restart policy: maximum retry count cannot be negative".into(),
                );
            }
        }
        other => {
            return invalid(
                "RestartPolicy",
                format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                ),
            );
        }
    }
    if hc.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
        return invalid(
            "AutoRemove",
            "can't create 'AutoRemove' container with restart policy".into(),
        );
    }
    if !matches!(hc.log_config.typ.as_str(), "" | "json-file") {
        return invalid(
            "LogConfig",
            format!(
                "log driver {:?} is not supported (json-file is)",
                hc.log_config.typ
            ),
        );
    }
    for k in hc.log_config.config.keys() {
        if !matches!(
            k.as_str(),
            "max-size" | "max-file" | "compress" | "labels" | "env" | "tag"
        ) {
            return invalid(
                "LogConfig",
                format!("unknown log opt '{k}' for json-file log driver"),
            );
        }
    }
    if let Some(ms) = hc.log_config.config.get("max-size") {
        parse_size(ms).ok_or_else(|| EngineError::InvalidConfig {
            field: "LogConfig",
            reason: format!("invalid max-size {ms:?}"),
        })?;
    }
    Ok(())
}

/// Parses Docker's sizes (`10m`, `1g`, `512k`, `100`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    if n < 0.0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (n * mult as f64) as u64;
    Some(bytes)
}

/// Runs `f` (work that waits on the kernel or the disk: mounts, fsyncs,
/// directory trees) on tokio's blocking threads, off the async workers;
/// `what` names the operation if the task panics.
pub(crate) async fn on_blocking_thread<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| EngineError::Task { what, source })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn host_config_validation() {
        let mut hc = HostConfig::default();
        assert!(validate_host_config(&hc).is_ok());
        hc.restart_policy.name = "sometimes".into();
        assert!(validate_host_config(&hc).is_err());
        hc.restart_policy.name = "always".into();
        hc.auto_remove = true;
        assert!(validate_host_config(&hc).is_err());
        let hc = HostConfig {
            network_mode: "container:x".into(),
            ..Default::default()
        };
        assert!(validate_host_config(&hc).is_err());
    }
}
