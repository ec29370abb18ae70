//! Where the daemon is: `-H`, `$WHARF_HOST`, `$DOCKER_HOST`, then the
//! default unix socket `/run/wharf/wharf.sock`. [`Host::resolve`] applies
//! that order and says whether the caller chose the host explicitly (the
//! CLI only starts a daemon itself for the default socket).

use std::path::PathBuf;

/// wharfd's default socket.
pub const DEFAULT_SOCKET: &str = "/run/wharf/wharf.sock";

/// A daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

/// A host string that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("invalid host {host:?}: {reason}")]
    Invalid { host: String, reason: &'static str },
}

impl Host {
    /// Parses `unix:///path`, `/path`, `tcp://host:port` (port 2375 when
    /// missing), `host:port`.
    pub fn parse(s: &str) -> Result<Host, HostError> {
        let bad = |reason| HostError::Invalid {
            host: s.to_owned(),
            reason,
        };
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        if s.contains("://") && rest == s {
            return Err(bad("unsupported scheme (use unix:// or tcp://)"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(bad("empty address"));
        }
        if rest.contains('/') {
            return Err(bad("a tcp address has no path"));
        }
        let has_port = match rest.rfind(':') {
            Some(i) => !rest[i + 1..].is_empty() && !rest.ends_with(']'),
            None => false,
        };
        if has_port {
            let port = &rest[rest.rfind(':').unwrap_or(0) + 1..];
            if port.parse::<u16>().is_err() {
                return Err(bad("invalid port"));
            }
            Ok(Host::Tcp(rest.to_owned()))
        } else {
            Ok(Host::Tcp(format!("{}:2375", rest.trim_end_matches(':'))))
        }
    }

    /// The host to use and whether it was chosen explicitly (flag or
    /// environment) rather than defaulted.
    pub fn resolve(flag: Option<&str>) -> Result<(Host, bool), HostError> {
        Host::resolve_with(flag, |k| std::env::var(k).ok())
    }

    /// [`Host::resolve`] with the environment supplied by the caller.
    pub fn resolve_with(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Host, bool), HostError> {
        if let Some(f) = flag {
            return Ok((Host::parse(f)?, true));
        }
        for var in ["WHARF_HOST", "DOCKER_HOST"] {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                return Ok((Host::parse(&v)?, true));
            }
        }
        Ok((Host::Unix(PathBuf::from(DEFAULT_SOCKET)), false))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            Host::parse("unix:///run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(Host::parse("/tmp/s").unwrap(), Host::Unix("/tmp/s".into()));
        assert_eq!(
            Host::parse("tcp://1.2.3.4:2376").unwrap(),
            Host::Tcp("1.2.3.4:2376".into())
        );
        assert_eq!(
            Host::parse("tcp://example").unwrap(),
            Host::Tcp("example:2375".into())
        );
        assert_eq!(
            Host::parse("localhost:99").unwrap(),
            Host::Tcp("localhost:99".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
        assert!(Host::parse("tcp://h:notaport").is_err());
    }

    #[test]
    fn resolution_order() {
        let env = |k: &str| match k {
            "WHARF_HOST" => Some("unix:///w".to_owned()),
            "DOCKER_HOST" => Some("unix:///d".to_owned()),
            _ => None,
        };
        assert_eq!(
            Host::resolve_with(Some("/f"), env).unwrap(),
            (Host::Unix("/f".into()), true)
        );
        assert_eq!(
            Host::resolve_with(None, env).unwrap(),
            (Host::Unix("/w".into()), true)
        );
        let only_docker = |k: &str| (k == "DOCKER_HOST").then(|| "unix:///d".to_owned());
        assert_eq!(
            Host::resolve_with(None, only_docker).unwrap(),
            (Host::Unix("/d".into()), true)
        );
        assert_eq!(
            Host::resolve_with(None, |_| None).unwrap(),
            (Host::Unix(DEFAULT_SOCKET.into()), false)
        );
    }
}
