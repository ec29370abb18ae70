//! `run`, `create`, `start -a`, `attach` and `exec`: create (pulling a
//! missing image), attach before start, terminal handling (raw mode,
//! resize at start and on SIGWINCH, detach keys), signal proxying, and
//! exit codes as docker's (the container's; 125 when the daemon refuses;
//! 126/127 when the command cannot be invoked or found).

use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use wharf_client::{Client, ClientError, Query};

use crate::app::{App, Exit, describe_client};
use crate::cli::{AttachArgs, ContainerOpts, CreateArgs, ExecArgs, RunArgs};
use crate::streams::{Ended, session};
use crate::tty::{RawGuard, parse_detach_keys};

const DEFAULT_DETACH: &str = "ctrl-p,ctrl-q";

/// docker's run/create failure: `wharf: <message>` + the help hint, 125.
fn refuse(cmd: &str, msg: &str) -> anyhow::Error {
    Exit::with(
        125,
        format!("wharf: {msg}\n\nRun 'wharf {cmd} --help' for more information"),
    )
}

/// Exit status for a failed start, from the daemon's text.
pub fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

fn detach_keys(flag: Option<&str>) -> anyhow::Result<Vec<u8>> {
    parse_detach_keys(flag.unwrap_or(DEFAULT_DETACH)).map_err(anyhow::Error::msg)
}

/// Creates the container, pulling the image per `--pull`.
async fn create(c: &Client, o: &ContainerOpts, body: &Value, cmd: &str) -> anyhow::Result<String> {
    let platform = o.platform.as_deref();
    if o.pull == "always" {
        super::image::pull(c, &o.image, platform, o.quiet, true)
            .await
            .map_err(|e| refuse(cmd, &crate::app::describe(&e)))?;
    }
    let resp = match c.container_create(o.name.as_deref(), platform, body).await {
        Ok(r) => r,
        Err(e) if e.is_not_found() && o.pull != "never" && is_missing_image(&e) => {
            eprintln!(
                "Unable to find image '{}' locally",
                super::image::with_default_tag(&o.image)
            );
            super::image::pull(c, &o.image, platform, o.quiet, true)
                .await
                .map_err(|e| refuse(cmd, &crate::app::describe(&e)))?;
            c.container_create(o.name.as_deref(), platform, body)
                .await
                .map_err(|e| refuse(cmd, &describe_client(&e)))?
        }
        Err(e) => return Err(refuse(cmd, &describe_client(&e))),
    };
    for w in resp.warnings.iter().flatten() {
        eprintln!("WARNING: {w}");
    }
    if let Some(f) = &o.cidfile {
        std::fs::write(f, &resp.id).map_err(|e| {
            refuse(
                cmd,
                &format!("failed to write the container ID to the file: {e}"),
            )
        })?;
    }
    Ok(resp.id)
}

fn is_missing_image(e: &ClientError) -> bool {
    matches!(e, ClientError::Daemon { message, .. } if message.to_lowercase().contains("no such image"))
}

pub async fn cmd_create(app: &mut App, a: &CreateArgs) -> anyhow::Result<()> {
    let body =
        super::config::build(&a.opts, false).map_err(|e| refuse("create", &e.to_string()))?;
    let c = app.client().await?;
    let id = create(c, &a.opts, &body, "create").await?;
    println!("{id}");
    Ok(())
}

/// Sends the terminal size now and on every SIGWINCH until dropped.
fn resize_task(c: Client, id: String, exec: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let send = |c: Client, id: String| async move {
            if let Some((h, w)) = crate::tty::size() {
                let _ = if exec {
                    c.exec_resize(&id, h, w).await
                } else {
                    c.container_resize(&id, h, w).await
                };
            }
        };
        send(c.clone(), id.clone()).await;
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            send(c.clone(), id.clone()).await;
        }
    })
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container.
fn proxy_signals(c: Client, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (k, name) in kinds {
            let Ok(mut s) = signal(k) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let _ = c.container_kill(&id, Some(name)).await;
        }
    })
}

pub async fn cmd_run(app: &mut App, a: &RunArgs) -> anyhow::Result<()> {
    let o = &a.opts;
    let body = super::config::build(o, a.detach).map_err(|e| refuse("run", &e.to_string()))?;
    if o.tty && o.interactive && !crate::tty::stdin_is_tty() {
        return Err(refuse("run", "the input device is not a TTY"));
    }
    let keys = detach_keys(a.detach_keys.as_deref()).map_err(|e| refuse("run", &e.to_string()))?;
    let c = app.client().await?.clone();
    let id = create(&c, o, &body, "run").await?;
    if a.detach {
        if let Err(e) = c.container_start(&id).await {
            let msg = describe_client(&e);
            return Err(Exit::with(
                start_failure_code(&msg),
                format!("wharf: {msg}\n\nRun 'wharf run --help' for more information"),
            ));
        }
        println!("{id}");
        return Ok(());
    }
    let attach_in = body["AttachStdin"].as_bool().unwrap_or(false);
    let attach_out = body["AttachStdout"].as_bool().unwrap_or(false);
    let attach_err = body["AttachStderr"].as_bool().unwrap_or(false);
    let q = Query::new()
        .set("stream", "1")
        .flag("stdin", attach_in)
        .flag("stdout", attach_out)
        .flag("stderr", attach_err)
        .set(
            "detachKeys",
            a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH),
        );
    let conn = if attach_in || attach_out || attach_err {
        Some(
            c.container_attach(&id, q)
                .await
                .map_err(|e| refuse("run", &describe_client(&e)))?,
        )
    } else {
        None
    };
    let cond = if o.rm { "removed" } else { "next-exit" };
    let waiter = c
        .container_wait(&id, Some(cond))
        .await
        .map_err(|e| refuse("run", &describe_client(&e)))?;
    let raw = if o.tty && attach_in {
        RawGuard::enter()
    } else {
        None
    };
    if let Err(e) = c.container_start(&id).await {
        drop(raw);
        let msg = describe_client(&e);
        eprintln!("wharf: {msg}\n\nRun 'wharf run --help' for more information");
        if o.rm {
            // The daemon removes an auto-remove container whose start failed;
            // if it has not within a moment, remove it here.
            let waited =
                tokio::time::timeout(std::time::Duration::from_secs(2), waiter.result()).await;
            if waited.is_err() {
                let _ = c.container_remove(&id, true, true, false).await;
            }
        }
        return Err(Exit::code(start_failure_code(&msg)));
    }
    let resizer = o.tty.then(|| resize_task(c.clone(), id.clone(), false));
    let proxy = (a.sig_proxy && !o.tty).then(|| proxy_signals(c.clone(), id.clone()));
    let ended = match conn {
        Some(conn) => session(conn, o.tty, attach_in, keys).await,
        None => Ok(Ended::Output),
    };
    drop(raw);
    if let Some(r) = resizer {
        r.abort();
    }
    if let Some(p) = proxy {
        p.abort();
    }
    match ended? {
        Ended::Detached => {
            eprintln!();
            Ok(())
        }
        Ended::Output => {
            let w = waiter.result().await?;
            if let Some(e) = w.error.filter(|e| !e.message.is_empty()) {
                eprintln!("wharf: {}", e.message);
            }
            match w.status_code {
                0 => Ok(()),
                n => Err(Exit::code(i32::try_from(n).unwrap_or(1))),
            }
        }
    }
}

/// `start -a [-i]`: attach, then start, then the container's exit code.
pub async fn start_attached(
    app: &mut App,
    name: &str,
    interactive: bool,
    keys: Option<&str>,
) -> anyhow::Result<()> {
    let c = app.client().await?.clone();
    let info = c.container_inspect(name, false).await?;
    let id = info["Id"].as_str().unwrap_or(name).to_owned();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys_v = detach_keys(keys)?;
    let q = Query::new()
        .set("stream", "1")
        .flag("stdin", stdin)
        .set("stdout", "1")
        .set("stderr", "1");
    let conn = c.container_attach(&id, q).await?;
    let waiter = c.container_wait(&id, Some("next-exit")).await?;
    let raw = if tty && stdin {
        RawGuard::enter()
    } else {
        None
    };
    if let Err(e) = c.container_start(&id).await {
        drop(raw);
        return Err(Exit::with(1, describe_client(&e)));
    }
    let resizer = tty.then(|| resize_task(c.clone(), id.clone(), false));
    let proxy = (!tty).then(|| proxy_signals(c.clone(), id.clone()));
    let ended = session(conn, tty, stdin, keys_v).await;
    drop(raw);
    if let Some(t) = resizer {
        t.abort();
    }
    if let Some(t) = proxy {
        t.abort();
    }
    if ended? == Ended::Detached {
        return Ok(());
    }
    let w = waiter.result().await?;
    match w.status_code {
        0 => Ok(()),
        n => Err(Exit::code(i32::try_from(n).unwrap_or(1))),
    }
}

pub async fn cmd_attach(app: &mut App, a: &AttachArgs) -> anyhow::Result<()> {
    let c = app.client().await?.clone();
    let info = c.container_inspect(&a.container, false).await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_owned();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a paused container, unpause it first");
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && stdin && !crate::tty::stdin_is_tty() {
        anyhow::bail!("the input device is not a TTY");
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let q = Query::new()
        .set("stream", "1")
        .flag("stdin", stdin)
        .set("stdout", "1")
        .set("stderr", "1")
        .set(
            "detachKeys",
            a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH),
        );
    let conn = c.container_attach(&id, q).await?;
    let raw = if tty && stdin {
        RawGuard::enter()
    } else {
        None
    };
    let resizer = tty.then(|| resize_task(c.clone(), id.clone(), false));
    let proxy = (a.sig_proxy && !tty).then(|| proxy_signals(c.clone(), id.clone()));
    let ended = session(conn, tty, stdin, keys).await;
    drop(raw);
    if let Some(t) = resizer {
        t.abort();
    }
    if let Some(t) = proxy {
        t.abort();
    }
    if ended? == Ended::Detached {
        // docker attach reports a detach as an error (exit 1); run -it does not.
        return Err(Exit::with(1, "read escape sequence"));
    }
    let w = c.container_wait(&id, None).await?.result().await?;
    match w.status_code {
        0 => Ok(()),
        n => Err(Exit::code(i32::try_from(n).unwrap_or(1))),
    }
}

pub async fn cmd_exec(app: &mut App, a: &ExecArgs) -> anyhow::Result<()> {
    if a.tty && a.interactive && !crate::tty::stdin_is_tty() {
        anyhow::bail!("the input device is not a TTY");
    }
    let env = super::config::environment(&a.env_file, &a.env)?;
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let body = serde_json::json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Detach": a.detach,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
    });
    let c = app.client().await?.clone();
    let exec = c.exec_create(&a.container, &body).await?;
    if a.detach {
        c.exec_start_detached(&exec.id, a.tty).await?;
        return Ok(());
    }
    let conn = c.exec_start_attached(&exec.id, a.tty).await?;
    let raw = if a.tty && a.interactive {
        RawGuard::enter()
    } else {
        None
    };
    let resizer = a.tty.then(|| resize_task(c.clone(), exec.id.clone(), true));
    let ended = session(conn, a.tty, a.interactive, keys).await;
    drop(raw);
    if let Some(t) = resizer {
        t.abort();
    }
    if ended? == Ended::Detached {
        return Ok(());
    }
    // The daemon records the exit code before ending the stream; should it
    // still show the process running, ask again for a bounded while.
    let mut info = c.exec_inspect(&exec.id).await?;
    for _ in 0..50 {
        if info["Running"] != serde_json::Value::Bool(true) && !info["ExitCode"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        info = c.exec_inspect(&exec.id).await?;
    }
    match info["ExitCode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        n => Err(Exit::code(i32::try_from(n).unwrap_or(1))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failure_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("exec /x: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_code("cgroup setup failed"), 125);
    }
}
