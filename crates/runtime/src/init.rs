//! The container's first process, between `clone3` and the user's program,
//! and the child of `exec`. Runs single-threaded, in the new namespaces.
//!
//! Steps of the init (numbered in [`run_init`]) follow the runtime spec's
//! lifecycle: wait for the runtime to place us in the cgroup and write id
//! mappings; join/unshare namespaces; build the rootfs; let the runtime run
//! the prestart/createRuntime hooks; run createContainer hooks; pivot_root;
//! mask paths; set hostname, sysctls, console, rlimits, cwd, seccomp,
//! credentials; report "created"; block on the exec fifo until `start`; run
//! startContainer hooks; exec. Any failure is sent to the runtime as an
//! `Error` message and the process exits.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process};
use rustix::fs::{Mode, OFlags};
use rustix::thread::LinkNameSpaceType;

use crate::config::Bundle;
use crate::process::{self, ProcessError};
use crate::rootfs::{self, Context};
use crate::seccomp::CompiledFilter;
use crate::sync::{Channel, Msg};

/// Everything the init child needs, prepared by the runtime before `clone3`.
pub struct InitArgs {
    pub bundle: Bundle,
    pub chan: Channel,
    /// `O_PATH` descriptor of `exec.fifo` (opened before leaving the host).
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    pub seccomp: Option<CompiledFilter>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// Namespaces to join by path, user namespace first.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// `CLONE_NEW*` flags to unshare after joining (when a user namespace
    /// was joined, so the new ones belong to it).
    pub unshare_after_join: u64,
    pub new_userns: bool,
    pub new_cgroupns: bool,
    /// v1 `tasks` files the init writes "0" to, placing itself (see
    /// `Runtime::create`), once the runtime sent `CgroupsReady`; empty when
    /// the runtime placed it.
    pub self_cgroup_tasks: Vec<PathBuf>,
    /// The cgroup hierarchies and the container's directories, for the
    /// cgroup mounts.
    pub cgroups: rootfs::CgroupMounts,
}

/// Everything the exec child needs.
pub struct ExecArgs {
    pub process: Process,
    pub chan: Channel,
    pub console: Option<OwnedFd>,
    pub seccomp: Option<CompiledFilter>,
    pub preserve_fds: i32,
    /// Namespaces of the container to enter, user namespace first (pid and
    /// time are entered by the parent before forking).
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
}

/// A setup failure, rendered with its whole cause chain for the runtime.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{op} failed")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

fn sys(op: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> InitError {
    let op = op.into();
    move |e| InitError::Sys {
        op,
        source: e.into(),
    }
}

/// Renders an error with its sources: "a: b: c".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn ns_type(t: LinuxNamespaceType) -> Option<LinkNameSpaceType> {
    Some(match t {
        LinuxNamespaceType::Mount => LinkNameSpaceType::Mount,
        LinuxNamespaceType::Cgroup => LinkNameSpaceType::ControlGroup,
        LinuxNamespaceType::Uts => LinkNameSpaceType::HostNameAndNISDomainName,
        LinuxNamespaceType::Ipc => LinkNameSpaceType::InterProcessCommunication,
        LinuxNamespaceType::User => LinkNameSpaceType::User,
        LinuxNamespaceType::Pid => LinkNameSpaceType::ProcessID,
        LinuxNamespaceType::Network => LinkNameSpaceType::Network,
        LinuxNamespaceType::Time => LinkNameSpaceType::Time,
    })
}

/// `setns` into each descriptor, in order.
pub fn join_namespaces(join: &[(LinuxNamespaceType, OwnedFd)]) -> Result<(), InitError> {
    for (t, fd) in join {
        rustix::thread::move_into_link_name_space(fd.as_fd(), ns_type(*t)).map_err(sys(
            format!("join {} namespace", crate::config::proc_ns_name(*t)),
        ))?;
    }
    Ok(())
}

/// Entry point of the init child; never returns.
pub fn run_init(args: InitArgs) -> ! {
    let err = match init_steps(&args) {
        Ok(e) => InitError::Process(e),
        Err(e) => e,
    };
    let _ = args.chan.send(&Msg::Error {
        message: chain(&err),
    });
    wharf_sys::process::exit_immediately(1)
}

/// Entry point of the exec child; never returns.
pub fn run_exec(args: ExecArgs) -> ! {
    let err = match exec_steps(&args) {
        Ok(e) => InitError::Process(e),
        Err(e) => e,
    };
    let _ = args.chan.send(&Msg::Error {
        message: chain(&err),
    });
    wharf_sys::process::exit_immediately(1)
}

fn become_ns_root() {
    // In a new user namespace our ids are unmapped until the parent wrote the
    // maps; become the namespace's root when it is mapped (ignore otherwise).
    let _ = rustix::thread::set_thread_res_gid(
        rustix::fs::Gid::ROOT,
        rustix::fs::Gid::ROOT,
        rustix::fs::Gid::ROOT,
    );
    let _ = rustix::thread::set_thread_res_uid(
        rustix::fs::Uid::ROOT,
        rustix::fs::Uid::ROOT,
        rustix::fs::Uid::ROOT,
    );
}

fn init_steps(a: &InitArgs) -> Result<ProcessError, InitError> {
    let b = &a.bundle;
    // 1. Wait until the runtime placed us in the cgroup and wrote id maps;
    //    then receive the idmapped mounts it prepared, if any.
    a.chan.expect("go")?;
    let idmap_count = b
        .spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| crate::mounts::parse(m.options().as_deref().unwrap_or(&[])).idmap)
        .count();
    let idmapped = a.chan.recv_fds(idmap_count)?;
    // 2. Namespaces: join by path (user first), unshare the rest.
    join_namespaces(&a.join)?;
    if a.new_userns || a.join.iter().any(|(t, _)| *t == LinuxNamespaceType::User) {
        become_ns_root();
    }
    if a.unshare_after_join != 0 {
        wharf_sys::process::unshare_namespaces(a.unshare_after_join).map_err(|source| {
            InitError::Sys {
                op: "unshare".into(),
                source,
            }
        })?;
    }
    let userns = b.has_namespace(LinuxNamespaceType::User);
    // 3. The root filesystem up to pivot_root. The runtime creates the
    //    cgroups meanwhile; before the first cgroup mount (or at the end) we
    //    wait for them, join the v1 hierarchies ourselves (single-threaded:
    //    "0" moves us whole) and only then unshare the cgroup namespace.
    let ctx = Context {
        userns,
        cgroupns: b.has_namespace(LinuxNamespaceType::Cgroup),
    };
    rootfs::prepare(b, ctx, idmapped, &a.cgroups, || {
        match a.chan.expect("cgroups ready")? {
            Msg::CgroupsReady => {}
            other => {
                return Err(InitError::from(crate::sync::SyncError::Unexpected {
                    expected: "cgroups ready",
                    got: format!("{other:?}"),
                }));
            }
        }
        for tasks in &a.self_cgroup_tasks {
            std::fs::write(tasks, "0").map_err(|source| InitError::Sys {
                op: format!("join cgroup {}", tasks.display()),
                source,
            })?;
        }
        if a.new_cgroupns {
            wharf_sys::process::unshare_namespaces(libc::CLONE_NEWCGROUP as u64).map_err(
                |source| InitError::Sys {
                    op: "unshare cgroup namespace".into(),
                    source,
                },
            )?;
        }
        Ok(())
    })?;
    // 4. prestart + createRuntime hooks run in the runtime; wait for them.
    a.chan.send(&Msg::ReadyForHooks)?;
    let state = match a.chan.expect("hooks done")? {
        Msg::HooksDone { state } => state,
        other => {
            return Err(crate::sync::SyncError::Unexpected {
                expected: "hooks done",
                got: format!("{other:?}"),
            }
            .into());
        }
    };
    // 5. createContainer hooks, in the container's namespaces, before pivot.
    if let Some(h) = b
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        crate::hooks::run_all("createContainer", h, &state)?;
    }
    // 6. pivot_root and the finishing touches on the new root.
    rootfs::pivot(&b.rootfs, a.no_pivot)?;
    // sysctls before finalize: /proc/sys is one of the read-only paths.
    rootfs::apply_sysctls(b)?;
    rootfs::finalize(b)?;
    // 7. Hostname, domainname, personality, OOM score.
    if let Some(h) = b.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes()).map_err(sys("sethostname"))?;
    }
    if let Some(d) = b.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        wharf_sys::process::set_domainname(d).map_err(|source| InitError::Sys {
            op: "setdomainname".into(),
            source,
        })?;
    }
    process::apply_personality(
        b.spec
            .linux()
            .as_ref()
            .and_then(|l| l.personality().as_ref()),
    )?;
    let p = b.process();
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|source| {
            InitError::Sys {
                op: "write oom_score_adj".into(),
                source,
            }
        })?;
    }
    // 8. Console, rlimits, cwd, seccomp, credentials: shared with exec.
    let (exe, env) = finish_process(p, a.console.as_ref(), a.seccomp.as_ref(), true)?;
    // 9. Report "created", then block until `start` opens the fifo.
    a.chan.send(&Msg::Created)?;
    let fifo = rustix::fs::open(
        crate::safepath::fd_path(&a.fifo).as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open exec fifo"))?;
    rustix::io::write(&fifo, b"0").map_err(sys("write exec fifo"))?;
    // `fifo` stays open (close-on-exec) until execve: `start` waits for its
    // end-of-file, so it returns (and runs poststart hooks) only once the
    // user's program replaced the init.
    // 10. startContainer hooks, then the late seccomp filter, then exec.
    if let Some(h) = b
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        crate::hooks::run_all("startContainer", h, &state)?;
    }
    Ok(exec_user(p, &exe, &env, a.seccomp.as_ref(), a.preserve_fds))
}

fn exec_steps(a: &ExecArgs) -> Result<ProcessError, InitError> {
    join_namespaces(&a.join)?;
    if a.join.iter().any(|(t, _)| *t == LinuxNamespaceType::User) {
        become_ns_root();
    }
    a.chan.expect("go")?;
    let (exe, env) = finish_process(&a.process, a.console.as_ref(), a.seccomp.as_ref(), false)?;
    Ok(exec_user(
        &a.process,
        &exe,
        &env,
        a.seccomp.as_ref(),
        a.preserve_fds,
    ))
}

/// Console, rlimits, cwd, early seccomp, credentials, executable lookup.
fn finish_process(
    p: &Process,
    console: Option<&OwnedFd>,
    seccomp: Option<&CompiledFilter>,
    dev_console: bool,
) -> Result<(CString, Vec<String>), InitError> {
    if let Some(sock) = console {
        let size = p.console_size().map(|s| {
            (
                u16::try_from(s.height()).unwrap_or(u16::MAX),
                u16::try_from(s.width()).unwrap_or(u16::MAX),
            )
        });
        crate::console::setup(sock, size, dev_console)?;
    }
    process::apply_rlimits(p)?;
    process::apply_io_priority(p)?;
    process::enter_cwd(p.cwd())?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if let (Some(f), false) = (seccomp, nnp) {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
        // while we still have it.
        f.load()?;
    }
    process::apply_credentials(p)?;
    let env = process::final_env(p);
    let args = p.args().as_deref().unwrap_or_default();
    let exe = process::find_executable(&args[0], &env)?;
    Ok((exe, env))
}

/// The last syscalls: late seccomp, descriptor hygiene, execve.
fn exec_user(
    p: &Process,
    exe: &CString,
    env: &[String],
    seccomp: Option<&CompiledFilter>,
    preserve_fds: i32,
) -> ProcessError {
    let mut env = env.to_vec();
    if let (true, Some(f)) = (p.no_new_privileges().unwrap_or(false), seccomp)
        && let Err(e) = f.load()
    {
        return ProcessError::Invalid(chain(&e));
    }
    if preserve_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        if std::env::var("LISTEN_FDS").is_ok() {
            env.push(format!("LISTEN_FDS={preserve_fds}"));
            env.push("LISTEN_PID=1".to_string());
        }
        for fd in 3..3 + preserve_fds {
            let _ = wharf_sys::process::clear_cloexec(fd);
        }
    }
    // Signals as a fresh process has them (no inherited SIG_IGN or mask).
    if let Err(e) = wharf_sys::process::reset_signals_for_exec() {
        return ProcessError::Sys {
            op: "reset signal dispositions".into(),
            source: e,
        };
    }
    // No descriptor of the runtime survives into the container.
    if let Err(e) = wharf_sys::process::cloexec_from(3 + preserve_fds) {
        return ProcessError::Sys {
            op: "close_range".into(),
            source: e,
        };
    }
    let args = p.args().clone().unwrap_or_default();
    let err = wharf_sys::process::execve(exe, &args, &env);
    let name = args.first().cloned().unwrap_or_default();
    match err.raw_os_error() {
        Some(libc::EACCES) => ProcessError::NotExecutable(name),
        Some(libc::ENOENT) => ProcessError::NotFound(name),
        _ => ProcessError::Sys {
            op: format!("exec {name}"),
            source: err,
        },
    }
}

/// Opens `/proc/<pid>/ns/<name>` for each namespace type, user first.
pub fn open_ns_fds(
    pid: i32,
    types: &[LinuxNamespaceType],
) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>, InitError> {
    let mut v = Vec::new();
    let mut ordered: Vec<LinuxNamespaceType> = types.to_vec();
    ordered.sort_by_key(|t| {
        if *t == LinuxNamespaceType::User {
            0
        } else if *t == LinuxNamespaceType::Mount {
            2
        } else {
            1
        }
    });
    for t in ordered {
        let path = PathBuf::from(format!("/proc/{pid}/ns/{}", crate::config::proc_ns_name(t)));
        let fd = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(sys(format!("open {}", path.display())))?;
        v.push((t, fd));
    }
    Ok(v)
}
