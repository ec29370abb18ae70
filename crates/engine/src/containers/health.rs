//! Healthchecks: the image's `HEALTHCHECK` or the container's
//! `Healthcheck` (`--health-cmd` ...), run on schedule inside the running
//! container, recorded in `State.Health` and announced as `health_status`
//! events.
//!
//! One task per container run: it sleeps `Interval` (`StartInterval` during
//! the start period), then runs the probe as an exec process through the
//! container's shim (the container's environment, user and working
//! directory; stdout and stderr captured, at most 4 KiB kept), with
//! `Timeout` (the probe is SIGKILLed when it passes). Exit 0 is healthy and
//! resets the failing streak; any other result adds to it, except during
//! `StartPeriod` while the container has not been healthy yet, and
//! `Retries` consecutive failures make the container unhealthy. The task
//! ends with the run (exit, restart, removal). Defaults as Docker: 30 s
//! interval and timeout, 3 retries, 5 s start interval.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use oci_spec::runtime::Spec;

use super::{Containers, Entry};
use crate::model::{Container, Health, HealthConfig, HealthLog};
use crate::{ids, time};

const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

/// A healthcheck with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
struct Schedule {
    cmd: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Duration,
    retries: u32,
}

fn nanos(v: i64, default: Duration) -> Duration {
    if v > 0 {
        Duration::from_nanos(u64::try_from(v).unwrap_or(0))
    } else {
        default
    }
}

/// The schedule of a container's healthcheck; `None` without one (or with
/// `NONE`, `--no-healthcheck`).
fn schedule(c: &Container) -> Option<Schedule> {
    let h: &HealthConfig = c.config.healthcheck.as_ref()?;
    let test = h.test.as_ref()?;
    let cmd = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut shell = c
                .config
                .shell
                .clone()
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.push(test[1..].join(" "));
            shell
        }
        _ => return None, // NONE, empty
    };
    if cmd.is_empty() {
        return None;
    }
    Some(Schedule {
        cmd,
        interval: nanos(h.interval, Duration::from_secs(30)),
        timeout: nanos(h.timeout, Duration::from_secs(30)),
        start_period: nanos(h.start_period, Duration::ZERO),
        start_interval: nanos(h.start_interval, Duration::from_secs(5)),
        retries: if h.retries > 0 {
            u32::try_from(h.retries).unwrap_or(u32::MAX)
        } else {
            3
        },
    })
}

/// Go's duration formatting for whole and fractional seconds (`1s`, `1.5s`, `500ms`).
fn go_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

impl Containers {
    /// Starts the healthcheck of a container that just started (or was
    /// re-adopted); a container without one has no `State.Health`.
    pub(super) fn start_health(self: &Arc<Self>, e: &Arc<Entry>) {
        let rec = e.snapshot();
        let Some(sched) = schedule(&rec) else {
            if rec.state.health.is_some() {
                e.with(|c| c.state.health = None);
                let _ = self.save(e);
            }
            return;
        };
        e.with(|c| {
            c.state.health = Some(Health {
                status: "starting".into(),
                failing_streak: 0,
                log: c
                    .state
                    .health
                    .as_ref()
                    .map(|h| h.log.clone())
                    .unwrap_or_default(),
            });
        });
        let _ = self.save(e);
        let exits = e.lifecycle.borrow().exits;
        let this = self.clone();
        let e = e.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut rx = e.lifecycle.subscribe();
            loop {
                let in_start = started.elapsed() < sched.start_period;
                let wait = if in_start {
                    sched.start_interval.min(sched.interval)
                } else {
                    sched.interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = rx.wait_for(|l| l.exits > exits || l.removed) => return,
                }
                if e.lifecycle.borrow().exits > exits {
                    return;
                }
                if e.with(|c| c.state.status != crate::model::Status::Running) {
                    continue; // paused: no probes
                }
                let in_start = started.elapsed() < sched.start_period;
                let entry = this.probe(&e, &sched).await;
                this.record_probe(&e, entry, &sched, in_start);
            }
        });
    }

    /// Runs the probe once through the shim.
    async fn probe(&self, e: &Entry, s: &Schedule) -> HealthLog {
        let start = time::rfc3339_nano(SystemTime::now());
        let done = |exit_code: i64, output: String| HealthLog {
            start: start.clone(),
            end: time::rfc3339_nano(SystemTime::now()),
            exit_code,
            output,
        };
        let Some(shim) = e.shim() else {
            return done(-1, "container is not running".into());
        };
        let spec_path = self.store.dir(&e.id).join("config.json");
        let spec: Spec = match tokio::fs::read(&spec_path)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(s) => s,
            None => return done(-1, format!("cannot read {}", spec_path.display())),
        };
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_args(Some(s.cmd.clone()));
        process.set_terminal(Some(false));
        let exec_id = match ids::new_id() {
            Ok(id) => format!("health-{id}"),
            Err(err) => return done(-1, format!("cannot make an exec id: {err}")),
        };
        if let Err(err) = shim.client().exec(&exec_id, process, false, false).await {
            return done(-1, format!("cannot create the probe: {err}"));
        }
        let session = match shim
            .client()
            .attach(Some(&exec_id), false, true, true)
            .await
        {
            Ok(s) => s,
            Err(err) => return done(-1, format!("cannot attach to the probe: {err}")),
        };
        let pid = match shim.client().exec_start(&exec_id).await {
            Ok(pid) => pid,
            Err(err) => return done(-1, format!("cannot start the probe: {err}")),
        };
        let (mut out, _input) = session.into_split();
        let run = async {
            let (stdout, stderr) = out.collect().await.unwrap_or_default();
            let code = shim
                .client()
                .wait_exec(&exec_id)
                .await
                .map_or(-1, |x| i64::from(x.exit_code));
            (code, stdout, stderr)
        };
        match tokio::time::timeout(s.timeout, run).await {
            Ok((code, mut stdout, stderr)) => {
                stdout.extend_from_slice(&stderr);
                stdout.truncate(MAX_OUTPUT);
                done(code, String::from_utf8_lossy(&stdout).into_owned())
            }
            Err(_) => {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                done(
                    -1,
                    format!("Health check exceeded timeout ({})", go_duration(s.timeout)),
                )
            }
        }
    }

    fn record_probe(&self, e: &Entry, entry: HealthLog, s: &Schedule, in_start: bool) {
        let ok = entry.exit_code == 0;
        let (before, after) = e.with(|c| {
            let h = c.state.health.get_or_insert_with(Health::default);
            let before = h.status.clone();
            h.log.push(entry);
            let excess = h.log.len().saturating_sub(MAX_LOG);
            h.log.drain(..excess);
            if ok {
                h.failing_streak = 0;
                h.status = "healthy".into();
            } else if !(in_start && h.status == "starting") {
                h.failing_streak += 1;
                if h.failing_streak >= s.retries {
                    h.status = "unhealthy".into();
                }
            }
            (before, h.status.clone())
        });
        let rec = match self.save(e) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(container_id = %e.id, error = %err.full_message(), "cannot record health");
                e.snapshot()
            }
        };
        if before != after {
            tracing::info!(container_id = %e.id, status = %after, "health status changed");
            self.event(&format!("health_status: {after}"), &rec, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(h: Option<HealthConfig>) -> Container {
        let mut c: Container = serde_json::from_value(serde_json::json!({
            "Version": 1, "ID": "x", "Name": "/x", "Created": "", "Path": "sh", "Args": [],
            "Config": {}, "HostConfig": {}, "Image": "", "State": {
                "Status": "running", "Running": true, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 1, "ExitCode": 0, "Error": "",
                "StartedAt": "", "FinishedAt": ""},
            "RestartCount": 0, "Driver": "", "SnapshotKey": "", "Platform": "", "LogPath": "",
            "HostnamePath": "", "HostsPath": "", "ResolvConfPath": ""
        }))
        .unwrap();
        c.config.healthcheck = h;
        c
    }

    #[test]
    fn schedules() {
        assert_eq!(schedule(&container(None)), None);
        let none = HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        assert_eq!(schedule(&container(Some(none))), None);
        let shell = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "test -f /ok".into()]),
            interval: 1_000_000_000,
            retries: 2,
            ..Default::default()
        };
        let s = schedule(&container(Some(shell))).unwrap();
        assert_eq!(s.cmd, ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(s.interval, Duration::from_secs(1));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.retries, 2);
        let cmd = HealthConfig {
            test: Some(vec!["CMD".into(), "true".into()]),
            ..Default::default()
        };
        assert_eq!(schedule(&container(Some(cmd))).unwrap().cmd, ["true"]);
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
