//! The three files Docker generates per container and bind-mounts over the
//! image's: `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`.
//!
//! `resolv.conf` starts from the host's, minus loopback nameservers (they
//! would point at the container itself in its own network namespace), with
//! Google's public servers when none remain, as Docker does; `--dns`,
//! `--dns-search` and `--dns-option` replace the respective lines. With
//! `--network host` the host's file is used as is.

/// What the generated files contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: String,
    pub hosts: String,
    pub resolv_conf: String,
}

/// Inputs of [`generate`].
#[derive(Debug, Clone, Default)]
pub struct EtcInputs<'a> {
    pub hostname: &'a str,
    pub domainname: &'a str,
    pub host_network: bool,
    pub extra_hosts: &'a [String],
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
    /// The host's `/etc/resolv.conf`.
    pub host_resolv_conf: &'a str,
    /// The host's `/etc/hosts` (used with host networking).
    pub host_hosts: &'a str,
}

const DEFAULT_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Builds the three files.
pub fn generate(i: &EtcInputs<'_>) -> EtcFiles {
    let mut hosts = String::new();
    if i.host_network {
        hosts.push_str(i.host_hosts);
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
    } else {
        hosts.push_str(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
    }
    for h in i.extra_hosts {
        // "name:ip" (ip may contain ':'), or "name=ip" since API 1.44.
        let split = h.split_once('=').or_else(|| h.split_once(':'));
        if let Some((name, ip)) = split {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let mut resolv = String::new();
    if i.host_network && i.dns.is_empty() && i.dns_search.is_empty() && i.dns_options.is_empty() {
        resolv.push_str(i.host_resolv_conf);
    } else {
        let mut servers: Vec<String> = Vec::new();
        let mut search: Vec<String> = Vec::new();
        let mut options: Vec<String> = Vec::new();
        let mut other: Vec<&str> = Vec::new();
        for line in i.host_resolv_conf.lines() {
            let mut f = line.split_whitespace();
            match f.next() {
                Some("nameserver") => {
                    if let Some(ip) = f.next()
                        && !(ip.starts_with("127.") || ip == "::1")
                    {
                        servers.push(ip.to_owned());
                    }
                }
                Some("search" | "domain") => search = f.map(str::to_owned).collect(),
                Some("options") => options = f.map(str::to_owned).collect(),
                Some(_) => other.push(line),
                None => {}
            }
        }
        if !i.dns.is_empty() {
            servers = i.dns.to_vec();
        }
        if servers.is_empty() {
            servers = DEFAULT_DNS.map(str::to_owned).to_vec();
        }
        if !i.dns_search.is_empty() {
            search = i.dns_search.iter().filter(|s| *s != ".").cloned().collect();
        }
        if !i.dns_options.is_empty() {
            options = i.dns_options.to_vec();
        }
        for s in &servers {
            resolv.push_str(&format!("nameserver {s}\n"));
        }
        if !search.is_empty() {
            resolv.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            resolv.push_str(&format!("options {}\n", options.join(" ")));
        }
        for l in other {
            if !l.trim_start().starts_with('#') {
                resolv.push_str(l);
                resolv.push('\n');
            }
        }
    }
    let fqdn = if i.domainname.is_empty() {
        i.hostname.to_owned()
    } else {
        format!("{}.{}", i.hostname, i.domainname)
    };
    EtcFiles {
        hostname: format!("{}\n", i.hostname),
        hosts: if i.host_network {
            hosts
        } else {
            // Without a network there is no address to name: Docker maps the
            // hostname only when an endpoint has an IP; loopback keeps the
            // container able to resolve its own name.
            format!(
                "{hosts}127.0.1.1\t{fqdn}{}\n",
                if fqdn != i.hostname {
                    format!(" {}", i.hostname)
                } else {
                    String::new()
                }
            )
        },
        resolv_conf: resolv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv() {
        let f = generate(&EtcInputs {
            hostname: "abc",
            extra_hosts: &["db:10.0.0.2".into(), "v6=[::2]".into()],
            host_resolv_conf: "# c\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nsearch lan\noptions ndots:2\n",
            ..Default::default()
        });
        assert_eq!(f.hostname, "abc\n");
        assert!(f.hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(f.hosts.contains("10.0.0.2\tdb\n"));
        assert!(f.hosts.contains("::2\tv6\n"));
        assert!(f.hosts.contains("127.0.1.1\tabc\n"));
        assert_eq!(
            f.resolv_conf,
            "nameserver 1.1.1.1\nsearch lan\noptions ndots:2\n"
        );

        let f = generate(&EtcInputs {
            hostname: "h",
            dns: &["9.9.9.9".into()],
            dns_search: &["x.y".into()],
            host_resolv_conf: "nameserver 127.0.0.1\n",
            ..Default::default()
        });
        assert_eq!(f.resolv_conf, "nameserver 9.9.9.9\nsearch x.y\n");
        let f = generate(&EtcInputs {
            hostname: "h",
            host_resolv_conf: "nameserver 127.0.0.1\n",
            ..Default::default()
        });
        assert_eq!(f.resolv_conf, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let f = generate(&EtcInputs {
            hostname: "h",
            host_network: true,
            host_resolv_conf: "nameserver 127.0.0.53\n",
            host_hosts: "127.0.0.1 localhost",
            ..Default::default()
        });
        assert_eq!(f.resolv_conf, "nameserver 127.0.0.53\n");
        assert_eq!(f.hosts, "127.0.0.1 localhost\n");
    }
}
