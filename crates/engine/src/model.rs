//! The container domain model: what a client asks for ([`ContainerConfig`],
//! [`HostConfig`]) and what the engine records ([`Container`], [`State`]).
//!
//! These types are also the persisted form (see [`crate::store`]), so their
//! field names are Docker's (`config.v2.json` and `hostconfig.json` use the
//! same names): files written by wharf read naturally to anyone who knows
//! Docker, and `inspect` shows them without a translation table. Fields the
//! engine does not interpret yet are kept verbatim in `extra`, so nothing a
//! client sent is lost on a round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A list given either as a JSON array or as a single string (Docker's
/// `StrSlice`, used by `Cmd`, `Entrypoint`, `Shell`).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// `null` or absent as the type's default (Go decodes `null` into zero values).
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A healthcheck (`HEALTHCHECK` or `--health-*`); durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The portable part of a container's configuration (Docker's `Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "null_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_default")]
    pub domainname: String,
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "null_default")]
    pub tty: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, deserialize_with = "null_default")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "null_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub shell: Option<Vec<String>>,
    /// Fields wharf does not interpret, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Log driver settings (`--log-driver`, `--log-opt`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type", default, deserialize_with = "null_default")]
    pub typ: String,
    #[serde(default, deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// `--restart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub maximum_retry_count: i64,
}

/// `--ulimit name=soft:hard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `--device host[:container[:perms]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default, deserialize_with = "null_default")]
    pub path_on_host: String,
    #[serde(default, deserialize_with = "null_default")]
    pub path_in_container: String,
    #[serde(default, deserialize_with = "null_default")]
    pub cgroup_permissions: String,
}

/// `--mount` (bind and tmpfs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    #[serde(rename = "Type", default, deserialize_with = "null_default")]
    pub typ: String,
    #[serde(default, deserialize_with = "null_default")]
    pub source: String,
    #[serde(default, deserialize_with = "null_default")]
    pub target: String,
    #[serde(default, deserialize_with = "null_default")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// Size and mode of a `--mount type=tmpfs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(default, deserialize_with = "null_default")]
    pub size_bytes: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub mode: u32,
}

/// `--blkio-weight-device path:weight`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    #[serde(default, deserialize_with = "null_default")]
    pub path: String,
    #[serde(default, deserialize_with = "null_default")]
    pub weight: u16,
}

/// `--device-{read,write}-{bps,iops} path:rate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    #[serde(default, deserialize_with = "null_default")]
    pub path: String,
    #[serde(default, deserialize_with = "null_default")]
    pub rate: u64,
}

/// A mount a container took from another at create (`--volumes-from`):
/// kept in the record, so it outlives the other container as in Docker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InheritedMount {
    /// `bind` or `tmpfs`.
    #[serde(rename = "Type")]
    pub typ: String,
    pub source: String,
    pub destination: String,
    /// OCI mount options (`rbind`, `ro`, tmpfs sizes, ...).
    pub options: Vec<String>,
}

/// The host-specific part of a container's configuration (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default)]
    pub log_config: LogConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub network_mode: String,
    #[serde(default)]
    pub port_bindings: Option<Value>,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "null_default")]
    pub auto_remove: bool,
    #[serde(default)]
    pub cap_add: Option<Vec<String>>,
    #[serde(default)]
    pub cap_drop: Option<Vec<String>>,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub group_add: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default)]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub shm_size: i64,
    #[serde(default)]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub memory: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "null_default")]
    pub cpuset_mems: String,
    #[serde(default)]
    pub devices: Option<Vec<DeviceMapping>>,
    #[serde(default, deserialize_with = "null_default")]
    pub memory_reservation: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub memory_swap: i64,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(default)]
    pub mounts: Option<Vec<MountSpec>>,
    #[serde(default)]
    pub init: Option<bool>,
    /// `--oom-score-adj` (-1000..1000).
    #[serde(default, deserialize_with = "null_default")]
    pub oom_score_adj: i64,
    /// `--cgroup-parent`: the container's cgroup is `<parent>/<id>`.
    #[serde(default, deserialize_with = "null_default")]
    pub cgroup_parent: String,
    /// `--blkio-weight` (10..1000, 0: unset).
    #[serde(default, deserialize_with = "null_default")]
    pub blkio_weight: u16,
    #[serde(default)]
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    #[serde(default)]
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default)]
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps", default)]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps", default)]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    /// `--cpu-rt-period` / `--cpu-rt-runtime` (microseconds, 0: unset).
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_realtime_period: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_realtime_runtime: i64,
    /// `--memory-swappiness` (0..100; absent or -1: the kernel's).
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    /// `--kernel-memory-tcp` (bytes, 0: unset).
    #[serde(rename = "KernelMemoryTCP", default, deserialize_with = "null_default")]
    pub kernel_memory_tcp: i64,
    /// `--device-cgroup-rule` (`type major:minor access`).
    #[serde(default)]
    pub device_cgroup_rules: Option<Vec<String>>,
    /// `--runtime` (`runc`, `wharf` or empty: the built-in runtime).
    #[serde(default, deserialize_with = "null_default")]
    pub runtime: String,
    /// `--isolation` (only `default` on Linux).
    #[serde(default, deserialize_with = "null_default")]
    pub isolation: String,
    /// `--storage-opt`.
    #[serde(default)]
    pub storage_opt: Option<BTreeMap<String, String>>,
    /// `--uts`: `host` shares the host's UTS namespace.
    #[serde(rename = "UTSMode", default, deserialize_with = "null_default")]
    pub uts_mode: String,
    /// `--userns`: only `host` (no remapping) exists here.
    #[serde(default, deserialize_with = "null_default")]
    pub userns_mode: String,
    /// `--cgroupns`: `private` or `host` (filled in at create).
    #[serde(default, deserialize_with = "null_default")]
    pub cgroupns_mode: String,
    /// `--volumes-from <container>[:ro|:rw]`.
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// `--link <name>[:alias]`.
    #[serde(default)]
    pub links: Option<Vec<String>>,
    /// Fields wharf does not interpret, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The lifecycle states of a container, as Docker names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// Docker's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Parses Docker's name (for `status=` filters).
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }
}

/// A container's runtime state (Docker's `State`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// The healthcheck's findings (absent without a healthcheck).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `State.Health`: `starting`, `healthy` or `unhealthy`, the count of
/// consecutive failed probes, and the last five probes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    #[serde(default)]
    pub log: Vec<HealthLog>,
}

/// One healthcheck probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: crate::time::ZERO_TIME.to_owned(),
            finished_at: crate::time::ZERO_TIME.to_owned(),
            health: None,
        }
    }
}

impl State {
    /// Sets the status and the booleans that mirror it.
    pub fn set_status(&mut self, status: Status) {
        self.status = status;
        self.running = matches!(
            status,
            Status::Running | Status::Paused | Status::Restarting
        );
        self.paused = status == Status::Paused;
        self.restarting = status == Status::Restarting;
        self.dead = status == Status::Dead;
    }

    /// Whether the container's process exists (running, paused, restarting).
    pub fn is_running(&self) -> bool {
        self.running
    }
}

/// One container, as recorded in `containers/<id>/config.v2.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    /// Layout version of this record (see [`crate::store`]).
    pub version: u32,
    #[serde(rename = "ID")]
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    pub created: String,
    /// The executable, after the Entrypoint/Cmd merge.
    pub path: String,
    pub args: Vec<String>,
    /// The merged configuration (image defaults + request).
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The image ID (`sha256:...`).
    pub image: String,
    pub state: State,
    pub restart_count: u32,
    /// The snapshot driver holding the writable layer.
    pub driver: String,
    /// The key of the container snapshot.
    pub snapshot_key: String,
    pub platform: String,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// Set when the user stopped the container (for `unless-stopped`).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Mounts taken from other containers at create (`VolumesFrom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherited_mounts: Vec<InheritedMount>,
}
