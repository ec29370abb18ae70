//! Docker's flag value syntaxes, parsed into the Engine API's JSON shapes:
//! environment ([`env`]), published ports ([`ports`]), volumes, mounts and
//! tmpfs ([`mounts`]), and the small ones here (ulimits, restart policies,
//! CPUs, labels, devices, key=value maps). Each parser is pure and returns
//! an [`OptsError`] worded as docker words it.

pub mod env;
pub mod flags;
pub mod mounts;
pub mod ports;

use serde_json::{Value, json};

/// A flag value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptsError {
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Message(String),
}

pub(crate) fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> OptsError {
    OptsError::Invalid {
        flag,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// `--ulimit nofile=1024:2048` (one number = soft and hard).
pub fn ulimit(s: &str) -> Result<Value, OptsError> {
    let bad = |r: &str| invalid("--ulimit", s, r);
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| bad(&format!("invalid ulimit argument: {s}")))?;
    const NAMES: [&str; 16] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !NAMES.contains(&name) {
        return Err(bad(&format!("invalid ulimit type: {name}")));
    }
    let num = |v: &str| flags::int(v).map_err(|e| bad(&e));
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(limits)?;
            (v, v)
        }
    };
    if soft > hard && hard != -1 {
        return Err(bad(&format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<Value, OptsError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let count = match count {
        Some(c) => c.parse::<i64>().map_err(|_| {
            OptsError::Message(
                "invalid restart policy format: maximum retry count must be an integer".into(),
            )
        })?,
        None => 0,
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if count != 0 => Err(OptsError::Message(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
        )),
        "" | "no" => Ok(json!({"Name": "no", "MaximumRetryCount": 0})),
        "always" | "unless-stopped" | "on-failure" => {
            Ok(json!({"Name": name, "MaximumRetryCount": count}))
        }
        other => Err(OptsError::Message(format!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// `--cpus 1.5` as NanoCpus.
pub fn nano_cpus(s: &str) -> Result<i64, OptsError> {
    let v: f64 = s.parse().map_err(|_| {
        invalid(
            "--cpus",
            s,
            format!("failed to parse {s} as a rational number"),
        )
    })?;
    let nano = v * 1e9;
    if !nano.is_finite() || nano.fract().abs() > 1e-6 {
        return Err(invalid("--cpus", s, "value is too precise"));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(nano.round() as i64)
}

/// `--memory-swap`: `-1` (unlimited) or a size.
pub fn memory_swap(s: &str) -> Result<i64, OptsError> {
    if s == "-1" {
        return Ok(-1);
    }
    crate::format::units::ram_in_bytes(s).map_err(|e| invalid("--memory-swap", s, e.to_string()))
}

/// A size flag in docker's binary units.
pub fn mem(flag: &'static str, s: &str) -> Result<i64, OptsError> {
    crate::format::units::ram_in_bytes(s).map_err(|e| invalid(flag, s, e.to_string()))
}

/// `KEY=VALUE` pairs into a JSON map; a bare `KEY` maps to `""`.
pub fn kv_map<'a>(items: impl IntoIterator<Item = &'a String>) -> serde_json::Map<String, Value> {
    items
        .into_iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_owned(), Value::String(v.to_owned())),
            None => (s.clone(), Value::String(String::new())),
        })
        .collect()
}

/// `KEY=VALUE` pairs that must have a value (`--sysctl`, `--log-opt`).
pub fn kv_strict(
    flag: &'static str,
    items: &[String],
) -> Result<serde_json::Map<String, Value>, OptsError> {
    for s in items {
        if !s.contains('=') || s.starts_with('=') {
            return Err(invalid(flag, s, format!("invalid argument: {s}")));
        }
    }
    Ok(kv_map(items))
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn device(s: &str) -> Result<Value, OptsError> {
    let parts: Vec<&str> = s.split(':').collect();
    let is_perm = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, ctr, perm) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perm(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if is_perm(p) => (*h, *c, *p),
        _ => return Err(invalid("--device", s, format!("bad format for path: {s}"))),
    };
    if !ctr.starts_with('/') {
        return Err(invalid("--device", s, format!("bad format for path: {s}")));
    }
    Ok(json!({"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perm}))
}

/// `--add-host name:ip` (or `name=ip`).
pub fn extra_host(s: &str) -> Result<String, OptsError> {
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| invalid("--add-host", s, format!("bad format for add-host: {s:?}")))?;
    if name.is_empty() || ip.is_empty() {
        return Err(invalid(
            "--add-host",
            s,
            format!("bad format for add-host: {s:?}"),
        ));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(
            "--add-host",
            s,
            format!("invalid IP address in add-host: {ip:?}"),
        ));
    }
    Ok(format!("{name}:{ip}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            json!({"Name":"nofile","Soft":1024,"Hard":2048})
        );
        assert_eq!(
            ulimit("nproc=512").unwrap(),
            json!({"Name":"nproc","Soft":512,"Hard":512})
        );
        assert!(ulimit("bogus=1").is_err());
        assert!(ulimit("nofile").is_err());
        assert!(ulimit("nofile=2048:1024").is_err());
        assert!(ulimit("nofile=a").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            json!({"Name":"on-failure","MaximumRetryCount":3})
        );
        assert_eq!(
            restart_policy("always").unwrap(),
            json!({"Name":"always","MaximumRetryCount":0})
        );
        assert_eq!(restart_policy("no").unwrap()["Name"], "no");
        assert!(restart_policy("always:2").is_err());
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("on-failure:x").is_err());
    }

    #[test]
    fn cpus_and_sizes() {
        assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(nano_cpus("0.25"), Ok(250_000_000));
        assert!(nano_cpus("x").is_err());
        assert_eq!(
            nano_cpus("-1"),
            Ok(-1_000_000_000),
            "the daemon judges the sign"
        );
        assert_eq!(memory_swap("-1"), Ok(-1));
        assert_eq!(memory_swap("1g"), Ok(1 << 30));
        assert_eq!(mem("--memory", "512m"), Ok(512 << 20));
        let e = mem("--memory", "lots").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"lots\" for \"--memory\" flag: invalid size: 'lots'"
        );
    }

    #[test]
    fn devices_hosts_maps() {
        assert_eq!(device("/dev/fuse").unwrap()["PathInContainer"], "/dev/fuse");
        assert_eq!(
            device("/dev/sda:/dev/xvda:r").unwrap(),
            json!({"PathOnHost":"/dev/sda","PathInContainer":"/dev/xvda","CgroupPermissions":"r"})
        );
        assert_eq!(device("/dev/sda:rw").unwrap()["CgroupPermissions"], "rw");
        assert!(device("/dev/a:b").is_err());
        assert_eq!(extra_host("db:10.0.0.2").unwrap(), "db:10.0.0.2");
        assert_eq!(extra_host("db=::1").unwrap(), "db:::1");
        assert!(extra_host("db:notip").is_err());
        let m = kv_map(&["a=b".to_owned(), "c".to_owned()]);
        assert_eq!(Value::Object(m), json!({"a":"b","c":""}));
        assert!(kv_strict("--sysctl", &["net.x".to_owned()]).is_err());
    }
}
