//! Which URLs a registry host is reached at, and in which order.
//!
//! Docker's rules, applied by [`endpoints_for`]:
//! - `docker.io` (and `index.docker.io`) is served by `registry-1.docker.io`;
//!   configured mirrors are tried first, for reads only;
//! - a host is *insecure* when it is `localhost`, a loopback address
//!   (`127.0.0.0/8`, `::1`) or listed in [`RegistryOptions::insecure_registries`]
//!   (as `host`, `host:port` or an IP network in CIDR form). An insecure host
//!   is tried over HTTPS without certificate verification first, then over
//!   plain HTTP;
//! - every other host is HTTPS only, verified against the system roots.

use std::net::IpAddr;
use std::time::Duration;

use crate::retry::RetryPolicy;

/// The name references use for Docker Hub.
pub const DOCKER_IO: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
pub const DOCKER_IO_REGISTRY: &str = "registry-1.docker.io";
/// Docker Hub's legacy index host, an alias of [`DOCKER_IO`].
pub const DOCKER_IO_INDEX: &str = "index.docker.io";

/// Why an endpoint list could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The registry host is empty or not `host[:port]`.
    #[error("invalid registry host {host:?}")]
    InvalidHost { host: String },
    /// A mirror is not an `http(s)://host[:port]` URL.
    #[error("invalid registry mirror {mirror:?}: expected http(s)://host[:port]")]
    InvalidMirror { mirror: String },
    /// An insecure-registry entry is neither a host nor a CIDR network.
    #[error("invalid insecure registry entry {entry:?}")]
    InvalidInsecureEntry { entry: String },
}

/// Client-wide settings shared by every [`crate::RegistryClient`].
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries reachable over plain HTTP or unverified HTTPS:
    /// `host`, `host:port` or CIDR networks such as `10.0.0.0/8`.
    pub insecure_registries: Vec<String>,
    /// Mirrors of Docker Hub (`https://mirror.example:5000`), tried in order
    /// before `registry-1.docker.io` for pulls.
    pub mirrors: Vec<String>,
    /// The `User-Agent` header of every request.
    pub user_agent: String,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Timeout for establishing a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Longest silence on an established connection before a read fails
    /// (a stalled blob download then resumes with a range request).
    pub read_timeout: Duration,
    /// Maximum concurrent layer downloads or uploads per image.
    pub max_concurrent_transfers: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            user_agent: format!("wharf/{}", env!("CARGO_PKG_VERSION")),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_concurrent_transfers: 3,
        }
    }
}

/// One base URL a registry is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]` (optionally with a path prefix for mirrors),
    /// without a trailing slash.
    pub base: String,
    /// A Docker Hub mirror (used for reads only).
    pub mirror: bool,
    /// Whether TLS certificates are verified (false for insecure hosts).
    pub tls_verify: bool,
}

/// The API host for a registry name: Docker Hub's aliases map to
/// `registry-1.docker.io`, anything else is returned unchanged.
pub fn api_host(host: &str) -> &str {
    if is_docker_hub(host) {
        DOCKER_IO_REGISTRY
    } else {
        host
    }
}

/// Whether `host` names Docker Hub (`docker.io`, `index.docker.io`,
/// `registry-1.docker.io`).
pub fn is_docker_hub(host: &str) -> bool {
    matches!(host, DOCKER_IO | DOCKER_IO_INDEX | DOCKER_IO_REGISTRY)
}

/// Splits `host[:port]` (IPv6 in brackets) into the host part and the port.
pub fn split_host_port(host: &str) -> Result<(&str, Option<u16>), EndpointError> {
    let invalid = || EndpointError::InvalidHost {
        host: host.to_owned(),
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(invalid());
    }
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(invalid)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| invalid())?;
        return match after {
            "" => Ok((ip, None)),
            p => {
                let port = p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(invalid)?;
                Ok((ip, Some(port)))
            }
        };
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((host, None));
    }
    match host.rsplit_once(':') {
        None => Ok((host, None)),
        Some((h, p)) if !h.is_empty() => Ok((h, Some(p.parse().map_err(|_| invalid())?))),
        Some(_) => Err(invalid()),
    }
}

/// Whether a registry host may be reached over plain HTTP (docker's rule:
/// loopback names and addresses, plus the configured insecure list).
pub fn is_insecure(host: &str, insecure: &[String]) -> Result<bool, EndpointError> {
    let (name, _port) = split_host_port(host)?;
    let ip = name.parse::<IpAddr>().ok();
    if name.eq_ignore_ascii_case("localhost") || ip.is_some_and(|ip| ip.is_loopback()) {
        return Ok(true);
    }
    for entry in insecure {
        let entry = entry.trim();
        let entry = entry
            .strip_prefix("http://")
            .or_else(|| entry.strip_prefix("https://"))
            .unwrap_or(entry)
            .trim_end_matches('/');
        if let Some((net, bits)) = entry.split_once('/') {
            let invalid = || EndpointError::InvalidInsecureEntry {
                entry: entry.to_owned(),
            };
            let net: IpAddr = net.parse().map_err(|_| invalid())?;
            let bits: u8 = bits.parse().map_err(|_| invalid())?;
            if let Some(ip) = ip
                && cidr_contains(net, bits, ip).ok_or_else(invalid)?
            {
                return Ok(true);
            }
            continue;
        }
        if entry.eq_ignore_ascii_case(host) {
            return Ok(true);
        }
        let (e_name, e_port) =
            split_host_port(entry).map_err(|_| EndpointError::InvalidInsecureEntry {
                entry: entry.to_owned(),
            })?;
        if e_port.is_none() && e_name.eq_ignore_ascii_case(name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `Some(true)` when `ip` is in `net/bits`, `None` when `bits` is too large
/// for the address family.
fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> Option<bool> {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(u32::from(n) & mask == u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Some(u128::from(n) & mask == u128::from(i) & mask)
        }
        (IpAddr::V4(_), IpAddr::V6(_)) if bits <= 32 => Some(false),
        (IpAddr::V6(_), IpAddr::V4(_)) if bits <= 128 => Some(false),
        _ => None,
    }
}

/// The ordered endpoints for `host` under `options` (see the module docs).
pub fn endpoints_for(
    host: &str,
    options: &RegistryOptions,
) -> Result<Vec<Endpoint>, EndpointError> {
    let mut out = Vec::new();
    if is_docker_hub(host) {
        for mirror in &options.mirrors {
            let base = mirror.trim_end_matches('/');
            let invalid = || EndpointError::InvalidMirror {
                mirror: mirror.clone(),
            };
            let (scheme, rest) = base.split_once("://").ok_or_else(invalid)?;
            if !matches!(scheme, "http" | "https") {
                return Err(invalid());
            }
            let authority = rest.split('/').next().unwrap_or_default();
            split_host_port(authority).map_err(|_| invalid())?;
            let tls_verify = !is_insecure(authority, &options.insecure_registries)?;
            out.push(Endpoint {
                base: base.to_owned(),
                mirror: true,
                tls_verify,
            });
        }
    }
    let api = api_host(host);
    if is_insecure(api, &options.insecure_registries)? {
        out.push(Endpoint {
            base: format!("https://{api}"),
            mirror: false,
            tls_verify: false,
        });
        out.push(Endpoint {
            base: format!("http://{api}"),
            mirror: false,
            tls_verify: false,
        });
    } else {
        out.push(Endpoint {
            base: format!("https://{api}"),
            mirror: false,
            tls_verify: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(insecure: &[&str], mirrors: &[&str]) -> RegistryOptions {
        RegistryOptions {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
            ..RegistryOptions::default()
        }
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("quay.io").unwrap(), ("quay.io", None));
        assert_eq!(
            split_host_port("localhost:5000").unwrap(),
            ("localhost", Some(5000))
        );
        assert_eq!(split_host_port("[::1]:5000").unwrap(), ("::1", Some(5000)));
        assert_eq!(split_host_port("[::1]").unwrap(), ("::1", None));
        assert_eq!(split_host_port("::1").unwrap(), ("::1", None));
        assert!(split_host_port("").is_err());
        assert!(split_host_port("a:b").is_err());
        assert!(split_host_port("a/b").is_err());
        assert!(split_host_port("[::1]x").is_err());
    }

    #[test]
    fn insecure_rules() {
        let none: Vec<String> = vec![];
        assert!(is_insecure("localhost:5000", &none).unwrap());
        assert!(is_insecure("127.0.0.1:5000", &none).unwrap());
        assert!(is_insecure("127.1.2.3", &none).unwrap());
        assert!(is_insecure("[::1]:5000", &none).unwrap());
        assert!(!is_insecure("quay.io", &none).unwrap());
        assert!(!is_insecure("10.1.2.3:5000", &none).unwrap());
        let list = opts(
            &["10.0.0.0/8", "reg.lan:5000", "other.lan", "http://web.lan/"],
            &[],
        )
        .insecure_registries;
        assert!(is_insecure("10.1.2.3:5000", &list).unwrap());
        assert!(!is_insecure("11.1.2.3:5000", &list).unwrap());
        assert!(is_insecure("reg.lan:5000", &list).unwrap());
        assert!(!is_insecure("reg.lan:5001", &list).unwrap());
        assert!(is_insecure("other.lan:443", &list).unwrap());
        assert!(is_insecure("web.lan", &list).unwrap());
        assert!(is_insecure("1.2.3.4", &["1.2.3.4/33".into()]).is_err());
        assert!(is_insecure("1.2.3.4", &["bad/8".into()]).is_err());
    }

    #[test]
    fn docker_hub_with_mirrors() {
        let eps = endpoints_for(
            "docker.io",
            &opts(&[], &["https://m1.example/", "http://127.0.0.1:9"]),
        )
        .unwrap();
        let bases: Vec<_> = eps
            .iter()
            .map(|e| (e.base.as_str(), e.mirror, e.tls_verify))
            .collect();
        assert_eq!(
            bases,
            vec![
                ("https://m1.example", true, true),
                ("http://127.0.0.1:9", true, false),
                ("https://registry-1.docker.io", false, true),
            ]
        );
        assert!(endpoints_for("docker.io", &opts(&[], &["ftp://x"])).is_err());
        // Mirrors only apply to Docker Hub.
        assert_eq!(
            endpoints_for("quay.io", &opts(&[], &["https://m1.example"]))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn insecure_tries_https_then_http() {
        let eps = endpoints_for("127.0.0.1:5000", &RegistryOptions::default()).unwrap();
        assert_eq!(eps[0].base, "https://127.0.0.1:5000");
        assert!(!eps[0].tls_verify);
        assert_eq!(eps[1].base, "http://127.0.0.1:5000");
        assert_eq!(eps.len(), 2);
    }

    #[test]
    fn user_agent_names_wharf() {
        assert!(RegistryOptions::default().user_agent.starts_with("wharf/"));
    }
}
