//! `-p/--publish [ip:][hostPort:]containerPort[/proto]` (ranges allowed,
//! IPv6 addresses in brackets) into `ExposedPorts` keys and
//! `PortBindings`, and `--expose`.

use serde_json::{Map, Value, json};

use super::OptsError;

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    (a <= b).then_some((a, b))
}

/// Adds one `-p` spec to the exposed ports and bindings.
pub fn publish(
    spec: &str,
    exposed: &mut Map<String, Value>,
    bindings: &mut Map<String, Value>,
) -> Result<(), OptsError> {
    // docker checks -p after parsing the flags: its message alone.
    let bad = OptsError::Message;
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad(format!("invalid proto: {proto}")));
    }
    // Split off an IPv6 address in brackets first.
    let (ip, rest) = if let Some(r) = addr.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| bad(format!("invalid IP address: {addr}")))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| bad(format!("invalid port format: {spec}")))?;
        (ip.to_owned(), after.to_owned())
    } else {
        let parts: Vec<&str> = addr.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), addr.to_owned()),
            3 => (parts[0].to_owned(), format!("{}:{}", parts[1], parts[2])),
            _ => return Err(bad(format!("invalid port format: {spec}"))),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(format!("invalid IP address: {ip}")));
    }
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest.as_str()),
    };
    let (c0, c1) = parse_range(ctr).ok_or_else(|| bad(format!("invalid containerPort: {ctr}")))?;
    if c0 == 0 {
        return Err(bad(format!("invalid containerPort: {ctr}")));
    }
    let hosts = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).ok_or_else(|| bad(format!("invalid hostPort: {host}")))?)
    };
    let count = u32::from(c1 - c0) + 1;
    if let Some((h0, h1)) = hosts {
        let hc = u32::from(h1 - h0) + 1;
        if c0 == c1 && hc > 1 {
            // One container port, a host range: the daemon picks one.
            let key = format!("{c0}/{proto}");
            exposed.insert(key.clone(), json!({}));
            push_binding(bindings, &key, &ip, &format!("{h0}-{h1}"));
            return Ok(());
        }
        if hc != count {
            return Err(bad(format!(
                "invalid ranges specified for container and host Ports: {ctr} and {host}"
            )));
        }
    }
    for i in 0..count {
        let cp = u32::from(c0) + i;
        let key = format!("{cp}/{proto}");
        exposed.insert(key.clone(), json!({}));
        let hp = hosts
            .map(|(h0, _)| (u32::from(h0) + i).to_string())
            .unwrap_or_default();
        push_binding(bindings, &key, &ip, &hp);
    }
    Ok(())
}

fn push_binding(bindings: &mut Map<String, Value>, key: &str, ip: &str, port: &str) {
    let entry = bindings.entry(key.to_owned()).or_insert_with(|| json!([]));
    if let Value::Array(a) = entry {
        a.push(json!({"HostIp": ip, "HostPort": port}));
    }
}

/// `--expose 80[-90][/proto]`.
pub fn expose(spec: &str, exposed: &mut Map<String, Value>) -> Result<(), OptsError> {
    let (ports, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let bad = |why: String| {
        OptsError::Message(format!(
            "invalid range format for --expose: {spec}, error: {why}"
        ))
    };
    let port = |p: &str| -> Result<u16, OptsError> {
        super::flags::int(p)
            .ok()
            .filter(|_| !p.starts_with(['-', '+']))
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| bad(format!("strconv.ParseUint: parsing {p:?}: invalid syntax")))
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if b < a {
        return Err(bad(format!("invalid range: {ports}")));
    }
    for p in a..=b {
        exposed.insert(format!("{p}/{proto}"), json!({}));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str) -> Result<(Value, Value), OptsError> {
        let (mut e, mut b) = (Map::new(), Map::new());
        publish(spec, &mut e, &mut b)?;
        Ok((Value::Object(e), Value::Object(b)))
    }

    #[test]
    fn publish_forms() {
        assert_eq!(
            p("8080:80").unwrap().1,
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(p("8080:80/udp").unwrap().0, json!({"80/udp": {}}));
        assert_eq!(
            p("80").unwrap().1,
            json!({"80/tcp": [{"HostIp": "", "HostPort": ""}]})
        );
        assert_eq!(
            p("127.0.0.1::80").unwrap().1,
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]})
        );
        assert_eq!(
            p("127.0.0.1:8080:80").unwrap().1,
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
        );
        assert_eq!(
            p("[::1]:8080:80").unwrap().1,
            json!({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]})
        );
        assert_eq!(
            p("8000-8001:80-81").unwrap().1,
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8000"}], "81/tcp": [{"HostIp": "", "HostPort": "8001"}]})
        );
        assert_eq!(
            p("8000-8010:80").unwrap().1,
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]})
        );
    }

    #[test]
    fn publish_errors() {
        for bad in [
            "abc",
            "80/xyz",
            "1.2.3:80:80",
            "8000-8002:80-81",
            "0",
            "a:80",
            "1:2:3:4",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let mut e = Map::new();
        expose("7000-7001/udp", &mut e).unwrap();
        assert_eq!(Value::Object(e), json!({"7000/udp": {}, "7001/udp": {}}));
    }
}
