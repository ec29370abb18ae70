//! The last steps before the user's program runs: rlimits, umask, user and
//! groups, capabilities, no_new_privs, and finding the executable.
//!
//! The order (numbered in [`apply_credentials`]) matters: the bounding set is
//! reduced while we still hold CAP_SETPCAP; ids change with KEEPCAPS so the
//! permitted set survives; the final sets are written last.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capabilities, Capability, PosixRlimitType, Process};
use rustix::process::{Resource, Rlimit};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// Errors applying the process section.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{op} failed")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: \"{0}\": permission denied")]
    NotExecutable(String),
    #[error("invalid process: {0}")]
    Invalid(String),
}

fn sys(op: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> ProcessError {
    let op = op.into();
    move |e| ProcessError::Sys {
        op,
        source: e.into(),
    }
}

/// The kernel number of an OCI capability.
pub fn cap_number(c: &Capability) -> Option<u32> {
    Some(u32::from(wharf_spec::capability_number(*c)))
}

fn cap_name(n: u32) -> &'static str {
    wharf_spec::ALL_CAPABILITIES
        .get(n as usize)
        .map(|c| c.name)
        .unwrap_or("CAP_UNKNOWN")
}

/// A bit mask of capabilities, ignoring ones this kernel does not know.
pub fn cap_mask(caps: Option<&Capabilities>) -> u64 {
    let last = last_cap();
    caps.into_iter()
        .flatten()
        .filter_map(cap_number)
        .filter(|n| *n <= last)
        .fold(0u64, |m, n| m | (1u64 << n))
}

/// The highest capability number this kernel supports (read once per
/// process: the init asks for every capability set).
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

fn resource(t: PosixRlimitType) -> Option<Resource> {
    Some(match t {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

fn limit(v: u64) -> Option<u64> {
    if v == u64::MAX { None } else { Some(v) }
}

/// Applies `process.ioPriority` (before dropping privileges).
pub fn apply_io_priority(p: &Process) -> Result<(), ProcessError> {
    use oci_spec::runtime::IOPriorityClass;
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = u32::try_from(io.priority())
        .ok()
        .filter(|l| *l <= 7)
        .ok_or_else(|| {
            ProcessError::Invalid(format!(
                "ioPriority.priority {} is not in 0..=7",
                io.priority()
            ))
        })?;
    wharf_sys::process::set_io_priority(class, level).map_err(|source| ProcessError::Sys {
        op: "ioprio_set".into(),
        source,
    })
}

/// Applies `linux.personality` (the domain; flags are refused at validation).
pub fn apply_personality(
    p: Option<&oci_spec::runtime::LinuxPersonality>,
) -> Result<(), ProcessError> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let Some(p) = p else { return Ok(()) };
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    wharf_sys::process::set_personality(persona).map_err(|source| ProcessError::Sys {
        op: "personality".into(),
        source,
    })
}

/// Sets `process.rlimits` (before dropping privileges).
pub fn apply_rlimits(p: &Process) -> Result<(), ProcessError> {
    for r in p.rlimits().iter().flatten() {
        let res = resource(r.typ())
            .ok_or_else(|| ProcessError::Invalid(format!("unknown rlimit {}", r.typ())))?;
        let new = Rlimit {
            current: limit(r.soft()),
            maximum: limit(r.hard()),
        };
        rustix::process::setrlimit(res, new).map_err(sys(format!(
            "setrlimit {} {}/{}",
            r.typ(),
            r.soft(),
            r.hard()
        )))?;
    }
    Ok(())
}

/// 1-5: bounding set, groups and ids, capability sets, ambient set,
/// no_new_privs. Must run in the container's namespaces, single-threaded.
pub fn apply_credentials(p: &Process) -> Result<(), ProcessError> {
    let caps = p.capabilities().as_ref();
    let last = last_cap();
    // 1. Drop from the bounding set everything not listed (needs CAP_SETPCAP).
    if let Some(c) = caps {
        let keep = cap_mask(c.bounding().as_ref());
        for n in 0..=last {
            if keep & (1 << n) == 0 {
                rustix::thread::remove_capability_from_bounding_set(
                    CapabilitySet::from_bits_retain(1 << n),
                )
                .map_err(sys(format!("drop {} from the bounding set", cap_name(n))))?;
            }
        }
    }
    // 2. Keep the permitted set across the uid change, then change ids.
    rustix::thread::set_keep_capabilities(true).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    let user = p.user();
    let mut groups: Vec<rustix::fs::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| rustix::fs::Gid::from_raw(*g))
        .collect();
    groups.dedup();
    // setgroups is refused (EPERM) in a user namespace whose setgroups file
    // says deny; then only an empty list could have been asked for.
    match rustix::thread::set_thread_groups(&groups) {
        Ok(()) => {}
        Err(rustix::io::Errno::PERM) if groups.is_empty() => {}
        Err(e) => return Err(sys("setgroups")(e)),
    }
    let gid = rustix::fs::Gid::from_raw(user.gid());
    let uid = rustix::fs::Uid::from_raw(user.uid());
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .map_err(sys(format!("setresgid {}", user.gid())))?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .map_err(sys(format!("setresuid {}", user.uid())))?;
    rustix::thread::set_keep_capabilities(false).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    if let Some(mask) = user.umask() {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask & 0o777));
    }
    // 3. Effective, permitted and inheritable sets.
    if let Some(c) = caps {
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(cap_mask(c.effective().as_ref())),
            permitted: CapabilitySet::from_bits_retain(cap_mask(c.permitted().as_ref())),
            inheritable: CapabilitySet::from_bits_retain(cap_mask(c.inheritable().as_ref())),
        };
        rustix::thread::set_capabilities(None, sets).map_err(sys("capset"))?;
        // 4. Ambient capabilities (each must be permitted and inheritable).
        rustix::thread::clear_ambient_capability_set().map_err(sys("clear ambient set"))?;
        let amb = cap_mask(c.ambient().as_ref());
        for n in 0..=last {
            if amb & (1 << n) != 0 {
                // The kernel refuses (EPERM) an ambient capability that is not
                // both permitted and inheritable; runc warns and goes on, and
                // configs written by `runc spec` rely on that.
                let cap = CapabilitySet::from_bits_retain(1 << n);
                match rustix::thread::configure_capability_in_ambient_set(cap, true) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::PERM) => tracing::warn!(
                        capability = cap_name(n),
                        "cannot raise ambient capability: not permitted and inheritable"
                    ),
                    Err(e) => {
                        return Err(sys(format!("raise {} in the ambient set", cap_name(n)))(e));
                    }
                }
            }
        }
    }
    // 5. no_new_privs.
    if p.no_new_privileges().unwrap_or(false) {
        rustix::thread::set_no_new_privs(true).map_err(sys("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    }
    Ok(())
}

/// The PATH value from an env list (`KEY=VALUE`), or the default.
fn path_var(env: &[String]) -> &str {
    env.iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

fn is_executable(p: &Path) -> Result<bool, ProcessError> {
    match rustix::fs::stat(p) {
        Ok(st) => {
            let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
            Ok(!ft.is_dir() && rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok())
        }
        Err(_) => Ok(false),
    }
}

/// Resolves `args[0]` as exec would in the container: a name with a slash is
/// used as is; otherwise PATH (from the process env) is searched.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<CString, ProcessError> {
    let found: Option<PathBuf> = if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        if rustix::fs::stat(&p).is_err() {
            return Err(ProcessError::NotFound(arg0.to_string()));
        }
        if !is_executable(&p)? {
            return Err(ProcessError::NotExecutable(arg0.to_string()));
        }
        Some(p)
    } else {
        let mut hit = None;
        for dir in path_var(env).split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let cand = Path::new(dir).join(arg0);
            if is_executable(&cand)? {
                hit = Some(cand);
                break;
            }
        }
        hit
    };
    let p = found.ok_or_else(|| ProcessError::NotFound(arg0.to_string()))?;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| ProcessError::Invalid("NUL in executable path".into()))
}

/// The environment for the user's program: the spec's env, plus HOME when
/// missing (as runc does, from the container's /etc/passwd or "/").
pub fn final_env(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    // Keep the last value of duplicated keys, as exec would see them.
    let mut seen = HashSet::new();
    let mut out: Vec<String> = env
        .into_iter()
        .rev()
        .filter(|kv| seen.insert(kv.split('=').next().unwrap_or_default().to_string()))
        .collect();
    out.reverse();
    out
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// Changes into `cwd` (inside the container) and checks that the resulting
/// directory is reachable from the root: a cwd leaked from the host (the
/// CVE-2024-21626 class) shows up as "(unreachable)".
pub fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    rustix::process::chdir(cwd)
        .map_err(sys(format!("chdir to cwd ({cwd:?} set in config.json)")))?;
    let now = rustix::process::getcwd(Vec::new()).map_err(sys("getcwd"))?;
    if !now.as_bytes().starts_with(b"/") {
        return Err(ProcessError::Invalid(format!(
            "current working directory is outside of the container: {now:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_numbers() {
        assert_eq!(cap_number(&Capability::Chown), Some(0));
        assert_eq!(cap_number(&Capability::SysAdmin), Some(21));
        assert_eq!(cap_number(&Capability::CheckpointRestore), Some(40));
        let set: Capabilities = [Capability::Kill, Capability::NetBindService]
            .into_iter()
            .collect();
        assert_eq!(cap_mask(Some(&set)), (1 << 5) | (1 << 10));
    }

    #[test]
    fn env_gets_home_and_dedups() {
        let mut p = Process::default();
        p.set_env(Some(vec!["A=1".into(), "B=2".into(), "A=3".into()]));
        let env = final_env(&p);
        assert!(env.contains(&"A=3".to_string()) && !env.contains(&"A=1".to_string()));
        assert!(env.iter().any(|e| e.starts_with("HOME=")));
    }

    #[test]
    fn lookup() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).is_ok());
        assert!(matches!(
            find_executable("no-such-program-x", &env),
            Err(ProcessError::NotFound(_))
        ));
        assert!(matches!(
            find_executable("/etc/passwd", &env),
            Err(ProcessError::NotExecutable(_))
        ));
    }
}
