//! The command tree, flags and defaults, shaped after docker's: top-level
//! commands and their management forms (`container`, `image`, `system`)
//! share one argument struct each.

use clap::{
    ArgAction, Args, Command, CommandFactory as _, FromArgMatches as _, Parser, Subcommand,
};

use crate::opts::flags;

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    override_usage = "wharf [OPTIONS] COMMAND"
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(
        short = 'l',
        long = "log-level",
        default_value = "info",
        value_name = "string"
    )]
    pub log_level: String,
    /// Location of client config files
    #[arg(long, value_name = "string")]
    pub config: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long, value_parser = flags::boolean, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote
    #[arg(long, value_parser = flags::boolean, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default "~/.docker/ca.pem")
    #[arg(long, value_name = "string")]
    pub tlscacert: Option<String>,
    /// Path to TLS certificate file (default "~/.docker/cert.pem")
    #[arg(long, value_name = "string")]
    pub tlscert: Option<String>,
    /// Path to TLS key file (default "~/.docker/key.pem")
    #[arg(long, value_name = "string")]
    pub tlskey: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

const CP_ABOUT: &str = "Copy files/folders between a container and the local filesystem";
const CP_LONG: &str = "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout.";
const LOGIN_ABOUT: &str = "Authenticate to a registry";
const LOGIN_LONG: &str =
    "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.";
const LOGOUT_ABOUT: &str = "Log out from a registry";
const LOGOUT_LONG: &str =
    "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.";

/// `--cgroupns`, as docker documents it.
const CGROUPNS_HELP: &str = "Cgroup namespace to use (host|private)\n'host':    Run the container in the Docker host's cgroup namespace\n'private': Run the container in its own private cgroup namespace\n'':        Use the cgroup namespace as configured by the\n           default-cgroupns-mode option on the daemon (default)";

/// `--format` of the listing commands, as docker documents it.
pub const FORMAT_TABLE: &str = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

/// `--format` of the commands printing one document per object.
pub const FORMAT_JSON: &str = "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

impl Cli {
    /// The command tree with pflag's rules for flag values: a flag that
    /// takes a value takes the next argument even when it starts with `-`
    /// (`--cpus -1`, `-e -x`), and a flag whose value is optional (the
    /// `bool` ones such as `--sig-proxy`) takes it only after `=`.
    pub fn tree() -> Command {
        // docker words create's --pull differently (typo included).
        let create_pull = |c: Command| {
            c.mut_arg("pull", |a| {
                a.help("Pull image before creating (\"always\", \"|missing\", \"never\")")
            })
        };
        // Defaults that depend on the environment, as docker prints them.
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let config = env("DOCKER_CONFIG").unwrap_or_else(|| {
            format!("{}/.docker", env("HOME").unwrap_or_else(|| "/root".into()))
        });
        let certs = env("DOCKER_CERT_PATH").unwrap_or_else(|| config.clone());
        pflag_values(Cli::command())
            .mut_arg("config", |a| {
                a.help(format!(
                    "Location of client config files (default {config:?})"
                ))
            })
            .mut_arg("tlscacert", |a| {
                a.help(format!(
                    "Trust certs signed only by this CA (default \"{certs}/ca.pem\")"
                ))
            })
            .mut_arg("tlscert", |a| {
                a.help(format!(
                    "Path to TLS certificate file (default \"{certs}/cert.pem\")"
                ))
            })
            .mut_arg("tlskey", |a| {
                a.help(format!(
                    "Path to TLS key file (default \"{certs}/key.pem\")"
                ))
            })
            .mut_subcommand("create", create_pull)
            .mut_subcommand("container", |c| c.mut_subcommand("create", create_pull))
    }

    /// Parses a command line (program name first) against [`Cli::tree`].
    #[cfg(test)]
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::parse_with(Cli::tree(), args)
    }

    /// Parses a command line against a tree built by [`Cli::tree`] (the
    /// tree is consumed: building it is most of a short command's CPU).
    pub fn parse_with<I, T>(tree: Command, args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let m = tree.try_get_matches_from(args)?;
        Cli::from_arg_matches(&m)
    }
}

fn pflag_values(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        let takes = matches!(a.get_action(), ArgAction::Set | ArgAction::Append);
        if a.is_positional() || !takes {
            a
        } else if a.get_num_args().is_some_and(|n| n.min_values() == 0) {
            a.require_equals(true)
        } else {
            a.allow_hyphen_values(true)
        }
    })
    .mut_subcommands(pflag_values)
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(Containers),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(Containers),
    /// Unpause all processes within one or more containers
    Unpause(Containers),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    #[command(about = CP_ABOUT, long_about = CP_LONG)]
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(OneContainer),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    #[command(about = LOGIN_ABOUT, long_about = LOGIN_LONG)]
    Login(LoginArgs),
    #[command(about = LOGOUT_ABOUT, long_about = LOGOUT_LONG)]
    Logout(LogoutArgs),
    /// Show the Docker version information
    Version(FormatOnly),
    /// Display system-wide information
    Info(FormatOnly),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCmd),
    /// Generate the autocompletion script for the specified shell
    #[command(hide = true)]
    Completion(CompletionArgs),
    /// Run the wharf daemon (wharfd) in the foreground
    #[command(disable_help_flag = true)]
    Daemon(DaemonArgs),
}

#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    Attach(AttachArgs),
    Commit(CommitArgs),
    #[command(about = CP_ABOUT, long_about = CP_LONG)]
    Cp(CpArgs),
    Create(CreateArgs),
    Diff(OneContainer),
    Exec(ExecArgs),
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    Kill(KillArgs),
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    Pause(Containers),
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    Rename(RenameArgs),
    Restart(StopArgs),
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    Run(RunArgs),
    Start(StartArgs),
    Stats(StatsArgs),
    Stop(StopArgs),
    Top(TopArgs),
    Unpause(Containers),
    Update(UpdateArgs),
    Wait(Containers),
}

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    History(HistoryArgs),
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    Load(LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    Pull(PullArgs),
    Push(PushArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    Save(SaveArgs),
    Tag(TagArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Show wharf disk usage
    Df(DfArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(FormatOnly),
    /// Remove unused data
    Prune(SystemPruneArgs),
}

// Flags shared by `run` and `create` (a plain comment: clap would take a
// doc comment as the commands' description).
#[derive(Debug, Args, Clone, Default)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(value_parser = flags::attach, short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(value_parser = flags::env, short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Set meta data on a container
    #[arg(value_parser = flags::label, short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string")]
    pub domainname: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(value_parser = flags::mount, long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no", value_name = "string")]
    pub restart: String,
    /// Memory limit
    #[arg(value_parser = flags::bytes, short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(value_parser = flags::swap_bytes, long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(value_parser = flags::bytes, long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(value_parser = flags::cpus, long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(value_parser = flags::int, short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(value_parser = flags::int, long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(value_parser = flags::int, long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(value_parser = flags::int, long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options (default [])
    #[arg(value_parser = flags::ulimit, long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(value_parser = flags::int, long = "stop-timeout", value_name = "int")]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(value_parser = flags::duration, long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(value_parser = flags::duration, long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(value_parser = flags::int, long = "health-retries", value_name = "int")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(value_parser = flags::duration, long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(value_parser = flags::duration, long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing", value_name = "string")]
    pub pull: String,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(value_parser = flags::add_host, long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(value_parser = flags::ip, long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Size of /dev/shm
    #[arg(value_parser = flags::bytes, long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Sysctl options (default map[])
    #[arg(value_parser = flags::sysctl, long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub cidfile: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime) (default map[])
    #[arg(long, value_name = "map")]
    pub annotation: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = flags::uint16)]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight) (default [])
    #[arg(long = "blkio-weight-device", value_name = "list", value_parser = flags::weight_device)]
    pub blkio_weight_device: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    #[arg(long, value_name = "string", help = CGROUPNS_HELP)]
    pub cgroupns: Option<String>,
    /// CPU count (Windows only)
    #[arg(long = "cpu-count", value_name = "int", value_parser = flags::int)]
    pub cpu_count: Option<i64>,
    /// CPU percent (Windows only)
    #[arg(long = "cpu-percent", value_name = "int", value_parser = flags::int)]
    pub cpu_percent: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", value_parser = flags::int)]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", value_parser = flags::int)]
    pub cpu_rt_runtime: Option<i64>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "list", value_parser = flags::cgroup_rule)]
    pub device_cgroup_rule: Vec<String>,
    /// Limit read rate (bytes per second) from a device (default [])
    #[arg(long = "device-read-bps", value_name = "list", value_parser = flags::throttle_bps)]
    pub device_read_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device (default [])
    #[arg(long = "device-read-iops", value_name = "list", value_parser = flags::throttle_iops)]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (bytes per second) to a device (default [])
    #[arg(long = "device-write-bps", value_name = "list", value_parser = flags::throttle_bps)]
    pub device_write_bps: Vec<String>,
    /// Limit write rate (IO per second) to a device (default [])
    #[arg(long = "device-write-iops", value_name = "list", value_parser = flags::throttle_iops)]
    pub device_write_iops: Vec<String>,
    /// Skip image verification
    #[arg(long = "disable-content-trust", value_parser = flags::boolean, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub disable_content_trust: bool,
    /// Maximum IO bandwidth limit for the system drive (Windows only)
    #[arg(long = "io-maxbandwidth", value_name = "bytes", value_parser = flags::bytes)]
    pub io_maxbandwidth: Option<String>,
    /// Maximum IOps limit for the system drive (Windows only)
    #[arg(long = "io-maxiops", value_name = "uint", value_parser = flags::uint)]
    pub io_maxiops: Option<u64>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Container isolation technology
    #[arg(long, value_name = "string")]
    pub isolation: Option<String>,
    /// Kernel memory limit
    #[arg(long = "kernel-memory", value_name = "bytes", value_parser = flags::bytes)]
    pub kernel_memory: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list", value_parser = flags::link)]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip", value_name = "list")]
    pub link_local_ip: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", value_name = "int", value_parser = flags::int, default_value_t = -1)]
    pub memory_swappiness: i64,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", value_parser = flags::int)]
    pub oom_score_adj: Option<i64>,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "list")]
    pub storage_opt: Vec<String>,
    /// User namespace to use
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver", value_name = "string")]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "wharf run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(value_parser = flags::boolean, long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "wharf create [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(value_parser = flags::int,
        short = 't',
        long = "timeout",
        alias = "time",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(value_parser = flags::filter, short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(help = FORMAT_TABLE, long, value_name = "string")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(value_parser = flags::int, short = 'n', long = "last", default_value_t = -1, value_name = "int", allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all", value_name = "string")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(value_parser = flags::boolean, long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
#[command(override_usage = "wharf exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(value_parser = flags::env, short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(help = FORMAT_JSON, short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    #[arg(help = FORMAT_JSON, short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    #[arg(help = FORMAT_JSON, short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
#[command(override_usage = "wharf top CONTAINER [ps OPTIONS]")]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(help = FORMAT_TABLE, long, value_name = "string")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Containers {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OneContainer {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    override_usage = "wharf cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\twharf cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SRC")]
    pub src: String,
    #[arg(value_name = "DEST")]
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(value_parser = flags::boolean, short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = flags::uint16)]
    pub blkio_weight: Option<u16>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", value_parser = flags::int)]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", value_parser = flags::int)]
    pub cpu_rt_runtime: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Number of CPUs
    #[arg(value_parser = flags::cpus, long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(value_parser = flags::int, short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(value_parser = flags::int, long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(value_parser = flags::int, long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// Memory limit
    #[arg(value_parser = flags::bytes, short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(value_parser = flags::bytes, long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(value_parser = flags::swap_bytes, long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(value_parser = flags::int, long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Skip image verification
    #[arg(long = "disable-content-trust", value_parser = flags::boolean, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub disable_content_trust: bool,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Skip image signing
    #[arg(long = "disable-content-trust", value_parser = flags::boolean, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub disable_content_trust: bool,
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(value_parser = flags::filter, short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(help = FORMAT_TABLE, long, value_name = "string")]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(help = FORMAT_TABLE, long, value_name = "string")]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(value_parser = flags::boolean, short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "bool")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long, value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long, value_name = "string")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub username: Option<String>,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct FormatOnly {
    #[arg(help = FORMAT_JSON, short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(value_parser = flags::filter, short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(help = FORMAT_JSON, long, value_name = "string")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    #[arg(help = FORMAT_TABLE, long, value_name = "string")]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(value_parser = flags::filter, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(value_parser = flags::filter, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(value_parser = flags::filter, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Arguments passed to wharfd
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::parse_args(std::iter::once("wharf").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::tree().debug_assert();
    }

    #[test]
    fn run_flag_rules() {
        let Some(Cmd::Run(r)) = parse(&[
            "run",
            "-it",
            "--rm",
            "-e",
            "A=1",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
        ])
        .cmd
        else {
            panic!("not run")
        };
        assert!(r.opts.interactive && r.opts.tty && r.opts.rm);
        assert_eq!(r.opts.image, "busybox");
        assert_eq!(r.opts.command, ["sh", "-c", "echo -n hi"]);
        // Flags after the image belong to the command.
        let Some(Cmd::Run(r)) = parse(&["run", "-d", "busybox", "ls", "-l", "--rm"]).cmd else {
            panic!()
        };
        assert!(r.detach && !r.opts.rm);
        assert_eq!(r.opts.command, ["ls", "-l", "--rm"]);
        // `--` ends flags.
        let Some(Cmd::Run(r)) = parse(&["run", "--", "busybox", "-x"]).cmd else {
            panic!()
        };
        assert_eq!(
            (r.opts.image.as_str(), r.opts.command.as_slice()),
            ("busybox", &["-x".to_owned()][..])
        );
        // -h is the hostname, --sig-proxy=false parses.
        let Some(Cmd::Run(r)) = parse(&[
            "run",
            "-h",
            "box",
            "--sig-proxy=false",
            "-p",
            "8080:80/udp",
            "busybox",
        ])
        .cmd
        else {
            panic!()
        };
        assert_eq!(r.opts.hostname.as_deref(), Some("box"));
        assert!(!r.sig_proxy);
        assert_eq!(r.opts.publish, ["8080:80/udp"]);
        let Some(Cmd::Run(r)) = parse(&["run", "--memory-swap", "-1", "busybox"]).cmd else {
            panic!()
        };
        assert_eq!(r.opts.memory_swap.as_deref(), Some("-1"));
    }

    #[test]
    fn management_forms() {
        assert!(
            matches!(parse(&["container", "ls", "-a"]).cmd, Some(Cmd::Container(ContainerCmd::Ls(p))) if p.all)
        );
        assert!(matches!(
            parse(&["container", "ps"]).cmd,
            Some(Cmd::Container(ContainerCmd::Ls(_)))
        ));
        assert!(
            matches!(parse(&["image", "ls", "busybox"]).cmd, Some(Cmd::Image(ImageCmd::Ls(i))) if i.reference.as_deref() == Some("busybox"))
        );
        assert!(
            matches!(parse(&["system", "df", "-v"]).cmd, Some(Cmd::System(SystemCmd::Df(d))) if d.verbose)
        );
        assert!(
            matches!(parse(&["-H", "unix:///x", "ps", "-aq"]).cmd, Some(Cmd::Ps(p)) if p.all && p.quiet)
        );
        assert!(
            matches!(parse(&["exec", "-it", "c", "sh", "-c", "x"]).cmd, Some(Cmd::Exec(e)) if e.tty && e.command.len() == 3)
        );
    }
}
