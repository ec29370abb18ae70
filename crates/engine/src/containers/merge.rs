//! How a create request and the image config combine into the container's
//! configuration (Docker's rules):
//!
//! - `Entrypoint` from the request replaces the image's and drops the image's
//!   `Cmd`; `[""]` means "no entrypoint". Otherwise the image's entrypoint
//!   stays and `Cmd` comes from the request, else from the image.
//! - `Env`: the image's variables, overridden per name by the request's.
//! - `Labels`, `ExposedPorts`, `Volumes`: unions, the request winning.
//! - `WorkingDir`, `User`, `StopSignal`, `StopTimeout`, `Healthcheck`,
//!   `Shell`: the request's when set, else the image's.

use std::collections::BTreeMap;

use wharf_image::manifest::ImageConfig;

use crate::error::EngineError;
use crate::model::{ContainerConfig, HealthConfig};

/// The merged config and the command (`Path`, `Args`).
#[derive(Debug, Clone)]
pub struct Merged {
    pub config: ContainerConfig,
    pub path: String,
    pub args: Vec<String>,
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// Merges `req` over the image config.
pub fn merge(req: &ContainerConfig, image: &ImageConfig) -> Result<Merged, EngineError> {
    let img = image.file().config.clone().unwrap_or_default();
    let mut c = req.clone();

    let mut env: Vec<String> = img.env.clone().unwrap_or_default();
    for e in req.env.iter().flatten() {
        let k = env_key(e);
        if let Some(pos) = env.iter().position(|x| env_key(x) == k) {
            env[pos] = e.clone();
        } else {
            env.push(e.clone());
        }
    }
    c.env = Some(env);

    let (entrypoint, cmd) = match &req.entrypoint {
        Some(ep) => {
            let ep = if ep.len() == 1 && ep[0].is_empty() {
                None
            } else {
                Some(ep.clone())
            };
            (ep, req.cmd.clone())
        }
        None => (img.entrypoint.clone(), req.cmd.clone().or(img.cmd.clone())),
    };
    c.entrypoint = entrypoint.clone();
    c.cmd = cmd.clone();
    let mut full: Vec<String> = entrypoint.unwrap_or_default();
    full.extend(cmd.unwrap_or_default());
    if full.is_empty() {
        return Err(EngineError::InvalidConfig {
            field: "Cmd",
            reason: "no command specified".to_owned(),
        });
    }
    let path = full.remove(0);

    if c.working_dir.is_empty() {
        c.working_dir = img.working_dir.clone().unwrap_or_default();
    }
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(EngineError::InvalidConfig {
            field: "WorkingDir",
            reason: format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                c.working_dir
            ),
        });
    }
    if c.user.is_empty() {
        c.user = img.user.clone().unwrap_or_default();
    }
    let mut labels: BTreeMap<String, String> = img.labels.clone().unwrap_or_default();
    labels.extend(req.labels.clone());
    c.labels = labels;
    if let Some(p) = &img.exposed_ports {
        let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
        for k in p.keys() {
            ports
                .entry(k.clone())
                .or_insert_with(|| serde_json::json!({}));
        }
    }
    if let Some(v) = &img.volumes {
        let vols = c.volumes.get_or_insert_with(BTreeMap::new);
        for k in v.keys() {
            vols.entry(k.clone())
                .or_insert_with(|| serde_json::json!({}));
        }
    }
    if c.stop_signal.is_none() {
        c.stop_signal = img.stop_signal.clone();
    }
    if c.stop_timeout.is_none() {
        c.stop_timeout = img.stop_timeout;
    }
    if c.shell.is_none() {
        c.shell = img.shell.clone();
    }
    if c.on_build.is_none() {
        c.on_build = img.on_build.clone();
    }
    if c.healthcheck.is_none()
        && let Some(h) = &img.healthcheck
    {
        c.healthcheck = Some(HealthConfig {
            test: h.test.clone(),
            interval: h.interval.unwrap_or(0),
            timeout: h.timeout.unwrap_or(0),
            start_period: h.start_period.unwrap_or(0),
            start_interval: h.start_interval.unwrap_or(0),
            retries: h.retries.unwrap_or(0),
        });
    }
    Ok(Merged {
        config: c,
        path,
        args: full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(cfg: serde_json::Value) -> ImageConfig {
        let v = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": []}
        });
        ImageConfig::from_bytes(serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn entrypoint_cmd_rules() {
        let img = image(
            serde_json::json!({"Entrypoint": ["/ep"], "Cmd": ["a"], "Env": ["PATH=/x", "A=1"], "WorkingDir": "/w", "User": "u", "Labels": {"l": "1"}}),
        );
        let m = merge(&ContainerConfig::default(), &img).unwrap();
        assert_eq!(
            (m.path.as_str(), m.args.clone()),
            ("/ep", vec!["a".to_owned()])
        );
        assert_eq!(m.config.working_dir, "/w");
        assert_eq!(m.config.user, "u");

        let req = ContainerConfig {
            cmd: Some(vec!["b".into()]),
            env: Some(vec!["A=2".into(), "B=3".into()]),
            ..Default::default()
        };
        let m = merge(&req, &img).unwrap();
        assert_eq!(
            (m.path.as_str(), m.args.clone()),
            ("/ep", vec!["b".to_owned()])
        );
        assert_eq!(m.config.env.unwrap(), vec!["PATH=/x", "A=2", "B=3"]);

        let req = ContainerConfig {
            entrypoint: Some(vec!["/other".into()]),
            ..Default::default()
        };
        let m = merge(&req, &img).unwrap();
        assert_eq!(
            (m.path.as_str(), m.args.len()),
            ("/other", 0),
            "image Cmd dropped"
        );

        let req = ContainerConfig {
            entrypoint: Some(vec![String::new()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let m = merge(&req, &img).unwrap();
        assert_eq!(m.path, "sh");

        let req = ContainerConfig {
            entrypoint: Some(vec![String::new()]),
            ..Default::default()
        };
        assert!(merge(&req, &img).is_err(), "no command at all");
        let req = ContainerConfig {
            working_dir: "rel".into(),
            ..Default::default()
        };
        assert!(merge(&req, &img).is_err());
    }
}
