//! The container operations of the runtime spec, as a library: create,
//! start, state, kill, delete, plus run, exec, pause, resume, ps and list.
//!
//! One [`Runtime`] value per runtime root (`--root`). Each operation is a
//! short synchronous call made from a single-threaded process (the
//! `wharf-runtime` binary, or a shim); `create` and `exec` fork children
//! that run [`crate::init`] and therefore must be called before the process
//! starts any thread.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType, LinuxResources, Process, Spec,
};
use rustix::event::{PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, Signal};
use wharf_cgroups::{CgroupManager, CgroupSetup, CgroupVersion, FreezerState};
use wharf_sys::process::{CloneResult, clone_process};

use crate::config::{self, Bundle, ConfigError, clone_flag};
use crate::init::{self, ExecArgs, InitArgs, InitError};
use crate::seccomp::CompiledFilter;
use crate::state::{self, ContainerRecord, OciState, StateError, StateStore, Status};
use crate::sync::{self, Msg};

/// Errors of the container operations.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] wharf_cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error("container init failed: {0}")]
    Child(String),
    #[error("{op} failed")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    WrongState(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
}

fn sys(op: impl Into<String>) -> impl FnOnce(rustix::io::Errno) -> RuntimeError {
    let op = op.into();
    move |e| RuntimeError::Sys {
        op,
        source: e.into(),
    }
}

fn ioerr(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let op = op.into();
    move |source| RuntimeError::Sys { op, source }
}

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
}

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// A child the runtime started and may wait for.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// One line of `list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListEntry {
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub annotations: HashMap<String, String>,
}

/// The runtime bound to one state root.
#[derive(Debug)]
pub struct Runtime {
    store: StateStore,
    seccomp_cache: PathBuf,
    /// The host's cgroup layout, detected once per process.
    cgroups: std::sync::OnceLock<CgroupSetup>,
}

impl Runtime {
    /// Opens the runtime root (created if missing).
    pub fn open(root: &Path) -> Result<Self, RuntimeError> {
        let store = StateStore::open(root)?;
        let seccomp_cache = root.join(".seccomp-cache");
        Ok(Runtime {
            store,
            seccomp_cache,
            cgroups: std::sync::OnceLock::new(),
        })
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    fn cgroup_setup(&self) -> Result<&CgroupSetup, RuntimeError> {
        Ok(match self.cgroups.get() {
            Some(s) => s,
            None => {
                let s = CgroupSetup::detect()?;
                self.cgroups.get_or_init(|| s)
            }
        })
    }

    fn cgroup(&self, path: &str) -> Result<Box<dyn CgroupManager>, RuntimeError> {
        Ok(wharf_cgroups::manager(self.cgroup_setup()?, path)?)
    }

    fn compile_seccomp(&self, spec: &Spec) -> Result<Option<CompiledFilter>, RuntimeError> {
        match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Ok(Some(CompiledFilter::load_or_compile(
                s,
                Some(&self.seccomp_cache),
            )?)),
            None => Ok(None),
        }
    }

    /// `create`: sets the container up and leaves its init blocked before
    /// the user's program until [`Runtime::start`].
    pub fn create(&self, o: &CreateOptions) -> Result<Started, RuntimeError> {
        config::validate_id(&o.id)?;
        let bundle = Bundle::load(&o.bundle)?;
        self.create_bundle(o, bundle)
    }

    /// [`Runtime::create`] for a bundle the caller already loaded (so a
    /// caller that needs the config too parses it once).
    pub fn create_bundle(
        &self,
        o: &CreateOptions,
        bundle: Bundle,
    ) -> Result<Started, RuntimeError> {
        config::validate_id(&o.id)?;
        self.store.reserve(&o.id)?;
        let mut undo = Undo {
            store: &self.store,
            id: o.id.clone(),
            cgroup: None,
            child: None,
            armed: true,
        };
        let started = self.create_inner(o, bundle, &mut undo)?;
        undo.armed = false;
        Ok(started)
    }

    fn create_inner(
        &self,
        o: &CreateOptions,
        bundle: Bundle,
        undo: &mut Undo<'_>,
    ) -> Result<Started, RuntimeError> {
        let process = bundle.process().clone();
        let terminal = process.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() {
            return Err(RuntimeError::Invalid(
                "cannot allocate tty if runc will detach without setting console socket".into(),
            ));
        }
        if !terminal && o.console_socket.is_some() {
            return Err(RuntimeError::Invalid(
                "cannot use console socket if runc will not detach or allocate tty".into(),
            ));
        }
        if !bundle.has_namespace(LinuxNamespaceType::Mount) {
            return Err(RuntimeError::Invalid(
                "a mount namespace is required".into(),
            ));
        }
        warn_lsm_labels(&bundle.spec);
        let mut timing = Timing::new();
        // 1. Seccomp: compiled once per profile, cached under the root.
        let seccomp = self.compile_seccomp(&bundle.spec)?;
        timing.mark("seccomp");
        // 2. The cgroup. Without a user namespace the init places itself
        //    (see 6.), so only the v2 directory clone3 needs is created now;
        //    the rest, and the limits, while the init prepares its mounts.
        let cgroups_path = bundle.cgroups_path(&o.id);
        let cg = self.cgroup(&cgroups_path)?;
        undo.cgroup = Some(self.cgroup(&cgroups_path)?);
        let resources = bundle
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .map(|r| with_default_devices(r, &bundle));
        let nss = bundle.namespaces();
        let user_joined = nss
            .iter()
            .any(|n| n.typ == LinuxNamespaceType::User && n.path.is_some());
        let new_userns = nss
            .iter()
            .any(|n| n.typ == LinuxNamespaceType::User && n.path.is_none());
        let self_place = !new_userns && !user_joined;
        if self_place {
            cg.create_version(CgroupVersion::V2)?;
        } else {
            cg.create()?;
            if let Some(r) = &resources {
                cg.set(r)?;
            }
        }
        timing.mark("cgroup");
        // 3. The exec fifo the init blocks on until `start`.
        let fifo_path = self.store.fifo(&o.id);
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo_path, Mode::from_raw_mode(0o622))
            .map_err(sys("mkfifo exec.fifo"))?;
        // mkfifo applies the umask: set 0622 exactly, and give it to the
        // container's root (mapped id with a user namespace), so an init that
        // already dropped to its user can still open it for writing.
        rustix::fs::chmod(&fifo_path, Mode::from_raw_mode(0o622))
            .map_err(sys("chmod exec.fifo"))?;
        let (root_uid, root_gid) = host_root_ids(&bundle);
        rustix::fs::chown(
            &fifo_path,
            Some(rustix::fs::Uid::from_raw(root_uid)),
            Some(rustix::fs::Gid::from_raw(root_gid)),
        )
        .map_err(sys("chown exec.fifo"))?;
        let fifo = rustix::fs::open(&fifo_path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(sys("open exec.fifo"))?;
        // 4. The console socket, connected while we still see the host.
        let console = match &o.console_socket {
            Some(p) if terminal => Some(crate::console::connect(p)?),
            _ => None,
        };
        // 5. Namespaces: pid/time joins and the time offsets affect only our
        //    children, so they are done here; others go to clone3 or the child.
        let mut clone_flags = 0u64;
        let mut unshare_after = 0u64;
        let mut join = Vec::new();
        let mut new_cgroupns = false;
        for n in &nss {
            match (n.typ, &n.path) {
                (LinuxNamespaceType::Pid | LinuxNamespaceType::Time, Some(p)) => {
                    let fd = rustix::fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                        .map_err(sys(format!("open namespace {}", p.display())))?;
                    init::join_namespaces(&[(n.typ, fd)])?;
                }
                (LinuxNamespaceType::Time, None) => {
                    wharf_sys::process::unshare_namespaces(libc::CLONE_NEWTIME as u64)
                        .map_err(ioerr("unshare time namespace"))?;
                    write_time_offsets(&bundle)?;
                }
                (LinuxNamespaceType::Cgroup, None) => new_cgroupns = true,
                (t, Some(p)) => {
                    let fd = rustix::fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                        .map_err(sys(format!("open namespace {}", p.display())))?;
                    join.push((t, fd));
                }
                (t, None) if user_joined && t != LinuxNamespaceType::Pid => {
                    unshare_after |= clone_flag(t)
                }
                (t, None) => clone_flags |= clone_flag(t),
            }
        }
        join.sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        debug_assert_eq!(
            new_userns,
            clone_flags & clone_flag(LinuxNamespaceType::User) != 0
        );
        timing.mark("fifo+console+namespaces");
        // 6. The init child.
        let (parent_chan, child_chan) = sync::pair()?;
        // Cgroup placement without the global threadgroup write lock (its RCU
        // grace period cost 6-27 ms per container here): clone3 places the
        // child in the v2 cgroup (pure v2, or the v2 part of a hybrid host),
        // and the single-threaded init moves itself into each v1 hierarchy by
        // writing "0" to its `tasks` file, the one migration the kernel does
        // without that lock. In a new or joined user namespace the init lacks
        // the rights, so the runtime writes the pid as before.
        let dirs = cg.versioned_paths();
        let v2_dir = if self_place {
            dirs.iter()
                .find(|(v, _)| *v == CgroupVersion::V2)
                .map(|(_, d)| d.clone())
        } else {
            cg.v2_dir()
        };
        let self_tasks: Vec<PathBuf> = if self_place {
            dirs.iter()
                .filter(|(v, _)| *v == CgroupVersion::V1)
                .map(|(_, d)| d.join("tasks"))
                .collect()
        } else {
            Vec::new()
        };
        let cgroup_mounts = crate::rootfs::CgroupMounts::new(self.cgroup_setup()?, &dirs);
        let v2 = v2_dir.and_then(|d| {
            rustix::fs::open(
                &d,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        });
        let (pid, pidfd) = match clone_process(clone_flags, v2.as_ref().map(|f| f.as_fd()))
            .map_err(ioerr("clone3"))?
        {
            CloneResult::Child => {
                drop(parent_chan);
                init::run_init(InitArgs {
                    bundle,
                    chan: child_chan,
                    fifo,
                    console,
                    seccomp,
                    no_pivot: o.no_pivot,
                    preserve_fds: o.preserve_fds,
                    join,
                    unshare_after_join: unshare_after,
                    new_userns,
                    new_cgroupns,
                    self_cgroup_tasks: self_tasks,
                    cgroups: cgroup_mounts,
                })
            }
            CloneResult::Parent { pid, pidfd } => (pid, pidfd),
        };
        drop(child_chan);
        drop(console);
        let pidfd_for_undo = rustix::io::dup(&pidfd).map_err(sys("dup pidfd"))?;
        undo.child = Some(pidfd_for_undo);
        timing.mark("clone3");
        // 7. Cgroup placement (unless clone3 did it) and id mappings.
        if !self_place {
            cg.add_process(pid)?;
        }
        if new_userns {
            write_id_maps(pid, &bundle)?;
        }
        timing.mark("cgroup placement+id maps");
        let idmapped = idmapped_mounts(pid, &bundle)?;
        parent_chan.send(&Msg::Go)?;
        let fds: Vec<_> = idmapped.iter().map(|f| f.as_fd()).collect();
        parent_chan.send_fds(&fds)?;
        drop(idmapped);
        // The v1 cgroups and the limits, while the init mounts; it joins
        // them when told they are ready (limits are set before any program
        // of the container runs, as runc does after placing its init).
        if self_place {
            cg.create_version(CgroupVersion::V1)?;
            if let Some(r) = &resources {
                cg.set(r)?;
            }
        }
        if let Err(e) = parent_chan.send(&Msg::CgroupsReady) {
            // The init may have failed already: its message is the reason.
            return Err(match parent_chan.expect("ready for hooks") {
                Ok(_) => e.into(),
                Err(c) => child_err(c),
            });
        }
        timing.mark("cgroups (parallel)");
        // 8. prestart and createRuntime hooks, in the runtime's namespaces.
        parent_chan.expect("ready for hooks").map_err(child_err)?;
        timing.mark("init rootfs ready");
        let oci = OciState {
            oci_version: bundle.spec.version().clone(),
            id: o.id.clone(),
            status: Status::Creating,
            pid: Some(pid),
            bundle: bundle.dir.clone(),
            annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        };
        let state_json = serde_json::to_string(&oci).unwrap_or_default();
        if let Some(h) = bundle.spec.hooks() {
            crate::hooks::run_all(
                "prestart",
                h.prestart().as_deref().unwrap_or_default(),
                &state_json,
            )?;
            crate::hooks::run_all(
                "createRuntime",
                h.create_runtime().as_deref().unwrap_or_default(),
                &state_json,
            )?;
        }
        parent_chan.send(&Msg::HooksDone { state: state_json })?;
        timing.mark("hooks");
        // 9. Write the record while the init finishes (pivot_root, masks,
        //    credentials); it becomes the container's state (rename) once
        //    the init reports "created".
        let (pid_start, _) =
            state::proc_start_time(pid).ok_or_else(|| RuntimeError::Child("init exited".into()))?;
        let rec = ContainerRecord {
            version: state::STATE_VERSION,
            id: o.id.clone(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            pid,
            pid_start,
            created: state::now_rfc3339(),
            owner: owner_name(),
            cgroups_path,
            annotations: oci.annotations.clone(),
            spec: bundle.spec.clone(),
        };
        let staged = self.store.stage(&rec)?;
        timing.mark("state staged");
        match parent_chan.expect("created").map_err(child_err)? {
            Msg::Created => {}
            other => return Err(RuntimeError::Child(format!("unexpected message {other:?}"))),
        }
        timing.mark("init created");
        staged.commit()?;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, pid)?;
        }
        timing.mark("state written");
        timing.report(&o.id);
        Ok(Started { pid, pidfd })
    }

    /// Loads a record, failing for containers whose `create` never finished.
    pub fn load(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        self.store
            .load(id)?
            .ok_or_else(|| StateError::NotFound(id.to_string()).into())
    }

    /// The live status of a recorded container.
    pub fn status(&self, rec: &ContainerRecord) -> Status {
        if !state::init_alive(rec) {
            return Status::Stopped;
        }
        if self.store.fifo(&rec.id).exists() {
            return Status::Created;
        }
        match self
            .cgroup(&rec.cgroups_path)
            .and_then(|c| Ok(c.freezer_state()?))
        {
            Ok(FreezerState::Frozen) => Status::Paused,
            _ => Status::Running,
        }
    }

    /// `state`: the spec's state JSON.
    pub fn state(&self, id: &str) -> Result<OciState, RuntimeError> {
        let rec = self.load(id)?;
        let status = self.status(&rec);
        Ok(OciState {
            oci_version: rec.spec.version().clone(),
            id: rec.id.clone(),
            status,
            pid: if status == Status::Stopped {
                Some(0)
            } else {
                Some(rec.pid)
            },
            bundle: rec.bundle.clone(),
            annotations: rec.annotations.clone(),
        })
    }

    /// `start`: lets a created container's init exec the user's program.
    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let rec = self.load(id)?;
        match self.status(&rec) {
            Status::Created => {}
            Status::Stopped => {
                return Err(RuntimeError::WrongState(
                    "cannot start a container that has stopped".into(),
                ));
            }
            s => {
                return Err(RuntimeError::WrongState(format!(
                    "cannot start an already {s} container"
                )));
            }
        }
        // The pidfd first, while the init is still blocked on the fifo: once
        // the fifo opens, the init may exec, exit and be reaped at once.
        let pidfd = pidfd(rec.pid).map_err(|_| {
            RuntimeError::WrongState("cannot start a container that has stopped".into())
        })?;
        if !state::init_alive(&rec) {
            // The pid was reused between the status check and pidfd_open.
            return Err(RuntimeError::WrongState(
                "cannot start a container that has stopped".into(),
            ));
        }
        let fifo_path = self.store.fifo(id);
        let fifo = rustix::fs::open(
            &fifo_path,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open exec.fifo"))?;
        let mut fds = [
            PollFd::new(&fifo, PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        poll(&mut fds, None)?;
        let mut b = [0u8; 1];
        let n = rustix::io::read(&fifo, &mut b).unwrap_or(0);
        if n != 1 {
            return Err(RuntimeError::Child(
                "container init exited before start".into(),
            ));
        }
        // The init holds the write end until its execve (close-on-exec): its
        // end-of-file means the user's program runs (or the init died), so
        // startContainer hooks are done before poststart hooks run.
        loop {
            let mut fds = [PollFd::new(&fifo, PollFlags::IN)];
            poll(&mut fds, None)?;
            match rustix::io::read(&fifo, &mut b) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        let _ = std::fs::remove_file(&fifo_path);
        if let Some(h) = rec
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref())
        {
            let st = self
                .state(id)
                .map(|s| serde_json::to_string(&s).unwrap_or_default())
                .unwrap_or_default();
            if let Err(e) = crate::hooks::run_all("poststart", h, &st) {
                tracing::warn!(error = %init::chain(&e), "poststart hook failed");
            }
        }
        Ok(())
    }

    /// `kill`: sends `signal` to the init, or with `all` to every process of
    /// the container's cgroup.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let rec = self.load(id)?;
        if self.status(&rec) == Status::Stopped {
            return Err(RuntimeError::WrongState("container not running".into()));
        }
        let sig = Signal::from_named_raw(signal)
            .ok_or_else(|| RuntimeError::Invalid(format!("invalid signal {signal}")))?;
        if all {
            for p in self.cgroup(&rec.cgroups_path)?.pids()? {
                if let Some(pid) = Pid::from_raw(p) {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
            return Ok(());
        }
        let fd =
            pidfd(rec.pid).map_err(|_| RuntimeError::WrongState("container not running".into()))?;
        rustix::process::pidfd_send_signal(&fd, sig)
            .map_err(sys(format!("signal {signal} to pid {}", rec.pid)))?;
        Ok(())
    }

    /// `delete`: removes a stopped (or, with `force`, any) container: its
    /// processes, cgroup and state; runs the poststop hooks.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let rec = match self.store.load(id)? {
            Some(r) => r,
            None => {
                // create crashed before recording: nothing but the directory.
                self.store.remove(id)?;
                return Ok(());
            }
        };
        let status = self.status(&rec);
        let cg = self.cgroup(&rec.cgroups_path)?;
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait(&rec, cg.as_ref())?,
            _ if force => self.kill_and_wait(&rec, cg.as_ref())?,
            s => {
                return Err(RuntimeError::WrongState(format!(
                    "cannot delete container {id} that is not stopped: {s}"
                )));
            }
        }
        // Leftover processes (a stopped init whose children linger).
        for p in cg.pids().unwrap_or_default() {
            if let Some(pid) = Pid::from_raw(p) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        let mut errors = Vec::new();
        if let Err(e) = destroy_cgroup(cg.as_ref()) {
            errors.push(e);
        }
        if let Some(h) = rec
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref())
        {
            let st = OciState {
                oci_version: rec.spec.version().clone(),
                id: rec.id.clone(),
                status: Status::Stopped,
                pid: None,
                bundle: rec.bundle.clone(),
                annotations: rec.annotations.clone(),
            };
            if let Err(e) = crate::hooks::run_all(
                "poststop",
                h,
                &serde_json::to_string(&st).unwrap_or_default(),
            ) {
                tracing::warn!(error = %init::chain(&e), "poststop hook failed");
            }
        }
        if let Err(e) = self.store.remove(id) {
            errors.push(e.into());
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn kill_and_wait(
        &self,
        rec: &ContainerRecord,
        cg: &dyn CgroupManager,
    ) -> Result<(), RuntimeError> {
        if cg.freezer_state().ok() == Some(FreezerState::Frozen) {
            cg.thaw()?;
        }
        let fd = pidfd(rec.pid).ok();
        for p in cg.pids().unwrap_or_default() {
            if let Some(pid) = Pid::from_raw(p) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        if let Some(fd) = fd {
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            poll(&mut fds, Some(Duration::from_secs(10)))?;
        }
        Ok(())
    }

    /// `pause`: freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        let rec = self.load(id)?;
        match self.status(&rec) {
            Status::Running => Ok(self.cgroup(&rec.cgroups_path)?.freeze()?),
            s => Err(RuntimeError::WrongState(format!(
                "container not running: {s}"
            ))),
        }
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        let rec = self.load(id)?;
        match self.status(&rec) {
            Status::Paused => Ok(self.cgroup(&rec.cgroups_path)?.thaw()?),
            s => Err(RuntimeError::WrongState(format!(
                "container not paused: {s}"
            ))),
        }
    }

    /// `ps`: pids of the container's processes (runtime pid namespace).
    pub fn ps(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let rec = self.load(id)?;
        Ok(self.cgroup(&rec.cgroups_path)?.pids()?)
    }

    /// The cgroup statistics of a container.
    pub fn stats(&self, id: &str) -> Result<wharf_cgroups::Stats, RuntimeError> {
        let rec = self.load(id)?;
        Ok(self.cgroup(&rec.cgroups_path)?.stats()?)
    }

    /// How many processes of container `id` the OOM killer killed (see
    /// [`wharf_cgroups::CgroupManager::oom_kills`]).
    pub fn oom_kills(&self, id: &str) -> Result<u64, RuntimeError> {
        let rec = self.load(id)?;
        Ok(self.cgroup(&rec.cgroups_path)?.oom_kills()?)
    }

    /// `list`: every container of this root.
    pub fn list(&self) -> Result<Vec<ListEntry>, RuntimeError> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            let Ok(Some(rec)) = self.store.load(&id) else {
                continue;
            };
            let status = self.status(&rec);
            out.push(ListEntry {
                id: rec.id.clone(),
                pid: if status == Status::Stopped {
                    0
                } else {
                    rec.pid
                },
                status,
                bundle: rec.bundle.clone(),
                rootfs: rec.rootfs.clone(),
                created: rec.created.clone(),
                owner: rec.owner.clone(),
                annotations: rec.annotations.clone(),
            });
        }
        Ok(out)
    }

    /// `exec`: starts `o.process` inside a running container; returns once
    /// the program was exec'd (or failed to be).
    pub fn exec(&self, id: &str, o: &ExecOptions) -> Result<Started, RuntimeError> {
        let rec = self.load(id)?;
        match self.status(&rec) {
            Status::Running | Status::Created => {}
            Status::Paused => {
                return Err(RuntimeError::WrongState(
                    "cannot exec in a paused container".into(),
                ));
            }
            _ => {
                return Err(RuntimeError::WrongState(
                    "cannot exec in a stopped container".into(),
                ));
            }
        }
        let terminal = o.process.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() {
            return Err(RuntimeError::Invalid(
                "cannot allocate tty if runc will detach without setting console socket".into(),
            ));
        }
        let seccomp = self.compile_seccomp(&rec.spec)?;
        let cg = self.cgroup(&rec.cgroups_path)?;
        let types: Vec<LinuxNamespaceType> = rec
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|v| v.iter().map(|n| n.typ()).collect())
            .unwrap_or_default();
        let all = init::open_ns_fds(rec.pid, &types)?;
        let (pre, join): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(t, _)| matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time));
        init::join_namespaces(&pre)?;
        let console = match &o.console_socket {
            Some(p) if terminal => Some(crate::console::connect(p)?),
            _ => None,
        };
        let (parent_chan, child_chan) = sync::pair()?;
        let (pid, pidfd) = match clone_process(0, None).map_err(ioerr("clone3"))? {
            CloneResult::Child => {
                drop(parent_chan);
                init::run_exec(ExecArgs {
                    process: o.process.clone(),
                    chan: child_chan,
                    console,
                    seccomp,
                    preserve_fds: o.preserve_fds,
                    join,
                })
            }
            CloneResult::Parent { pid, pidfd } => (pid, pidfd),
        };
        drop(child_chan);
        drop(console);
        let result = (|| {
            cg.add_process(pid)?;
            parent_chan.send(&Msg::Go)?;
            match parent_chan.recv()? {
                None => Ok(()),
                Some(Msg::Error { message }) => Err(RuntimeError::Child(message)),
                Some(other) => Err(RuntimeError::Child(format!("unexpected message {other:?}"))),
            }
        })();
        if let Err(e) = result {
            let _ = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL);
            let _ =
                rustix::process::waitpid(Pid::from_raw(pid), rustix::process::WaitOptions::empty());
            return Err(e);
        }
        if let Some(p) = &o.pid_file {
            write_pid_file(p, pid)?;
        }
        Ok(Started { pid, pidfd })
    }
}

/// AppArmor and SELinux labels are accepted; on a host without that LSM
/// they are ignored with a warning (as runc does when the LSM is disabled).
fn warn_lsm_labels(spec: &Spec) {
    let p = spec.process().as_ref();
    let apparmor = p
        .and_then(|p| p.apparmor_profile().as_deref())
        .filter(|s| !s.is_empty());
    let selinux = p
        .and_then(|p| p.selinux_label().as_deref())
        .or_else(|| {
            spec.linux()
                .as_ref()
                .and_then(|l| l.mount_label().as_deref())
        })
        .filter(|s| !s.is_empty());
    if apparmor.is_some() && !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        tracing::warn!(
            profile = apparmor,
            "apparmor is not enabled on this host: ignoring the profile"
        );
    }
    if selinux.is_some() && !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        tracing::warn!(
            label = selinux,
            "selinux is not enabled on this host: ignoring the label"
        );
    }
}

fn child_err(e: sync::SyncError) -> RuntimeError {
    match e {
        sync::SyncError::Unexpected { got, .. } => RuntimeError::Child(got),
        sync::SyncError::Closed => RuntimeError::Child("container init exited during setup".into()),
        other => other.into(),
    }
}

impl From<sync::SyncError> for RuntimeError {
    fn from(e: sync::SyncError) -> Self {
        RuntimeError::Init(InitError::Sync(e))
    }
}

/// Rolls back a failed `create`: kills the child, removes the cgroup and the
/// state directory. Keeps going past failures.
struct Undo<'a> {
    store: &'a StateStore,
    id: String,
    cgroup: Option<Box<dyn CgroupManager>>,
    child: Option<OwnedFd>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(fd) = self.child.take() {
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            let _ = poll(&mut fds, Some(Duration::from_secs(5)));
            let _ = rustix::process::waitid(
                rustix::process::WaitId::PidFd(fd.as_fd()),
                rustix::process::WaitIdOptions::EXITED,
            );
        }
        if let Some(Err(e)) = self.cgroup.take().map(|cg| destroy_cgroup(cg.as_ref())) {
            tracing::warn!(error = %init::chain(&e), "removing cgroup after failed create");
        }
        let _ = self.store.remove(&self.id);
    }
}

/// The resources with the device rules every container needs appended
/// (the default devices, ptys, and the spec's `linux.devices`), as runc does:
/// the device list of a spec usually starts with a deny-all.
fn with_default_devices(r: &LinuxResources, b: &Bundle) -> LinuxResources {
    let mut r = r.clone();
    let Some(mut rules) = r.devices().clone() else {
        return r;
    };
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some("rwm".to_string()));
        d
    };
    for (ma, mi) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule(LinuxDeviceType::C, Some(ma), Some(mi)));
    }
    rules.push(rule(LinuxDeviceType::C, Some(136), None));
    for d in b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        rules.push(rule(d.typ(), Some(d.major()), Some(d.minor())));
    }
    r.set_devices(Some(rules));
    r
}

fn destroy_cgroup(cg: &dyn CgroupManager) -> Result<(), RuntimeError> {
    Ok(cg.destroy()?)
}

/// Step timings of `create`, logged at debug level (`wharf-runtime --debug`).
struct Timing {
    start: std::time::Instant,
    last: std::time::Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl Timing {
    fn new() -> Self {
        let now = std::time::Instant::now();
        Timing {
            start: now,
            last: now,
            steps: Vec::new(),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((step, now - self.last));
        self.last = now;
    }

    fn report(&self, id: &str) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let steps: Vec<String> = self
                .steps
                .iter()
                .map(|(s, d)| format!("{s}={:.2}ms", d.as_secs_f64() * 1e3))
                .collect();
            tracing::debug!(id, total_ms = self.start.elapsed().as_secs_f64() * 1e3, steps = %steps.join(" "), "create timing");
        }
    }
}

/// A pidfd for `pid`.
pub fn pidfd(pid: i32) -> Result<OwnedFd, RuntimeError> {
    let p =
        Pid::from_raw(pid).ok_or_else(|| RuntimeError::Invalid(format!("invalid pid {pid}")))?;
    rustix::process::pidfd_open(p, PidfdFlags::empty()).map_err(sys(format!("pidfd_open {pid}")))
}

/// poll(2) retrying on EINTR; returns the number of ready descriptors.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> Result<usize, RuntimeError> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    loop {
        match rustix::event::poll(fds, ts.as_ref()) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(sys("poll")(e)),
        }
    }
}

/// The bind mounts with `idmap`/`ridmap`, in spec order: detached clones of
/// their sources, idmapped through the init's user namespace. Built here,
/// outside that namespace, because idmapping needs CAP_SYS_ADMIN over the
/// filesystem; the init moves them into place.
fn idmapped_mounts(pid: i32, b: &Bundle) -> Result<Vec<OwnedFd>, RuntimeError> {
    let mut out = Vec::new();
    for m in b.spec.mounts().iter().flatten() {
        let opts = crate::mounts::parse(m.options().as_deref().unwrap_or(&[]));
        if !opts.idmap {
            continue;
        }
        let src = m.source().as_ref().map(|s| {
            if s.is_relative() {
                b.dir.join(s)
            } else {
                s.clone()
            }
        });
        let src = src.ok_or_else(|| {
            RuntimeError::Invalid(format!("idmap mount {:?} has no source", m.destination()))
        })?;
        let recursive = opts.recursive_bind || m.options().iter().flatten().any(|o| o == "ridmap");
        let mut flags = rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC;
        if recursive {
            flags |= rustix::mount::OpenTreeFlags::AT_RECURSIVE;
        }
        let mnt = rustix::mount::open_tree(rustix::fs::CWD, &src, flags)
            .map_err(sys(format!("open_tree {}", src.display())))?;
        let userns = rustix::fs::open(
            format!("/proc/{pid}/ns/user"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open the init's user namespace"))?;
        let recursive_idmap = m.options().iter().flatten().any(|o| o == "ridmap");
        wharf_sys::mount::idmap_detached_mount(mnt.as_fd(), userns.as_fd(), recursive_idmap)
            .map_err(ioerr(format!("idmap mount of {}", src.display())))?;
        out.push(mnt);
    }
    Ok(out)
}

/// The host uid and gid that container root maps to (0/0 without a user
/// namespace mapping).
fn host_root_ids(b: &Bundle) -> (u32, u32) {
    let linux = b.spec.linux().as_ref();
    let find = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0 && m.size() > 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    (
        find(linux.and_then(|l| l.uid_mappings().as_ref())),
        find(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

fn write_id_maps(pid: i32, b: &Bundle) -> Result<(), RuntimeError> {
    let linux = b.spec.linux().as_ref();
    let fmt = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = fmt(linux.and_then(|l| l.gid_mappings().as_ref()));
    // A runtime without CAP_SETGID in the parent namespace (rootless) must
    // deny setgroups before it may write a gid map.
    if !rustix::process::geteuid().is_root() {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .map_err(ioerr("write setgroups"))?;
    }
    if !uid.is_empty() {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid).map_err(ioerr("write uid_map"))?;
    }
    if !gid.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), gid).map_err(ioerr("write gid_map"))?;
    }
    Ok(())
}

fn write_time_offsets(b: &Bundle) -> Result<(), RuntimeError> {
    let Some(offs) = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut s = String::new();
    for (clock, o) in offs {
        s.push_str(&format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", s).map_err(ioerr("write timens_offsets"))
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let tmp = path.with_extension("wharf-tmp");
    let mut f =
        std::fs::File::create(&tmp).map_err(ioerr(format!("write pid file {}", path.display())))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(ioerr("write pid file"))?;
    std::fs::rename(&tmp, path).map_err(ioerr(format!("rename pid file {}", path.display())))
}

fn owner_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}
