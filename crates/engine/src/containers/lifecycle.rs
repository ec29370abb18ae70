//! Start, stop, kill, wait, pause, remove, the exit monitor, restart
//! policies and the re-adoption of shims at daemon start.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wharf_shim_api::{ExitStatus, ShimConfig, ShimHandle, spawn_shim};

use super::{Containers, Entry, Lifecycle, PendingAttach, on_blocking_thread, parse_size};
use crate::error::{EngineError, io_err};
use crate::model::{Container, Status};
use crate::shim::{AttachSession, ShimError, call};
use crate::{rootfs_files, spec, time};

/// `wait`'s `condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Return at once if not running, else at the exit.
    #[default]
    NotRunning,
    /// Return at the next exit, even if not running now.
    NextExit,
    /// Return once the container is removed.
    Removed,
}

/// The answer to a `wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    pub status_code: i64,
    pub error: Option<String>,
}

fn shim_err(id: &str) -> impl FnOnce(ShimError) -> EngineError + '_ {
    move |source| EngineError::Shim {
        id: id.to_owned(),
        source,
    }
}

/// Turns a signal name or number (`SIGTERM`, `TERM`, `15`) into its number.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            let rt = name.strip_prefix("RTMIN")?;
            let off: i32 = if rt.is_empty() {
                0
            } else {
                rt.strip_prefix('+')?.parse().ok()?
            };
            return (34 + off <= 64).then_some(34 + off);
        }
    })
}

impl Containers {
    fn shim_state_dir(&self, id: &str) -> std::path::PathBuf {
        self.cfg.layout.shim_dir(id)
    }

    pub(super) fn mount_rootfs(&self, c: &Container) -> Result<(), EngineError> {
        let target = self.cfg.layout.container_rootfs(&c.id);
        let _ = wharf_image::snapshot::unmount(&target);
        let mounts = self.rootfs_mounts(c)?;
        for m in &mounts {
            let at = match &m.target {
                Some(t) => target.join(t.strip_prefix("/").unwrap_or(t)),
                None => target.clone(),
            };
            if c.host_config.auto_remove && m.typ == "overlay" {
                // The writable layer of an auto-removed container is deleted
                // when it exits: `volatile` spares the sync of the upper
                // filesystem at unmount (podman does the same for --rm).
                let mut v = m.clone();
                if let Some(work) = v.options.iter().find_map(|o| o.strip_prefix("workdir=")) {
                    // A volatile mount leaves work/incompat/volatile behind,
                    // which refuses the next mount of the layer.
                    let _ = std::fs::remove_dir_all(Path::new(work).join("incompat"));
                }
                v.options.push("volatile".into());
                if v.mount_at(&at).is_ok() {
                    continue;
                }
                // Kernels before 5.10 do not know the option.
            }
            m.mount_at(&at)
                .map_err(io_err("mount root filesystem at", &at))?;
        }
        Ok(())
    }

    fn unmount_rootfs(&self, id: &str) {
        let target = self.cfg.layout.container_rootfs(id);
        if let Err(e) = wharf_image::snapshot::unmount(&target)
            && e.raw_os_error() != Some(libc::EINVAL)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(container_id = %id, error = %e, "cannot unmount root filesystem");
        }
    }

    /// Unmounts the container's root filesystem but keeps it alive for the
    /// [`super::reaper`] to tear down (for a container about to be removed:
    /// a restart would mount the same upper directory while the old mount
    /// still lives).
    fn detach_rootfs(&self, id: &str) -> Option<std::os::fd::OwnedFd> {
        let target = self.cfg.layout.container_rootfs(id);
        match wharf_image::snapshot::unmount_keeping(&target) {
            Ok(root) => root,
            Err(e) => {
                tracing::warn!(container_id = %id, error = %e, "cannot unmount root filesystem");
                None
            }
        }
    }

    /// Starts a created or stopped container.
    pub async fn start(self: &Arc<Self>, input: &str) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let result = {
            let _op = e.op.lock().await;
            self.start_locked(&e, false).await
        };
        // As with Docker, a container that was to be removed after it runs
        // is removed when it cannot start (`docker run --rm` waits for it).
        if let Err(err) = &result
            && !matches!(
                err,
                EngineError::AlreadyInState { .. } | EngineError::RemovalInProgress { .. }
            )
            && e.with(|c| {
                c.host_config.auto_remove
                    && matches!(c.state.status, Status::Created | Status::Exited)
            })
            && let Err(rm) = self.remove(&e.id, true).await
        {
            tracing::warn!(container_id = %e.id, error = %rm.full_message(), "auto-remove after a failed start");
        }
        result
    }

    /// Starts the container; `restarting` is the restart policy's start of
    /// a container that stays `restarting` until its process runs (so no
    /// client sees it exited between two runs).
    async fn start_locked(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        restarting: bool,
    ) -> Result<(), EngineError> {
        let rec = e.snapshot();
        match rec.state.status {
            Status::Restarting if restarting => {}
            Status::Running | Status::Restarting => {
                return Err(EngineError::AlreadyInState {
                    id: e.id.clone(),
                    state: "started",
                });
            }
            Status::Paused => {
                return Err(EngineError::InvalidConfig {
                    field: "state",
                    reason: "cannot start a paused container, try unpause instead".into(),
                });
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::RemovalInProgress { id: e.id.clone() });
            }
            Status::Created | Status::Exited => {}
        }
        let span = tracing::info_span!("container_start", container_id = %e.id);
        let _g = span.enter();
        drop(_g);
        let this = self.clone();
        let rec2 = rec.clone();
        let state_dir = self.shim_state_dir(&e.id);
        let state_dir2 = state_dir.clone();
        let prepared = on_blocking_thread("start", move || {
            this.prepare_start(&rec2)?;
            let _ = std::fs::remove_dir_all(&state_dir2);
            std::fs::create_dir_all(&state_dir2).map_err(io_err("create directory", &state_dir2))
        })
        .await;
        if let Err(err) = prepared {
            self.unmount_rootfs(&e.id);
            self.record_start_error(e, &err);
            return Err(err);
        }
        let log_opts = &rec.host_config.log_config.config;
        let scfg = ShimConfig {
            id: e.id.clone(),
            bundle: self.store.dir(&e.id),
            runtime_root: self.cfg.layout.runtime_root(),
            state_dir: state_dir.clone(),
            log_path: rec.log_path.clone().into(),
            log_max_size: log_opts
                .get("max-size")
                .and_then(|s| parse_size(s))
                .or(self.cfg.log_max_size),
            log_max_files: log_opts
                .get("max-file")
                .and_then(|s| s.parse().ok())
                .or(self.cfg.log_max_files),
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
        };
        let shim = match spawn_shim(&self.cfg.shim_binary, &scfg).await {
            Ok(s) => s,
            Err(source) => {
                self.unmount_rootfs(&e.id);
                let reason = match &source {
                    wharf_shim_api::SpawnError::Failed { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                let err = EngineError::StartFailed {
                    id: e.id.clone(),
                    reason,
                };
                self.record_start_error(e, &err);
                return Err(err);
            }
        };
        // Attach clients that arrived before the start get their streams now,
        // before the process can write anything.
        let pending: Vec<PendingAttach> =
            std::mem::take(&mut *e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        for p in pending {
            let r = attach_shim(&shim, &rec, p.stdin, p.stdout, p.stderr).await;
            let _ = p.reply.send(r);
        }
        let st = match shim.client().start().await {
            Ok(Some(st)) => st,
            Ok(None) => shim
                .client()
                .state()
                .await
                .map_err(call("state"))
                .map_err(shim_err(&e.id))?,
            Err(source) => {
                let _ = shim.client().delete(true).await;
                self.unmount_rootfs(&e.id);
                let err = EngineError::StartFailed {
                    id: e.id.clone(),
                    reason: source.to_string(),
                };
                self.record_start_error(e, &err);
                return Err(err);
            }
        };
        e.set_shim(Some(shim.clone()));
        e.with(|c| {
            c.state.set_status(Status::Running);
            c.state.pid = st.pid;
            c.state.exit_code = 0;
            c.state.error.clear();
            c.state.oom_killed = false;
            c.state.started_at = st
                .started_at
                .clone()
                .unwrap_or_else(|| time::rfc3339_nano(std::time::SystemTime::now()));
            c.state.finished_at = time::ZERO_TIME.into();
            c.manually_stopped = false;
        });
        // A --rm container's start is not written: whatever ends it, a
        // crash included, removes it (`restore` adopts a running one from
        // its shim, as after a crash before any start record).
        let rec = if rec.host_config.auto_remove {
            e.snapshot()
        } else {
            // The fsync'd record waits on the disk: off the async workers.
            let (this, entry) = (self.clone(), e.clone());
            on_blocking_thread("start", move || this.save(&entry)).await?
        };
        tracing::info!(container_id = %e.id, pid = st.pid, "container started");
        self.event("start", &rec, &[]);
        self.spawn_monitor(e.clone(), shim);
        self.start_health(e);
        Ok(())
    }

    fn record_start_error(&self, e: &Entry, err: &EngineError) {
        // Attach clients waiting for this start get the error: their
        // streams end instead of waiting for a start that may never come.
        let pending: Vec<PendingAttach> =
            std::mem::take(&mut *e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        for p in pending {
            let _ = p.reply.send(Err(EngineError::StartFailed {
                id: e.id.clone(),
                reason: err.to_string(),
            }));
        }
        e.with(|c| {
            c.state.error = err.full_message();
            if c.state.status == Status::Created {
                c.state.exit_code = 128;
            }
        });
        let _ = self.save(e);
    }

    /// Mounts the root, resolves the user, creates the working dir, writes config.json.
    fn prepare_start(&self, rec: &Container) -> Result<(), EngineError> {
        self.mount_rootfs(rec)?;
        let rootfs = self.cfg.layout.container_rootfs(&rec.id);
        let file_err = |source: rootfs_files::RootfsFileError| EngineError::StartFailed {
            id: rec.id.clone(),
            reason: source.to_string(),
        };
        let user = rootfs_files::resolve_user(
            &rootfs,
            &rec.config.user,
            rec.host_config.group_add.as_deref().unwrap_or(&[]),
        )
        .map_err(file_err)?;
        if !rec.config.working_dir.is_empty() {
            rootfs_files::mkdir_all_in_root(&rootfs, Path::new(&rec.config.working_dir))
                .map_err(file_err)?;
        }
        let mut spec = spec::build(&spec::SpecInputs {
            container: rec,
            rootfs: &rootfs,
            user: &user,
            default_ulimits: &self.cfg.default_ulimits,
            cgroups_path: crate::hostconfig::cgroups_path(
                &self.cfg.cgroup_parent,
                &rec.host_config,
                &rec.id,
            ),
        })?;
        if rec.host_config.init == Some(true)
            && let Some(init) = &self.cfg.init_binary
        {
            super::init::apply(&mut spec, init);
        }
        let dir = self.store.dir(&rec.id);
        let path = dir.join("config.json");
        let tmp = dir.join(".config.json.tmp");
        let bytes = serde_json::to_vec(&spec).map_err(|source| EngineError::Json {
            what: "runtime spec (config.json)",
            id: rec.id.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        Ok(())
    }

    fn spawn_monitor(self: &Arc<Self>, e: Arc<Entry>, shim: ShimHandle) {
        let this = self.clone();
        tokio::spawn(async move {
            let status = loop {
                match shim.client().wait().await {
                    Ok(s) => break s,
                    Err(err) => {
                        // The shim is gone: its exit file says how the process ended.
                        let from_file = wharf_shim_api::layout::read_exit(shim.state_dir())
                            .ok()
                            .flatten();
                        if let Some(s) = from_file {
                            break s;
                        }
                        if err.is_unreachable() {
                            tracing::error!(container_id = %e.id, error = %err, "shim vanished without an exit status");
                            break ExitStatus {
                                exit_code: 255,
                                exited_at: time::rfc3339_nano(std::time::SystemTime::now()),
                                oom_killed: false,
                            };
                        }
                        tracing::warn!(container_id = %e.id, error = %err, "waiting on shim failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            this.on_exit(&e, &shim, status).await;
        });
    }

    async fn on_exit(self: &Arc<Self>, e: &Arc<Entry>, shim: &ShimHandle, status: ExitStatus) {
        tracing::info!(container_id = %e.id, exit_code = status.exit_code, "container exited");
        if let Err(err) = shim.client().delete(true).await {
            tracing::debug!(container_id = %e.id, error = %err, "shim delete after exit");
        }
        e.set_shim(None);
        // The unmount (an RCU grace period in the kernel), the directory
        // removal and the fsync'd record wait on the kernel: off the async
        // workers, so that many exits (`rm -f` of many) overlap.
        let (this, entry, state_dir) = (self.clone(), e.clone(), shim.state_dir().to_owned());
        let exited_at = status.exited_at.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            // A forced removal waiting for this exit records it itself (its
            // "removing" record) and deletes the shim's state; until then
            // the shim's exit file keeps the exit for a restart.
            let removing = entry.removing.load(std::sync::atomic::Ordering::Acquire);
            let removed_next = removing || entry.with(|c| c.host_config.auto_remove);
            if removed_next {
                // The mount's teardown is left to the reaper.
                let root = this.detach_rootfs(&entry.id);
                *entry
                    .detached_root
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = root;
            } else {
                this.unmount_rootfs(&entry.id);
            }
            if !removing {
                let _ = std::fs::remove_dir_all(&state_dir);
            }
            entry.with(|c| {
                c.state.set_status(Status::Exited);
                c.state.exit_code = status.exit_code;
                c.state.oom_killed = status.oom_killed;
                c.state.pid = 0;
                c.state.finished_at = exited_at;
            });
            // A --rm container is removed next: its exit is not written to
            // disk first (a crash before the removal finishes is completed
            // by `restore`, which removes stopped --rm containers).
            if removed_next {
                return entry.snapshot();
            }
            this.save(&entry).unwrap_or_else(|err| {
                tracing::error!(container_id = %entry.id, error = %err.full_message(), "cannot record exit");
                entry.snapshot()
            })
        })
        .await;
        let rec = match recorded {
            Ok(rec) => rec,
            Err(err) => {
                tracing::error!(container_id = %e.id, error = %err, "recording the exit failed");
                e.snapshot()
            }
        };
        if status.oom_killed {
            self.event("oom", &rec, &[]);
        }
        self.event("die", &rec, &[("exitCode", status.exit_code.to_string())]);
        e.lifecycle.send_modify(|l| {
            l.exits += 1;
            l.exit_code = status.exit_code;
            l.error.clear();
        });
        if rec.host_config.auto_remove {
            if let Err(err) = self.remove(&e.id, true).await {
                tracing::warn!(container_id = %e.id, error = %err.full_message(), "auto-remove failed");
            }
            return;
        }
        self.maybe_restart(e, &rec).await;
    }

    async fn maybe_restart(self: &Arc<Self>, e: &Arc<Entry>, rec: &Container) {
        let rp = &rec.host_config.restart_policy;
        let restart = !rec.manually_stopped
            && match rp.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    rec.state.exit_code != 0
                        && (rp.maximum_retry_count == 0
                            || i64::from(rec.restart_count) < rp.maximum_retry_count)
                }
                _ => false,
            };
        if !restart {
            return;
        }
        // Docker's backoff: 100ms doubling per consecutive restart, at most a minute.
        let delay =
            Duration::from_millis(100u64 << rec.restart_count.min(9)).min(Duration::from_secs(60));
        e.with(|c| {
            c.state.set_status(Status::Restarting);
            c.restart_count += 1;
        });
        let _ = self.save(e);
        let this = self.clone();
        let e = e.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = e.op.lock().await;
            if e.with(|c| c.state.status != Status::Restarting || c.manually_stopped) {
                return;
            }
            if let Err(err) = this.start_locked(&e, true).await {
                tracing::warn!(container_id = %e.id, error = %err.full_message(), "restart failed");
                e.with(|c| {
                    if c.state.status == Status::Restarting {
                        c.state.set_status(Status::Exited);
                    }
                });
                let _ = this.save(&e);
            } else {
                this.event("restart", &e.snapshot(), &[]);
            }
        });
    }

    async fn wait_exit_after(&self, e: &Entry, exits: u64, timeout: Option<Duration>) -> bool {
        let mut rx = e.lifecycle.subscribe();
        let fut = rx.wait_for(|l| l.exits > exits || l.removed);
        match timeout {
            Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout`
    /// seconds (the container's StopTimeout, else 10; negative waits forever).
    pub async fn stop(
        self: &Arc<Self>,
        input: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let _op = e.op.lock().await;
        let rec = e.snapshot();
        if rec.state.status == Status::Restarting {
            e.with(|c| {
                c.manually_stopped = true;
                c.state.set_status(Status::Exited);
            });
            self.save(&e)?;
            return Ok(());
        }
        if !rec.state.is_running() {
            return Err(EngineError::AlreadyInState {
                id: e.id.clone(),
                state: "stopped",
            });
        }
        e.with(|c| c.manually_stopped = true);
        self.save(&e)?;
        let sig_name = signal
            .map(str::to_owned)
            .or(rec.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name).ok_or_else(|| EngineError::InvalidConfig {
            field: "signal",
            reason: format!("Invalid signal: {sig_name}"),
        })?;
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        self.event("kill", &rec, &[("signal", sig.to_string())]);
        self.stop_entry(&e, sig, t).await?;
        self.event("stop", &e.snapshot(), &[]);
        Ok(())
    }

    async fn stop_entry(&self, e: &Entry, sig: i32, t: i64) -> Result<(), EngineError> {
        let exits = e.lifecycle.borrow().exits;
        let Some(shim) = e.shim() else {
            return Ok(());
        };
        if e.with(|c| c.state.status == Status::Paused) {
            let _ = shim.client().resume().await;
        }
        if let Err(err) = shim.client().kill(sig, false).await {
            tracing::debug!(container_id = %e.id, error = %err, "stop signal");
        }
        // SIGKILL cannot be ignored: just wait for the exit.
        let grace = if sig == 9 { 30 } else { t };
        let waited = if grace < 0 {
            self.wait_exit_after(e, exits, None).await
        } else {
            self.wait_exit_after(e, exits, Some(Duration::from_secs(grace.unsigned_abs())))
                .await
        };
        if waited {
            return Ok(());
        }
        if sig != 9 {
            tracing::info!(container_id = %e.id, timeout = t, "container did not stop in time; killing");
            // Errors here mean the process (or its shim) is already gone; the
            // wait below is what decides.
            if let Err(err) = shim.client().kill(9, true).await {
                tracing::debug!(container_id = %e.id, error = %err, "SIGKILL");
            }
            if self
                .wait_exit_after(e, exits, Some(Duration::from_secs(30)))
                .await
            {
                return Ok(());
            }
        }
        Err(EngineError::KillTimeout {
            id: e.id.clone(),
            secs: 30,
        })
    }

    /// Restarts a container (stop, then start).
    pub async fn restart(
        self: &Arc<Self>,
        input: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        match self.stop(input, timeout, signal).await {
            Ok(()) | Err(EngineError::AlreadyInState { .. }) => {}
            Err(err) => return Err(err),
        }
        let e = self.lookup(input)?;
        let _op = e.op.lock().await;
        self.start_locked(&e, false).await?;
        self.event("restart", &e.snapshot(), &[]);
        Ok(())
    }

    /// Sends a signal (default SIGKILL).
    pub async fn kill(&self, input: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let sig_name = signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL");
        let sig = parse_signal(sig_name).ok_or_else(|| EngineError::InvalidConfig {
            field: "signal",
            reason: format!("Invalid signal: {sig_name}"),
        })?;
        let rec = e.snapshot();
        let Some(shim) = e.shim().filter(|_| rec.state.is_running()) else {
            return Err(EngineError::NotRunning { id: e.id.clone() });
        };
        if sig == 9 {
            e.with(|c| c.manually_stopped = true);
            let _ = self.save(&e);
        }
        shim.client()
            .kill(sig, false)
            .await
            .map_err(call("kill"))
            .map_err(shim_err(&e.id))?;
        self.event("kill", &rec, &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Freezes a running container.
    pub async fn pause(&self, input: &str) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let _op = e.op.lock().await;
        let rec = e.snapshot();
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::InvalidConfig {
                    field: "state",
                    reason: format!("container {} is already paused", e.id),
                });
            }
            _ => return Err(EngineError::NotRunning { id: e.id.clone() }),
        }
        let shim = e
            .shim()
            .ok_or_else(|| EngineError::NotRunning { id: e.id.clone() })?;
        shim.client()
            .pause()
            .await
            .map_err(call("pause"))
            .map_err(shim_err(&e.id))?;
        e.with(|c| c.state.set_status(Status::Paused));
        let rec = self.save(&e)?;
        self.event("pause", &rec, &[]);
        Ok(())
    }

    /// Thaws a paused container.
    pub async fn unpause(&self, input: &str) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let _op = e.op.lock().await;
        if e.with(|c| c.state.status != Status::Paused) {
            return Err(EngineError::InvalidConfig {
                field: "state",
                reason: format!("container {} is not paused", e.id),
            });
        }
        let shim = e
            .shim()
            .ok_or_else(|| EngineError::NotRunning { id: e.id.clone() })?;
        shim.client()
            .resume()
            .await
            .map_err(call("resume"))
            .map_err(shim_err(&e.id))?;
        e.with(|c| c.state.set_status(Status::Running));
        let rec = self.save(&e)?;
        self.event("unpause", &rec, &[]);
        Ok(())
    }

    /// Waits for a condition; resolves the container first, so a missing
    /// one fails before the caller commits to a response.
    pub fn wait(
        &self,
        input: &str,
        condition: WaitCondition,
    ) -> Result<impl Future<Output = WaitResult> + Send + 'static, EngineError> {
        let e = self.lookup(input)?;
        let mut rx = e.lifecycle.subscribe();
        let start = rx.borrow().clone();
        let running = e.with(|c| c.state.is_running());
        let current = e.with(|c| i64::from(c.state.exit_code));
        Ok(async move {
            let done = |l: &Lifecycle| match condition {
                WaitCondition::NotRunning => !running || l.exits > start.exits || l.removed,
                WaitCondition::NextExit => l.exits > start.exits || l.removed,
                WaitCondition::Removed => l.removed,
            };
            if condition == WaitCondition::NotRunning && !running {
                return WaitResult {
                    status_code: current,
                    error: None,
                };
            }
            match rx.wait_for(done).await {
                Ok(l) => WaitResult {
                    status_code: i64::from(l.exit_code),
                    error: (!l.error.is_empty()).then(|| l.error.clone()),
                },
                Err(_) => WaitResult {
                    status_code: i64::from(e.with(|c| c.state.exit_code)),
                    error: None,
                },
            }
        })
    }

    /// Removes a container; `force` kills a running one first.
    pub async fn remove(self: &Arc<Self>, input: &str, force: bool) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let _op = e.op.lock().await;
        let rec = e.snapshot();
        if rec.state.status == Status::Removing {
            return Err(EngineError::RemovalInProgress { id: e.id.clone() });
        }
        if rec.state.is_running() && rec.state.status != Status::Restarting {
            if !force {
                return Err(EngineError::RemoveRunning {
                    name: rec.name.clone(),
                });
            }
            e.with(|c| c.manually_stopped = true);
            e.removing.store(true, std::sync::atomic::Ordering::Release);
            let stopped = self.stop_entry(&e, 9, 0).await;
            e.removing
                .store(false, std::sync::atomic::Ordering::Release);
            stopped?;
        }
        e.with(|c| {
            c.manually_stopped = true;
            c.state.set_status(Status::Removing);
        });
        // Unmounting and deleting wait on the kernel: off the async workers.
        let (this, entry, key) = (self.clone(), e.clone(), rec.snapshot_key.clone());
        on_blocking_thread("remove", move || this.remove_files(&entry, &key)).await?;
        {
            let mut t = self.table();
            t.by_id.remove(&e.id);
            if t.names.get(&rec.name) == Some(&e.id) {
                t.names.remove(&rec.name);
            }
        }
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, x| x.container_id != e.id);
        tracing::info!(container_id = %e.id, "container removed");
        self.event("destroy", &rec, &[]);
        e.lifecycle.send_modify(|l| l.removed = true);
        Ok(())
    }

    /// The on-disk part of [`Self::remove`]: the record marked removing,
    /// the root detached, the snapshot and the record directory taken out
    /// of their stores, the shim's state deleted; the rest of the deletion
    /// is left to the [`super::reaper`].
    fn remove_files(&self, e: &Entry, snapshot_key: &str) -> Result<(), EngineError> {
        // The "removing" record lets a restart finish an interrupted
        // removal; a --rm container is removed by a restart anyway.
        if !e.with(|c| c.host_config.auto_remove) {
            let _ = self.save(e);
        }
        let exited = e
            .detached_root
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut leftovers = super::reaper::Leftovers {
            root: exited.or_else(|| self.detach_rootfs(&e.id)),
            ..Default::default()
        };
        match self.images.snapshots().detach(snapshot_key) {
            Ok(s) => leftovers.snapshot = Some(s),
            Err(wharf_image::snapshot::SnapshotError::NotFound { .. }) => {}
            Err(source) => {
                e.with(|c| c.state.set_status(Status::Dead));
                let _ = self.save(e);
                self.reaper.submit(leftovers);
                return Err(EngineError::Snapshot {
                    id: e.id.clone(),
                    source,
                });
            }
        }
        let _ = std::fs::remove_dir_all(self.shim_state_dir(&e.id));
        let hidden = self.store.hide(&e.id);
        if let Ok(Some(dir)) = &hidden {
            leftovers.trees.push(dir.clone());
        }
        self.reaper.submit(leftovers);
        hidden?;
        Ok(())
    }

    /// Attaches to a container's streams. The container is resolved and,
    /// before it starts, the attach registered at once (so a start that
    /// follows cannot lose output); the returned future yields the streams
    /// when they are connected (for a created container: when it starts,
    /// which is how `docker run` attaches).
    pub fn attach(
        &self,
        input: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<
        impl Future<Output = Result<AttachSession, EngineError>> + Send + 'static,
        EngineError,
    > {
        let e = self.lookup(input)?;
        let rec = e.snapshot();
        let running = e.shim().filter(|_| rec.state.is_running());
        let pending = if running.is_none() {
            if !matches!(
                rec.state.status,
                Status::Created | Status::Exited | Status::Restarting
            ) {
                return Err(EngineError::InvalidConfig {
                    field: "state",
                    reason: "You cannot attach to a stopped container, start it first".into(),
                });
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            e.pending_attach
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(PendingAttach {
                    stdin,
                    stdout,
                    stderr,
                    reply: tx,
                });
            Some(rx)
        } else {
            None
        };
        Ok(async move {
            match (running, pending) {
                (Some(shim), _) => attach_shim(&shim, &rec, stdin, stdout, stderr).await,
                (None, Some(rx)) => rx
                    .await
                    .unwrap_or_else(|_| Err(EngineError::NotRunning { id: rec.id.clone() })),
                (None, None) => Err(EngineError::NotRunning { id: rec.id.clone() }),
            }
        })
    }

    /// Resizes the container's terminal.
    pub async fn resize(&self, input: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let e = self.lookup(input)?;
        let shim = e
            .shim()
            .ok_or_else(|| EngineError::NotRunning { id: e.id.clone() })?;
        shim.client()
            .resize_pty(None, height, width)
            .await
            .map_err(call("resize"))
            .map_err(shim_err(&e.id))
    }

    /// Loads every record, re-adopts live shims, and reconciles the rest:
    /// containers whose shim is gone become exited with the code the shim
    /// left in `exit.json`; half-created directories are removed.
    pub async fn restore(self: &Arc<Self>) -> Result<(), EngineError> {
        let loaded = self.store.load_all()?;
        // Directories of removals whose deletion the last daemon did not finish.
        self.reaper.submit(super::reaper::Leftovers {
            trees: self.store.hidden(),
            ..Default::default()
        });
        // Init layers of an older wharf, unless a running root still has one.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        super::init_layer::remove_stale(self.cfg.layout.data_root(), &|p| {
            mountinfo.contains(&*p.to_string_lossy())
        });
        for dir in &loaded.incomplete {
            tracing::warn!(path = %dir.display(), "removing container directory without a record (interrupted create)");
            if let Some(id) = dir.file_name().and_then(|n| n.to_str()) {
                let _ = self.images.snapshots().remove(id);
            }
            let _ = std::fs::remove_dir_all(dir);
        }
        for err in &loaded.broken {
            tracing::error!(error = %err, "unreadable container record left in place");
        }
        // Container snapshots without a container (a create that crashed
        // after its record was removed, or before it was written).
        let known: std::collections::HashSet<&str> = loaded
            .containers
            .iter()
            .map(|c| c.snapshot_key.as_str())
            .collect();
        match self.images.snapshots().list() {
            Ok(list) => {
                for snap in list {
                    if snap.kind == wharf_image::snapshot::SnapshotKind::Container
                        && !known.contains(snap.id.as_str())
                    {
                        tracing::warn!(snapshot = %snap.id, "removing orphan container snapshot");
                        let _ = self.images.snapshots().remove(&snap.id);
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot list snapshots to reconcile"),
        }
        for c in loaded.containers {
            let e = super::Entry::new(c.clone());
            {
                let mut t = self.table();
                t.names.insert(c.name.clone(), c.id.clone());
                t.by_id.insert(c.id.clone(), e.clone());
            }
            let mut recovered_start = false;
            match c.state.status {
                Status::Running | Status::Paused | Status::Restarting => {}
                Status::Removing => {
                    tracing::info!(container_id = %c.id, "finishing interrupted removal");
                    e.with(|r| r.state.set_status(Status::Dead));
                    if let Err(err) = self.remove(&c.id, true).await {
                        tracing::warn!(container_id = %c.id, error = %err.full_message(), "cannot finish removal");
                    }
                    continue;
                }
                Status::Created | Status::Exited | Status::Dead => {
                    // A crash between launching a shim and recording the
                    // start: a process started that way is adopted, a shim
                    // that never started one is discarded.
                    let state_dir = self.shim_state_dir(&c.id);
                    if !state_dir.exists() {
                        // A crash after the start mounted the root
                        // filesystem but before it launched a shim.
                        self.unmount_rootfs(&c.id);
                        self.restore_auto_remove(&e).await;
                        continue;
                    }
                    let shim = match ShimHandle::adopt(&state_dir).await {
                        Ok(shim) => Ok(shim),
                        // The daemon may have died while the shim was still
                        // being launched: it finishes without us.
                        Err(err) => adopt_launching_shim(&state_dir).await.ok_or(err),
                    };
                    let started = match shim {
                        Ok(shim) => match shim.client().state().await {
                            Ok(st)
                                if matches!(
                                    st.status,
                                    wharf_shim_api::Status::Running
                                        | wharf_shim_api::Status::Paused
                                ) =>
                            {
                                true
                            }
                            _ => {
                                tracing::info!(container_id = %c.id, "discarding a shim whose start was never recorded");
                                let _ = shim.client().delete(true).await;
                                wait_gone(shim.pid(), Duration::from_secs(5)).await;
                                false
                            }
                        },
                        Err(_) => false,
                    };
                    if !started {
                        self.unmount_rootfs(&c.id);
                        let _ = std::fs::remove_dir_all(&state_dir);
                        self.restore_auto_remove(&e).await;
                        continue;
                    }
                    e.with(|r| r.state.set_status(Status::Running));
                    recovered_start = true;
                }
            }
            let state_dir = self.shim_state_dir(&c.id);
            match ShimHandle::adopt(&state_dir).await {
                Ok(shim) => {
                    let st = shim.client().state().await;
                    tracing::info!(container_id = %c.id, "re-adopted running container");
                    if let Ok(st) = st {
                        e.with(|r| {
                            r.state.pid = st.pid;
                            r.state.set_status(match st.status {
                                wharf_shim_api::Status::Paused => Status::Paused,
                                _ => Status::Running,
                            });
                            if recovered_start {
                                // The start's own record never made it.
                                r.state.exit_code = 0;
                                r.state.error.clear();
                                r.state.oom_killed = false;
                                r.state.finished_at = time::ZERO_TIME.into();
                                r.state.started_at = st.started_at.clone().unwrap_or_else(|| {
                                    time::rfc3339_nano(std::time::SystemTime::now())
                                });
                                r.manually_stopped = false;
                            }
                        });
                        if recovered_start && let Err(err) = self.save(&e) {
                            tracing::warn!(container_id = %c.id, error = %err.full_message(), "cannot record the recovered start");
                        }
                    }
                    e.set_shim(Some(shim.clone()));
                    self.spawn_monitor(e.clone(), shim);
                    self.start_health(&e);
                }
                Err(err) => {
                    let exit = wharf_shim_api::layout::read_exit(&state_dir).ok().flatten();
                    tracing::info!(container_id = %c.id, error = %err, exit = ?exit, "shim gone: container exited while the daemon was away");
                    self.unmount_rootfs(&c.id);
                    let _ = std::fs::remove_dir_all(&state_dir);
                    e.with(|r| {
                        r.state.set_status(Status::Exited);
                        r.state.pid = 0;
                        match &exit {
                            Some(x) => {
                                r.state.exit_code = x.exit_code;
                                r.state.oom_killed = x.oom_killed;
                                r.state.finished_at = x.exited_at.clone();
                            }
                            None => {
                                r.state.exit_code = 255;
                                r.state.error = "the container's shim disappeared without recording an exit status".into();
                                r.state.finished_at = time::rfc3339_nano(std::time::SystemTime::now());
                            }
                        }
                    });
                    let rec = self.save(&e)?;
                    self.event(
                        "die",
                        &rec,
                        &[("exitCode", rec.state.exit_code.to_string())],
                    );
                    if rec.host_config.auto_remove {
                        self.restore_auto_remove(&e).await;
                    } else {
                        self.maybe_restart(&e, &rec).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// As dockerd's restore: a container that is not running and was to be
    /// removed when it stops (`--rm`) is removed now. This also finishes an
    /// exit the daemon did not live to record ([`Self::on_exit`] does not
    /// save the exit of such a container).
    async fn restore_auto_remove(self: &Arc<Self>, e: &Arc<Entry>) {
        if !e.with(|c| c.host_config.auto_remove) {
            return;
        }
        tracing::info!(container_id = %e.id, "removing a stopped --rm container");
        if let Err(err) = self.remove(&e.id, true).await {
            tracing::warn!(container_id = %e.id, error = %err.full_message(), "auto-remove at restore failed");
        }
    }
}

/// Processes launched for the shim state directory `state_dir` (the
/// launcher and the shim it forks carry `--state-dir <dir>`).
fn shim_processes_for(state_dir: &Path) -> Vec<i32> {
    let want = state_dir.as_os_str().as_encoded_bytes();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let mut args = cmd.split(|b| *b == 0);
            args.by_ref().find(|a| *a == b"--state-dir")?;
            (args.next()? == want).then_some(pid)
        })
        .collect()
}

/// Waits for a shim that was still being launched when the previous daemon
/// died and connects to it; `None` when no launch is under way. A launch
/// that does not finish in time is killed.
async fn adopt_launching_shim(state_dir: &Path) -> Option<ShimHandle> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pids = shim_processes_for(state_dir);
        if pids.is_empty() {
            return None;
        }
        if let Ok(shim) = ShimHandle::adopt(state_dir).await {
            return Some(shim);
        }
        if tokio::time::Instant::now() > deadline {
            tracing::warn!(state_dir = %state_dir.display(), ?pids, "killing a shim launch that never finished");
            for pid in pids {
                let _ = rustix::process::Pid::from_raw(pid)
                    .map(|p| rustix::process::kill_process(p, rustix::process::Signal::KILL));
            }
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (bounded) until process `pid` no longer exists.
async fn wait_gone(pid: i32, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while Path::new(&format!("/proc/{pid}")).exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn attach_shim(
    shim: &ShimHandle,
    rec: &Container,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<AttachSession, EngineError> {
    let stdin = stdin && rec.config.open_stdin;
    let s = shim
        .client()
        .attach(None, stdin, stdout, stderr)
        .await
        .map_err(call("attach"))
        .map_err(shim_err(&rec.id))?;
    let (out, inp) = s.into_split();
    Ok(AttachSession {
        tty: rec.config.tty,
        output: Some(out),
        input: stdin.then_some(inp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("kill"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("RTMIN+2"), Some(36));
        assert_eq!(parse_signal("SIGBOGUS"), None);
        assert_eq!(parse_signal("0"), None);
    }
}
