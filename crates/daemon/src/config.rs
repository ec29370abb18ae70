//! wharfd's configuration: command-line flags and `/etc/wharf/daemon.json`
//! (docker's key names), merged into one [`Config`]. As with dockerd, a
//! setting given both as a flag and in the file is an error, so nobody
//! wonders which one won.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;
use wharf_engine::model::Ulimit;

/// The default configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/wharf/daemon.json";

/// wharfd: the wharf container engine daemon (Docker Engine API).
#[derive(Debug, Parser, Default)]
#[command(name = "wharfd", version, about, args_override_self = true)]
pub struct Flags {
    /// Daemon configuration file (docker's daemon.json keys).
    #[arg(long, default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
    /// Root of persistent state [default: /var/lib/wharf].
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, shims) [default: /run/wharf].
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    /// Socket(s) to listen on: unix:///path, tcp://host:port (repeatable)
    /// [default: unix:///run/wharf/wharf.sock].
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Group owning the unix socket [default: docker, if it exists].
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Log level: debug, info, warn, error, fatal.
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// Debug mode (log level debug).
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Path of the pid file [default: <exec-root>/wharfd.pid].
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// Registry reachable over plain HTTP or with an untrusted certificate (repeatable).
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Docker Hub mirror (repeatable).
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Default ulimit for containers, name=soft[:hard] (repeatable).
    #[arg(long = "default-ulimit")]
    pub default_ulimits: Vec<String>,
    /// Default log driver option, max-size=10m or max-file=3 (repeatable).
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// Snapshot driver: overlay2 or vfs [default: overlay when usable].
    #[arg(short = 's', long)]
    pub storage_driver: Option<String>,
    /// Use TLS and verify the remote (tcp:// hosts).
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA.
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Path to the TLS certificate file.
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Path to the TLS key file.
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// The wharf-shim executable [default: next to wharfd, else on PATH].
    #[arg(long, env = "WHARF_SHIM_BINARY")]
    pub shim_binary: Option<PathBuf>,
    /// The init run as PID 1 by `--init` [default: wharf-init next to
    /// wharfd, else on PATH].
    #[arg(long)]
    pub init_path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileUlimit {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Soft")]
    soft: i64,
    #[serde(rename = "Hard")]
    hard: i64,
}

/// The keys of daemon.json wharf understands (docker's names).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    group: Option<String>,
    log_level: Option<String>,
    debug: Option<bool>,
    pidfile: Option<PathBuf>,
    insecure_registries: Option<Vec<String>>,
    registry_mirrors: Option<Vec<String>>,
    default_ulimits: Option<BTreeMap<String, FileUlimit>>,
    log_driver: Option<String>,
    log_opts: Option<BTreeMap<String, String>>,
    storage_driver: Option<String>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    live_restore: Option<bool>,
    init_path: Option<PathBuf>,
}

/// TLS settings for tcp hosts.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub verify: bool,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The merged configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    /// `None`: the default (`docker` if that group exists).
    pub group: Option<String>,
    pub log_level: String,
    pub debug: bool,
    pub pidfile: PathBuf,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub default_ulimits: Vec<Ulimit>,
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
    pub storage_driver: Option<String>,
    pub tls: Tls,
    pub shim_binary: PathBuf,
    /// The `--init` executable, when one was found.
    pub init_binary: Option<PathBuf>,
}

/// Parses `nofile=1024:2048` (hard defaults to soft).
pub fn parse_ulimit(s: &str) -> anyhow::Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .with_context(|| format!("invalid ulimit argument {s:?}: want name=soft[:hard]"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft
        .parse()
        .with_context(|| format!("invalid ulimit soft value in {s:?}"))?;
    let hard: i64 = hard
        .parse()
        .with_context(|| format!("invalid ulimit hard value in {s:?}"))?;
    wharf_engine::spec::rlimit_type(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

fn conflict<T>(name: &str, flag: bool, file: &Option<T>, out: &mut Vec<String>) {
    if flag && file.is_some() {
        out.push(name.to_owned());
    }
}

/// Reads the file (absent is fine for the default path) and merges the flags.
pub fn load(flags: Flags) -> anyhow::Result<Config> {
    let file: File = match std::fs::read(&flags.config_file) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| {
            format!(
                "invalid daemon configuration file {}",
                flags.config_file.display()
            )
        })?,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && flags.config_file == Path::new(DEFAULT_CONFIG_FILE) =>
        {
            File::default()
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot read daemon configuration file {}",
                    flags.config_file.display()
                )
            });
        }
    };
    let mut both = Vec::new();
    conflict(
        "data-root",
        flags.data_root.is_some(),
        &file.data_root,
        &mut both,
    );
    conflict(
        "exec-root",
        flags.exec_root.is_some(),
        &file.exec_root,
        &mut both,
    );
    conflict("hosts", !flags.hosts.is_empty(), &file.hosts, &mut both);
    conflict("group", flags.group.is_some(), &file.group, &mut both);
    conflict(
        "init-path",
        flags.init_path.is_some(),
        &file.init_path,
        &mut both,
    );
    conflict(
        "log-level",
        flags.log_level.is_some(),
        &file.log_level,
        &mut both,
    );
    conflict("debug", flags.debug, &file.debug, &mut both);
    conflict("pidfile", flags.pidfile.is_some(), &file.pidfile, &mut both);
    conflict(
        "insecure-registries",
        !flags.insecure_registries.is_empty(),
        &file.insecure_registries,
        &mut both,
    );
    conflict(
        "registry-mirrors",
        !flags.registry_mirrors.is_empty(),
        &file.registry_mirrors,
        &mut both,
    );
    conflict(
        "default-ulimits",
        !flags.default_ulimits.is_empty(),
        &file.default_ulimits,
        &mut both,
    );
    conflict(
        "log-opts",
        !flags.log_opts.is_empty(),
        &file.log_opts,
        &mut both,
    );
    conflict(
        "storage-driver",
        flags.storage_driver.is_some(),
        &file.storage_driver,
        &mut both,
    );
    if !both.is_empty() {
        bail!(
            "the following directives are specified both as a flag and in the configuration file ({}): {}",
            flags.config_file.display(),
            both.join(", ")
        );
    }
    if let Some(d) = &file.log_driver
        && d != "json-file"
    {
        bail!("log driver {d:?} is not supported (json-file is)");
    }
    if file.live_restore == Some(false) {
        tracing::warn!("live-restore cannot be disabled: containers always outlive the daemon");
    }
    let data_root = flags
        .data_root
        .or(file.data_root)
        .unwrap_or_else(|| "/var/lib/wharf".into());
    let exec_root = flags
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| "/run/wharf".into());
    let mut hosts = if flags.hosts.is_empty() {
        file.hosts.unwrap_or_default()
    } else {
        flags.hosts
    };
    if hosts.is_empty() {
        hosts.push(format!("unix://{}", exec_root.join("wharf.sock").display()));
    }
    let debug = flags.debug || file.debug.unwrap_or(false);
    let log_level = flags
        .log_level
        .or(file.log_level)
        .unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
    if !matches!(
        log_level.as_str(),
        "debug" | "info" | "warn" | "error" | "fatal" | "trace"
    ) {
        bail!("unable to parse logging level: {log_level}");
    }
    let mut default_ulimits = Vec::new();
    for u in &flags.default_ulimits {
        default_ulimits.push(parse_ulimit(u)?);
    }
    for (name, u) in file.default_ulimits.unwrap_or_default() {
        if u.name != name && !u.name.is_empty() {
            bail!("default-ulimits: key {name:?} names ulimit {:?}", u.name);
        }
        default_ulimits.push(parse_ulimit(&format!("{name}={}:{}", u.soft, u.hard))?);
    }
    let mut log_opts: BTreeMap<String, String> = file.log_opts.unwrap_or_default();
    for o in &flags.log_opts {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("invalid --log-opt {o:?}: want key=value"))?;
        log_opts.insert(k.to_owned(), v.to_owned());
    }
    let mut log_max_size = Some(10 << 20);
    let mut log_max_files = Some(3);
    for (k, v) in &log_opts {
        match k.as_str() {
            "max-size" => {
                log_max_size = Some(
                    wharf_engine::containers::parse_size(v)
                        .with_context(|| format!("invalid log-opt max-size {v:?}"))?,
                )
            }
            "max-file" => {
                let n: u32 = v
                    .parse()
                    .with_context(|| format!("invalid log-opt max-file {v:?}"))?;
                if n == 0 {
                    bail!("log-opt max-file must be at least 1");
                }
                log_max_files = Some(n)
            }
            other => bail!("unknown log opt {other:?} for the json-file log driver"),
        }
    }
    let tls = Tls {
        verify: flags.tlsverify || file.tlsverify.unwrap_or(false) || file.tls.unwrap_or(false),
        cacert: flags.tlscacert.or(file.tlscacert),
        cert: flags.tlscert.or(file.tlscert),
        key: flags.tlskey.or(file.tlskey),
    };
    let init_binary = match flags.init_path.or(file.init_path) {
        Some(p) if !p.is_file() => bail!("--init-path {}: no such file", p.display()),
        Some(p) => Some(p),
        None => find_next_to_exe_or_on_path("wharf-init"),
    };
    let shim_binary = match flags.shim_binary {
        Some(p) => p,
        None => find_shim()?,
    };
    Ok(Config {
        pidfile: flags
            .pidfile
            .or(file.pidfile)
            .unwrap_or_else(|| exec_root.join("wharfd.pid")),
        data_root,
        exec_root,
        hosts,
        group: flags.group.or(file.group),
        log_level,
        debug,
        insecure_registries: if flags.insecure_registries.is_empty() {
            file.insecure_registries.unwrap_or_default()
        } else {
            flags.insecure_registries
        },
        registry_mirrors: if flags.registry_mirrors.is_empty() {
            file.registry_mirrors.unwrap_or_default()
        } else {
            flags.registry_mirrors
        },
        default_ulimits,
        log_max_size,
        log_max_files,
        storage_driver: flags.storage_driver.or(file.storage_driver),
        tls,
        shim_binary,
        init_binary,
    })
}

/// `name` next to this executable, else on `PATH`.
fn find_next_to_exe_or_on_path(name: &str) -> Option<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned));
    exe_dir
        .into_iter()
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `wharf-shim` next to this executable, else on `PATH`.
fn find_shim() -> anyhow::Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let p = dir.join("wharf-shim");
        if p.is_file() {
            return Ok(p);
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join("wharf-shim");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("cannot find the wharf-shim executable next to wharfd or on PATH; pass --shim-binary")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut v = vec![
            "wharfd",
            "--shim-binary",
            "/bin/true",
            "--config-file",
            "/nonexistent/daemon.json",
        ];
        v.extend_from_slice(args);
        Flags::parse_from(v)
    }

    #[test]
    fn flags_file_and_defaults() {
        let f = flags(&[]);
        // A missing non-default config file is an error.
        assert!(load(f).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, r#"{"data-root": "/d", "log-opts": {"max-size": "1m", "max-file": "2"}, "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 10, "Hard": 20}}, "insecure-registries": ["r:5000"]}"#).unwrap();
        let f = file.to_str().unwrap();
        let c = load(flags(&[
            "--config-file",
            f,
            "-H",
            "unix:///tmp/x.sock",
            "--debug",
        ]))
        .unwrap();
        assert_eq!(c.data_root, Path::new("/d"));
        assert_eq!(c.exec_root, Path::new("/run/wharf"));
        assert_eq!(c.hosts, ["unix:///tmp/x.sock"]);
        assert_eq!(c.log_max_size, Some(1 << 20));
        assert_eq!(c.log_max_files, Some(2));
        assert_eq!(c.default_ulimits.len(), 1);
        assert!(c.debug);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.insecure_registries, ["r:5000"]);
        assert_eq!(c.pidfile, Path::new("/run/wharf/wharfd.pid"));
        let err = load(flags(&["--config-file", f, "--data-root", "/e"])).unwrap_err();
        assert!(err.to_string().contains("data-root"), "{err}");
        std::fs::write(&file, r#"{"bogus-key": 1}"#).unwrap();
        assert!(load(flags(&["--config-file", f])).is_err());
        assert!(parse_ulimit("nofile=5:2").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert_eq!(parse_ulimit("nofile=5").unwrap().hard, 5);
    }
}
