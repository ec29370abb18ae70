//! OCI bundles for runtime tests: a temporary directory holding `config.json`
//! and a small `rootfs/` (busybox-static with its applet links, the static
//! probe at `/probe`, `/etc/passwd` and `/etc/group` with known users).
//!
//! [`Bundle::new`] starts from `wharf_spec::default_spec()` adjusted for tests:
//! no terminal, `args = ["/probe"]`, `RLIMIT_NOFILE` clamped to what this
//! process may grant, and a cgroup of its own (`/wharf-test/<id>`) so tests
//! never share cgroups. Tests edit the spec through the helpers or
//! [`Bundle::spec_mut`]; `Runtime` writes `config.json` before each
//! `create`/`run` (or call [`Bundle::write_config`]). Dropping the bundle
//! unmounts anything left under it, removes its cgroup (killing stragglers)
//! and deletes the directory.
//!
//! Users and groups in the rootfs:
//!
//! | name     | uid   | gid   | also in |
//! |----------|-------|-------|---------|
//! | root     | 0     | 0     |         |
//! | wharf    | 1000  | 1000  | extra (1001) |
//! | nobody   | 65534 | 65534 (nogroup) | |

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use oci_spec::runtime::{LinuxBuilder, PosixRlimitBuilder, PosixRlimitType, Process, Spec};
use rustix::process::{Resource, getrlimit};

use crate::cleanup::{remove_cgroup, unmount_under};
use crate::ids::unique_id;
use crate::probe::{ProbeError, is_static_elf, try_probe_path};

/// Parent of every test cgroup (`cgroupsPath = /wharf-test/<id>`).
pub const TEST_CGROUP_PARENT: &str = "/wharf-test";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
wharf:x:1000:1000:wharf:/home/wharf:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\n\
wharf:x:1000:\n\
extra:x:1001:wharf\n\
nogroup:x:65534:\n";

/// Errors while building or saving a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("failed to create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to copy {from} to {to}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to list busybox applets with {busybox}: {detail}")]
    Applets { busybox: PathBuf, detail: String },
    #[error("{busybox} is not a static executable; install busybox-static or set $WHARF_BUSYBOX")]
    BusyboxNotStatic { busybox: PathBuf },
    #[error("the static probe is unavailable")]
    Probe(#[source] &'static ProbeError),
    #[error("failed to check {path}")]
    Elf {
        path: PathBuf,
        #[source]
        source: ProbeError,
    },
    #[error("failed to serialize the spec for {path}")]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write {path}")]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A temporary OCI bundle; see the module documentation.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    id: String,
    spec: Spec,
}

/// Directory under which bundles and runtime state dirs are made:
/// `$WHARF_TEST_TMP`, else `/tmp`.
pub fn test_tmp() -> PathBuf {
    std::env::var_os("WHARF_TEST_TMP").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// The busybox used for rootfs contents: `$WHARF_BUSYBOX`, else `/bin/busybox`.
pub fn busybox_path() -> PathBuf {
    std::env::var_os("WHARF_BUSYBOX").map_or_else(|| PathBuf::from("/bin/busybox"), PathBuf::from)
}

impl Bundle {
    /// A new bundle with a fresh id (prefix `wt`).
    pub fn new() -> Result<Bundle, BundleError> {
        Bundle::with_prefix("wt")
    }

    /// A new bundle whose id (see [`Bundle::id`]) starts with `prefix`.
    pub fn with_prefix(prefix: &str) -> Result<Bundle, BundleError> {
        let id = unique_id(prefix);
        let dir = test_tmp().join(format!("wharf-bundle-{id}"));
        fs::create_dir_all(&dir).map_err(|source| BundleError::Create {
            path: dir.clone(),
            source,
        })?;
        // From here on, Drop removes the directory even if building fails.
        let mut bundle = Bundle {
            dir,
            id,
            spec: wharf_spec::default_spec(),
        };
        build_rootfs(&bundle.rootfs())?;
        bundle.adjust_spec();
        Ok(bundle)
    }

    fn adjust_spec(&mut self) {
        let cgroups_path = self.cgroups_path();
        let process = self.process_mut();
        process.set_terminal(Some(false));
        process.set_args(Some(vec!["/probe".to_owned()]));
        let hard_nofile = getrlimit(Resource::Nofile).maximum.unwrap_or(u64::MAX);
        if let Some(mut rlimits) = process.rlimits().clone() {
            for rlimit in rlimits
                .iter_mut()
                .filter(|r| r.typ() == PosixRlimitType::RlimitNofile)
            {
                let hard = rlimit.hard().min(hard_nofile);
                *rlimit = PosixRlimitBuilder::default()
                    .typ(PosixRlimitType::RlimitNofile)
                    .hard(hard)
                    .soft(rlimit.soft().min(hard))
                    .build()
                    .expect("all rlimit fields are set");
            }
            process.set_rlimits(Some(rlimits));
        }
        let linux = self.spec.linux_mut().get_or_insert_with(|| {
            LinuxBuilder::default()
                .build()
                .expect("an empty linux section always builds")
        });
        linux.set_cgroups_path(Some(PathBuf::from(cgroups_path)));
    }

    /// The id this bundle was made with; a good container id for it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bundle directory (holds `config.json` and `rootfs/`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The root filesystem directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `config.json` inside the bundle.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The container's cgroup, `/wharf-test/<id>`.
    pub fn cgroups_path(&self) -> String {
        format!("{TEST_CGROUP_PARENT}/{}", self.id)
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }

    /// The spec's process section (created empty if missing).
    pub fn process_mut(&mut self) -> &mut Process {
        self.spec.process_mut().get_or_insert_with(Process::default)
    }

    /// Writes the current spec to `config.json`.
    pub fn write_config(&self) -> Result<(), BundleError> {
        let path = self.config_path();
        let json =
            serde_json::to_vec_pretty(&self.spec).map_err(|source| BundleError::Serialize {
                path: path.clone(),
                source,
            })?;
        fs::write(&path, json).map_err(|source| BundleError::WriteConfig { path, source })
    }

    /// Sets `process.args`.
    pub fn args<S: AsRef<str>>(&mut self, args: &[S]) -> &mut Self {
        let args = args.iter().map(|a| a.as_ref().to_owned()).collect();
        self.process_mut().set_args(Some(args));
        self
    }

    /// Sets `process.args` to `/probe` followed by `args` (a subcommand).
    pub fn probe_args<S: AsRef<str>>(&mut self, args: &[S]) -> &mut Self {
        let args: Vec<String> = std::iter::once("/probe".to_owned())
            .chain(args.iter().map(|a| a.as_ref().to_owned()))
            .collect();
        self.process_mut().set_args(Some(args));
        self
    }

    /// Sets (or replaces) one environment variable.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        let process = self.process_mut();
        let mut env = process.env().clone().unwrap_or_default();
        let prefix = format!("{key}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{key}={value}"));
        process.set_env(Some(env));
        self
    }

    /// Sets the process's uid and gid (clearing additional groups).
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        let user = self.process_mut().user_mut();
        user.set_uid(uid);
        user.set_gid(gid);
        user.set_additional_gids(None);
        self
    }

    /// Sets the process's supplementary groups.
    pub fn additional_gids(&mut self, gids: &[u32]) -> &mut Self {
        self.process_mut()
            .user_mut()
            .set_additional_gids(Some(gids.to_vec()));
        self
    }

    /// Sets the container hostname.
    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.spec.set_hostname(Some(name.to_owned()));
        self
    }

    /// Sets the process's working directory.
    pub fn cwd(&mut self, dir: &str) -> &mut Self {
        self.process_mut().set_cwd(PathBuf::from(dir));
        self
    }

    /// Makes the root filesystem read-only (or writable).
    pub fn readonly_rootfs(&mut self, readonly: bool) -> &mut Self {
        if let Some(root) = self.spec.root_mut() {
            root.set_readonly(Some(readonly));
        }
        self
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let mut failures = unmount_under(&self.dir);
        failures.extend(remove_cgroup(&self.cgroups_path()));
        let mut messages: Vec<String> = failures.iter().map(|f| format!("{f}")).collect();
        if let Err(err) = fs::remove_dir_all(&self.dir)
            && err.kind() != io::ErrorKind::NotFound
        {
            messages.push(format!("failed to remove {}: {err}", self.dir.display()));
        }
        if !messages.is_empty() {
            eprintln!(
                "wharf-testkit: bundle {} cleanup failed:\n  {}",
                self.id,
                messages.join("\n  ")
            );
        }
    }
}

/// Relative paths (`bin/ls`, `usr/bin/awk`, ...) of busybox's applets,
/// asked once per process.
fn applets(busybox: &Path) -> Result<&'static [String], BundleError> {
    static APPLETS: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    let result = APPLETS.get_or_init(|| {
        let out = Command::new(busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let list: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().trim_start_matches('/').to_owned())
            .filter(|l| !l.is_empty() && !l.contains(".."))
            .collect();
        if list.is_empty() {
            Err("no applets listed".to_owned())
        } else {
            Ok(list)
        }
    });
    result.as_deref().map_err(|detail| BundleError::Applets {
        busybox: busybox.to_owned(),
        detail: detail.clone(),
    })
}

fn create_dir(path: &Path, mode: u32) -> Result<(), BundleError> {
    let err = |source| BundleError::Create {
        path: path.to_owned(),
        source,
    };
    fs::create_dir_all(path).map_err(err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(err)
}

fn copy_executable(from: &Path, to: &Path) -> Result<(), BundleError> {
    let err = |source| BundleError::Copy {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    };
    // std::fs::copy uses copy_file_range, which reflinks where the fs can.
    fs::copy(from, to).map_err(err)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).map_err(err)
}

fn write_file(path: &Path, contents: &str) -> Result<(), BundleError> {
    fs::write(path, contents).map_err(|source| BundleError::Create {
        path: path.to_owned(),
        source,
    })
}

/// Fills `rootfs` (numbered steps, each idempotent).
fn build_rootfs(rootfs: &Path) -> Result<(), BundleError> {
    // 1. Directory skeleton; /tmp sticky and world-writable like a real one.
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "root",
        "run",
        "var/tmp",
        "home/wharf",
    ] {
        create_dir(&rootfs.join(dir), 0o755)?;
    }
    create_dir(&rootfs.join("tmp"), 0o1777)?;
    // wharf's home belongs to wharf; only root can arrange that, and bundle
    // users that are not root run no container anyway.
    let home = rootfs.join("home/wharf");
    match std::os::unix::fs::chown(&home, Some(1000), Some(1000)) {
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => {
            return Err(BundleError::Create {
                path: home,
                source: e,
            });
        }
        _ => {}
    }

    // 2. busybox-static and a link per applet.
    let busybox = busybox_path();
    match is_static_elf(&busybox) {
        Ok(true) => {}
        Ok(false) => return Err(BundleError::BusyboxNotStatic { busybox }),
        Err(source) => {
            return Err(BundleError::Elf {
                path: busybox,
                source,
            });
        }
    }
    copy_executable(&busybox, &rootfs.join("bin/busybox"))?;
    for applet in applets(&busybox)? {
        let link = rootfs.join(applet);
        if applet == "bin/busybox" {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|source| BundleError::Create {
                path: parent.to_owned(),
                source,
            })?;
        }
        symlink("/bin/busybox", &link)
            .map_err(|source| BundleError::Create { path: link, source })?;
    }

    // 3. The static probe.
    let probe = try_probe_path().map_err(BundleError::Probe)?;
    copy_executable(probe, &rootfs.join("probe"))?;

    // 4. Users and groups (see the module table).
    write_file(&rootfs.join("etc/passwd"), PASSWD)?;
    write_file(&rootfs.join("etc/group"), GROUP)?;
    Ok(())
}
