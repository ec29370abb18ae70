//! Exec instances: extra processes in a running container (`docker exec`).
//! An instance is registered by `exec_create`, started once by
//! `exec_start` (which runs it through the container's shim, inheriting the
//! container's capabilities, seccomp profile and environment), and its exit
//! code is recorded for `exec_inspect`. Instances are kept in memory only:
//! like Docker, they do not survive a daemon restart.

use std::sync::{Arc, Mutex};

use oci_spec::runtime::{Spec, User};

use super::Containers;
use crate::error::{EngineError, io_err};
use crate::shim::{AttachSession, call};
use crate::{ids, rootfs_files};

/// An exec request (Docker's `ExecConfig`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub detach_keys: String,
}

#[derive(Debug, Default, Clone)]
struct ExecState {
    running: bool,
    started: bool,
    exit_code: Option<i32>,
    pid: i32,
}

#[derive(Debug)]
pub(crate) struct ExecEntry {
    pub(crate) id: String,
    pub(crate) container_id: String,
    config: ExecConfig,
    state: Mutex<ExecState>,
    /// The exit code once the process has exited.
    exited: tokio::sync::watch::Sender<Option<i32>>,
}

/// What `exec_inspect` shows.
#[derive(Debug, Clone)]
pub struct ExecSnapshot {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

impl Containers {
    /// Registers an exec instance; returns its ID.
    pub fn exec_create(&self, input: &str, config: ExecConfig) -> Result<String, EngineError> {
        let e = self.lookup(input)?;
        let rec = e.snapshot();
        if !rec.state.is_running() {
            return Err(EngineError::NotRunning { id: rec.id.clone() });
        }
        if rec.state.status == crate::model::Status::Paused {
            return Err(EngineError::Paused { id: rec.id.clone() });
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::InvalidConfig {
                field: "Cmd",
                reason: "No exec command specified".into(),
            });
        }
        let id = ids::new_id().map_err(io_err("read", "/dev/urandom"))?;
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id.clone(),
            Arc::new(ExecEntry {
                id: id.clone(),
                container_id: rec.id.clone(),
                config,
                state: Mutex::new(ExecState::default()),
                exited: tokio::sync::watch::channel(None).0,
            }),
        );
        self.event(
            &format!("exec_create: {cmd}"),
            &rec,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    fn exec_entry(&self, id: &str) -> Result<Arc<ExecEntry>, EngineError> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec { id: id.to_owned() })
    }

    /// The state of an exec instance.
    pub fn exec_inspect(&self, id: &str) -> Result<ExecSnapshot, EngineError> {
        let x = self.exec_entry(id)?;
        let st = x.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(ExecSnapshot {
            id: x.id.clone(),
            container_id: x.container_id.clone(),
            config: x.config.clone(),
            running: st.running,
            exit_code: st.exit_code,
            pid: st.pid,
        })
    }

    /// Starts an exec instance; unless `detach`, returns its streams.
    pub async fn exec_start(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        tty: Option<bool>,
    ) -> Result<Option<AttachSession>, EngineError> {
        let x = self.exec_entry(id)?;
        {
            let mut st = x.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.started {
                return Err(EngineError::InvalidConfig {
                    field: "exec",
                    reason: format!("exec {id} has already been started"),
                });
            }
            st.started = true;
        }
        let e = self.lookup(&x.container_id)?;
        let rec = e.snapshot();
        let shim = e
            .shim()
            .filter(|_| rec.state.is_running())
            .ok_or_else(|| EngineError::NotRunning { id: rec.id.clone() })?;
        let tty = tty.unwrap_or(x.config.tty) || x.config.tty;
        let sh = |source| EngineError::Shim {
            id: rec.id.clone(),
            source,
        };

        // The process: the container's, with the exec's command, env, user, cwd.
        let spec_path = self.store.dir(&rec.id).join("config.json");
        let bytes = tokio::fs::read(&spec_path)
            .await
            .map_err(io_err("read", &spec_path))?;
        let spec: Spec = serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
            what: "runtime spec (config.json)",
            id: rec.id.clone(),
            source,
        })?;
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_args(x.config.cmd.clone());
        process.set_terminal(Some(tty));
        let mut env = process.env().clone().unwrap_or_default();
        for v in x.config.env.iter().flatten() {
            let k = v.split_once('=').map_or(v.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != k);
            env.push(v.clone());
        }
        process.set_env(Some(env));
        if !x.config.working_dir.is_empty() {
            process.set_cwd(x.config.working_dir.clone().into());
        }
        if !x.config.user.is_empty() {
            let rootfs = self.cfg.layout.container_rootfs(&rec.id);
            let u = rootfs_files::resolve_user(&rootfs, &x.config.user, &[]).map_err(|err| {
                EngineError::InvalidConfig {
                    field: "User",
                    reason: err.to_string(),
                }
            })?;
            let mut user = User::default();
            user.set_uid(u.uid);
            user.set_gid(u.gid);
            user.set_additional_gids((!u.additional_gids.is_empty()).then_some(u.additional_gids));
            process.set_user(user);
        }
        if x.config.privileged
            && let Some(mut caps) = process.capabilities().clone()
        {
            let all: oci_spec::runtime::Capabilities = wharf_spec::ALL_CAPABILITIES
                .iter()
                .map(|c| c.capability)
                .collect();
            caps.set_bounding(Some(all.clone()));
            caps.set_effective(Some(all.clone()));
            caps.set_permitted(Some(all));
            process.set_capabilities(Some(caps));
        }
        let stdin = x.config.attach_stdin && !detach;
        shim.client()
            .exec(id, process, tty, stdin)
            .await
            .map_err(call("exec"))
            .map_err(sh)?;
        let session = if detach {
            None
        } else {
            let s = shim
                .client()
                .attach(
                    Some(id),
                    stdin,
                    x.config.attach_stdout,
                    x.config.attach_stderr,
                )
                .await
                .map_err(call("exec attach"))
                .map_err(sh)?;
            let (out, inp) = s.into_split();
            Some(AttachSession {
                tty,
                output: Some(out),
                input: stdin.then_some(inp),
            })
        };
        let pid = match shim.client().exec_start(id).await {
            Ok(pid) => pid,
            Err(err) => {
                let mut st = x.state.lock().unwrap_or_else(|p| p.into_inner());
                st.exit_code = Some(126);
                x.exited.send_replace(Some(126));
                return Err(EngineError::StartFailed {
                    id: rec.id.clone(),
                    reason: err.to_string(),
                });
            }
        };
        {
            let mut st = x.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = true;
            st.pid = pid;
        }
        self.event(
            &format!(
                "exec_start: {}",
                x.config.cmd.clone().unwrap_or_default().join(" ")
            ),
            &rec,
            &[("execID", id.to_owned())],
        );
        let this = self.clone();
        let x2 = x.clone();
        tokio::spawn(async move {
            let code = match shim.client().wait_exec(&x2.id).await {
                Ok(s) => s.exit_code,
                Err(err) => {
                    tracing::warn!(exec_id = %x2.id, error = %err, "waiting on exec failed");
                    -1
                }
            };
            {
                let mut st = x2.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                st.exit_code = Some(code);
            }
            x2.exited.send_replace(Some(code));
            this.event(
                "exec_die",
                &rec,
                &[("execID", x2.id.clone()), ("exitCode", code.to_string())],
            );
        });
        Ok(session)
    }

    /// Resolves when the exec process has exited (and its code is recorded).
    pub fn exec_wait(
        &self,
        id: &str,
    ) -> Result<impl Future<Output = Option<i32>> + Send + 'static, EngineError> {
        let mut rx = self.exec_entry(id)?.exited.subscribe();
        Ok(async move { rx.wait_for(Option::is_some).await.ok().and_then(|v| *v) })
    }

    /// Resizes an exec instance's terminal.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), EngineError> {
        let x = self.exec_entry(id)?;
        let e = self.lookup(&x.container_id)?;
        let shim = e.shim().ok_or_else(|| EngineError::NotRunning {
            id: x.container_id.clone(),
        })?;
        shim.client()
            .resize_pty(Some(id), height, width)
            .await
            .map_err(call("exec resize"))
            .map_err(|source| EngineError::Shim {
                id: x.container_id.clone(),
                source,
            })
    }
}
