//! Command-line shape, flag for flag with runc where they overlap.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "wharf-runtime",
    version,
    about = "wharf's OCI runtime (runc-compatible command line)"
)]
pub struct Cli {
    /// Root directory for storage of container state (tmpfs recommended).
    #[arg(long, global = true, default_value = "/run/wharf-runtime")]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Enable debug logging (with a timing log of create and start).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported yet).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Ignored, for runc compatibility.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Ignored, for runc compatibility (rootless is detected).
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Ignored (session keyrings are not used).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container.
    Create(CreateArgs),
    /// Start the user process of a created container.
    Start { id: String },
    /// Create and start a container.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process.
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Output the state of a container.
    State { id: String },
    /// Send a signal to the container's init process.
    Kill {
        /// Send the signal to all processes in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and the resources it holds.
    Delete {
        /// Kill the container if it is still running.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Execute a new process inside the container.
    Exec {
        /// Path to a process.json.
        #[arg(short, long)]
        process: Option<PathBuf>,
        /// Allocate a pseudo-TTY.
        #[arg(short, long)]
        tty: bool,
        /// Current working directory in the container.
        #[arg(long)]
        cwd: Option<String>,
        /// Set environment variables (KEY=VALUE).
        #[arg(short, long)]
        env: Vec<String>,
        /// UID (format: <uid>[:<gid>]).
        #[arg(short, long)]
        user: Option<String>,
        /// Additional gids.
        #[arg(short = 'g', long = "additional-gids")]
        additional_gids: Vec<u32>,
        /// Add a capability to the bounding set.
        #[arg(short, long)]
        cap: Vec<String>,
        /// Set the no new privileges value for the process.
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        /// Detach from the container's process.
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: i32,
        /// Ignored (no LSM labels on this host).
        #[arg(long = "process-label")]
        process_label: Option<String>,
        /// Ignored (no AppArmor on this host).
        #[arg(long)]
        apparmor: Option<String>,
        id: String,
        /// Command and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Display the processes running inside a container.
    Ps {
        #[arg(short, long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
        id: String,
        /// Arguments for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers started by this runtime root.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, value_enum, default_value_t = OutFormat::Table)]
        format: OutFormat,
        /// Display only container ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Suspend all processes of a container.
    Pause { id: String },
    /// Resume all processes of a paused container.
    Resume { id: String },
    /// Update container resource constraints.
    Update {
        /// Path to a JSON file of linux.resources ("-" for stdin).
        #[arg(short, long)]
        resources: Option<PathBuf>,
        id: String,
    },
    /// Show the enabled features (OCI runtime features JSON).
    Features,
    /// Create a new specification file (config.json).
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Generate a configuration for a rootless container.
        #[arg(long = "rootless")]
        rootless: bool,
    },
}
